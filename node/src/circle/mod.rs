//! The trusted circle in the node: contacts, journeys, SOS, their delivery
//! and the mailbox service, around the pure core of
//! [`ronde_protocol::circle`].
//!
//! The protocol crate decides everything that can be decided without I/O
//! (invites, the handshake, sealing and opening envelopes, replay windows,
//! mailbox addresses, the journey and SOS state machines, the dead-man's
//! switch). This module adds what needs a disk, a clock and a network:
//!
//! * [`keyfile`]: the long-term identity in `<data_dir>/circle-identity`
//!   (mode 0600), created once, never deleted.
//! * [`wire`]: the request-response protocols `/ronde/circle/1` (direct
//!   delivery) and `/ronde/mailbox/1` (store-and-forward, dead-man's
//!   switch) and their bounded codecs.
//! * [`client`]: the client side, this person's own circle, driven by the
//!   event loop: it seals, queues and delivers (directly when the
//!   contact's node is reachable, else to the mailbox hosts), polls
//!   mailboxes, opens what arrives, runs the journey and SOS machines on
//!   the node's clock, and arms, pushes back and withdraws the journey's
//!   switch. Its [`client::store`] keeps the circle, the outbox of sealed
//!   envelopes and the inbox in sled, changed in single transactions (a
//!   counter is persisted with the envelope it sealed, before anything is
//!   sent).
//! * [`host`]: the host side of `/ronde/mailbox/1`, on a relay or a node
//!   with `--mailbox-host`: bounded mailboxes of ciphertext with a
//!   retention period, and the hosted switches, fired when due, in its own
//!   [`host::store`]. It never imports the client side; the event loop
//!   gives it the requests of other nodes and the client everything else.
//! * [`receipt`]: the receipt a host signs with its peer key for a switch
//!   deposit, checked by the client against the host it chose.
//! * [`views`]: what the API shows.
//! * [`shared`]: the contacts' journeys, folded from the inbox for the map.
//!
//! The libp2p peer id stays fresh at every start: contacts find each other
//! through the addresses of the invite and of their accept, through the
//! peer an envelope arrived from, and through mailboxes, never through a
//! stable network identity.

pub mod client;
pub mod host;
pub mod keyfile;
pub mod receipt;
pub mod shared;
pub mod views;
pub mod wire;

pub use crate::config::{CircleConfig, MailboxLimits};
pub use crate::error::CircleRefusal;
pub use host::{relay_id, MailboxError, MailboxHost};
pub use shared::{SharedJourney, SharedJourneys, SharedState};
pub use views::{
    AckView, CircleStatus, CodesView, ContactList, ContactView, FixView, Inbox, InboxItem,
    InboxNotice, InviteView, JourneyView, PlaceView, PushView, SosRecipient, SosView,
    SwitchHostState, SwitchHostView, SwitchStatus, WakeView,
};

/// Default lifetime of an invite: 15 minutes, long enough to hand it over in
/// person or by message, short enough that a code seen later by someone else
/// is useless (a day at most, [`ronde_protocol::circle::MAX_INVITE_TTL_SECS`]).
pub const DEFAULT_INVITE_TTL_SECS: u64 = 15 * 60;
