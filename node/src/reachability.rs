//! Whether this node is reachable from outside, and the relay circuit that
//! follows from it.
//!
//! rust-libp2p has no auto-relay: listening through a relay is the node's
//! decision. A node reserves a circuit on a relay only when AutoNAT says
//! it is private, and releases it when AutoNAT finds it reachable:
//!
//! * **Public**: at least one of its own (non-relayed) addresses was
//!   confirmed as external (an AutoNAT v2 dial-back succeeded, or the
//!   address was configured). No circuit is held; one held is released.
//! * **Private**: an AutoNAT v2 test of an address failed and no address
//!   is confirmed. A circuit is reserved on the relay (the first bootstrap
//!   peer that identified itself as a circuit relay), and reserved again
//!   if its listener closes (the relay went away, the phone changed
//!   network), at most once per [`RETRY_AFTER`] unless the closing was
//!   just noticed.
//! * **Unknown** (no verdict yet): nothing is reserved, for at most
//!   [`NO_VERDICT_AFTER`] after the relay is known; then the node assumes
//!   it is private (behind a router that drops unasked packets, AutoNAT's
//!   dial-back times out rather than fails).
//!
//! When one of the node's own listen addresses goes away while it holds a
//! circuit (it changed network), the connection to the relay is dropped at
//! once, so the circuit is reserved again over the new network within
//! seconds rather than after a ping timeout.
//!
//! Nodes that are relays, have configured external addresses or are
//! configured directly reachable are public from the start, whatever
//! AutoNAT says later. Renewals of a reservation are libp2p's (on the same
//! connection, before it expires); this module only logs them, so that a
//! renewal can be told from a new reservation (churn). The verdicts and
//! the reservations are logged at info level; the relay server's
//! reservation events at debug level. No address is logged.
//!
//! The other side of a phone that changed network is [`MovedPeers`]: its
//! old connection is dead but not closed (its FIN never left), and
//! gossipsub sends to a peer over its first connection, so everything
//! would go into the dead one until TCP gives up (minutes). When a peer
//! connects to us anew from another IP address, all its connections are
//! closed, the new one too, and it reconnects (its circuit listener, or
//! its bootstrap, dials again at once). Closing only the old ones left
//! gossip half-wired: the phone had dropped its side of the old connection
//! and with it our area subscriptions, while gossipsub here saw the new
//! connection as a second one and never sent them again, so the phone
//! knew no peer in its areas and a report to it arrived in 1 run of 2. A
//! fresh connection is a first connection on both sides: subscriptions
//! are exchanged and the meshes grafted again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, dcutr, relay, Multiaddr, PeerId, Swarm};

use crate::behaviour::Behaviour;

/// The least time between two reservation attempts.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long a phone that knows a relay waits for AutoNAT's first verdict
/// before it assumes it is private: behind a router that drops unasked
/// packets, the dial-back is not refused but times out, and a phone
/// unreachable until then would miss its circle's alerts.
pub const NO_VERDICT_AFTER: Duration = Duration::from_secs(15);

/// The relay-hop protocol a circuit relay v2 server announces.
const HOP: libp2p::StreamProtocol = libp2p::StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");

/// What the node knows of its own reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No verdict yet.
    Unknown,
    /// Not reachable from outside: a circuit is needed.
    Private,
    /// Reachable from outside: no circuit.
    Public,
}

/// The verdict and the circuit. See the module doc.
pub(crate) struct Reachability {
    verdict: Verdict,
    /// Public by configuration: AutoNAT's verdicts do not change it (on
    /// the memory transport every dial-back fails).
    configured_public: bool,
    /// Confirmed external addresses that are not relayed.
    confirmed: Vec<Multiaddr>,
    /// The relay to reserve on, with the address it was bootstrapped at.
    relay: Option<(PeerId, Multiaddr)>,
    /// When the relay became known.
    relay_since: Option<Instant>,
    /// The circuit listener, while there is one.
    listener: Option<ListenerId>,
    last_attempt: Option<Instant>,
}

fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

impl Reachability {
    /// `public`: a relay, or a node with configured external addresses.
    pub(crate) fn new(public: bool) -> Reachability {
        Reachability {
            verdict: if public {
                Verdict::Public
            } else {
                Verdict::Unknown
            },
            configured_public: public,
            confirmed: Vec::new(),
            relay: None,
            relay_since: None,
            listener: None,
            last_attempt: None,
        }
    }

    /// A peer identified itself: if it is a circuit relay we bootstrapped
    /// from (`bootstrap_addr`), it becomes our relay.
    pub(crate) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        protocols: &[libp2p::StreamProtocol],
        bootstrap_addr: Option<&Multiaddr>,
    ) {
        if self.relay.is_some() || !protocols.contains(&HOP) {
            return;
        }
        let Some(addr) = bootstrap_addr else {
            return;
        };
        self.relay = Some((peer, addr.clone()));
        self.relay_since = Some(Instant::now());
        self.reconcile(swarm);
    }

    /// An AutoNAT v2 test ended.
    pub(crate) fn on_autonat(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: &autonat::v2::client::Event,
    ) {
        match &event.result {
            Ok(()) => {
                tracing::debug!(server = %event.server, "an address of ours is reachable");
                // The confirmation itself arrives as `ExternalAddrConfirmed`.
            }
            Err(e) => {
                tracing::debug!(server = %event.server, error = %e, "an address of ours is not reachable");
                if self.confirmed.is_empty() {
                    self.set(swarm, Verdict::Private);
                }
            }
        }
    }

    /// The swarm confirmed an external address.
    pub(crate) fn on_confirmed(&mut self, swarm: &mut Swarm<Behaviour>, addr: Multiaddr) {
        if is_relayed(&addr) {
            return;
        }
        if !self.confirmed.contains(&addr) {
            self.confirmed.push(addr);
        }
        self.set(swarm, Verdict::Public);
    }

    /// An external address expired.
    pub(crate) fn on_expired(&mut self, swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
        self.confirmed.retain(|a| a != addr);
        if self.confirmed.is_empty() && self.verdict == Verdict::Public {
            self.set(swarm, Verdict::Unknown);
        }
    }

    /// A listener closed: if it was the circuit, reserve again when still
    /// private.
    pub(crate) fn on_listener_closed(&mut self, swarm: &mut Swarm<Behaviour>, id: ListenerId) {
        if self.listener == Some(id) {
            tracing::info!("the relay circuit closed");
            self.listener = None;
            self.last_attempt = None;
            self.reconcile(swarm);
        }
    }

    /// One of our listen addresses went away (an interface went down: the
    /// phone left a Wi-Fi for cellular). The connections made over it are
    /// dead, but a ping timeout would take tens of seconds to notice: while
    /// holding a circuit, drop the connection to the relay now, so that the
    /// circuit closes and is reserved again over the new network.
    pub(crate) fn on_address_gone(&mut self, swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
        let loopback = addr.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback(),
            Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        });
        if is_relayed(addr) || loopback || self.listener.is_none() {
            return;
        }
        if let Some((peer, _)) = &self.relay {
            tracing::info!("a network went away: reconnecting to the relay");
            let _ = swarm.disconnect_peer_id(*peer);
        }
    }

    /// The relay client's events: reservations and their renewals.
    pub(crate) fn on_relay_client(&mut self, event: &relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                tracing::info!(relay = %relay_peer_id, renewal, "relay reservation accepted");
            }
            other => tracing::debug!(event = ?other, "relay client"),
        }
    }

    /// The relay this node reserves (or would reserve) a circuit on.
    pub(crate) fn relay_peer(&self) -> Option<PeerId> {
        self.relay.as_ref().map(|(p, _)| *p)
    }

    /// Periodic check: assume private after [`NO_VERDICT_AFTER`] without a
    /// verdict; retry a reservation that failed.
    pub(crate) fn tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let waited = self
            .relay_since
            .is_some_and(|t| t.elapsed() >= NO_VERDICT_AFTER);
        if self.verdict == Verdict::Unknown && waited {
            tracing::info!("no AutoNAT verdict yet: assuming private");
            self.set(swarm, Verdict::Private);
            return;
        }
        self.reconcile(swarm);
    }

    fn set(&mut self, swarm: &mut Swarm<Behaviour>, verdict: Verdict) {
        if self.configured_public {
            return;
        }
        if self.verdict != verdict {
            self.verdict = verdict;
            let name = match verdict {
                Verdict::Unknown => "unknown",
                Verdict::Private => "private",
                Verdict::Public => "public",
            };
            tracing::info!(reachability = name, "reachability changed");
        }
        self.reconcile(swarm);
    }

    /// Hold a circuit exactly when private and a relay is known.
    fn reconcile(&mut self, swarm: &mut Swarm<Behaviour>) {
        match (self.verdict, self.listener) {
            (Verdict::Private, None) => {
                let Some((peer, addr)) = self.relay.clone() else {
                    return;
                };
                if self.last_attempt.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                    return;
                }
                self.last_attempt = Some(Instant::now());
                let circuit = addr.with(Protocol::P2p(peer)).with(Protocol::P2pCircuit);
                match swarm.listen_on(circuit) {
                    Ok(id) => {
                        self.listener = Some(id);
                        tracing::info!(relay = %peer, "private: reserving a relay circuit");
                    }
                    Err(e) => tracing::debug!(error = %e, "could not listen through the relay"),
                }
            }
            (Verdict::Public, Some(id)) => {
                self.listener = None;
                swarm.remove_listener(id);
                tracing::info!("public: relay circuit released");
            }
            _ => {}
        }
    }
}

/// The relay server's events, for the logs (debug level).
pub(crate) fn on_relay_server(event: &relay::Event) {
    tracing::debug!(event = ?event, "relay server");
}

/// A hole punch (DCUtR) ended: logged at info level, with its outcome.
pub(crate) fn on_dcutr(event: &dcutr::Event) {
    match &event.result {
        Ok(_) => tracing::info!(peer = %event.remote_peer_id, "hole punch succeeded"),
        Err(e) => tracing::info!(peer = %event.remote_peer_id, error = %e, "hole punch failed"),
    }
}

/// Inbound connections by peer, with the IP address they came from. See
/// the module doc.
#[derive(Default)]
pub(crate) struct MovedPeers {
    inbound: HashMap<PeerId, Vec<(ConnectionId, IpAddr)>>,
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl MovedPeers {
    /// The IP address of `peer`'s direct inbound connection `id`, if known
    /// (a mailbox host bounds deposits per network with it).
    pub(crate) fn ip_of_connection(&self, peer: &PeerId, id: ConnectionId) -> Option<IpAddr> {
        self.inbound
            .get(peer)?
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, ip)| *ip)
    }

    /// A connection was established: if it is inbound, direct, and from
    /// another IP address than the peer's older inbound ones, close all
    /// the peer's connections.
    pub(crate) fn on_established(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let ConnectedPoint::Listener { send_back_addr, .. } = endpoint else {
            return;
        };
        if is_relayed(send_back_addr) {
            return;
        }
        let Some(ip) = ip_of(send_back_addr) else {
            return;
        };
        let known = self.inbound.entry(peer).or_default();
        if known.iter().all(|(_, old_ip)| *old_ip == ip) {
            known.push((id, ip));
            return;
        }
        // Every connection goes, the new one too: the peer reconnects
        // afresh (see the module doc).
        tracing::debug!(%peer, "the peer moved: closing its old connection and the new one");
        self.inbound.remove(&peer);
        let _ = swarm.disconnect_peer_id(peer);
    }

    /// A connection closed.
    pub(crate) fn on_closed(&mut self, peer: PeerId, id: ConnectionId) {
        if let Some(known) = self.inbound.get_mut(&peer) {
            known.retain(|(c, _)| *c != id);
            if known.is_empty() {
                self.inbound.remove(&peer);
            }
        }
    }
}
