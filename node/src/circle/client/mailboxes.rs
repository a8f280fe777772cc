//! The client of the mailbox hosts (`/ronde/mailbox/1`): the answers to
//! this node's puts, fetches, acknowledgements and switch requests, and
//! the polling of this person's mailboxes (at the remote hosts, and in
//! this node's own host side if it hosts some).
//!
//! A fetch and an acknowledgement at a remote host each take two round
//! trips: a challenge, then the request signed by the mailbox keys for
//! that challenge, that host and this node's peer id.

use libp2p::request_response;
use libp2p::swarm::Swarm;
use libp2p::PeerId;

use super::{CircleClient, MailboxAsk, Proven};
use crate::behaviour::Behaviour;
use crate::circle::host::MailboxHost;
use crate::circle::wire::{
    MailItem, MailboxRequest, MailboxResponse, MAX_ACK_ITEMS, MAX_ACK_KEYS, MAX_FETCH_MAILBOXES,
};

impl CircleClient {
    /// Answers to this node's own `/ronde/mailbox/1` requests, and their
    /// failures (the requests of other nodes are the host side's).
    pub(crate) fn on_mailbox_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(ask) = self.mailbox_inflight.remove(&request_id) {
                    self.mailbox_answer(swarm, peer, ask, Some(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "mailbox request failed");
                if let Some(ask) = self.mailbox_inflight.remove(&request_id) {
                    self.mailbox_answer(swarm, peer, ask, None);
                }
            }
            request_response::Event::Message { .. }
            | request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
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
            MailboxAsk::Challenge { host, then } => match (response, then) {
                (Some(MailboxResponse::Challenge(c)), then) => {
                    self.send_proven(swarm, host, c, then)
                }
                (other, Proven::Fetch) => {
                    self.fetching.remove(&host);
                    if let Some(MailboxResponse::Refused(r)) = other {
                        tracing::debug!(%peer, refusal = %r, "mailbox challenge refused");
                    }
                }
                (_, Proven::Ack { .. }) => {}
            },
            MailboxAsk::Fetch { host } => {
                self.fetching.remove(&host);
                match response {
                    Some(MailboxResponse::Mail { more, items }) => {
                        // The keys that fetched them, before processing the
                        // mail can retire any.
                        let mut keys = self.keys_to_poll();
                        keys.retain(|k| items.iter().any(|i| i.mailbox == k.address()));
                        let processed = self.take_mail(swarm, items);
                        if !processed.is_empty() {
                            for (i, chunk) in processed.chunks(MAX_ACK_ITEMS).enumerate() {
                                self.ask_challenge(
                                    swarm,
                                    host,
                                    Proven::Ack {
                                        items: chunk.to_vec(),
                                        more: more && i == 0,
                                        keys: keys.clone(),
                                    },
                                );
                            }
                        } else if more {
                            self.fetch_from(swarm, host);
                        }
                    }
                    Some(MailboxResponse::Refused(r)) => {
                        tracing::debug!(%peer, refusal = %r, "mailbox fetch refused")
                    }
                    _ => {}
                }
            }
            MailboxAsk::Ack { host, more } => {
                if more {
                    self.fetch_from(swarm, host);
                }
            }
            MailboxAsk::Switch { host, id } => {
                self.switch_inflight.remove(&host);
                self.switch_answer(swarm, host, id, response);
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

    pub(super) fn fetch_from(&mut self, swarm: &mut Swarm<Behaviour>, host: PeerId) {
        if self.fetching.contains(&host) {
            return;
        }
        if self.keys_to_poll().is_empty() {
            return;
        }
        self.fetching.insert(host);
        self.ask_challenge(swarm, host, Proven::Fetch);
    }

    /// Ask `host` for a challenge, to send `then` with.
    fn ask_challenge(&mut self, swarm: &mut Swarm<Behaviour>, host: PeerId, then: Proven) {
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        let id = swarm.behaviour_mut().mailbox.send_request_with_addresses(
            &host,
            MailboxRequest::Challenge,
            addrs,
        );
        self.mailbox_inflight
            .insert(id, MailboxAsk::Challenge { host, then });
    }

    /// Send `then`, proving this person's mailbox keys for `challenge`.
    fn send_proven(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        host: PeerId,
        challenge: [u8; 32],
        then: Proven,
    ) {
        let (request, ask) = match then {
            Proven::Fetch => {
                let mut keys = self.keys_to_poll();
                keys.truncate(MAX_FETCH_MAILBOXES);
                (
                    MailboxRequest::fetch(
                        challenge,
                        &keys,
                        &host.to_bytes(),
                        &self.local_peer.to_bytes(),
                    ),
                    MailboxAsk::Fetch { host },
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
                        self.fetch_from(swarm, host);
                    }
                    return;
                }
                (
                    MailboxRequest::ack(
                        challenge,
                        &keys,
                        items,
                        &host.to_bytes(),
                        &self.local_peer.to_bytes(),
                    ),
                    MailboxAsk::Ack { host, more },
                )
            }
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not make a mailbox request");
                self.fetching.remove(&host);
                return;
            }
        };
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        let id = swarm
            .behaviour_mut()
            .mailbox
            .send_request_with_addresses(&host, request, addrs);
        self.mailbox_inflight.insert(id, ask);
    }

    /// Fetch from every host (and from this node's own hosted mailboxes,
    /// `own`, if it hosts some).
    pub(crate) fn poll_mailboxes(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        own: Option<&mut MailboxHost>,
    ) {
        let hosts: Vec<PeerId> = self.remote_hosts().into_iter().map(|(p, _)| p).collect();
        for h in hosts {
            self.fetch_from(swarm, h);
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
