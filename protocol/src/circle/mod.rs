//! The trusted circle: end-to-end encrypted journeys and SOS between a
//! person's devices and the few people they trust.
//!
//! Everything here is pure, like the rest of the crate: no I/O, no clock
//! (`now` is always passed in, Unix seconds) and no OS randomness (a
//! `&mut impl CryptoRngCore` is always passed in). The node wires these types
//! to its transport and storage. The byte-exact specification is
//! `docs/circle.md`.
//!
//! The pieces, bottom up:
//!
//! * `wire`: the [`DecodeError`] every decoder here shares, the byte cursor
//!   they read with and the rules for text fields.
//! * [`identity`]: a device's long-term [`Identity`] (an Ed25519 signing key
//!   and an X25519 encryption key, never used for reports), its public half
//!   [`PublicIdentity`], the local [`ContactId`] and the human-comparable
//!   [`SafetyNumber`].
//! * [`invite`]: the typeable / QR-able [`Invite`] code (`ronde1:…`).
//! * [`message`]: what contacts say to each other ([`Message`]) and its
//!   canonical encoding.
//! * [`envelope`]: [`seal`] / [`open`]: a message signed by the sender's
//!   identity, padded to a fixed size and encrypted to one recipient with
//!   HPKE; and the receiver's [`ReplayWindow`].
//! * [`contacts`]: the [`Circle`]: contacts, the invite → accept → confirm
//!   handshake, per-contact counters, and the rules on who may send what.
//! * [`mailbox`]: per-pair, per-day mailbox keys and addresses a relay
//!   cannot link.
//! * [`mailbox_auth`]: the proof of a mailbox key that fetching and
//!   acknowledging need, and the host's single-use challenges.
//! * `limits`: the time limits that journeys, the switch and the watch share
//!   ([`MAX_JOURNEY_SECS`], [`switch::SWITCH_SLACK_SECS`]).
//! * [`switch`]: the dead-man's switch deposited with a relay
//!   ([`SwitchOwner`] on the phone, [`DeadManSwitch`] on the relay).
//! * [`journey`] and [`sos`]: sans-IO state machines that turn user actions
//!   and the passage of time into [`Effect`]s for the node to carry out.
//! * [`codes`]: the person's code and duress code, hashed ([`Codes`]): which
//!   one ended a journey or cancelled an SOS.
//! * [`watch`]: the receiving side, turning contacts' messages into
//!   [`Notice`]s (one alert per overdue journey or SOS, nothing after an
//!   arrival).
//!
//! ```
//! use rand::SeedableRng;
//! use ronde_protocol::circle::{Circle, Identity, Invite, Message};
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let now = 1_790_000_000;
//! let alice = Identity::generate(&mut rng);
//! let bob = Identity::generate(&mut rng);
//! let mut alice_circle = Circle::new(alice.public().clone());
//! let mut bob_circle = Circle::new(bob.public().clone());
//!
//! // Alice shows Bob a code; Bob types or scans it and accepts.
//! let code = alice_circle
//!     .create_invite("Alice", vec![], now, 3600, &mut rng)
//!     .unwrap()
//!     .to_code();
//! let invite = Invite::from_code(&code).unwrap();
//! let (alice_id, accept) = bob_circle
//!     .accept_invite(&bob, &invite, "Bob", vec![], now, &mut rng)
//!     .unwrap();
//! // Alice receives Bob's accept, compares safety numbers, and approves.
//! let got = alice_circle.open(&alice, &accept, now).unwrap();
//! let confirm = alice_circle.approve(&alice, &got.from, &mut rng).unwrap();
//! bob_circle.open(&bob, &confirm, now).unwrap();
//!
//! // Now they share.
//! let sealed = alice_circle
//!     .seal(&alice, &got.from, &Message::Ack { of: [7; 16].into() }, &mut rng)
//!     .unwrap();
//! let received = bob_circle.open(&bob, &sealed, now).unwrap();
//! assert_eq!(received.from, alice_id);
//! ```

mod base32;
pub mod codes;
pub mod contacts;
pub mod envelope;
pub mod identity;
pub mod invite;
pub mod journey;
mod limits;
pub mod mailbox;
pub mod mailbox_auth;
pub mod message;
pub mod short_invite;
pub mod sos;
pub mod switch;
pub mod watch;
pub(crate) mod wire;

pub use codes::{CodeCheck, CodeError, Codes};
pub use contacts::{
    Circle, CircleError, Contact, ContactEvent, ContactState, PendingInvite, Received,
    MAX_CONTACTS, MAX_INVITE_TTL_SECS, MAX_PENDING_INVITES,
};
pub use envelope::{
    open, seal, OpenError, Opened, ReplayError, ReplayWindow, SealError, BUCKETS,
    LARGE_ENVELOPE_LEN, REPLAY_WINDOW, SMALL_ENVELOPE_LEN,
};
pub use identity::{
    safety_number, ContactId, Identity, IdentityError, PublicIdentity, SafetyNumber,
};
pub use invite::{Invite, InviteError, InviteToken, INVITE_PREFIX};
pub use journey::{
    Ending, Journey, JourneyConfig, JourneyError, JourneyState, ARRIVAL_RADIUS_M, MAX_JOURNEY_SECS,
};
pub use mailbox::{address_of_key, epoch_of, mailbox_address, MailboxKey, PairSecret, EPOCH_SECS};
pub use message::{Deviation, Fix, Message, Place, StatesOnly, MAX_NOTE_LEN};
pub use sos::{Sos, SosConfig, SosError, SosState};
pub use switch::{
    Alert, DeadManSwitch, Deposit, Heartbeat, Release, SwitchError, SwitchOwner, SwitchRequest,
    Withdraw,
};
pub use watch::{Notice, Watch};
pub use wire::DecodeError;

/// The id of a logical message: a journey, an SOS. Random, 16 bytes; every
/// message about the same journey or SOS (updates, re-sends, acks, cancels)
/// carries the same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh random id.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> MessageId {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        MessageId(id)
    }
}

impl From<[u8; 16]> for MessageId {
    fn from(b: [u8; 16]) -> Self {
        MessageId(b)
    }
}

crate::hex_id::hex_id!(MessageId, BadMessageId, "message id");

/// What a [`Journey`] or an [`Sos`] asks the node to do. The state machines
/// never do anything themselves (sans-IO, like `quinn-proto`): the node
/// carries out each effect, in order, then calls back with events and `poll`.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Seal `message` to every mutual contact ([`Circle::seal_to_circle`])
    /// and deliver it.
    SendToCircle(Message),
    /// Seal `message` to these contacts (those that are still mutual) and
    /// deliver it.
    SendTo {
        /// The recipients.
        to: Vec<ContactId>,
        /// What to send.
        message: Message,
    },
    /// Read the device's location and report it with
    /// [`Journey::position`].
    RequestPosition,
    /// Seal `alert` to every mutual contact ([`Circle::seal_alerts`]),
    /// create a [`SwitchOwner`] for this journey and deposit the sealed
    /// alerts with a relay ([`SwitchOwner::deposit`]), to be released at
    /// `release_at` unless withdrawn. With no mutual contact there is nothing
    /// to arm.
    ArmDeadManSwitch {
        /// When the relay releases the alert (Unix seconds).
        release_at: u64,
        /// The alert (an [`Message::Overdue`]).
        alert: Message,
    },
    /// Move the deposited switch's release time to `release_at`
    /// ([`SwitchOwner::heartbeat`]).
    Heartbeat {
        /// The new release time (Unix seconds).
        release_at: u64,
    },
    /// Withdraw the deposited switch ([`SwitchOwner::withdraw`]); it must
    /// never be released.
    WithdrawDeadManSwitch,
    /// Stop reading and sharing the device's location for this journey.
    StopSharing,
}
