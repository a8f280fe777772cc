//! The time limits that the journey, the dead-man's switch and the watching
//! side share, below all three so that none of them imports another for a
//! constant.
//!
//! Each stays reachable where it was first defined:
//! [`crate::circle::journey::MAX_JOURNEY_SECS`] and
//! [`crate::circle::switch::SWITCH_SLACK_SECS`].

/// Hard cap on a journey: sharing stops this long after the start.
pub const MAX_JOURNEY_SECS: u64 = 8 * 3600;

/// How long after the overdue time the relay releases the alerts, so that a
/// phone that is alive sends its own overdue (with its last position) first.
pub const SWITCH_SLACK_SECS: u64 = 120;
