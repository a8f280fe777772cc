//! When an area is **under flood**, untokened reports of it need more
//! proof of work than tokened ones (docs/protocol.md §8.6): the rule and
//! its per-area counters ([`FloodGuard`]). Sans-IO: fed the node's clock.
//!
//! A node counts, per area and per minute of its clock (`now / 60`), the
//! **untokened** reports it accepted as new (stored), from any peer or
//! made here. An area is under flood while the last [`FloodRule::window_minutes`]
//! minutes (the current one included) hold more than
//! [`FloodRule::threshold`] of them, and for `window_minutes` after the last
//! minute in which that held (so the rule does not flap at the edge). While
//! under flood, an untokened report of the area with less than
//! [`FloodRule::difficulty`] bits is ignored (`flood_needs_more_work`: no
//! penalty, the sender may not see the flood), and the node seals its own
//! untokened reports of the area with that difficulty; tokened reports are
//! judged as usual.

use std::collections::{HashMap, VecDeque};

use ronde_protocol::Area;

/// The rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodRule {
    /// More untokened new reports than this in the window: under flood.
    pub threshold: u32,
    /// The window, minutes.
    pub window_minutes: u64,
    /// Bits an untokened report needs while its area is under flood.
    pub difficulty: u8,
}

impl Default for FloodRule {
    /// 50 untokened new reports in 10 minutes, then 22 bits (16 times the
    /// network minimum of 18).
    fn default() -> Self {
        FloodRule {
            threshold: 50,
            window_minutes: 10,
            difficulty: 22,
        }
    }
}

#[derive(Debug, Default)]
struct AreaCount {
    /// (minute, count), oldest first, only minutes of the window.
    minutes: VecDeque<(u64, u32)>,
    /// The area is under flood until this minute (excluded).
    flooded_until: u64,
}

/// The counters of every area.
#[derive(Debug, Default)]
pub struct FloodGuard {
    areas: HashMap<Area, AreaCount>,
}

impl FloodGuard {
    /// Count one untokened report of `area` accepted as new at `now`.
    pub fn record(&mut self, rule: &FloodRule, area: Area, now: u64) {
        let minute = now / 60;
        let a = self.areas.entry(area).or_default();
        match a.minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => a.minutes.push_back((minute, 1)),
        }
        Self::trim(a, rule, minute);
        let total: u32 = a.minutes.iter().map(|(_, n)| *n).sum();
        if total > rule.threshold {
            a.flooded_until = minute + rule.window_minutes;
        }
    }

    /// Whether `area` is under flood at `now`.
    pub fn is_flooded(&self, rule: &FloodRule, area: &Area, now: u64) -> bool {
        let minute = now / 60;
        self.areas.get(area).is_some_and(|a| {
            let recent: u32 = a
                .minutes
                .iter()
                .filter(|(m, _)| m + rule.window_minutes > minute)
                .map(|(_, n)| *n)
                .sum();
            minute < a.flooded_until || recent > rule.threshold
        })
    }

    /// The difficulty an untokened report of `area` needs at `now`: the
    /// rule's while under flood, else `base`.
    pub fn required(&self, rule: &FloodRule, area: &Area, now: u64, base: u8) -> u8 {
        if self.is_flooded(rule, area, now) {
            base.max(rule.difficulty)
        } else {
            base
        }
    }

    /// Forget areas with nothing in the window and no flood (bounded
    /// memory: call now and then).
    pub fn purge(&mut self, rule: &FloodRule, now: u64) {
        let minute = now / 60;
        self.areas.retain(|_, a| {
            Self::trim(a, rule, minute);
            !a.minutes.is_empty() || minute < a.flooded_until
        });
    }

    fn trim(a: &mut AreaCount, rule: &FloodRule, minute: u64) {
        while a
            .minutes
            .front()
            .is_some_and(|(m, _)| m + rule.window_minutes <= minute)
        {
            a.minutes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_790_000_040;

    fn area() -> Area {
        ronde_protocol::area_of(48.8156, 2.3844).expect("area")
    }

    #[test]
    fn over_the_threshold_in_the_window_is_a_flood_that_clears_later() {
        let rule = FloodRule::default();
        let mut g = FloodGuard::default();
        for i in 0..50 {
            g.record(&rule, area(), T + i);
        }
        assert!(!g.is_flooded(&rule, &area(), T + 60));
        assert_eq!(g.required(&rule, &area(), T + 60, 18), 18);
        g.record(&rule, area(), T + 70);
        assert!(g.is_flooded(&rule, &area(), T + 70));
        assert_eq!(g.required(&rule, &area(), T + 70, 18), 22);
        // Ten minutes after the last minute over the threshold: clear.
        assert!(g.is_flooded(&rule, &area(), T + 70 + 9 * 60));
        assert!(!g.is_flooded(&rule, &area(), T + 70 + 11 * 60));
        g.purge(&rule, T + 70 + 11 * 60);
        assert!(g.areas.is_empty());
    }

    #[test]
    fn a_slow_steady_stream_is_no_flood() {
        let rule = FloodRule::default();
        let mut g = FloodGuard::default();
        // Four a minute for an hour: 40 in any ten minutes.
        for i in 0..240 {
            g.record(&rule, area(), T + i * 15);
            assert!(!g.is_flooded(&rule, &area(), T + i * 15));
        }
    }
}
