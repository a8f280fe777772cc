//! The client of the mailbox hosts (`/ronde/mailbox/1`): the answers to
//! this node's puts, fetches, acknowledgements and switch requests, and
//! the polling of this person's mailboxes (at the remote hosts, and in
//! this node's own host side if it hosts some).
//!
//! A fetch and an acknowledgement at a remote host each take two round
//! trips: a challenge, then the request signed by the mailbox keys for
//! that challenge, that host and the peer id of the day's connections
//! ([`super::net`]). Each carries the mailboxes of one day only, over that
//! day's connections.

use std::time::Instant;

use libp2p::swarm::Swarm;
use libp2p::PeerId;
use ronde_protocol::circle::{epoch_of, MailboxKey};

use super::net::NetEvent;
use super::{CircleClient, MailboxAsk, Proven};
use crate::behaviour::Behaviour;
use crate::circle::host::MailboxHost;
use crate::circle::wire::{
    MailItem, MailboxRequest, MailboxResponse, MAX_ACK_ITEMS, MAX_ACK_KEYS, MAX_FETCH_MAILBOXES,
    MAX_PUSH_KEYS,
};

impl CircleClient {
    /// An event of the circle's day swarms: an answer to one of this
    /// node's `/ronde/mailbox/1` requests (or its failure), or a new
    /// connection to a host.
    pub(crate) fn on_net_event(&mut self, swarm: &mut Swarm<Behaviour>, ev: NetEvent) {
        match ev {
            NetEvent::Answer {
                request,
                peer,
                response,
            } => {
                if let Some(ask) = self.mailbox_inflight.remove(&request) {
                    self.mailbox_answer(swarm, peer, ask, response);
                }
            }
            NetEvent::Connected { day, peer } => self.on_host_connected(swarm, day, peer),
        }
        self.wake_progress();
        self.close_when_quiet();
    }

    /// An answer (or `None`: the request failed).
    pub(super) fn mailbox_answer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        ask: MailboxAsk,
        response: Option<MailboxResponse>,
    ) {
        match ask {
            MailboxAsk::Put { seq } => {
                self.put_done(seq, matches!(response, Some(MailboxResponse::Ok)));
            }
            MailboxAsk::Challenge { host, day, then } => match (response, then) {
                (Some(MailboxResponse::Challenge(c)), then) => self.send_proven(host, day, c, then),
                (other, Proven::Fetch) => {
                    self.fetching.remove(&(day, host));
                    if let Some(MailboxResponse::Refused(r)) = other {
                        tracing::debug!(%peer, refusal = %r, "mailbox challenge refused");
                    }
                }
                (_, Proven::Ack { .. }) => {}
                (_, Proven::Push { .. }) => {
                    self.push.inflight.remove(&(day, host));
                }
            },
            MailboxAsk::Fetch { host, day } => {
                self.fetching.remove(&(day, host));
                match response {
                    Some(MailboxResponse::Mail { more, items }) => {
                        // The keys that fetched them, before processing the
                        // mail can retire any.
                        let mut keys = self.keys_of_day(day);
                        keys.retain(|k| items.iter().any(|i| i.mailbox == k.address()));
                        let processed = self.take_mail(swarm, items);
                        if !processed.is_empty() {
                            for (i, chunk) in processed.chunks(MAX_ACK_ITEMS).enumerate() {
                                self.ask_challenge(
                                    host,
                                    day,
                                    Proven::Ack {
                                        items: chunk.to_vec(),
                                        more: more && i == 0,
                                        keys: keys.clone(),
                                    },
                                );
                            }
                        } else if more {
                            self.fetch_from(day, host);
                        }
                    }
                    Some(MailboxResponse::Refused(r)) => {
                        tracing::debug!(%peer, refusal = %r, "mailbox fetch refused")
                    }
                    _ => {}
                }
            }
            MailboxAsk::Ack { host, day, more } => {
                if more {
                    self.fetch_from(day, host);
                }
            }
            MailboxAsk::Push {
                host,
                day,
                mailboxes,
            } => self.push_answer(host, day, mailboxes, response),
            MailboxAsk::Switch { host, id } => {
                self.switch_inflight.remove(&host);
                self.switch_answer(host, id, response);
            }
        }
    }

    /// Open fetched mail; returns what to acknowledge (all of it but what
    /// this node failed to store).
    pub(super) fn take_mail(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        items: Vec<MailItem>,
    ) -> Vec<([u8; 32], u64)> {
        let mut done = Vec::new();
        self.push.mail_taken = self.push.mail_taken.saturating_add(items.len() as u64);
        for it in items {
            if self.take_short(swarm, &it.mailbox, &it.envelope) {
                done.push((it.mailbox, it.seq));
                continue;
            }
            match self.receive(swarm, &it.envelope, None) {
                Ok(_) => done.push((it.mailbox, it.seq)),
                Err(e) => {
                    tracing::error!(error = %e, "could not store a circle message from a mailbox")
                }
            }
        }
        done
    }

    /// The keys of `day`'s mailboxes to fetch now (see
    /// [`CircleClient::keys_to_poll`]).
    pub(super) fn keys_of_day(&self, day: u64) -> Vec<MailboxKey> {
        self.keys_to_poll()
            .into_iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, k)| k)
            .collect()
    }

    /// Fetch `day`'s mailboxes from `host`, over `day`'s connections.
    /// Suspended, only while woken ([`Self::may_fetch`]).
    pub(super) fn fetch_from(&mut self, day: u64, host: PeerId) {
        if self.fetching.contains(&(day, host)) || !self.may_fetch() {
            return;
        }
        if self.keys_of_day(day).is_empty() {
            return;
        }
        self.fetching.insert((day, host));
        self.ask_challenge(host, day, Proven::Fetch);
    }

    /// The other days' polls that came due (see
    /// [`Self::poll_mailboxes`]).
    pub(super) fn poll_later(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .later_polls
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(d, _)| *d)
            .collect();
        if due.is_empty() {
            return;
        }
        let hosts: Vec<PeerId> = self.remote_hosts().into_iter().map(|(p, _)| p).collect();
        for day in due {
            self.later_polls.remove(&day);
            for h in &hosts {
                self.fetch_from(day, *h);
            }
        }
    }

    /// Fetch every day's mailboxes from `host`, each day apart.
    pub(super) fn fetch_all_days(&mut self, host: PeerId) {
        let mut days: Vec<u64> = self.keys_to_poll().into_iter().map(|(d, _)| d).collect();
        days.sort_unstable();
        days.dedup();
        for day in days {
            self.fetch_from(day, host);
        }
    }

    /// Ask `host` for a challenge, to send `then` with (over `day`'s
    /// connections, the peer id the challenge is bound to).
    pub(super) fn ask_challenge(&mut self, host: PeerId, day: u64, then: Proven) {
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        match self.net.send(day, &host, addrs, MailboxRequest::Challenge) {
            Some(id) => {
                self.mailbox_inflight
                    .insert(id, MailboxAsk::Challenge { host, day, then });
            }
            None => {
                self.fetching.remove(&(day, host));
            }
        }
    }

    /// Send `then`, proving this person's mailbox keys for `challenge`,
    /// `host` and `day`'s peer id.
    fn send_proven(&mut self, host: PeerId, day: u64, challenge: [u8; 32], then: Proven) {
        let Some(client) = self.net.peer_id(day) else {
            self.fetching.remove(&(day, host));
            return;
        };
        let (request, ask) = match then {
            // A poll's challenge answered after the node was suspended:
            // the fetch waits for the wake-up.
            Proven::Fetch if !self.may_fetch() => {
                self.fetching.remove(&(day, host));
                return;
            }
            Proven::Fetch => {
                let mut keys = self.keys_of_day(day);
                keys.truncate(MAX_FETCH_MAILBOXES);
                (
                    MailboxRequest::fetch(challenge, &keys, &host.to_bytes(), &client.to_bytes()),
                    MailboxAsk::Fetch { host, day },
                )
            }
            Proven::Push { endpoint } => {
                let mut keys: Vec<MailboxKey> = self
                    .push_keys()
                    .into_iter()
                    .filter(|(d, _)| *d == day)
                    .map(|(_, k)| k)
                    .collect();
                keys.truncate(MAX_PUSH_KEYS);
                let now = self.clock.now();
                let (lifetime, endpoint, mailboxes) = match endpoint {
                    Some(e) => (
                        super::push::lifetime_for(day, now),
                        e,
                        keys.iter().map(|k| k.address()).collect(),
                    ),
                    None => match self.push.registered.get(&(day, host)) {
                        Some((e, _)) => (0, e.clone(), Vec::new()),
                        None => {
                            self.push.inflight.remove(&(day, host));
                            return;
                        }
                    },
                };
                if keys.is_empty() {
                    self.push.inflight.remove(&(day, host));
                    return;
                }
                (
                    MailboxRequest::push(
                        challenge,
                        lifetime,
                        &endpoint,
                        &keys,
                        &host.to_bytes(),
                        &client.to_bytes(),
                    ),
                    MailboxAsk::Push {
                        host,
                        day,
                        mailboxes,
                    },
                )
            }
            Proven::Ack {
                items,
                more,
                mut keys,
            } => {
                // Only the keys of the mailboxes acknowledged.
                keys.retain(|k| items.iter().any(|(m, _)| *m == k.address()));
                keys.truncate(MAX_ACK_KEYS);
                let addrs: Vec<[u8; 32]> = keys.iter().map(|k| k.address()).collect();
                let items: Vec<_> = items
                    .into_iter()
                    .filter(|(m, _)| addrs.contains(m))
                    .collect();
                if items.is_empty() {
                    if more {
                        self.fetch_from(day, host);
                    }
                    return;
                }
                (
                    MailboxRequest::ack(
                        challenge,
                        &keys,
                        items,
                        &host.to_bytes(),
                        &client.to_bytes(),
                    ),
                    MailboxAsk::Ack { host, day, more },
                )
            }
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not make a mailbox request");
                self.fetching.remove(&(day, host));
                self.push.inflight.remove(&(day, host));
                return;
            }
        };
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        match self.net.send(day, &host, addrs, request) {
            Some(id) => {
                self.mailbox_inflight.insert(id, ask);
            }
            None => {
                self.fetching.remove(&(day, host));
                self.push.inflight.remove(&(day, host));
            }
        }
    }

    /// Fetch from every host (and from this node's own hosted mailboxes,
    /// `own`, if it hosts some): today's mailboxes now, another day's
    /// (yesterday's, an invite's of yesterday) at a random moment before
    /// the next poll, so that two days' identities do not reach the hosts
    /// at the same moments ([`Self::poll_later`]).
    /// Suspended, nothing is fetched (see [`CircleClient::wake`]); in the
    /// background with push, only every `background_poll_interval`. Push
    /// registrations are renewed where the day's mailboxes changed.
    pub(crate) fn poll_mailboxes(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        own: Option<&mut MailboxHost>,
    ) {
        if self.suspended {
            return;
        }
        self.register_push_all();
        let quiet = self.quiet();
        let period = if quiet {
            self.config.background_poll_interval
        } else {
            self.config.mailbox_poll_interval
        };
        // Half a timer period of slack, so that a tick a hair early does
        // not skip a whole period.
        let slack = self.config.mailbox_poll_interval / 2;
        if self
            .last_poll
            .is_some_and(|at| at.elapsed() + slack < period)
        {
            return;
        }
        self.last_poll = Some(Instant::now());
        // Quiet, the other days' mailboxes are fetched within a few
        // seconds, as after a wake-up: one radio burst, and the connections
        // close right after, not a quarter of an hour later.
        let spread = if quiet {
            super::push::WAKE_SPREAD
        } else {
            period
        };
        self.poll_round(swarm, own, spread);
    }

    /// Fetch today's mailboxes from every host now, the other days' at a
    /// random moment within `spread`.
    pub(super) fn poll_round(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        own: Option<&mut MailboxHost>,
        spread: std::time::Duration,
    ) {
        let today = epoch_of(self.clock.now());
        let mut days: Vec<u64> = self.keys_to_poll().into_iter().map(|(d, _)| d).collect();
        days.sort_unstable();
        days.dedup();
        let hosts: Vec<PeerId> = self.remote_hosts().into_iter().map(|(p, _)| p).collect();
        let period = spread;
        for day in days {
            if day == today {
                for h in &hosts {
                    self.fetch_from(day, *h);
                }
            } else {
                let delay = period.mul_f64(rand::random::<f64>());
                self.later_polls.insert(day, Instant::now() + delay);
            }
        }
        if let Some(own) = own {
            let now = self.clock.now();
            let mailboxes = self.circle.mailboxes_to_poll(&self.identity, now);
            if mailboxes.is_empty() {
                return;
            }
            match own.fetch(&mailboxes) {
                Ok((items, _)) if !items.is_empty() => {
                    let done = self.take_mail(swarm, items);
                    if let Err(e) = own.ack(&done) {
                        tracing::error!(error = %e, "could not delete own fetched mail");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not read own mailboxes"),
                _ => {}
            }
        }
    }
}
