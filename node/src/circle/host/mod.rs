//! The host side of the trusted circle: the service a city relay or a node
//! started with `--mailbox-host` ([`crate::NodeConfig::mailbox_host`])
//! offers to everybody's circle on `/ronde/mailbox/1`.
//!
//! It answers other nodes' requests (put an envelope in a mailbox, fetch
//! and acknowledge a mailbox's envelopes, deposit, push back or withdraw a
//! dead-man's switch) and, on the node's clock, fires the switches that
//! came due (their alerts go into the recipients' mailboxes) and deletes
//! the envelopes past their retention. It holds only ciphertext and
//! switches whose alerts it cannot read, and it knows nothing of this
//! node's own circle: the client side ([`crate::circle::client`]) may read
//! its own mailboxes here, the host side never imports the client side.
//!
//! * [`store`]: [`MailboxHost`], the hosted mailboxes and switches in sled,
//!   with their limits.
//! * `quota`: how many switches (or push registrations) one client (peer
//!   id, network) may hold.
//! * [`push`]: push registrations and the sender of wake-ups.
//! * `service`: the host side driven by the event loop: requests in,
//!   answers out, switches fired and mail purged on the circle's tick.

pub mod push;
mod quota;
pub(crate) mod service;
pub mod store;

pub use push::PushSettings;
pub(crate) use service::HostService;
pub use store::{relay_id, MailboxError, MailboxHost};
