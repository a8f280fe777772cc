//! Storage: the sled store's rules (dedup, expiry, eviction, scans, damaged
//! entries, the pending queue), and a node's data directory across
//! restarts, locks and schema versions.

mod common;

use common::*;
use ronde_node::error::StoreError;
use ronde_node::store::{
    Eviction, Inserted, ReportStore, SledStore, DB_DIR, META_TREE, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
};
use ronde_node::{ManualClock, NodeError};
use ronde_protocol::{area_of, cell_for, Category, Draft, VerifiedReport};

/// Open the raw sled database, waiting out the lock a just-closed store
/// may still hold for a moment.
fn open_raw(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir.join(DB_DIR)) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() > deadline => panic!("sled: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

fn report_with_ttl(at: (f64, f64), now: u64, ttl: u8) -> VerifiedReport {
    let cell = cell_for(at.0, at.1, 7).expect("cell");
    let r = Draft::new(Category::Following, cell, now)
        .with_ttl(ttl)
        .seal(8, &mut rand::rngs::OsRng)
        .expect("seal");
    VerifiedReport::from_trusted_bytes(r.to_bytes()).expect("parse")
}

#[test]
fn store_dedups_refuses_expired_and_scans_by_area_and_cell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = SledStore::open(dir.path(), 100).expect("open");
    let a = make_report(IVRY, T0, Category::Harassment);
    let b = report_with_ttl(LYON, T0, 60);
    assert_eq!(
        s.insert(&a, T0).expect("insert"),
        Inserted::Stored { evicted: None }
    );
    assert_eq!(s.insert(&a, T0).expect("insert"), Inserted::Duplicate);
    assert_eq!(
        s.insert(&b, T0).expect("insert"),
        Inserted::Stored { evicted: None }
    );
    assert_eq!(s.len(), 2);

    let old = make_report(IVRY, T0 - 3600, Category::Harassment);
    assert_eq!(s.insert(&old, T0).expect("insert"), Inserted::Expired);

    let ivry_area = area_of(IVRY.0, IVRY.1).expect("area");
    let in_area = s.live_in_area(&ivry_area, T0).expect("scan");
    assert_eq!(
        in_area.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![a.id()]
    );
    let cell = a.report().cell();
    assert_eq!(s.live_in_cell(&cell, T0).expect("scan").len(), 1);
    // A precision-6 cell is not confused with the precision-7 cells in it.
    let coarse = cell_for(IVRY.0, IVRY.1, 6).expect("cell");
    assert!(s.live_in_cell(&coarse, T0).expect("scan").is_empty());

    // Nothing expired is served, even before the purge.
    let later = a.expires_at();
    assert!(s.get(&a.id(), later).expect("get").is_none());
    assert!(s
        .live(later)
        .expect("live")
        .iter()
        .all(|r| r.id() != a.id()));
    assert_eq!(s.live_count(later).expect("count"), 1);
    // The purge deletes it for good.
    assert_eq!(s.purge_expired(later).expect("purge"), 1);
    assert_eq!(s.len(), 1);
    assert!(!s.contains(&a.id()).expect("contains"));
}

#[test]
fn a_full_store_evicts_the_report_expiring_soonest() {
    // The rule before issue 14, kept to measure the defence against floods.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = SledStore::open_with(
        dir.path(),
        3,
        Eviction::SoonestExpiry,
        Some(ronde_node::store::DEFAULT_FLUSH_EVERY),
    )
    .expect("open");
    let r10 = report_with_ttl(IVRY, T0, 10);
    let r20 = report_with_ttl(IVRY, T0, 20);
    let r30 = report_with_ttl(IVRY, T0, 30);
    for r in [&r20, &r10, &r30] {
        assert!(matches!(
            s.insert(r, T0).expect("insert"),
            Inserted::Stored { evicted: None }
        ));
    }
    // A report that would expire before everything stored is not kept.
    let r5 = report_with_ttl(IVRY, T0, 5);
    assert_eq!(s.insert(&r5, T0).expect("insert"), Inserted::NoRoom);
    // One that lives longer evicts the one expiring soonest (r10).
    let r40 = report_with_ttl(IVRY, T0, 40);
    assert_eq!(
        s.insert(&r40, T0).expect("insert"),
        Inserted::Stored {
            evicted: Some(r10.id())
        }
    );
    assert_eq!(s.len(), 3);
    let mut ids: Vec<_> = s.live(T0).expect("live").iter().map(|r| r.id()).collect();
    ids.sort();
    let mut want = vec![r20.id(), r30.id(), r40.id()];
    want.sort();
    assert_eq!(ids, want);
    // The indexes followed the eviction.
    let area = r10.report().cell().area();
    assert_eq!(s.live_in_area(&area, T0).expect("scan").len(), 3);
}

#[test]
fn damaged_entries_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = make_report(IVRY, T0, Category::Harassment);
    {
        let mut s = SledStore::open(dir.path(), 100).expect("open");
        s.insert(&good, T0).expect("insert");
    }
    let bad_id = [7u8; 32];
    {
        // Damage the database behind the store's back.
        let db = open_raw(dir.path());
        let reports = db.open_tree("reports").expect("tree");
        reports
            .insert(bad_id, b"not a report".as_slice())
            .expect("insert");
        reports
            .insert(b"short".as_slice(), b"".as_slice())
            .expect("insert");
        // Bytes of one report stored under another's id.
        let other = make_report(IVRY, T0, Category::Following);
        reports.insert([8u8; 32], other.bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let mut s = SledStore::open(dir.path(), 100).expect("reopen");
    let live: Vec<_> = s.live(T0).expect("live").iter().map(|r| r.id()).collect();
    assert_eq!(live, vec![good.id()]);
    assert_eq!(s.len(), 1);
    let area = good.report().cell().area();
    assert_eq!(s.live_in_area(&area, T0).expect("scan").len(), 1);
    // The next purge deletes the damaged entries, and only them.
    assert_eq!(s.purge_expired(T0).expect("purge"), 0);
    drop(s);
    {
        let db = open_raw(dir.path());
        let reports = db.open_tree("reports").expect("tree");
        assert_eq!(reports.len(), 1);
        assert!(reports.contains_key(good.id().0).expect("get"));
    }
    let mut s = SledStore::open(dir.path(), 100).expect("reopen");
    assert!(s.purge_expired(T0 + 7200).is_ok());
    assert!(s.is_empty());
}

/// A database of schema version 1 (the indexes on disk, in trees
/// `by_cell` and `by_expiry`) opens as version 2: the index trees are
/// dropped, every report is still there and found by area, cell and
/// expiry.
#[test]
fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = make_report(IVRY, T0, Category::Harassment);
    let b = report_with_ttl(LYON, T0, 60);
    {
        let db = open_raw(dir.path());
        let meta = db.open_tree(META_TREE).expect("meta");
        meta.insert(SCHEMA_VERSION_KEY, &1u32.to_be_bytes())
            .expect("stamp");
        let reports = db.open_tree("reports").expect("tree");
        let by_cell = db.open_tree("by_cell").expect("tree");
        let by_expiry = db.open_tree("by_expiry").expect("tree");
        for r in [&a, &b] {
            reports.insert(r.id().0, r.bytes()).expect("insert");
            let mut c = format!("{:-<7}", r.report().cell().as_str()).into_bytes();
            c.extend_from_slice(&r.id().0);
            by_cell.insert(c, b"".as_slice()).expect("insert");
            let mut e = r.expires_at().to_be_bytes().to_vec();
            e.extend_from_slice(&r.id().0);
            by_expiry.insert(e, b"".as_slice()).expect("insert");
        }
        db.flush().expect("flush");
    }
    let s = SledStore::open(dir.path(), 100).expect("open");
    assert_eq!(s.len(), 2);
    let live: Vec<_> = s.live(T0).expect("live").iter().map(|r| r.id()).collect();
    assert_eq!(live, vec![a.id(), b.id()], "soonest to expire first");
    let ivry = area_of(IVRY.0, IVRY.1).expect("area");
    assert_eq!(s.live_in_area(&ivry, T0).expect("scan").len(), 1);
    assert_eq!(
        s.live_in_cell(&b.report().cell(), T0).expect("scan").len(),
        1
    );
    assert_eq!(s.live_count(T0 + 31 * 60).expect("count"), 1);
    drop(s);
    let db = open_raw(dir.path());
    let names: Vec<_> = db.tree_names();
    assert!(!names
        .iter()
        .any(|n| n.as_ref() == b"by_cell" || n.as_ref() == b"by_expiry"));
    let version = db
        .open_tree(META_TREE)
        .expect("meta")
        .get(SCHEMA_VERSION_KEY)
        .expect("get")
        .expect("stamped");
    assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes());
}

#[test]
fn the_pending_queue_persists_and_drops_expired_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = report_with_ttl(IVRY, T0, 5);
    let long = report_with_ttl(IVRY, T0, 30);
    {
        let mut s = SledStore::open(dir.path(), 100).expect("open");
        s.add_pending(&short).expect("pending");
        s.add_pending(&long).expect("pending");
        s.flush().expect("flush");
    }
    let mut s = SledStore::open(dir.path(), 100).expect("reopen");
    assert_eq!(s.pending(T0).expect("pending").len(), 2);
    let later = T0 + 10 * 60;
    assert_eq!(s.pending(later).expect("pending").len(), 1);
    s.purge_expired(later).expect("purge");
    s.remove_pending(&long.id()).expect("remove");
    assert!(s.pending(T0).expect("pending").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_live_reports_and_drops_expired_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let node = start(dir.path(), &clock, Some(IVRY)).await;
    let first = node
        .report(Category::Harassment, IVRY.0, IVRY.1, None)
        .await
        .expect("report");
    assert!(!first.published, "no peer: queued");
    clock.advance(20 * 60);
    let second = node
        .report(Category::PoorLighting, IVRY.0, IVRY.1, Some(6))
        .await
        .expect("report");
    assert_eq!(held(&node, IVRY).await.len(), 2);
    node.shutdown().await.expect("shutdown");
    assert!(matches!(node.status().await, Err(NodeError::Stopped)));

    // 35 minutes after the first report: it has expired, the second has not.
    clock.set(T0 + 35 * 60);
    assert!(first.expires_at <= clock_now(&clock) && clock_now(&clock) < second.expires_at);
    let node = start(dir.path(), &clock, Some(IVRY)).await;
    assert_eq!(held(&node, IVRY).await, vec![second.id]);
    let status = node.status().await.expect("status");
    assert_eq!(status.stored_reports, 1);
    assert_eq!(node.pending_reports().await.expect("pending"), 1);

    // While it runs, the data directory is locked.
    match ronde_node::Node::start(config(dir.path(), &clock, None)).await {
        Err(NodeError::Storage(StoreError::Locked { .. })) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second node opened a locked data directory"),
    }
    assert!(matches!(
        SledStore::open(dir.path(), 10),
        Err(StoreError::Locked { .. })
    ));
    node.shutdown().await.expect("shutdown");

    // The expired report was deleted from disk, not only hidden.
    let s = SledStore::open(dir.path(), 100).expect("open");
    assert_eq!(s.len(), 1);
    assert!(!s.contains(&first.id).expect("contains"));
}

fn clock_now(c: &ManualClock) -> u64 {
    use ronde_node::Clock;
    c.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_from_a_newer_version_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = make_report(IVRY, T0, Category::Harassment);
    {
        let mut s = SledStore::open(dir.path(), 100).expect("open");
        s.insert(&r, T0).expect("insert");
    }
    let stamp = |v: u32| {
        let db = open_raw(dir.path());
        let meta = db.open_tree(META_TREE).expect("meta");
        meta.insert(SCHEMA_VERSION_KEY, &v.to_be_bytes())
            .expect("stamp");
        db.flush().expect("flush");
    };
    stamp(SCHEMA_VERSION + 1);
    assert!(matches!(
        SledStore::open(dir.path(), 100),
        Err(StoreError::NewerVersion { found, supported })
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
    ));
    let clock = ManualClock::new(T0);
    match ronde_node::Node::start(config(dir.path(), &clock, None)).await {
        Err(NodeError::Storage(StoreError::NewerVersion { .. })) => {}
        Err(e) => panic!("expected NewerVersion, got {e}"),
        Ok(_) => panic!("a node opened a data directory from a newer version"),
    }
    // Nothing was deleted.
    stamp(SCHEMA_VERSION);
    let s = SledStore::open(dir.path(), 100).expect("open");
    assert!(s.contains(&r.id()).expect("contains"));
}

/// Everything a store shows, to compare two stores.
fn snapshot(s: &SledStore, now: u64) -> (usize, usize, Vec<ronde_protocol::ReportId>, Vec<usize>) {
    let live: Vec<_> = s.live(now).expect("live").iter().map(|r| r.id()).collect();
    let per_area = [IVRY, LYON]
        .iter()
        .map(|p| {
            let area = area_of(p.0, p.1).expect("area");
            s.live_in_area(&area, now).expect("scan").len()
        })
        .collect();
    (s.len(), s.live_count(now).expect("count"), live, per_area)
}

#[test]
fn a_batch_insert_gives_what_inserting_one_by_one_gives_and_is_on_disk() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Few distinct TTLs, so that expiries tie and the eviction order
    // (expiry, then id) matters.
    let pool: Vec<VerifiedReport> = (0..24)
        .map(|i| {
            let at = if i % 3 == 0 { LYON } else { IVRY };
            report_with_ttl(at, T0, [5, 10, 10, 20, 30, 60][i % 6])
        })
        .chain((0..3).map(|_| report_with_ttl(IVRY, T0 - 3600, 30)))
        .collect();
    let mut outcomes = std::collections::BTreeSet::new();
    for round in 0..30 {
        let max = rng.gen_range(1..8);
        let (da, db) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let mut one = SledStore::open(da.path(), max).expect("open");
        let mut many = SledStore::open(db.path(), max).expect("open");
        for _ in 0..rng.gen_range(0..6) {
            let r = &pool[rng.gen_range(0..pool.len())];
            assert_eq!(
                one.insert(r, T0).expect("insert"),
                many.insert(r, T0).expect("insert")
            );
        }
        let batch: Vec<VerifiedReport> = (0..rng.gen_range(0..16))
            .map(|_| pool[rng.gen_range(0..pool.len())].clone())
            .collect();
        let expected: Vec<Inserted> = batch
            .iter()
            .map(|r| one.insert(r, T0).expect("insert"))
            .collect();
        let got = many.insert_many(&batch, T0).expect("insert_many");
        assert_eq!(got, expected, "round {round}, max {max}");
        for o in &got {
            outcomes.insert(match o {
                Inserted::Stored { evicted: None } => "stored",
                Inserted::Stored { evicted: Some(_) } => "stored, evicting",
                Inserted::Duplicate => "duplicate",
                Inserted::Expired => "expired",
                Inserted::NoRoom => "no room",
            });
        }
        let want = snapshot(&one, T0);
        assert_eq!(snapshot(&many, T0), want, "round {round}");
        assert!(want.0 <= max);
        // On disk: reopened, the batch store holds the same.
        drop(many);
        let many = SledStore::open(db.path(), max).expect("reopen");
        assert_eq!(snapshot(&many, T0), want, "round {round}, reopened");
    }
    // The rounds went through every case.
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
}

#[test]
fn an_empty_batch_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = SledStore::open(dir.path(), 10).expect("open");
    assert!(s.insert_many(&[], T0).expect("insert_many").is_empty());
    assert!(s.is_empty());
}

/// Issue 14: a flood of valid 60-minute reports into one cell must not push
/// honest 30-minute reports of other cells out of a full store.
#[test]
fn a_flood_of_longer_lived_reports_in_one_cell_never_evicts_honest_reports_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = SledStore::open(dir.path(), 10).expect("open");
    // Honest reports: two in Ivry, one in Lyon, 30 minutes each.
    let honest = [
        report_with_ttl(IVRY, T0, 30),
        report_with_ttl(IVRY, T0 + 60, 30),
        report_with_ttl(LYON, T0, 30),
    ];
    for r in &honest {
        assert!(matches!(
            s.insert(r, T0 + 60).expect("insert"),
            Inserted::Stored { .. }
        ));
    }
    // The flood: 60-minute reports, all in one cell of Ivry's area (a few
    // hundred metres away), observed later, many more than the store holds.
    let flooded = (48.8190, 2.3900);
    assert_ne!(
        cell_for(flooded.0, flooded.1, 7).expect("cell"),
        honest[0].report().cell()
    );
    for i in 0..40 {
        let spam = report_with_ttl(flooded, T0 + 120 + i, 60);
        s.insert(&spam, T0 + 120).expect("insert");
    }
    assert_eq!(s.len(), 10);
    for r in &honest {
        assert!(
            s.get(&r.id(), T0 + 120).expect("get").is_some(),
            "an honest report was evicted by the flood"
        );
    }
    // Reopened, the store makes the same choice (its index is rebuilt).
    drop(s);
    let mut s = SledStore::open(dir.path(), 10).expect("reopen");
    let spam = report_with_ttl(flooded, T0 + 300, 60);
    assert!(matches!(
        s.insert(&spam, T0 + 300).expect("insert"),
        Inserted::Stored { evicted: Some(_) }
    ));
    for r in &honest {
        assert!(s.get(&r.id(), T0 + 300).expect("get").is_some());
    }
    // A batch floods no better than single reports.
    let batch: Vec<VerifiedReport> = (0..20)
        .map(|i| report_with_ttl(flooded, T0 + 400 + i, 60))
        .collect();
    s.insert_many(&batch, T0 + 400).expect("insert_many");
    for r in &honest {
        assert!(s.get(&r.id(), T0 + 400).expect("get").is_some());
    }
}
