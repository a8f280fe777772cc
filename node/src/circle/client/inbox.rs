//! Receiving: every envelope (direct or from a mailbox) is opened against
//! the circle and goes, through the watch, into the inbox and the event
//! stream; the person acknowledging inbox items (an SOS or an overdue
//! journey is acknowledged to its sender once).

use std::collections::HashSet;

use libp2p::swarm::Swarm;
use libp2p::PeerId;
use rand::rngs::OsRng;
use ronde_protocol::circle::{safety_number, ContactEvent, ContactId, Message, Notice, OpenError};

use super::store::{keys, Commit};
use super::{storage, CircleClient, MAX_ACKS_REMEMBERED};
use crate::behaviour::Behaviour;
use crate::circle::views::{InboxItem, InboxNotice};
use crate::error::{NodeError, StoreError};
use crate::events::NodeEvent;

/// What an opened envelope leads to once the state is saved.
enum FollowUp {
    Reapprove(ContactId),
    Forget(ContactId),
}

/// A short reason for logs (no content).
fn open_reason(e: &OpenError) -> &'static str {
    match e {
        OpenError::BadLength(_) => "bad length",
        OpenError::UnsupportedVersion(_) => "unsupported version",
        OpenError::Decrypt => "does not open (misaddressed or tampered)",
        OpenError::BadPadding => "bad padding",
        OpenError::BadSender(_) => "bad sender key",
        OpenError::BadSignature => "bad signature",
        OpenError::Malformed(_) => "malformed",
        OpenError::Replay(_) => "replay",
        OpenError::StaleRelation => "an earlier relation",
        OpenError::UnknownSender => "unknown sender",
        OpenError::FromSelf => "from this identity",
        OpenError::NotAllowed { .. } => "not allowed from this contact now",
        OpenError::UnknownInvite => "unknown invite",
        OpenError::InviteExpired => "expired invite",
        OpenError::CircleFull => "circle full",
    }
}

impl CircleClient {
    pub(super) fn ack_inbox(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ids: &[u64],
    ) -> Result<Vec<u64>, NodeError> {
        let wanted: HashSet<u64> = ids.iter().copied().collect();
        let items = self.store.inbox().map_err(storage)?;
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        let mut queued = Vec::new();
        let mut acked = Vec::new();
        let mut acks_sent = self.acks_sent.clone();
        for mut item in items.into_iter().filter(|i| wanted.contains(&i.id)) {
            acked.push(item.id);
            if item.seen {
                continue;
            }
            item.seen = true;
            commit.inbox(&item).map_err(storage)?;
            let Some(of) = item.notice.ackable() else {
                continue;
            };
            if acks_sent.contains(&(item.from, of)) {
                continue;
            }
            self.seal_into(
                &mut circle,
                &[item.from],
                &Message::Ack { of },
                false,
                &mut commit,
                &mut queued,
            )?;
            acks_sent.push_back((item.from, of));
            while acks_sent.len() > MAX_ACKS_REMEMBERED {
                acks_sent.pop_front();
            }
        }
        commit.put(keys::ACKS, &acks_sent).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.acks_sent = acks_sent;
        self.send_queued(swarm, queued);
        Ok(acked)
    }

    /// Open an envelope and apply it. `Ok(false)` if it was refused;
    /// `Err` only if this node's storage failed (then nothing changed).
    pub(super) fn receive(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        bytes: &[u8],
        from_peer: Option<PeerId>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut circle = self.circle.clone();
        let received = match circle.open(&self.identity, bytes, now) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(reason = open_reason(&e), "envelope refused");
                return Ok(false);
            }
        };
        let from = received.from;
        let from_name = circle
            .contact(&from)
            .or_else(|| self.circle.contact(&from))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let mut watch = self.watch.clone();
        let mut journey = self.journey.clone();
        let mut sos = self.sos.clone();
        let mut notices = Vec::new();
        let mut follow = Vec::new();
        match received.event {
            Some(ContactEvent::Requested) => {
                let sn = circle
                    .contact(&from)
                    .map(|c| safety_number(self.identity.public(), &c.identity).to_string())
                    .unwrap_or_default();
                notices.push(InboxNotice::ContactRequest { safety_number: sn });
            }
            Some(ContactEvent::BecameMutual) => notices.push(InboxNotice::ContactMutual),
            Some(ContactEvent::AcceptRepeated) => follow.push(FollowUp::Reapprove(from)),
            Some(ContactEvent::Left) => {
                notices.push(InboxNotice::ContactLeft);
                follow.push(FollowUp::Forget(from));
            }
            None => {}
        }
        if received.message.kind() >= 0x10 {
            if let Some(n) = watch.receive(&from, &received.message, now) {
                match &n {
                    Notice::Acked { of, .. } => {
                        let mut recorded = false;
                        if let Some(s) = sos.as_mut().filter(|s| &s.sos.id() == of) {
                            recorded |= s.sos.ack(&from, of, now);
                        }
                        if let Some(j) = journey.as_mut().filter(|j| &j.journey.id() == of) {
                            if let std::collections::btree_map::Entry::Vacant(e) =
                                j.acks.entry(from)
                            {
                                e.insert(now);
                                recorded = true;
                            }
                        }
                        if recorded {
                            notices.push(InboxNotice::of(&n));
                        }
                    }
                    n => notices.push(InboxNotice::of(n)),
                }
            }
        }
        let mut commit = Commit::new();
        let mut items = Vec::new();
        for notice in notices {
            let item = InboxItem {
                id: self.store.next_id()?,
                received_at: now,
                from,
                from_name: from_name.clone(),
                alert: notice.is_alert(),
                seen: false,
                notice,
            };
            commit.inbox(&item)?;
            items.push(item);
        }
        for old in self.store.inbox_overflow(items.len())? {
            commit.drop_inbox(old);
        }
        if follow.iter().any(|f| matches!(f, FollowUp::Forget(_))) {
            for (seq, item) in &self.outbox {
                if item.to == from {
                    commit.dequeue(*seq);
                }
            }
        }
        commit.put(keys::CIRCLE, &circle)?;
        commit.put(keys::WATCH, &watch)?;
        if journey.is_some() {
            commit.put(keys::JOURNEY, &journey)?;
        }
        if sos.is_some() {
            commit.put(keys::SOS, &sos)?;
        }
        self.store.apply(commit)?;
        self.circle = circle;
        self.watch = watch;
        self.journey = journey;
        self.sos = sos;
        if let Some(p) = from_peer {
            if self.circle.contact(&from).is_some() {
                self.learned.insert(from, p);
                self.direct_backoff.remove(&from);
            }
        }
        for item in items {
            let event = if item.alert {
                tracing::debug!("alert received from the circle");
                NodeEvent::Alert(item)
            } else {
                tracing::debug!("circle message received");
                NodeEvent::Circle(item)
            };
            let _ = self.events.send(event);
        }
        for f in follow {
            match f {
                FollowUp::Reapprove(id) => {
                    let mut circle = self.circle.clone();
                    match circle.approve(&self.identity, &id, &mut OsRng) {
                        Ok(env) => {
                            if let Err(e) = self.queue_envelopes(
                                swarm,
                                circle,
                                Commit::new(),
                                vec![(id, env)],
                                false,
                            ) {
                                tracing::warn!(error = %e, "could not confirm a contact again");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "no confirm to repeat"),
                    }
                }
                FollowUp::Forget(id) => {
                    self.forget_contact(&id);
                    self.rearm_after_removal(swarm);
                }
            }
        }
        Ok(true)
    }
}
