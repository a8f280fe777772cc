//! The client side of the trusted circle: this person's own circle,
//! driven by the event loop (commands, swarm events, timers). It owns the
//! identity, the contacts and the circle state, the outbox and the inbox,
//! journeys and SOS, and the deposits of the journey's dead-man's switch
//! with mailbox hosts, as a client. The mailboxes and switches this node
//! hosts for others are the host side's ([`crate::circle::host`]); on a
//! mailbox host, the client reads its own mail there, through the host's
//! store, since a node does not send requests to itself.
//!
//! * `command`: `CircleCommand`, what a [`crate::Node`] handle asks.
//! * [`store`]: the circle, outbox and inbox trees, changed in single
//!   transactions; `records`: the documents of this person's profile,
//!   journey and SOS in it.
//! * `contacts`: invites, accepts, approvals, removals.
//! * `outbox`: sealing and delivery (below); `mailboxes`: the client of
//!   the mailbox hosts (answers, fetches, polls); [`net`]: the connections
//!   it uses, one identity per UTC day (below).
//! * `inbox`: opening what arrives, the inbox and its acks.
//! * `journeys` and `sos`: the protocol's journey and SOS machines on the
//!   node's clock, and the journey's switch; `codes`: the person's code and
//!   duress code, which end them (or seem to).
//! * this file: the state, the commands, peers and timers.
//!
//! # Delivery
//!
//! Every sealed envelope enters the outbox in the same transaction as the
//! counter that sealed it. It then goes:
//!
//! 1. **directly**, over `/ronde/circle/1`, to the contact's node if a peer
//!    is known for it: the peer a message of theirs last came from, or the
//!    `/p2p/` addresses of their invite or accept;
//! 2. **to the mailbox hosts** (up to [`PUT_HOSTS`] of them) if direct
//!    delivery is impossible or refused, addressed to the pair's mailbox of
//!    the day (or the invite's mailbox for an accept).
//!
//! # Hosts: chosen by the person, never by the network
//!
//! Mailbox and switch hosts come only from the person's configuration
//! (`mailbox_peers`: each one the person's own choice, counted as its own
//! operator) and from the relays listed, with the mailbox or switch role,
//! in the signed directory of a city the node is configured with
//! ([`CircleClient::set_directory_hosts`]). A peer that merely connects and
//! speaks `/ronde/mailbox/1` is never one. A journey's switch goes to
//! [`SWITCH_HOSTS`] hosts of different operators where there are two, and
//! counts as held by a host only once it answered with a receipt signed by
//! that host's peer key (see `journeys`).
//!
//! # One connection identity per day
//!
//! Everything sent to a mailbox or switch host goes over the circle's own
//! connections ([`net`]), never over the node's main swarm, whose peer id
//! publishes reports: one swarm per UTC day, with a random identity. Each
//! request carries the mailboxes of one day only and goes over that day's
//! swarm: today's mailboxes over today's, yesterday's (still polled all
//! day: a contact's clock may lag, and a switch deposited yesterday
//! releases its alerts there) over yesterday's; an invite's mailbox over
//! the swarm of the day it was made; a switch over the swarm of the day
//! its alerts were sealed for, until it is withdrawn. A day's swarm is
//! dropped, its connections closed, once nothing of that day is left.
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

mod codes;
pub(crate) mod command;
mod contacts;
mod inbox;
mod journeys;
mod mailboxes;
pub(crate) mod net;
mod outbox;
mod push;
mod records;
pub mod rendezvous;
mod sos;
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use libp2p::multiaddr::Protocol;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::Swarm;
use libp2p::{Multiaddr, PeerId};
use ronde_protocol::circle::{
    epoch_of, Circle, CircleError, Codes, ContactId, Ending, Identity, JourneyState, MailboxKey,
    MessageId, Watch,
};
use ronde_protocol::directory::{RelayEntry, RelayRoles};
use tokio::sync::broadcast;

use self::command::CircleCommand;
use self::net::{CircleNet, NetEvent, NetRequest};
use self::records::{JourneyRecord, Profile, SosRecord};
use self::store::{keys, CircleStore, Commit, OutItem};
use crate::behaviour::Behaviour;
use crate::circle::host::MailboxHost;
use crate::circle::views::Inbox;
use crate::clock::Clock;
use crate::config::CircleConfig;
use crate::error::{CircleRefusal, NodeError, StoreError};
use crate::events::NodeEvent;

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
/// How often the watch is pruned.
const HOUSEKEEPING_SECS: u64 = 60;

/// Where one queued envelope is in its delivery.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Direct,
    Mailbox { pending: usize },
    Waiting(Instant),
}

/// Who a host is: where it came from, who runs it, what it is used for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostMeta {
    /// The operator the directory lists; `None` for a host the person
    /// configured (its own operator).
    operator: Option<String>,
    /// Takes mail (puts and fetches).
    mailbox: bool,
    /// Takes the journey's switch.
    switch: bool,
}

impl HostMeta {
    fn configured() -> HostMeta {
        HostMeta {
            operator: None,
            mailbox: true,
            switch: true,
        }
    }
}

/// Most addresses kept of one directory host.
const MAX_HOST_ADDRS: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Attempt {
    phase: Phase,
    direct_ok: bool,
}

/// What a mailbox request in flight was for. `Challenge` waits for a
/// challenge to send a proven request with; `Ack`'s `more`: fetch again
/// once acknowledged. `day`: the UTC day whose mailboxes (and connection
/// identity) the request is about.
enum MailboxAsk {
    Put {
        seq: u64,
    },
    Challenge {
        host: PeerId,
        day: u64,
        then: Proven,
    },
    Fetch {
        host: PeerId,
        day: u64,
    },
    Ack {
        host: PeerId,
        day: u64,
        more: bool,
    },
    Switch {
        host: PeerId,
        id: u64,
    },
    /// A push registration of these mailboxes (empty: an unregistration).
    Push {
        host: PeerId,
        day: u64,
        mailboxes: Vec<[u8; 32]>,
    },
}

/// A request that proves mailbox keys, waiting for its challenge.
enum Proven {
    Fetch,
    /// Register `endpoint` for the day's mailboxes (`None`: unregister).
    Push {
        endpoint: Option<String>,
    },
    Ack {
        items: Vec<([u8; 32], u64)>,
        more: bool,
        /// The keys of the fetch that brought them: processing the mail
        /// may retire a key (an accept uses its invite up, a short code is
        /// done with), and the day may turn, before the acknowledgement.
        keys: Vec<MailboxKey>,
    },
}

/// The client side of the circle: this person's circle, its delivery and
/// its deposits (see the module doc).
pub(crate) struct CircleClient {
    identity: Identity,
    store: CircleStore,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<NodeEvent>,
    config: CircleConfig,
    local_peer: PeerId,

    circle: Circle,
    watch: Watch,
    profile: Profile,
    journey: Option<JourneyRecord>,
    sos: Option<SosRecord>,
    /// The person's code and duress code, if set.
    codes: Option<Codes>,
    acks_sent: VecDeque<(ContactId, MessageId)>,

    outbox: BTreeMap<u64, OutItem>,
    attempts: HashMap<u64, Attempt>,
    /// Mailbox hosts and their addresses: the configured ones, and the
    /// relays of the directory (never a peer that merely connected).
    hosts: BTreeMap<PeerId, Vec<Multiaddr>>,
    /// Who each host of `hosts` is.
    host_meta: BTreeMap<PeerId, HostMeta>,
    /// The peer a contact's envelope last came from directly.
    learned: HashMap<ContactId, PeerId>,
    /// Until when a contact's envelopes skip direct delivery (Unix s).
    direct_backoff: HashMap<ContactId, u64>,
    direct_inflight: HashMap<OutboundRequestId, (u64, PeerId)>,
    /// The connections to the hosts, one identity per day ([`net`]).
    net: CircleNet,
    mailbox_inflight: HashMap<NetRequest, MailboxAsk>,
    /// The fetches under way, by day and host.
    fetching: HashSet<(u64, PeerId)>,
    /// When each other day than today is polled next (a random moment of
    /// the poll period, not with today's).
    later_polls: BTreeMap<u64, Instant>,
    switch_inflight: HashSet<PeerId>,
    switch_retry_at: HashMap<PeerId, Instant>,
    safety_numbers: HashMap<ContactId, String>,
    last_housekeeping: u64,
    /// Accepts by short code waiting for their invite.
    short_pending: Vec<rendezvous::PendingShort>,
    /// Push wake-ups: the endpoint and where it is registered (`push`).
    push: push::PushState,
    /// Suspended: no polls and no retries of its own; [`Self::wake`]
    /// fetches once.
    suspended: bool,
    /// In the background (see [`Self::set_background`]).
    background: bool,
    /// When the mailboxes were last polled.
    last_poll: Option<Instant>,
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
                "an invite lasts between 1 second and 24 hours".to_owned(),
            )
        }
        CircleError::Key(_) => CircleRefusal::BadInvite("the invite holds an unusable key".into()),
        other => return NodeError::InvalidInput(other.to_string()),
    };
    NodeError::Circle(r)
}

impl CircleClient {
    /// The client side, from what is stored; `net`: its connections to
    /// the hosts (no swarm is made before the first request).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        store: CircleStore,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<NodeEvent>,
        config: CircleConfig,
        local_peer: PeerId,
        mailbox_peers: &[Multiaddr],
        net: CircleNet,
    ) -> Result<CircleClient, StoreError> {
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
        let codes = store.load(keys::CODES)?;
        let acks_sent = store.load(keys::ACKS)?.unwrap_or_default();
        let outbox = store.outbox()?.into_iter().collect();
        let mut hosts = BTreeMap::new();
        let mut host_meta = BTreeMap::new();
        for a in mailbox_peers {
            match split_peer(a) {
                Some((peer, base)) if peer != local_peer => {
                    hosts.entry(peer).or_insert_with(Vec::new).push(base);
                    host_meta.insert(peer, HostMeta::configured());
                }
                Some(_) => {}
                None => tracing::warn!(%a, "a mailbox peer needs a /p2p/<peer id> suffix; ignored"),
            }
        }
        Ok(CircleClient {
            identity,
            store,
            clock,
            events,
            config,
            local_peer,
            circle,
            watch,
            profile,
            journey,
            sos,
            codes,
            acks_sent,
            outbox,
            attempts: HashMap::new(),
            hosts,
            host_meta,
            learned: HashMap::new(),
            direct_backoff: HashMap::new(),
            direct_inflight: HashMap::new(),
            net,
            mailbox_inflight: HashMap::new(),
            fetching: HashSet::new(),
            later_polls: BTreeMap::new(),
            switch_inflight: HashSet::new(),
            switch_retry_at: HashMap::new(),
            safety_numbers: HashMap::new(),
            last_housekeeping: 0,
            short_pending: Vec::new(),
            push: push::PushState::default(),
            suspended: false,
            background: false,
            last_poll: None,
        })
    }

    /// Right after start: fetch mail (from this node's own hosted mailboxes
    /// too, in `own`), deliver what was queued.
    pub(crate) fn start(&mut self, swarm: &mut Swarm<Behaviour>, own: Option<&mut MailboxHost>) {
        if !self.outbox.is_empty() {
            tracing::info!(
                queued = self.outbox.len(),
                "circle messages queued before the restart will be delivered"
            );
        }
        self.poll_mailboxes(swarm, own);
        self.retry_outbox(swarm, true);
        self.pump_switch();
    }

    /// A command of [`crate::Node`]; `hosted` is this node's host side, if
    /// it hosts mailboxes (counted in the status).
    pub(crate) fn on_command(
        &mut self,
        cmd: CircleCommand,
        swarm: &mut Swarm<Behaviour>,
        location: Option<(f64, f64)>,
        hosted: Option<&MailboxHost>,
    ) {
        match cmd {
            CircleCommand::Status { reply } => {
                let _ = reply.send(Ok(self.status(hosted)));
            }
            CircleCommand::Contacts { reply } => {
                let _ = reply.send(Ok(self.contact_list()));
            }
            CircleCommand::Invite {
                name,
                ttl_secs,
                short,
                reply,
            } => {
                let _ = reply.send(self.invite(swarm, name, ttl_secs, short));
            }
            CircleCommand::AcceptShort { keys, name, reply } => {
                self.accept_short(keys, name, reply);
            }
            CircleCommand::Accept { code, name, reply } => {
                let _ = reply.send(self.accept(swarm, &code, name));
            }
            CircleCommand::Approve {
                contact,
                safety_number,
                reply,
            } => {
                let _ = reply.send(self.approve(swarm, &contact, safety_number.as_deref()));
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
                states_only,
                destination_name,
                reply,
            } => {
                let r = self.start_journey(
                    swarm,
                    destination,
                    expected_arrival,
                    grace_secs,
                    states_only,
                    location,
                );
                let r = r.map(|view| self.name_journey(view, destination_name));
                let _ = reply.send(r);
            }
            CircleCommand::ExtendJourney {
                expected_arrival,
                reply,
            } => {
                let _ = reply.send(self.extend_journey(swarm, expected_arrival, location));
            }
            CircleCommand::Journey { reply } => {
                let r = self
                    .journey
                    .as_ref()
                    .map(|j| self.journey_view(j))
                    .ok_or(NodeError::Circle(CircleRefusal::NoJourney));
                let _ = reply.send(r);
            }
            CircleCommand::Arrived { code, reply } => {
                let r = self.end_journey(swarm, Ending::Arrived, code.as_deref(), location);
                let _ = reply.send(r);
            }
            CircleCommand::CancelJourney { code, reply } => {
                let r = self.end_journey(swarm, Ending::Cancelled, code.as_deref(), location);
                let _ = reply.send(r);
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
            CircleCommand::CancelSos { code, reply } => {
                let _ = reply.send(self.cancel_sos(swarm, code.as_deref()));
            }
            CircleCommand::SetCodes {
                code,
                duress_code,
                current,
                reply,
            } => {
                let _ = reply.send(self.set_codes(&code, &duress_code, current.as_deref()));
            }
            CircleCommand::ClearCodes { current, reply } => {
                let _ = reply.send(self.clear_codes(&current));
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
            CircleCommand::SetPush { endpoint, reply } => {
                let _ = reply.send(self.set_push_endpoint(endpoint));
            }
            CircleCommand::Wake { reply } => self.wake(swarm, reply),
        }
    }

    /// The relays of the configured cities' verified directories: those
    /// with the mailbox or switch role replace the previous directory hosts
    /// (the configured hosts stay, and keep their place as the person's own
    /// choice). Entries whose peer id or addresses do not parse are skipped.
    pub(crate) fn set_directory_hosts(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[RelayEntry],
    ) {
        let mut fresh: BTreeMap<PeerId, (Vec<Multiaddr>, HostMeta)> = BTreeMap::new();
        for r in relays {
            let (mailbox, switch) = (
                r.roles.has(RelayRoles::MAILBOX),
                r.roles.has(RelayRoles::SWITCH),
            );
            if !mailbox && !switch {
                continue;
            }
            let Ok(peer) = PeerId::from_bytes(&r.peer) else {
                continue;
            };
            if peer == self.local_peer || fresh.contains_key(&peer) {
                continue;
            }
            let addrs: Vec<Multiaddr> = r
                .addrs
                .iter()
                .filter_map(|a| a.parse().ok())
                .take(MAX_HOST_ADDRS)
                .collect();
            let meta = HostMeta {
                operator: Some(r.operator.clone()),
                mailbox,
                switch,
            };
            fresh.insert(peer, (addrs, meta));
        }
        // Drop the directory hosts no longer listed.
        let gone: Vec<PeerId> = self
            .host_meta
            .iter()
            .filter(|(p, m)| m.operator.is_some() && !fresh.contains_key(p))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.host_meta.remove(&p);
            self.hosts.remove(&p);
        }
        let mut added = Vec::new();
        for (peer, (addrs, meta)) in fresh {
            if self
                .host_meta
                .get(&peer)
                .is_some_and(|m| m.operator.is_none())
            {
                continue;
            }
            if self.host_meta.insert(peer, meta).is_none() {
                added.push(peer);
            }
            self.hosts.insert(peer, addrs);
        }
        // Suspended, a new host is used at the next wake-up or poll.
        if !added.is_empty() && !self.suspended {
            tracing::debug!(
                hosts = added.len(),
                "mailbox hosts listed in the city's directory"
            );
            for p in added {
                if self.host_meta.get(&p).is_some_and(|m| m.mailbox) {
                    self.fetch_all_days(p);
                }
            }
            self.retry_outbox(swarm, true);
            self.pump_switch();
        }
    }

    /// The operator a host counts as, for spreading a switch: the one the
    /// directory lists, or, for a host the person configured, itself.
    fn operator_of(&self, peer: &PeerId) -> String {
        match self.host_meta.get(peer).and_then(|m| m.operator.clone()) {
            Some(o) => format!("directory:{o}"),
            None => format!("own:{peer}"),
        }
    }

    /// A connection of the main swarm: retry what waits for a contact
    /// now reachable. (A host reached by the main swarm changes nothing:
    /// the circle's requests to hosts go over the day swarms, and asking
    /// them at the moment the main swarm connects would tie the two.)
    pub(crate) fn on_connected(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        if self.learned.values().any(|p| *p == peer) {
            self.retry_outbox(swarm, true);
        }
    }

    /// The next event of the circle's day swarms, for the event loop.
    pub(crate) async fn next_net_event(&mut self) -> NetEvent {
        self.net.next().await
    }

    /// A first connection of `day`'s swarm to a host: fetch that day's
    /// mail there, retry what waits.
    fn on_host_connected(&mut self, swarm: &mut Swarm<Behaviour>, day: u64, peer: PeerId) {
        if let Some(meta) = self.host_meta.get(&peer) {
            // Only a host that takes mail learns this person's mailboxes.
            if meta.mailbox {
                self.fetch_from(day, peer);
            }
            self.switch_retry_at.remove(&peer);
            self.retry_outbox(swarm, true);
            self.pump_switch();
        }
    }

    /// The days whose swarms are still of use: today's, those with
    /// mailboxes to poll, those of a switch still held or being tended.
    fn days_in_use(&self) -> BTreeSet<u64> {
        let mut days: BTreeSet<u64> = self.keys_to_poll().into_iter().map(|(d, _)| d).collect();
        days.insert(epoch_of(self.clock.now()));
        days.extend(self.switch_days());
        days
    }

    /// Drop the day swarms no longer of use; what was under way on them
    /// counts as failed (and is retried on today's).
    fn retire_days(&mut self, swarm: &mut Swarm<Behaviour>) {
        let keep = self.days_in_use();
        let gone = self.net.retain(&keep);
        if gone.is_empty() {
            return;
        }
        tracing::debug!(days = gone.len(), "circle connections of a past day closed");
        let lost: Vec<NetRequest> = self
            .mailbox_inflight
            .keys()
            .filter(|r| gone.contains(&r.net))
            .copied()
            .collect();
        for r in lost {
            if let Some(ask) = self.mailbox_inflight.remove(&r) {
                let host = match &ask {
                    MailboxAsk::Challenge { host, .. }
                    | MailboxAsk::Fetch { host, .. }
                    | MailboxAsk::Ack { host, .. }
                    | MailboxAsk::Push { host, .. }
                    | MailboxAsk::Switch { host, .. } => *host,
                    MailboxAsk::Put { .. } => self.local_peer,
                };
                self.mailbox_answer(swarm, host, ask, None);
            }
        }
    }

    /// Time passed: journey and SOS deadlines, switches, retries.
    pub(crate) fn tick(&mut self, swarm: &mut Swarm<Behaviour>, location: Option<(f64, f64)>) {
        let now = self.clock.now();
        self.short_tick(now);
        self.poll_later();
        self.close_when_quiet();
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
                            tracing::debug!("journey overdue: the circle was alerted")
                        }
                        JourneyState::Expired => {
                            tracing::debug!("journey reached the 8-hour cap: sharing stopped")
                        }
                        _ => {}
                    }
                }
            }
            if let Some(mut rec) = self.journey.clone() {
                let added = match rec.switch.as_mut() {
                    Some(plan) if plan.active_hosts() < SWITCH_HOSTS && !self.hosts.is_empty() => {
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
        self.pump_switch();
        if !self.suspended {
            self.retry_outbox(swarm, false);
        }
        self.wake_progress();
        if now >= self.last_housekeeping + HOUSEKEEPING_SECS {
            self.last_housekeeping = now;
            self.retire_days(swarm);
            self.watch.prune(now);
            match self.forget_old_positions(now) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(items = n, "inbox positions past their retention deleted"),
                Err(e) => tracing::error!(error = %e, "could not delete old inbox positions"),
            }
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
