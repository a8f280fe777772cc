//! The event loop's side of [`crate::lifecycle`]: leaving the gossip and
//! all connections but one when the app goes to the background (all of
//! them when suspended, or in the background once push can wake the
//! phone), coming back when it returns.
//!
//! A child module of the event loop, so that it works on the loop's state
//! directly (its areas, bootstrap peers and relay) without widening them.

use libp2p::{Multiaddr, PeerId};
use ronde_protocol::Area;

use super::{split_peer, EventLoop};
use crate::error::NodeError;
use crate::lifecycle::{Lifecycle, LifecycleView};

/// The lifecycle state the loop keeps.
pub(super) struct Background {
    mode: Lifecycle,
    /// The areas followed when the node went to the background.
    saved_areas: Vec<Area>,
    /// The one peer whose connection is kept in the background.
    kept: Option<PeerId>,
    /// The configured mailbox hosts, preferred as the kept peer: the
    /// circle's mail comes from them.
    mailbox_peers: Vec<(PeerId, Multiaddr)>,
}

impl Background {
    /// Whether the app is in the foreground (the node does its full work).
    pub(super) fn is_foreground(&self) -> bool {
        self.mode == Lifecycle::Foreground
    }

    pub(super) fn new(mailbox_peers: &[Multiaddr]) -> Background {
        Background {
            mode: Lifecycle::Foreground,
            saved_areas: Vec::new(),
            kept: None,
            mailbox_peers: mailbox_peers
                .iter()
                .filter_map(|a| match split_peer(a) {
                    (base, Some(p)) => Some((p, base)),
                    _ => None,
                })
                .collect(),
        }
    }

    /// In the background or suspended: no gossip.
    pub(super) fn is_background(&self) -> bool {
        self.mode != Lifecycle::Foreground
    }
}

impl EventLoop {
    /// Switch to `mode` (nothing to do if already in it).
    pub(super) fn set_lifecycle(&mut self, mode: Lifecycle) -> Result<LifecycleView, NodeError> {
        use Lifecycle::{Background as B, Foreground as F, Suspended as S};
        match (self.background.mode, mode) {
            (F, B) => self.enter_background()?,
            (F, S) => {
                self.enter_background()?;
                self.enter_suspended();
            }
            (B, S) => self.enter_suspended(),
            (S, B) => {
                self.background.mode = B;
                self.circle.resume(&mut self.swarm);
                self.background.kept = self.kept_peer_unless_push();
            }
            (B | S, F) => {
                self.circle.resume(&mut self.swarm);
                self.enter_foreground()?;
            }
            _ => {}
        }
        Ok(self.lifecycle_view())
    }

    /// From the background: close the kept connection too, and the
    /// circle's; stop polling.
    fn enter_suspended(&mut self) {
        self.background.mode = Lifecycle::Suspended;
        self.background.kept = None;
        let closed = self.close_connections_but(None);
        self.circle.suspend();
        tracing::info!(closed, "suspended: every connection closed");
    }

    fn lifecycle_view(&self) -> LifecycleView {
        LifecycleView {
            lifecycle: self.background.mode,
            areas: self.areas.len(),
            connected_peers: self.swarm.connected_peers().count(),
            kept_peer: self.background.kept.map(|p| p.to_string()),
            circle_connections: self.circle.circle_connections(),
        }
    }

    fn enter_background(&mut self) -> Result<(), NodeError> {
        let saved = self.areas.clone();
        self.set_areas(Vec::new(), self.location)?;
        self.background.saved_areas = saved;
        self.background.mode = Lifecycle::Background;
        self.circle.set_background(true);
        let kept = self.kept_peer_unless_push();
        self.background.kept = kept;
        let closed = self.close_connections_but(kept);
        tracing::info!(
            closed,
            kept = kept.is_some(),
            "background: gossip left, connections closed"
        );
        Ok(())
    }

    /// Close the main swarm's connections to every peer but `kept`; how
    /// many peers that was.
    fn close_connections_but(&mut self, kept: Option<PeerId>) -> usize {
        let others: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| Some(**p) != kept)
            .copied()
            .collect();
        for peer in &others {
            let _ = self.swarm.disconnect_peer_id(*peer);
        }
        others.len()
    }

    /// The peer to keep in the background: none once push can wake the
    /// phone (its mail is fetched when woken), else [`Self::choose_kept_peer`].
    fn kept_peer_unless_push(&mut self) -> Option<PeerId> {
        if self.circle.push_covers() {
            None
        } else {
            self.choose_kept_peer()
        }
    }

    /// On the circle's timer, in the background: drop the kept peer once
    /// the push registration is confirmed (it may come after the switch),
    /// take one again if push no longer covers the day's mailboxes.
    pub(super) fn background_tick(&mut self) {
        if self.background.mode != Lifecycle::Background {
            return;
        }
        let push = self.circle.push_covers();
        match self.background.kept {
            Some(_) if push => {
                self.background.kept = None;
                self.close_connections_but(None);
                tracing::info!("background: push registered, no connection kept");
            }
            None if !push => {
                self.background.kept = self.choose_kept_peer();
                if self.background.kept.is_some() {
                    tracing::info!("background: push not registered, one connection kept");
                }
            }
            _ => {}
        }
    }

    /// A mailbox host, else the relay, else a bootstrap peer: connected
    /// ones first; if none is connected, the first one known is dialled.
    fn choose_kept_peer(&mut self) -> Option<PeerId> {
        let relay = self.reach.relay_peer();
        let mut candidates: Vec<(PeerId, Option<Multiaddr>)> = self
            .background
            .mailbox_peers
            .iter()
            .map(|(p, a)| (*p, Some(a.clone())))
            .collect();
        if let Some(r) = relay {
            candidates.push((r, self.bootstrap_peers.get(&r).cloned()));
        }
        let mut boot: Vec<(PeerId, Multiaddr)> = self
            .bootstrap_peers
            .iter()
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        boot.sort_by_key(|(p, _)| p.to_bytes());
        candidates.extend(boot.into_iter().map(|(p, a)| (p, Some(a))));
        if let Some((p, _)) = candidates.iter().find(|(p, _)| self.swarm.is_connected(p)) {
            return Some(*p);
        }
        let (peer, addr) = candidates.into_iter().find(|(_, a)| a.is_some())?;
        let addr = addr?;
        if let Err(e) = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a)) {
            tracing::debug!(error = %e, "background: could not dial the kept peer");
        }
        Some(peer)
    }

    fn enter_foreground(&mut self) -> Result<(), NodeError> {
        self.background.mode = Lifecycle::Foreground;
        self.background.kept = None;
        self.circle.set_background(false);
        let areas = std::mem::take(&mut self.background.saved_areas);
        // Following the areas again asks the peers that follow them for
        // their live reports (the sync), here and as peers reconnect.
        self.set_areas(areas, self.location)?;
        let boot: Vec<(PeerId, Multiaddr)> = self
            .bootstrap_peers
            .iter()
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (peer, addr) in boot {
            if !self.swarm.is_connected(&peer) {
                let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
            }
        }
        if !self.bootstrap_peers.is_empty() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        tracing::info!("foreground: areas followed again");
        Ok(())
    }

    /// `set_areas` as the lifecycle allows: in the background the areas
    /// (and the location) are remembered for the return to the foreground,
    /// not followed. Returns the areas that will be followed.
    pub(super) fn set_areas_in_lifecycle(
        &mut self,
        areas: Vec<Area>,
        location: Option<(f64, f64)>,
    ) -> Result<Vec<Area>, NodeError> {
        if !self.background.is_background() {
            return self.set_areas(areas, location);
        }
        let mut wanted: Vec<Area> = Vec::new();
        for a in areas {
            if !wanted.contains(&a) {
                wanted.push(a);
            }
        }
        if wanted.len() > self.max_areas {
            return Err(NodeError::InvalidInput(format!(
                "{} areas asked, this node follows at most {}",
                wanted.len(),
                self.max_areas
            )));
        }
        self.background.saved_areas = wanted.clone();
        if location.is_some() {
            self.location = location;
        }
        Ok(wanted)
    }

    /// A connection to `peer` opened: in the background, close it unless
    /// it is the kept peer's. Returns whether it was closed.
    pub(super) fn background_refuses(&mut self, peer: PeerId) -> bool {
        if !self.background.is_background() || self.background.kept == Some(peer) {
            return false;
        }
        let _ = self.swarm.disconnect_peer_id(peer);
        true
    }
}
