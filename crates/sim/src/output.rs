//! What a run prints and writes: the targets judged, a table, a JSON file
//! and an SVG chart (latency CDF, delivery over time), drawn by hand.

use std::fmt::Write as _;

use serde::Serialize;

use crate::run::Outcome;
use crate::SimReport;

/// One target of the issue, judged on a run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What.
    pub name: String,
    /// The target.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met (`None`: not measured in this run).
    pub met: Option<bool>,
}

fn target(name: &str, goal: &str, measured: String, met: Option<bool>) -> Target {
    Target {
        name: name.into(),
        target: goal.into(),
        measured,
        met,
    }
}

/// Judge the targets on Ronde's figures (and the baseline's, for ratios).
pub fn judge(ronde: Option<&Outcome>, baseline: Option<&Outcome>) -> Vec<Target> {
    let Some(r) = ronde else {
        return Vec::new();
    };
    let mut t = vec![
        target(
            "delivery",
            "≥ 99.9 %",
            format!("{:.3} %", 100.0 * r.delivery_ratio),
            Some(r.delivery_ratio >= 0.999),
        ),
        target(
            "latency p99",
            "≤ 1000 ms",
            format!("{:.0} ms", r.latency_ms.p99),
            Some(r.latency_ms.p99 <= 1000.0),
        ),
    ];
    let lb = if r.lower_bound_ms.p99 > 0.0 {
        r.latency_ms.p99 / r.lower_bound_ms.p99
    } else {
        f64::NAN
    };
    t.push(target(
        "p99 / lower bound p99",
        "≤ 2.0",
        format!("{lb:.2}"),
        lb.is_finite().then_some(lb <= 2.0),
    ));
    match baseline {
        Some(b) if b.latency_ms.p99 > 0.0 => {
            let x = r.latency_ms.p99 / b.latency_ms.p99;
            let y = r.latency_ms.p50 / b.latency_ms.p50.max(1e-9);
            t.push(target(
                "latency vs bare gossipsub",
                "≤ 1.2×",
                format!("p99 {x:.2}×, p50 {y:.2}×"),
                Some(x <= 1.2),
            ));
        }
        _ => t.push(target(
            "latency vs bare gossipsub",
            "≤ 1.2×",
            "no baseline".into(),
            None,
        )),
    }
    t.push(target(
        "duplicates per delivered report",
        "≤ 1.5",
        format!("{:.2}", r.duplicates_per_delivery),
        Some(r.duplicates_per_delivery <= 1.5),
    ));
    t.push(target(
        "bytes per phone per hour",
        "≤ 1.5 MB (one report / 10 s city-wide)",
        format!("{:.2} MB", r.phone_traffic.total_mb_per_hour),
        Some(r.phone_traffic.total_mb_per_hour <= 1.5),
    ));
    if let Some(v) = r.visible_after_expiry {
        t.push(target(
            "reports visible after expiry",
            "0",
            v.to_string(),
            Some(v == 0),
        ));
    }
    if let (Some(f), Some(s)) = (r.forged_accepted, r.stale_accepted) {
        t.push(target(
            "forged / stale flood reports accepted",
            "0",
            format!("{f} / {s}"),
            Some(f == 0 && s == 0),
        ));
    }
    match &r.sos {
        Some(f) if f.planned > 0 => t.push(target(
            "SOS delivered (offline: via mailbox)",
            "100 %",
            format!(
                "{}/{} ({}/{})",
                f.delivered, f.planned, f.via_mailbox, f.planned_offline
            ),
            Some(f.all_delivered()),
        )),
        _ => t.push(target(
            "SOS delivered (offline: via mailbox)",
            "100 %",
            "no SOS planned".into(),
            None,
        )),
    }
    if let Some(bg) = &r.background {
        // Issue 16 §4: phones in the background.
        t.push(target(
            "background: MB per phone per hour, no alert",
            "≤ 0.1 MB",
            format!("{:.3} MB (max {:.3})", bg.mb_per_hour, bg.mb_per_hour_max),
            Some(bg.mb_per_hour <= 0.1),
        ));
        t.push(target(
            "background: wake-ups per hour, no alert",
            "≤ 12",
            format!(
                "{:.1} (max {:.1})",
                bg.wakeups_per_hour, bg.wakeups_per_hour_max
            ),
            Some(bg.wakeups_per_hour <= 12.0),
        ));
        t.push(target(
            "background: sos() → alert p99",
            "≤ 5000 ms",
            if bg.sos_ms.n == 0 {
                "no SOS to a background contact".into()
            } else {
                format!(
                    "{:.0} ms ({} of {} shown)",
                    bg.sos_ms.p99, bg.sos_ms.n, bg.sos_sent
                )
            },
            (bg.sos_ms.n > 0).then_some(bg.sos_ms.p99 <= 5000.0 && bg.sos_ms.n == bg.sos_sent),
        ));
    }
    if let Some(p) = r.privacy.as_ref().filter(|p| p.stem) {
        // Issue 13: who can tell who wrote a report, with the stem.
        t.push(target(
            "relay precision (first hop)",
            "≤ 0.1",
            format!(
                "{:.3}{}",
                p.view.relay_precision,
                p.no_stem
                    .as_ref()
                    .map(|n| format!(" (no stem {:.3})", n.relay_precision))
                    .unwrap_or_default()
            ),
            (p.view.relay_guesses > 0).then_some(p.view.relay_precision <= 0.1),
        ));
        if p.view.spies > 0 {
            let at_15 = (p.view.spy_fraction - 0.15).abs() < 1e-9;
            t.push(target(
                "spy precision (first spy)",
                "≤ 0.15 with 15 % spies",
                format!(
                    "{:.3} with {:.0} %{}",
                    p.view.spy_precision,
                    100.0 * p.view.spy_fraction,
                    p.no_stem
                        .as_ref()
                        .map(|n| format!(" (no stem {:.3})", n.spy_precision))
                        .unwrap_or_default()
                ),
                (at_15 && p.view.spy_guesses > 0).then_some(p.view.spy_precision <= 0.15),
            ));
        }
        if let Some(c) = p.stem_latency_cost_ms_p50 {
            t.push(target(
                "stem latency cost p50",
                "≤ +300 ms",
                format!(
                    "{c:+.0} ms (p99 {:+.0} ms)",
                    p.stem_latency_cost_ms_p99.unwrap_or(f64::NAN)
                ),
                Some(c <= 300.0),
            ));
        }
    }
    t.push(target(
        "CPU not the bottleneck",
        "not saturated",
        if r.saturation.saturated {
            "SATURATED".into()
        } else {
            "ok".into()
        },
        Some(!r.saturation.saturated),
    ));
    t
}

fn row(out: &mut String, name: &str, r: Option<String>, b: Option<String>, ratio: Option<f64>) {
    let _ = writeln!(
        out,
        "  {:<34} {:>16} {:>16} {:>9}",
        name,
        r.unwrap_or_else(|| "-".into()),
        b.unwrap_or_else(|| "-".into()),
        ratio
            .filter(|x| x.is_finite())
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_else(|| "-".into())
    );
}

/// The SOS rows: Ronde's figures; the baseline has no circle.
/// Phone MB per hour by protocol, both overlays side by side, in Ronde's
/// order (largest first); protocols under 0.005 MB/h in both are left out.
fn protocol_rows(s: &mut String, r: Option<&Outcome>, b: Option<&Outcome>) {
    let mut names: Vec<&str> = Vec::new();
    for o in [r, b].into_iter().flatten() {
        for p in &o.phone_protocols {
            if !names.contains(&p.protocol.as_str()) {
                names.push(&p.protocol);
            }
        }
    }
    let of = |o: Option<&Outcome>, name: &str| {
        o.map(|o| {
            o.phone_protocols
                .iter()
                .find(|p| p.protocol == name)
                .map_or((0.0, 0.0), |p| (p.mb_per_hour, p.streams_per_hour))
        })
    };
    let shown: Vec<&str> = names
        .into_iter()
        .filter(|n| {
            [of(r, n), of(b, n)]
                .into_iter()
                .flatten()
                .any(|(mb, _)| mb >= 0.005)
        })
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n  phone MB/h by protocol (substreams per hour):");
    let cell = |x: Option<(f64, f64)>| match x {
        Some((mb, streams)) => format!("{mb:.3} ({streams:.0})"),
        None => "-".into(),
    };
    for name in shown {
        row(
            s,
            &format!("  {name}"),
            Some(cell(of(r, name))),
            b.map(|_| cell(of(b, name))),
            None,
        );
    }
}

fn sos_rows(s: &mut String, r: Option<&Outcome>, b: Option<&Outcome>) {
    let sos = r.and_then(|o| o.sos.as_ref()).filter(|f| f.planned > 0);
    let Some(f) = sos else {
        return;
    };
    let none = || b.map(|_| "no circle".to_owned());
    let ms = |p: &crate::metrics::Pcts| {
        if p.n == 0 {
            "-".to_owned()
        } else {
            format!("{:.0} / {:.0}", p.p50, p.max)
        }
    };
    row(
        s,
        "SOS delivered / planned",
        Some(format!("{} / {}", f.delivered, f.planned)),
        none(),
        None,
    );
    row(
        s,
        "  to offline contacts, via mailbox",
        Some(format!("{} / {}", f.via_mailbox, f.planned_offline)),
        none(),
        None,
    );
    row(
        s,
        "SOS delivery ms p50/max (online)",
        Some(ms(&f.delivery_ms)),
        none(),
        None,
    );
    row(
        s,
        "  offline: back online → alert",
        Some(ms(&f.after_rejoin_ms)),
        none(),
        None,
    );
    row(
        s,
        "  offline: sos() → alert",
        Some(ms(&f.offline_delivery_ms)),
        none(),
        None,
    );
    if f.to_background > 0 {
        row(
            s,
            "  background: sos() → alert",
            Some(ms(&f.background_delivery_ms)),
            none(),
            None,
        );
    }
    row(
        s,
        "SOS sos() → ack ms p50 (acked)",
        Some(if f.ack_ms.n == 0 {
            "-".to_owned()
        } else {
            format!("{:.0} ({})", f.ack_ms.p50, f.acked)
        }),
        none(),
        None,
    );
}

/// The human-readable table.
pub fn table(rep: &SimReport) -> String {
    let mut s = String::new();
    let c = &rep.config;
    let _ = writeln!(
        s,
        "ronde sim — seed {} (replay with --seed {})\n  {} phones, {} relays, {} flooders, {} droppers over {} areas; \
         latency {}–{} ms, loss {:.1} %, churn {:.0} %/min, dilation {}×",
        c.seed,
        c.seed,
        c.phones,
        c.relays,
        c.flooders,
        c.droppers,
        rep.city_areas,
        c.latency_min.as_millis(),
        c.latency_max.as_millis(),
        100.0 * c.loss,
        100.0 * c.churn_per_min,
        c.dilation
    );
    let mesh = |g: &ronde_node::GossipTuning| {
        format!(
            "D {} (low {}, high {}, by score {}), IDONTWANT from {} bytes, latency bonus {}, grafting every {} heartbeats under {}",
            g.mesh_n,
            g.mesh_n_low,
            g.mesh_n_high,
            g.retain_scores,
            g.idontwant_threshold,
            g.latency_bonus,
            g.opportunistic_graft_ticks,
            g.opportunistic_graft_threshold
        )
    };
    let _ = writeln!(
        s,
        "  gossipsub mesh: {}; baseline: {}",
        mesh(&c.gossip),
        c.baseline_gossip
            .as_ref()
            .map_or_else(|| "the same".to_string(), mesh)
    );
    let _ = writeln!(
        s,
        "\n  {:<34} {:>16} {:>16} {:>9}",
        "", "ronde", "bare gossipsub", "ratio"
    );
    let (r, b) = (rep.ronde.as_ref(), rep.baseline.as_ref());
    let f = |o: Option<&Outcome>, g: &dyn Fn(&Outcome) -> String| o.map(g);
    let v = |o: Option<&Outcome>, g: &dyn Fn(&Outcome) -> f64| o.map(g);
    let ratio = |g: &dyn Fn(&Outcome) -> f64| match (r, b) {
        (Some(r), Some(b)) if g(b) != 0.0 => Some(g(r) / g(b)),
        _ => None,
    };
    row(
        &mut s,
        "reports published",
        f(r, &|o| o.reports.to_string()),
        f(b, &|o| o.reports.to_string()),
        None,
    );
    row(
        &mut s,
        "delivery (expected pairs)",
        f(r, &|o| {
            format!("{:.3} % ({})", 100.0 * o.delivery_ratio, o.expected)
        }),
        f(b, &|o| {
            format!("{:.3} % ({})", 100.0 * o.delivery_ratio, o.expected)
        }),
        ratio(&|o| o.delivery_ratio),
    );
    row(
        &mut s,
        "  missed by fresh joiners",
        f(r, &|o| o.missed_by_fresh_joiners.to_string()),
        f(b, &|o| o.missed_by_fresh_joiners.to_string()),
        None,
    );
    sos_rows(&mut s, r, b);
    if let Some(bg) = r.and_then(|o| o.background.as_ref()) {
        let mut phones = |name: &str, mb: f64, wakeups: f64, n: usize| {
            let v = format!("{mb:.3}, {wakeups:.1} ({n})");
            row(&mut s, name, Some(v), b.map(|_| "-".to_owned()), None);
        };
        phones(
            "background phones: MB/h, wake-ups/h",
            bg.mb_per_hour,
            bg.wakeups_per_hour,
            bg.phones,
        );
        if bg.alerted_phones > 0 {
            phones(
                "  sent an SOS: MB/h, wake-ups/h",
                bg.alerted_mb_per_hour,
                bg.alerted_wakeups_per_hour,
                bg.alerted_phones,
            );
        }
    }
    for (name, g) in [
        (
            "latency p50 (ms)",
            (|o: &Outcome| o.latency_ms.p50) as fn(&Outcome) -> f64,
        ),
        ("latency p95 (ms)", |o| o.latency_ms.p95),
        ("latency p99 (ms)", |o| o.latency_ms.p99),
        ("lower bound p50 (ms)", |o| o.lower_bound_ms.p50),
        ("lower bound p99 (ms)", |o| o.lower_bound_ms.p99),
        ("latency / lower bound, p50", |o| o.ratio_to_lower_bound.p50),
        ("latency / lower bound, p99", |o| o.ratio_to_lower_bound.p99),
        ("duplicates per delivered report", |o| {
            o.duplicates_per_delivery
        }),
        ("phone MB/h sent", |o| o.phone_traffic.sent_mb_per_hour),
        ("phone MB/h received", |o| o.phone_traffic.recv_mb_per_hour),
        ("relay MB/h sent+received", |o| {
            o.relay_traffic.total_mb_per_hour
        }),
        ("memory per node (MB, warm)", |o| o.memory_per_node_mb),
        ("memory per node (MB, end)", |o| o.memory_per_node_end_mb),
        ("mean links per device", |o| o.mean_degree),
        ("runtime lag p99 (model ms)", |o| {
            o.saturation.lag_p99_model_ms
        }),
        ("process CPU cores", |o| o.saturation.process_cores),
        ("machine busy (fraction)", |o| o.saturation.machine_busy),
    ] {
        row(
            &mut s,
            name,
            v(r, &g).map(|x| format!("{x:.2}")),
            v(b, &g).map(|x| format!("{x:.2}")),
            ratio(&g),
        );
    }
    row(
        &mut s,
        "wall time (s) / set-up (s)",
        f(r, &|o| format!("{:.0} / {:.0}", o.wall_secs, o.setup_secs)),
        f(b, &|o| format!("{:.0} / {:.0}", o.wall_secs, o.setup_secs)),
        None,
    );
    protocol_rows(&mut s, r, b);
    if let Some(r) = r {
        let _ = writeln!(
            s,
            "\n  expiry: {} reports visible before, {} after every report expired; \
             flood reports accepted: {} forged/garbage, {} expired/future; \
             {} starts, {} failures, {} events lost",
            r.visible_before_expiry.unwrap_or(0),
            r.visible_after_expiry.unwrap_or(0),
            r.forged_accepted.unwrap_or(0),
            r.stale_accepted.unwrap_or(0),
            r.starts,
            r.failures,
            r.lagged_events
        );
    }
    for o in [r, b].into_iter().flatten() {
        let _ = writeln!(s, "  {}: {}", o.overlay.name(), o.saturation.verdict);
    }
    let _ = writeln!(s, "\n  targets:");
    for t in &rep.targets {
        let mark = match t.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        let _ = writeln!(
            s,
            "  [{mark}] {:<40} {:>14}  (target {})",
            t.name, t.measured, t.target
        );
    }
    let spam: Vec<(&str, &crate::spam::SpamFigures)> = [
        ("undefended", rep.ronde_undefended.as_ref()),
        ("defended", rep.ronde.as_ref()),
    ]
    .into_iter()
    .filter_map(|(n, o)| Some((n, o?.spam.as_ref()?)))
    .collect();
    s.push_str(&crate::spam::table(&spam));
    s
}

/// (name, colour, points) of a chart line.
type Series<'a> = (&'a str, &'a str, &'a [(f64, f64)]);
type Points = Vec<(f64, f64)>;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG chart: latency CDFs (Ronde, baseline, lower bound) and delivery
/// over time.
pub fn svg(rep: &SimReport) -> String {
    let (w, h) = (1000.0, 440.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">ronde sim: {} phones, {} relays, seed {}, dilation {}×</text>"#,
        w / 2.0,
        rep.config.phones,
        rep.config.relays,
        rep.config.seed,
        rep.config.dilation
    );
    let series: Vec<Series<'_>> = [
        rep.ronde
            .as_ref()
            .map(|o| ("ronde", "#d62728", o.latency_cdf.as_slice())),
        rep.baseline
            .as_ref()
            .map(|o| ("bare gossipsub", "#1f77b4", o.latency_cdf.as_slice())),
        rep.ronde
            .as_ref()
            .map(|o| ("lower bound", "#7f7f7f", o.lower_bound_cdf.as_slice())),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Up to 1.5 × the largest 99th percentile: a lone outlier does not
    // squash the curves (lines past it run along the right edge).
    let xmax = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().filter(|(_, q)| *q <= 0.99).map(|(x, _)| *x))
        .fold(100.0f64, f64::max)
        * 1.5;
    let xmax = nice_ceiling(xmax);
    // Left panel: latency CDF.
    let (x0, y0, pw, ph) = (60.0, 50.0, 400.0, 320.0);
    axes(
        &mut s,
        x0,
        y0,
        pw,
        ph,
        xmax,
        "latency (model ms)",
        1.0,
        "fraction of deliveries",
    );
    for (i, (name, color, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    x0 + pw * (x / xmax).min(1.0),
                    y0 + ph * (1.0 - y)
                )
            })
            .collect();
        let dash = if *name == "lower bound" {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        let ly = y0 + ph - 60.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            x0 + pw - 150.0,
            x0 + pw - 130.0,
            x0 + pw - 125.0,
            ly + 4.0,
            esc(name)
        );
    }
    // Right panel: delivery over time.
    let (x1, y1) = (560.0, 50.0);
    let tmax = nice_ceiling(rep.config.end());
    let lines: Vec<(&str, &str, Points)> = [
        rep.ronde.as_ref().map(|o| ("ronde", "#d62728", o)),
        rep.baseline
            .as_ref()
            .map(|o| ("bare gossipsub", "#1f77b4", o)),
    ]
    .into_iter()
    .flatten()
    .map(|(n, c, o)| {
        (
            n,
            c,
            o.timeline
                .iter()
                .filter(|sl| sl.expected > 0)
                .map(|sl| (sl.t, sl.delivered as f64 / sl.expected as f64))
                .collect(),
        )
    })
    .collect();
    let ymin = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y))
        .fold(0.99f64, f64::min)
        .max(0.0);
    let ymin = (ymin * 100.0).floor() / 100.0;
    axes_range(
        &mut s,
        x1,
        y1,
        pw,
        ph,
        tmax,
        "time (model s)",
        ymin,
        1.0,
        "delivery ratio",
    );
    if let Some((a, d)) = rep.config.partition {
        let (a, b) = (a.as_secs_f64(), (a + d).as_secs_f64());
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{y1}" width="{:.1}" height="{ph}" fill="#ffdd88" opacity="0.4"/><text x="{:.1}" y="{}">partition</text>"##,
            x1 + pw * a / tmax,
            pw * (b - a) / tmax,
            x1 + pw * a / tmax + 2.0,
            y1 + 12.0
        );
    }
    for (i, (name, color, pts)) in lines.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(t, y)| {
                format!(
                    "{:.1},{:.1}",
                    x1 + pw * (t / tmax).min(1.0),
                    y1 + ph * (1.0 - (y - ymin) / (1.0 - ymin).max(1e-9))
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for p in &path {
            if let Some((x, y)) = p.split_once(',') {
                let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"#);
            }
        }
        let ly = y1 + ph - 40.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            x1 + pw - 150.0,
            x1 + pw - 130.0,
            x1 + pw - 125.0,
            ly + 4.0,
            esc(name)
        );
    }
    if let Some(r) = &rep.ronde {
        if r.saturation.saturated {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#d62728" font-size="13">CPU-SATURATED: latencies are an upper bound (see the JSON's saturation verdict)</text>"##,
                w / 2.0,
                h - 6.0
            );
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

#[allow(clippy::too_many_arguments)]
fn axes(
    s: &mut String,
    x0: f64,
    y0: f64,
    pw: f64,
    ph: f64,
    xmax: f64,
    xl: &str,
    ymax: f64,
    yl: &str,
) {
    axes_range(s, x0, y0, pw, ph, xmax, xl, 0.0, ymax, yl);
}

#[allow(clippy::too_many_arguments)]
fn axes_range(
    s: &mut String,
    x0: f64,
    y0: f64,
    pw: f64,
    ph: f64,
    xmax: f64,
    xl: &str,
    ymin: f64,
    ymax: f64,
    yl: &str,
) {
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let x = x0 + pw * f;
        let y = y0 + ph * (1.0 - f);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y0 + ph,
            y0 + ph + 16.0,
            fmt_tick(xmax * f)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + pw,
            x0 - 6.0,
            y + 4.0,
            fmt_tick(ymin + (ymax - ymin) * f)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        x0 + pw / 2.0,
        y0 + ph + 34.0,
        esc(xl)
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        x0 - 44.0,
        y0 + ph / 2.0,
        x0 - 44.0,
        y0 + ph / 2.0,
        esc(yl)
    );
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if (v * 10.0).fract().abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(730.0), 1000.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2100.0), 2500.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
