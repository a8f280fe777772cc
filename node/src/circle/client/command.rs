//! The circle's commands ([`CircleCommand`]): what a [`crate::Node`]
//! handle asks the client side, each with its one-shot reply.

use ronde_protocol::circle::short_invite::{RendezvousKeys, ShortCode};
use ronde_protocol::circle::{Place, StatesOnly};
use tokio::sync::oneshot;

use crate::circle::views::{
    CircleStatus, CodesView, ContactList, ContactView, Inbox, InviteView, JourneyView, SosView,
};
use crate::error::NodeError;

/// A command's reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// The circle commands of [`crate::Node`].
pub(crate) enum CircleCommand {
    Status {
        reply: Reply<CircleStatus>,
    },
    /// Register (or with `None` unregister) a UnifiedPush endpoint with
    /// the mailbox hosts.
    SetPush {
        endpoint: Option<String>,
        reply: Reply<crate::circle::views::PushView>,
    },
    /// A push wake-up arrived: fetch the mail now; answered once the
    /// fetches are done.
    Wake {
        reply: Reply<crate::circle::views::WakeView>,
    },
    Contacts {
        reply: Reply<ContactList>,
    },
    Invite {
        name: Option<String>,
        ttl_secs: u64,
        /// A short code and its keys (derived off the event loop): the
        /// invite is also left at the mailbox hosts under it.
        short: Option<(ShortCode, RendezvousKeys)>,
        reply: Reply<InviteView>,
    },
    /// Accept the invite left under a short code: fetched from this
    /// node's mailbox hosts, then accepted as [`CircleCommand::Accept`].
    AcceptShort {
        keys: RendezvousKeys,
        name: Option<String>,
        reply: Reply<ContactView>,
    },
    Accept {
        code: String,
        name: Option<String>,
        reply: Reply<ContactView>,
    },
    Approve {
        contact: String,
        /// The safety number the person compared, when the caller is an
        /// app (the local API): it must be this contact's.
        safety_number: Option<String>,
        reply: Reply<ContactView>,
    },
    Remove {
        contact: String,
        notify: bool,
        reply: Reply<ContactView>,
    },
    StartJourney {
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        /// Parents' mode.
        states_only: Option<StatesOnly>,
        /// The destination's name, kept on this device.
        destination_name: Option<String>,
        reply: Reply<JourneyView>,
    },
    /// Move the expected arrival (the switch follows).
    ExtendJourney {
        expected_arrival: u64,
        reply: Reply<JourneyView>,
    },
    Journey {
        reply: Reply<JourneyView>,
    },
    /// `code`: the person's code or duress code, needed once codes are set.
    Arrived {
        code: Option<String>,
        reply: Reply<JourneyView>,
    },
    CancelJourney {
        code: Option<String>,
        reply: Reply<JourneyView>,
    },
    Sos {
        note: String,
        reply: Reply<SosView>,
    },
    SosStatus {
        reply: Reply<SosView>,
    },
    CancelSos {
        code: Option<String>,
        reply: Reply<SosView>,
    },
    /// Set (or change, with the current code) the code and duress code.
    SetCodes {
        code: String,
        duress_code: String,
        current: Option<String>,
        reply: Reply<CodesView>,
    },
    /// Remove the codes (with the current code).
    ClearCodes {
        current: String,
        reply: Reply<CodesView>,
    },
    Inbox {
        since: Option<u64>,
        reply: Reply<Inbox>,
    },
    AckInbox {
        ids: Vec<u64>,
        reply: Reply<Vec<u64>>,
    },
}
