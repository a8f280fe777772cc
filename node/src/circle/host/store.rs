//! The host side's store ([`MailboxHost`]): the envelopes an always-on
//! node ([`crate::NodeConfig::mailbox_host`]) keeps for recipients who are
//! offline, and the dead-man's switches of travellers, in two trees of the
//! node's sled database, apart from the client side's circle trees.
//!
//! # What it stores
//!
//! Only ciphertext, keyed by mailbox address: `mailbox_held` maps
//! `mailbox (32) || seq (8)` to `stored_at (8) || envelope`. Addresses
//! change every day per pair and direction (`docs/circle.md` §7) and the
//! envelopes are HPKE-sealed, fixed-size and name nobody: the host cannot
//! read them nor tell whose they are. The switches
//! ([`ronde_protocol::circle::DeadManSwitch`], alerts sealed the same way)
//! are one record each in `mailbox_switches`: `0x01 || key (32)` → the
//! switch's record ([`DeadManSwitch::record`], binary, about 2.4 KB for four
//! alerts) and `0x02 || key (32)` → its tombstone's end (8). A request
//! rewrites the records of its own key only, in one atomic batch; nothing
//! else is written (hosts before this stored all switches as one JSON
//! document in `mailbox_meta`, which is moved to records when opened).
//!
//! # Limits
//!
//! * **Retention**: an envelope is deleted [`MailboxLimits::retention_secs`]
//!   after it was stored (3 days by default: recipients poll the mailboxes
//!   of today and yesterday).
//! * **Per mailbox**: at most [`MailboxLimits::max_per_mailbox`] envelopes;
//!   more is refused with [`MailboxError::MailboxFull`].
//! * **Per host**: at most [`MailboxLimits::max_bytes`] of envelopes;
//!   more is refused with [`MailboxError::HostFull`].
//! * **Switches**: at most [`MailboxLimits::max_switches`] live switches
//!   and tombstones (tombstones included, so they are bounded too; expired
//!   ones are deleted with the expired mail). Per client (peer id and
//!   network) the service bounds them further (`quota`), and deposits carry
//!   a proof of work.
//!
//! A refused envelope stays queued at its sender, which retries (another
//! host, later): nothing is dropped silently. The same envelope put twice is
//! kept once.
//!
//! # Releases
//!
//! [`MailboxHost::release`] polls the switches; every alert of a due switch
//! goes into its mailbox (past the per-mailbox bound if need be: alerts are
//! bounded by the switch capacity). The alerts are stored before the switch
//! state is saved, so a crash in between releases twice (receivers drop the
//! duplicate) rather than never.

use std::path::{Path, PathBuf};

use libp2p::PeerId;
use ronde_protocol::circle::{DeadManSwitch, SwitchRequest};
use sha2::{Digest, Sha256};

use crate::circle::wire::{is_envelope_len, MailItem, Refusal, MAX_MAIL_ITEMS};
use crate::config::MailboxLimits;
use crate::error::StoreError;
use crate::store::map_sled;

/// Domain separator of a host's switch relay identifier.
pub const RELAY_ID_DOMAIN: &[u8] = b"ronde/circle/v1/switch-relay";
const SWITCH_KEY: &[u8] = b"switch";
const LIVE: u8 = 0x01;
const TOMB: u8 = 0x02;

fn switch_key(kind: u8, key: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = kind;
    k[1..].copy_from_slice(key);
    k
}

/// The identifier that dead-man's-switch deposits for the host with this
/// peer id must name: `SHA-256("ronde/circle/v1/switch-relay" || peer id)`.
pub fn relay_id(peer: &PeerId) -> [u8; 32] {
    Sha256::new_with_prefix(RELAY_ID_DOMAIN)
        .chain_update(peer.to_bytes())
        .finalize()
        .into()
}

/// Why an envelope was not stored.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The mailbox holds [`MailboxLimits::max_per_mailbox`] envelopes.
    #[error("the mailbox is full")]
    MailboxFull,
    /// The host holds [`MailboxLimits::max_bytes`].
    #[error("the mailbox host is full")]
    HostFull,
    /// Not an envelope.
    #[error("not an envelope")]
    NotAnEnvelope,
    /// The host's storage failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl MailboxError {
    /// The refusal to answer with.
    pub fn refusal(&self) -> Refusal {
        match self {
            MailboxError::MailboxFull | MailboxError::NotAnEnvelope => Refusal::MailboxFull,
            MailboxError::HostFull => Refusal::HostFull,
            MailboxError::Storage(_) => Refusal::Unavailable,
        }
    }
}

/// The hosted mailboxes and switches.
pub struct MailboxHost {
    path: PathBuf,
    held: sled::Tree,
    switches: sled::Tree,
    limits: MailboxLimits,
    bytes: u64,
    count: usize,
    switch: DeadManSwitch,
    /// Mailboxes that received an envelope since last taken (for push
    /// wake-ups), without repeats, at most [`MAX_TOUCHED`].
    touched: Vec<[u8; 32]>,
}

/// Most mailboxes remembered as touched between two takes.
const MAX_TOUCHED: usize = 4096;

fn key(mailbox: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(mailbox);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn split_value(v: &[u8]) -> Option<(u64, &[u8])> {
    let (t, e) = v.split_at_checked(8)?;
    Some((u64::from_be_bytes(t.try_into().ok()?), e))
}

impl MailboxHost {
    /// Open the host's trees in `db`; `relay` is the identifier deposits
    /// must name from now on.
    pub fn open(
        db: &sled::Db,
        path: &Path,
        limits: MailboxLimits,
        relay: [u8; 32],
    ) -> Result<MailboxHost, StoreError> {
        let err = |e| map_sled(path, e);
        let held = db.open_tree("mailbox_held").map_err(err)?;
        let meta = db.open_tree("mailbox_meta").map_err(err)?;
        let mut bytes = 0u64;
        let mut count = 0usize;
        for item in held.iter() {
            let (_, v) = item.map_err(err)?;
            bytes += v.len().saturating_sub(8) as u64;
            count += 1;
        }
        let switches = db.open_tree("mailbox_switches").map_err(err)?;
        let mut switch = DeadManSwitch::new(relay, limits.max_switches);
        if let Some(v) = meta.get(SWITCH_KEY).map_err(err)? {
            // The former whole-state JSON document: one record per switch.
            let old: DeadManSwitch = serde_json::from_slice(&v).map_err(|e| {
                StoreError::Corrupt(format!("the hosted dead-man's switches do not parse: {e}"))
            })?;
            let mut batch = sled::Batch::default();
            for k in old.keys() {
                if let Some(r) = old.record(&k) {
                    batch.insert(&switch_key(LIVE, &k)[..], r);
                }
                if let Some(t) = old.tombstone(&k) {
                    batch.insert(&switch_key(TOMB, &k)[..], &t.to_be_bytes()[..]);
                }
            }
            switches.apply_batch(batch).map_err(err)?;
            switches.flush().map_err(err)?;
            meta.remove(SWITCH_KEY).map_err(err)?;
        }
        let mut records: std::collections::BTreeMap<[u8; 32], (Option<sled::IVec>, Option<u64>)> =
            Default::default();
        for item in switches.iter() {
            let (k, v) = item.map_err(err)?;
            let key: Option<[u8; 32]> = k.get(1..).and_then(|b| b.try_into().ok());
            let Some(key) = key.filter(|_| k.len() == 33) else {
                return Err(StoreError::Corrupt(
                    "a hosted switch key is malformed".into(),
                ));
            };
            let slot = records.entry(key).or_default();
            match k[0] {
                LIVE => slot.0 = Some(v),
                TOMB => {
                    let t: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                        StoreError::Corrupt("a hosted switch tombstone is malformed".into())
                    })?;
                    slot.1 = Some(u64::from_be_bytes(t));
                }
                _ => {
                    return Err(StoreError::Corrupt(
                        "a hosted switch record is unknown".into(),
                    ))
                }
            }
        }
        for (key, (record, tomb)) in records {
            switch
                .restore(&key, record.as_deref(), tomb)
                .map_err(|e| StoreError::Corrupt(format!("a hosted switch does not parse: {e}")))?;
        }
        tracing::debug!(
            envelopes = count,
            switches = switch.len(),
            "mailbox host opened"
        );
        Ok(MailboxHost {
            path: path.to_path_buf(),
            held,
            switches,
            limits,
            bytes,
            count,
            switch,
            touched: Vec::new(),
        })
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    /// Envelopes held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no envelope is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Live switches held.
    pub fn switches(&self) -> usize {
        self.switch.len()
    }

    /// Keep `envelope` in `mailbox`.
    pub fn put(
        &mut self,
        mailbox: &[u8; 32],
        envelope: &[u8],
        now: u64,
    ) -> Result<(), MailboxError> {
        self.store(mailbox, envelope, now, false)
    }

    fn store(
        &mut self,
        mailbox: &[u8; 32],
        envelope: &[u8],
        now: u64,
        past_mailbox_bound: bool,
    ) -> Result<(), MailboxError> {
        if !is_envelope_len(envelope.len()) {
            return Err(MailboxError::NotAnEnvelope);
        }
        let mut in_box = 0usize;
        let mut last_seq = None;
        for item in self.held.scan_prefix(mailbox) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if split_value(&v).is_some_and(|(_, e)| e == envelope) {
                return Ok(());
            }
            in_box += 1;
            last_seq = k
                .get(32..40)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_be_bytes);
        }
        if in_box >= self.limits.max_per_mailbox && !past_mailbox_bound {
            return Err(MailboxError::MailboxFull);
        }
        let size = envelope.len() as u64;
        if self.bytes + size > self.limits.max_bytes {
            return Err(MailboxError::HostFull);
        }
        let seq = last_seq.map_or(1, |s| s.saturating_add(1));
        let mut v = Vec::with_capacity(8 + envelope.len());
        v.extend_from_slice(&now.to_be_bytes());
        v.extend_from_slice(envelope);
        self.held
            .insert(key(mailbox, seq), v)
            .map_err(|e| self.err(e))?;
        self.bytes += size;
        self.count += 1;
        if self.touched.len() < MAX_TOUCHED && !self.touched.contains(mailbox) {
            self.touched.push(*mailbox);
        }
        Ok(())
    }

    /// The mailboxes that received an envelope since last asked.
    pub fn take_touched(&mut self) -> Vec<[u8; 32]> {
        std::mem::take(&mut self.touched)
    }

    /// The envelopes held in `mailboxes`, oldest first per mailbox, at most
    /// [`MAX_MAIL_ITEMS`]; `true` if there are more.
    pub fn fetch(&self, mailboxes: &[[u8; 32]]) -> Result<(Vec<MailItem>, bool), StoreError> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in mailboxes {
            if !seen.insert(*m) {
                continue;
            }
            for item in self.held.scan_prefix(m) {
                let (k, v) = item.map_err(|e| self.err(e))?;
                if items.len() == MAX_MAIL_ITEMS {
                    return Ok((items, true));
                }
                let seq = k
                    .get(32..40)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_be_bytes);
                match (seq, split_value(&v)) {
                    (Some(seq), Some((_, envelope))) if is_envelope_len(envelope.len()) => items
                        .push(MailItem {
                            mailbox: *m,
                            seq,
                            envelope: envelope.to_vec(),
                        }),
                    _ => tracing::warn!("skipping a malformed hosted envelope"),
                }
            }
        }
        Ok((items, false))
    }

    /// Delete fetched envelopes; returns how many were held.
    pub fn ack(&mut self, items: &[([u8; 32], u64)]) -> Result<usize, StoreError> {
        let mut n = 0;
        for (m, seq) in items {
            if let Some(v) = self.held.remove(key(m, *seq)).map_err(|e| self.err(e))? {
                self.bytes = self.bytes.saturating_sub(v.len().saturating_sub(8) as u64);
                self.count = self.count.saturating_sub(1);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Delete envelopes past the retention period; returns how many.
    pub fn purge(&mut self, now: u64) -> Result<usize, StoreError> {
        let mut old = Vec::new();
        for item in self.held.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let expired = split_value(&v)
                .map(|(t, _)| t.saturating_add(self.limits.retention_secs) <= now)
                .unwrap_or(true);
            if expired {
                old.push((k, v.len().saturating_sub(8) as u64));
            }
        }
        let n = old.len();
        for (k, size) in old {
            if self.held.remove(k).map_err(|e| self.err(e))?.is_some() {
                self.bytes = self.bytes.saturating_sub(size);
                self.count = self.count.saturating_sub(1);
            }
        }
        // Tombstones past their end: in memory, and their records.
        let mut gone = Vec::new();
        for item in self.switches.scan_prefix([TOMB]) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let until = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes);
            if until.is_ok_and(|t| t <= now) || until.is_err() {
                gone.push(k);
            }
        }
        for k in gone {
            if let Some(key) = k.get(1..).and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                let live = self.switch.record(&key);
                if let Err(e) = self.switch.restore(&key, live.as_deref(), None) {
                    tracing::error!(error = %e, "could not drop a tombstone");
                }
            }
            self.switches.remove(k).map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Write the records of switch `key` as they are in memory (one
    /// atomic batch).
    fn save_switch(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        match self.switch.record(key) {
            Some(r) => batch.insert(&switch_key(LIVE, key)[..], r),
            None => batch.remove(&switch_key(LIVE, key)[..]),
        }
        match self.switch.tombstone(key) {
            Some(t) => batch.insert(&switch_key(TOMB, key)[..], &t.to_be_bytes()[..]),
            None => batch.remove(&switch_key(TOMB, key)[..]),
        }
        self.switches.apply_batch(batch).map_err(|e| self.err(e))
    }

    /// Apply a dead-man's-switch request; returns its switch key.
    pub fn switch(&mut self, bytes: &[u8], now: u64) -> Result<[u8; 32], Refusal> {
        let request = SwitchRequest::from_bytes(bytes).map_err(|e| Refusal::of_switch(&e))?;
        let key = *request.key();
        let before = (self.switch.record(&key), self.switch.tombstone(&key));
        self.switch
            .apply(request, now)
            .map_err(|e| Refusal::of_switch(&e))?;
        if let Err(e) = self.save_switch(&key) {
            tracing::error!(error = %e, "could not save a dead-man's switch; refusing it");
            if let Err(e) = self.switch.restore(&key, before.0.as_deref(), before.1) {
                tracing::error!(error = %e, "could not undo a dead-man's switch change");
            }
            return Err(Refusal::Unavailable);
        }
        Ok(key)
    }

    /// Whether the host still holds switch `key` (live, or its tombstone).
    pub fn holds_switch(&self, key: &[u8; 32]) -> bool {
        self.switch.holds(key)
    }

    /// When the next switch is due.
    pub fn next_release(&self) -> Option<u64> {
        self.switch.next_release()
    }

    /// Release every switch due at `now` into its mailboxes; returns how
    /// many alerts were stored.
    pub fn release(&mut self, now: u64) -> Result<usize, StoreError> {
        if self.switch.next_release().is_none_or(|t| t > now) {
            return Ok(0);
        }
        // Stored before the switches are deleted: a crash in between
        // releases twice (receivers drop the duplicate), never not at all.
        let before: Vec<([u8; 32], Option<Vec<u8>>)> = self
            .switch
            .due(now)
            .into_iter()
            .map(|k| (k, self.switch.record(&k)))
            .collect();
        let releases = self.switch.poll(now);
        let mut stored = 0;
        let mut failed = None;
        'alerts: for r in &releases {
            for a in &r.alerts {
                match self.store(&a.mailbox, &a.envelope, now, true) {
                    Ok(()) => stored += 1,
                    Err(MailboxError::Storage(e)) => {
                        failed = Some(e);
                        break 'alerts;
                    }
                    Err(e) => tracing::warn!(error = %e, "a released alert could not be stored"),
                }
            }
        }
        if let Some(e) = failed {
            // Put the due switches back: they are released on the next tick.
            for (k, r) in &before {
                let t = self.switch.tombstone(k);
                if let Err(e) = self.switch.restore(k, r.as_deref(), t) {
                    tracing::error!(error = %e, "could not restore a due switch");
                }
            }
            return Err(e);
        }
        for r in &releases {
            self.save_switch(&r.key)?;
        }
        tracing::info!(switches = releases.len(), "dead-man's switches released");
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ronde_protocol::circle::SMALL_ENVELOPE_LEN;

    fn open(dir: &Path, limits: MailboxLimits) -> MailboxHost {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .open()
            .expect("sled");
        MailboxHost::open(&db, dir, limits, [1; 32]).expect("open")
    }

    fn env(b: u8) -> Vec<u8> {
        let mut e = vec![b; SMALL_ENVELOPE_LEN];
        e[0] = 1;
        e
    }

    #[test]
    fn put_fetch_ack_with_bounds_and_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = MailboxLimits {
            retention_secs: 100,
            max_per_mailbox: 2,
            max_bytes: 3 * SMALL_ENVELOPE_LEN as u64,
            max_switches: 4,
            ..MailboxLimits::default()
        };
        let mut h = open(dir.path(), limits);
        let (a, b) = ([0xaa; 32], [0xbb; 32]);
        h.put(&a, &env(1), 10).expect("put");
        h.put(&a, &env(1), 11).expect("the same again is kept once");
        assert_eq!(h.len(), 1);
        h.put(&a, &env(2), 12).expect("put");
        assert!(matches!(
            h.put(&a, &env(3), 13),
            Err(MailboxError::MailboxFull)
        ));
        h.put(&b, &env(4), 50).expect("another mailbox");
        assert!(matches!(
            h.put(&[0xcc; 32], &env(5), 51),
            Err(MailboxError::HostFull)
        ));
        assert!(matches!(
            h.put(&b, &[1, 2], 51),
            Err(MailboxError::NotAnEnvelope)
        ));

        let (items, more) = h.fetch(&[a]).expect("fetch");
        assert!(!more);
        assert_eq!(
            items.iter().map(|i| i.envelope[1]).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(h.ack(&[(a, items[0].seq)]).expect("ack"), 1);
        assert_eq!(h.ack(&[(a, items[0].seq)]).expect("ack again"), 0);
        assert_eq!(h.fetch(&[a, b]).expect("fetch").0.len(), 2);

        // Retention: the first ones go at 112, the other at 150.
        assert_eq!(h.purge(111).expect("purge"), 0);
        assert_eq!(h.purge(112).expect("purge"), 1);
        assert_eq!(h.fetch(&[a, b]).expect("fetch").0.len(), 1);
        assert_eq!(h.purge(150).expect("purge"), 1);
        assert!(h.is_empty());
        h.put(&a, &env(6), 200).expect("room again");
    }

    #[test]
    fn envelopes_and_switches_survive_a_restart() {
        use ronde_protocol::circle::{Alert, SwitchOwner};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = rand::rngs::OsRng;
        let owner = SwitchOwner::new(&mut rng);
        let alert = Alert {
            mailbox: [0xdd; 32],
            envelope: env(9),
        };
        let deposit = owner
            .deposit([1; 32], 1_000, vec![alert], &mut rng)
            .expect("deposit")
            .to_bytes();
        {
            let mut h = open(dir.path(), MailboxLimits::default());
            h.put(&[0xaa; 32], &env(1), 10).expect("put");
            h.switch(&deposit, 10).expect("deposited");
            // Not a whole-state document: one record per switch.
            assert!(h.switches.len() == 2, "a live record and a tombstone");
            assert_eq!(h.switch(&deposit, 11), Err(Refusal::SwitchAlreadyDeposited));
        }
        let mut h = open(dir.path(), MailboxLimits::default());
        assert_eq!(h.len(), 1);
        assert_eq!(h.switches(), 1);
        assert_eq!(h.release(999).expect("release"), 0);
        // Four alerts: the real one and three dummies.
        assert_eq!(h.release(1_000).expect("release"), 4);
        let (items, _) = h.fetch(&[[0xdd; 32]]).expect("fetch");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].envelope, env(9));
        assert_eq!(h.release(2_000).expect("released once"), 0);
    }
}
