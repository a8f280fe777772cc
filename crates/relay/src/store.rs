//! The relay's sled database: aggregates, the ids of live reports, and the
//! directory (places, mediators, heartbeats, flags).
//!
//! Trees (schema version 1, every integer big-endian):
//!
//! | tree         | key                                   | value |
//! |--------------|---------------------------------------|-------|
//! | `meta`       | `schema_version`, `directory_serial`  | u32 / u64 |
//! | `agg`        | UTC hour (u32) ‖ cell (7, `-`-padded) ‖ category (u8) | count (u64) |
//! | `live`       | report id (32)                        | expires_at (u64) ‖ observed_at (u64) ‖ category (u8) ‖ cell (7) |
//! | `flood`      | UTC hour (u32) ‖ cell (7)             | counted (u64) ‖ suppressed as a flood (u64) |
//! | `places`     | place id (16)                         | [`SafePlace::to_bytes`] |
//! | `mediators`  | id (16)                               | [`Mediator::to_bytes`] |
//! | `heartbeats` | place id (16)                         | [`Heartbeat::to_bytes`] |
//! | `flags`      | flag id (32)                          | place id (16) ‖ reason (u8) ‖ observed_at (u64) |
//!
//! **Durability.** A report is counted in one sled transaction over `live`
//! and `agg`: its id and its count land together or not at all, so a crash
//! can neither lose the id of a counted report (and count it twice) nor keep
//! an id without its count. The ingest loop counts a whole batch of reports
//! in one such transaction ([`RelayStore::ingest_many`]) and calls
//! [`RelayStore::flush`] after each batch and only then counts the batch as *acknowledged*
//! (`ronde_relay_reports_acknowledged_total`): an acknowledged aggregate
//! survives `kill -9` and power loss. Reports received but not yet flushed
//! are still in the node's own store and are counted again (deduplicated)
//! by the catch-up at the next start.
//!
//! **Floods.** A cell counts at most [`Rules::cell_hour_cap`] reports per
//! UTC hour (every category together); the rest are remembered in `live`
//! (so counted once) and added to the hour's `suppressed` in `flood`, in
//! the same transaction. The `flood` tree appeared with issue 14 and needs
//! no migration: a relay upgraded in the middle of an hour starts that
//! hour's allowance from zero.
//!
//! **Retention.** `live` entries are deleted when their report expires
//! (about 30 minutes); nothing else of a report is kept. `agg` rows older
//! than the retention period are deleted. Flags are kept 30 days.

use std::path::{Path, PathBuf};

use ronde_protocol::directory::{
    FlagReason, Heartbeat, Mediator, PlaceId, SafePlace, VerifiedFlag,
};
use ronde_protocol::{Category, Cell, ReportId};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::rules::{Admission, BucketKey, LiveEntry, Observation, Refusal, Rules};

/// Version of the layout above.
pub const SCHEMA_VERSION: u32 = 1;
/// How long flags are kept, seconds.
pub const FLAG_RETENTION_SECS: u64 = 30 * 86_400;

const CELL_LEN: usize = 7;
const AGG_KEY_LEN: usize = 4 + CELL_LEN + 1;
const LIVE_VALUE_LEN: usize = 8 + 8 + 1 + CELL_LEN;

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

/// The relay's database. Cheap to clone (sled handles are shared).
#[derive(Clone)]
pub struct RelayStore {
    path: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    agg: sled::Tree,
    live: sled::Tree,
    flood: sled::Tree,
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

/// Count an admitted report in its cell-hour: `true` if it is under the
/// cap (count it), `false` if it is suppressed as a flood.
fn take_cell_hour(
    flood: &sled::transaction::TransactionalTree,
    key: &BucketKey,
    cap: u64,
) -> Result<bool, ConflictableTransactionError<()>> {
    let fk = flood_key(key);
    let (counted, suppressed) = match flood.get(fk)? {
        Some(v) => parse_flood(&v).ok_or(ConflictableTransactionError::Abort(()))?,
        None => (0, 0),
    };
    let under = counted < cap;
    let (c, s) = if under {
        (counted + 1, suppressed)
    } else {
        (counted, suppressed + 1)
    };
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&c.to_be_bytes());
    v[8..].copy_from_slice(&s.to_be_bytes());
    flood.insert(&fk, &v)?;
    Ok(under)
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
            live: tree("live")?,
            flood: tree("flood")?,
            places: tree("places")?,
            mediators: tree("mediators")?,
            heartbeats: tree("heartbeats")?,
            flags: tree("flags")?,
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
            }
        }
        Ok(store)
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Count a report if the rules admit it and it was not counted yet: one
    /// transaction over `live` and `agg`.
    pub fn ingest(&self, rules: &Rules, obs: &Observation, now: u64) -> Counted {
        let Admission { key, .. } = match rules.admit(obs, now) {
            Ok(a) => a,
            Err(r) => return Ok(Err(r)),
        };
        let akey = agg_key(&key);
        let lval = live_value(obs);
        let cap = rules.cell_hour_cap();
        let res = (&self.live, &self.agg, &self.flood).transaction(|(live, agg, flood)| {
            if live.get(obs.id.0)?.is_some() {
                return Ok(Err(Refusal::Duplicate));
            }
            live.insert(&obs.id.0, &lval)?;
            if !take_cell_hour(flood, &key, cap)? {
                return Ok(Err(Refusal::Flood));
            }
            let n = match agg.get(akey)? {
                Some(v) => be_u64(&v).ok_or(ConflictableTransactionError::Abort(()))?,
                None => 0,
            };
            agg.insert(&akey, &(n + 1).to_be_bytes())?;
            Ok(Ok(()))
        });
        match res {
            Ok(Ok(())) => Ok(Ok(key)),
            Ok(Err(r)) => Ok(Err(r)),
            Err(TransactionError::Abort(())) => Err(StoreError::Corrupt("agg")),
            Err(TransactionError::Storage(e)) => Err(self.err(e)),
        }
    }

    /// Count a batch of reports: the same outcome, report by report and in
    /// order, as [`RelayStore::ingest`] on each (a report repeated in the
    /// batch is a duplicate the second time), in one transaction over `live`
    /// and `agg` for the whole batch. If an aggregate row the batch touches
    /// does not decode, the batch is counted report by report instead, so
    /// that only the reports of that row fail.
    pub fn ingest_many(
        &self,
        rules: &Rules,
        batch: &[Observation],
        now: u64,
    ) -> Result<Vec<Counted>, StoreError> {
        let admitted: Vec<Result<BucketKey, Refusal>> = batch
            .iter()
            .map(|obs| rules.admit(obs, now).map(|a| a.key))
            .collect();
        let cap = rules.cell_hour_cap();
        let res = (&self.live, &self.agg, &self.flood).transaction(|(live, agg, flood)| {
            let mut out = Vec::with_capacity(batch.len());
            for (obs, admission) in batch.iter().zip(&admitted) {
                let key = match admission {
                    Ok(key) => *key,
                    Err(refusal) => {
                        out.push(Err(*refusal));
                        continue;
                    }
                };
                if live.get(obs.id.0)?.is_some() {
                    out.push(Err(Refusal::Duplicate));
                    continue;
                }
                live.insert(&obs.id.0, &live_value(obs))?;
                if !take_cell_hour(flood, &key, cap)? {
                    out.push(Err(Refusal::Flood));
                    continue;
                }
                let akey = agg_key(&key);
                let n = match agg.get(akey)? {
                    Some(v) => be_u64(&v).ok_or(ConflictableTransactionError::Abort(()))?,
                    None => 0,
                };
                agg.insert(&akey, &(n + 1).to_be_bytes())?;
                out.push(Ok(key));
            }
            Ok(out)
        });
        match res {
            Ok(out) => Ok(out.into_iter().map(Ok).collect()),
            // A row that does not decode: that row's reports fail alone.
            Err(TransactionError::Abort(())) => Ok(batch
                .iter()
                .map(|obs| self.ingest(rules, obs, now))
                .collect()),
            Err(TransactionError::Storage(e)) => Err(self.err(e)),
        }
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
        let mut out = Vec::new();
        for kv in self.live.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            let e = parse_live(&v).ok_or(StoreError::Corrupt("live"))?;
            if e.expires_at > now {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Whether a report id is remembered (it is live and was counted).
    pub fn is_counted(&self, id: &ReportId) -> Result<bool, StoreError> {
        self.live.contains_key(id.0).map_err(|e| self.err(e))
    }

    /// Delete the ids of expired reports, aggregate rows before
    /// `keep_from_hour` and flags older than [`FLAG_RETENTION_SECS`].
    /// Returns (ids forgotten, rows deleted).
    pub fn purge(&self, now: u64, keep_from_hour: u32) -> Result<(usize, usize), StoreError> {
        let mut forgotten = 0;
        for kv in self.live.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let expired = parse_live(&v).is_none_or(|e| e.expires_at <= now);
            if expired {
                self.live.remove(k).map_err(|e| self.err(e))?;
                forgotten += 1;
            }
        }
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
        self.live.len()
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

        // Damage one row: a batch touching it and another is counted
        // report by report, and only the damaged row's report fails.
        let (k, _) = rows.iter().next().expect("a row");
        store
            .agg
            .insert(agg_key(k), b"bad".as_slice())
            .expect("insert");
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
