//! The relay's side of the directory: the operator adds, updates, confirms
//! and removes safe places and mediators; places send heartbeats; phones
//! send flags; the relay signs the whole directory with the city key and
//! serves it.
//!
//! The signed document is rebuilt after every change and at least every
//! hour (so that it never expires while the relay runs), with a serial of
//! `max(previous + 1, now)`: it grows even if the database is restored from
//! an older backup.

use std::sync::Arc;

use ronde_protocol::directory::{
    freshness, verify_flag, verify_heartbeat, Directory, DirectoryError, DirectoryKey,
    DirectoryPublicKey, FlagReason, Freshness, Heartbeat, Location, Mediator, PlaceId, PlaceKind,
    RelayEntry, SafePlace, MAX_MEDIATORS, MAX_PLACES,
};
use ronde_protocol::token::TokenKey;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::DirectorySettings;
use crate::store::{FlagCounts, RelayStore, StoreError};

const DAY: u64 = 86_400;

/// A fresh random id from the OS generator.
fn random_place_id() -> PlaceId {
    PlaceId::generate(&mut rand::rngs::OsRng)
}

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The input breaks a rule of the format (too long, bad phone…).
    #[error("{0}")]
    Invalid(#[from] DirectoryError),
    /// No such place or mediator.
    #[error("no place or mediator with id {0}")]
    NotFound(PlaceId),
    /// The directory is full.
    #[error("the directory is full ({0})")]
    Full(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the operator gives for a place (JSON body of `POST /api/places`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceInput {
    /// Public name.
    pub name: String,
    /// Kind (`pharmacy`, `bar`…).
    pub kind: PlaceKind,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Opening hours, free text.
    #[serde(default)]
    pub opening_hours: String,
    /// Contact, free text.
    #[serde(default)]
    pub contact: String,
    /// The place's own heartbeat key (64 hex digits), if it will confirm
    /// itself.
    #[serde(default)]
    pub heartbeat_key: Option<DirectoryPublicKey>,
}

/// What the operator gives for a mediator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediatorInput {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Phone number.
    pub phone: String,
    /// Geohash prefix of the area they cover (empty: the whole city).
    #[serde(default)]
    pub area: String,
    /// When they can be reached.
    #[serde(default)]
    pub hours: String,
}

/// A place as the dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceView {
    /// The listing.
    #[serde(flatten)]
    pub place: SafePlace,
    /// Fresh, stale or expired, and until / since when.
    pub freshness: Freshness,
    /// When the place itself last confirmed, if ever.
    pub last_heartbeat: Option<u64>,
    /// Flags received in the last 30 days, per reason.
    pub flags: FlagCounts,
}

/// The directory service: storage, the city key and the current signed
/// document.
pub struct DirectoryService {
    store: RelayStore,
    key: DirectoryKey,
    city: String,
    settings: DirectorySettings,
    /// The relays listed (this one and the configured others), sorted by
    /// peer id, one entry per peer.
    relays: Vec<RelayEntry>,
    /// The current signed document; subscribers (the relay's node, which
    /// serves it over `/ronde/directory/1`) see every new one.
    signed: watch::Sender<Arc<Vec<u8>>>,
    /// The token issuer's public keys (`crate::tokens`), listed from the
    /// next signing on.
    token_keys: std::sync::Mutex<Vec<TokenKey>>,
}

impl DirectoryService {
    /// A service over the store, signing with `key` and listing `relays`
    /// (the first entry of a peer wins); call [`DirectoryService::rebuild`]
    /// before serving.
    pub fn new(
        store: RelayStore,
        key: DirectoryKey,
        city: String,
        settings: DirectorySettings,
        mut relays: Vec<RelayEntry>,
    ) -> DirectoryService {
        // A stable sort keeps the first entry of a peer first.
        relays.sort_by(|a, b| a.peer.cmp(&b.peer));
        relays.dedup_by(|later, first| later.peer == first.peer);
        DirectoryService {
            store,
            key,
            city,
            settings,
            relays,
            signed: watch::Sender::new(Arc::new(Vec::new())),
            token_keys: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// List these token keys (sorted by period, at most four) from the
    /// next [`DirectoryService::rebuild`] on.
    pub fn set_token_keys(&self, mut keys: Vec<TokenKey>) {
        keys.sort_by_key(|k| k.period_start());
        keys.dedup_by_key(|k| k.period_start());
        keys.truncate(ronde_protocol::directory::MAX_TOKEN_KEYS);
        if let Ok(mut held) = self.token_keys.lock() {
            *held = keys;
        }
    }

    /// The city's public key.
    pub fn public_key(&self) -> DirectoryPublicKey {
        self.key.public()
    }

    /// The current signed document.
    pub fn signed(&self) -> Arc<Vec<u8>> {
        self.signed.borrow().clone()
    }

    /// Every newly signed document, as it is signed.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<u8>>> {
        self.signed.subscribe()
    }

    /// Re-sign the directory at `now`: every place and mediator not expired,
    /// with their latest heartbeats. Returns the new serial.
    pub fn rebuild(&self, now: u64) -> Result<u64, DirError> {
        let mut places = Vec::new();
        let mut heartbeats = Vec::new();
        for p in self.store.places()? {
            let hb = self.store.heartbeat(&p.id)?;
            if !freshness(&p, hb.as_ref(), now).is_shown() {
                continue;
            }
            if let (Some(hb), Some(_)) = (hb, p.heartbeat_key) {
                heartbeats.push(hb);
            }
            places.push(p);
        }
        let mediators: Vec<Mediator> = self
            .store
            .mediators()?
            .into_iter()
            .filter(|m| m.expires_at > now)
            .collect();
        let serial = (self.store.directory_serial()? + 1).max(now);
        let doc = Directory {
            city: self.city.clone(),
            serial,
            issued_at: now,
            expires_at: now + u64::from(self.settings.document_validity_hours) * 3_600,
            places,
            mediators,
            heartbeats,
            relays: self.relays.clone(),
            token_keys: self
                .token_keys
                .lock()
                .map(|k| k.clone())
                .unwrap_or_default(),
        };
        let bytes = doc.sign(&self.key)?;
        self.store.set_directory_serial(serial)?;
        self.signed.send_replace(Arc::new(bytes));
        Ok(serial)
    }

    fn listing_until(&self, now: u64) -> u64 {
        now + u64::from(self.settings.listing_validity_days) * DAY
    }

    fn heartbeat_ttl(&self, key: &Option<DirectoryPublicKey>) -> u32 {
        if key.is_some() {
            self.settings.heartbeat_ttl_days.saturating_mul(86_400)
        } else {
            0
        }
    }

    fn build_place(
        &self,
        id: PlaceId,
        input: &PlaceInput,
        now: u64,
    ) -> Result<SafePlace, DirError> {
        let p = SafePlace {
            id,
            name: input.name.clone(),
            kind: input.kind,
            location: Location::from_degrees(input.lat, input.lon)?,
            opening_hours: input.opening_hours.clone(),
            contact: input.contact.clone(),
            verified_at: now,
            expires_at: self.listing_until(now),
            heartbeat_key: input.heartbeat_key,
            heartbeat_ttl_secs: self.heartbeat_ttl(&input.heartbeat_key),
        };
        p.check()?;
        Ok(p)
    }

    /// Add a place (verified by the city now).
    pub fn add_place(&self, input: &PlaceInput, now: u64) -> Result<SafePlace, DirError> {
        if self.store.places()?.len() >= MAX_PLACES {
            return Err(DirError::Full("places"));
        }
        let p = self.build_place(random_place_id(), input, now)?;
        self.store.put_place(&p)?;
        self.rebuild(now)?;
        Ok(p)
    }

    /// Replace a place's details (which re-verifies it now). A changed
    /// heartbeat key drops the place's last heartbeat.
    pub fn update_place(
        &self,
        id: PlaceId,
        input: &PlaceInput,
        now: u64,
    ) -> Result<SafePlace, DirError> {
        let old = self.store.place(&id)?.ok_or(DirError::NotFound(id))?;
        let p = self.build_place(id, input, now)?;
        if old.heartbeat_key != p.heartbeat_key {
            self.store.clear_heartbeat(&id)?;
        }
        self.store.put_place(&p)?;
        self.rebuild(now)?;
        Ok(p)
    }

    /// The city re-confirms a place (or a mediator) as it is.
    pub fn confirm(&self, id: PlaceId, now: u64) -> Result<(), DirError> {
        if let Some(mut p) = self.store.place(&id)? {
            p.verified_at = now;
            p.expires_at = self.listing_until(now);
            self.store.put_place(&p)?;
        } else if let Some(mut m) = self.store.mediator(&id)? {
            m.verified_at = now;
            m.expires_at = self.listing_until(now);
            self.store.put_mediator(&m)?;
        } else {
            return Err(DirError::NotFound(id));
        }
        self.rebuild(now)?;
        Ok(())
    }

    /// Remove a place or a mediator.
    pub fn remove(&self, id: PlaceId, now: u64) -> Result<(), DirError> {
        let removed = self.store.remove_place(&id)? || self.store.remove_mediator(&id)?;
        if !removed {
            return Err(DirError::NotFound(id));
        }
        self.rebuild(now)?;
        Ok(())
    }

    fn build_mediator(
        &self,
        id: PlaceId,
        input: &MediatorInput,
        now: u64,
    ) -> Result<Mediator, DirError> {
        let m = Mediator {
            id,
            name: input.name.clone(),
            role: input.role.clone(),
            phone: input.phone.clone(),
            area: input.area.clone(),
            hours: input.hours.clone(),
            verified_at: now,
            expires_at: self.listing_until(now),
        };
        m.check()?;
        Ok(m)
    }

    /// Add a mediator.
    pub fn add_mediator(&self, input: &MediatorInput, now: u64) -> Result<Mediator, DirError> {
        if self.store.mediators()?.len() >= MAX_MEDIATORS {
            return Err(DirError::Full("mediators"));
        }
        let m = self.build_mediator(random_place_id(), input, now)?;
        self.store.put_mediator(&m)?;
        self.rebuild(now)?;
        Ok(m)
    }

    /// Replace a mediator's details.
    pub fn update_mediator(
        &self,
        id: PlaceId,
        input: &MediatorInput,
        now: u64,
    ) -> Result<Mediator, DirError> {
        self.store.mediator(&id)?.ok_or(DirError::NotFound(id))?;
        let m = self.build_mediator(id, input, now)?;
        self.store.put_mediator(&m)?;
        self.rebuild(now)?;
        Ok(m)
    }

    /// Every place with its freshness, heartbeat and flags.
    pub fn place_views(&self, now: u64) -> Result<Vec<PlaceView>, DirError> {
        let mut out = Vec::new();
        for p in self.store.places()? {
            let hb = self.store.heartbeat(&p.id)?;
            out.push(PlaceView {
                freshness: freshness(&p, hb.as_ref(), now),
                last_heartbeat: hb.map(|h| h.confirmed_at),
                flags: self.store.flag_counts(&p.id)?,
                place: p,
            });
        }
        out.sort_by(|a, b| a.place.name.cmp(&b.place.name));
        Ok(out)
    }

    /// Every mediator.
    pub fn mediators(&self) -> Result<Vec<Mediator>, DirError> {
        Ok(self.store.mediators()?)
    }

    /// A heartbeat sent by a place: verified against its registered key,
    /// kept if newer, and the directory re-signed. Returns whether it was
    /// new.
    pub fn accept_heartbeat(&self, bytes: &[u8], now: u64) -> Result<bool, DirError> {
        let hb = Heartbeat::from_bytes(bytes)?;
        let place = self
            .store
            .place(&hb.place)?
            .ok_or(DirectoryError::HeartbeatUnknownPlace)?;
        verify_heartbeat(&hb, &place, now)?;
        let new = self.store.put_heartbeat(&hb)?;
        if new {
            self.rebuild(now)?;
        }
        Ok(new)
    }

    /// A flag sent by a phone: verified (proof of work, signature, age),
    /// for a listed place, deduplicated. Returns whether it was new.
    pub fn accept_flag(&self, bytes: &[u8], now: u64) -> Result<bool, DirError> {
        let flag = verify_flag(bytes, now, self.settings.flag_min_difficulty)?;
        if self.store.place(&flag.flag.place)?.is_none() {
            return Err(DirError::NotFound(flag.flag.place));
        }
        Ok(self.store.add_flag(&flag)?)
    }

    /// Counts of places by freshness at `now` (for metrics).
    pub fn freshness_counts(&self, now: u64) -> Result<[u64; 3], DirError> {
        let mut c = [0u64; 3];
        for v in self.place_views(now)? {
            let i = match v.freshness {
                Freshness::Fresh { .. } => 0,
                Freshness::Stale { .. } => 1,
                Freshness::Expired { .. } => 2,
            };
            c[i] += 1;
        }
        Ok(c)
    }
}

/// Every flag reason's name, in order (for the dashboard).
pub fn flag_reason_names() -> Vec<&'static str> {
    FlagReason::ALL.iter().map(|r| r.as_str()).collect()
}
