//! The client of the mailbox hosts (`/ronde/mailbox/1`): the answers to
//! this node's puts, fetches, acknowledgements and switch requests, and
//! the polling of this person's mailboxes (at the remote hosts, and in
//! this node's own host side if it hosts some).

use libp2p::request_response;
use libp2p::swarm::Swarm;
use libp2p::PeerId;

use super::{CircleClient, MailboxAsk};
use crate::behaviour::Behaviour;
use crate::circle::host::MailboxHost;
use crate::circle::wire::{
    MailItem, MailboxRequest, MailboxResponse, MAX_ACK_ITEMS, MAX_FETCH_MAILBOXES,
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
            MailboxAsk::Fetch { host } => {
                self.fetching.remove(&host);
                match response {
                    Some(MailboxResponse::Mail { more, items }) => {
                        let processed = self.take_mail(swarm, items);
                        if !processed.is_empty() {
                            for chunk in processed.chunks(MAX_ACK_ITEMS) {
                                let id = swarm.behaviour_mut().mailbox.send_request(
                                    &host,
                                    MailboxRequest::Ack {
                                        items: chunk.to_vec(),
                                    },
                                );
                                self.mailbox_inflight.insert(id, MailboxAsk::Ack);
                            }
                        }
                        if more {
                            self.fetch_from(swarm, host);
                        }
                    }
                    Some(MailboxResponse::Refused(r)) => {
                        tracing::debug!(%peer, refusal = %r, "mailbox fetch refused")
                    }
                    _ => {}
                }
            }
            MailboxAsk::Ack => {}
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
        let now = self.clock.now();
        let mut mailboxes = self.circle.mailboxes_to_poll(&self.identity, now);
        mailboxes.truncate(MAX_FETCH_MAILBOXES);
        if mailboxes.is_empty() {
            return;
        }
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        let id = swarm.behaviour_mut().mailbox.send_request_with_addresses(
            &host,
            MailboxRequest::Fetch { mailboxes },
            addrs,
        );
        self.fetching.insert(host);
        self.mailbox_inflight.insert(id, MailboxAsk::Fetch { host });
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
