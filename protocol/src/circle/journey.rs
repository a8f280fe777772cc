//! The journey state machine ("walk me home"), sans-IO.
//!
//! A person starts a journey to a destination with an expected arrival time
//! and a grace period. The machine turns that, the passing of time
//! ([`Journey::poll`]) and the person's actions ([`Journey::position`],
//! [`Journey::arrived`], [`Journey::cancel`], [`Journey::extend`]) into
//! [`Effect`]s for the node:
//!
//! * at start: tell the circle ([`Message::JourneyStarted`]), arm the
//!   dead-man's switch with a sealed [`Message::Overdue`], ask for a position;
//! * every `position_interval` while sharing: ask for a position, which the
//!   node reports back and the machine turns into a [`Message::Position`];
//! * exactly at `expected_arrival + grace` (not a second before) if the
//!   person has not arrived: a [`Message::Overdue`] with the last position,
//!   once; sharing goes on;
//! * arrival or cancellation: tell the circle, withdraw the switch, stop
//!   sharing;
//! * **at the latest 8 hours after the start ([`MAX_JOURNEY_SECS`]) sharing
//!   stops by itself** ([`Effect::StopSharing`]), whatever happened. To make
//!   that hold, a journey whose `expected_arrival + grace` would fall later
//!   is refused ([`JourneyError::TooLong`]) rather than silently clamped: the
//!   person must know when their contacts will be alerted.
//!
//! The switch is released [`SWITCH_SLACK_SECS`] after the overdue time, so a
//! phone that is still alive sends its own overdue (with the last position)
//! first; receivers handle one overdue per journey. With
//! [`JourneyConfig::silence_timeout`] set, the switch is also released if the
//! phone falls silent for that long: the machine sends heartbeats that keep
//! the release time at most that far ahead.

use rand_core::CryptoRngCore;

use crate::circle::limits::SWITCH_SLACK_SECS;
use crate::circle::message::{Deviation, Fix, Message, Place, StatesOnly};
use crate::circle::{Effect, MessageId};
use crate::geo::{distance_to_cell_m, distance_to_segment_m, haversine_m};

pub use crate::circle::limits::MAX_JOURNEY_SECS;
/// Longest grace period.
pub const MAX_GRACE_SECS: u64 = 3600;
/// Default grace period.
pub const DEFAULT_GRACE_SECS: u64 = 15 * 60;
/// Shortest position interval.
pub const MIN_POSITION_INTERVAL_SECS: u64 = 60;
/// Positions reported closer together than this are recorded but not sent,
/// which keeps a journey under 1 000 messages per contact (well within the
/// receiver's replay window, so the switch's alert, sealed at the start,
/// still opens at the end).
pub const MIN_POSITION_GAP_SECS: u64 = 30;
/// Shortest silence timeout.
pub const MIN_SILENCE_TIMEOUT_SECS: u64 = 5 * 60;
/// A position this close to the destination (metres; for a cell
/// destination, to the cell) makes [`Journey::near_destination`] true.
pub const ARRIVAL_RADIUS_M: f64 = 100.0;
/// Parents' mode: moving less than this (metres) counts as staying still,
/// which leaves room for a phone's position noise.
pub const STILL_RADIUS_M: f64 = 50.0;
/// Parents' mode: the narrowest corridor allowed (metres): narrower would
/// turn position noise into false alarms.
pub const MIN_CORRIDOR_M: u16 = 100;
/// Parents' mode: the shortest stop allowed (seconds): a red light or a bus
/// stop is not a deviation.
pub const MIN_STOP_SECS: u32 = 120;

/// How a journey ended on the person's screen when ended under duress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// "I arrived".
    Arrived,
    /// "Cancel the journey".
    Cancelled,
}

/// How a journey behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JourneyConfig {
    /// How often to ask for a position (seconds, ≥ 60). Default 5 minutes.
    pub position_interval: u64,
    /// If set, the switch is released when the phone has been silent this
    /// long (seconds, ≥ 5 minutes), even before the overdue time. Off by
    /// default: a phone in the metro would raise false alarms.
    pub silence_timeout: Option<u64>,
    /// How often to send heartbeats when `silence_timeout` is set (seconds,
    /// ≥ 60 and below the timeout). Default 5 minutes.
    pub heartbeat_interval: u64,
}

impl Default for JourneyConfig {
    fn default() -> Self {
        JourneyConfig {
            position_interval: 300,
            silence_timeout: None,
            heartbeat_interval: 300,
        }
    }
}

/// Where a journey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyState {
    /// Under way, on time.
    Active,
    /// Under way, past `expected_arrival + grace`; the circle was told.
    Overdue,
    /// The person arrived.
    Arrived,
    /// The person cancelled it.
    Cancelled,
    /// The 8-hour cap was reached.
    Expired,
}

/// Why a journey could not start or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JourneyError {
    /// The expected arrival is not in the future.
    #[error("the expected arrival must be in the future")]
    EtaNotInFuture,
    /// `expected_arrival + grace` is beyond the 8-hour cap.
    #[error(
        "a journey lasts at most 8 hours: arrive by {latest_eta} (Unix seconds) at the latest"
    )]
    TooLong {
        /// The latest expected arrival allowed with this grace.
        latest_eta: u64,
    },
    /// Grace over [`MAX_GRACE_SECS`].
    #[error("the grace period is at most {MAX_GRACE_SECS} seconds")]
    GraceTooLong,
    /// A configuration value out of range.
    #[error("invalid journey setting: {0}")]
    BadConfig(&'static str),
    /// The journey is over.
    #[error("the journey is over")]
    Ended,
    /// Too late to extend: the circle was already told.
    #[error("the journey is already overdue")]
    AlreadyOverdue,
}

/// One journey. Serializable, so the node can persist it across restarts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Journey {
    id: MessageId,
    started_at: u64,
    destination: Place,
    expected_arrival: u64,
    grace: u64,
    config: JourneyConfig,
    state: JourneyState,
    next_position_at: u64,
    next_heartbeat_at: Option<u64>,
    release_at: u64,
    last_fix: Option<Fix>,
    last_sent_fix_at: Option<u64>,
    /// Parents' mode.
    #[serde(default)]
    states_only: Option<StatesOnly>,
    /// Parents' mode: the first position (one end of the corridor).
    #[serde(default)]
    origin: Option<Fix>,
    /// Parents' mode: where and since when the phone stays still.
    #[serde(default)]
    still_since: Option<Fix>,
    /// An alert fired (deviated, overdue or duress): positions are shared.
    #[serde(default)]
    alerted: bool,
    /// Ended with the duress code: what the screen shows.
    #[serde(default)]
    duress: Option<Ending>,
    /// The last position lay within [`ARRIVAL_RADIUS_M`] of the destination.
    #[serde(default)]
    near_destination: bool,
}

fn check_config(c: &JourneyConfig) -> Result<(), JourneyError> {
    if c.position_interval < MIN_POSITION_INTERVAL_SECS {
        return Err(JourneyError::BadConfig("position_interval"));
    }
    if let Some(t) = c.silence_timeout {
        if !(MIN_SILENCE_TIMEOUT_SECS..=MAX_JOURNEY_SECS).contains(&t) {
            return Err(JourneyError::BadConfig("silence_timeout"));
        }
        if c.heartbeat_interval < 60 || c.heartbeat_interval >= t {
            return Err(JourneyError::BadConfig("heartbeat_interval"));
        }
    }
    Ok(())
}

impl Journey {
    /// Start a journey at `now` to `destination`, expected at
    /// `expected_arrival` (Unix seconds), overdue `grace_secs` later.
    pub fn start(
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        config: JourneyConfig,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Journey, Vec<Effect>), JourneyError> {
        Journey::start_with(
            None,
            destination,
            expected_arrival,
            grace_secs,
            config,
            now,
            rng,
        )
    }

    /// Start a parents'-mode journey: as [`Journey::start`], but only its
    /// states are shared (see the module doc).
    pub fn start_states_only(
        states_only: StatesOnly,
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        config: JourneyConfig,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Journey, Vec<Effect>), JourneyError> {
        Journey::start_with(
            Some(states_only),
            destination,
            expected_arrival,
            grace_secs,
            config,
            now,
            rng,
        )
    }

    /// [`Journey::start`] (`states_only: None`) or
    /// [`Journey::start_states_only`]. Parents' mode is refused with a
    /// corridor narrower than [`MIN_CORRIDOR_M`] or a stop shorter than
    /// [`MIN_STOP_SECS`].
    pub fn start_with(
        states_only: Option<StatesOnly>,
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        config: JourneyConfig,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Journey, Vec<Effect>), JourneyError> {
        if let Some(rule) = states_only {
            if rule.corridor_m < MIN_CORRIDOR_M {
                return Err(JourneyError::BadConfig("corridor_m"));
            }
            if rule.stop_secs < MIN_STOP_SECS {
                return Err(JourneyError::BadConfig("stop_secs"));
            }
        }
        check_config(&config)?;
        if grace_secs > MAX_GRACE_SECS {
            return Err(JourneyError::GraceTooLong);
        }
        check_eta(now, now, expected_arrival, grace_secs)?;
        let mut j = Journey {
            id: MessageId::random(rng),
            started_at: now,
            destination,
            expected_arrival,
            grace: grace_secs,
            config,
            state: JourneyState::Active,
            next_position_at: now + config.position_interval,
            next_heartbeat_at: config
                .silence_timeout
                .map(|_| now + config.heartbeat_interval),
            release_at: 0,
            last_fix: None,
            last_sent_fix_at: None,
            states_only,
            origin: None,
            still_since: None,
            alerted: false,
            duress: None,
            near_destination: false,
        };
        j.release_at = j.release_time(now);
        let effects = vec![
            Effect::SendToCircle(j.started_message()),
            Effect::ArmDeadManSwitch {
                release_at: j.release_at,
                alert: Message::Overdue {
                    journey: j.id,
                    expected_arrival,
                    last_seen: None,
                },
            },
            Effect::RequestPosition,
        ];
        Ok((j, effects))
    }

    /// The journey's id (in every message about it).
    pub fn id(&self) -> MessageId {
        self.id
    }
    /// Where it stands (under duress: where it really stands; show
    /// [`Journey::shown_state`]).
    pub fn state(&self) -> JourneyState {
        self.state
    }
    /// What the person's screen shows: arrived or cancelled once ended
    /// under duress, [`Journey::state`] otherwise.
    pub fn shown_state(&self) -> JourneyState {
        match self.duress {
            Some(Ending::Arrived) => JourneyState::Arrived,
            Some(Ending::Cancelled) => JourneyState::Cancelled,
            None => self.state,
        }
    }
    /// Whether it was ended with the duress code (never show this).
    pub fn is_under_duress(&self) -> bool {
        self.duress.is_some()
    }
    /// Parents' mode, if this journey is in it.
    pub fn states_only(&self) -> Option<StatesOnly> {
        self.states_only
    }
    /// Whether the last position lay within [`ARRIVAL_RADIUS_M`] of the
    /// destination (ask the person to confirm their arrival).
    pub fn near_destination(&self) -> bool {
        self.near_destination
    }
    /// When it started.
    pub fn started_at(&self) -> u64 {
        self.started_at
    }
    /// The destination.
    pub fn destination(&self) -> Place {
        self.destination
    }
    /// The expected arrival.
    pub fn expected_arrival(&self) -> u64 {
        self.expected_arrival
    }
    /// When the person becomes overdue: `expected_arrival + grace`.
    pub fn overdue_at(&self) -> u64 {
        self.expected_arrival + self.grace
    }
    /// When sharing stops at the latest: `started_at + 8 h`.
    pub fn ends_at(&self) -> u64 {
        self.started_at + MAX_JOURNEY_SECS
    }
    /// The switch's current release time.
    pub fn release_at(&self) -> u64 {
        self.release_at
    }
    /// The last position reported.
    pub fn last_fix(&self) -> Option<Fix> {
        self.last_fix
    }
    /// Whether the location is being shared.
    pub fn is_sharing(&self) -> bool {
        matches!(self.state, JourneyState::Active | JourneyState::Overdue)
    }

    fn started_message(&self) -> Message {
        Message::JourneyStarted {
            journey: self.id,
            started_at: self.started_at,
            destination: self.destination,
            expected_arrival: self.expected_arrival,
            // ≤ MAX_GRACE_SECS.
            grace_secs: u32::try_from(self.grace).unwrap_or(u32::MAX),
            states_only: self.states_only,
        }
    }

    /// The release time the switch should have at `now`.
    fn release_time(&self, now: u64) -> u64 {
        let due = match self.config.silence_timeout {
            Some(t) => (now + t).min(self.overdue_at()),
            None => self.overdue_at(),
        };
        due + SWITCH_SLACK_SECS
    }

    /// When to call [`Journey::poll`] next (`None` once the journey is over).
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.is_sharing() {
            return None;
        }
        let mut t = self.next_position_at.min(self.ends_at());
        if self.state == JourneyState::Active {
            t = t.min(self.overdue_at());
        }
        if let Some(h) = self.next_heartbeat_at {
            t = t.min(h);
        }
        Some(t)
    }

    /// Let time pass.
    pub fn poll(&mut self, now: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        if !self.is_sharing() {
            return out;
        }
        if self.state == JourneyState::Active && now >= self.overdue_at() {
            self.state = JourneyState::Overdue;
            self.alerted = true;
            self.next_heartbeat_at = None;
            out.push(Effect::SendToCircle(Message::Overdue {
                journey: self.id,
                expected_arrival: self.expected_arrival,
                last_seen: self.last_fix,
            }));
        }
        if now >= self.ends_at() {
            self.state = JourneyState::Expired;
            self.next_heartbeat_at = None;
            out.push(Effect::StopSharing);
            return out;
        }
        if let Some(h) = self.next_heartbeat_at {
            if now >= h {
                let release_at = self.release_time(now);
                if release_at != self.release_at {
                    self.release_at = release_at;
                    out.push(Effect::Heartbeat { release_at });
                }
                // Once the release time reaches the overdue time it no
                // longer moves.
                self.next_heartbeat_at = (release_at < self.overdue_at() + SWITCH_SLACK_SECS)
                    .then_some(now + self.config.heartbeat_interval);
            }
        }
        if now >= self.next_position_at {
            self.next_position_at = now + self.config.position_interval;
            out.push(Effect::RequestPosition);
        }
        out
    }

    /// The device's position at `now`. Sent to the circle while sharing
    /// (at most one every [`MIN_POSITION_GAP_SECS`]); ignored once sharing
    /// stopped. In parents' mode, checked against the corridor and the stop
    /// time instead, and sent only once an alert fired.
    pub fn position(&mut self, place: Place, now: u64) -> Vec<Effect> {
        if !self.is_sharing() || now >= self.ends_at() {
            return Vec::new();
        }
        let fix = Fix { at: now, place };
        self.last_fix = Some(fix);
        self.near_destination = distance_to_place_m(&fix.place, &self.destination)
            .is_some_and(|d| d <= ARRIVAL_RADIUS_M);
        if let (Some(rule), false) = (self.states_only, self.alerted) {
            return match self.deviation(rule, fix) {
                Some(reason) => {
                    self.alerted = true;
                    self.last_sent_fix_at = Some(now);
                    vec![Effect::SendToCircle(Message::Deviated {
                        journey: self.id,
                        reason,
                        fix,
                    })]
                }
                None => Vec::new(),
            };
        }
        if self
            .last_sent_fix_at
            .is_some_and(|t| now < t + MIN_POSITION_GAP_SECS)
        {
            return Vec::new();
        }
        self.last_sent_fix_at = Some(now);
        vec![Effect::SendToCircle(Message::Position {
            journey: self.id,
            fix,
        })]
    }

    /// Parents' mode: whether `fix` is a deviation (off the corridor first,
    /// then a stop away from the destination). Keeps the start and the
    /// place where the phone stays still, nothing else.
    fn deviation(&mut self, rule: StatesOnly, fix: Fix) -> Option<Deviation> {
        let here = fix.place.lat_lon();
        let origin = *self.origin.get_or_insert(fix);
        let off = distance_to_segment_m(here, origin.place.lat_lon(), self.destination.lat_lon());
        if off > f64::from(rule.corridor_m) {
            return Some(Deviation::OffRoute);
        }
        let still = match self.still_since {
            Some(s) if distance_m(&s.place, &fix.place) <= STILL_RADIUS_M => s,
            _ => {
                self.still_since = Some(fix);
                fix
            }
        };
        (!self.near_destination && fix.at >= still.at + u64::from(rule.stop_secs))
            .then_some(Deviation::Stopped)
    }

    /// "Arrived" or "cancelled" entered with the duress code: the screen
    /// shows `shown` ([`Journey::shown_state`]), the circle is told it was
    /// under duress, and the journey goes on underneath (positions shared,
    /// switch armed, overdue on time). Does nothing once over or already
    /// under duress.
    pub fn end_under_duress(&mut self, shown: Ending, now: u64) -> Vec<Effect> {
        if !self.is_sharing() || self.duress.is_some() {
            return Vec::new();
        }
        self.duress = Some(shown);
        self.alerted = true;
        self.last_sent_fix_at = None;
        vec![
            Effect::SendToCircle(Message::Duress {
                of: self.id,
                at: now,
            }),
            Effect::RequestPosition,
        ]
    }

    fn end(&mut self, state: JourneyState, message: Message) -> Vec<Effect> {
        if !self.is_sharing() {
            return Vec::new();
        }
        self.state = state;
        self.duress = None;
        self.next_heartbeat_at = None;
        vec![
            Effect::SendToCircle(message),
            Effect::WithdrawDeadManSwitch,
            Effect::StopSharing,
        ]
    }

    /// The person arrived.
    pub fn arrived(&mut self, now: u64) -> Vec<Effect> {
        let m = Message::Arrived {
            journey: self.id,
            at: now,
        };
        self.end(JourneyState::Arrived, m)
    }

    /// The person ends the journey without arriving.
    pub fn cancel(&mut self, now: u64) -> Vec<Effect> {
        let m = Message::JourneyCancelled {
            journey: self.id,
            at: now,
        };
        self.end(JourneyState::Cancelled, m)
    }

    /// Change the expected arrival (later or earlier) before becoming
    /// overdue. Still bound by the 8-hour cap from the start.
    pub fn extend(&mut self, expected_arrival: u64, now: u64) -> Result<Vec<Effect>, JourneyError> {
        if self.duress.is_some() {
            return Err(JourneyError::Ended);
        }
        match self.state {
            JourneyState::Active if now < self.overdue_at() => {}
            JourneyState::Active | JourneyState::Overdue => {
                return Err(JourneyError::AlreadyOverdue)
            }
            _ => return Err(JourneyError::Ended),
        }
        check_eta(self.started_at, now, expected_arrival, self.grace)?;
        self.expected_arrival = expected_arrival;
        let mut out = vec![Effect::SendToCircle(self.started_message())];
        let release_at = self.release_time(now);
        if release_at != self.release_at {
            self.release_at = release_at;
            out.push(Effect::Heartbeat { release_at });
        }
        if self.config.silence_timeout.is_some() {
            self.next_heartbeat_at = Some(now + self.config.heartbeat_interval);
        }
        Ok(out)
    }
}

/// Metres between two places (a cell's centre for a cell).
fn distance_m(a: &Place, b: &Place) -> f64 {
    let ((la, lo), (lb, lob)) = (a.lat_lon(), b.lat_lon());
    haversine_m(la, lo, lb, lob)
}

/// Metres from a position to a destination: to its nearest point for a
/// cell (0 inside). `None` only for an out-of-range position, which the
/// wire format does not allow.
fn distance_to_place_m(from: &Place, to: &Place) -> Option<f64> {
    let (lat, lon) = from.lat_lon();
    match to {
        Place::Cell(c) => distance_to_cell_m(lat, lon, c).ok(),
        Place::Point { .. } => Some(distance_m(from, to)),
    }
}

fn check_eta(started_at: u64, now: u64, eta: u64, grace: u64) -> Result<(), JourneyError> {
    if eta <= now {
        return Err(JourneyError::EtaNotInFuture);
    }
    let latest_eta = (started_at + MAX_JOURNEY_SECS).saturating_sub(grace);
    if eta > latest_eta {
        return Err(JourneyError::TooLong { latest_eta });
    }
    Ok(())
}
