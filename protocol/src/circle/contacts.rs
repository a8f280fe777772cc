//! The circle: a device's contacts, the handshake that makes a relation
//! mutual, per-contact counters, and who may send what.
//!
//! The handshake (`docs/circle.md` §5):
//!
//! ```text
//! Alice                                          Bob
//! create_invite ── code (QR, typed, link) ──▶    accept_invite
//!                                                 Alice: AwaitingTheirApproval
//!            ◀── Accept{token, name, addrs} ──    (sealed to Alice)
//! open: Bob AwaitingMyApproval
//! (compare safety numbers) approve
//! Bob: Mutual ── Confirm ──▶                      open: Alice Mutual
//! ```
//!
//! Sharing (journeys, SOS, acks) only flows once the relation is
//! [`ContactState::Mutual`], in both directions: [`Circle::seal`] refuses to
//! seal it earlier and [`Circle::open`] refuses to accept it. If both people
//! accept each other's invites, each accept completes the relation. Either
//! side may remove the other at any time, silently ([`Circle::remove`]) or by
//! telling them ([`Circle::leave`]).
//!
//! **Relations.** Each side's record of a contact is created by an accept and
//! named by that accept's invite token, its *relation*. Every envelope
//! carries a token of its relation, and [`Circle::open`] refuses any other
//! ([`OpenError::StaleRelation`]): after a contact is removed and added again
//! (a new invite, so a new token), envelopes of the earlier relation no
//! longer open, although counters restarted at 1. Usually both records are
//! made by the same accept and the relation has one token. When both people
//! accepted each other's invites, each record was made by a different
//! accept: each side then also keeps the token the other's record was made
//! with (`their_relation`, learnt from their accept when it arrives), seals
//! with it, and accepts either token.
//!
//! The circle holds no secret: it is serializable (serde) for the node to
//! persist. **The node must persist it after every [`Circle::seal`] and
//! before sending the envelope**: a counter used twice makes the second
//! message a replay in the recipient's eyes.

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;

use crate::circle::envelope::{self, OpenError, ReplayWindow, SealError};
use crate::circle::identity::{ContactId, Identity, IdentityError, PublicIdentity};
use crate::circle::invite::{check_address, check_name, Invite, InviteToken, MAX_ADDRESSES};
use crate::circle::mailbox::{epoch_of, mailbox_address, MailboxKey, PairSecret};
use crate::circle::message::{Message, KIND_ACCEPT, KIND_CONFIRM};
use crate::circle::switch::Alert;
use crate::circle::wire::DecodeError;

/// Most contacts in a circle.
pub const MAX_CONTACTS: usize = 32;
/// Most invites waiting for an accept.
pub const MAX_PENDING_INVITES: usize = 16;
/// Longest an invite stays valid: a day. A code is a secret only until
/// someone else sees it (a photographed QR code, a forwarded message), so it
/// should not outlive the meeting it was made for.
pub const MAX_INVITE_TTL_SECS: u64 = 86_400;

/// Where a relation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// I accepted their invite and sent an accept; waiting for their confirm.
    AwaitingTheirApproval,
    /// They accepted my invite; waiting for me to approve (after comparing
    /// safety numbers).
    AwaitingMyApproval,
    /// Both accepted: sharing flows both ways.
    Mutual,
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    /// Their keys.
    pub identity: PublicIdentity,
    /// Their display name, as they chose it.
    pub name: String,
    /// How to reach them (opaque multiaddr strings).
    pub addresses: Vec<String>,
    /// Where the relation stands.
    pub state: ContactState,
    /// When the relation was created (Unix seconds).
    pub since: u64,
    /// The token of the accept that made my record of them.
    #[serde(default)]
    relation: InviteToken,
    /// The token of the accept that made their record of me (the same as
    /// `relation` unless we accepted each other's invites): I seal with it.
    #[serde(default)]
    their_relation: InviteToken,
    sent: u64,
    received: ReplayWindow,
    /// The token of their invite I accepted, while awaiting their confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted_token: Option<InviteToken>,
}

impl Contact {
    /// The last counter used to seal to this contact (0 if none).
    pub fn last_sent_counter(&self) -> u64 {
        self.sent
    }
    /// The counters received from this contact.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.received
    }
    /// The token of the invite whose accept created my record of them.
    pub fn relation(&self) -> InviteToken {
        self.relation
    }
    /// The token I seal envelopes to this contact with: that of the accept
    /// that created their record of me, once known. Envelopes from them may
    /// carry either token.
    pub fn their_relation(&self) -> InviteToken {
        self.their_relation
    }
}

/// An invite I created and that nobody accepted yet. Single use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingInvite {
    /// The invite's token.
    pub token: InviteToken,
    /// When it was created (Unix seconds).
    pub created_at: u64,
    /// When it stops being accepted (Unix seconds).
    pub expires_at: u64,
}

/// What an opened envelope did to the relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// Someone accepted my invite: show their name and the safety number,
    /// then [`Circle::approve`] or [`Circle::remove`].
    Requested,
    /// The relation just became mutual.
    BecameMutual,
    /// An accept repeated by a contact already approved (my confirm was
    /// probably lost): send [`Circle::approve`]'s envelope again.
    AcceptRepeated,
    /// The contact left my circle; they were removed.
    Left,
}

/// An envelope that [`Circle::open`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Who sent it.
    pub from: ContactId,
    /// Its counter.
    pub counter: u64,
    /// What it says.
    pub message: Message,
    /// What it changed in the relation, if anything.
    pub event: Option<ContactEvent>,
}

/// Why the circle refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CircleError {
    /// No such contact.
    #[error("unknown contact")]
    UnknownContact,
    /// The relation is not mutual yet.
    #[error("this contact has not accepted yet")]
    NotMutual,
    /// This message cannot be sent to this contact through this call (e.g.
    /// an accept through [`Circle::seal`]).
    #[error("message kind {0:#04x} cannot be sent this way")]
    NotAllowed(u8),
    /// [`MAX_CONTACTS`] reached.
    #[error("the circle is full ({MAX_CONTACTS} contacts)")]
    Full,
    /// [`MAX_PENDING_INVITES`] reached.
    #[error("too many open invites ({MAX_PENDING_INVITES}); revoke one first")]
    TooManyInvites,
    /// The invite has expired.
    #[error("this invite has expired; ask for a new one")]
    InviteExpired,
    /// The invite is my own.
    #[error("this is your own invite")]
    OwnInvite,
    /// Already a contact.
    #[error("already in your circle")]
    AlreadyContact,
    /// Invite lifetime of 0 or over [`MAX_INVITE_TTL_SECS`].
    #[error("an invite lasts between 1 second and {MAX_INVITE_TTL_SECS} seconds")]
    BadTtl,
    /// A name or address over the limits.
    #[error("invalid field: {0}")]
    Invalid(#[from] DecodeError),
    /// Sealing failed.
    #[error("cannot seal: {0}")]
    Seal(#[from] SealError),
    /// The identity passed is not the circle's owner.
    #[error("this identity does not own the circle")]
    WrongIdentity,
    /// The contact's keys are unusable.
    #[error("key agreement failed: {0}")]
    Key(#[from] IdentityError),
    /// 2⁶⁴ − 1 messages were sent to this contact.
    #[error("the message counter is exhausted")]
    CounterExhausted,
}

/// A device's circle. Serializable; holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Circle {
    me: PublicIdentity,
    contacts: BTreeMap<ContactId, Contact>,
    invites: Vec<PendingInvite>,
}

impl Circle {
    /// An empty circle owned by `me`.
    pub fn new(me: PublicIdentity) -> Circle {
        Circle {
            me,
            contacts: BTreeMap::new(),
            invites: Vec::new(),
        }
    }

    /// The owner.
    pub fn owner(&self) -> &PublicIdentity {
        &self.me
    }

    /// A contact.
    pub fn contact(&self, id: &ContactId) -> Option<&Contact> {
        self.contacts.get(id)
    }

    /// All contacts, in id order.
    pub fn contacts(&self) -> impl Iterator<Item = (&ContactId, &Contact)> {
        self.contacts.iter()
    }

    /// The contacts sharing flows to.
    pub fn mutual_contacts(&self) -> impl Iterator<Item = (&ContactId, &Contact)> {
        self.contacts
            .iter()
            .filter(|(_, c)| c.state == ContactState::Mutual)
    }

    /// Invites waiting for an accept.
    pub fn pending_invites(&self) -> &[PendingInvite] {
        &self.invites
    }

    fn check_owner(&self, me: &Identity) -> Result<(), CircleError> {
        if me.public() == &self.me {
            Ok(())
        } else {
            Err(CircleError::WrongIdentity)
        }
    }

    /// Forget invites that expired.
    pub fn prune_invites(&mut self, now: u64) {
        self.invites.retain(|i| now < i.expires_at);
    }

    /// Create a single-use invite valid for `ttl_secs` (rounded up to a
    /// whole minute, at most [`MAX_INVITE_TTL_SECS`]).
    pub fn create_invite(
        &mut self,
        name: &str,
        addresses: Vec<String>,
        now: u64,
        ttl_secs: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Invite, CircleError> {
        if ttl_secs == 0 || ttl_secs > MAX_INVITE_TTL_SECS {
            return Err(CircleError::BadTtl);
        }
        self.prune_invites(now);
        if self.invites.len() >= MAX_PENDING_INVITES {
            return Err(CircleError::TooManyInvites);
        }
        let invite = Invite {
            identity: self.me.clone(),
            token: InviteToken::random(rng),
            expires_at: (now + ttl_secs).div_ceil(60) * 60,
            name: name.to_owned(),
            addresses,
        };
        invite.validate()?;
        self.invites.push(PendingInvite {
            token: invite.token,
            created_at: now,
            expires_at: invite.expires_at,
        });
        Ok(invite)
    }

    /// Revoke a pending invite; returns whether it existed.
    pub fn revoke_invite(&mut self, token: &InviteToken) -> bool {
        let before = self.invites.len();
        self.invites.retain(|i| &i.token != token);
        before != self.invites.len()
    }

    /// Accept someone's invite: add them as
    /// [`ContactState::AwaitingTheirApproval`] and return the accept
    /// envelope to deliver to them (directly, or to
    /// [`Invite::mailbox_address`]). `my_name` and `my_addresses` tell them
    /// who I am and how to reach me.
    pub fn accept_invite(
        &mut self,
        me: &Identity,
        invite: &Invite,
        my_name: &str,
        my_addresses: Vec<String>,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(ContactId, Vec<u8>), CircleError> {
        self.check_owner(me)?;
        if invite.identity == self.me {
            return Err(CircleError::OwnInvite);
        }
        if invite.is_expired(now) {
            return Err(CircleError::InviteExpired);
        }
        invite.validate()?;
        check_name(my_name)?;
        if my_addresses.len() > MAX_ADDRESSES {
            return Err(DecodeError::FieldTooLong {
                field: "addresses",
                len: my_addresses.len(),
                max: MAX_ADDRESSES,
            }
            .into());
        }
        my_addresses.iter().try_for_each(|a| check_address(a))?;
        let id = invite.identity.id();
        if self.contacts.contains_key(&id) {
            return Err(CircleError::AlreadyContact);
        }
        if self.contacts.len() >= MAX_CONTACTS {
            return Err(CircleError::Full);
        }
        // Fail before touching state if the key is unusable.
        PairSecret::derive(me, &invite.identity)?;
        let message = Message::Accept {
            token: invite.token,
            name: my_name.to_owned(),
            addresses: my_addresses,
        };
        let bytes = envelope::seal(me, &invite.identity, &invite.token, 1, &message, rng)?;
        self.contacts.insert(
            id,
            Contact {
                identity: invite.identity.clone(),
                name: invite.name.clone(),
                addresses: invite.addresses.clone(),
                state: ContactState::AwaitingTheirApproval,
                since: now,
                relation: invite.token,
                their_relation: invite.token,
                sent: 1,
                received: ReplayWindow::new(),
                accepted_token: Some(invite.token),
            },
        );
        Ok((id, bytes))
    }

    /// Seal the accept again (with a fresh counter) for a contact whose
    /// invite I accepted and who has not confirmed yet: for when the first
    /// accept or their confirm was lost.
    pub fn resend_accept(
        &mut self,
        me: &Identity,
        id: &ContactId,
        my_name: &str,
        my_addresses: Vec<String>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CircleError> {
        self.check_owner(me)?;
        let contact = self
            .contacts
            .get_mut(id)
            .ok_or(CircleError::UnknownContact)?;
        let token = match (contact.state, contact.accepted_token) {
            (ContactState::AwaitingTheirApproval, Some(t)) => t,
            _ => return Err(CircleError::NotAllowed(KIND_ACCEPT)),
        };
        let message = Message::Accept {
            token,
            name: my_name.to_owned(),
            addresses: my_addresses,
        };
        message.validate()?;
        // An accept is sealed in the relation it creates: its own token.
        seal_counted(me, contact, &token, &message, rng)
    }

    /// Approve a contact who accepted my invite: the relation becomes
    /// mutual. Returns the confirm envelope to send them. Calling it again
    /// for a mutual contact seals a fresh confirm (after
    /// [`ContactEvent::AcceptRepeated`]).
    pub fn approve(
        &mut self,
        me: &Identity,
        id: &ContactId,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CircleError> {
        self.check_owner(me)?;
        let contact = self
            .contacts
            .get_mut(id)
            .ok_or(CircleError::UnknownContact)?;
        match contact.state {
            ContactState::AwaitingTheirApproval => Err(CircleError::NotAllowed(KIND_CONFIRM)),
            ContactState::AwaitingMyApproval | ContactState::Mutual => {
                contact.state = ContactState::Mutual;
                let relation = contact.their_relation;
                seal_counted(me, contact, &relation, &Message::Confirm, rng)
            }
        }
    }

    /// Seal a sharing message (journey, SOS, ack) to a mutual contact, or a
    /// [`Message::Leave`] to any contact. The handshake has its own calls.
    /// Persist the circle before sending the envelope.
    pub fn seal(
        &mut self,
        me: &Identity,
        to: &ContactId,
        message: &Message,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CircleError> {
        self.check_owner(me)?;
        let contact = self
            .contacts
            .get_mut(to)
            .ok_or(CircleError::UnknownContact)?;
        match message {
            Message::Accept { .. } | Message::Confirm => {
                return Err(CircleError::NotAllowed(message.kind()))
            }
            Message::Leave => {}
            _ if contact.state != ContactState::Mutual => return Err(CircleError::NotMutual),
            _ => {}
        }
        let relation = contact.their_relation;
        seal_counted(me, contact, &relation, message, rng)
    }

    /// Seal a sharing message to every mutual contact.
    pub fn seal_to_circle(
        &mut self,
        me: &Identity,
        message: &Message,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<(ContactId, Vec<u8>)>, CircleError> {
        let ids: Vec<ContactId> = self.mutual_contacts().map(|(id, _)| *id).collect();
        ids.into_iter()
            .map(|id| Ok((id, self.seal(me, &id, message, rng)?)))
            .collect()
    }

    /// Seal a dead-man's-switch alert (the message of
    /// [`crate::circle::Effect::ArmDeadManSwitch`]) to every mutual contact,
    /// each addressed to their mailbox for the epoch of `now` (the deposit
    /// time; they poll the previous epoch too, and a switch fires within 9
    /// hours). The result goes to [`crate::circle::SwitchOwner::deposit`].
    pub fn seal_alerts(
        &mut self,
        me: &Identity,
        alert: &Message,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<Alert>, CircleError> {
        let epoch = epoch_of(now);
        self.seal_to_circle(me, alert, rng)?
            .into_iter()
            .map(|(id, envelope)| {
                Ok(Alert {
                    mailbox: self.outbound_mailbox(me, &id, epoch)?,
                    envelope,
                })
            })
            .collect()
    }

    /// Remove a contact without telling them. Returns what was known of
    /// them.
    pub fn remove(&mut self, id: &ContactId) -> Option<Contact> {
        self.contacts.remove(id)
    }

    /// Remove a contact and return a [`Message::Leave`] envelope telling
    /// them. (Whether to tell is the person's choice: telling an abuser may
    /// not be safe.)
    pub fn leave(
        &mut self,
        me: &Identity,
        id: &ContactId,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CircleError> {
        let bytes = self.seal(me, id, &Message::Leave, rng)?;
        self.contacts.remove(id);
        Ok(bytes)
    }

    /// Open an envelope addressed to me: decrypt and verify it
    /// ([`envelope::open`]), refuse replays, apply the handshake, and refuse
    /// messages the relation does not allow yet. Nothing changes unless it
    /// returns `Ok` (apart from forgetting invites that expired).
    pub fn open(&mut self, me: &Identity, bytes: &[u8], now: u64) -> Result<Received, OpenError> {
        if me.public() != &self.me {
            return Err(OpenError::Decrypt);
        }
        let opened = envelope::open(me, bytes)?;
        if opened.sender == self.me {
            return Err(OpenError::FromSelf);
        }
        let from = opened.sender.id();
        let kind = opened.message.kind();
        let counter = opened.counter;
        self.prune_invites(now);

        let Some(contact) = self.contacts.get_mut(&from) else {
            // Only the accept of a pending invite may come from a stranger.
            let Message::Accept {
                token,
                name,
                addresses,
            } = &opened.message
            else {
                return Err(OpenError::UnknownSender);
            };
            if opened.relation != *token {
                return Err(OpenError::StaleRelation);
            }
            if self.contacts.len() >= MAX_CONTACTS {
                return Err(OpenError::CircleFull);
            }
            let mut received = ReplayWindow::new();
            received.accept(counter)?;
            self.take_invite(token, now)?;
            self.contacts.insert(
                from,
                Contact {
                    identity: opened.sender.clone(),
                    name: name.clone(),
                    addresses: addresses.clone(),
                    state: ContactState::AwaitingMyApproval,
                    since: now,
                    relation: *token,
                    their_relation: *token,
                    sent: 0,
                    received,
                    accepted_token: None,
                },
            );
            return Ok(Received {
                from,
                counter,
                message: opened.message,
                event: Some(ContactEvent::Requested),
            });
        };

        // The relation first: an earlier relation's counters mean nothing.
        let relation_ok = match &opened.message {
            // An accept is sealed in the relation it creates. From a contact
            // it repeats theirs, or (both accepted each other's invites) it
            // answers my pending invite, checked below.
            Message::Accept { token, .. } => {
                opened.relation == *token
                    && (*token == contact.relation
                        || *token == contact.their_relation
                        || contact.state == ContactState::AwaitingTheirApproval)
            }
            _ => opened.relation == contact.relation || opened.relation == contact.their_relation,
        };
        if !relation_ok {
            return Err(OpenError::StaleRelation);
        }
        contact.received.check(counter)?;
        let event = match (&opened.message, contact.state) {
            (Message::Accept { token, .. }, ContactState::AwaitingTheirApproval) => {
                // We accepted each other's invites: consent on both sides.
                let token = *token;
                if !self.invites.iter().any(|i| i.token == token) {
                    return Err(OpenError::UnknownInvite);
                }
                self.invites.retain(|i| i.token != token);
                Some(ContactEvent::BecameMutual)
            }
            (Message::Accept { .. }, ContactState::AwaitingMyApproval) => None,
            (Message::Accept { .. }, ContactState::Mutual) => Some(ContactEvent::AcceptRepeated),
            (Message::Confirm, ContactState::AwaitingTheirApproval) => {
                Some(ContactEvent::BecameMutual)
            }
            (Message::Confirm, ContactState::Mutual) => None,
            (Message::Confirm, ContactState::AwaitingMyApproval) => {
                return Err(OpenError::NotAllowed { kind })
            }
            (Message::Leave, _) => Some(ContactEvent::Left),
            (_, ContactState::Mutual) => None,
            (_, _) => return Err(OpenError::NotAllowed { kind }),
        };
        // Re-borrow: the invite bookkeeping above needed `self`.
        let contact = self
            .contacts
            .get_mut(&from)
            .ok_or(OpenError::UnknownSender)?;
        contact.received.accept(counter)?;
        match event {
            Some(ContactEvent::BecameMutual) => {
                contact.state = ContactState::Mutual;
                contact.accepted_token = None;
                if let Message::Accept { token, .. } = &opened.message {
                    // Both accepted: their record of me was made by this
                    // accept, mine by the one I sent.
                    contact.their_relation = *token;
                }
            }
            Some(ContactEvent::Left) => {
                self.contacts.remove(&from);
            }
            _ => {}
        }
        if kind == KIND_ACCEPT {
            if let (
                Some(c),
                Message::Accept {
                    name, addresses, ..
                },
            ) = (self.contacts.get_mut(&from), &opened.message)
            {
                c.name.clone_from(name);
                c.addresses.clone_from(addresses);
            }
        }
        Ok(Received {
            from,
            counter,
            message: opened.message,
            event,
        })
    }

    fn take_invite(&mut self, token: &InviteToken, now: u64) -> Result<(), OpenError> {
        let i = self
            .invites
            .iter()
            .position(|i| &i.token == token)
            .ok_or(OpenError::UnknownInvite)?;
        if now >= self.invites[i].expires_at {
            return Err(OpenError::InviteExpired);
        }
        self.invites.remove(i);
        Ok(())
    }

    /// The mailbox I leave envelopes in for contact `id` during `epoch`.
    pub fn outbound_mailbox(
        &self,
        me: &Identity,
        id: &ContactId,
        epoch: u64,
    ) -> Result<[u8; 32], CircleError> {
        let c = self.contacts.get(id).ok_or(CircleError::UnknownContact)?;
        let shared = PairSecret::derive(me, &c.identity)?;
        Ok(mailbox_address(&shared, epoch, &c.identity))
    }

    /// The mailbox where contact `id` leaves envelopes for me during
    /// `epoch`.
    pub fn inbound_mailbox(
        &self,
        me: &Identity,
        id: &ContactId,
        epoch: u64,
    ) -> Result<[u8; 32], CircleError> {
        let c = self.contacts.get(id).ok_or(CircleError::UnknownContact)?;
        let shared = PairSecret::derive(me, &c.identity)?;
        Ok(mailbox_address(&shared, epoch, me.public()))
    }

    /// Every mailbox to poll at `now`: each contact's inbound mailbox for the
    /// current and the previous epoch, and the mailbox of each pending
    /// invite.
    pub fn mailboxes_to_poll(&self, me: &Identity, now: u64) -> Vec<[u8; 32]> {
        self.mailbox_keys_to_poll(me, now)
            .iter()
            .map(|(_, k)| k.address())
            .collect()
    }

    /// The keys of the mailboxes of [`Circle::mailboxes_to_poll`], in the
    /// same order (what proves to a host that this person may fetch and
    /// acknowledge them), each with the epoch (UTC day) it belongs to: a
    /// contact's mailbox, its epoch; an invite's, the day the invite was
    /// made. A client asks for each day's mailboxes apart, never two days'
    /// in one request or over one connection identity, so that a host
    /// cannot join a pair's mailboxes of one day to the next.
    pub fn mailbox_keys_to_poll(&self, me: &Identity, now: u64) -> Vec<(u64, MailboxKey)> {
        let epoch = epoch_of(now);
        let mut out = Vec::new();
        for c in self.contacts.values() {
            if let Ok(shared) = PairSecret::derive(me, &c.identity) {
                out.push((epoch, MailboxKey::derive(&shared, epoch, me.public())));
                if epoch > 0 {
                    out.push((
                        epoch - 1,
                        MailboxKey::derive(&shared, epoch - 1, me.public()),
                    ));
                }
            }
        }
        out.extend(
            self.invites
                .iter()
                .filter(|i| now < i.expires_at)
                .map(|i| (epoch_of(i.created_at), MailboxKey::for_invite(&i.token.0))),
        );
        out
    }
}

fn seal_counted(
    me: &Identity,
    contact: &mut Contact,
    relation: &InviteToken,
    message: &Message,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CircleError> {
    let counter = contact
        .sent
        .checked_add(1)
        .ok_or(CircleError::CounterExhausted)?;
    let bytes = envelope::seal(me, &contact.identity, relation, counter, message, rng)?;
    contact.sent = counter;
    Ok(bytes)
}
