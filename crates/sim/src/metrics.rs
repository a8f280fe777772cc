//! From what was observed to the figures: delivery, latency and its lower
//! bound, duplicates, bytes.
//!
//! # Definitions
//!
//! * **Expected receivers** of a report published at planned time `t` in
//!   area `A`: the honest devices (phones and relays) other than its
//!   author that follow `A` at `t` and keep following it, and are online,
//!   over the whole window `[t, t + window]`; while a partition is in
//!   force at any time of the window, only those on the author's side.
//! * **Delivered**: an expected receiver stored the report (Ronde: a
//!   `NodeEvent::Report`; baseline: a gossipsub message) within the window.
//! * **Latency**: from the author storing its own report (just before it
//!   is handed to gossipsub) to the receiver storing it, in model time.
//! * **Lower bound**: the shortest path from the author to the receiver
//!   over the live connection graph at publication, restricted to devices
//!   that follow `A` (only they forward `A`'s reports), weighted by the
//!   links' one-way latencies ([`dijkstra`]). No protocol can beat it on
//!   that graph.
//! * **Duplicates per delivered report**: (gossip transmissions of reports
//!   by honest devices − first receptions) / first receptions, where
//!   transmissions are counted on the wire ([`crate::net::FrameClassifier`])
//!   and first receptions are the deliveries to devices that were online
//!   when the report was published (later joiners get it by sync, which
//!   is not a gossip transmission).
//! * **Bytes per phone per hour**: bytes phones wrote and read at the
//!   transport (Noise, Yamux, every protocol), divided by the phone-hours
//!   online in model time.
//! * **SOS delivered** ([`SosFigures`]): the contact's node showed the
//!   alert (`NodeEvent::Alert` with the SOS's id) before the end of the
//!   run. **Delivery time**: from the sender's `Node::sos` call to that
//!   alert, in model time. An SOS raised while the contact's node was down
//!   and shown after it came back went through a relay's mailbox: the
//!   sender cannot reach the contact's next life directly (a fresh peer id
//!   it has not heard of); for those, the time from the contact coming back
//!   online to the alert is given too.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;

use crate::net::Slot;

/// The `q` quantile (nearest rank) of sorted values; 0 if empty.
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentiles of a distribution.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Pcts {
    /// Number of values.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Pcts {
    /// Percentiles of `values` (sorted in place).
    pub fn of(values: &mut [f64]) -> Pcts {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Pcts {
            n,
            p50: pct(values, 0.50),
            p95: pct(values, 0.95),
            p99: pct(values, 0.99),
            max: values.last().copied().unwrap_or(0.0),
            mean: if n == 0 {
                0.0
            } else {
                values.iter().sum::<f64>() / n as f64
            },
        }
    }
}

/// What happened to one planned SOS (model seconds).
#[derive(Debug, Clone, Serialize)]
pub struct SosRecord {
    /// Who raised it.
    pub sender: Slot,
    /// Whom it was for.
    pub contact: Slot,
    /// When it was planned.
    pub planned_at: f64,
    /// Whether the contact was planned to be offline then.
    pub planned_offline: bool,
    /// When the two became mutual contacts, if they did.
    pub befriended_at: Option<f64>,
    /// When `Node::sos` was called, if it succeeded.
    pub sent_at: Option<f64>,
    /// Whether the contact's node was down when it was raised.
    pub contact_offline: bool,
    /// Whether the contact was a background phone (no connection; woken
    /// by push).
    pub contact_background: bool,
    /// When the contact's node came back after it was raised.
    pub rejoined_at: Option<f64>,
    /// When the contact's node showed the alert.
    pub delivered_at: Option<f64>,
    /// When the sender's node heard the contact's acknowledgement.
    pub acked_at: Option<f64>,
}

impl SosRecord {
    /// Raised while the contact was offline and shown after it came back:
    /// only a relay's mailbox could carry it.
    pub fn via_mailbox(&self) -> bool {
        match (self.contact_offline, self.rejoined_at, self.delivered_at) {
            (true, Some(back), Some(got)) => got >= back,
            _ => false,
        }
    }
}

/// The SOS figures of a run (Ronde only: the baseline has no circle).
#[derive(Debug, Clone, Serialize)]
pub struct SosFigures {
    /// SOS planned (one per pair of contacts).
    pub planned: usize,
    /// Pairs that became mutual contacts in time.
    pub befriended: usize,
    /// SOS raised.
    pub sent: usize,
    /// SOS whose contact showed the alert.
    pub delivered: usize,
    /// SOS planned to a contact that is offline when it is raised.
    pub planned_offline: usize,
    /// SOS raised while the contact's node was down.
    pub to_offline: usize,
    /// Of those, shown after the contact came back: through a mailbox.
    pub via_mailbox: usize,
    /// From `sos()` to the alert, contacts online (in the foreground) when
    /// it was raised, ms.
    pub delivery_ms: Pcts,
    /// SOS raised to a contact in the background.
    pub to_background: usize,
    /// From `sos()` to the alert, contacts in the background (woken by
    /// push), ms.
    pub background_delivery_ms: Pcts,
    /// From `sos()` to the alert, contacts offline when it was raised
    /// (their absence included), ms.
    pub offline_delivery_ms: Pcts,
    /// From the contact's node coming back to the alert, ms.
    pub after_rejoin_ms: Pcts,
    /// SOS whose sender heard the acknowledgement (contacts acknowledge
    /// an alert as soon as it is shown).
    pub acked: usize,
    /// From `sos()` to the sender hearing the acknowledgement, ms.
    pub ack_ms: Pcts,
    /// Each SOS.
    pub records: Vec<SosRecord>,
}

impl SosFigures {
    /// The figures of these records.
    pub fn of(records: Vec<SosRecord>) -> SosFigures {
        let ms = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(((b - a) * 1e3).max(0.0)),
            _ => None,
        };
        let mut online: Vec<f64> = records
            .iter()
            .filter(|r| !r.contact_offline && !r.contact_background)
            .filter_map(|r| ms(r.sent_at, r.delivered_at))
            .collect();
        let mut background: Vec<f64> = records
            .iter()
            .filter(|r| r.contact_background && !r.contact_offline)
            .filter_map(|r| ms(r.sent_at, r.delivered_at))
            .collect();
        let mut offline: Vec<f64> = records
            .iter()
            .filter(|r| r.contact_offline)
            .filter_map(|r| ms(r.sent_at, r.delivered_at))
            .collect();
        let mut rejoin: Vec<f64> = records
            .iter()
            .filter(|r| r.via_mailbox())
            .filter_map(|r| ms(r.rejoined_at, r.delivered_at))
            .collect();
        let mut ack: Vec<f64> = records
            .iter()
            .filter_map(|r| ms(r.sent_at, r.acked_at))
            .collect();
        let count = |f: &dyn Fn(&SosRecord) -> bool| records.iter().filter(|r| f(r)).count();
        SosFigures {
            planned: records.len(),
            befriended: count(&|r| r.befriended_at.is_some()),
            sent: count(&|r| r.sent_at.is_some()),
            delivered: count(&|r| r.sent_at.is_some() && r.delivered_at.is_some()),
            planned_offline: count(&|r| r.planned_offline),
            to_offline: count(&|r| r.sent_at.is_some() && r.contact_offline),
            via_mailbox: count(&|r| r.sent_at.is_some() && r.via_mailbox()),
            delivery_ms: Pcts::of(&mut online),
            to_background: count(&|r| r.sent_at.is_some() && r.contact_background),
            background_delivery_ms: Pcts::of(&mut background),
            offline_delivery_ms: Pcts::of(&mut offline),
            after_rejoin_ms: Pcts::of(&mut rejoin),
            acked: count(&|r| r.sent_at.is_some() && r.acked_at.is_some()),
            ack_ms: Pcts::of(&mut ack),
            records,
        }
    }

    /// Every planned SOS was raised and shown, those planned to an
    /// offline contact through a mailbox after it came back.
    pub fn all_delivered(&self) -> bool {
        self.planned > 0
            && self.sent == self.planned
            && self.delivered == self.planned
            && self.to_offline == self.planned_offline
            && self.via_mailbox == self.planned_offline
    }
}

/// Phones in the background (issue 16 §4), from the end of the warm-up
/// to the end of the run. The main figures are those of the phones with
/// no alert (the target's condition); the SOS contacts' are apart.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundFigures {
    /// Background phones with no alert.
    pub phones: usize,
    /// Bytes sent and received per background phone per hour, MB (mean).
    pub mb_per_hour: f64,
    /// The same, the phone that used the most.
    pub mb_per_hour_max: f64,
    /// Radio wake-ups (bursts of activity at least 10 s apart, a push
    /// message included) per background phone per hour (mean).
    pub wakeups_per_hour: f64,
    /// The same, the phone woken the most.
    pub wakeups_per_hour_max: f64,
    /// Background phones that were sent an SOS.
    pub alerted_phones: usize,
    /// Their bytes per hour, MB (mean).
    pub alerted_mb_per_hour: f64,
    /// Their radio wake-ups per hour (mean).
    pub alerted_wakeups_per_hour: f64,
    /// Push wake-ups delivered to background phones.
    pub pushes: u64,
    /// From `sos()` to the alert at a background contact, model ms.
    pub sos_ms: Pcts,
    /// SOS raised to background contacts.
    pub sos_sent: usize,
}

/// Shortest one-way delay (seconds) from `from` to every slot over the
/// undirected `edges` (slot, slot, seconds), using only slots for which
/// `usable` holds (the source always is). Unreachable slots get infinity.
pub fn dijkstra(
    slots: usize,
    edges: &[(Slot, Slot, f64)],
    from: Slot,
    usable: impl Fn(Slot) -> bool,
) -> Vec<f64> {
    let mut adj: Vec<Vec<(Slot, f64)>> = vec![Vec::new(); slots];
    for &(a, b, w) in edges {
        if (a as usize) < slots && (b as usize) < slots && usable(a) && usable(b) {
            adj[a as usize].push((b, w));
            adj[b as usize].push((a, w));
        }
    }
    let mut dist = vec![f64::INFINITY; slots];
    if (from as usize) >= slots {
        return dist;
    }
    dist[from as usize] = 0.0;
    // Distances as integer nanoseconds for a total order in the heap.
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((0u64, from)));
    while let Some(Reverse((d_ns, u))) = heap.pop() {
        let d = d_ns as f64 / 1e9;
        if d > dist[u as usize] {
            continue;
        }
        for &(v, w) in &adj[u as usize] {
            let nd = d + w;
            if nd < dist[v as usize] {
                dist[v as usize] = nd;
                heap.push(Reverse(((nd * 1e9) as u64, v)));
            }
        }
    }
    dist
}

/// First delivery time of each (report, slot).
pub fn first_deliveries<K: std::hash::Hash + Eq + Copy>(
    deliveries: &[(K, Slot, f64)],
) -> HashMap<K, HashMap<Slot, f64>> {
    let mut m: HashMap<K, HashMap<Slot, f64>> = HashMap::new();
    for &(id, slot, t) in deliveries {
        let e = m.entry(id).or_default().entry(slot).or_insert(t);
        if t < *e {
            *e = t;
        }
    }
    m
}

/// Evenly spaced points of the empirical CDF of sorted values, for charts.
pub fn cdf_points(sorted: &[f64], points: usize) -> Vec<(f64, f64)> {
    let Some(&first) = sorted.first() else {
        return Vec::new();
    };
    let mut v = vec![(first, 0.0)];
    for i in 1..=points {
        let q = i as f64 / points as f64;
        v.push((pct(sorted, q), q));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Pcts::of(&mut v);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(p.n, 100);
        assert!((p.mean - 50.5).abs() < 1e-9);
        assert_eq!(pct(&[], 0.5), 0.0);
        assert_eq!(pct(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn dijkstra_finds_the_shortest_path_and_respects_usable() {
        // 0 -1s- 1 -1s- 2, and 0 -5s- 2; 3 is cut off.
        let edges = [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 5.0)];
        let d = dijkstra(4, &edges, 0, |_| true);
        assert_eq!(d[0], 0.0);
        assert!((d[2] - 2.0).abs() < 1e-9);
        assert!(d[3].is_infinite());
        // If 1 does not forward, the long edge is the only way.
        let d = dijkstra(4, &edges, 0, |s| s != 1);
        assert!((d[2] - 5.0).abs() < 1e-9);
        assert!(d[1].is_infinite());
    }

    #[test]
    fn first_deliveries_keep_the_earliest() {
        let d = [(1u8, 3, 2.0), (1u8, 3, 1.0), (2u8, 3, 5.0), (1u8, 4, 9.0)];
        let m = first_deliveries(&d);
        assert_eq!(m[&1][&3], 1.0);
        assert_eq!(m[&1][&4], 9.0);
        assert_eq!(m[&2].len(), 1);
    }

    #[test]
    fn sos_figures_tell_mailbox_deliveries_apart() {
        let rec = |offline: bool, sent: f64, back: Option<f64>, got: Option<f64>| SosRecord {
            sender: 0,
            contact: 1,
            planned_at: sent,
            planned_offline: offline,
            befriended_at: Some(1.0),
            sent_at: Some(sent),
            contact_offline: offline,
            contact_background: false,
            rejoined_at: back,
            delivered_at: got,
            acked_at: got.map(|g| g + 0.5),
        };
        let f = SosFigures::of(vec![
            rec(false, 10.0, None, Some(10.2)),
            rec(true, 20.0, Some(25.0), Some(25.4)),
            rec(true, 30.0, Some(35.0), None),
        ]);
        assert_eq!((f.planned, f.sent, f.delivered), (3, 3, 2));
        assert_eq!((f.planned_offline, f.to_offline, f.via_mailbox), (2, 2, 1));
        assert!((f.delivery_ms.p50 - 200.0).abs() < 1e-6);
        assert!((f.offline_delivery_ms.p50 - 5400.0).abs() < 1e-6);
        assert!((f.after_rejoin_ms.p50 - 400.0).abs() < 1e-6);
        assert_eq!(f.acked, 2);
        assert!(
            !f.all_delivered(),
            "one SOS to an offline contact is missing"
        );
        let f = SosFigures::of(vec![
            rec(false, 10.0, None, Some(10.2)),
            rec(true, 20.0, Some(25.0), Some(25.4)),
        ]);
        assert!(f.all_delivered());
        // Shown before the contact came back is not a mailbox delivery.
        assert!(!rec(true, 20.0, Some(25.0), Some(21.0)).via_mailbox());
        assert!(!SosFigures::of(Vec::new()).all_delivered());
    }

    #[test]
    fn cdf_points_are_monotonic() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let c = cdf_points(&v, 50);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(c.last().map(|p| p.1), Some(1.0));
    }
}
