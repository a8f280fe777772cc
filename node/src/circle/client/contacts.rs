//! Contacts: invites, accepts, approvals and removals, finding a contact
//! by id or name, and what the API shows of them.

use libp2p::multiaddr::Protocol;
use libp2p::swarm::Swarm;
use libp2p::Multiaddr;
use rand::rngs::OsRng;
use ronde_protocol::circle::short_invite::{RendezvousKeys, ShortCode};
use ronde_protocol::circle::{
    epoch_of, safety_number, ContactId, ContactState, Invite, InviteError,
};

use super::store::{keys, Commit, OutItem};
use super::{circle_refusal, storage, CircleClient, INVITE_ADDRESSES};
use crate::behaviour::Behaviour;
use crate::circle::host::MailboxHost;
use crate::circle::views::{CircleStatus, ContactList, ContactView, InviteView};
use crate::error::{CircleRefusal, NodeError};

fn is_loopback(a: &Multiaddr) -> bool {
    a.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

impl CircleClient {
    pub(super) fn status(&self, hosted: Option<&MailboxHost>) -> CircleStatus {
        CircleStatus {
            identity: self.identity.public().to_string(),
            contacts: self.circle.contacts().count(),
            queued: self.outbox.len(),
            mailbox_hosts: self.hosts.len(),
            hosting: hosted.is_some(),
            hosted_envelopes: hosted.map_or(0, |h| h.len()),
            hosted_switches: hosted.map_or(0, |h| h.switches()),
            codes: self.has_codes(),
        }
    }

    pub(super) fn safety_number_of(&mut self, id: &ContactId) -> String {
        if let Some(s) = self.safety_numbers.get(id) {
            return s.clone();
        }
        let Some(c) = self.circle.contact(id) else {
            return String::new();
        };
        let s = safety_number(self.identity.public(), &c.identity).to_string();
        self.safety_numbers.insert(*id, s.clone());
        s
    }

    pub(super) fn contact_view(&mut self, id: &ContactId) -> Option<ContactView> {
        let safety_number = self.safety_number_of(id);
        let queued = self.outbox.values().filter(|i| &i.to == id).count();
        let c = self.circle.contact(id)?;
        Some(ContactView {
            id: *id,
            name: c.name.clone(),
            state: c.state,
            safety_number,
            since: c.since,
            queued,
        })
    }

    pub(super) fn contact_list(&mut self) -> ContactList {
        let ids: Vec<ContactId> = self.circle.contacts().map(|(id, _)| *id).collect();
        let contacts = ids.iter().filter_map(|id| self.contact_view(id)).collect();
        let now = self.clock.now();
        ContactList {
            contacts,
            pending_invites: self
                .circle
                .pending_invites()
                .iter()
                .filter(|i| now < i.expires_at)
                .count(),
        }
    }

    /// Find a contact by id, id prefix (at least 4 hex digits) or name.
    pub(super) fn resolve(&self, query: &str) -> Result<ContactId, NodeError> {
        let q = query.trim();
        let lower = q.to_lowercase();
        let is_hex = lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit());
        let matches: Vec<ContactId> = self
            .circle
            .contacts()
            .filter(|(id, c)| {
                (is_hex && id.to_hex().starts_with(&lower)) || c.name.to_lowercase() == lower
            })
            .map(|(id, _)| *id)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(NodeError::Circle(CircleRefusal::UnknownContact(
                q.to_owned(),
            ))),
            _ => Err(NodeError::Circle(CircleRefusal::AmbiguousContact(
                q.to_owned(),
            ))),
        }
    }

    /// How contacts can reach this node: public then relayed then local
    /// addresses, each with our peer id.
    pub(super) fn my_addresses(&self, swarm: &Swarm<Behaviour>) -> Vec<String> {
        let mut ranked: Vec<(u8, Multiaddr)> = Vec::new();
        for a in swarm.external_addresses() {
            ranked.push((0, a.clone()));
        }
        for a in swarm.listeners() {
            let circuit = a.iter().any(|p| matches!(p, Protocol::P2pCircuit));
            let rank = if circuit {
                1
            } else if is_loopback(a) {
                3
            } else {
                2
            };
            ranked.push((rank, a.clone()));
        }
        ranked.sort_by_key(|(r, _)| *r);
        let mut out: Vec<String> = Vec::new();
        for (_, mut a) in ranked {
            if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.push(Protocol::P2p(self.local_peer));
            }
            let s = a.to_string();
            if s.len() <= 200 && !out.contains(&s) {
                out.push(s);
            }
            if out.len() == INVITE_ADDRESSES {
                break;
            }
        }
        out
    }

    pub(super) fn remember_name(
        &mut self,
        name: Option<String>,
        commit: &mut Commit,
    ) -> Result<String, NodeError> {
        match name {
            Some(n) => {
                let n = n.trim().to_owned();
                if n != self.profile.name {
                    self.profile.name = n.clone();
                    commit.put(keys::PROFILE, &self.profile).map_err(storage)?;
                }
                Ok(n)
            }
            None => Ok(self.profile.name.clone()),
        }
    }

    pub(super) fn invite(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        name: Option<String>,
        ttl_secs: u64,
        short: Option<(ShortCode, RendezvousKeys)>,
    ) -> Result<InviteView, NodeError> {
        let now = self.clock.now();
        let addresses = self.my_addresses(swarm);
        let mut commit = Commit::new();
        let old_profile = self.profile.clone();
        let name = self.remember_name(name, &mut commit)?;
        let mut circle = self.circle.clone();
        let invite = match circle.create_invite(&name, addresses, now, ttl_secs, &mut OsRng) {
            Ok(i) => i,
            Err(e) => {
                self.profile = old_profile;
                return Err(circle_refusal(e));
            }
        };
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        if let Err(e) = self.store.apply(commit) {
            self.profile = old_profile;
            return Err(storage(e));
        }
        self.circle = circle;
        tracing::debug!("invite created");
        let code = invite.to_code();
        let short_code = match short {
            Some((short, keys)) => {
                match self.leave_short_invite(swarm, &code, &keys, invite.expires_at) {
                    Ok(true) => Some(short.to_string()),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not leave the invite under a short code");
                        None
                    }
                }
            }
            None => None,
        };
        Ok(InviteView {
            code,
            qr: invite.to_qr_string(),
            name,
            expires_at: invite.expires_at,
            short_code,
        })
    }

    pub(super) fn accept(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        code: &str,
        name: Option<String>,
    ) -> Result<ContactView, NodeError> {
        let now = self.clock.now();
        let invite = Invite::from_code(code).map_err(|e| {
            NodeError::Circle(match e {
                InviteError::BadKey(_) => CircleRefusal::BadInvite(e.to_string()),
                e => CircleRefusal::BadInvite(e.to_string()),
            })
        })?;
        let addresses = self.my_addresses(swarm);
        let mut commit = Commit::new();
        let old_profile = self.profile.clone();
        let name = self.remember_name(name, &mut commit)?;
        let mut circle = self.circle.clone();
        let (id, envelope) = match circle.accept_invite(
            &self.identity,
            &invite,
            &name,
            addresses,
            now,
            &mut OsRng,
        ) {
            Ok(x) => x,
            Err(e) => {
                self.profile = old_profile;
                return Err(circle_refusal(e));
            }
        };
        let seq = self.store.next_id().map_err(storage)?;
        let item = OutItem {
            to: id,
            envelope,
            mailbox: Some(invite.mailbox_address()),
            peers: invite.addresses.clone(),
            critical: false,
            created_at: now,
        };
        commit.enqueue(seq, &item).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        if let Err(e) = self.store.apply(commit) {
            self.profile = old_profile;
            return Err(storage(e));
        }
        self.circle = circle;
        tracing::debug!("invite accepted; waiting for the other side's approval");
        self.outbox.insert(seq, item);
        self.deliver(swarm, seq);
        self.contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(id.to_hex())))
    }

    pub(super) fn approve(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        query: &str,
        compared: Option<&str>,
    ) -> Result<ContactView, NodeError> {
        let id = self.resolve(query)?;
        let state = self.circle.contact(&id).map(|c| c.state);
        if let (Some(compared), Some(ContactState::AwaitingMyApproval)) = (compared, state) {
            let theirs = self
                .contact_view(&id)
                .map(|v| v.safety_number)
                .unwrap_or_default();
            if !same_safety_number(compared, &theirs) {
                return Err(NodeError::Circle(CircleRefusal::SafetyNumberMismatch));
            }
        }
        if state == Some(ContactState::Mutual) {
            return self
                .contact_view(&id)
                .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())));
        }
        let mut circle = self.circle.clone();
        let envelope = circle
            .approve(&self.identity, &id, &mut OsRng)
            .map_err(circle_refusal)?;
        self.queue_envelopes(swarm, circle, Commit::new(), vec![(id, envelope)], false)?;
        tracing::debug!("contact approved");
        self.contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())))
    }

    pub(super) fn remove(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        query: &str,
        notify: bool,
    ) -> Result<ContactView, NodeError> {
        let id = self.resolve(query)?;
        let view = self
            .contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())))?;
        let now = self.clock.now();
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        // Nothing else queued for them goes out.
        for (seq, item) in &self.outbox {
            if item.to == id {
                commit.dequeue(*seq);
            }
        }
        let mut leave = None;
        if notify {
            let mailbox = circle
                .outbound_mailbox(&self.identity, &id, epoch_of(now))
                .ok();
            let mut peers = circle
                .contact(&id)
                .map(|c| c.addresses.clone())
                .unwrap_or_default();
            if let Some(p) = self.learned.get(&id) {
                peers.insert(0, format!("/p2p/{p}"));
            }
            let envelope = circle
                .leave(&self.identity, &id, &mut OsRng)
                .map_err(circle_refusal)?;
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to: id,
                envelope,
                mailbox,
                peers,
                critical: false,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            leave = Some((seq, item));
        } else {
            circle.remove(&id);
        }
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.forget_contact(&id);
        if let Some((seq, item)) = leave {
            self.outbox.insert(seq, item);
            self.deliver(swarm, seq);
        }
        tracing::debug!(told = notify, "contact removed");
        self.rearm_after_removal(swarm);
        Ok(view)
    }

    /// Drop what memory holds about a contact that was removed (or left).
    pub(super) fn forget_contact(&mut self, id: &ContactId) {
        let gone: Vec<u64> = self
            .outbox
            .iter()
            .filter(|(_, i)| &i.to == id)
            .map(|(s, _)| *s)
            .collect();
        for s in gone {
            self.outbox.remove(&s);
            self.attempts.remove(&s);
        }
        self.learned.remove(id);
        self.direct_backoff.remove(id);
        self.safety_numbers.remove(id);
    }

    pub(super) fn mutual_ids(&self) -> Vec<ContactId> {
        self.circle.mutual_contacts().map(|(id, _)| *id).collect()
    }

    pub(super) fn name_of(&self, id: &ContactId) -> String {
        self.circle
            .contact(id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }
}

/// Whether the number the person compared is this safety number, digit for
/// digit (spaces and grouping as shown are ignored; every digit counts).
fn same_safety_number(compared: &str, theirs: &str) -> bool {
    let digits = |s: &str| -> Vec<u8> { s.bytes().filter(|b| !b.is_ascii_whitespace()).collect() };
    let (a, b) = (digits(compared), digits(theirs));
    !b.is_empty() && a == b
}
