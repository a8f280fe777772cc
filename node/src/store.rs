//! Where reports live between arrival and expiry: the [`ReportStore`] trait
//! and its sled implementation, [`SledStore`].
//!
//! # Layout (schema version 2)
//!
//! The database is in `<data_dir>/db` ([`DB_DIR`]). Trees:
//!
//! * `meta`: `schema_version` → `u32` big-endian ([`SCHEMA_VERSION`]).
//! * `reports`: report id (32 bytes) → canonical report bytes.
//! * `pending`: id → canonical bytes of this node's own reports that no peer
//!   has received yet.
//!
//! One key per report: the indexes are in memory, rebuilt from `reports`
//! when the store opens (which reads every report anyway), so they cannot
//! disagree with it after a crash: by cell and area (the crowding index,
//! `crowding`, which a full store needs anyway) and by expiry (a sorted
//! set of (`expires_at`, id): expired reports are a range from the start,
//! the soonest to expire is the first). A batch of reports
//! ([`ReportStore::insert_many`]) is written with one atomic
//! [`sled::Batch`], evictions included. (Version 1 also kept the two
//! indexes on disk, in trees `by_cell` and `by_expiry`, three sled writes
//! per report instead of one; opening a version 1 database drops those
//! trees and stamps version 2.)
//!
//! # Rules
//!
//! * Nothing expired is ever returned: every read filters on `now`, and
//!   [`ReportStore::purge_expired`] deletes expired reports (and expired
//!   pending ones) for good.
//! * Size bound: the store keeps at most `max_reports` reports. When it is
//!   full, an expired report not yet purged goes first; otherwise the
//!   **most crowded cell of the most crowded area** gives up the report it
//!   received observed earliest, the incoming report counted as if stored,
//!   and if that is the incoming report it is not kept
//!   ([`Inserted::NoRoom`]) ([`Eviction::CrowdedFirst`], see `crowding`).
//!   A flood of valid reports into a few cells thus only displaces reports
//!   of those cells, and a longer TTL buys nothing. (Before issue 14 the
//!   report expiring soonest went, so 60-minute spam pushed every honest
//!   30-minute report out: [`Eviction::SoonestExpiry`], kept only so that
//!   the simulator can measure the defence against it.)
//! * Reports are only stored after validation, and re-read with
//!   [`VerifiedReport::from_trusted_bytes`]; an entry that no longer parses,
//!   or whose id does not match its key, is skipped and logged (by id), never
//!   a panic.
//! * Opening never deletes data. A data directory stamped with a newer
//!   schema version is refused with [`StoreError::NewerVersion`] and left
//!   alone; a database held by another process gives [`StoreError::Locked`].

mod crowding;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ronde_protocol::{Area, Cell, ReportId, VerifiedReport};

pub use crate::error::StoreError;

use crowding::{Crowding, Victim};

/// The database directory, inside the node's data directory.
pub const DB_DIR: &str = "db";
/// Name of the tree holding the schema version.
pub const META_TREE: &str = "meta";
/// Key of the schema version in [`META_TREE`].
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 2;
/// The trees of version 1 that version 2 keeps in memory instead.
const V1_INDEX_TREES: [&str; 2] = ["by_cell", "by_expiry"];

/// How long [`SledStore::open`] waits for a lock to clear before
/// reporting [`StoreError::Locked`] (it blocks the calling thread).
pub const LOCK_WAIT: Duration = Duration::from_secs(1);
/// How often sled's background thread makes recent writes durable, by
/// default (sled's own default).
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_millis(500);

const CELL_KEY_LEN: usize = 7;
const ID_LEN: usize = 32;

/// What happened to a report handed to [`ReportStore::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// It is new and now stored; `evicted` is the report that made room for
    /// it, if the store was full.
    Stored {
        /// The report evicted to make room, if any.
        evicted: Option<ReportId>,
    },
    /// It was already stored.
    Duplicate,
    /// It is expired at `now`; not stored.
    Expired,
    /// The store is full of reports that all stay visible at least as long;
    /// not stored.
    NoRoom,
}

/// How a full store chooses the report it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eviction {
    /// The most crowded cell of the most crowded area gives up the report
    /// observed earliest; a flood never displaces a report from a quieter
    /// place, and a longer TTL buys nothing (see the module doc).
    #[default]
    CrowdedFirst,
    /// The report expiring soonest goes. A flood of longer-lived reports
    /// pushes out every honest one: only for measuring the defence.
    SoonestExpiry,
}

/// What making room in a full store came to.
enum Room {
    /// The report may be stored; this one was given up for it, if any.
    Made(Option<ReportId>),
    /// The report is refused ([`Inserted::NoRoom`]).
    Refused,
}

/// Storage of live reports and of this node's unsent reports.
pub trait ReportStore: Send + 'static {
    /// Store a verified report, evicting per the size bound if full.
    fn insert(&mut self, report: &VerifiedReport, now: u64) -> Result<Inserted, StoreError>;
    /// Store many verified reports: the same outcome, report by report and
    /// in order, as calling [`ReportStore::insert`] on each (a report
    /// repeated in the batch is a [`Inserted::Duplicate`] the second time;
    /// one stored early in the batch can be evicted by a later one), but
    /// implementations may write the batch at once. On error, nothing of
    /// the batch may be assumed stored.
    fn insert_many(
        &mut self,
        reports: &[VerifiedReport],
        now: u64,
    ) -> Result<Vec<Inserted>, StoreError> {
        reports.iter().map(|r| self.insert(r, now)).collect()
    }
    /// Whether a report with this id is stored (live or not yet purged).
    fn contains(&self, id: &ReportId) -> Result<bool, StoreError>;
    /// A live report by id.
    fn get(&self, id: &ReportId, now: u64) -> Result<Option<VerifiedReport>, StoreError>;
    /// Every live report.
    fn live(&self, now: u64) -> Result<Vec<VerifiedReport>, StoreError>;
    /// The live reports of one area.
    fn live_in_area(&self, area: &Area, now: u64) -> Result<Vec<VerifiedReport>, StoreError>;
    /// The live reports of one cell.
    fn live_in_cell(&self, cell: &Cell, now: u64) -> Result<Vec<VerifiedReport>, StoreError>;
    /// Number of stored reports (expired ones count until purged).
    fn len(&self) -> usize;
    /// Number of stored reports still live at `now`.
    fn live_count(&self, now: u64) -> Result<usize, StoreError>;
    /// Whether the store holds no report.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Delete every report (and pending report) expired at `now`. Returns
    /// how many reports were deleted.
    fn purge_expired(&mut self, now: u64) -> Result<usize, StoreError>;
    /// Queue one of this node's reports until a peer follows its area.
    fn add_pending(&mut self, report: &VerifiedReport) -> Result<(), StoreError>;
    /// Remove a report from the queue (it was sent, or it expired).
    fn remove_pending(&mut self, id: &ReportId) -> Result<(), StoreError>;
    /// The queued reports still live at `now`.
    fn pending(&self, now: u64) -> Result<Vec<VerifiedReport>, StoreError>;
    /// Write everything to disk.
    fn flush(&self) -> Result<(), StoreError>;
}

/// [`ReportStore`] on a sled database.
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    reports: sled::Tree,
    pending: sled::Tree,
    max_reports: usize,
    eviction: Eviction,
    /// Every stored report by area and cell (and observation time).
    crowding: Crowding,
    /// Every stored report by (expiry, id).
    expiry: BTreeSet<(u64, ReportId)>,
    /// Keys of `reports` entries found damaged when the store opened:
    /// never served, deleted by the next purge.
    damaged: Vec<sled::IVec>,
}

/// Classify a sled error.
pub(crate) fn map_sled(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => map_io(path, io),
        sled::Error::Corruption { at, .. } => {
            StoreError::Corrupt(format!("sled found corrupt data at {at:?}"))
        }
        sled::Error::Unsupported(m) => StoreError::Other(format!("unsupported: {m}")),
        sled::Error::ReportableBug(m) => StoreError::Other(format!("sled bug: {m}")),
        sled::Error::CollectionNotFound(_) => StoreError::Other("tree not found".into()),
    }
}

fn map_io(path: &Path, io: std::io::Error) -> StoreError {
    // ENOSPC (28) and EDQUOT (122 on Linux, 69 on macOS) mean "no space".
    let no_space = matches!(
        io.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(io.raw_os_error(), Some(28) | Some(122));
    if no_space {
        return StoreError::Full(io.to_string());
    }
    // sled reports a failed `flock` as an `Other` I/O error with this text.
    let msg = io.to_string();
    if msg.contains("could not acquire lock") {
        return StoreError::Locked {
            path: path.to_path_buf(),
        };
    }
    StoreError::Io(io)
}

fn cell_key(cell: &Cell) -> [u8; CELL_KEY_LEN] {
    let mut k = [b'-'; CELL_KEY_LEN];
    let s = cell.as_str().as_bytes();
    let n = s.len().min(CELL_KEY_LEN);
    k[..n].copy_from_slice(&s[..n]);
    k
}

/// The first (expiry, id) after everything expired at `now`.
fn live_from(now: u64) -> (u64, ReportId) {
    (now.saturating_add(1), ReportId([0; ID_LEN]))
}

fn id_from(bytes: &[u8]) -> Option<ReportId> {
    <[u8; ID_LEN]>::try_from(bytes).ok().map(ReportId)
}

/// Parse stored bytes back into a report; `None` (and a warning) if the
/// entry is damaged.
fn decode(key: &[u8], value: &[u8]) -> Option<VerifiedReport> {
    let Some(id) = id_from(key) else {
        tracing::warn!(
            key_len = key.len(),
            "skipping a stored report with a malformed key"
        );
        return None;
    };
    match VerifiedReport::from_trusted_bytes(value.to_vec()) {
        Ok(r) if r.id() == id => Some(r),
        Ok(_) => {
            tracing::warn!(%id, "skipping a stored report whose bytes do not match its id");
            None
        }
        Err(e) => {
            tracing::warn!(%id, reason = e.reason(), "skipping a stored report that no longer parses");
            None
        }
    }
}

impl SledStore {
    /// Open (or create) the store in `data_dir`, holding at most
    /// `max_reports` reports. Blocking: waits up to [`LOCK_WAIT`] for a
    /// lock left by a store just closed in this process.
    pub fn open(data_dir: &Path, max_reports: usize) -> Result<SledStore, StoreError> {
        SledStore::open_with(
            data_dir,
            max_reports,
            Eviction::default(),
            Some(DEFAULT_FLUSH_EVERY),
        )
    }

    /// [`SledStore::open`] with a choice of eviction rule and of how often
    /// sled's background thread flushes (`None`: no such thread).
    ///
    /// Each open database with a flush interval has its own thread, which
    /// wakes at that interval and enters crossbeam-epoch's process-wide
    /// collector, whose advance walks every thread registered with it: in
    /// one process holding thousands of stores (`ronde sim`), that is
    /// quadratic, a fifth of the CPU at 2 000 nodes. A phone or a relay has
    /// one.
    pub fn open_with(
        data_dir: &Path,
        max_reports: usize,
        eviction: Eviction,
        flush_every: Option<Duration>,
    ) -> Result<SledStore, StoreError> {
        let flush_every_ms =
            flush_every.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let path = data_dir.join(DB_DIR);
        std::fs::create_dir_all(&path).map_err(|e| map_io(&path, e))?;
        // sled finishes its last writes on background threads after a
        // database is dropped, holding the lock for a moment: a lock that
        // clears within `LOCK_WAIT` was our own previous instance.
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .flush_every_ms(flush_every_ms)
                .open()
            {
                Ok(db) => break db,
                Err(e) => match map_sled(&path, e) {
                    StoreError::Locked { .. } if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    e => return Err(e),
                },
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| map_sled(&path, e));
        let meta = tree(META_TREE)?;
        match meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(|e| map_sled(&path, e))?
        {
            None => {
                meta.insert(SCHEMA_VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(|e| map_sled(&path, e))?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("the schema version is not 4 bytes".into()))?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerVersion {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found == 0 {
                    return Err(StoreError::Corrupt("schema version 0".into()));
                }
                if found == 1 {
                    // Version 1 kept the indexes on disk: they are rebuilt
                    // below from `reports`, the trees are dropped, then
                    // the version is stamped (a crash in between drops
                    // them again at the next start).
                    for name in V1_INDEX_TREES {
                        db.drop_tree(name).map_err(|e| map_sled(&path, e))?;
                    }
                    meta.insert(SCHEMA_VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())
                        .map_err(|e| map_sled(&path, e))?;
                    db.flush().map_err(|e| map_sled(&path, e))?;
                    tracing::info!("report store migrated to schema version {SCHEMA_VERSION}");
                }
            }
        }
        let reports = tree("reports")?;
        let pending = tree("pending")?;
        // The indexes: rebuilt from the reports themselves.
        let mut crowding = Crowding::default();
        let mut expiry = BTreeSet::new();
        let mut damaged = Vec::new();
        for item in reports.iter() {
            let (k, v) = item.map_err(|e| map_sled(&path, e))?;
            match decode(&k, &v) {
                Some(r) => {
                    crowding.add(
                        r.id(),
                        cell_key(&r.report().cell()),
                        r.report().observed_at(),
                    );
                    expiry.insert((r.expires_at(), r.id()));
                }
                None => damaged.push(k),
            }
        }
        let store = SledStore {
            path,
            db,
            reports,
            pending,
            max_reports: max_reports.max(1),
            eviction,
            crowding,
            expiry,
            damaged,
        };
        tracing::debug!(reports = store.expiry.len(), "report store opened");
        Ok(store)
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    /// The database, for the node's other trees (the trusted circle's).
    pub fn database(&self) -> &sled::Db {
        &self.db
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove a report, given its id and expiry, and forget it in the
    /// indexes.
    fn remove(&mut self, id: &ReportId, expires_at: u64) -> Result<bool, StoreError> {
        self.reports.remove(id.0).map_err(|e| self.err(e))?;
        let known = self.expiry.contains(&(expires_at, *id));
        self.unindex(id, expires_at);
        Ok(known)
    }

    /// Count a report just written in the indexes.
    fn index(&mut self, report: &VerifiedReport) {
        self.crowding.add(
            report.id(),
            cell_key(&report.report().cell()),
            report.report().observed_at(),
        );
        self.expiry.insert((report.expires_at(), report.id()));
    }

    /// Forget a report just removed in the indexes.
    fn unindex(&mut self, id: &ReportId, expires_at: u64) {
        self.crowding.remove(id);
        self.expiry.remove(&(expires_at, *id));
    }

    /// Make room for `report` in a full store, per the eviction rule.
    fn make_room(&mut self, report: &VerifiedReport, now: u64) -> Result<Room, StoreError> {
        let soonest = self.soonest()?;
        if self.eviction == Eviction::CrowdedFirst {
            // An expired report not yet purged goes first.
            if let Some((t, old)) = soonest {
                if t <= now {
                    self.remove(&old, t)?;
                    return Ok(Room::Made(Some(old)));
                }
            }
            let id = report.id();
            let cell = cell_key(&report.report().cell());
            match self
                .crowding
                .victim(&cell, report.report().observed_at(), &id)
            {
                Some(Victim::Refuse) => return Ok(Room::Refused),
                Some(Victim::Evict(old)) => {
                    let expires = match self.reports.get(old.0).map_err(|e| self.err(e))? {
                        Some(v) => decode(&old.0, &v).map(|r| r.expires_at()),
                        None => None,
                    };
                    if let Some(t) = expires {
                        self.remove(&old, t)?;
                        return Ok(Room::Made(Some(old)));
                    }
                    // Damaged entry: forget it, fall back on the expiry rule.
                    self.crowding.remove(&old);
                }
                None => {}
            }
        }
        match soonest {
            Some((t, _)) if t >= report.expires_at() => Ok(Room::Refused),
            Some((t, old)) => {
                self.remove(&old, t)?;
                Ok(Room::Made(Some(old)))
            }
            None => Ok(Room::Made(None)),
        }
    }

    /// The soonest to expire of the stored reports.
    fn soonest(&self) -> Result<Option<(u64, ReportId)>, StoreError> {
        Ok(self.expiry.first().copied())
    }

    fn collect_ids(
        &self,
        ids: impl Iterator<Item = ReportId>,
        now: u64,
    ) -> Result<Vec<VerifiedReport>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = self.get(&id, now)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The live reports whose cell key starts with `prefix` (an area's
    /// five characters, or a whole cell key), by cell then id.
    fn scan_cells(&self, prefix: &[u8], now: u64) -> Result<Vec<VerifiedReport>, StoreError> {
        self.collect_ids(self.crowding.ids_with_prefix(prefix).into_iter(), now)
    }
}

impl ReportStore for SledStore {
    fn insert(&mut self, report: &VerifiedReport, now: u64) -> Result<Inserted, StoreError> {
        if !report.is_live(now) {
            return Ok(Inserted::Expired);
        }
        let id = report.id();
        if self.contains(&id)? {
            return Ok(Inserted::Duplicate);
        }
        let mut evicted = None;
        if self.expiry.len() >= self.max_reports {
            match self.make_room(report, now)? {
                Room::Made(old) => evicted = old,
                Room::Refused => return Ok(Inserted::NoRoom),
            }
        }
        self.reports
            .insert(id.0, report.bytes())
            .map_err(|e| self.err(e))?;
        self.index(report);
        Ok(Inserted::Stored { evicted })
    }

    /// One atomic sled batch for the whole batch. The outcome of each report
    /// is decided first, in order, against the stored reports and those
    /// earlier in the batch (the store's single owner is the only writer, so
    /// what is read before the transaction still holds in it), then every
    /// write and eviction is applied at once.
    fn insert_many(
        &mut self,
        reports: &[VerifiedReport],
        now: u64,
    ) -> Result<Vec<Inserted>, StoreError> {
        // The crowding rule decides report by report: a batch that may
        // fill the store goes one by one (the definition of the outcome).
        if self.eviction == Eviction::CrowdedFirst
            && self.expiry.len().saturating_add(reports.len()) >= self.max_reports
        {
            return reports.iter().map(|r| self.insert(r, now)).collect();
        }
        let mut out = Vec::with_capacity(reports.len());
        // Reports of this batch to write, by (expiry, id) → index.
        let mut planned: BTreeMap<(u64, ReportId), usize> = BTreeMap::new();
        let mut planned_ids: HashSet<ReportId> = HashSet::new();
        // Stored reports to remove: id → expiry.
        let mut evict: HashMap<ReportId, u64> = HashMap::new();
        // The stored reports, soonest to expire first, read as needed.
        let mut stored = self.expiry.iter().copied();
        let mut next_stored: Option<(u64, ReportId)> = None;
        let mut count = self.expiry.len();
        for (i, report) in reports.iter().enumerate() {
            if !report.is_live(now) {
                out.push(Inserted::Expired);
                continue;
            }
            let id = report.id();
            let known =
                planned_ids.contains(&id) || (!evict.contains_key(&id) && self.contains(&id)?);
            if known {
                out.push(Inserted::Duplicate);
                continue;
            }
            let mut evicted = None;
            if count >= self.max_reports {
                if next_stored.is_none() {
                    next_stored = stored.by_ref().find(|(_, id)| !evict.contains_key(id));
                }
                let soonest_planned = planned.keys().next().copied();
                // The index's order: expiry, then id.
                let stored_first = match (next_stored, soonest_planned) {
                    (Some(s), Some(p)) => Some(s <= p),
                    (Some(_), None) => Some(true),
                    (None, Some(_)) => Some(false),
                    (None, None) => None,
                };
                match stored_first {
                    Some(true) => {
                        if let Some((t, old)) = next_stored.take() {
                            if t >= report.expires_at() {
                                next_stored = Some((t, old));
                                out.push(Inserted::NoRoom);
                                continue;
                            }
                            evict.insert(old, t);
                            evicted = Some(old);
                            count -= 1;
                        }
                    }
                    Some(false) => {
                        if let Some((t, old)) = soonest_planned {
                            if t >= report.expires_at() {
                                out.push(Inserted::NoRoom);
                                continue;
                            }
                            planned.remove(&(t, old));
                            planned_ids.remove(&old);
                            evicted = Some(old);
                            count -= 1;
                        }
                    }
                    None => {}
                }
            }
            planned.insert((report.expires_at(), id), i);
            planned_ids.insert(id);
            count += 1;
            out.push(Inserted::Stored { evicted });
        }
        if planned.is_empty() && evict.is_empty() {
            return Ok(out);
        }
        let mut batch = sled::Batch::default();
        for id in evict.keys() {
            batch.remove(&id.0);
        }
        for &i in planned.values() {
            let r = &reports[i];
            batch.insert(&r.id().0, r.bytes());
        }
        self.reports.apply_batch(batch).map_err(|e| self.err(e))?;
        for (id, t) in evict {
            self.unindex(&id, t);
        }
        for &i in planned.values() {
            self.index(&reports[i]);
        }
        Ok(out)
    }

    fn contains(&self, id: &ReportId) -> Result<bool, StoreError> {
        Ok(self.crowding.contains(id))
    }

    fn get(&self, id: &ReportId, now: u64) -> Result<Option<VerifiedReport>, StoreError> {
        let Some(v) = self.reports.get(id.0).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        Ok(decode(&id.0, &v).filter(|r| r.is_live(now)))
    }

    fn live(&self, now: u64) -> Result<Vec<VerifiedReport>, StoreError> {
        // Everything expiring after `now`, soonest first.
        let ids = self.expiry.range(live_from(now)..).map(|&(_, id)| id);
        self.collect_ids(ids, now)
    }

    fn live_in_area(&self, area: &Area, now: u64) -> Result<Vec<VerifiedReport>, StoreError> {
        self.scan_cells(area.as_str().as_bytes(), now)
    }

    fn live_in_cell(&self, cell: &Cell, now: u64) -> Result<Vec<VerifiedReport>, StoreError> {
        self.scan_cells(&cell_key(cell), now)
    }

    fn len(&self) -> usize {
        self.expiry.len()
    }

    fn live_count(&self, now: u64) -> Result<usize, StoreError> {
        Ok(self.expiry.range(live_from(now)..).count())
    }

    fn purge_expired(&mut self, now: u64) -> Result<usize, StoreError> {
        // Up to and including `expires_at == now` is expired.
        let expired: Vec<(u64, ReportId)> = self.expiry.range(..live_from(now)).copied().collect();
        let mut batch = sled::Batch::default();
        for (_, id) in &expired {
            batch.remove(&id.0);
        }
        // Damaged entries found at open, unless a good report took the key.
        let damaged = std::mem::take(&mut self.damaged);
        for k in &damaged {
            if !id_from(k).is_some_and(|id| self.crowding.contains(&id)) {
                batch.remove(k);
            }
        }
        if !expired.is_empty() || !damaged.is_empty() {
            if let Err(e) = self.reports.apply_batch(batch) {
                self.damaged = damaged;
                return Err(self.err(e));
            }
        }
        for (t, id) in &expired {
            self.unindex(id, *t);
        }
        let n = expired.len();
        // Pending reports are few (this node's own): a full scan is fine.
        let mut stale = Vec::new();
        for item in self.pending.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            match decode(&k, &v) {
                Some(r) if r.is_live(now) => {}
                Some(r) => stale.push(r.id()),
                None => {}
            }
        }
        for id in stale {
            self.remove_pending(&id)?;
        }
        Ok(n)
    }

    fn add_pending(&mut self, report: &VerifiedReport) -> Result<(), StoreError> {
        self.pending
            .insert(report.id().0, report.bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn remove_pending(&mut self, id: &ReportId) -> Result<(), StoreError> {
        self.pending.remove(id.0).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn pending(&self, now: u64) -> Result<Vec<VerifiedReport>, StoreError> {
        let mut out = Vec::new();
        for item in self.pending.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if let Some(r) = decode(&k, &v).filter(|r| r.is_live(now)) {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "could not flush the report store on close");
        }
    }
}
