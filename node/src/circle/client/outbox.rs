//! The outbox: sealing messages into envelopes queued in the same
//! transaction as their counters, and delivering each one directly over
//! `/ronde/circle/1` or to the mailbox hosts, with retries (see the
//! delivery rules in [`super`]).

use std::time::Instant;

use libp2p::request_response;
use libp2p::swarm::Swarm;
use libp2p::{Multiaddr, PeerId};
use rand::rngs::OsRng;
use ronde_protocol::circle::{epoch_of, Circle, ContactId, ContactState, Message};

use super::store::{keys, Commit, OutItem};
use super::{
    circle_refusal, peers_of, storage, Attempt, CircleClient, MailboxAsk, Phase,
    DIRECT_BACKOFF_SECS, OUTBOX_TTL_SECS, PUT_HOSTS,
};
use crate::behaviour::Behaviour;
use crate::circle::wire::{Delivery, MailboxRequest};
use crate::error::NodeError;

impl CircleClient {
    /// Seal `message` to `to` (those still mutual) into `commit`.
    pub(super) fn seal_into(
        &self,
        circle: &mut Circle,
        to: &[ContactId],
        message: &Message,
        critical: bool,
        commit: &mut Commit,
        queued: &mut Vec<(u64, OutItem)>,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        for id in to {
            if circle.contact(id).map(|c| c.state) != Some(ContactState::Mutual) {
                continue;
            }
            let envelope = circle
                .seal(&self.identity, id, message, &mut OsRng)
                .map_err(circle_refusal)?;
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to: *id,
                envelope,
                mailbox: None,
                peers: Vec::new(),
                critical,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            queued.push((seq, item));
        }
        Ok(())
    }

    /// Persist `circle` and queue already-sealed envelopes, then send.
    pub(super) fn queue_envelopes(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        circle: Circle,
        mut commit: Commit,
        envelopes: Vec<(ContactId, Vec<u8>)>,
        critical: bool,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        let mut queued = Vec::new();
        for (to, envelope) in envelopes {
            let peers = circle
                .contact(&to)
                .map(|c| c.addresses.clone())
                .unwrap_or_default();
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to,
                envelope,
                mailbox: None,
                peers,
                critical,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            queued.push((seq, item));
        }
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.send_queued(swarm, queued);
        Ok(())
    }

    pub(super) fn send_queued(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        queued: Vec<(u64, OutItem)>,
    ) {
        let seqs: Vec<u64> = queued.iter().map(|(s, _)| *s).collect();
        self.outbox.extend(queued);
        for s in seqs {
            self.deliver(swarm, s);
        }
    }

    pub(super) fn direct_target(
        &self,
        item: &OutItem,
        now: u64,
    ) -> Option<(PeerId, Vec<Multiaddr>)> {
        if self
            .direct_backoff
            .get(&item.to)
            .is_some_and(|until| now < *until)
        {
            return None;
        }
        if let Some(p) = self.learned.get(&item.to) {
            return Some((*p, Vec::new()));
        }
        let mut addrs = item.peers.clone();
        if let Some(c) = self.circle.contact(&item.to) {
            addrs.extend(c.addresses.iter().cloned());
        }
        peers_of(&addrs)
            .into_iter()
            .find(|(p, _)| *p != self.local_peer)
    }

    /// The hosts that take mail (not those listed for switches only).
    pub(super) fn remote_hosts(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.hosts
            .iter()
            .filter(|(p, _)| **p != self.local_peer)
            .filter(|(p, _)| self.host_meta.get(p).is_some_and(|m| m.mailbox))
            .map(|(p, a)| (*p, a.clone()))
            .collect()
    }

    /// Start (or restart) the delivery of one queued envelope.
    pub(super) fn deliver(&mut self, swarm: &mut Swarm<Behaviour>, seq: u64) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            return;
        };
        match self.attempts.get(&seq).map(|a| a.phase) {
            Some(Phase::Direct) | Some(Phase::Mailbox { .. }) => return,
            Some(Phase::Waiting(_)) | None => {}
        }
        let now = self.clock.now();
        let known = self.circle.contact(&item.to).is_some();
        if (!known && item.mailbox.is_none()) || now > item.created_at + OUTBOX_TTL_SECS {
            if known {
                tracing::warn!("a circle message could not be delivered within a week; dropped");
            }
            self.complete(seq);
            return;
        }
        match self.direct_target(&item, now) {
            Some((peer, addrs)) => {
                let id = swarm.behaviour_mut().circle.send_request_with_addresses(
                    &peer,
                    item.envelope.clone(),
                    addrs,
                );
                self.direct_inflight.insert(id, (seq, peer));
                self.attempts.insert(
                    seq,
                    Attempt {
                        phase: Phase::Direct,
                        direct_ok: false,
                    },
                );
            }
            None => self.via_mailboxes(seq, false),
        }
    }

    pub(super) fn via_mailboxes(&mut self, seq: u64, direct_ok: bool) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            self.attempts.remove(&seq);
            return;
        };
        let now = self.clock.now();
        let hosts = self.remote_hosts();
        let mailbox = match item.mailbox {
            Some(m) => Some(m),
            None => self
                .circle
                .outbound_mailbox(&self.identity, &item.to, epoch_of(now))
                .ok(),
        };
        let (Some(mailbox), false) = (mailbox, hosts.is_empty()) else {
            if direct_ok {
                self.complete(seq);
            } else {
                self.wait(seq);
            }
            return;
        };
        // Over today's connections: the mailbox is today's (or an
        // invite's or a short code's, of no day: today's then).
        let day = epoch_of(now);
        let mut pending = 0;
        for (peer, addrs) in hosts.into_iter().take(PUT_HOSTS) {
            let put = MailboxRequest::Put {
                mailbox,
                envelope: item.envelope.clone(),
            };
            if let Some(id) = self.net.send(day, &peer, addrs, put) {
                self.mailbox_inflight.insert(id, MailboxAsk::Put { seq });
                pending += 1;
            }
        }
        if pending == 0 {
            if direct_ok {
                self.complete(seq);
            } else {
                self.wait(seq);
            }
            return;
        }
        self.attempts.insert(
            seq,
            Attempt {
                phase: Phase::Mailbox { pending },
                direct_ok,
            },
        );
    }

    pub(super) fn wait(&mut self, seq: u64) {
        let until = Instant::now() + self.config.retry_interval;
        let direct_ok = self.attempts.get(&seq).is_some_and(|a| a.direct_ok);
        self.attempts.insert(
            seq,
            Attempt {
                phase: Phase::Waiting(until),
                direct_ok,
            },
        );
    }

    /// Delivered (or given up): out of the queue for good.
    pub(super) fn complete(&mut self, seq: u64) {
        self.attempts.remove(&seq);
        if self.outbox.remove(&seq).is_some() {
            let mut c = Commit::new();
            c.dequeue(seq);
            if let Err(e) = self.store.apply(c) {
                tracing::error!(error = %e, "could not dequeue a delivered circle message");
            }
        }
    }

    /// Retry what waits (all of it if `now_all`).
    pub(super) fn retry_outbox(&mut self, swarm: &mut Swarm<Behaviour>, now_all: bool) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .outbox
            .keys()
            .copied()
            .filter(|s| match self.attempts.get(s).map(|a| a.phase) {
                None => true,
                Some(Phase::Waiting(t)) => now_all || t <= now,
                Some(_) => false,
            })
            .collect();
        for s in due {
            self.deliver(swarm, s);
        }
    }

    pub(crate) fn on_circle_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<Vec<u8>, Delivery>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let answer = match self.receive(swarm, &request, Some(peer)) {
                        Ok(true) => Delivery::Accepted,
                        Ok(false) => Delivery::Refused,
                        Err(e) => {
                            tracing::error!(error = %e, "could not store a received circle message");
                            Delivery::Refused
                        }
                    };
                    if swarm
                        .behaviour_mut()
                        .circle
                        .send_response(channel, answer)
                        .is_err()
                    {
                        tracing::debug!(%peer, "the sender of an envelope went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((seq, peer)) = self.direct_inflight.remove(&request_id) {
                        self.direct_done(seq, peer, response == Delivery::Accepted);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "direct delivery failed");
                if let Some((seq, peer)) = self.direct_inflight.remove(&request_id) {
                    self.direct_done(seq, peer, false);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "an incoming envelope failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn direct_done(&mut self, seq: u64, peer: PeerId, ok: bool) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            self.attempts.remove(&seq);
            return;
        };
        if ok {
            tracing::debug!("circle message delivered directly");
            if item.critical {
                self.via_mailboxes(seq, true);
            } else {
                self.complete(seq);
            }
            return;
        }
        if self.learned.get(&item.to) == Some(&peer) {
            self.learned.remove(&item.to);
        }
        self.direct_backoff
            .insert(item.to, self.clock.now() + DIRECT_BACKOFF_SECS);
        self.via_mailboxes(seq, false);
    }

    pub(super) fn put_done(&mut self, seq: u64, stored: bool) {
        let Some(a) = self.attempts.get(&seq).copied() else {
            return;
        };
        let Phase::Mailbox { pending } = a.phase else {
            return;
        };
        if stored {
            tracing::debug!("circle message left in a mailbox");
            self.complete(seq);
            return;
        }
        let pending = pending.saturating_sub(1);
        if pending > 0 {
            self.attempts.insert(
                seq,
                Attempt {
                    phase: Phase::Mailbox { pending },
                    ..a
                },
            );
        } else if a.direct_ok {
            self.complete(seq);
        } else {
            self.wait(seq);
        }
    }
}
