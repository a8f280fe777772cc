//! Receiving: every envelope (direct or from a mailbox) is opened against
//! the circle and goes, through the watch, into the inbox and the event
//! stream; the person acknowledging inbox items (an SOS or an overdue
//! journey is acknowledged to its sender once).
//!
//! # Positions are not kept
//!
//! Items that carry a contact's position (a journey's destination and its
//! positions, an overdue alert's last position, an SOS and its updates) are
//! deleted [`crate::circle::CircleConfig::inbox_position_retention_secs`]
//! (a day by default) after their journey or SOS ended: when the arrival,
//! the cancellation or the SOS's cancellation arrived, or else after the
//! last item about it plus the longest a journey lasts
//! ([`MAX_JOURNEY_SECS`]) or, for an SOS, a day. The items that say how it
//! ended (arrived, cancelled) carry no position and stay. See
//! [`positions_to_forget`].

use std::collections::{HashMap, HashSet};

use libp2p::swarm::Swarm;
use libp2p::PeerId;
use rand::rngs::OsRng;
use ronde_protocol::circle::{
    safety_number, ContactEvent, ContactId, Message, MessageId, Notice, OpenError, MAX_JOURNEY_SECS,
};

use super::store::{keys, Commit};
use super::{storage, CircleClient, MAX_ACKS_REMEMBERED};
use crate::behaviour::Behaviour;
use crate::circle::views::{InboxItem, InboxNotice};
use crate::error::{NodeError, StoreError};
use crate::events::NodeEvent;

/// An SOS that never says it was cancelled is taken as over this long after
/// the last item about it.
const SOS_UNENDED_SECS: u64 = 86_400;

/// What a position-carrying item is about, and whether the item ends it.
fn subject(notice: &InboxNotice) -> Option<(MessageId, bool, bool)> {
    // (id, carries a position, ends it)
    match notice {
        InboxNotice::JourneyStarted { journey, .. } => Some((*journey, true, false)),
        InboxNotice::JourneyChanged { journey, .. } => Some((*journey, false, false)),
        InboxNotice::Position { journey, .. } | InboxNotice::Deviated { journey, .. } => {
            Some((*journey, true, false))
        }
        InboxNotice::Duress { of, .. } => Some((*of, false, false)),
        InboxNotice::Overdue {
            journey, last_seen, ..
        } => Some((*journey, last_seen.is_some(), false)),
        InboxNotice::Arrived { journey } | InboxNotice::JourneyCancelled { journey } => {
            Some((*journey, false, true))
        }
        InboxNotice::Sos { sos, place, .. } => Some((*sos, place.is_some(), false)),
        InboxNotice::SosUpdated { sos, place } => Some((*sos, place.is_some(), false)),
        InboxNotice::SosCancelled { sos } => Some((*sos, false, true)),
        _ => None,
    }
}

/// The ids of the inbox items (oldest first) that carry a position and
/// whose journey or SOS ended at least `retention` seconds before `now`
/// (see the module doc for when each one ends). Pure: the node calls it
/// on its housekeeping tick.
pub(crate) fn positions_to_forget(items: &[InboxItem], now: u64, retention: u64) -> Vec<u64> {
    // Per journey or SOS (and sender): when it ended, or its last item.
    let mut ended: HashMap<(ContactId, MessageId), u64> = HashMap::new();
    let mut last: HashMap<(ContactId, MessageId), (u64, bool)> = HashMap::new();
    for item in items {
        let Some((id, _, ends)) = subject(&item.notice) else {
            continue;
        };
        let key = (item.from, id);
        if ends {
            ended.entry(key).or_insert(item.received_at);
        }
        let is_sos = matches!(
            item.notice,
            InboxNotice::Sos { .. }
                | InboxNotice::SosUpdated { .. }
                | InboxNotice::SosCancelled { .. }
        );
        let e = last.entry(key).or_insert((item.received_at, is_sos));
        e.0 = e.0.max(item.received_at);
    }
    items
        .iter()
        .filter_map(|item| {
            let (id, carries, _) = subject(&item.notice)?;
            if !carries {
                return None;
            }
            let key = (item.from, id);
            let end = match ended.get(&key) {
                Some(t) => *t,
                None => {
                    let (t, is_sos) = last.get(&key).copied().unwrap_or((item.received_at, false));
                    t.saturating_add(if is_sos {
                        SOS_UNENDED_SECS
                    } else {
                        MAX_JOURNEY_SECS
                    })
                }
            };
            (now >= end.saturating_add(retention)).then_some(item.id)
        })
        .collect()
}

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
    /// Delete the inbox items whose positions are past their retention.
    pub(super) fn forget_old_positions(&mut self, now: u64) -> Result<usize, NodeError> {
        let items = self.store.inbox().map_err(storage)?;
        let old = positions_to_forget(&items, now, self.config.inbox_position_retention_secs);
        if old.is_empty() {
            return Ok(0);
        }
        let mut commit = Commit::new();
        for id in &old {
            commit.drop_inbox(*id);
        }
        self.store.apply(commit).map_err(storage)?;
        Ok(old.len())
    }

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
                    self.rearm_after_removal();
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circle::views::{FixView, PlaceView};

    const DAY: u64 = 86_400;

    fn item(id: u64, at: u64, notice: InboxNotice) -> InboxItem {
        InboxItem {
            id,
            received_at: at,
            from: ContactId([1; 32]),
            from_name: "Léa".into(),
            alert: false,
            seen: false,
            notice,
        }
    }

    fn place() -> PlaceView {
        PlaceView {
            lat: 48.8,
            lon: 2.38,
            accuracy_m: None,
            cell: None,
        }
    }

    #[test]
    fn an_ended_journey_keeps_its_positions_for_the_retention_only() {
        let j = MessageId([7; 16]);
        let items = vec![
            item(
                1,
                100,
                InboxNotice::JourneyStarted {
                    journey: j,
                    destination: place(),
                    expected_arrival: 900,
                    overdue_at: 1_800,
                    states_only: false,
                },
            ),
            item(
                2,
                200,
                InboxNotice::Position {
                    journey: j,
                    fix: FixView {
                        at: 200,
                        place: place(),
                    },
                },
            ),
            item(3, 600, InboxNotice::Arrived { journey: j }),
            item(4, 700, InboxNotice::ContactMutual),
        ];
        assert!(positions_to_forget(&items, 600 + DAY - 1, DAY).is_empty());
        // The arrival and other items carry no position: they stay.
        assert_eq!(positions_to_forget(&items, 600 + DAY, DAY), vec![1, 2]);
    }

    #[test]
    fn a_journey_or_sos_that_never_ended_is_taken_as_over_after_its_longest() {
        let j = MessageId([7; 16]);
        let s = MessageId([8; 16]);
        let items = vec![
            item(
                1,
                100,
                InboxNotice::Overdue {
                    journey: j,
                    expected_arrival: 50,
                    last_seen: Some(FixView {
                        at: 90,
                        place: place(),
                    }),
                },
            ),
            item(
                2,
                100,
                InboxNotice::Sos {
                    sos: s,
                    at: 100,
                    place: Some(place()),
                    note: String::new(),
                },
            ),
            item(
                3,
                5_000,
                InboxNotice::SosUpdated {
                    sos: s,
                    place: Some(place()),
                },
            ),
        ];
        let journey_over = 100 + MAX_JOURNEY_SECS + DAY;
        assert!(positions_to_forget(&items, journey_over - 1, DAY).is_empty());
        assert_eq!(positions_to_forget(&items, journey_over, DAY), vec![1]);
        // The SOS is over a day after its last update.
        let sos_over = 5_000 + SOS_UNENDED_SECS + DAY;
        assert_eq!(positions_to_forget(&items, sos_over - 1, DAY), vec![1]);
        assert_eq!(positions_to_forget(&items, sos_over, DAY), vec![1, 2, 3]);
    }
}
