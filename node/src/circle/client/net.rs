//! The circle's own connections to mailbox and switch hosts: one minimal
//! libp2p swarm per UTC day (the transport, Noise, Yamux and the client
//! side of `/ronde/mailbox/1`, nothing else), each with an ed25519
//! identity made at random when that day's first request goes out, never
//! derived from a long-term key, never stored, and dropped with its
//! connections once nothing of that day is left to fetch or to tend.
//!
//! Every request that names a day's mailboxes (fetch, acknowledgement,
//! put, the deposit of a switch whose alerts go to them, its heartbeats
//! and withdrawal) goes over that day's swarm only, so a host sees each
//! day's mailboxes asked by a different peer id on different connections:
//! nothing it logs joins a pair's mailboxes of one day to the next, nor to
//! the peer id that publishes reports (the node's main swarm, which keeps
//! gossip, the stem, direct circle delivery and the host side).
//!
//! The swarms are outbound only: they listen nowhere and announce nothing
//! (no identify, no Kademlia), and use no relay circuit (hosts are city
//! relays reachable directly, or peers configured with their addresses).
//! What is left to link them is the network: see docs/threat-model.md.

use std::collections::{BTreeMap, BTreeSet};
use std::task::Poll;
use std::time::Duration;

use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm, Transport};

use crate::circle::wire::{MailboxCodec, MailboxRequest, MailboxResponse, MailboxWire};
use crate::codec;
use crate::config::{NodeConfig, SimTransportFactory};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The behaviour of a day's swarm: the client of `/ronde/mailbox/1`.
type MailboxClient = request_response::Behaviour<MailboxCodec>;

/// Most requests under way at once on one of a day's connections.
const MAX_STREAMS: usize = 32;

/// A request sent over one of the day swarms: the swarm's number (unique
/// for the node's life, so that two swarms' request ids never mix) and the
/// request's id in that swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NetRequest {
    pub(crate) net: u64,
    id: OutboundRequestId,
}

/// What the day swarms report to the circle client.
pub(crate) enum NetEvent {
    /// A host answered (`None`: the request failed).
    Answer {
        request: NetRequest,
        peer: PeerId,
        response: Option<MailboxResponse>,
    },
    /// A first connection of `day`'s swarm to `peer`.
    Connected { day: u64, peer: PeerId },
}

/// How the day swarms reach the network: like the main swarm (memory in
/// tests, the injected transport in simulations, else TCP and QUIC with
/// DNS).
#[derive(Clone)]
pub(crate) struct NetSettings {
    memory: bool,
    sim: Option<SimTransportFactory>,
    idle_timeout: Duration,
    request_timeout: Duration,
}

impl NetSettings {
    pub(crate) fn of(config: &NodeConfig) -> NetSettings {
        NetSettings {
            memory: config.memory_transport,
            sim: config.sim_transport.clone(),
            idle_timeout: config.idle_timeout,
            request_timeout: config.circle.request_timeout,
        }
    }
}

struct Day {
    net: u64,
    swarm: Swarm<MailboxClient>,
}

/// The day swarms (see the module doc).
pub(crate) struct CircleNet {
    settings: NetSettings,
    days: BTreeMap<u64, Day>,
    next_net: u64,
}

impl CircleNet {
    pub(crate) fn new(settings: NetSettings) -> CircleNet {
        CircleNet {
            settings,
            days: BTreeMap::new(),
            next_net: 0,
        }
    }

    /// `day`'s swarm, made (with a fresh identity) if there is none.
    fn day(&mut self, day: u64) -> Option<&mut Day> {
        if !self.days.contains_key(&day) {
            match build(&self.settings) {
                Ok(swarm) => {
                    self.next_net += 1;
                    let net = self.next_net;
                    self.days.insert(day, Day { net, swarm });
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not make the circle's connections");
                    return None;
                }
            }
        }
        self.days.get_mut(&day)
    }

    /// The peer id `day`'s requests go out with (its swarm is made if
    /// needed): what a fetch or an acknowledgement proves its keys for.
    pub(crate) fn peer_id(&mut self, day: u64) -> Option<PeerId> {
        self.day(day).map(|d| *d.swarm.local_peer_id())
    }

    /// Send `request` to `host` (dialled at `addrs` if not connected) over
    /// `day`'s swarm. `None` if that swarm could not be made.
    pub(crate) fn send(
        &mut self,
        day: u64,
        host: &PeerId,
        addrs: Vec<Multiaddr>,
        request: MailboxRequest,
    ) -> Option<NetRequest> {
        let d = self.day(day)?;
        let id = d
            .swarm
            .behaviour_mut()
            .send_request_with_addresses(host, request, addrs);
        Some(NetRequest { net: d.net, id })
    }

    /// Close every connection of every day (the identities stay);
    /// requests under way fail.
    pub(crate) fn disconnect_all(&mut self) {
        for d in self.days.values_mut() {
            let peers: Vec<PeerId> = d.swarm.connected_peers().copied().collect();
            for p in peers {
                let _ = d.swarm.disconnect_peer_id(p);
            }
        }
    }

    /// Peers connected over any day's connections.
    pub(crate) fn connected(&self) -> usize {
        self.days
            .values()
            .map(|d| d.swarm.connected_peers().count())
            .sum()
    }

    /// The days that have a swarm.
    #[cfg(test)]
    fn days(&self) -> BTreeSet<u64> {
        self.days.keys().copied().collect()
    }

    /// Drop the swarms of the days not in `keep`, closing their
    /// connections; returns their numbers (their requests under way will
    /// never be answered).
    pub(crate) fn retain(&mut self, keep: &BTreeSet<u64>) -> Vec<u64> {
        let gone: Vec<u64> = self
            .days
            .keys()
            .filter(|d| !keep.contains(d))
            .copied()
            .collect();
        gone.into_iter()
            .filter_map(|d| self.days.remove(&d))
            .map(|d| d.net)
            .collect()
    }

    /// The next event of any day swarm (never, while there is none).
    pub(crate) async fn next(&mut self) -> NetEvent {
        use futures::StreamExt;
        std::future::poll_fn(|cx| {
            for (day, d) in self.days.iter_mut() {
                while let Poll::Ready(Some(ev)) = d.swarm.poll_next_unpin(cx) {
                    if let Some(ev) = net_event(*day, d.net, ev) {
                        return Poll::Ready(ev);
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}

fn net_event(
    day: u64,
    net: u64,
    ev: SwarmEvent<request_response::Event<MailboxRequest, MailboxResponse>>,
) -> Option<NetEvent> {
    match ev {
        SwarmEvent::Behaviour(request_response::Event::Message {
            peer,
            message:
                request_response::Message::Response {
                    request_id,
                    response,
                },
            ..
        }) => Some(NetEvent::Answer {
            request: NetRequest {
                net,
                id: request_id,
            },
            peer,
            response: Some(response),
        }),
        SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        }) => {
            tracing::debug!(%peer, %error, "mailbox request failed");
            Some(NetEvent::Answer {
                request: NetRequest {
                    net,
                    id: request_id,
                },
                peer,
                response: None,
            })
        }
        SwarmEvent::ConnectionEstablished {
            peer_id,
            num_established,
            ..
        } if num_established.get() == 1 => Some(NetEvent::Connected { day, peer: peer_id }),
        other => {
            tracing::trace!(event = ?other, "circle connection event");
            None
        }
    }
}

/// A day's swarm, with a fresh random identity.
fn build(settings: &NetSettings) -> Result<Swarm<MailboxClient>, BoxError> {
    let keypair = Keypair::generate_ed25519();
    let timeout = settings.request_timeout;
    let behaviour = move |_: &Keypair| {
        codec::behaviour::<MailboxWire>(
            ProtocolSupport::Outbound,
            request_response::Config::default()
                .with_request_timeout(timeout)
                .with_max_concurrent_streams(MAX_STREAMS),
        )
    };
    let idle = settings.idle_timeout;
    let swarm = if let Some(factory) = &settings.sim {
        libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| factory.upgraded(key))?
            .with_behaviour(behaviour)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    } else if settings.memory {
        libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| -> Result<_, BoxError> {
                Ok(MemoryTransport::default()
                    .upgrade(upgrade::Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()))
            })?
            .with_behaviour(behaviour)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    } else {
        let builder = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?;
        // QUIC besides TCP, as the main swarm (`behaviour::build_swarm`).
        #[cfg(feature = "quic")]
        let builder = builder.with_quic();
        builder
            .with_dns()?
            .with_behaviour(behaviour)?
            .with_swarm_config(|c| crate::config::swarm_config(c, idle))
            .build()
    };
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> NetSettings {
        NetSettings {
            memory: true,
            sim: None,
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn each_day_has_its_own_identity_and_drops_it() {
        let mut net = CircleNet::new(settings());
        let d1 = net.peer_id(1).expect("day 1");
        let d2 = net.peer_id(2).expect("day 2");
        assert_ne!(d1, d2);
        assert_eq!(net.peer_id(1), Some(d1), "one identity a day");
        assert_eq!(net.retain(&BTreeSet::from([2])).len(), 1);
        assert_eq!(net.days(), BTreeSet::from([2]));
        // Made again, a day's identity is a new one: none is kept.
        assert_ne!(net.peer_id(1), Some(d1));
    }
}
