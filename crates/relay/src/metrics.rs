//! Counters and the Prometheus text exposition (format 0.0.4) of
//! `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rules::Refusal;

/// Counters updated by the ingest loop and the HTTP handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reports counted into the aggregates.
    pub accepted: AtomicU64,
    /// Reports counted and flushed to disk.
    pub acknowledged: AtomicU64,
    /// Reports not counted, by [`Refusal`] (in [`Refusal::ALL`] order).
    pub refused: [AtomicU64; Refusal::ALL.len()],
    /// Node events lost because the relay fell behind (caught up by a
    /// re-read of the node's live reports).
    pub lagged: AtomicU64,
    /// Catch-up passes over the node's live reports.
    pub catch_ups: AtomicU64,
    /// Heartbeats accepted.
    pub heartbeats: AtomicU64,
    /// Heartbeats and flags refused.
    pub directory_refused: AtomicU64,
    /// Flags accepted.
    pub flags: AtomicU64,
    /// Storage errors.
    pub store_errors: AtomicU64,
}

impl Metrics {
    /// Count a refusal.
    pub fn refuse(&self, r: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|x| *x == r) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The values read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Connected peers.
    pub peers: u64,
    /// Areas followed.
    pub areas: u64,
    /// Live reports in the node's store.
    pub node_reports: u64,
    /// Gossiped messages the relay's node refused, by reason (forged,
    /// expired, wrong topic, …), from the node's status.
    pub gossip_refused: std::collections::BTreeMap<&'static str, u64>,
    /// Live report ids the relay keeps for deduplication.
    pub live_reports: u64,
    /// Aggregate rows.
    pub aggregate_rows: u64,
    /// Database bytes on disk.
    pub store_bytes: u64,
    /// Places by freshness: fresh, stale, expired.
    pub places: [u64; 3],
    /// Mediators listed.
    pub mediators: u64,
    /// Flags kept.
    pub flags_kept: u64,
    /// Current directory serial.
    pub directory_serial: u64,
    /// Mailbox hosting, when enabled: envelopes and dead-man's switches
    /// held for others.
    pub mailbox: Option<(u64, u64)>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, v: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {v}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// Render every metric in the Prometheus text format.
pub fn render(m: &Metrics, g: &Gauges) -> String {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut o = String::with_capacity(4096);
    family(&mut o, "ronde_relay_info", "gauge", "Build information.");
    sample(
        &mut o,
        "ronde_relay_info",
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        1,
    );
    family(&mut o, "ronde_relay_peers", "gauge", "Connected peers.");
    sample(&mut o, "ronde_relay_peers", "", g.peers);
    family(
        &mut o,
        "ronde_relay_areas",
        "gauge",
        "Areas (geohash precision 5) followed.",
    );
    sample(&mut o, "ronde_relay_areas", "", g.areas);
    family(
        &mut o,
        "ronde_relay_reports_accepted_total",
        "counter",
        "Reports counted into the aggregates.",
    );
    sample(
        &mut o,
        "ronde_relay_reports_accepted_total",
        "",
        ld(&m.accepted),
    );
    family(
        &mut o,
        "ronde_relay_reports_acknowledged_total",
        "counter",
        "Reports counted and flushed to disk.",
    );
    sample(
        &mut o,
        "ronde_relay_reports_acknowledged_total",
        "",
        ld(&m.acknowledged),
    );
    family(
        &mut o,
        "ronde_relay_reports_rejected_total",
        "counter",
        "Reports not counted, by reason.",
    );
    for (r, c) in Refusal::ALL.iter().zip(m.refused.iter()) {
        sample(
            &mut o,
            "ronde_relay_reports_rejected_total",
            &format!("reason=\"{}\"", r.reason()),
            ld(c),
        );
    }
    family(
        &mut o,
        "ronde_relay_gossip_refused_total",
        "counter",
        "Gossiped messages the relay's node refused before counting, by reason.",
    );
    for (reason, count) in &g.gossip_refused {
        sample(
            &mut o,
            "ronde_relay_gossip_refused_total",
            &format!("reason=\"{reason}\""),
            *count,
        );
    }
    family(
        &mut o,
        "ronde_relay_events_lagged_total",
        "counter",
        "Node events missed because the relay fell behind (then caught up).",
    );
    sample(&mut o, "ronde_relay_events_lagged_total", "", ld(&m.lagged));
    family(
        &mut o,
        "ronde_relay_catch_ups_total",
        "counter",
        "Re-reads of the node's live reports.",
    );
    sample(&mut o, "ronde_relay_catch_ups_total", "", ld(&m.catch_ups));
    family(
        &mut o,
        "ronde_relay_store_errors_total",
        "counter",
        "Storage errors.",
    );
    sample(
        &mut o,
        "ronde_relay_store_errors_total",
        "",
        ld(&m.store_errors),
    );
    family(
        &mut o,
        "ronde_relay_node_reports",
        "gauge",
        "Live reports in the node's store.",
    );
    sample(&mut o, "ronde_relay_node_reports", "", g.node_reports);
    family(
        &mut o,
        "ronde_relay_live_reports",
        "gauge",
        "Live report ids kept for deduplication (deleted at expiry).",
    );
    sample(&mut o, "ronde_relay_live_reports", "", g.live_reports);
    family(
        &mut o,
        "ronde_relay_aggregate_rows",
        "gauge",
        "Hourly aggregate rows (cell x category x hour).",
    );
    sample(&mut o, "ronde_relay_aggregate_rows", "", g.aggregate_rows);
    family(
        &mut o,
        "ronde_relay_store_bytes",
        "gauge",
        "Size of the relay database on disk.",
    );
    sample(&mut o, "ronde_relay_store_bytes", "", g.store_bytes);
    family(
        &mut o,
        "ronde_relay_directory_places",
        "gauge",
        "Safe places by freshness.",
    );
    for (s, v) in ["fresh", "stale", "expired"].iter().zip(g.places) {
        sample(
            &mut o,
            "ronde_relay_directory_places",
            &format!("status=\"{s}\""),
            v,
        );
    }
    family(
        &mut o,
        "ronde_relay_directory_mediators",
        "gauge",
        "Mediators listed.",
    );
    sample(&mut o, "ronde_relay_directory_mediators", "", g.mediators);
    family(
        &mut o,
        "ronde_relay_directory_serial",
        "gauge",
        "Serial of the signed directory served.",
    );
    sample(
        &mut o,
        "ronde_relay_directory_serial",
        "",
        g.directory_serial,
    );
    family(
        &mut o,
        "ronde_relay_heartbeats_total",
        "counter",
        "Place heartbeats accepted.",
    );
    sample(
        &mut o,
        "ronde_relay_heartbeats_total",
        "",
        ld(&m.heartbeats),
    );
    family(
        &mut o,
        "ronde_relay_flags_total",
        "counter",
        "Flags accepted.",
    );
    sample(&mut o, "ronde_relay_flags_total", "", ld(&m.flags));
    family(
        &mut o,
        "ronde_relay_flags_kept",
        "gauge",
        "Flags kept (the last 30 days).",
    );
    sample(&mut o, "ronde_relay_flags_kept", "", g.flags_kept);
    family(
        &mut o,
        "ronde_relay_directory_refused_total",
        "counter",
        "Heartbeats and flags refused.",
    );
    sample(
        &mut o,
        "ronde_relay_directory_refused_total",
        "",
        ld(&m.directory_refused),
    );
    if let Some((envelopes, switches)) = g.mailbox {
        family(
            &mut o,
            "ronde_relay_mailbox_envelopes",
            "gauge",
            "Envelopes held for offline phones.",
        );
        sample(&mut o, "ronde_relay_mailbox_envelopes", "", envelopes);
        family(
            &mut o,
            "ronde_relay_mailbox_switches",
            "gauge",
            "Live dead-man's switches held for travellers.",
        );
        sample(&mut o, "ronde_relay_mailbox_switches", "", switches);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_refusals_are_exported_by_reason() {
        let mut g = Gauges::default();
        g.gossip_refused.insert("bad_signature", 3);
        g.gossip_refused.insert("wrong_topic", 1);
        let text = render(&Metrics::default(), &g);
        assert!(text.contains("# TYPE ronde_relay_gossip_refused_total counter"));
        assert!(text.contains("ronde_relay_gossip_refused_total{reason=\"bad_signature\"} 3\n"));
        assert!(text.contains("ronde_relay_gossip_refused_total{reason=\"wrong_topic\"} 1\n"));
    }
}
