//! The circle's commands ([`CircleCommand`]): what a [`crate::Node`]
//! handle asks the client side, each with its one-shot reply.

use ronde_protocol::circle::Place;
use tokio::sync::oneshot;

use crate::circle::views::{
    CircleStatus, ContactList, ContactView, Inbox, InviteView, JourneyView, SosView,
};
use crate::error::NodeError;

/// A command's reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// The circle commands of [`crate::Node`].
pub(crate) enum CircleCommand {
    Status {
        reply: Reply<CircleStatus>,
    },
    Contacts {
        reply: Reply<ContactList>,
    },
    Invite {
        name: Option<String>,
        ttl_secs: u64,
        reply: Reply<InviteView>,
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
        reply: Reply<JourneyView>,
    },
    Journey {
        reply: Reply<JourneyView>,
    },
    Arrived {
        reply: Reply<JourneyView>,
    },
    CancelJourney {
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
        reply: Reply<SosView>,
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
