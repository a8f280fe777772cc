//! Where the client side keeps this person's circle on disk: trees of the
//! node's sled database (`<data_dir>/db`, next to the reports; a mailbox
//! host's trees are apart, in [`crate::circle::host::store`]).
//!
//! * `circle_state`: JSON documents under fixed keys: `circle` (contacts,
//!   counters, replay windows, pending invites; no secret), `watch` (what
//!   the receiving side remembers of contacts' journeys and SOS),
//!   `profile` (the display name), `journey` and `sos` (this person's own,
//!   with the journey's dead-man's-switch keys: secret), `acks` (acks sent).
//! * `circle_outbox`: sealed envelopes not delivered yet, by sequence
//!   number: ciphertext plus routing hints.
//! * `circle_inbox`: what contacts said, by sequence number (bounded to
//!   [`MAX_INBOX`], oldest dropped first).
//!
//! Every change is one sled transaction over the three trees ([`Commit`]):
//! in particular a sealed envelope enters the outbox in the same
//! transaction that records its counter, so a counter is never used twice
//! and nothing sealed is lost in a crash.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::circle::views::InboxItem;
use crate::error::StoreError;
use crate::store::map_sled;

/// Most items kept in the inbox.
pub const MAX_INBOX: usize = 1000;

/// Keys of the `circle_state` tree.
pub(crate) mod keys {
    pub const CIRCLE: &str = "circle";
    pub const WATCH: &str = "watch";
    pub const PROFILE: &str = "profile";
    pub const JOURNEY: &str = "journey";
    pub const SOS: &str = "sos";
    pub const ACKS: &str = "acks";
    pub const CODES: &str = "codes";
}

/// An envelope waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutItem {
    /// The recipient.
    pub to: ronde_protocol::circle::ContactId,
    /// The sealed envelope (hex).
    #[serde(with = "hex_bytes")]
    pub envelope: Vec<u8>,
    /// A fixed mailbox (an invite's, or a leave's computed before the
    /// contact was removed); otherwise the pair mailbox of the day of
    /// delivery.
    #[serde(default, with = "opt_hex32")]
    pub mailbox: Option<[u8; 32]>,
    /// Addresses to try for direct delivery besides what is known of the
    /// contact.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Sent both directly and to the mailboxes (SOS, overdue): a mailbox
    /// host or a peer that lies about delivery cannot make it vanish.
    #[serde(default)]
    pub critical: bool,
    /// When it was sealed (Unix seconds).
    pub created_at: u64,
}

/// Hex (de)serialization of byte vectors.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// Hex (de)serialization of an optional 32-byte array.
pub(crate) mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            let mut a = [0u8; 32];
            hex::decode_to_slice(s, &mut a).map_err(serde::de::Error::custom)?;
            Ok(a)
        })
        .transpose()
    }
}

/// A set of changes applied atomically by [`CircleStore::apply`].
#[derive(Debug, Default)]
pub struct Commit {
    state: Vec<(&'static str, Option<Vec<u8>>)>,
    outbox: Vec<(u64, Option<Vec<u8>>)>,
    inbox: Vec<(u64, Option<Vec<u8>>)>,
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Other(format!("cannot serialize: {e}")))
}

impl Commit {
    /// Nothing yet.
    pub fn new() -> Commit {
        Commit::default()
    }
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty() && self.outbox.is_empty() && self.inbox.is_empty()
    }
    /// Write a state document.
    pub fn put<T: Serialize>(&mut self, key: &'static str, v: &T) -> Result<(), StoreError> {
        self.state.push((key, Some(json(v)?)));
        Ok(())
    }
    /// Delete a state document.
    pub fn delete(&mut self, key: &'static str) {
        self.state.push((key, None));
    }
    /// Queue an envelope.
    pub fn enqueue(&mut self, seq: u64, item: &OutItem) -> Result<(), StoreError> {
        self.outbox.push((seq, Some(json(item)?)));
        Ok(())
    }
    /// Forget a queued envelope.
    pub fn dequeue(&mut self, seq: u64) {
        self.outbox.push((seq, None));
    }
    /// Write an inbox item.
    pub fn inbox(&mut self, item: &InboxItem) -> Result<(), StoreError> {
        self.inbox.push((item.id, Some(json(item)?)));
        Ok(())
    }
    /// Delete an inbox item.
    pub fn drop_inbox(&mut self, id: u64) {
        self.inbox.push((id, None));
    }
}

/// The circle's trees.
pub struct CircleStore {
    path: PathBuf,
    db: sled::Db,
    state: sled::Tree,
    outbox: sled::Tree,
    inbox: sled::Tree,
}

impl CircleStore {
    /// Open the circle's trees in `db` (at `path`, for error messages).
    pub fn open(db: &sled::Db, path: &Path) -> Result<CircleStore, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(|e| map_sled(path, e));
        Ok(CircleStore {
            path: path.to_path_buf(),
            db: db.clone(),
            state: tree("circle_state")?,
            outbox: tree("circle_outbox")?,
            inbox: tree("circle_inbox")?,
        })
    }

    fn err(&self, e: sled::Error) -> StoreError {
        map_sled(&self.path, e)
    }

    /// A fresh number, increasing across restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(|e| self.err(e))
    }

    /// A state document; a document that does not parse is an error (the
    /// node stops rather than lose the circle).
    pub fn load<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StoreError> {
        let Some(v) = self.state.get(key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&v).map(Some).map_err(|e| {
            StoreError::Corrupt(format!("the circle's `{key}` record does not parse: {e}"))
        })
    }

    /// Apply `commit` atomically.
    pub fn apply(&self, commit: Commit) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        (&self.state, &self.outbox, &self.inbox)
            .transaction(|(s, o, i)| {
                for (k, v) in &commit.state {
                    match v {
                        Some(v) => s.insert(k.as_bytes(), v.as_slice())?,
                        None => s.remove(k.as_bytes())?,
                    };
                }
                for (seq, v) in &commit.outbox {
                    match v {
                        Some(v) => o.insert(&seq.to_be_bytes(), v.as_slice())?,
                        None => o.remove(&seq.to_be_bytes())?,
                    };
                }
                for (id, v) in &commit.inbox {
                    match v {
                        Some(v) => i.insert(&id.to_be_bytes(), v.as_slice())?,
                        None => i.remove(&id.to_be_bytes())?,
                    };
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => self.err(e),
            })
    }

    /// Every queued envelope, oldest first. Entries that do not parse are
    /// skipped (and logged by number).
    pub fn outbox(&self) -> Result<Vec<(u64, OutItem)>, StoreError> {
        let mut out = Vec::new();
        for item in self.outbox.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let Some(seq) = <[u8; 8]>::try_from(k.as_ref()).ok().map(u64::from_be_bytes) else {
                tracing::warn!("skipping an outbox entry with a malformed key");
                continue;
            };
            match serde_json::from_slice::<OutItem>(&v) {
                Ok(it) => out.push((seq, it)),
                Err(_) => tracing::warn!(seq, "skipping an outbox entry that does not parse"),
            }
        }
        Ok(out)
    }

    /// The inbox, oldest first.
    pub fn inbox(&self) -> Result<Vec<InboxItem>, StoreError> {
        let mut out = Vec::new();
        for item in self.inbox.iter() {
            let (_, v) = item.map_err(|e| self.err(e))?;
            match serde_json::from_slice::<InboxItem>(&v) {
                Ok(it) => out.push(it),
                Err(_) => tracing::warn!("skipping an inbox entry that does not parse"),
            }
        }
        Ok(out)
    }

    /// Ids of the oldest inbox items beyond [`MAX_INBOX`] once `adding`
    /// more arrive.
    pub fn inbox_overflow(&self, adding: usize) -> Result<Vec<u64>, StoreError> {
        let len = self.inbox.len();
        let excess = (len + adding).saturating_sub(MAX_INBOX);
        let mut out = Vec::new();
        for k in self.inbox.iter().keys().take(excess) {
            let k = k.map_err(|e| self.err(e))?;
            if let Ok(a) = <[u8; 8]>::try_from(k.as_ref()) {
                out.push(u64::from_be_bytes(a));
            }
        }
        Ok(out)
    }

    /// Write everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}
