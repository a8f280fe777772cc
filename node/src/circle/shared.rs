//! What contacts share with this person, folded from the inbox: each
//! contact's journey with its state, destination, expected arrival, last
//! position and path since the start, for the map and the journey cards
//! (`GET /v1/circle/journeys`).
//!
//! Pure: fed the inbox items (oldest first) and the current time. Nothing
//! here is stored: the positions are the inbox's own, deleted with it (a
//! day after the journey ended, `CircleConfig::inbox_position_retention_secs`).
//! A parents'-mode journey has no path: its positions arrive only with an
//! alert.

use ronde_protocol::circle::{ContactId, Deviation, MessageId};
use serde::{Deserialize, Serialize};

use super::views::{FixView, InboxItem, InboxNotice, PlaceView};

/// How long an ended journey stays listed (so that "arrived" is seen).
pub const ENDED_SHOWN_SECS: u64 = 3_600;

/// Most positions kept in one journey's path (the newest).
pub const MAX_PATH: usize = 500;

/// Where a contact's journey stands, as their contacts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedState {
    /// On the way.
    OnTheWay,
    /// Past the expected arrival plus grace, or the phone fell silent.
    Overdue,
    /// A parents'-mode journey left its corridor or stopped.
    Deviated,
    /// Ended with the duress code: their screen says it ended.
    Duress,
    /// Arrived.
    Arrived,
    /// Ended without arriving (with the real code, if codes are set).
    Cancelled,
}

impl SharedState {
    /// An alert the person should act on.
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            SharedState::Overdue | SharedState::Deviated | SharedState::Duress
        )
    }
}

/// One contact's journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedJourney {
    /// The journey.
    pub journey: MessageId,
    /// Who is travelling.
    pub from: ContactId,
    /// Their name when it started.
    pub from_name: String,
    /// Where it stands.
    pub state: SharedState,
    /// Why it deviated, for [`SharedState::Deviated`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation: Option<Deviation>,
    /// When its start arrived here (this node's clock).
    pub started_at: u64,
    /// Where to.
    pub destination: PlaceView,
    /// Expected arrival (their clock), after any added time.
    pub expected_arrival: u64,
    /// When they become overdue.
    pub overdue_at: u64,
    /// Parents' mode: only states are shared, no path.
    pub states_only: bool,
    /// The last position known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_position: Option<FixView>,
    /// Positions since the start, oldest first (at most [`MAX_PATH`]).
    pub path: Vec<FixView>,
    /// When it ended here (this node's clock), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// The inbox item of its latest alert, to acknowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_item: Option<u64>,
}

/// `GET /v1/circle/journeys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedJourneys {
    /// Alerts first, then journeys on the way, then ended ones; newest
    /// first within each.
    pub journeys: Vec<SharedJourney>,
}

/// Fold `items` (oldest first) into the contacts' journeys to show at
/// `now`: every journey not ended, and those ended less than
/// [`ENDED_SHOWN_SECS`] ago.
pub fn fold(items: &[InboxItem], now: u64) -> SharedJourneys {
    let mut journeys: Vec<SharedJourney> = Vec::new();
    for item in items {
        let id = match &item.notice {
            InboxNotice::JourneyStarted {
                journey,
                destination,
                expected_arrival,
                overdue_at,
                states_only,
            } => {
                if journeys.iter().all(|j| j.journey != *journey) {
                    journeys.push(SharedJourney {
                        journey: *journey,
                        from: item.from,
                        from_name: item.from_name.clone(),
                        state: SharedState::OnTheWay,
                        deviation: None,
                        started_at: item.received_at,
                        destination: destination.clone(),
                        expected_arrival: *expected_arrival,
                        overdue_at: *overdue_at,
                        states_only: *states_only,
                        last_position: None,
                        path: Vec::new(),
                        ended_at: None,
                        alert_item: None,
                    });
                }
                continue;
            }
            InboxNotice::JourneyChanged { journey, .. }
            | InboxNotice::Position { journey, .. }
            | InboxNotice::Arrived { journey }
            | InboxNotice::JourneyCancelled { journey }
            | InboxNotice::Overdue { journey, .. }
            | InboxNotice::Deviated { journey, .. } => *journey,
            InboxNotice::Duress { of, .. } => *of,
            _ => continue,
        };
        // Only the traveller speaks for a journey: an item from anyone else
        // naming it is ignored.
        let Some(j) = journeys
            .iter_mut()
            .find(|j| j.journey == id && j.from == item.from)
        else {
            continue;
        };
        apply(j, item);
    }
    journeys.retain(|j| j.ended_at.is_none_or(|at| at + ENDED_SHOWN_SECS > now));
    journeys.sort_by(|a, b| rank(b).cmp(&rank(a)).then(b.started_at.cmp(&a.started_at)));
    SharedJourneys { journeys }
}

fn apply(j: &mut SharedJourney, item: &InboxItem) {
    let ended = j.ended_at.is_some();
    match &item.notice {
        InboxNotice::JourneyChanged {
            expected_arrival,
            overdue_at,
            ..
        } if !ended => {
            j.expected_arrival = *expected_arrival;
            j.overdue_at = *overdue_at;
            if j.state == SharedState::Overdue {
                j.state = SharedState::OnTheWay;
            }
        }
        InboxNotice::Position { fix, .. } => add_fix(j, fix),
        InboxNotice::Arrived { .. } => end(j, SharedState::Arrived, item.received_at),
        InboxNotice::JourneyCancelled { .. } => end(j, SharedState::Cancelled, item.received_at),
        InboxNotice::Overdue { last_seen, .. } if !ended => {
            if let Some(f) = last_seen {
                add_fix(j, f);
            }
            alert(j, SharedState::Overdue, item.id);
        }
        InboxNotice::Deviated { reason, fix, .. } if !ended => {
            add_fix(j, fix);
            j.deviation = Some(*reason);
            alert(j, SharedState::Deviated, item.id);
        }
        // A duress end is the last word until the real code's all-clear:
        // it comes in place of the end the traveller's screen shows.
        InboxNotice::Duress { .. } => {
            j.ended_at = None;
            alert(j, SharedState::Duress, item.id);
        }
        _ => {}
    }
}

fn alert(j: &mut SharedJourney, state: SharedState, item: u64) {
    // Duress outranks the others: a later overdue does not hide it.
    if j.state != SharedState::Duress {
        j.state = state;
    }
    j.alert_item = Some(item);
}

fn end(j: &mut SharedJourney, state: SharedState, at: u64) {
    j.state = state;
    j.deviation = None;
    j.ended_at = Some(at);
}

fn add_fix(j: &mut SharedJourney, fix: &FixView) {
    if j.path.last() != Some(fix) {
        j.path.push(fix.clone());
        if j.path.len() > MAX_PATH {
            j.path.remove(0);
        }
    }
    if j.last_position.as_ref().is_none_or(|l| l.at <= fix.at) {
        j.last_position = Some(fix.clone());
    }
}

/// Alerts first, then journeys on the way, then ended ones.
fn rank(j: &SharedJourney) -> u8 {
    match j.state {
        s if s.is_alert() => 2,
        SharedState::OnTheWay => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: ContactId = ContactId([1; 32]);
    const MALLORY: ContactId = ContactId([9; 32]);
    const J: MessageId = MessageId([7; 16]);

    fn place(lat: f64) -> PlaceView {
        PlaceView {
            lat,
            lon: 2.39,
            accuracy_m: None,
            cell: None,
        }
    }

    fn fix(at: u64, lat: f64) -> FixView {
        FixView {
            at,
            place: place(lat),
        }
    }

    fn item(id: u64, from: ContactId, notice: InboxNotice) -> InboxItem {
        InboxItem {
            id,
            received_at: 1_000 + id * 60,
            from,
            from_name: "Alice".into(),
            alert: notice.is_alert(),
            seen: false,
            notice,
        }
    }

    fn started(id: u64, states_only: bool) -> InboxItem {
        item(
            id,
            ALICE,
            InboxNotice::JourneyStarted {
                journey: J,
                destination: place(48.82),
                expected_arrival: 2_000,
                overdue_at: 2_600,
                states_only,
            },
        )
    }

    fn pos(id: u64, lat: f64) -> InboxItem {
        item(
            id,
            ALICE,
            InboxNotice::Position {
                journey: J,
                fix: fix(1_000 + id * 60, lat),
            },
        )
    }

    #[test]
    fn a_journey_gathers_its_path_eta_and_state() {
        let items = vec![
            started(1, false),
            pos(2, 48.810),
            pos(3, 48.812),
            item(
                4,
                ALICE,
                InboxNotice::JourneyChanged {
                    journey: J,
                    expected_arrival: 2_600,
                    overdue_at: 3_200,
                },
            ),
            pos(5, 48.815),
        ];
        let s = fold(&items, 1_400);
        assert_eq!(s.journeys.len(), 1);
        let j = &s.journeys[0];
        assert_eq!(j.state, SharedState::OnTheWay);
        assert_eq!(j.expected_arrival, 2_600);
        assert_eq!(j.path.len(), 3);
        assert_eq!(j.last_position, Some(fix(1_300, 48.815)));
    }

    #[test]
    fn an_ended_journey_is_shown_an_hour_then_dropped() {
        let items = vec![
            started(1, false),
            pos(2, 48.81),
            item(3, ALICE, InboxNotice::Arrived { journey: J }),
        ];
        let arrived_at = items[2].received_at;
        let s = fold(&items, arrived_at + 10);
        assert_eq!(s.journeys[0].state, SharedState::Arrived);
        assert_eq!(s.journeys[0].ended_at, Some(arrived_at));
        assert!(fold(&items, arrived_at + ENDED_SHOWN_SECS)
            .journeys
            .is_empty());
    }

    #[test]
    fn duress_stays_an_alert_until_the_all_clear() {
        let mut items = vec![
            started(1, false),
            item(2, ALICE, InboxNotice::Duress { of: J, at: 1_100 }),
            item(
                3,
                ALICE,
                InboxNotice::Overdue {
                    journey: J,
                    expected_arrival: 2_000,
                    last_seen: Some(fix(1_150, 48.81)),
                },
            ),
        ];
        let j = &fold(&items, 5_000).journeys[0];
        assert_eq!(j.state, SharedState::Duress);
        assert_eq!(j.alert_item, Some(3));
        assert_eq!(j.last_position, Some(fix(1_150, 48.81)));
        items.push(item(4, ALICE, InboxNotice::JourneyCancelled { journey: J }));
        assert_eq!(
            fold(&items, 1_300).journeys[0].state,
            SharedState::Cancelled
        );
    }

    #[test]
    fn nobody_else_speaks_for_a_journey() {
        let items = vec![
            started(1, false),
            item(2, MALLORY, InboxNotice::Arrived { journey: J }),
            item(
                3,
                MALLORY,
                InboxNotice::Position {
                    journey: J,
                    fix: fix(1_200, 40.0),
                },
            ),
        ];
        let j = &fold(&items, 1_300).journeys[0];
        assert_eq!(j.state, SharedState::OnTheWay);
        assert!(j.path.is_empty());
    }

    #[test]
    fn alerts_come_first_and_parents_mode_has_no_path_before_an_alert() {
        let other = MessageId([8; 16]);
        let items = vec![
            started(1, true),
            item(
                2,
                ALICE,
                InboxNotice::JourneyStarted {
                    journey: other,
                    destination: place(48.9),
                    expected_arrival: 9_000,
                    overdue_at: 9_600,
                    states_only: false,
                },
            ),
            item(
                3,
                ALICE,
                InboxNotice::Deviated {
                    journey: J,
                    reason: Deviation::Stopped,
                    fix: fix(1_150, 48.80),
                },
            ),
        ];
        let s = fold(&items, 1_300);
        assert_eq!(s.journeys[0].journey, J);
        assert_eq!(s.journeys[0].state, SharedState::Deviated);
        assert!(s.journeys[0].states_only);
        assert_eq!(s.journeys[0].path.len(), 1);
        assert_eq!(s.journeys[1].journey, other);
    }
}
