//! The SOS state machine, sans-IO.
//!
//! Raising an SOS sends it to the whole circle at once. Until at least one
//! contact acknowledges it ([`Message::Ack`] with the SOS id), it is re-sent
//! to everyone with exponential backoff (by default after 20 s, 40 s, 80 s…,
//! then every 5 minutes, for at most 24 hours). Every ack is recorded, so the
//! person sees who has seen it; acks from anyone the SOS was not sent to, or
//! for another id, are ignored. Cancelling tells everyone.
//!
//! Re-sends carry the same id: receivers alert once per id and treat a later
//! copy as an update (e.g. a new position from [`Sos::update_place`]).
//!
//! **Duress.** [`Sos::cancel_under_duress`] is what the node calls when the
//! person "cancels" with their duress code: [`Sos::shown_state`] says
//! cancelled (that is what the screen shows), the contacts get a
//! [`Message::Duress`] (as large as a cancellation), and the SOS goes on: it
//! is still re-sent until acknowledged and still takes new positions. A
//! later real cancel ends it as usual.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRngCore;

use crate::circle::identity::ContactId;
use crate::circle::message::{Message, Place, MAX_NOTE_LEN};
use crate::circle::wire::{check_text, DecodeError};
use crate::circle::{Effect, MessageId};

/// How an SOS is re-sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SosConfig {
    /// Delay before the first re-send (seconds, ≥ 1). Default 20.
    pub first_retry_secs: u64,
    /// The delay doubles up to this (seconds). Default 300.
    pub max_retry_secs: u64,
    /// Stop re-sending this long after raising it (seconds). Default 24 h.
    pub retry_for_secs: u64,
}

impl Default for SosConfig {
    fn default() -> Self {
        SosConfig {
            first_retry_secs: 20,
            max_retry_secs: 300,
            retry_for_secs: 86_400,
        }
    }
}

/// Where an SOS stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SosState {
    /// Raised and not cancelled.
    Active,
    /// Cancelled by the person.
    Cancelled,
}

/// Why an SOS could not be raised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SosError {
    /// Nobody to send it to.
    #[error("the circle has no mutual contact to alert")]
    NoRecipients,
    /// The note is over 280 bytes or has control characters.
    #[error("invalid note: {0}")]
    BadNote(#[from] DecodeError),
    /// A configuration value out of range.
    #[error("invalid SOS setting")]
    BadConfig,
    /// The SOS was cancelled.
    #[error("the SOS was cancelled")]
    Cancelled,
}

/// One SOS. Serializable, so the node can persist it across restarts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sos {
    id: MessageId,
    raised_at: u64,
    place: Option<Place>,
    note: String,
    recipients: BTreeSet<ContactId>,
    acks: BTreeMap<ContactId, u64>,
    config: SosConfig,
    state: SosState,
    next_retry_at: Option<u64>,
    retry_interval: u64,
    sends: u32,
    /// Cancelled with the duress code (the SOS goes on).
    #[serde(default)]
    duress: bool,
}

impl Sos {
    /// Raise an SOS at `now` to `recipients` (the mutual contacts).
    pub fn start(
        recipients: impl IntoIterator<Item = ContactId>,
        place: Option<Place>,
        note: &str,
        config: SosConfig,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Sos, Vec<Effect>), SosError> {
        if config.first_retry_secs == 0 || config.max_retry_secs < config.first_retry_secs {
            return Err(SosError::BadConfig);
        }
        check_text(note, "note", MAX_NOTE_LEN, true)?;
        let recipients: BTreeSet<ContactId> = recipients.into_iter().collect();
        if recipients.is_empty() {
            return Err(SosError::NoRecipients);
        }
        let mut sos = Sos {
            id: MessageId::random(rng),
            raised_at: now,
            place,
            note: note.to_owned(),
            recipients,
            acks: BTreeMap::new(),
            config,
            state: SosState::Active,
            next_retry_at: Some(now + config.first_retry_secs),
            retry_interval: config.first_retry_secs,
            sends: 0,
            duress: false,
        };
        let effect = sos.send_all();
        Ok((sos, vec![effect]))
    }

    /// The SOS id.
    pub fn id(&self) -> MessageId {
        self.id
    }
    /// Where it stands.
    pub fn state(&self) -> SosState {
        self.state
    }
    /// What the person's screen shows: [`SosState::Cancelled`] once
    /// cancelled under duress, while [`Sos::state`] stays active.
    pub fn shown_state(&self) -> SosState {
        if self.duress {
            SosState::Cancelled
        } else {
            self.state
        }
    }
    /// Whether it was cancelled with the duress code (never show this).
    pub fn is_under_duress(&self) -> bool {
        self.duress
    }
    /// When it was raised.
    pub fn raised_at(&self) -> u64 {
        self.raised_at
    }
    /// Who it was sent to.
    pub fn recipients(&self) -> &BTreeSet<ContactId> {
        &self.recipients
    }
    /// Who acknowledged it, and when (Unix seconds).
    pub fn acked_by(&self) -> &BTreeMap<ContactId, u64> {
        &self.acks
    }
    /// Whether anyone acknowledged it.
    pub fn is_acknowledged(&self) -> bool {
        !self.acks.is_empty()
    }
    /// How many times it was sent (the first send included).
    pub fn sends(&self) -> u32 {
        self.sends
    }

    /// The SOS message as sent now.
    pub fn message(&self) -> Message {
        Message::Sos {
            sos: self.id,
            at: self.raised_at,
            place: self.place,
            note: self.note.clone(),
        }
    }

    fn send_all(&mut self) -> Effect {
        self.sends = self.sends.saturating_add(1);
        Effect::SendTo {
            to: self.recipients.iter().copied().collect(),
            message: self.message(),
        }
    }

    /// When to call [`Sos::poll`] next (`None`: no re-send pending).
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_retry_at
    }

    /// Let time pass: re-send while nobody acknowledged.
    pub fn poll(&mut self, now: u64) -> Vec<Effect> {
        let Some(at) = self.next_retry_at else {
            return Vec::new();
        };
        if now < at {
            return Vec::new();
        }
        if now >= self.raised_at + self.config.retry_for_secs {
            self.next_retry_at = None;
            return Vec::new();
        }
        self.retry_interval = (self.retry_interval * 2).min(self.config.max_retry_secs);
        self.next_retry_at = Some(now + self.retry_interval);
        vec![self.send_all()]
    }

    /// An ack of `of` from contact `from` at `now`. Returns whether it was
    /// recorded: acks for another id, from someone the SOS was not sent to,
    /// or repeated, are ignored. The first ack stops the re-sends.
    pub fn ack(&mut self, from: &ContactId, of: &MessageId, now: u64) -> bool {
        if of != &self.id || !self.recipients.contains(from) || self.acks.contains_key(from) {
            return false;
        }
        self.acks.insert(*from, now);
        self.next_retry_at = None;
        true
    }

    /// A new position: sent to everyone at once (same id).
    pub fn update_place(&mut self, place: Place, _now: u64) -> Result<Vec<Effect>, SosError> {
        if self.state != SosState::Active {
            return Err(SosError::Cancelled);
        }
        self.place = Some(place);
        Ok(vec![self.send_all()])
    }

    /// "Cancelled" with the duress code: the screen shows it cancelled
    /// ([`Sos::shown_state`]), the recipients are told
    /// ([`Message::Duress`]) and the SOS goes on. Does nothing if it is
    /// already over or already under duress.
    pub fn cancel_under_duress(&mut self, now: u64) -> Vec<Effect> {
        if self.state != SosState::Active || self.duress {
            return Vec::new();
        }
        self.duress = true;
        vec![Effect::SendTo {
            to: self.recipients.iter().copied().collect(),
            message: Message::Duress {
                of: self.id,
                at: now,
            },
        }]
    }

    /// The person raises an SOS again while this one goes on under duress
    /// (their screen showed it cancelled): it is shown active again and sent
    /// to everyone at once, same id, with the re-sends starting over. Does
    /// nothing unless under duress.
    pub fn raise_again(&mut self, now: u64) -> Vec<Effect> {
        if self.state != SosState::Active || !self.duress {
            return Vec::new();
        }
        self.duress = false;
        self.retry_interval = self.config.first_retry_secs;
        self.next_retry_at = Some(now + self.config.first_retry_secs);
        vec![self.send_all()]
    }

    /// Cancel: tell everyone it is over. Does nothing if already cancelled.
    /// After a duress cancel, this (with the real code) is the all-clear.
    pub fn cancel(&mut self, now: u64) -> Vec<Effect> {
        if self.state != SosState::Active {
            return Vec::new();
        }
        self.duress = false;
        self.state = SosState::Cancelled;
        self.next_retry_at = None;
        vec![Effect::SendTo {
            to: self.recipients.iter().copied().collect(),
            message: Message::SosCancelled {
                sos: self.id,
                at: now,
            },
        }]
    }
}
