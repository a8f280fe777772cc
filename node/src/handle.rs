//! The public face of a running node: [`Node`], a cheap cloneable handle.
//!
//! Every method sends a command, with a one-shot reply channel, over a
//! bounded queue to the event loop ([`crate::event_loop`]) that owns the
//! swarm and the store, and waits for the answer. Work that is slow but
//! needs neither (sealing a report: the proof of work) runs on a blocking
//! thread first, so the event loop never stalls.
//!
//! Once the node is shut down (or every handle is dropped) every method
//! returns [`NodeError::Stopped`].

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use ronde_protocol::{
    cell_for, topics_around, Area, Category, Cell, Draft, ReportId, VerifiedReport,
    DEFAULT_CELL_PRECISION,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::event_loop::{self, Command};

/// A handle to a running node. Clones share the same node.
#[derive(Clone)]
pub struct Node {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    peer_id: PeerId,
    clock: Arc<dyn Clock>,
    difficulty: u8,
}

/// What [`Node::status`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This node's libp2p identity (fresh at every start).
    pub peer_id: String,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Number of peers with at least one open connection.
    pub connected_peers: usize,
    /// Areas (geohash precision 5) whose reports the node follows.
    pub areas: Vec<String>,
    /// Reports currently in the store (live ones; expired ones are
    /// purged periodically and never served).
    pub stored_reports: usize,
}

/// What [`Node::report`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The id of the new report.
    pub id: ReportId,
    /// The cell it names.
    pub cell: Cell,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// `true` if it was sent to at least one peer; `false` if no peer
    /// follows its area yet: it is then queued (on disk) and sent as soon as
    /// one does, until it expires.
    pub published: bool,
}

/// A live report as shown to the app.
#[derive(Debug, Clone, Serialize)]
pub struct NearbyReport {
    /// Report id.
    pub id: ReportId,
    /// What happened.
    pub category: Category,
    /// Where (geohash cell).
    pub cell: Cell,
    /// Centre of the cell, `[lat, lon]`.
    pub center: [f64; 2],
    /// When it was observed, Unix seconds.
    pub observed_at: u64,
    /// When it stops being visible, Unix seconds.
    pub expires_at: u64,
    /// Seconds since it was observed.
    pub age_secs: u64,
    /// Metres from the query point (for [`NodeEvent`]s: from the node's
    /// current location, or 0 if none is set) to the nearest point of the
    /// cell.
    pub distance_m: f64,
}

/// Number of live reports in one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellCount {
    /// The cell.
    pub cell: Cell,
    /// Its centre, `[lat, lon]`.
    pub center: [f64; 2],
    /// How many live reports name it.
    pub reports: usize,
}

/// What [`Node::nearby`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct Nearby {
    /// Live reports within the radius, newest first.
    pub reports: Vec<NearbyReport>,
    /// The same reports counted per cell, most reports first.
    pub cells: Vec<CellCount>,
}

/// Something the node tells its subscribers about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A new live report was stored (received from a peer or made here).
    Report(NearbyReport),
}

impl Node {
    /// Open the store, build the swarm, listen, dial the bootstrap peers,
    /// follow the areas around `config.location` if set, and spawn the
    /// event loop. Must be called inside a Tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let clock = config.clock.clone();
        let difficulty = config.difficulty;
        let (commands, events, peer_id) = event_loop::spawn(config).await?;
        Ok(Node {
            commands,
            events,
            peer_id,
            clock,
            difficulty,
        })
    }

    /// This node's libp2p identity.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }

    /// Identity, addresses, peers, areas and store size.
    pub async fn status(&self) -> Result<Status, NodeError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Follow the areas around a point (its own and the 8 around it) and
    /// stop following any other. Returns the areas now followed.
    pub async fn set_location(&self, lat: f64, lon: f64) -> Result<Vec<Area>, NodeError> {
        let areas = topics_around(lat, lon)?;
        self.call(|reply| Command::SetAreas {
            areas,
            location: Some((lat, lon)),
            reply,
        })
        .await
    }

    /// Follow exactly these areas (at most `max_areas`), e.g. for a relay
    /// that covers a whole city. Returns the areas now followed.
    pub async fn set_areas(&self, areas: Vec<Area>) -> Result<Vec<Area>, NodeError> {
        self.call(|reply| Command::SetAreas {
            areas,
            location: None,
            reply,
        })
        .await
    }

    /// Make a report at a point: seal it (proof of work, off the event
    /// loop), store it, publish it. `precision` is the cell precision, 7
    /// (about 150 m, the default) or 6 (about 1 km).
    pub async fn report(
        &self,
        category: Category,
        lat: f64,
        lon: f64,
        precision: Option<u8>,
    ) -> Result<Published, NodeError> {
        let cell = cell_for(lat, lon, precision.unwrap_or(DEFAULT_CELL_PRECISION))?;
        let draft = Draft::new(category, cell, self.clock.now());
        let difficulty = self.difficulty;
        let report = tokio::task::spawn_blocking(move || {
            let mut rng = rand::rngs::OsRng;
            draft.seal(difficulty, &mut rng)
        })
        .await
        .map_err(|e| NodeError::Transport(format!("sealing task failed: {e}")))??;
        let report = VerifiedReport::from_trusted_bytes(report.to_bytes())
            .map_err(|e| NodeError::InvalidInput(format!("sealed report does not parse: {e}")))?;
        self.call(|reply| Command::Publish { report, reply }).await
    }

    /// Live reports whose cell is within `radius_m` metres of a point,
    /// newest first, with per-cell counts.
    pub async fn nearby(&self, lat: f64, lon: f64, radius_m: f64) -> Result<Nearby, NodeError> {
        // Checks the coordinates (a GeoError) before the radius.
        ronde_protocol::area_of(lat, lon)?;
        if !radius_m.is_finite() || radius_m < 0.0 {
            return Err(NodeError::InvalidInput(format!(
                "radius {radius_m} is not a non-negative number of metres"
            )));
        }
        self.call(|reply| Command::Nearby {
            lat,
            lon,
            radius_m,
            reply,
        })
        .await
    }

    /// New live reports, as they are stored. A receiver that falls more
    /// than 256 events behind loses the oldest ones (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Dial a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.call(|reply| Command::Dial { addr, reply }).await
    }

    /// The addresses the node actually listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// The peers with at least one open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Peers known to follow an area (from their gossipsub subscriptions).
    pub async fn peers_in_area(&self, area: Area) -> Result<Vec<PeerId>, NodeError> {
        self.call(|reply| Command::PeersInArea { area, reply })
            .await
    }

    /// A peer's gossipsub score at this node (`None` if unknown). Below
    /// [`crate::behaviour::GRAYLIST_THRESHOLD`] everything it sends is
    /// ignored.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NodeError> {
        self.call(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Number of reports waiting for a peer to follow their area.
    pub async fn pending_reports(&self) -> Result<usize, NodeError> {
        self.call(|reply| Command::PendingCount { reply }).await
    }

    /// Stop the node: close connections, flush the store to disk, end the
    /// event loop. Other handles then get [`NodeError::Stopped`].
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
