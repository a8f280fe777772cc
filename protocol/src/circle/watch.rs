//! The receiving side: what contacts' journey and SOS messages mean for the
//! person watching over them.
//!
//! [`Watch::receive`] takes what [`crate::circle::Circle::open`] accepted and
//! returns at most one [`Notice`] for the app to show, applying the
//! receiver's rules (`docs/circle.md` §9):
//!
//! * one overdue per journey (the phone's own and the relay's copy of the
//!   dead-man's alert are the same event);
//! * an overdue, a position or an update for a journey that ended (arrived
//!   or cancelled) is ignored: a relay that releases an alert it should have
//!   withdrawn raises no false alarm once the arrival got through;
//! * positions stop being shown 8 hours after the journey was first seen,
//!   by the receiver's clock, whatever the sender says;
//! * one alert per SOS id; re-sends only update it.
//! * a parents'-mode journey (`states_only`) shows its states; a position
//!   for it is dropped (neither shown nor kept) until an alert fired for it
//!   (deviated, overdue, duress);
//! * a duress notice (the person "cancelled" under coercion) is an alert; it
//!   leaves the SOS or journey open, so its positions keep being shown,
//!   until a real cancel or arrival (the all-clear).
//!
//! Sans-IO and bounded ([`MAX_WATCHED`] journeys and SOS); serializable.

use crate::circle::identity::ContactId;
use crate::circle::limits::{MAX_JOURNEY_SECS, SWITCH_SLACK_SECS};
use crate::circle::message::{Deviation, Fix, Message, Place, StatesOnly};
use crate::circle::MessageId;

/// Most journeys, and most SOS, remembered at once (the oldest go first).
pub const MAX_WATCHED: usize = 256;
/// How long an SOS is remembered after it was first seen.
pub const SOS_MEMORY_SECS: u64 = 2 * 86_400;

/// Something to show the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A contact started a journey.
    JourneyStarted {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
        /// Where to.
        destination: Place,
        /// Expected arrival (sender's clock).
        expected_arrival: u64,
        /// When they become overdue (sender's clock).
        overdue_at: u64,
        /// Parents' mode: only states will be shared.
        states_only: Option<StatesOnly>,
    },
    /// A contact changed the expected arrival of a journey.
    JourneyChanged {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
        /// The new expected arrival.
        expected_arrival: u64,
        /// When they become overdue.
        overdue_at: u64,
    },
    /// Where a contact on a journey is.
    Position {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
        /// The position.
        fix: Fix,
    },
    /// A contact arrived.
    Arrived {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
    },
    /// A contact ended a journey without arriving.
    JourneyCancelled {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
    },
    /// A contact is overdue, or their phone fell silent: alert.
    Overdue {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
        /// When they expected to arrive.
        expected_arrival: u64,
        /// Their last known position.
        last_seen: Option<Fix>,
    },
    /// A contact on a parents'-mode journey left the corridor or stopped:
    /// alert (their positions follow).
    Deviated {
        /// Who.
        from: ContactId,
        /// Which journey.
        journey: MessageId,
        /// Off the route or stopped.
        reason: Deviation,
        /// Where and when.
        fix: Fix,
    },
    /// A contact "cancelled" an SOS or "ended" a journey with their duress
    /// code: they may be under coercion. Alert; their screen shows it
    /// cancelled, so do not call them in a way that gives them away.
    Duress {
        /// Who.
        from: ContactId,
        /// Which SOS or journey.
        of: MessageId,
        /// When (sender's clock).
        at: u64,
    },
    /// A contact raised an SOS: alert, and ack once the person has seen it.
    Sos {
        /// Who.
        from: ContactId,
        /// Which SOS (ack this id).
        sos: MessageId,
        /// When it was raised (sender's clock).
        at: u64,
        /// Where they are, if known.
        place: Option<Place>,
        /// Their note.
        note: String,
    },
    /// A new position for an SOS already shown.
    SosUpdated {
        /// Who.
        from: ContactId,
        /// Which SOS.
        sos: MessageId,
        /// Where they are now.
        place: Option<Place>,
    },
    /// A contact cancelled their SOS.
    SosCancelled {
        /// Who.
        from: ContactId,
        /// Which SOS.
        sos: MessageId,
    },
    /// A contact acknowledged one of my journeys or SOS (feed it to
    /// [`crate::circle::Sos::ack`]).
    Acked {
        /// Who.
        from: ContactId,
        /// What.
        of: MessageId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Watched {
    from: ContactId,
    id: MessageId,
    first_seen: u64,
    ended: bool,
    alerted: bool,
    place: Option<Place>,
    #[serde(default)]
    states_only: bool,
}

/// What the person knows of their contacts' journeys and SOS.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Watch {
    journeys: Vec<Watched>,
    sos: Vec<Watched>,
}

fn find<'a>(
    list: &'a mut Vec<Watched>,
    from: &ContactId,
    id: &MessageId,
    now: u64,
) -> (&'a mut Watched, bool) {
    if let Some(i) = list.iter().position(|w| &w.from == from && &w.id == id) {
        return (&mut list[i], false);
    }
    if list.len() >= MAX_WATCHED {
        // The oldest goes.
        if let Some(i) = (0..list.len()).min_by_key(|&i| list[i].first_seen) {
            list.remove(i);
        }
    }
    list.push(Watched {
        from: *from,
        id: *id,
        first_seen: now,
        ended: false,
        alerted: false,
        place: None,
        states_only: false,
    });
    let last = list.len() - 1;
    (&mut list[last], true)
}

impl Watch {
    /// Nothing watched yet.
    pub fn new() -> Watch {
        Watch::default()
    }

    /// Forget journeys past the 8-hour cap and SOS older than
    /// [`SOS_MEMORY_SECS`].
    pub fn prune(&mut self, now: u64) {
        let journey_end = MAX_JOURNEY_SECS + SWITCH_SLACK_SECS + 3600;
        self.journeys
            .retain(|w| now < w.first_seen.saturating_add(journey_end));
        self.sos
            .retain(|w| now < w.first_seen.saturating_add(SOS_MEMORY_SECS));
    }

    /// A message from contact `from`, accepted by the circle at `now`.
    pub fn receive(&mut self, from: &ContactId, message: &Message, now: u64) -> Option<Notice> {
        let from = *from;
        match message {
            Message::JourneyStarted {
                journey,
                destination,
                expected_arrival,
                grace_secs,
                states_only,
                ..
            } => {
                let (w, new) = find(&mut self.journeys, &from, journey, now);
                let overdue_at = expected_arrival.saturating_add(u64::from(*grace_secs));
                if new {
                    w.states_only = states_only.is_some();
                    Some(Notice::JourneyStarted {
                        from,
                        journey: *journey,
                        destination: *destination,
                        expected_arrival: *expected_arrival,
                        overdue_at,
                        states_only: *states_only,
                    })
                } else if w.ended || w.alerted {
                    None
                } else {
                    Some(Notice::JourneyChanged {
                        from,
                        journey: *journey,
                        expected_arrival: *expected_arrival,
                        overdue_at,
                    })
                }
            }
            Message::Position { journey, fix } => {
                let (w, _) = find(&mut self.journeys, &from, journey, now);
                if w.ended
                    || (w.states_only && !w.alerted)
                    || now >= w.first_seen.saturating_add(MAX_JOURNEY_SECS)
                {
                    return None;
                }
                Some(Notice::Position {
                    from,
                    journey: *journey,
                    fix: *fix,
                })
            }
            Message::Arrived { journey, .. } | Message::JourneyCancelled { journey, .. } => {
                let (w, _) = find(&mut self.journeys, &from, journey, now);
                if w.ended {
                    return None;
                }
                w.ended = true;
                Some(if matches!(message, Message::Arrived { .. }) {
                    Notice::Arrived {
                        from,
                        journey: *journey,
                    }
                } else {
                    Notice::JourneyCancelled {
                        from,
                        journey: *journey,
                    }
                })
            }
            Message::Overdue {
                journey,
                expected_arrival,
                last_seen,
            } => {
                let (w, _) = find(&mut self.journeys, &from, journey, now);
                if w.ended || w.alerted {
                    return None;
                }
                w.alerted = true;
                Some(Notice::Overdue {
                    from,
                    journey: *journey,
                    expected_arrival: *expected_arrival,
                    last_seen: *last_seen,
                })
            }
            Message::Deviated {
                journey,
                reason,
                fix,
            } => {
                let (w, _) = find(&mut self.journeys, &from, journey, now);
                if w.ended {
                    return None;
                }
                w.alerted = true;
                Some(Notice::Deviated {
                    from,
                    journey: *journey,
                    reason: *reason,
                    fix: *fix,
                })
            }
            Message::Duress { of, at } => {
                // An SOS if one with this id is known, else a journey.
                let list = if self.sos.iter().any(|w| w.from == from && &w.id == of) {
                    &mut self.sos
                } else {
                    &mut self.journeys
                };
                let (w, _) = find(list, &from, of, now);
                if w.ended {
                    return None;
                }
                w.alerted = true;
                Some(Notice::Duress {
                    from,
                    of: *of,
                    at: *at,
                })
            }
            Message::Sos {
                sos,
                at,
                place,
                note,
            } => {
                let (w, new) = find(&mut self.sos, &from, sos, now);
                if new {
                    w.place = *place;
                    return Some(Notice::Sos {
                        from,
                        sos: *sos,
                        at: *at,
                        place: *place,
                        note: note.clone(),
                    });
                }
                if w.ended || w.place == *place {
                    return None;
                }
                w.place = *place;
                Some(Notice::SosUpdated {
                    from,
                    sos: *sos,
                    place: *place,
                })
            }
            Message::SosCancelled { sos, .. } => {
                let (w, _) = find(&mut self.sos, &from, sos, now);
                if w.ended {
                    return None;
                }
                w.ended = true;
                Some(Notice::SosCancelled { from, sos: *sos })
            }
            Message::Ack { of } => Some(Notice::Acked { from, of: *of }),
            Message::Accept { .. } | Message::Confirm | Message::Leave => None,
        }
    }
}
