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
//! are one JSON document in `mailbox_meta`.
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
//!   and tombstones.
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
use ronde_protocol::circle::DeadManSwitch;
use sha2::{Digest, Sha256};

use crate::circle::wire::{is_envelope_len, MailItem, Refusal, MAX_MAIL_ITEMS};
use crate::config::MailboxLimits;
use crate::error::StoreError;
use crate::store::map_sled;

/// Domain separator of a host's switch relay identifier.
pub const RELAY_ID_DOMAIN: &[u8] = b"ronde/circle/v1/switch-relay";
const SWITCH_KEY: &[u8] = b"switch";

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
    meta: sled::Tree,
    limits: MailboxLimits,
    bytes: u64,
    count: usize,
    switch: DeadManSwitch,
}

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
        let switch = match meta.get(SWITCH_KEY).map_err(err)? {
            Some(v) => {
                let mut s: DeadManSwitch = serde_json::from_slice(&v).map_err(|e| {
                    StoreError::Corrupt(format!("the hosted dead-man's switches do not parse: {e}"))
                })?;
                s.set_relay(relay);
                s
            }
            None => DeadManSwitch::new(relay, limits.max_switches),
        };
        tracing::debug!(
            envelopes = count,
            switches = switch.len(),
            "mailbox host opened"
        );
        Ok(MailboxHost {
            path: path.to_path_buf(),
            held,
            meta,
            limits,
            bytes,
            count,
            switch,
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
        Ok(())
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
        Ok(n)
    }

    fn save_switch(&self) -> Result<(), StoreError> {
        let v = serde_json::to_vec(&self.switch)
            .map_err(|e| StoreError::Other(format!("cannot serialize the switches: {e}")))?;
        self.meta.insert(SWITCH_KEY, v).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Apply a dead-man's-switch request.
    pub fn switch(&mut self, bytes: &[u8], now: u64) -> Result<(), Refusal> {
        let before = self.switch.clone();
        self.switch
            .handle(bytes, now)
            .map_err(|e| Refusal::of_switch(&e))?;
        if let Err(e) = self.save_switch() {
            tracing::error!(error = %e, "could not save a dead-man's switch; refusing it");
            self.switch = before;
            return Err(Refusal::Unavailable);
        }
        Ok(())
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
        let mut due = self.switch.clone();
        let releases = due.poll(now);
        let mut stored = 0;
        for r in &releases {
            for a in &r.alerts {
                match self.store(&a.mailbox, &a.envelope, now, true) {
                    Ok(()) => stored += 1,
                    Err(MailboxError::Storage(e)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "a released alert could not be stored"),
                }
            }
        }
        self.switch = due;
        self.save_switch()?;
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
