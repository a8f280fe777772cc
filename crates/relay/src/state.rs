//! What every part of a running relay shares ([`Shared`]: configuration,
//! database, directory, counters, clock, node, dashboard sessions), and the
//! work that both the daemon's loops ([`crate::server`]) and the HTTP
//! handlers ([`crate::http`]) do on it: checking a phone's flag, the
//! suppression settings, the summary of a period.
//!
//! It sits below both: it imports neither.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ronde_node::{Clock, Node};
use ronde_protocol::Area;

use crate::config::RelayConfig;
use crate::directory::{DirError, DirectoryService};
use crate::metrics::Metrics;
use crate::query::{self, Filter, PlaceLine, Suppression};
use crate::rules::Rules;
use crate::store::RelayStore;

/// What every part of the relay shares.
pub struct Shared {
    /// The configuration.
    pub config: RelayConfig,
    /// The areas followed.
    pub areas: Vec<Area>,
    /// The aggregation rules.
    pub rules: Rules,
    /// The database.
    pub store: RelayStore,
    /// The directory.
    pub directory: DirectoryService,
    /// Counters.
    pub metrics: Metrics,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The relay's node.
    pub node: Node,
    /// The token issuer: today's and tomorrow's keys, listed in the
    /// directory. (Serving `/ronde/token/1` is not built yet.)
    pub tokens: Mutex<crate::tokens::TokenIssuer>,
    /// Dashboard sessions: id → expiry.
    pub sessions: Mutex<HashMap<String, u64>>,
}

/// Check and count a flag from a phone, whichever way it came (HTTP
/// `POST /flags` or libp2p `/ronde/flag/1`), off the runtime: `Ok(true)`
/// if new, `Ok(false)` if already counted. `None` if the check could not
/// run.
pub async fn accept_flag(shared: &Arc<Shared>, bytes: Vec<u8>) -> Option<Result<bool, DirError>> {
    let now = shared.clock.now();
    let s = shared.clone();
    // The proof-of-work check is one hash and the signature check is
    // cheap, but keep the runtime free of anything that could stall it.
    let res = tokio::task::spawn_blocking(move || s.directory.accept_flag(&bytes, now))
        .await
        .ok()?;
    match &res {
        Ok(true) => {
            shared.metrics.flags.fetch_add(1, Ordering::Relaxed);
        }
        Ok(false) => {}
        Err(_) => {
            shared
                .metrics
                .directory_refused
                .fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(res)
}

/// The suppression settings of a relay.
pub fn suppression(s: &Shared) -> Suppression {
    Suppression {
        k: s.config.aggregates.k,
        strict: s.config.aggregates.strict,
    }
}

/// The HTML summary of a period: published totals, trend, hotspots, and the
/// places to follow up (not fresh, or flagged).
pub fn summary(shared: &Shared, f: &Filter, lang: query::Lang) -> Result<String, DirError> {
    let tz = &shared.config.local_time();
    let (a, b) = f.hour_range(tz);
    let rows = shared.store.rows(a, b)?;
    let sup = suppression(shared);
    let mut meta = query::ExportMeta::new(&shared.config.city, f, sup);
    meta.suppressed_as_flood = shared.store.suppressed(a, b)?.iter().map(|(_, n)| n).sum();
    let mut hot = query::hotspots(&rows, f, tz, sup, 10);
    crate::maps::name_hotspots(shared, &mut hot);
    let days = query::trend(&rows, f, tz, sup);
    let places: Vec<PlaceLine> = shared
        .directory
        .place_views(shared.clock.now())?
        .into_iter()
        .filter(|v| v.freshness.as_str() != "fresh" || !v.flags.is_empty())
        .map(|v| PlaceLine {
            name: v.place.name,
            status: v.freshness.as_str(),
            flags: v.flags.values().sum(),
        })
        .collect();
    Ok(query::summary_html(&meta, &hot, &days, &places, lang))
}
