//! The circle service: the node's side of the trusted circle, driven by the
//! event loop (commands, swarm events, timers). It owns the identity, the
//! circle state, the outbox and inbox, and (on a mailbox host) the hosted
//! mailboxes and switches.
//!
//! # Delivery
//!
//! Every sealed envelope enters the outbox in the same transaction as the
//! counter that sealed it. It then goes:
//!
//! 1. **directly**, over `/ronde/circle/1`, to the contact's node if a peer
//!    is known for it: the peer a message of theirs last came from, or the
//!    `/p2p/` addresses of their invite or accept;
//! 2. **to the mailbox hosts** (configured `mailbox_peers` and peers whose
//!    identify lists `/ronde/mailbox/1`, up to [`PUT_HOSTS`] of them) if
//!    direct delivery is impossible or refused, addressed to the pair's
//!    mailbox of the day (or the invite's mailbox for an accept).
//!
//! Alerts (SOS, overdue) take both paths: a peer or a host that drops them
//! cannot make them vanish. An envelope leaves the outbox once a node
//! accepted it or a host stored it; otherwise it is retried every
//! `retry_interval`, on every new connection to a host or to the contact,
//! and after a restart. It is dropped only when its contact is removed or
//! after [`OUTBOX_TTL_SECS`] (logged).
//!
//! # Receiving
//!
//! Envelopes arrive directly or from the mailboxes, which are fetched every
//! `mailbox_poll_interval` and on connecting to a host, then acknowledged
//! (deleted). Each one is opened by [`Circle::open`] (decryption, signature,
//! replay window, who may send what): anything refused changes nothing.
//! What it says goes through [`Watch`] (one alert per SOS or overdue
//! journey) into the inbox and the event stream.
//!
//! Logs name no contact, key, position or message content.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::Swarm;
use libp2p::{identify, Multiaddr, PeerId};
use rand::rngs::OsRng;
use ronde_protocol::circle::{
    epoch_of, safety_number, Circle, CircleError, ContactEvent, ContactId, ContactState, Effect,
    Identity, Invite, InviteError, Journey, JourneyError, JourneyState, Message, MessageId, Notice,
    OpenError, Place, Sos, SosError, SosState, SwitchOwner, Watch,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use crate::behaviour::Behaviour;
use crate::circle::mailbox::{relay_id, MailboxHost};
use crate::circle::store::{hex_bytes, keys, CircleStore, Commit, OutItem};
use crate::circle::views::{
    AckView, CircleStatus, ContactList, ContactView, Inbox, InboxItem, InboxNotice, InviteView,
    JourneyView, PlaceView, SosRecipient, SosView, SwitchStatus,
};
use crate::circle::wire::{
    Delivery, MailItem, MailboxRequest, MailboxResponse, Refusal, MAILBOX_PROTOCOL, MAX_ACK_ITEMS,
    MAX_FETCH_MAILBOXES,
};
use crate::circle::{CircleConfig, CircleRefusal};
use crate::clock::Clock;
use crate::error::{NodeError, StoreError};
use crate::events::NodeEvent;

/// A command's reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Most mailbox hosts an envelope is put with.
pub const PUT_HOSTS: usize = 2;
/// Most mailbox hosts a journey's switch is deposited with.
pub const SWITCH_HOSTS: usize = 2;
/// Queued envelopes older than this are dropped (a week).
pub const OUTBOX_TTL_SECS: u64 = 7 * 86_400;
/// Addresses put in an invite (they make the code longer).
pub const INVITE_ADDRESSES: usize = 2;
/// After a failed direct delivery, the contact's envelopes go straight to
/// the mailboxes for this long.
const DIRECT_BACKOFF_SECS: u64 = 60;
/// Acks remembered, so each SOS or overdue is acknowledged once.
const MAX_ACKS_REMEMBERED: usize = 512;
/// An SOS follows the node's location at most this often.
const SOS_PLACE_GAP_SECS: u64 = 60;
/// How often the hosted mailboxes are purged and the watch pruned.
const HOUSEKEEPING_SECS: u64 = 60;

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Profile {
    name: String,
}

/// One operation for a switch host, as signed bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SwitchOp {
    kind: OpKind,
    #[serde(with = "hex_bytes")]
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpKind {
    Deposit,
    Heartbeat,
    Withdraw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum HostState {
    Depositing,
    Armed,
    Withdrawn,
    Failed,
}

/// A host holding (or about to hold) this journey's switch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SwitchHost {
    /// This node's number for this deposit.
    #[serde(default)]
    id: u64,
    peer: String,
    addrs: Vec<String>,
    /// The journey key and counter ([`SwitchOwner::to_bytes`]): secret.
    #[serde(with = "hex_bytes")]
    owner: Vec<u8>,
    ops: VecDeque<SwitchOp>,
    state: HostState,
}

/// The dead-man's switch of a journey.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SwitchPlan {
    alerts: Vec<ronde_protocol::circle::Alert>,
    release_at: u64,
    withdrawn: bool,
    hosts: Vec<SwitchHost>,
}

/// This person's journey.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JourneyRecord {
    journey: Journey,
    contacts: usize,
    switch: Option<SwitchPlan>,
    acks: BTreeMap<ContactId, u64>,
    last_sent_position: Option<u64>,
    /// Deposits being withdrawn because they hold an alert for a contact
    /// removed during the journey (a new deposit replaced them).
    #[serde(default)]
    retired: Vec<SwitchHost>,
}

/// This person's SOS.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SosRecord {
    sos: Sos,
    place_updated_at: u64,
}

/// Where one queued envelope is in its delivery.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Direct,
    Mailbox { pending: usize },
    Waiting(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    phase: Phase,
    direct_ok: bool,
}

enum MailboxAsk {
    Put { seq: u64 },
    Fetch { host: PeerId },
    Ack,
    Switch { host: PeerId, id: u64 },
}

/// What an opened envelope leads to once the state is saved.
enum FollowUp {
    Reapprove(ContactId),
    Forget(ContactId),
}

pub(crate) struct CircleService {
    identity: Identity,
    store: CircleStore,
    host: Option<MailboxHost>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<NodeEvent>,
    config: CircleConfig,
    local_peer: PeerId,

    circle: Circle,
    watch: Watch,
    profile: Profile,
    journey: Option<JourneyRecord>,
    sos: Option<SosRecord>,
    acks_sent: VecDeque<(ContactId, MessageId)>,

    outbox: BTreeMap<u64, OutItem>,
    attempts: HashMap<u64, Attempt>,
    /// Mailbox hosts: configured ones (kept) and discovered ones.
    hosts: BTreeMap<PeerId, Vec<Multiaddr>>,
    /// The peer a contact's envelope last came from directly.
    learned: HashMap<ContactId, PeerId>,
    /// Until when a contact's envelopes skip direct delivery (Unix s).
    direct_backoff: HashMap<ContactId, u64>,
    direct_inflight: HashMap<OutboundRequestId, (u64, PeerId)>,
    mailbox_inflight: HashMap<OutboundRequestId, MailboxAsk>,
    fetching: HashSet<PeerId>,
    switch_inflight: HashSet<PeerId>,
    switch_retry_at: HashMap<PeerId, Instant>,
    safety_numbers: HashMap<ContactId, String>,
    last_housekeeping: u64,
}

fn storage(e: StoreError) -> NodeError {
    NodeError::Storage(e)
}

/// Split a multiaddr into its address and `/p2p/` peer id.
fn split_peer(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut base = addr.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, base)),
        _ => None,
    }
}

/// Peers and their addresses named by multiaddr strings, in order.
fn peers_of(addrs: &[String]) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut out: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
    for a in addrs {
        let Some((peer, base)) = a.parse::<Multiaddr>().ok().and_then(|m| split_peer(&m)) else {
            continue;
        };
        let base: Vec<Multiaddr> = if base.is_empty() { vec![] } else { vec![base] };
        match out.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, v)) => v.extend(base),
            None => out.push((peer, base)),
        }
    }
    out
}

fn circle_refusal(e: CircleError) -> NodeError {
    let r = match e {
        CircleError::UnknownContact => CircleRefusal::UnknownContact(String::new()),
        CircleError::NotMutual => CircleRefusal::NoContacts,
        CircleError::Full => CircleRefusal::CircleFull,
        CircleError::TooManyInvites => CircleRefusal::TooManyInvites,
        CircleError::InviteExpired => CircleRefusal::InviteExpired,
        CircleError::OwnInvite => CircleRefusal::OwnInvite,
        CircleError::AlreadyContact => CircleRefusal::AlreadyContact,
        CircleError::Invalid(d) => CircleRefusal::BadName(d.to_string()),
        CircleError::NotAllowed(_) => CircleRefusal::NotAwaitingApproval,
        CircleError::BadTtl => {
            return NodeError::InvalidInput(
                "an invite lasts between 1 second and 7 days".to_owned(),
            )
        }
        CircleError::Key(_) => CircleRefusal::BadInvite("the invite holds an unusable key".into()),
        other => return NodeError::InvalidInput(other.to_string()),
    };
    NodeError::Circle(r)
}

/// A short reason for logs (no content).
fn open_reason(e: &OpenError) -> &'static str {
    match e {
        OpenError::BadLength(_) => "bad length",
        OpenError::UnsupportedVersion(_) => "unsupported version",
        OpenError::Decrypt => "does not open (misaddressed or tampered)",
        OpenError::BadPadding => "bad padding",
        OpenError::BadSender(_) => "bad sender key",
        OpenError::BadSignature => "bad signature",
        OpenError::Malformed(_) => "malformed",
        OpenError::Replay(_) => "replay",
        OpenError::UnknownSender => "unknown sender",
        OpenError::FromSelf => "from this identity",
        OpenError::NotAllowed { .. } => "not allowed from this contact now",
        OpenError::UnknownInvite => "unknown invite",
        OpenError::InviteExpired => "expired invite",
        OpenError::CircleFull => "circle full",
    }
}

fn is_loopback(a: &Multiaddr) -> bool {
    a.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

impl CircleService {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        store: CircleStore,
        host: Option<MailboxHost>,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<NodeEvent>,
        config: CircleConfig,
        local_peer: PeerId,
        mailbox_peers: &[Multiaddr],
    ) -> Result<CircleService, StoreError> {
        let circle = match store.load::<Circle>(keys::CIRCLE)? {
            Some(c) if c.owner() == identity.public() => c,
            Some(_) => {
                return Err(StoreError::Corrupt(
                    "the stored circle belongs to another identity than circle-identity; \
                     both were left untouched"
                        .into(),
                ))
            }
            None => Circle::new(identity.public().clone()),
        };
        let watch = store.load(keys::WATCH)?.unwrap_or_default();
        let profile = store.load(keys::PROFILE)?.unwrap_or_default();
        let journey = store.load(keys::JOURNEY)?;
        let sos = store.load(keys::SOS)?;
        let acks_sent = store.load(keys::ACKS)?.unwrap_or_default();
        let outbox = store.outbox()?.into_iter().collect();
        let mut hosts = BTreeMap::new();
        for a in mailbox_peers {
            match split_peer(a) {
                Some((peer, base)) if peer != local_peer => {
                    hosts.entry(peer).or_insert_with(Vec::new).push(base);
                }
                Some(_) => {}
                None => tracing::warn!(%a, "a mailbox peer needs a /p2p/<peer id> suffix; ignored"),
            }
        }
        Ok(CircleService {
            identity,
            store,
            host,
            clock,
            events,
            config,
            local_peer,
            circle,
            watch,
            profile,
            journey,
            sos,
            acks_sent,
            outbox,
            attempts: HashMap::new(),
            hosts,
            learned: HashMap::new(),
            direct_backoff: HashMap::new(),
            direct_inflight: HashMap::new(),
            mailbox_inflight: HashMap::new(),
            fetching: HashSet::new(),
            switch_inflight: HashSet::new(),
            switch_retry_at: HashMap::new(),
            safety_numbers: HashMap::new(),
            last_housekeeping: 0,
        })
    }

    /// Right after start: fetch mail, deliver what was queued.
    pub(crate) fn start(&mut self, swarm: &mut Swarm<Behaviour>) {
        if !self.outbox.is_empty() {
            tracing::info!(
                queued = self.outbox.len(),
                "circle messages queued before the restart will be delivered"
            );
        }
        self.poll_mailboxes(swarm);
        self.retry_outbox(swarm, true);
        self.pump_switch(swarm);
    }

    // ------------------------------------------------------------ commands

    pub(crate) fn on_command(
        &mut self,
        cmd: CircleCommand,
        swarm: &mut Swarm<Behaviour>,
        location: Option<(f64, f64)>,
    ) {
        match cmd {
            CircleCommand::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            CircleCommand::Contacts { reply } => {
                let _ = reply.send(Ok(self.contact_list()));
            }
            CircleCommand::Invite {
                name,
                ttl_secs,
                reply,
            } => {
                let _ = reply.send(self.invite(swarm, name, ttl_secs));
            }
            CircleCommand::Accept { code, name, reply } => {
                let _ = reply.send(self.accept(swarm, &code, name));
            }
            CircleCommand::Approve { contact, reply } => {
                let _ = reply.send(self.approve(swarm, &contact));
            }
            CircleCommand::Remove {
                contact,
                notify,
                reply,
            } => {
                let _ = reply.send(self.remove(swarm, &contact, notify));
            }
            CircleCommand::StartJourney {
                destination,
                expected_arrival,
                grace_secs,
                reply,
            } => {
                let r =
                    self.start_journey(swarm, destination, expected_arrival, grace_secs, location);
                let _ = reply.send(r);
            }
            CircleCommand::Journey { reply } => {
                let r = self
                    .journey
                    .as_ref()
                    .map(|j| self.journey_view(j))
                    .ok_or(NodeError::Circle(CircleRefusal::NoJourney));
                let _ = reply.send(r);
            }
            CircleCommand::Arrived { reply } => {
                let _ = reply.send(self.end_journey(swarm, true, location));
            }
            CircleCommand::CancelJourney { reply } => {
                let _ = reply.send(self.end_journey(swarm, false, location));
            }
            CircleCommand::Sos { note, reply } => {
                let _ = reply.send(self.raise_sos(swarm, &note, location));
            }
            CircleCommand::SosStatus { reply } => {
                let r = self
                    .sos
                    .as_ref()
                    .map(|s| self.sos_view(s))
                    .ok_or(NodeError::Circle(CircleRefusal::NoSos));
                let _ = reply.send(r);
            }
            CircleCommand::CancelSos { reply } => {
                let _ = reply.send(self.cancel_sos(swarm));
            }
            CircleCommand::Inbox { since, reply } => {
                let r = self.store.inbox().map_err(storage).map(|items| Inbox {
                    items: items
                        .into_iter()
                        .filter(|i| since.is_none_or(|s| i.id > s))
                        .collect(),
                });
                let _ = reply.send(r);
            }
            CircleCommand::AckInbox { ids, reply } => {
                let _ = reply.send(self.ack_inbox(swarm, &ids));
            }
        }
    }

    fn status(&self) -> CircleStatus {
        CircleStatus {
            identity: self.identity.public().to_string(),
            contacts: self.circle.contacts().count(),
            queued: self.outbox.len(),
            mailbox_hosts: self.hosts.len(),
            hosting: self.host.is_some(),
            hosted_envelopes: self.host.as_ref().map_or(0, |h| h.len()),
            hosted_switches: self.host.as_ref().map_or(0, |h| h.switches()),
        }
    }

    fn safety_number_of(&mut self, id: &ContactId) -> String {
        if let Some(s) = self.safety_numbers.get(id) {
            return s.clone();
        }
        let Some(c) = self.circle.contact(id) else {
            return String::new();
        };
        let s = safety_number(self.identity.public(), &c.identity).to_string();
        self.safety_numbers.insert(*id, s.clone());
        s
    }

    fn contact_view(&mut self, id: &ContactId) -> Option<ContactView> {
        let safety_number = self.safety_number_of(id);
        let queued = self.outbox.values().filter(|i| &i.to == id).count();
        let c = self.circle.contact(id)?;
        Some(ContactView {
            id: *id,
            name: c.name.clone(),
            state: c.state,
            safety_number,
            since: c.since,
            queued,
        })
    }

    fn contact_list(&mut self) -> ContactList {
        let ids: Vec<ContactId> = self.circle.contacts().map(|(id, _)| *id).collect();
        let contacts = ids.iter().filter_map(|id| self.contact_view(id)).collect();
        let now = self.clock.now();
        ContactList {
            contacts,
            pending_invites: self
                .circle
                .pending_invites()
                .iter()
                .filter(|i| now < i.expires_at)
                .count(),
        }
    }

    /// Find a contact by id, id prefix (at least 4 hex digits) or name.
    fn resolve(&self, query: &str) -> Result<ContactId, NodeError> {
        let q = query.trim();
        let lower = q.to_lowercase();
        let is_hex = lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit());
        let matches: Vec<ContactId> = self
            .circle
            .contacts()
            .filter(|(id, c)| {
                (is_hex && id.to_hex().starts_with(&lower)) || c.name.to_lowercase() == lower
            })
            .map(|(id, _)| *id)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(NodeError::Circle(CircleRefusal::UnknownContact(
                q.to_owned(),
            ))),
            _ => Err(NodeError::Circle(CircleRefusal::AmbiguousContact(
                q.to_owned(),
            ))),
        }
    }

    /// How contacts can reach this node: public then relayed then local
    /// addresses, each with our peer id.
    fn my_addresses(&self, swarm: &Swarm<Behaviour>) -> Vec<String> {
        let mut ranked: Vec<(u8, Multiaddr)> = Vec::new();
        for a in swarm.external_addresses() {
            ranked.push((0, a.clone()));
        }
        for a in swarm.listeners() {
            let circuit = a.iter().any(|p| matches!(p, Protocol::P2pCircuit));
            let rank = if circuit {
                1
            } else if is_loopback(a) {
                3
            } else {
                2
            };
            ranked.push((rank, a.clone()));
        }
        ranked.sort_by_key(|(r, _)| *r);
        let mut out: Vec<String> = Vec::new();
        for (_, mut a) in ranked {
            if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.push(Protocol::P2p(self.local_peer));
            }
            let s = a.to_string();
            if s.len() <= 200 && !out.contains(&s) {
                out.push(s);
            }
            if out.len() == INVITE_ADDRESSES {
                break;
            }
        }
        out
    }

    fn remember_name(
        &mut self,
        name: Option<String>,
        commit: &mut Commit,
    ) -> Result<String, NodeError> {
        match name {
            Some(n) => {
                let n = n.trim().to_owned();
                if n != self.profile.name {
                    self.profile.name = n.clone();
                    commit.put(keys::PROFILE, &self.profile).map_err(storage)?;
                }
                Ok(n)
            }
            None => Ok(self.profile.name.clone()),
        }
    }

    fn invite(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        name: Option<String>,
        ttl_secs: u64,
    ) -> Result<InviteView, NodeError> {
        let now = self.clock.now();
        let addresses = self.my_addresses(swarm);
        let mut commit = Commit::new();
        let old_profile = self.profile.clone();
        let name = self.remember_name(name, &mut commit)?;
        let mut circle = self.circle.clone();
        let invite = match circle.create_invite(&name, addresses, now, ttl_secs, &mut OsRng) {
            Ok(i) => i,
            Err(e) => {
                self.profile = old_profile;
                return Err(circle_refusal(e));
            }
        };
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        if let Err(e) = self.store.apply(commit) {
            self.profile = old_profile;
            return Err(storage(e));
        }
        self.circle = circle;
        tracing::info!("invite created");
        Ok(InviteView {
            code: invite.to_code(),
            qr: invite.to_qr_string(),
            name,
            expires_at: invite.expires_at,
        })
    }

    fn accept(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        code: &str,
        name: Option<String>,
    ) -> Result<ContactView, NodeError> {
        let now = self.clock.now();
        let invite = Invite::from_code(code).map_err(|e| {
            NodeError::Circle(match e {
                InviteError::BadKey(_) => CircleRefusal::BadInvite(e.to_string()),
                e => CircleRefusal::BadInvite(e.to_string()),
            })
        })?;
        let addresses = self.my_addresses(swarm);
        let mut commit = Commit::new();
        let old_profile = self.profile.clone();
        let name = self.remember_name(name, &mut commit)?;
        let mut circle = self.circle.clone();
        let (id, envelope) = match circle.accept_invite(
            &self.identity,
            &invite,
            &name,
            addresses,
            now,
            &mut OsRng,
        ) {
            Ok(x) => x,
            Err(e) => {
                self.profile = old_profile;
                return Err(circle_refusal(e));
            }
        };
        let seq = self.store.next_id().map_err(storage)?;
        let item = OutItem {
            to: id,
            envelope,
            mailbox: Some(invite.mailbox_address()),
            peers: invite.addresses.clone(),
            critical: false,
            created_at: now,
        };
        commit.enqueue(seq, &item).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        if let Err(e) = self.store.apply(commit) {
            self.profile = old_profile;
            return Err(storage(e));
        }
        self.circle = circle;
        tracing::info!("invite accepted; waiting for the other side's approval");
        self.outbox.insert(seq, item);
        self.deliver(swarm, seq);
        self.contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(id.to_hex())))
    }

    fn approve(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        query: &str,
    ) -> Result<ContactView, NodeError> {
        let id = self.resolve(query)?;
        if self.circle.contact(&id).map(|c| c.state) == Some(ContactState::Mutual) {
            return self
                .contact_view(&id)
                .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())));
        }
        let mut circle = self.circle.clone();
        let envelope = circle
            .approve(&self.identity, &id, &mut OsRng)
            .map_err(circle_refusal)?;
        self.queue_envelopes(swarm, circle, Commit::new(), vec![(id, envelope)], false)?;
        tracing::info!("contact approved");
        self.contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())))
    }

    fn remove(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        query: &str,
        notify: bool,
    ) -> Result<ContactView, NodeError> {
        let id = self.resolve(query)?;
        let view = self
            .contact_view(&id)
            .ok_or_else(|| NodeError::Circle(CircleRefusal::UnknownContact(query.into())))?;
        let now = self.clock.now();
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        // Nothing else queued for them goes out.
        for (seq, item) in &self.outbox {
            if item.to == id {
                commit.dequeue(*seq);
            }
        }
        let mut leave = None;
        if notify {
            let mailbox = circle
                .outbound_mailbox(&self.identity, &id, epoch_of(now))
                .ok();
            let mut peers = circle
                .contact(&id)
                .map(|c| c.addresses.clone())
                .unwrap_or_default();
            if let Some(p) = self.learned.get(&id) {
                peers.insert(0, format!("/p2p/{p}"));
            }
            let envelope = circle
                .leave(&self.identity, &id, &mut OsRng)
                .map_err(circle_refusal)?;
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to: id,
                envelope,
                mailbox,
                peers,
                critical: false,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            leave = Some((seq, item));
        } else {
            circle.remove(&id);
        }
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.forget_contact(&id);
        if let Some((seq, item)) = leave {
            self.outbox.insert(seq, item);
            self.deliver(swarm, seq);
        }
        tracing::info!(told = notify, "contact removed");
        self.rearm_after_removal(swarm);
        Ok(view)
    }

    /// A journey's switch holds an alert for every contact of its start.
    /// After a contact was removed (or left), withdraw it and deposit a new
    /// one sealed to the contacts that remain: a removed contact must not be
    /// alerted about this journey.
    fn rearm_after_removal(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(mut rec) = self.journey.clone() else {
            return;
        };
        let now = self.clock.now();
        let Some(mut plan) = rec.switch.take() else {
            return;
        };
        if !rec.journey.is_sharing() || plan.withdrawn || now >= plan.release_at {
            return;
        }
        let mut circle = self.circle.clone();
        let result = (|| -> Result<(), NodeError> {
            for mut h in std::mem::take(&mut plan.hosts) {
                if !matches!(h.state, HostState::Depositing | HostState::Armed) {
                    continue;
                }
                let mut owner = SwitchOwner::from_bytes(&h.owner)
                    .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                let w = owner
                    .withdraw()
                    .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                h.owner = owner.to_bytes().to_vec();
                h.ops.push_back(SwitchOp {
                    kind: OpKind::Withdraw,
                    bytes: w.to_bytes(),
                });
                rec.retired.push(h);
            }
            let alert = Message::Overdue {
                journey: rec.journey.id(),
                expected_arrival: rec.journey.expected_arrival(),
                last_seen: None,
            };
            plan.alerts = circle
                .seal_alerts(&self.identity, &alert, now, &mut OsRng)
                .map_err(circle_refusal)?;
            if !plan.alerts.is_empty() {
                self.add_switch_hosts(&mut plan, now)?;
                rec.switch = Some(plan);
            }
            let mut commit = Commit::new();
            commit.put(keys::JOURNEY, &rec).map_err(storage)?;
            commit.put(keys::CIRCLE, &circle).map_err(storage)?;
            self.store.apply(commit).map_err(storage)
        })();
        match result {
            Ok(()) => {
                self.circle = circle;
                self.journey = Some(rec);
                tracing::info!("journey's dead-man's switch re-armed without the removed contact");
                self.pump_switch(swarm);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not re-arm the journey's dead-man's switch")
            }
        }
    }

    /// Drop what memory holds about a contact that was removed (or left).
    fn forget_contact(&mut self, id: &ContactId) {
        let gone: Vec<u64> = self
            .outbox
            .iter()
            .filter(|(_, i)| &i.to == id)
            .map(|(s, _)| *s)
            .collect();
        for s in gone {
            self.outbox.remove(&s);
            self.attempts.remove(&s);
        }
        self.learned.remove(id);
        self.direct_backoff.remove(id);
        self.safety_numbers.remove(id);
    }

    // ----------------------------------------------------------- sealing

    /// Seal `message` to `to` (those still mutual) into `commit`.
    fn seal_into(
        &self,
        circle: &mut Circle,
        to: &[ContactId],
        message: &Message,
        critical: bool,
        commit: &mut Commit,
        queued: &mut Vec<(u64, OutItem)>,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        for id in to {
            if circle.contact(id).map(|c| c.state) != Some(ContactState::Mutual) {
                continue;
            }
            let envelope = circle
                .seal(&self.identity, id, message, &mut OsRng)
                .map_err(circle_refusal)?;
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to: *id,
                envelope,
                mailbox: None,
                peers: Vec::new(),
                critical,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            queued.push((seq, item));
        }
        Ok(())
    }

    /// Persist `circle` and queue already-sealed envelopes, then send.
    fn queue_envelopes(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        circle: Circle,
        mut commit: Commit,
        envelopes: Vec<(ContactId, Vec<u8>)>,
        critical: bool,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        let mut queued = Vec::new();
        for (to, envelope) in envelopes {
            let peers = circle
                .contact(&to)
                .map(|c| c.addresses.clone())
                .unwrap_or_default();
            let seq = self.store.next_id().map_err(storage)?;
            let item = OutItem {
                to,
                envelope,
                mailbox: None,
                peers,
                critical,
                created_at: now,
            };
            commit.enqueue(seq, &item).map_err(storage)?;
            queued.push((seq, item));
        }
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.send_queued(swarm, queued);
        Ok(())
    }

    fn send_queued(&mut self, swarm: &mut Swarm<Behaviour>, queued: Vec<(u64, OutItem)>) {
        let seqs: Vec<u64> = queued.iter().map(|(s, _)| *s).collect();
        self.outbox.extend(queued);
        for s in seqs {
            self.deliver(swarm, s);
        }
    }

    // ---------------------------------------------------------- journeys

    fn mutual_ids(&self) -> Vec<ContactId> {
        self.circle.mutual_contacts().map(|(id, _)| *id).collect()
    }

    fn start_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        location: Option<(f64, f64)>,
    ) -> Result<JourneyView, NodeError> {
        if self
            .journey
            .as_ref()
            .is_some_and(|j| j.journey.is_sharing())
        {
            return Err(NodeError::Circle(CircleRefusal::JourneyActive));
        }
        let contacts = self.mutual_ids().len();
        if contacts == 0 {
            return Err(NodeError::Circle(CircleRefusal::NoContacts));
        }
        let now = self.clock.now();
        let (journey, effects) = Journey::start(
            destination,
            expected_arrival,
            grace_secs,
            self.config.journey,
            now,
            &mut OsRng,
        )
        .map_err(|e| match e {
            JourneyError::BadConfig(f) => {
                NodeError::InvalidInput(format!("the node's journey setting {f} is invalid"))
            }
            e => NodeError::Circle(CircleRefusal::BadEta(e.to_string())),
        })?;
        let mut rec = JourneyRecord {
            journey,
            contacts,
            switch: None,
            acks: BTreeMap::new(),
            last_sent_position: None,
            retired: Vec::new(),
        };
        self.run_journey(swarm, &mut rec, effects, location)?;
        tracing::info!("journey started");
        Ok(self.journey_view(&rec))
    }

    fn end_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        arrived: bool,
        location: Option<(f64, f64)>,
    ) -> Result<JourneyView, NodeError> {
        let Some(mut rec) = self.journey.clone().filter(|j| j.journey.is_sharing()) else {
            return Err(NodeError::Circle(CircleRefusal::NoJourney));
        };
        let now = self.clock.now();
        let effects = if arrived {
            rec.journey.arrived(now)
        } else {
            rec.journey.cancel(now)
        };
        self.run_journey(swarm, &mut rec, effects, location)?;
        tracing::info!(arrived, "journey ended");
        Ok(self.journey_view(&rec))
    }

    /// Carry out a journey's effects, persist everything in one commit,
    /// then send.
    fn run_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        rec: &mut JourneyRecord,
        effects: Vec<Effect>,
        location: Option<(f64, f64)>,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        let mut queued = Vec::new();
        let mut work: VecDeque<Effect> = effects.into();
        while let Some(effect) = work.pop_front() {
            match effect {
                Effect::SendToCircle(m) => {
                    let ids: Vec<ContactId> = circle.mutual_contacts().map(|(id, _)| *id).collect();
                    let critical = matches!(m, Message::Overdue { .. });
                    if matches!(m, Message::Position { .. }) {
                        rec.last_sent_position = Some(now);
                    }
                    self.seal_into(&mut circle, &ids, &m, critical, &mut commit, &mut queued)?;
                }
                Effect::SendTo { to, message } => {
                    self.seal_into(&mut circle, &to, &message, false, &mut commit, &mut queued)?;
                }
                Effect::RequestPosition => {
                    if let Some(p) = location.and_then(|(lat, lon)| Place::point(lat, lon, 0).ok())
                    {
                        work.extend(rec.journey.position(p, now));
                    }
                }
                Effect::ArmDeadManSwitch { release_at, alert } => {
                    let alerts = circle
                        .seal_alerts(&self.identity, &alert, now, &mut OsRng)
                        .map_err(circle_refusal)?;
                    if !alerts.is_empty() {
                        let mut plan = SwitchPlan {
                            alerts,
                            release_at,
                            withdrawn: false,
                            hosts: Vec::new(),
                        };
                        self.add_switch_hosts(&mut plan, now)?;
                        rec.switch = Some(plan);
                    }
                }
                Effect::Heartbeat { release_at } => {
                    if let Some(plan) = rec.switch.as_mut() {
                        plan.release_at = release_at;
                        for h in plan
                            .hosts
                            .iter_mut()
                            .filter(|h| matches!(h.state, HostState::Depositing | HostState::Armed))
                        {
                            let mut owner = SwitchOwner::from_bytes(&h.owner)
                                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                            let hb = owner
                                .heartbeat(release_at)
                                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                            h.owner = owner.to_bytes().to_vec();
                            h.ops.push_back(SwitchOp {
                                kind: OpKind::Heartbeat,
                                bytes: hb.to_bytes(),
                            });
                        }
                    }
                }
                Effect::WithdrawDeadManSwitch => {
                    if let Some(plan) = rec.switch.as_mut() {
                        plan.withdrawn = true;
                        for h in plan
                            .hosts
                            .iter_mut()
                            .filter(|h| matches!(h.state, HostState::Depositing | HostState::Armed))
                        {
                            let mut owner = SwitchOwner::from_bytes(&h.owner)
                                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                            let w = owner
                                .withdraw()
                                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
                            h.owner = owner.to_bytes().to_vec();
                            h.ops.push_back(SwitchOp {
                                kind: OpKind::Withdraw,
                                bytes: w.to_bytes(),
                            });
                        }
                    }
                }
                Effect::StopSharing => {}
            }
        }
        commit.put(keys::JOURNEY, &*rec).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.journey = Some(rec.clone());
        self.send_queued(swarm, queued);
        self.pump_switch(swarm);
        Ok(())
    }

    /// Add hosts to a switch plan (up to [`SWITCH_HOSTS`]), each with a
    /// fresh journey key and its deposit.
    fn add_switch_hosts(&self, plan: &mut SwitchPlan, now: u64) -> Result<bool, NodeError> {
        if plan.withdrawn || now >= plan.release_at {
            return Ok(false);
        }
        let mut added = false;
        for (peer, addrs) in &self.hosts {
            if plan.hosts.len() >= SWITCH_HOSTS {
                break;
            }
            let p = peer.to_string();
            if plan.hosts.iter().any(|h| h.peer == p) {
                continue;
            }
            let owner = SwitchOwner::new(&mut OsRng);
            let deposit = owner
                .deposit(
                    relay_id(peer),
                    plan.release_at,
                    plan.alerts.clone(),
                    &mut OsRng,
                )
                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
            plan.hosts.push(SwitchHost {
                id: self.store.next_id().map_err(storage)?,
                peer: p,
                addrs: addrs.iter().map(|a| a.to_string()).collect(),
                owner: owner.to_bytes().to_vec(),
                ops: VecDeque::from([SwitchOp {
                    kind: OpKind::Deposit,
                    bytes: deposit.to_bytes(),
                }]),
                state: HostState::Depositing,
            });
            added = true;
        }
        Ok(added)
    }

    fn journey_view(&self, rec: &JourneyRecord) -> JourneyView {
        let j = &rec.journey;
        let switch = match &rec.switch {
            None => SwitchStatus::Failed,
            Some(p) if p.hosts.iter().any(|h| h.state == HostState::Withdrawn) => {
                SwitchStatus::Withdrawn
            }
            Some(p) if p.hosts.iter().any(|h| h.state == HostState::Armed) => SwitchStatus::Armed,
            Some(p)
                if p.hosts.is_empty()
                    || p.hosts.iter().any(|h| h.state == HostState::Depositing) =>
            {
                SwitchStatus::Pending
            }
            Some(_) => SwitchStatus::Failed,
        };
        JourneyView {
            id: j.id(),
            state: j.state(),
            started_at: j.started_at(),
            destination: PlaceView::from(&j.destination()),
            expected_arrival: j.expected_arrival(),
            overdue_at: j.overdue_at(),
            ends_at: j.ends_at(),
            last_position_at: rec.last_sent_position,
            switch,
            switch_release_at: rec.switch.as_ref().map_or(j.release_at(), |p| p.release_at),
            contacts: rec.contacts,
            acked_by: rec
                .acks
                .iter()
                .map(|(id, at)| AckView {
                    id: *id,
                    name: self.name_of(id),
                    at: *at,
                })
                .collect(),
        }
    }

    fn name_of(&self, id: &ContactId) -> String {
        self.circle
            .contact(id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    // --------------------------------------------------------------- SOS

    fn raise_sos(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        note: &str,
        location: Option<(f64, f64)>,
    ) -> Result<SosView, NodeError> {
        if self
            .sos
            .as_ref()
            .is_some_and(|s| s.sos.state() == SosState::Active)
        {
            return Err(NodeError::Circle(CircleRefusal::SosActive));
        }
        let now = self.clock.now();
        let place = location.and_then(|(lat, lon)| Place::point(lat, lon, 0).ok());
        let (sos, effects) = Sos::start(
            self.mutual_ids(),
            place,
            note,
            self.config.sos,
            now,
            &mut OsRng,
        )
        .map_err(|e| match e {
            SosError::NoRecipients => NodeError::Circle(CircleRefusal::NoContacts),
            SosError::BadNote(d) => NodeError::Circle(CircleRefusal::BadNote(d.to_string())),
            e => NodeError::InvalidInput(e.to_string()),
        })?;
        let mut rec = SosRecord {
            sos,
            place_updated_at: now,
        };
        self.run_sos(swarm, &mut rec, effects)?;
        tracing::info!("SOS raised");
        Ok(self.sos_view(&rec))
    }

    fn cancel_sos(&mut self, swarm: &mut Swarm<Behaviour>) -> Result<SosView, NodeError> {
        let Some(mut rec) = self
            .sos
            .clone()
            .filter(|s| s.sos.state() == SosState::Active)
        else {
            return Err(NodeError::Circle(CircleRefusal::NoSos));
        };
        let effects = rec.sos.cancel(self.clock.now());
        self.run_sos(swarm, &mut rec, effects)?;
        tracing::info!("SOS cancelled");
        Ok(self.sos_view(&rec))
    }

    fn run_sos(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        rec: &mut SosRecord,
        effects: Vec<Effect>,
    ) -> Result<(), NodeError> {
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        let mut queued = Vec::new();
        for e in effects {
            match e {
                Effect::SendTo { to, message } => {
                    self.seal_into(&mut circle, &to, &message, true, &mut commit, &mut queued)?
                }
                Effect::SendToCircle(message) => {
                    let ids = self.mutual_ids();
                    self.seal_into(&mut circle, &ids, &message, true, &mut commit, &mut queued)?
                }
                _ => {}
            }
        }
        commit.put(keys::SOS, &*rec).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.sos = Some(rec.clone());
        self.send_queued(swarm, queued);
        Ok(())
    }

    fn sos_view(&self, rec: &SosRecord) -> SosView {
        let s = &rec.sos;
        let (place, note) = match s.message() {
            Message::Sos { place, note, .. } => (place.as_ref().map(PlaceView::from), note),
            _ => (None, String::new()),
        };
        SosView {
            id: s.id(),
            state: s.state(),
            raised_at: s.raised_at(),
            note,
            place,
            sends: s.sends(),
            acknowledged: s.is_acknowledged(),
            recipients: s
                .recipients()
                .iter()
                .map(|id| SosRecipient {
                    id: *id,
                    name: self.name_of(id),
                    acked_at: s.acked_by().get(id).copied(),
                })
                .collect(),
        }
    }

    /// The node's location changed: an active SOS follows it.
    pub(crate) fn on_location(&mut self, swarm: &mut Swarm<Behaviour>, location: (f64, f64)) {
        let now = self.clock.now();
        let Some(mut rec) = self
            .sos
            .clone()
            .filter(|s| s.sos.state() == SosState::Active)
        else {
            return;
        };
        if now < rec.place_updated_at + SOS_PLACE_GAP_SECS {
            return;
        }
        let Ok(place) = Place::point(location.0, location.1, 0) else {
            return;
        };
        rec.place_updated_at = now;
        match rec.sos.update_place(place, now) {
            Ok(effects) => {
                if let Err(e) = self.run_sos(swarm, &mut rec, effects) {
                    tracing::warn!(error = %e, "could not send the SOS's new position");
                }
            }
            Err(e) => tracing::debug!(error = %e, "SOS position not updated"),
        }
    }

    // ------------------------------------------------------------- inbox

    fn ack_inbox(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ids: &[u64],
    ) -> Result<Vec<u64>, NodeError> {
        let wanted: HashSet<u64> = ids.iter().copied().collect();
        let items = self.store.inbox().map_err(storage)?;
        let mut circle = self.circle.clone();
        let mut commit = Commit::new();
        let mut queued = Vec::new();
        let mut acked = Vec::new();
        let mut acks_sent = self.acks_sent.clone();
        for mut item in items.into_iter().filter(|i| wanted.contains(&i.id)) {
            acked.push(item.id);
            if item.seen {
                continue;
            }
            item.seen = true;
            commit.inbox(&item).map_err(storage)?;
            let Some(of) = item.notice.ackable() else {
                continue;
            };
            if acks_sent.contains(&(item.from, of)) {
                continue;
            }
            self.seal_into(
                &mut circle,
                &[item.from],
                &Message::Ack { of },
                false,
                &mut commit,
                &mut queued,
            )?;
            acks_sent.push_back((item.from, of));
            while acks_sent.len() > MAX_ACKS_REMEMBERED {
                acks_sent.pop_front();
            }
        }
        commit.put(keys::ACKS, &acks_sent).map_err(storage)?;
        commit.put(keys::CIRCLE, &circle).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.circle = circle;
        self.acks_sent = acks_sent;
        self.send_queued(swarm, queued);
        Ok(acked)
    }

    // ----------------------------------------------------------- receiving

    /// Open an envelope and apply it. `Ok(false)` if it was refused;
    /// `Err` only if this node's storage failed (then nothing changed).
    fn receive(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        bytes: &[u8],
        from_peer: Option<PeerId>,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut circle = self.circle.clone();
        let received = match circle.open(&self.identity, bytes, now) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(reason = open_reason(&e), "envelope refused");
                return Ok(false);
            }
        };
        let from = received.from;
        let from_name = circle
            .contact(&from)
            .or_else(|| self.circle.contact(&from))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let mut watch = self.watch.clone();
        let mut journey = self.journey.clone();
        let mut sos = self.sos.clone();
        let mut notices = Vec::new();
        let mut follow = Vec::new();
        match received.event {
            Some(ContactEvent::Requested) => {
                let sn = circle
                    .contact(&from)
                    .map(|c| safety_number(self.identity.public(), &c.identity).to_string())
                    .unwrap_or_default();
                notices.push(InboxNotice::ContactRequest { safety_number: sn });
            }
            Some(ContactEvent::BecameMutual) => notices.push(InboxNotice::ContactMutual),
            Some(ContactEvent::AcceptRepeated) => follow.push(FollowUp::Reapprove(from)),
            Some(ContactEvent::Left) => {
                notices.push(InboxNotice::ContactLeft);
                follow.push(FollowUp::Forget(from));
            }
            None => {}
        }
        if received.message.kind() >= 0x10 {
            if let Some(n) = watch.receive(&from, &received.message, now) {
                match &n {
                    Notice::Acked { of, .. } => {
                        let mut recorded = false;
                        if let Some(s) = sos.as_mut().filter(|s| &s.sos.id() == of) {
                            recorded |= s.sos.ack(&from, of, now);
                        }
                        if let Some(j) = journey.as_mut().filter(|j| &j.journey.id() == of) {
                            if let std::collections::btree_map::Entry::Vacant(e) =
                                j.acks.entry(from)
                            {
                                e.insert(now);
                                recorded = true;
                            }
                        }
                        if recorded {
                            notices.push(InboxNotice::of(&n));
                        }
                    }
                    n => notices.push(InboxNotice::of(n)),
                }
            }
        }
        let mut commit = Commit::new();
        let mut items = Vec::new();
        for notice in notices {
            let item = InboxItem {
                id: self.store.next_id()?,
                received_at: now,
                from,
                from_name: from_name.clone(),
                alert: notice.is_alert(),
                seen: false,
                notice,
            };
            commit.inbox(&item)?;
            items.push(item);
        }
        for old in self.store.inbox_overflow(items.len())? {
            commit.drop_inbox(old);
        }
        if follow.iter().any(|f| matches!(f, FollowUp::Forget(_))) {
            for (seq, item) in &self.outbox {
                if item.to == from {
                    commit.dequeue(*seq);
                }
            }
        }
        commit.put(keys::CIRCLE, &circle)?;
        commit.put(keys::WATCH, &watch)?;
        if journey.is_some() {
            commit.put(keys::JOURNEY, &journey)?;
        }
        if sos.is_some() {
            commit.put(keys::SOS, &sos)?;
        }
        self.store.apply(commit)?;
        self.circle = circle;
        self.watch = watch;
        self.journey = journey;
        self.sos = sos;
        if let Some(p) = from_peer {
            if self.circle.contact(&from).is_some() {
                self.learned.insert(from, p);
                self.direct_backoff.remove(&from);
            }
        }
        for item in items {
            let event = if item.alert {
                tracing::info!("alert received from the circle");
                NodeEvent::Alert(item)
            } else {
                tracing::debug!("circle message received");
                NodeEvent::Circle(item)
            };
            let _ = self.events.send(event);
        }
        for f in follow {
            match f {
                FollowUp::Reapprove(id) => {
                    let mut circle = self.circle.clone();
                    match circle.approve(&self.identity, &id, &mut OsRng) {
                        Ok(env) => {
                            if let Err(e) = self.queue_envelopes(
                                swarm,
                                circle,
                                Commit::new(),
                                vec![(id, env)],
                                false,
                            ) {
                                tracing::warn!(error = %e, "could not confirm a contact again");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "no confirm to repeat"),
                    }
                }
                FollowUp::Forget(id) => {
                    self.forget_contact(&id);
                    self.rearm_after_removal(swarm);
                }
            }
        }
        Ok(true)
    }

    // ------------------------------------------------------------ delivery

    fn direct_target(&self, item: &OutItem, now: u64) -> Option<(PeerId, Vec<Multiaddr>)> {
        if self
            .direct_backoff
            .get(&item.to)
            .is_some_and(|until| now < *until)
        {
            return None;
        }
        if let Some(p) = self.learned.get(&item.to) {
            return Some((*p, Vec::new()));
        }
        let mut addrs = item.peers.clone();
        if let Some(c) = self.circle.contact(&item.to) {
            addrs.extend(c.addresses.iter().cloned());
        }
        peers_of(&addrs)
            .into_iter()
            .find(|(p, _)| *p != self.local_peer)
    }

    fn remote_hosts(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.hosts
            .iter()
            .filter(|(p, _)| **p != self.local_peer)
            .map(|(p, a)| (*p, a.clone()))
            .collect()
    }

    /// Start (or restart) the delivery of one queued envelope.
    fn deliver(&mut self, swarm: &mut Swarm<Behaviour>, seq: u64) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            return;
        };
        match self.attempts.get(&seq).map(|a| a.phase) {
            Some(Phase::Direct) | Some(Phase::Mailbox { .. }) => return,
            Some(Phase::Waiting(_)) | None => {}
        }
        let now = self.clock.now();
        let known = self.circle.contact(&item.to).is_some();
        if (!known && item.mailbox.is_none()) || now > item.created_at + OUTBOX_TTL_SECS {
            if known {
                tracing::warn!("a circle message could not be delivered within a week; dropped");
            }
            self.complete(seq);
            return;
        }
        match self.direct_target(&item, now) {
            Some((peer, addrs)) => {
                let id = swarm.behaviour_mut().circle.send_request_with_addresses(
                    &peer,
                    item.envelope.clone(),
                    addrs,
                );
                self.direct_inflight.insert(id, (seq, peer));
                self.attempts.insert(
                    seq,
                    Attempt {
                        phase: Phase::Direct,
                        direct_ok: false,
                    },
                );
            }
            None => self.via_mailboxes(swarm, seq, false),
        }
    }

    fn via_mailboxes(&mut self, swarm: &mut Swarm<Behaviour>, seq: u64, direct_ok: bool) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            self.attempts.remove(&seq);
            return;
        };
        let now = self.clock.now();
        let hosts = self.remote_hosts();
        let mailbox = match item.mailbox {
            Some(m) => Some(m),
            None => self
                .circle
                .outbound_mailbox(&self.identity, &item.to, epoch_of(now))
                .ok(),
        };
        let (Some(mailbox), false) = (mailbox, hosts.is_empty()) else {
            if direct_ok {
                self.complete(seq);
            } else {
                self.wait(seq);
            }
            return;
        };
        let mut pending = 0;
        for (peer, addrs) in hosts.into_iter().take(PUT_HOSTS) {
            let id = swarm.behaviour_mut().mailbox.send_request_with_addresses(
                &peer,
                MailboxRequest::Put {
                    mailbox,
                    envelope: item.envelope.clone(),
                },
                addrs,
            );
            self.mailbox_inflight.insert(id, MailboxAsk::Put { seq });
            pending += 1;
        }
        self.attempts.insert(
            seq,
            Attempt {
                phase: Phase::Mailbox { pending },
                direct_ok,
            },
        );
    }

    fn wait(&mut self, seq: u64) {
        let until = Instant::now() + self.config.retry_interval;
        let direct_ok = self.attempts.get(&seq).is_some_and(|a| a.direct_ok);
        self.attempts.insert(
            seq,
            Attempt {
                phase: Phase::Waiting(until),
                direct_ok,
            },
        );
    }

    /// Delivered (or given up): out of the queue for good.
    fn complete(&mut self, seq: u64) {
        self.attempts.remove(&seq);
        if self.outbox.remove(&seq).is_some() {
            let mut c = Commit::new();
            c.dequeue(seq);
            if let Err(e) = self.store.apply(c) {
                tracing::error!(error = %e, "could not dequeue a delivered circle message");
            }
        }
    }

    /// Retry what waits (all of it if `now_all`).
    fn retry_outbox(&mut self, swarm: &mut Swarm<Behaviour>, now_all: bool) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .outbox
            .keys()
            .copied()
            .filter(|s| match self.attempts.get(s).map(|a| a.phase) {
                None => true,
                Some(Phase::Waiting(t)) => now_all || t <= now,
                Some(_) => false,
            })
            .collect();
        for s in due {
            self.deliver(swarm, s);
        }
    }

    pub(crate) fn on_circle_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<Vec<u8>, Delivery>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let answer = match self.receive(swarm, &request, Some(peer)) {
                        Ok(true) => Delivery::Accepted,
                        Ok(false) => Delivery::Refused,
                        Err(e) => {
                            tracing::error!(error = %e, "could not store a received circle message");
                            Delivery::Refused
                        }
                    };
                    if swarm
                        .behaviour_mut()
                        .circle
                        .send_response(channel, answer)
                        .is_err()
                    {
                        tracing::debug!(%peer, "the sender of an envelope went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((seq, peer)) = self.direct_inflight.remove(&request_id) {
                        self.direct_done(swarm, seq, peer, response == Delivery::Accepted);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "direct delivery failed");
                if let Some((seq, peer)) = self.direct_inflight.remove(&request_id) {
                    self.direct_done(swarm, seq, peer, false);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "an incoming envelope failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn direct_done(&mut self, swarm: &mut Swarm<Behaviour>, seq: u64, peer: PeerId, ok: bool) {
        let Some(item) = self.outbox.get(&seq).cloned() else {
            self.attempts.remove(&seq);
            return;
        };
        if ok {
            tracing::debug!("circle message delivered directly");
            if item.critical {
                self.via_mailboxes(swarm, seq, true);
            } else {
                self.complete(seq);
            }
            return;
        }
        if self.learned.get(&item.to) == Some(&peer) {
            self.learned.remove(&item.to);
        }
        self.direct_backoff
            .insert(item.to, self.clock.now() + DIRECT_BACKOFF_SECS);
        self.via_mailboxes(swarm, seq, false);
    }

    fn put_done(&mut self, seq: u64, stored: bool) {
        let Some(a) = self.attempts.get(&seq).copied() else {
            return;
        };
        let Phase::Mailbox { pending } = a.phase else {
            return;
        };
        if stored {
            tracing::debug!("circle message left in a mailbox");
            self.complete(seq);
            return;
        }
        let pending = pending.saturating_sub(1);
        if pending > 0 {
            self.attempts.insert(
                seq,
                Attempt {
                    phase: Phase::Mailbox { pending },
                    ..a
                },
            );
        } else if a.direct_ok {
            self.complete(seq);
        } else {
            self.wait(seq);
        }
    }

    // ----------------------------------------------------- mailbox service

    pub(crate) fn on_mailbox_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<MailboxRequest, MailboxResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let answer = self.serve_mailbox(request);
                    if swarm
                        .behaviour_mut()
                        .mailbox
                        .send_response(channel, answer)
                        .is_err()
                    {
                        tracing::debug!(%peer, "a mailbox client went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(ask) = self.mailbox_inflight.remove(&request_id) {
                        self.mailbox_answer(swarm, peer, ask, Some(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "mailbox request failed");
                if let Some(ask) = self.mailbox_inflight.remove(&request_id) {
                    self.mailbox_answer(swarm, peer, ask, None);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "an incoming mailbox request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// The host side.
    fn serve_mailbox(&mut self, request: MailboxRequest) -> MailboxResponse {
        let now = self.clock.now();
        let Some(host) = self.host.as_mut() else {
            return MailboxResponse::Refused(Refusal::Unavailable);
        };
        match request {
            MailboxRequest::Put { mailbox, envelope } => match host.put(&mailbox, &envelope, now) {
                Ok(()) => MailboxResponse::Ok,
                Err(e) => {
                    tracing::debug!(error = %e, "envelope refused by the mailbox");
                    MailboxResponse::Refused(e.refusal())
                }
            },
            MailboxRequest::Fetch { mailboxes } => match host.fetch(&mailboxes) {
                Ok((items, more)) => MailboxResponse::Mail { more, items },
                Err(e) => {
                    tracing::error!(error = %e, "could not read the mailboxes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Ack { items } => match host.ack(&items) {
                Ok(_) => MailboxResponse::Ok,
                Err(e) => {
                    tracing::error!(error = %e, "could not delete fetched envelopes");
                    MailboxResponse::Refused(Refusal::Unavailable)
                }
            },
            MailboxRequest::Switch(bytes) => match host.switch(&bytes, now) {
                Ok(()) => {
                    tracing::debug!("dead-man's switch request applied");
                    MailboxResponse::Ok
                }
                Err(r) => {
                    tracing::debug!(refusal = %r, "dead-man's switch request refused");
                    MailboxResponse::Refused(r)
                }
            },
        }
    }

    /// The client side: an answer (or `None`: the request failed).
    fn mailbox_answer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        ask: MailboxAsk,
        response: Option<MailboxResponse>,
    ) {
        match ask {
            MailboxAsk::Put { seq } => {
                self.put_done(seq, matches!(response, Some(MailboxResponse::Ok)));
            }
            MailboxAsk::Fetch { host } => {
                self.fetching.remove(&host);
                match response {
                    Some(MailboxResponse::Mail { more, items }) => {
                        let processed = self.take_mail(swarm, items);
                        if !processed.is_empty() {
                            for chunk in processed.chunks(MAX_ACK_ITEMS) {
                                let id = swarm.behaviour_mut().mailbox.send_request(
                                    &host,
                                    MailboxRequest::Ack {
                                        items: chunk.to_vec(),
                                    },
                                );
                                self.mailbox_inflight.insert(id, MailboxAsk::Ack);
                            }
                        }
                        if more {
                            self.fetch_from(swarm, host);
                        }
                    }
                    Some(MailboxResponse::Refused(r)) => {
                        tracing::debug!(%peer, refusal = %r, "mailbox fetch refused")
                    }
                    _ => {}
                }
            }
            MailboxAsk::Ack => {}
            MailboxAsk::Switch { host, id } => {
                self.switch_inflight.remove(&host);
                self.switch_answer(swarm, host, id, response);
            }
        }
    }

    /// Open fetched mail; returns what to acknowledge (all of it but what
    /// this node failed to store).
    fn take_mail(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        items: Vec<MailItem>,
    ) -> Vec<([u8; 32], u64)> {
        let mut done = Vec::new();
        for it in items {
            match self.receive(swarm, &it.envelope, None) {
                Ok(_) => done.push((it.mailbox, it.seq)),
                Err(e) => {
                    tracing::error!(error = %e, "could not store a circle message from a mailbox")
                }
            }
        }
        done
    }

    fn fetch_from(&mut self, swarm: &mut Swarm<Behaviour>, host: PeerId) {
        if self.fetching.contains(&host) {
            return;
        }
        let now = self.clock.now();
        let mut mailboxes = self.circle.mailboxes_to_poll(&self.identity, now);
        mailboxes.truncate(MAX_FETCH_MAILBOXES);
        if mailboxes.is_empty() {
            return;
        }
        let addrs = self.hosts.get(&host).cloned().unwrap_or_default();
        let id = swarm.behaviour_mut().mailbox.send_request_with_addresses(
            &host,
            MailboxRequest::Fetch { mailboxes },
            addrs,
        );
        self.fetching.insert(host);
        self.mailbox_inflight.insert(id, MailboxAsk::Fetch { host });
    }

    /// Fetch from every host (and from this node's own mailboxes).
    pub(crate) fn poll_mailboxes(&mut self, swarm: &mut Swarm<Behaviour>) {
        let hosts: Vec<PeerId> = self.remote_hosts().into_iter().map(|(p, _)| p).collect();
        for h in hosts {
            self.fetch_from(swarm, h);
        }
        if self.host.is_some() {
            let now = self.clock.now();
            let mailboxes = self.circle.mailboxes_to_poll(&self.identity, now);
            if mailboxes.is_empty() {
                return;
            }
            let fetched = self.host.as_ref().map(|h| h.fetch(&mailboxes));
            match fetched {
                Some(Ok((items, _))) if !items.is_empty() => {
                    let done = self.take_mail(swarm, items);
                    if let Some(h) = self.host.as_mut() {
                        if let Err(e) = h.ack(&done) {
                            tracing::error!(error = %e, "could not delete own fetched mail");
                        }
                    }
                }
                Some(Err(e)) => tracing::error!(error = %e, "could not read own mailboxes"),
                _ => {}
            }
        }
    }

    // ----------------------------------------------------- switch client

    /// Send the next pending operation to each switch host.
    /// Send the next pending operation to each switch host (one request
    /// per host at a time; withdrawals of retired deposits first).
    fn pump_switch(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(rec) = self.journey.as_ref() else {
            return;
        };
        let current = rec.switch.iter().flat_map(|p| p.hosts.iter());
        let now = Instant::now();
        let mut busy: HashSet<PeerId> = self.switch_inflight.clone();
        let mut sends = Vec::new();
        for h in rec.retired.iter().chain(current) {
            let Ok(peer) = h.peer.parse::<PeerId>() else {
                continue;
            };
            if busy.contains(&peer) || self.switch_retry_at.get(&peer).is_some_and(|t| now < *t) {
                continue;
            }
            if let Some(op) = h.ops.front() {
                let addrs: Vec<Multiaddr> = h.addrs.iter().filter_map(|a| a.parse().ok()).collect();
                sends.push((peer, h.id, op.bytes.clone(), addrs));
                busy.insert(peer);
            }
        }
        for (peer, host_id, bytes, addrs) in sends {
            let id = swarm.behaviour_mut().mailbox.send_request_with_addresses(
                &peer,
                MailboxRequest::Switch(bytes),
                addrs,
            );
            self.switch_inflight.insert(peer);
            self.mailbox_inflight.insert(
                id,
                MailboxAsk::Switch {
                    host: peer,
                    id: host_id,
                },
            );
        }
    }

    fn switch_answer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        host: PeerId,
        host_id: u64,
        response: Option<MailboxResponse>,
    ) {
        let Some(mut rec) = self.journey.clone() else {
            return;
        };
        let Some(h) = rec
            .retired
            .iter_mut()
            .chain(rec.switch.iter_mut().flat_map(|p| p.hosts.iter_mut()))
            .find(|h| h.id == host_id)
        else {
            return;
        };
        let Some(op) = h.ops.front().cloned() else {
            return;
        };
        let done = match response {
            None => {
                self.switch_retry_at
                    .insert(host, Instant::now() + self.config.retry_interval);
                return;
            }
            Some(MailboxResponse::Ok) => true,
            // Our own retransmission after a lost answer.
            Some(MailboxResponse::Refused(Refusal::SwitchAlreadyDeposited))
                if op.kind == OpKind::Deposit =>
            {
                true
            }
            Some(MailboxResponse::Refused(Refusal::SwitchStaleCounter)) => true,
            Some(MailboxResponse::Refused(Refusal::Unavailable)) => {
                self.switch_retry_at
                    .insert(host, Instant::now() + self.config.retry_interval);
                return;
            }
            Some(other) => {
                let why = match other {
                    MailboxResponse::Refused(r) => r.to_string(),
                    _ => "an answer that makes no sense".to_owned(),
                };
                tracing::warn!(%host, why, "a mailbox host refused the journey's dead-man's switch");
                h.ops.clear();
                h.state = if op.kind == OpKind::Deposit {
                    HostState::Failed
                } else {
                    HostState::Withdrawn
                };
                false
            }
        };
        if done {
            h.ops.pop_front();
            match op.kind {
                OpKind::Deposit => {
                    h.state = HostState::Armed;
                    tracing::info!("journey's dead-man's switch armed with a mailbox host");
                }
                OpKind::Withdraw => {
                    h.state = HostState::Withdrawn;
                    tracing::info!("journey's dead-man's switch withdrawn");
                }
                OpKind::Heartbeat => {}
            }
        }
        rec.retired.retain(|h| !h.ops.is_empty());
        let mut c = Commit::new();
        match c.put(keys::JOURNEY, &rec) {
            Ok(()) => match self.store.apply(c) {
                Ok(()) => self.journey = Some(rec),
                Err(e) => tracing::error!(error = %e, "could not save the journey"),
            },
            Err(e) => tracing::error!(error = %e, "could not save the journey"),
        }
        self.pump_switch(swarm);
    }

    // ------------------------------------------------------ peers, timers

    pub(crate) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        info: &identify::Info,
    ) {
        if peer == self.local_peer || !info.protocols.contains(&MAILBOX_PROTOCOL) {
            return;
        }
        let new = !self.hosts.contains_key(&peer);
        let entry = self.hosts.entry(peer).or_default();
        for a in info.listen_addrs.iter().take(8) {
            if !entry.contains(a) {
                entry.push(a.clone());
            }
        }
        if new {
            tracing::debug!(%peer, "found a mailbox host");
            self.fetch_from(swarm, peer);
            self.retry_outbox(swarm, true);
        }
    }

    pub(crate) fn on_connected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.hosts.contains_key(&peer) {
            self.fetch_from(swarm, peer);
            self.switch_retry_at.remove(&peer);
            self.retry_outbox(swarm, true);
            self.pump_switch(swarm);
        } else if self.learned.values().any(|p| *p == peer) {
            self.retry_outbox(swarm, true);
        }
    }

    /// Time passed: journey and SOS deadlines, switches, retries, hosting.
    pub(crate) fn tick(&mut self, swarm: &mut Swarm<Behaviour>, location: Option<(f64, f64)>) {
        let now = self.clock.now();
        if let Some(mut rec) = self.journey.clone() {
            if rec.journey.next_deadline().is_some_and(|t| t <= now) {
                let was = rec.journey.state();
                let effects = rec.journey.poll(now);
                if let Err(e) = self.run_journey(swarm, &mut rec, effects, location) {
                    tracing::error!(error = %e, "could not carry out the journey's next step");
                }
                if was != rec.journey.state() {
                    match rec.journey.state() {
                        JourneyState::Overdue => {
                            tracing::info!("journey overdue: the circle was alerted")
                        }
                        JourneyState::Expired => {
                            tracing::info!("journey reached the 8-hour cap: sharing stopped")
                        }
                        _ => {}
                    }
                }
            }
            if let Some(mut rec) = self.journey.clone() {
                let added = match rec.switch.as_mut() {
                    Some(plan) if plan.hosts.len() < SWITCH_HOSTS && !self.hosts.is_empty() => {
                        self.add_switch_hosts(plan, now).unwrap_or(false)
                    }
                    _ => false,
                };
                if added {
                    let mut c = Commit::new();
                    if c.put(keys::JOURNEY, &rec).is_ok() && self.store.apply(c).is_ok() {
                        self.journey = Some(rec);
                    }
                }
            }
        }
        if let Some(mut rec) = self.sos.clone() {
            if rec.sos.next_deadline().is_some_and(|t| t <= now) {
                let effects = rec.sos.poll(now);
                if !effects.is_empty() {
                    tracing::debug!("re-sending the SOS: nobody acknowledged it yet");
                }
                if let Err(e) = self.run_sos(swarm, &mut rec, effects) {
                    tracing::error!(error = %e, "could not re-send the SOS");
                }
            }
        }
        self.pump_switch(swarm);
        self.retry_outbox(swarm, false);
        if let Some(host) = self.host.as_mut() {
            match host.release(now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(alerts = n, "released alerts into their mailboxes"),
                Err(e) => tracing::error!(error = %e, "could not release dead-man's switches"),
            }
        }
        if now >= self.last_housekeeping + HOUSEKEEPING_SECS {
            self.last_housekeeping = now;
            if let Some(host) = self.host.as_mut() {
                match host.purge(now) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(envelopes = n, "expired mail deleted"),
                    Err(e) => tracing::error!(error = %e, "could not purge the mailboxes"),
                }
            }
            self.watch.prune(now);
            let mut c = Commit::new();
            if c.put(keys::WATCH, &self.watch).is_ok() {
                if let Err(e) = self.store.apply(c) {
                    tracing::error!(error = %e, "could not save the circle's watch");
                }
            }
        }
    }

    /// Write everything to disk (on shutdown).
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_of_groups_addresses_by_peer() {
        let p = PeerId::random();
        let q = PeerId::random();
        let addrs = vec![
            format!("/memory/1/p2p/{p}"),
            "/memory/2".to_owned(),
            "garbage".to_owned(),
            format!("/ip4/127.0.0.1/tcp/4/p2p/{q}"),
            format!("/memory/3/p2p/{p}"),
            format!("/p2p/{q}"),
        ];
        let got = peers_of(&addrs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, p);
        assert_eq!(got[0].1.len(), 2);
        assert_eq!(got[1].0, q);
        assert_eq!(got[1].1.len(), 1, "a bare /p2p/ adds no address");
    }
}
