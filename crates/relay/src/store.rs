//! The relay's sled database: aggregates, the ids of live reports, and the
//! directory (places, mediators, heartbeats, flags).
//!
//! Trees (schema version 2, every integer big-endian):
//!
//! | tree         | key                                   | value |
//! |--------------|---------------------------------------|-------|
//! | `meta`       | `schema_version`, `directory_serial`  | u32 / u64 |
//! | `agg`        | UTC hour (u32) ‖ cell (7, `-`-padded) ‖ category (u8) | count (u64) |
//! | `live_batches` | last expires_at of the batch (u64) ‖ sequence (u64) | per report of the batch: id (32) ‖ expires_at (u64) ‖ observed_at (u64) ‖ category (u8) ‖ cell (7) |
//! | `flood`      | UTC hour (u32) ‖ cell (7)             | counted (u64) ‖ suppressed as a flood (u64) |
//! | `places`     | place id (16)                         | [`SafePlace::to_bytes`] |
//! | `mediators`  | id (16)                               | [`Mediator::to_bytes`] |
//! | `heartbeats` | place id (16)                         | [`Heartbeat::to_bytes`] |
//! | `flags`      | flag id (32)                          | place id (16) ‖ reason (u8) ‖ observed_at (u64) |
//!
//! **Memory.** The ids of the live reports counted (or suppressed) and the
//! counts of the hours that live reports can still fall in are kept in
//! memory: deduplication reads no tree, and a batch of reports costs one
//! sled write per aggregate row it changes plus one for the batch's ids
//! (version 1 kept each id under its own key in a tree `live`: a read and
//! a write more per report). The ids are read back from `live_batches`
//! when the store opens; an hour's counts are read from `agg` the first
//! time a report of that hour arrives.
//!
//! **Durability.** A batch of reports is counted in one sled transaction
//! over `live_batches`, `agg` and `flood`: the ids and the counts land
//! together or not at all, so a crash can neither lose the id of a counted
//! report (and count it twice) nor keep an id without its count. The
//! ingest loop counts a whole batch of reports in one such transaction
//! ([`RelayStore::ingest_many`]) and calls
//! [`RelayStore::flush`] after each batch and only then counts the batch as *acknowledged*
//! (`ronde_relay_reports_acknowledged_total`): an acknowledged aggregate
//! survives `kill -9` and power loss. Reports received but not yet flushed
//! are still in the node's own store and are counted again (deduplicated)
//! by the catch-up at the next start.
//!
//! **Floods.** A cell counts at most [`Rules::cell_hour_cap`] reports per
//! UTC hour (every category together: the sum of its `agg` rows of the
//! hour); the rest are remembered with the ids (so counted once) and added
//! to the hour's `suppressed` in `flood`, in the same transaction. A `flood`
//! row is written only when a report is suppressed (its `counted` is the
//! cell's count then); version 1 wrote it for every report.
//!
//! **Retention.** An entry of `live_batches` is deleted when the last of
//! its reports expires (about 30 minutes); nothing else of a report is
//! kept. `agg` rows older than the retention period are deleted. Flags are
//! kept 30 days.
//!
//! **Migration.** A version 1 database is migrated when it opens: the ids
//! of `live` are written to `live_batches` and the version stamped 2 in
//! one transaction, then `live` is dropped.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ronde_protocol::directory::{
    FlagReason, Heartbeat, Mediator, PlaceId, SafePlace, VerifiedFlag,
};
use ronde_protocol::{Category, Cell, ReportId};
use sled::transaction::TransactionError;
use sled::Transactional;

use crate::rules::{BucketKey, LiveEntry, Observation, Refusal, Rules, HOUR};

/// Version of the layout above.
pub const SCHEMA_VERSION: u32 = 2;
/// How long flags are kept, seconds.
pub const FLAG_RETENTION_SECS: u64 = 30 * 86_400;

const CELL_LEN: usize = 7;
const AGG_KEY_LEN: usize = 4 + CELL_LEN + 1;
const LIVE_VALUE_LEN: usize = 8 + 8 + 1 + CELL_LEN;
const LIVE_RECORD_LEN: usize = 32 + LIVE_VALUE_LEN;
/// Reports per `live_batches` entry when a version 1 `live` tree is
/// migrated.
const MIGRATION_CHUNK: usize = 512;
/// The per-category counts of one cell in one hour, by [`Category::ALL`]
/// order.
type CellCounts = [u64; Category::ALL.len()];

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error("the relay database at {0} is in use by another process")]
    Locked(PathBuf),
    /// The database was written by a newer relay.
    #[error("the relay database at {path} has schema version {found}; this relay reads version {SCHEMA_VERSION}")]
    NewerVersion {
        /// Where.
        path: PathBuf,
        /// The version on disk.
        found: u32,
    },
    /// Anything else sled or the disk said.
    #[error("relay database error at {path}: {source}")]
    Sled {
        /// Where.
        path: PathBuf,
        /// What.
        source: sled::Error,
    },
    /// A stored value that does not decode.
    #[error("corrupt entry in tree {0}")]
    Corrupt(&'static str),
}

/// What [`RelayStore::ingest`] says of one report: counted (in this
/// bucket), refused by the rules or as a duplicate, or a storage error.
pub type Counted = Result<Result<BucketKey, Refusal>, StoreError>;

/// Reports suppressed as a flood in one (UTC hour, cell).
pub type Suppressed = ((u32, Cell), u64);

/// What the store keeps in memory (see the module doc).
#[derive(Default)]
struct Memory {
    /// The live reports counted or suppressed.
    live: HashMap<ReportId, LiveEntry>,
    /// The counts of the hours read so far from `agg`, per cell; a cell
    /// with a row that does not decode is in `damaged`.
    hours: BTreeMap<u32, Hour>,
}

#[derive(Default)]
struct Hour {
    cells: HashMap<[u8; CELL_LEN], CellCounts>,
    damaged: HashSet<[u8; CELL_LEN]>,
}

/// The relay's database. Cheap to clone (sled handles and the memory are
/// shared).
#[derive(Clone)]
pub struct RelayStore {
    path: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    agg: sled::Tree,
    live_batches: sled::Tree,
    flood: sled::Tree,
    memory: Arc<Mutex<Memory>>,
    places: sled::Tree,
    mediators: sled::Tree,
    heartbeats: sled::Tree,
    flags: sled::Tree,
}

fn cell_key(cell: &Cell) -> [u8; CELL_LEN] {
    let mut k = [b'-'; CELL_LEN];
    let s = cell.as_str().as_bytes();
    k[..s.len()].copy_from_slice(s);
    k
}

fn cell_from_key(k: &[u8]) -> Option<Cell> {
    let s = std::str::from_utf8(k).ok()?;
    s.trim_end_matches('-').parse().ok()
}

fn agg_key(key: &BucketKey) -> [u8; AGG_KEY_LEN] {
    let mut k = [0u8; AGG_KEY_LEN];
    k[..4].copy_from_slice(&key.hour.to_be_bytes());
    k[4..4 + CELL_LEN].copy_from_slice(&cell_key(&key.cell));
    k[AGG_KEY_LEN - 1] = key.category.code();
    k
}

fn parse_agg(k: &[u8], v: &[u8]) -> Option<(BucketKey, u64)> {
    if k.len() != AGG_KEY_LEN {
        return None;
    }
    let hour = u32::from_be_bytes(k[..4].try_into().ok()?);
    let cell = cell_from_key(&k[4..4 + CELL_LEN])?;
    let category = Category::from_code(k[AGG_KEY_LEN - 1])?;
    let n = u64::from_be_bytes(v.try_into().ok()?);
    Some((
        BucketKey {
            hour,
            cell,
            category,
        },
        n,
    ))
}

fn live_value(obs: &Observation) -> [u8; LIVE_VALUE_LEN] {
    let mut v = [0u8; LIVE_VALUE_LEN];
    v[..8].copy_from_slice(&obs.expires_at.to_be_bytes());
    v[8..16].copy_from_slice(&obs.observed_at.to_be_bytes());
    v[16] = obs.category.code();
    v[17..].copy_from_slice(&cell_key(&obs.cell));
    v
}

fn live_record(obs: &Observation) -> [u8; LIVE_RECORD_LEN] {
    let mut v = [0u8; LIVE_RECORD_LEN];
    v[..32].copy_from_slice(&obs.id.0);
    v[32..].copy_from_slice(&live_value(obs));
    v
}

/// The records of a `live_batches` entry; `None` if it does not decode.
fn parse_live_batch(v: &[u8]) -> Option<Vec<(ReportId, LiveEntry)>> {
    if !v.len().is_multiple_of(LIVE_RECORD_LEN) {
        return None;
    }
    v.chunks_exact(LIVE_RECORD_LEN)
        .map(|r| {
            let id = ReportId(r[..32].try_into().ok()?);
            Some((id, parse_live(&r[32..])?))
        })
        .collect()
}

fn live_batch_key(last_expiry: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&last_expiry.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn category_index(c: Category) -> usize {
    usize::from(c.code().saturating_sub(1)).min(Category::ALL.len() - 1)
}

fn live_entry(obs: &Observation) -> LiveEntry {
    LiveEntry {
        cell: obs.cell,
        category: obs.category,
        observed_at: obs.observed_at,
        expires_at: obs.expires_at,
    }
}

fn parse_live(v: &[u8]) -> Option<LiveEntry> {
    if v.len() != LIVE_VALUE_LEN {
        return None;
    }
    Some(LiveEntry {
        expires_at: u64::from_be_bytes(v[..8].try_into().ok()?),
        observed_at: u64::from_be_bytes(v[8..16].try_into().ok()?),
        category: Category::from_code(v[16])?,
        cell: cell_from_key(&v[17..])?,
    })
}

const FLOOD_KEY_LEN: usize = 4 + CELL_LEN;

fn flood_key(key: &BucketKey) -> [u8; FLOOD_KEY_LEN] {
    let mut k = [0u8; FLOOD_KEY_LEN];
    k.copy_from_slice(&agg_key(key)[..FLOOD_KEY_LEN]);
    k
}

fn parse_flood(v: &[u8]) -> Option<(u64, u64)> {
    if v.len() != 16 {
        return None;
    }
    Some((be_u64(&v[..8])?, be_u64(&v[8..])?))
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Counts of flags per reason.
pub type FlagCounts = std::collections::BTreeMap<FlagReason, u64>;

impl RelayStore {
    /// Open (or create) the database in `<data_dir>/aggregates`.
    pub fn open(data_dir: &Path) -> Result<RelayStore, StoreError> {
        let path = data_dir.join("aggregates");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(1_000))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked(path.clone())
                }
                sled::Error::Io(ref io) if io.to_string().contains("lock") => {
                    StoreError::Locked(path.clone())
                }
                source => StoreError::Sled {
                    path: path.clone(),
                    source,
                },
            })?;
        let err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        let tree = |name: &str| db.open_tree(name).map_err(err);
        let store = RelayStore {
            meta: tree("meta")?,
            agg: tree("agg")?,
            live_batches: tree("live_batches")?,
            flood: tree("flood")?,
            places: tree("places")?,
            mediators: tree("mediators")?,
            heartbeats: tree("heartbeats")?,
            flags: tree("flags")?,
            memory: Arc::default(),
            path: path.clone(),
            db,
        };
        match store.meta.get("schema_version").map_err(err)? {
            None => {
                store
                    .meta
                    .insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(err)?;
            }
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("meta"))?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerVersion { path, found });
                }
                if found < 2 {
                    store.migrate_live_ids()?;
                }
            }
        }
        // A migration interrupted after its transaction left `live` behind.
        if store.db.tree_names().iter().any(|n| n.as_ref() == b"live") {
            store.db.drop_tree("live").map_err(err)?;
        }
        store.load_live_ids()?;
        Ok(store)
    }

    /// Version 1 to 2: the ids of `live` into `live_batches` and the new
    /// version, in one transaction (`live` itself is dropped after it).
    fn migrate_live_ids(&self) -> Result<(), StoreError> {
        let live = self.db.open_tree("live").map_err(|e| self.err(e))?;
        let mut records = Vec::new();
        for kv in live.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let id = <[u8; 32]>::try_from(k.as_ref()).map(ReportId);
            match (id, parse_live(&v)) {
                (Ok(id), Some(e)) => records.push((e.expires_at, id, v)),
                _ => tracing::warn!("skipping a damaged entry of the live ids"),
            }
        }
        records.sort_by_key(|(t, id, _)| (*t, *id));
        let mut entries = Vec::new();
        for chunk in records.chunks(MIGRATION_CHUNK) {
            let last = chunk.last().map_or(0, |(t, _, _)| *t);
            let seq = self.db.generate_id().map_err(|e| self.err(e))?;
            let mut value = Vec::with_capacity(chunk.len() * LIVE_RECORD_LEN);
            for (_, id, v) in chunk {
                value.extend_from_slice(&id.0);
                value.extend_from_slice(v);
            }
            entries.push((live_batch_key(last, seq), value));
        }
        let res: Result<(), TransactionError<()>> =
            (&self.live_batches, &self.meta).transaction(|(batches, meta)| {
                for (k, v) in &entries {
                    batches.insert(&k[..], v.as_slice())?;
                }
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                Ok(())
            });
        match res {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => return Err(StoreError::Corrupt("live")),
            Err(TransactionError::Storage(e)) => return Err(self.err(e)),
        }
        self.db.flush().map_err(|e| self.err(e))?;
        drop(live);
        self.db.drop_tree("live").map_err(|e| self.err(e))?;
        tracing::info!(
            ids = records.len(),
            "relay database migrated to schema version {SCHEMA_VERSION}"
        );
        Ok(())
    }

    /// Read the ids of `live_batches` into memory.
    fn load_live_ids(&self) -> Result<(), StoreError> {
        let mut mem = self.memory();
        for kv in self.live_batches.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            match parse_live_batch(&v) {
                Some(records) => mem.live.extend(records),
                None => tracing::warn!("skipping a damaged entry of the live ids"),
            }
        }
        Ok(())
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves nothing half-done that
        // matters: memory is only changed after a transaction succeeded.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Read an hour's aggregate rows into memory, if not yet there.
    fn load_hour<'m>(&self, mem: &'m mut Memory, hour: u32) -> Result<&'m mut Hour, StoreError> {
        let slot = match mem.hours.entry(hour) {
            Entry::Occupied(e) => return Ok(e.into_mut()),
            Entry::Vacant(slot) => slot,
        };
        let mut h = Hour::default();
        let end = hour.checked_add(1).map(u32::to_be_bytes);
        let range = match end {
            Some(end) => self.agg.range(hour.to_be_bytes()..end),
            None => self.agg.range(hour.to_be_bytes()..),
        };
        for kv in range {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let Some(cell) = k.get(4..4 + CELL_LEN).and_then(|c| c.try_into().ok()) else {
                tracing::warn!("skipping an aggregate row with a malformed key");
                continue;
            };
            match parse_agg(&k, &v) {
                Some((key, n)) => {
                    h.cells.entry(cell).or_default()[category_index(key.category)] = n;
                }
                None => {
                    h.damaged.insert(cell);
                }
            }
        }
        Ok(slot.insert(h))
    }

    /// Count a report if the rules admit it and it was not counted yet: one
    /// transaction, as [`RelayStore::ingest_many`] for a batch of one.
    pub fn ingest(&self, rules: &Rules, obs: &Observation, now: u64) -> Counted {
        let mut out = self.ingest_many(rules, std::slice::from_ref(obs), now)?;
        out.pop().unwrap_or(Err(StoreError::Corrupt("agg")))
    }

    /// Count a batch of reports: the same outcome, report by report and in
    /// order, as [`RelayStore::ingest`] on each (a report repeated in the
    /// batch is a duplicate the second time), in one transaction over
    /// `live_batches`, `agg` and `flood` for the whole batch. A report of a
    /// cell whose aggregate row of the hour does not decode fails alone.
    pub fn ingest_many(
        &self,
        rules: &Rules,
        batch: &[Observation],
        now: u64,
    ) -> Result<Vec<Counted>, StoreError> {
        let cap = rules.cell_hour_cap();
        let mut guard = self.memory();
        let mem = &mut *guard;
        let mut out: Vec<Counted> = Vec::with_capacity(batch.len());
        // What the batch changes, decided in memory before anything is
        // written: its new ids, the new counts of the cells it touches
        // (hour, cell → counts), the flood rows it adds to.
        let mut ids: Vec<&Observation> = Vec::new();
        let mut seen: HashSet<ReportId> = HashSet::new();
        let mut cells: BTreeMap<(u32, [u8; CELL_LEN]), CellCounts> = BTreeMap::new();
        let mut rows: BTreeMap<BucketKey, u64> = BTreeMap::new();
        let mut floods: BTreeMap<[u8; FLOOD_KEY_LEN], (u64, u64)> = BTreeMap::new();
        for obs in batch {
            let key = match rules.admit(obs, now) {
                Ok(a) => a.key,
                Err(refusal) => {
                    out.push(Ok(Err(refusal)));
                    continue;
                }
            };
            if mem.live.contains_key(&obs.id) || seen.contains(&obs.id) {
                out.push(Ok(Err(Refusal::Duplicate)));
                continue;
            }
            let ck = cell_key(&key.cell);
            let counts = match cells.entry((key.hour, ck)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(slot) => {
                    let hour = self.load_hour(mem, key.hour)?;
                    if hour.damaged.contains(&ck) {
                        out.push(Err(StoreError::Corrupt("agg")));
                        continue;
                    }
                    slot.insert(hour.cells.get(&ck).copied().unwrap_or_default())
                }
            };
            let counted: u64 = counts.iter().sum();
            if counted >= cap {
                let fk = flood_key(&key);
                let row = match floods.get(&fk) {
                    Some(row) => Some(*row),
                    None => match self.flood.get(fk).map_err(|e| self.err(e))? {
                        Some(v) => match parse_flood(&v) {
                            Some(row) => Some(row),
                            None => {
                                out.push(Err(StoreError::Corrupt("flood")));
                                continue;
                            }
                        },
                        None => None,
                    },
                };
                let suppressed = row.map_or(0, |(_, s)| s) + 1;
                floods.insert(fk, (counted, suppressed));
                seen.insert(obs.id);
                ids.push(obs);
                out.push(Ok(Err(Refusal::Flood)));
                continue;
            }
            let slot = &mut counts[category_index(key.category)];
            *slot += 1;
            rows.insert(key, *slot);
            seen.insert(obs.id);
            ids.push(obs);
            out.push(Ok(Ok(key)));
        }
        if ids.is_empty() {
            return Ok(out);
        }
        let last_expiry = ids.iter().map(|o| o.expires_at).max().unwrap_or(0);
        let seq = self.db.generate_id().map_err(|e| self.err(e))?;
        let batch_key = live_batch_key(last_expiry, seq);
        let mut records = Vec::with_capacity(ids.len() * LIVE_RECORD_LEN);
        for obs in &ids {
            records.extend_from_slice(&live_record(obs));
        }
        let res: Result<(), TransactionError<()>> = (&self.live_batches, &self.agg, &self.flood)
            .transaction(|(batches, agg, flood)| {
                batches.insert(&batch_key[..], records.as_slice())?;
                for (key, n) in &rows {
                    agg.insert(&agg_key(key), &n.to_be_bytes())?;
                }
                for (fk, (counted, suppressed)) in &floods {
                    let mut v = [0u8; 16];
                    v[..8].copy_from_slice(&counted.to_be_bytes());
                    v[8..].copy_from_slice(&suppressed.to_be_bytes());
                    flood.insert(&fk[..], &v)?;
                }
                Ok(())
            });
        match res {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => return Err(StoreError::Corrupt("agg")),
            Err(TransactionError::Storage(e)) => return Err(self.err(e)),
        }
        // Written: now in memory.
        for obs in ids {
            mem.live.insert(obs.id, live_entry(obs));
        }
        for ((hour, ck), counts) in cells {
            if let Some(h) = mem.hours.get_mut(&hour) {
                h.cells.insert(ck, counts);
            }
        }
        Ok(out)
    }

    /// Write everything to disk; returns once it is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Write everything to disk, blocking.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Aggregate rows whose UTC hour is in `[first, end)`.
    pub fn rows(
        &self,
        first_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<(BucketKey, u64)>, StoreError> {
        let clamp = |h: i64| u32::try_from(h.max(0)).unwrap_or(u32::MAX);
        let (a, b) = (clamp(first_hour), clamp(end_hour));
        if a >= b {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for kv in self.agg.range(a.to_be_bytes()..b.to_be_bytes()) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(parse_agg(&k, &v).ok_or(StoreError::Corrupt("agg"))?);
        }
        Ok(out)
    }

    /// Reports suppressed as a flood in UTC hours `[first, end)`, per
    /// (hour, cell) with at least one.
    pub fn suppressed(
        &self,
        first_hour: i64,
        end_hour: i64,
    ) -> Result<Vec<Suppressed>, StoreError> {
        let clamp = |h: i64| u32::try_from(h.max(0)).unwrap_or(u32::MAX);
        let (a, b) = (clamp(first_hour), clamp(end_hour));
        let mut out = Vec::new();
        if a >= b {
            return Ok(out);
        }
        for kv in self.flood.range(a.to_be_bytes()..b.to_be_bytes()) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let (_, n) = parse_flood(&v).ok_or(StoreError::Corrupt("flood"))?;
            let hour = k
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .map(u32::from_be_bytes);
            let cell = k.get(4..).and_then(cell_from_key);
            match (hour, cell) {
                (Some(h), Some(c)) if n > 0 => out.push(((h, c), n)),
                (Some(_), Some(_)) => {}
                _ => return Err(StoreError::Corrupt("flood")),
            }
        }
        Ok(out)
    }

    /// Every aggregate row.
    pub fn all_rows(&self) -> Result<Vec<(BucketKey, u64)>, StoreError> {
        self.rows(0, i64::from(u32::MAX))
    }

    /// Reports live at `now` (cell, category, times; no id).
    pub fn live(&self, now: u64) -> Result<Vec<LiveEntry>, StoreError> {
        Ok(self
            .memory()
            .live
            .values()
            .filter(|e| e.expires_at > now)
            .copied()
            .collect())
    }

    /// Whether a report id is remembered (it is live and was counted).
    pub fn is_counted(&self, id: &ReportId) -> Result<bool, StoreError> {
        Ok(self.memory().live.contains_key(id))
    }

    /// Delete the ids of expired reports, aggregate rows before
    /// `keep_from_hour` and flags older than [`FLAG_RETENTION_SECS`].
    /// Returns (ids forgotten, rows deleted).
    pub fn purge(&self, now: u64, keep_from_hour: u32) -> Result<(usize, usize), StoreError> {
        let mut mem = self.memory();
        // Batches whose last report expired, then the expired ids.
        let end = live_batch_key(now.saturating_add(1), 0);
        for k in self.live_batches.range(..end).keys() {
            let k = k.map_err(|e| self.err(e))?;
            self.live_batches.remove(k).map_err(|e| self.err(e))?;
        }
        let before = mem.live.len();
        mem.live.retain(|_, e| e.expires_at > now);
        let forgotten = before - mem.live.len();
        // Hours no live report can fall in any more are read again from
        // `agg` if ever needed.
        let recent = u32::try_from((now / HOUR).saturating_sub(2)).unwrap_or(u32::MAX);
        mem.hours
            .retain(|h, _| *h >= recent && *h >= keep_from_hour);
        let mut deleted = 0;
        for kv in self.agg.range(..keep_from_hour.to_be_bytes()) {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            self.agg.remove(k).map_err(|e| self.err(e))?;
            deleted += 1;
        }
        for kv in self.flood.range(..keep_from_hour.to_be_bytes()) {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            self.flood.remove(k).map_err(|e| self.err(e))?;
        }
        drop(mem);
        for kv in self.flags.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let old = v
                .get(17..25)
                .and_then(be_u64)
                .is_none_or(|t| t.saturating_add(FLAG_RETENTION_SECS) < now);
            if old {
                self.flags.remove(k).map_err(|e| self.err(e))?;
            }
        }
        Ok((forgotten, deleted))
    }

    /// Number of live report ids kept.
    pub fn live_len(&self) -> usize {
        self.memory().live.len()
    }

    /// Number of aggregate rows.
    pub fn rows_len(&self) -> usize {
        self.agg.len()
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    // -- directory ---------------------------------------------------------

    /// Insert or replace a place.
    pub fn put_place(&self, p: &SafePlace) -> Result<(), StoreError> {
        let bytes = p.to_bytes().map_err(|_| StoreError::Corrupt("places"))?;
        self.places.insert(p.id.0, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A place by id.
    pub fn place(&self, id: &PlaceId) -> Result<Option<SafePlace>, StoreError> {
        match self.places.get(id.0).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => SafePlace::from_bytes(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("places")),
        }
    }

    /// Every place, by id.
    pub fn places(&self) -> Result<Vec<SafePlace>, StoreError> {
        self.places
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                SafePlace::from_bytes(&v).map_err(|_| StoreError::Corrupt("places"))
            })
            .collect()
    }

    /// Remove a place and its heartbeat; `false` if it was not there.
    pub fn remove_place(&self, id: &PlaceId) -> Result<bool, StoreError> {
        self.heartbeats.remove(id.0).map_err(|e| self.err(e))?;
        Ok(self.places.remove(id.0).map_err(|e| self.err(e))?.is_some())
    }

    /// Insert or replace a mediator.
    pub fn put_mediator(&self, m: &Mediator) -> Result<(), StoreError> {
        let bytes = m.to_bytes().map_err(|_| StoreError::Corrupt("mediators"))?;
        self.mediators
            .insert(m.id.0, bytes)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A mediator by id.
    pub fn mediator(&self, id: &PlaceId) -> Result<Option<Mediator>, StoreError> {
        match self.mediators.get(id.0).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => Mediator::from_bytes(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("mediators")),
        }
    }

    /// Every mediator, by id.
    pub fn mediators(&self) -> Result<Vec<Mediator>, StoreError> {
        self.mediators
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                Mediator::from_bytes(&v).map_err(|_| StoreError::Corrupt("mediators"))
            })
            .collect()
    }

    /// Remove a mediator; `false` if it was not there.
    pub fn remove_mediator(&self, id: &PlaceId) -> Result<bool, StoreError> {
        Ok(self
            .mediators
            .remove(id.0)
            .map_err(|e| self.err(e))?
            .is_some())
    }

    /// Keep a verified heartbeat if it is newer than the one stored;
    /// returns whether it was kept.
    pub fn put_heartbeat(&self, hb: &Heartbeat) -> Result<bool, StoreError> {
        if let Some(old) = self.heartbeat(&hb.place)? {
            if old.confirmed_at >= hb.confirmed_at {
                return Ok(false);
            }
        }
        self.heartbeats
            .insert(hb.place.0, hb.to_bytes())
            .map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// The latest heartbeat of a place.
    pub fn heartbeat(&self, id: &PlaceId) -> Result<Option<Heartbeat>, StoreError> {
        match self.heartbeats.get(id.0).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => Heartbeat::from_bytes(&v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("heartbeats")),
        }
    }

    /// Drop a place's heartbeat (its key changed).
    pub fn clear_heartbeat(&self, id: &PlaceId) -> Result<(), StoreError> {
        self.heartbeats.remove(id.0).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Record a verified flag; `false` if it was already recorded.
    pub fn add_flag(&self, flag: &VerifiedFlag) -> Result<bool, StoreError> {
        let mut v = Vec::with_capacity(25);
        v.extend_from_slice(&flag.flag.place.0);
        v.push(flag.flag.reason.code());
        v.extend_from_slice(&flag.flag.observed_at().to_be_bytes());
        let prev = self
            .flags
            .compare_and_swap(flag.id, None as Option<&[u8]>, Some(v))
            .map_err(|e| self.err(e))?;
        Ok(prev.is_ok())
    }

    /// Flags kept for a place, per reason.
    pub fn flag_counts(&self, id: &PlaceId) -> Result<FlagCounts, StoreError> {
        let mut out = FlagCounts::new();
        for kv in self.flags.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            if v.get(..16) == Some(&id.0[..]) {
                if let Some(r) = v.get(16).copied().and_then(FlagReason::from_code) {
                    *out.entry(r).or_insert(0) += 1;
                }
            }
        }
        Ok(out)
    }

    /// Total flags kept.
    pub fn flags_len(&self) -> usize {
        self.flags.len()
    }

    /// The last directory serial issued.
    pub fn directory_serial(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get("directory_serial")
            .map_err(|e| self.err(e))?
            .and_then(|v| be_u64(&v))
            .unwrap_or(0))
    }

    /// Remember the last directory serial issued.
    pub fn set_directory_serial(&self, serial: u64) -> Result<(), StoreError> {
        self.meta
            .insert("directory_serial", &serial.to_be_bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Aggregator, HOUR};
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_store_follows_the_in_memory_state_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(dir.path()).expect("open");
        let areas = ["u09tv", "u09ty"].map(|a| a.parse().expect("area"));
        let rules = Rules::new(areas);
        let mut model = Aggregator::new(rules.clone());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let cells = ["u09tvw1", "u09tvw2", "u09tyb0", "u09tu00", "u09ty"];
        let t0 = 1_790_000_000u64;
        let mut now = t0;
        for _ in 0..400 {
            now += rng.gen_range(0..120);
            let n: u8 = rng.gen_range(0..60);
            let cell_s = cells[rng.gen_range(0..cells.len())];
            let Ok(cell) = cell_s.parse() else { continue };
            let at = now - rng.gen_range(0..2_400);
            let obs = Observation {
                id: ReportId([n; 32]),
                category: Category::ALL[usize::from(n) % 9],
                cell,
                observed_at: at,
                expires_at: at + 1_800,
            };
            let a = model.ingest(&obs, now);
            let b = store.ingest(&rules, &obs, now).expect("ingest");
            assert_eq!(a, b);
            if rng.gen_bool(0.1) {
                model.expire(now);
                store.purge(now, 0).expect("purge");
            }
        }
        let rows: std::collections::BTreeMap<_, _> =
            store.all_rows().expect("rows").into_iter().collect();
        assert_eq!(&rows, model.counts());
        assert_same_live(&store, &model, now);
    }

    /// Issue 14: a flood of valid reports into one cell counts at most the
    /// cap per hour; the excess is remembered (a re-sent report is still a
    /// duplicate) and counted apart as suppressed as a flood; another cell
    /// and the next hour are untouched. The store and the model agree, one
    /// by one and in batches.
    #[test]
    fn a_flood_into_one_cell_is_capped_per_hour_and_the_excess_counted_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(dir.path()).expect("open");
        let rules = Rules::new(["u09tv".parse().expect("area")]).with_cell_hour_cap(5);
        let mut model = Aggregator::new(rules.clone());
        let hour0 = 1_790_000_000u64 / HOUR * HOUR;
        let obs = |n: u8, cell: &str, at: u64| Observation {
            id: ReportId([n; 32]),
            category: Category::ALL[usize::from(n) % 9],
            cell: cell.parse().expect("cell"),
            observed_at: at,
            expires_at: at + 3_600,
        };
        let now = hour0 + 600;
        let mut flood: Vec<Observation> = (0..12).map(|n| obs(n, "u09tvw1", hour0 + 60)).collect();
        flood.push(obs(100, "u09tvw2", hour0 + 60));
        let (one, batch) = flood.split_at(6);
        for o in one {
            assert_eq!(
                model.ingest(o, now),
                store.ingest(&rules, o, now).expect("ingest")
            );
        }
        let got = store.ingest_many(&rules, batch, now).expect("batch");
        for (o, g) in batch.iter().zip(got) {
            assert_eq!(model.ingest(o, now), g.expect("ingest"));
        }
        let counted: u64 = store.all_rows().expect("rows").iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 5 + 1, "the flooded cell counts 5, the other 1");
        let suppressed = store
            .suppressed(0, i64::from(u32::MAX))
            .expect("suppressed");
        let cell: Cell = "u09tvw1".parse().expect("cell");
        assert_eq!(suppressed, vec![(((hour0 / HOUR) as u32, cell), 7)]);
        assert_eq!(
            model.suppressed().into_iter().collect::<Vec<_>>(),
            suppressed
        );
        // A suppressed report sent again is a duplicate, not suppressed twice.
        assert_eq!(
            store.ingest(&rules, &flood[11], now).expect("ingest"),
            Err(Refusal::Duplicate)
        );
        // The next hour has its own allowance.
        let next = obs(200, "u09tvw1", hour0 + HOUR + 60);
        assert!(store
            .ingest(&rules, &next, hour0 + HOUR + 120)
            .expect("ingest")
            .is_ok());
    }

    /// Open again a store just dropped: sled may hold its lock a moment.
    fn reopen(dir: &Path) -> RelayStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match RelayStore::open(dir) {
                Ok(s) => return s,
                Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    /// A version 1 database (ids one per key in `live`, a `flood` row per
    /// counted report's cell-hour) is migrated when it opens: every id is
    /// still known (a re-sent report is a duplicate), counts and floods are
    /// untouched, `live` is gone and the version is 2; a migration
    /// interrupted after its transaction finishes at the next start.
    #[test]
    fn a_version_1_database_is_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Rules::new(["u09tv".parse().expect("area")]).with_cell_hour_cap(3);
        let mut model = Aggregator::new(rules.clone());
        let hour0 = 1_790_000_000u64 / HOUR * HOUR;
        let now = hour0 + 600;
        let obs = |n: u8, cell: &str| Observation {
            id: ReportId([n; 32]),
            category: Category::ALL[usize::from(n) % 9],
            cell: cell.parse().expect("cell"),
            observed_at: hour0 + 60 + u64::from(n),
            expires_at: hour0 + 1_800 + u64::from(n) * 10,
        };
        let old: Vec<Observation> = (0..5)
            .map(|n| obs(n, "u09tvw1"))
            .chain((5..7).map(|n| obs(n, "u09tvw2")))
            .collect();
        for o in &old {
            assert_ne!(model.ingest(o, now), Err(Refusal::Duplicate));
        }
        {
            // Written as version 1 did.
            let db = sled::open(dir.path().join("aggregates")).expect("sled");
            let meta = db.open_tree("meta").expect("meta");
            meta.insert("schema_version", &1u32.to_be_bytes())
                .expect("insert");
            let live = db.open_tree("live").expect("live");
            let agg = db.open_tree("agg").expect("agg");
            let flood = db.open_tree("flood").expect("flood");
            for o in &old {
                live.insert(o.id.0, &live_value(o)).expect("insert");
            }
            for (k, n) in model.counts() {
                agg.insert(agg_key(k), &n.to_be_bytes()).expect("insert");
            }
            for ((h, c), s) in model.suppressed() {
                let key = BucketKey {
                    hour: h,
                    cell: c,
                    category: Category::ALL[0],
                };
                let mut v = [0u8; 16];
                v[..8].copy_from_slice(&3u64.to_be_bytes());
                v[8..].copy_from_slice(&s.to_be_bytes());
                flood.insert(flood_key(&key), &v).expect("insert");
            }
            db.flush().expect("flush");
        }
        let store = reopen(dir.path());
        let version = store.meta.get("schema_version").expect("get").expect("set");
        assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes());
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"live"));
        assert_eq!(store.live_len(), old.len());
        assert_same_live(&store, &model, now);
        for o in &old {
            assert!(store.is_counted(&o.id).expect("is_counted"));
            assert_eq!(
                store.ingest(&rules, o, now).expect("ingest"),
                Err(Refusal::Duplicate)
            );
        }
        // New reports: the full cell is still full, the other is not.
        for o in [obs(20, "u09tvw1"), obs(21, "u09tvw2"), obs(22, "u09tvw2")] {
            assert_eq!(
                store.ingest(&rules, &o, now).expect("ingest"),
                model.ingest(&o, now)
            );
        }
        let rows: std::collections::BTreeMap<_, _> =
            store.all_rows().expect("rows").into_iter().collect();
        assert_eq!(&rows, model.counts());
        assert_eq!(
            store
                .suppressed(0, i64::from(u32::MAX))
                .expect("suppressed"),
            model.suppressed().into_iter().collect::<Vec<_>>()
        );
        // A `live` tree left behind by a migration interrupted after its
        // transaction is dropped at the next start; nothing else changes.
        store
            .db
            .open_tree("live")
            .expect("tree")
            .insert([99u8; 32], &[0u8; LIVE_VALUE_LEN])
            .expect("insert");
        drop((store, rows));
        let store = reopen(dir.path());
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"live"));
        assert_same_live(&store, &model, now);
        // Every id expired: purged, and still gone after a restart.
        let later = hour0 + 4 * HOUR;
        store.purge(later, 0).expect("purge");
        assert_eq!(store.live_len(), 0);
        assert_eq!(store.live_batches.len(), 0);
        drop(store);
        assert_eq!(reopen(dir.path()).live_len(), 0);
    }

    fn assert_same_live(store: &RelayStore, model: &Aggregator, now: u64) {
        let mut live = store.live(now).expect("live");
        let mut want = model.live(now);
        let order = |e: &LiveEntry| (e.expires_at, e.cell, e.category);
        live.sort_by_key(order);
        want.sort_by_key(order);
        assert_eq!(live, want);
    }

    /// A batch counted in one transaction gives, report by report, what
    /// counting them one at a time gives, duplicates within the batch
    /// included; and a corrupt row fails only its own reports.
    #[test]
    fn a_batch_is_counted_as_one_by_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(dir.path()).expect("open");
        let areas = ["u09tv", "u09ty"].map(|a| a.parse().expect("area"));
        let rules = Rules::new(areas);
        let mut model = Aggregator::new(rules.clone());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let cells = ["u09tvw1", "u09tvw2", "u09tyb0", "u09tu00"];
        let t0 = 1_790_000_000u64;
        let mut now = t0;
        let mut refusals = std::collections::BTreeSet::new();
        for _ in 0..60 {
            now += rng.gen_range(0..300);
            let batch: Vec<Observation> = (0..rng.gen_range(0..30))
                .map(|_| {
                    let n: u8 = rng.gen_range(0..80);
                    let at = now + 200 - rng.gen_range(0..2_400);
                    Observation {
                        id: ReportId([n; 32]),
                        category: Category::ALL[usize::from(n) % 9],
                        cell: cells[usize::from(n) % cells.len()].parse().expect("cell"),
                        observed_at: at,
                        expires_at: at + 1_800,
                    }
                })
                .collect();
            let want: Vec<_> = batch.iter().map(|o| model.ingest(o, now)).collect();
            let got: Vec<_> = store
                .ingest_many(&rules, &batch, now)
                .expect("ingest_many")
                .into_iter()
                .map(|c| c.expect("no storage error"))
                .collect();
            assert_eq!(got, want);
            refusals.extend(got.iter().filter_map(|r| r.err()));
            if rng.gen_bool(0.2) {
                model.expire(now);
                store.purge(now, 0).expect("purge");
            }
        }
        assert_eq!(refusals.len(), 4, "every kind of refusal: {refusals:?}");
        let rows: std::collections::BTreeMap<_, _> =
            store.all_rows().expect("rows").into_iter().collect();
        assert_eq!(&rows, model.counts());
        assert_same_live(&store, &model, now);

        // Reopened, the store holds the same ids and counts.
        drop(store);
        let store = reopen(dir.path());
        let again: std::collections::BTreeMap<_, _> =
            store.all_rows().expect("rows").into_iter().collect();
        assert_eq!(&again, model.counts());
        assert_same_live(&store, &model, now);

        // Damage one row on disk: a batch touching its cell and another
        // cell is counted, and only the damaged cell's report fails.
        let (k, _) = rows.iter().next().expect("a row");
        store
            .agg
            .insert(agg_key(k), b"bad".as_slice())
            .expect("insert");
        drop(store);
        let store = reopen(dir.path());
        let obs = |n: u8, cell: Cell| Observation {
            id: ReportId([200 + n; 32]),
            category: k.category,
            cell,
            observed_at: u64::from(k.hour) * crate::rules::HOUR + 60,
            expires_at: now + 600,
        };
        let other: Cell = if k.cell.as_str() == "u09tvw1" {
            "u09tvw2"
        } else {
            "u09tvw1"
        }
        .parse()
        .expect("cell");
        let batch = [obs(0, k.cell), obs(1, other)];
        let got = store
            .ingest_many(&rules, &batch, now)
            .expect("the batch is not lost");
        assert!(got[0].is_err(), "the damaged row's report fails");
        assert!(
            matches!(got[1], Ok(Ok(_))),
            "the other is counted: {:?}",
            got[1]
        );
    }
}
