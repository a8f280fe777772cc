//! The host side driven by the event loop ([`HostService`]): it answers
//! the `/ronde/mailbox/1` requests of other nodes from its
//! [`MailboxHost`], fires the dead-man's switches that came due and purges
//! the envelopes past their retention.
//!
//! Logs name no mailbox, envelope or switch.

use std::sync::Arc;

use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::swarm::Swarm;
use libp2p::PeerId;
use ronde_protocol::circle::Deposit;

use crate::behaviour::Behaviour;
use crate::circle::host::store::MailboxHost;
use crate::circle::receipt::SwitchReceipt;
use crate::circle::wire::{MailboxRequest, MailboxResponse, Refusal};
use crate::clock::Clock;

/// How often the hosted mailboxes are purged of expired envelopes.
const PURGE_SECS: u64 = 60;

/// The hosted mailboxes and switches, and when they were last purged.
pub(crate) struct HostService {
    store: MailboxHost,
    clock: Arc<dyn Clock>,
    /// This node's libp2p key: it signs the receipts of switch deposits.
    keypair: Keypair,
    last_purge: u64,
}

impl HostService {
    pub(crate) fn new(store: MailboxHost, clock: Arc<dyn Clock>, keypair: Keypair) -> HostService {
        HostService {
            store,
            clock,
            keypair,
            last_purge: 0,
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

    /// Answer a peer's request on `/ronde/mailbox/1`. `host` is `None` on a
    /// node that hosts nothing (it does not offer the protocol, so no
    /// request should arrive): every request is refused as unavailable.
    pub(crate) fn answer(
        host: Option<&mut HostService>,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        request: MailboxRequest,
        channel: ResponseChannel<MailboxResponse>,
    ) {
        let answer = match host {
            Some(host) => host.serve(request),
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

    fn serve(&mut self, request: MailboxRequest) -> MailboxResponse {
        let now = self.clock.now();
        let host = &mut self.store;
        match request {
            MailboxRequest::Put { mailbox, envelope } => match host.put(&mailbox, &envelope, now) {
                Ok(()) => MailboxResponse::Ok,
                Err(e) => {
                    tracing::debug!(error = %e, "envelope refused by the mailbox");
                    MailboxResponse::Refused(e.refusal())
                }
            },
            MailboxRequest::Fetch { mailboxes } => match host.fetch(&mailboxes) {
                Ok((items, more)) => MailboxResponse::Mail { more, items },
                Err(e) => {
                    tracing::error!(error = %e, "could not read the mailboxes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Ack { items } => match host.ack(&items) {
                Ok(_) => MailboxResponse::Ok,
                Err(e) => {
                    tracing::error!(error = %e, "could not delete fetched envelopes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Switch(bytes) => {
                let result = host.switch(&bytes, now);
                // A deposit taken, or retransmitted after a lost answer, is
                // answered with a receipt signed by this node's peer key.
                let receipt = match result {
                    Ok(()) | Err(Refusal::SwitchAlreadyDeposited) => Deposit::from_bytes(&bytes)
                        .ok()
                        .and_then(|d| SwitchReceipt::sign(&self.keypair, *d.key(), d.release_at())),
                    Err(_) => None,
                };
                match (result, receipt) {
                    (_, Some(r)) => {
                        tracing::debug!("dead-man's switch deposit held");
                        MailboxResponse::Receipt(r)
                    }
                    (Ok(()), None) => {
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

    /// Time passed: release the switches that came due into their
    /// mailboxes, and every [`PURGE_SECS`] delete expired envelopes.
    pub(crate) fn tick(&mut self) {
        let now = self.clock.now();
        match self.store.release(now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "released alerts into their mailboxes"),
            Err(e) => tracing::error!(error = %e, "could not release dead-man's switches"),
        }
        if now >= self.last_purge + PURGE_SECS {
            self.last_purge = now;
            match self.store.purge(now) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(envelopes = n, "expired mail deleted"),
                Err(e) => tracing::error!(error = %e, "could not purge the mailboxes"),
            }
        }
    }
}
