//! The host side driven by the event loop ([`HostService`]): it answers
//! the `/ronde/mailbox/1` requests of other nodes from its
//! [`MailboxHost`], fires the dead-man's switches that came due and purges
//! the envelopes past their retention.
//!
//! Fetches and acknowledgements must prove the mailbox secret: the host
//! issues single-use challenges ([`Challenges`]) bound to the asking peer
//! and checks each mailbox key's signature, bound to this host and that
//! peer ([`ronde_protocol::circle::mailbox_auth`]). Puts are open to
//! anyone. A push registration proves its keys the same way; once mail is
//! stored in a registered mailbox (put, or a switch released), the
//! registration's endpoint is woken by the [`PushWaker`], off the loop.
//!
//! Logs name no mailbox, envelope or switch.

use std::net::IpAddr;
use std::sync::Arc;

use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::swarm::Swarm;
use libp2p::PeerId;
use rand::rngs::OsRng;
use ronde_protocol::circle::mailbox_auth::Challenges;
use ronde_protocol::circle::Deposit;

use crate::behaviour::Behaviour;
use crate::circle::host::push::{
    check_endpoint, registration_id, PushRegistry, PushWaker, Registration, MAX_PUSH_LIFETIME_SECS,
};
use crate::circle::host::quota::Quotas;
use crate::circle::host::store::MailboxHost;
use crate::circle::receipt::SwitchReceipt;
use crate::circle::wire::{is_deposit, MailboxRequest, MailboxResponse, Refusal};
use crate::clock::Clock;
use crate::config::MailboxLimits;
use ronde_protocol::circle::switch::check_deposit_work;

/// How often the hosted mailboxes are purged of expired envelopes.
const PURGE_SECS: u64 = 60;

/// The hosted mailboxes and switches, and when they were last purged.
pub(crate) struct HostService {
    store: MailboxHost,
    clock: Arc<dyn Clock>,
    /// This node's libp2p key: it signs the receipts of switch deposits.
    keypair: Keypair,
    last_purge: u64,
    challenges: Challenges,
    quotas: Quotas,
    limits: MailboxLimits,
    /// Push registrations and their sender, if this host sends wake-ups.
    push: Option<(PushRegistry, PushWaker)>,
    /// Push registrations per peer and network.
    push_quotas: Quotas,
}

impl HostService {
    pub(crate) fn new(
        store: MailboxHost,
        clock: Arc<dyn Clock>,
        keypair: Keypair,
        limits: MailboxLimits,
        push: Option<PushRegistry>,
    ) -> HostService {
        let push = push
            .filter(|_| limits.push.enabled)
            .map(|r| (r, PushWaker::spawn(limits.push)));
        HostService {
            store,
            clock,
            keypair,
            last_purge: 0,
            challenges: Challenges::new(),
            quotas: Quotas::default(),
            limits,
            push,
            push_quotas: Quotas::default(),
        }
    }

    /// The hosted mailboxes and switches (the client side reads this node's
    /// own mailboxes here, and counts them in its status).
    pub(crate) fn store(&self) -> &MailboxHost {
        &self.store
    }

    /// The same, to take (and acknowledge) this node's own mail.
    pub(crate) fn store_mut(&mut self) -> &mut MailboxHost {
        &mut self.store
    }

    /// Answer a peer's request on `/ronde/mailbox/1` (`from`: the peer and
    /// the IP address of its connection, if direct). `host` is `None` on a
    /// node that hosts nothing (it does not offer the protocol, so no
    /// request should arrive): every request is refused as unavailable.
    pub(crate) fn answer(
        host: Option<&mut HostService>,
        swarm: &mut Swarm<Behaviour>,
        from: (PeerId, Option<IpAddr>),
        request: MailboxRequest,
        channel: ResponseChannel<MailboxResponse>,
    ) {
        let local = *swarm.local_peer_id();
        let peer = from.0;
        let answer = match host {
            Some(host) => host.serve(&local, from, request),
            None => MailboxResponse::Refused(Refusal::Unavailable),
        };
        if swarm
            .behaviour_mut()
            .mailbox
            .send_response(channel, answer)
            .is_err()
        {
            tracing::debug!(%peer, "a mailbox client went away");
        }
    }

    /// The mailboxes a fetch or acknowledgement from `peer` proved, or why
    /// not (the challenge is spent either way).
    fn proven(
        &mut self,
        local: &PeerId,
        peer: &PeerId,
        request: &MailboxRequest,
        now: u64,
    ) -> Result<Vec<[u8; 32]>, MailboxResponse> {
        let client = peer.to_bytes();
        let unauthorized = MailboxResponse::Refused(Refusal::Unauthorized);
        let challenge = match request {
            MailboxRequest::Fetch { challenge, .. }
            | MailboxRequest::Ack { challenge, .. }
            | MailboxRequest::Push { challenge, .. } => *challenge,
            _ => return Err(unauthorized),
        };
        // Spent first, so that a refused proof cannot be tried again.
        if !self.challenges.redeem(&client, &challenge, now) {
            tracing::debug!(%peer, "mailbox request with an unknown challenge");
            return Err(unauthorized);
        }
        let (_, mailboxes) = request
            .proven_mailboxes(&local.to_bytes(), &client)
            .map_err(|e| {
                tracing::debug!(%peer, error = %e, "mailbox proof refused");
                unauthorized
            })?;
        Ok(mailboxes)
    }

    /// A deposit's checks before it is parsed (cheapest first): its proof
    /// of work, then its client's quota.
    fn admit_deposit(
        &mut self,
        (peer, ip): (PeerId, Option<IpAddr>),
        work: u64,
        request: &[u8],
    ) -> Result<(), Refusal> {
        if !check_deposit_work(request, work, self.limits.deposit_work_bits) {
            return Err(Refusal::SwitchWorkMissing);
        }
        let store = &self.store;
        if !self.quotas.allows(
            peer,
            ip,
            self.limits.max_switches_per_peer,
            self.limits.max_switches_per_network,
            |k| store.holds_switch(k),
        ) {
            return Err(Refusal::SwitchQuota);
        }
        Ok(())
    }

    fn serve(
        &mut self,
        local: &PeerId,
        from: (PeerId, Option<IpAddr>),
        request: MailboxRequest,
    ) -> MailboxResponse {
        let peer = &from.0;
        let now = self.clock.now();
        if let MailboxRequest::Switch { work, request } = &request {
            if is_deposit(request) {
                if let Err(r) = self.admit_deposit(from, *work, request) {
                    tracing::debug!(refusal = %r, "dead-man's switch deposit refused");
                    return MailboxResponse::Refused(r);
                }
            }
        }
        if matches!(request, MailboxRequest::Push { .. }) && self.push.is_none() {
            return MailboxResponse::Refused(Refusal::PushUnavailable);
        }
        let proven = match &request {
            MailboxRequest::Fetch { .. }
            | MailboxRequest::Ack { .. }
            | MailboxRequest::Push { .. } => match self.proven(local, peer, &request, now) {
                Ok(m) => m,
                Err(refused) => return refused,
            },
            _ => Vec::new(),
        };
        let host = &mut self.store;
        match request {
            MailboxRequest::Put { mailbox, envelope } => match host.put(&mailbox, &envelope, now) {
                Ok(()) => {
                    self.wake_touched(now);
                    MailboxResponse::Ok
                }
                Err(e) => {
                    tracing::debug!(error = %e, "envelope refused by the mailbox");
                    MailboxResponse::Refused(e.refusal())
                }
            },
            MailboxRequest::Push {
                lifetime, endpoint, ..
            } => match self.register_push(from, lifetime, endpoint, proven, now) {
                Ok(()) => MailboxResponse::Ok,
                Err(r) => {
                    tracing::debug!(refusal = %r, "push registration refused");
                    MailboxResponse::Refused(r)
                }
            },
            MailboxRequest::Challenge => {
                MailboxResponse::Challenge(self.challenges.issue(&peer.to_bytes(), now, &mut OsRng))
            }
            MailboxRequest::Fetch { .. } => match host.fetch(&proven) {
                Ok((items, more)) => MailboxResponse::Mail { more, items },
                Err(e) => {
                    tracing::error!(error = %e, "could not read the mailboxes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Ack { items, .. } if items.iter().any(|(m, _)| !proven.contains(m)) => {
                tracing::debug!(%peer, "an acknowledgement names a mailbox it did not prove");
                MailboxResponse::Refused(Refusal::Unauthorized)
            }
            MailboxRequest::Ack { items, .. } => match host.ack(&items) {
                Ok(_) => MailboxResponse::Ok,
                Err(e) => {
                    tracing::error!(error = %e, "could not delete fetched envelopes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Switch { request, .. } => {
                let result = host.switch(&request, now);
                if let Ok(key) = &result {
                    if is_deposit(&request) {
                        self.quotas.record(from.0, from.1, *key);
                    }
                }
                // A deposit taken, or retransmitted after a lost answer, is
                // answered with a receipt signed by this node's peer key.
                let receipt = match result {
                    Ok(_) | Err(Refusal::SwitchAlreadyDeposited) => Deposit::from_bytes(&request)
                        .ok()
                        .and_then(|d| SwitchReceipt::sign(&self.keypair, *d.key(), d.release_at())),
                    Err(_) => None,
                };
                match (result, receipt) {
                    (_, Some(r)) => {
                        tracing::debug!("dead-man's switch deposit held");
                        MailboxResponse::Receipt(r)
                    }
                    (Ok(_), None) => {
                        tracing::debug!("dead-man's switch request applied");
                        MailboxResponse::Ok
                    }
                    (Err(r), None) => {
                        tracing::debug!(refusal = %r, "dead-man's switch request refused");
                        MailboxResponse::Refused(r)
                    }
                }
            }
        }
    }

    /// Register (or replace, or with `lifetime` 0 forget) the push
    /// registration of the asking peer, for the `mailboxes` it proved.
    fn register_push(
        &mut self,
        (peer, ip): (PeerId, Option<IpAddr>),
        lifetime: u32,
        endpoint: String,
        mailboxes: Vec<[u8; 32]>,
        now: u64,
    ) -> Result<(), Refusal> {
        let settings = self.limits.push;
        let Some((registry, _)) = self.push.as_mut() else {
            return Err(Refusal::PushUnavailable);
        };
        let id = registration_id(&peer.to_bytes());
        let storage = |e: crate::error::StoreError| {
            tracing::error!(error = %e, "could not store a push registration");
            Refusal::Unavailable
        };
        if lifetime == 0 {
            registry.remove(&id).map_err(storage)?;
            return Ok(());
        }
        check_endpoint(&endpoint, settings.allow_local)?;
        if !registry.holds(&id) {
            let reg = &*registry;
            let room = registry.len() < settings.max_registrations
                && self.push_quotas.allows(
                    peer,
                    ip,
                    settings.max_per_peer,
                    settings.max_per_network,
                    |k| reg.holds(k),
                );
            if !room {
                return Err(Refusal::PushQuota);
            }
        }
        if registry.of_endpoint(&endpoint, &id) >= settings.max_per_endpoint {
            return Err(Refusal::PushQuota);
        }
        let mut mailboxes = mailboxes;
        mailboxes.sort_unstable();
        mailboxes.dedup();
        let reg = Registration {
            expires_at: now.saturating_add(u64::from(lifetime.min(MAX_PUSH_LIFETIME_SECS))),
            endpoint,
            mailboxes,
        };
        let fresh = !registry.holds(&id);
        registry.put(id, &reg).map_err(storage)?;
        if fresh {
            self.push_quotas.record(peer, ip, id);
        }
        tracing::debug!("push registration taken");
        Ok(())
    }

    /// Wake the registrations of the mailboxes that received mail, and
    /// forget the endpoints their push servers said are gone.
    fn wake_touched(&mut self, now: u64) {
        let touched = self.store.take_touched();
        let Some((registry, waker)) = self.push.as_mut() else {
            return;
        };
        for endpoint in waker.gone() {
            if let Err(e) = registry.remove_endpoint(&endpoint) {
                tracing::error!(error = %e, "could not drop a gone push endpoint");
            }
        }
        for m in &touched {
            match registry.watchers(m, now) {
                Ok(w) => w.into_iter().for_each(|(id, ep)| waker.wake(id, ep)),
                Err(e) => tracing::error!(error = %e, "could not read the push registrations"),
            }
        }
    }

    /// Time passed: release the switches that came due into their
    /// mailboxes (waking their push registrations), and every
    /// [`PURGE_SECS`] delete expired envelopes and lapsed registrations.
    pub(crate) fn tick(&mut self) {
        let now = self.clock.now();
        match self.store.release(now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "released alerts into their mailboxes"),
            Err(e) => tracing::error!(error = %e, "could not release dead-man's switches"),
        }
        self.wake_touched(now);
        if now >= self.last_purge + PURGE_SECS {
            self.last_purge = now;
            if let Some((registry, _)) = self.push.as_mut() {
                match registry.purge(now) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(registrations = n, "lapsed push registrations deleted")
                    }
                    Err(e) => tracing::error!(error = %e, "could not purge push registrations"),
                }
            }
            match self.store.purge(now) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(envelopes = n, "expired mail deleted"),
                Err(e) => tracing::error!(error = %e, "could not purge the mailboxes"),
            }
        }
    }
}
