//! Is the CPU the bottleneck? Measures taken while a run goes on.
//!
//! On two cores, a thousand nodes in one process saturate the CPU well
//! before the modelled network does, and an overloaded runtime shows up as
//! extra latency that looks like network latency. Three measures tell:
//!
//! * **Runtime lag**: a task sleeps 10 ms again and again and records how
//!   late it wakes. A Tokio worker that is free wakes it within a
//!   millisecond; when every worker is busy the task waits its turn, and
//!   so does every node's event loop and every delay line.
//! * **Driver lateness**: how late each planned event (report, join, move)
//!   starts compared with its scheduled wall-clock time.
//! * **CPU use**: this process's CPU seconds per wall second (from
//!   `/proc/self/stat`), and the whole machine's busy fraction (from
//!   `/proc/stat`), since other processes compete for the same cores.
//!
//! The verdict ([`Saturation`]) converts lag to model time (dividing by the
//! dilation) and compares it with the latencies being measured.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::peers::Clockwork;

/// Interval of the lag probe (wall clock).
pub const PROBE: Duration = Duration::from_millis(10);

/// Raw samples.
#[derive(Default)]
pub struct Monitor {
    inner: Mutex<MonInner>,
}

#[derive(Default)]
struct MonInner {
    /// (model time, lag in wall ms).
    lag: Vec<(f64, f64)>,
    /// Driver lateness, wall ms.
    late: Vec<f64>,
    /// (model time, process cores used, machine busy fraction).
    cpu: Vec<(f64, f64, f64)>,
}

fn proc_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13
    // after the command; in clock ticks (100 per second on Linux).
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / 100.0)
}

pub(crate) fn machine_busy() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0.0);
    Some((total - idle, total))
}

/// Resident set size of this process, bytes.
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Monitor {
    /// Start the probes; they stop when the returned guard is dropped.
    pub fn start(self: &Arc<Self>, cw: Clockwork) -> MonitorGuard {
        let cw2 = cw.clone();
        let me = self.clone();
        let lag = tokio::spawn(async move {
            loop {
                let target = Instant::now() + PROBE;
                tokio::time::sleep_until(target).await;
                let late = Instant::now().saturating_duration_since(target);
                let mut m = me.inner.lock().unwrap_or_else(|e| e.into_inner());
                m.lag.push((cw.now(), late.as_secs_f64() * 1e3));
            }
        });
        let me = self.clone();
        let cw = cw2;
        let cpu = tokio::spawn(async move {
            let mut last = (Instant::now(), proc_cpu_secs(), machine_busy());
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = (Instant::now(), proc_cpu_secs(), machine_busy());
                let wall = (now.0 - last.0).as_secs_f64();
                if let (Some(a), Some(b), Some((ba, ta)), Some((bb, tb)), true) =
                    (last.1, now.1, last.2, now.2, wall > 0.0)
                {
                    let cores = (b - a) / wall;
                    let busy = if tb > ta { (bb - ba) / (tb - ta) } else { 0.0 };
                    let mut m = me.inner.lock().unwrap_or_else(|e| e.into_inner());
                    m.cpu.push((cw.now(), cores, busy));
                }
                last = now;
            }
        });
        MonitorGuard(vec![lag, cpu])
    }

    /// A planned event started `late` after its scheduled time.
    pub fn late(&self, late: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.late.push(late.as_secs_f64() * 1e3);
    }

    /// Lag samples taken between model times `from` and `to`.
    pub fn lag_between(&self, from: f64, to: f64) -> Vec<f64> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.lag
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, l)| *l)
            .collect()
    }

    /// The most recent lag sample (wall ms).
    pub fn last_lag(&self) -> f64 {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.lag.last().map(|(_, l)| *l).unwrap_or(0.0)
    }

    /// Summarise the measures between model times `from` and `to`.
    pub fn summary(&self, from: f64, to: f64, dilation: f64, cores: usize) -> Saturation {
        let mut lag = self.lag_between(from, to);
        lag.sort_by(f64::total_cmp);
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut late = m.late.clone();
        late.sort_by(f64::total_cmp);
        let cpu: Vec<_> = m
            .cpu
            .iter()
            .filter(|(t, _, _)| *t >= from && *t <= to)
            .copied()
            .collect();
        let n = cpu.len().max(1) as f64;
        let proc_cores = cpu.iter().map(|c| c.1).sum::<f64>() / n;
        let machine = cpu.iter().map(|c| c.2).sum::<f64>() / n;
        let busy_share = cpu.iter().filter(|c| c.2 >= 0.95).count() as f64 / n;
        Saturation {
            lag_p50_wall_ms: crate::metrics::pct(&lag, 0.50),
            lag_p99_wall_ms: crate::metrics::pct(&lag, 0.99),
            lag_max_wall_ms: lag.last().copied().unwrap_or(0.0),
            lag_p99_model_ms: crate::metrics::pct(&lag, 0.99) / dilation,
            driver_late_p99_model_ms: crate::metrics::pct(&late, 0.99) / dilation,
            process_cores: proc_cores,
            machine_busy: machine,
            machine_saturated_share: busy_share,
            cores,
            saturated: false,
            verdict: String::new(),
        }
    }
}

/// Stops the probes when dropped.
pub struct MonitorGuard(Vec<tokio::task::JoinHandle<()>>);

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// What the probes say about a run.
#[derive(Debug, Clone, Serialize)]
pub struct Saturation {
    /// Median runtime lag, wall ms.
    pub lag_p50_wall_ms: f64,
    /// 99th percentile runtime lag, wall ms.
    pub lag_p99_wall_ms: f64,
    /// Worst runtime lag, wall ms.
    pub lag_max_wall_ms: f64,
    /// 99th percentile runtime lag in model time (wall / dilation).
    pub lag_p99_model_ms: f64,
    /// 99th percentile lateness of planned events, model ms.
    pub driver_late_p99_model_ms: f64,
    /// CPU cores this process used on average.
    pub process_cores: f64,
    /// Busy fraction of the whole machine on average.
    pub machine_busy: f64,
    /// Share of seconds when the machine was at least 95 % busy.
    pub machine_saturated_share: f64,
    /// Cores available.
    pub cores: usize,
    /// Whether the figures are distorted by CPU saturation.
    pub saturated: bool,
    /// The verdict in words.
    pub verdict: String,
}

impl Saturation {
    /// Judge: saturated if the runtime lag p99 (model time) is more than
    /// 10 % of the median propagation latency measured (clamped to
    /// 5–20 ms), or the driver's events started late by more than that
    /// (p99). A machine kept busy by other processes is noted; it matters
    /// through the lag it causes, which is what is measured.
    pub fn judge(&mut self, latency_p50_ms: f64, dilation: f64) {
        let lag = self.lag_p99_model_ms.max(self.driver_late_p99_model_ms);
        let limit = (0.1 * latency_p50_ms).clamp(5.0, 20.0);
        self.saturated = lag > limit;
        let busy = if self.machine_saturated_share > 0.25 {
            format!(
                " The machine was ≥95 % busy {:.0} % of the time (this process used {:.2} cores on average).",
                100.0 * self.machine_saturated_share,
                self.process_cores
            )
        } else {
            String::new()
        };
        self.verdict = if self.saturated {
            let factor = (lag / limit).max(2.0).ceil();
            format!(
                "CPU-SATURATED: runtime lag p99 {lag:.1} ms (model) against a limit of {limit:.1} ms. \
                 Latencies include waiting for a core and are an upper bound, not network figures. \
                 Rerun with --dilation {:.0} or fewer nodes.{busy}",
                (dilation * factor).max(dilation + 1.0)
            )
        } else {
            format!(
                "not saturated: runtime lag p99 {lag:.1} ms (model) within {limit:.1} ms; \
                 latencies are the modelled network's and the nodes' own processing.{busy}"
            )
        };
    }
}
