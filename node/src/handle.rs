//! The public face of a running node: [`Node`], a cheap cloneable handle.
//!
//! Every method sends a command (`crate::command`), with a one-shot reply
//! channel, over a bounded queue to the event loop ([`crate::event_loop`])
//! that owns the swarm and the store, and waits for the answer (the answer
//! and event types are in [`crate::events`]). Work that is slow but
//! needs neither (sealing a report: the proof of work) runs on a blocking
//! thread first, so the event loop never stalls.
//!
//! Once the node is shut down (or every handle is dropped) every method
//! returns [`NodeError::Stopped`].

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use ronde_protocol::circle::short_invite::ShortCode;
use ronde_protocol::circle::StatesOnly;
use ronde_protocol::directory::{DirectoryPublicKey, Flag, FlagReason, PlaceId};
use ronde_protocol::{
    cell_for, topics_around, Area, Category, Draft, VerifiedReport, DEFAULT_CELL_PRECISION,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::circle::client::command::CircleCommand;
use crate::circle::views::{
    CircleStatus, CodesView, ContactList, ContactView, Inbox, InviteView, JourneyView, SosView,
};
use crate::circle::{CircleRefusal, SharedJourneys};
use crate::clock::Clock;
use crate::command::Command;
use crate::config::NodeConfig;
use crate::directory::service::DirectoryCommand;
use crate::directory::{DirectoryAnswer, DirectoryStats, FlagSent, SafePlaces};
use crate::error::NodeError;
use crate::event_loop;
use crate::events::{Nearby, NodeEvent, Published, Status};

/// A handle to a running node. Clones share the same node.
#[derive(Clone)]
pub struct Node {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    peer_id: PeerId,
    clock: Arc<dyn Clock>,
    difficulty: u8,
    flag_difficulty: u8,
    /// Unspent anonymous tokens, each with the seed of the one-time report
    /// key it is bound to (memory only: never written to disk).
    wallet: Arc<std::sync::Mutex<Vec<WalletToken>>>,
}

/// One unspent token and the seed of the report key it was blinded for.
struct WalletToken {
    seed: zeroize::Zeroizing<[u8; 32]>,
    token: ronde_protocol::token::Token,
    period: u64,
}

impl Node {
    /// Open the store, build the swarm, listen, dial the bootstrap peers,
    /// follow the areas around `config.location` if set, and spawn the
    /// event loop. Must be called inside a Tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let clock = config.clock.clone();
        let difficulty = config.difficulty;
        let flag_difficulty = config.flag_difficulty;
        let auto_tokens = config.auto_tokens.clone();
        let (commands, events, peer_id) = event_loop::spawn(config).await?;
        let node = Node {
            commands,
            events,
            peer_id,
            clock,
            difficulty,
            flag_difficulty,
            wallet: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        if let Some(auto) = auto_tokens {
            node.keep_wallet_filled(auto);
        }
        Ok(node)
    }

    /// Fill the token wallet by itself, once a day
    /// ([`crate::config::AutoTokens`]).
    /// The task holds the node weakly: it ends when the node stops or
    /// every handle is dropped, and never keeps the node alive.
    fn keep_wallet_filled(&self, auto: crate::config::AutoTokens) {
        let weak = self.commands.downgrade();
        let template = (
            self.events.clone(),
            self.peer_id,
            self.clock.clone(),
            self.difficulty,
            self.flag_difficulty,
            self.wallet.clone(),
        );
        tokio::spawn(async move {
            let mut wait = auto.check_every;
            // The day (token period) a batch was last received for.
            let mut filled: Option<u64> = None;
            loop {
                tokio::time::sleep(wait).await;
                wait = auto.check_every;
                let Some(commands) = weak.upgrade() else {
                    return;
                };
                let (events, peer_id, clock, difficulty, flag_difficulty, wallet) =
                    template.clone();
                let node = Node {
                    commands,
                    events,
                    peer_id,
                    clock,
                    difficulty,
                    flag_difficulty,
                    wallet,
                };
                // Once a day, whatever was spent since: a fetch must not
                // follow reports.
                let today = ronde_protocol::token::period_of(node.clock.now());
                if filled == Some(today) {
                    continue;
                }
                let issuers = match node.call(|reply| Command::TokenIssuers { reply }).await {
                    Ok(peers) => peers,
                    Err(NodeError::Stopped) => return,
                    Err(_) => continue,
                };
                // Any of them: each signs under the same city key.
                let Some(&relay) =
                    rand::seq::SliceRandom::choose(&issuers[..], &mut rand::thread_rng())
                else {
                    continue;
                };
                match node.fetch_tokens(relay, auto.batch, auto.difficulty).await {
                    Ok(n) if n > 0 => {
                        filled = Some(today);
                        tracing::debug!(n, "token wallet filled for the day");
                    }
                    Err(NodeError::Stopped) => return,
                    Ok(_) | Err(_) => {
                        tracing::debug!("no tokens this time; trying again later");
                        wait = auto.backoff;
                    }
                }
            }
        });
    }

    /// Ask `relay` for `count` (1..=24) anonymous tokens of today, under
    /// the city key of a directory this node holds, paying the issuance
    /// proof of work of `difficulty` bits (the relay's policy; 25 by
    /// default, about 10 s on a phone): draws a one-time report key per
    /// token, blinds, asks over `/ronde/token/1`, unblinds, and keeps the
    /// tokens in memory for [`Node::report`]. Returns how many it got.
    pub async fn fetch_tokens(
        &self,
        relay: PeerId,
        count: u8,
        difficulty: u8,
    ) -> Result<usize, NodeError> {
        use ronde_protocol::token::{blind, finalize, period_of, IssueRequest, IssueResponse};
        let now = self.clock.now();
        let keys = self.call(|reply| Command::TokenKeys { reply }).await?;
        let key = keys
            .keys()
            .iter()
            .find(|k| k.period_start() == period_of(now))
            .cloned()
            .ok_or_else(|| {
                NodeError::InvalidInput("no token key of today in a held directory".into())
            })?;
        let mut seeds = Vec::new();
        let mut pending = Vec::new();
        let mut blinded = Vec::new();
        for _ in 0..count {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed[..]);
            let pk = ronde_protocol::report::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes();
            let (p, b) = blind(&key, &pk, &mut rand::rngs::OsRng)
                .map_err(|e| NodeError::InvalidInput(format!("cannot blind a token: {e}")))?;
            seeds.push(seed);
            pending.push(p);
            blinded.push(b);
        }
        let mut request = IssueRequest {
            key_id: key.key_id(),
            proof: vec![],
            blinded,
        };
        // The issuance proof of work (docs/protocol.md §8.5), off the loop.
        let start = rand::random::<u64>();
        request = tokio::task::spawn_blocking(move || {
            request.proof = ronde_protocol::token::solve_issue_work(&request, difficulty, start);
            request
        })
        .await
        .map_err(|e| NodeError::Transport(format!("issuance work failed: {e}")))?;
        let IssueResponse::Issued(sigs) = self.request_tokens(relay, request).await? else {
            return Ok(0);
        };
        let mut got = Vec::new();
        for ((seed, p), s) in seeds.into_iter().zip(&pending).zip(&sigs) {
            if let Ok(token) = finalize(&key, p, s) {
                got.push(WalletToken {
                    seed,
                    token,
                    period: key.period_start(),
                });
            }
        }
        let n = got.len();
        if let Ok(mut w) = self.wallet.lock() {
            w.extend(got);
        }
        Ok(n)
    }

    /// How many unspent tokens of today this node holds.
    pub fn tokens_held(&self) -> usize {
        let today = ronde_protocol::token::period_of(self.clock.now());
        self.wallet
            .lock()
            .map(|w| w.iter().filter(|t| t.period == today).count())
            .unwrap_or(0)
    }

    fn take_token(&self) -> Option<WalletToken> {
        let today = ronde_protocol::token::period_of(self.clock.now());
        let mut w = self.wallet.lock().ok()?;
        w.retain(|t| t.period == today);
        w.pop()
    }

    /// This node's libp2p identity.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's current time (Unix seconds, from its clock).
    pub fn now(&self) -> u64 {
        self.clock.now()
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
        if let Some(t) = self.take_token() {
            // A token of today: no proof of work, and it counts in the
            // lower bound of people (docs/protocol.md §8.4).
            return self
                .report_with_token(category, lat, lon, precision, t.seed, t.token)
                .await;
        }
        let cell = cell_for(lat, lon, precision.unwrap_or(DEFAULT_CELL_PRECISION))?;
        let draft = Draft::new(category, cell, self.clock.now());
        // While the area is under flood, an untokened report needs more
        // work to be taken (docs/protocol.md §8.6).
        let area = cell.area();
        let needed = self
            .call(|reply| Command::RequiredDifficulty { area, reply })
            .await?;
        let difficulty = self.difficulty.max(needed);
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

    /// Make a report that spends an anonymous token instead of a proof of
    /// work (docs/protocol.md §8.5): sign it with the one-time key whose
    /// seed is `key_seed` (the key the token was blinded for), store it,
    /// publish it. The token wallet's way to report; the key is dropped
    /// with the seed.
    pub async fn report_with_token(
        &self,
        category: Category,
        lat: f64,
        lon: f64,
        precision: Option<u8>,
        key_seed: zeroize::Zeroizing<[u8; 32]>,
        token: ronde_protocol::token::Token,
    ) -> Result<Published, NodeError> {
        let cell = cell_for(lat, lon, precision.unwrap_or(DEFAULT_CELL_PRECISION))?;
        let draft = Draft::new(category, cell, self.clock.now());
        let key = ronde_protocol::report::SigningKey::from_bytes(&key_seed);
        let report = draft
            .seal_with_token(&key, token)
            .map_err(|e| NodeError::InvalidInput(format!("cannot spend this token: {e}")))?;
        let report = VerifiedReport::from_trusted_bytes(report.to_bytes())
            .map_err(|e| NodeError::InvalidInput(format!("sealed report does not parse: {e}")))?;
        self.call(|reply| Command::Publish { report, reply }).await
    }

    /// Ask `peer` (a city relay) for a batch of anonymous tokens over
    /// `/ronde/token/1` (docs/protocol.md §8.5): the request holds blinded
    /// messages and the issuance policy's proof; the answer, the blind
    /// signatures or why not.
    pub async fn request_tokens(
        &self,
        peer: libp2p::PeerId,
        request: ronde_protocol::token::IssueRequest,
    ) -> Result<ronde_protocol::token::IssueResponse, NodeError> {
        self.call(|reply| Command::RequestTokens {
            peer,
            request,
            reply,
        })
        .await
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

    async fn circle<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> CircleCommand,
    ) -> Result<T, NodeError> {
        self.call(|reply| Command::Circle(make(reply))).await
    }

    /// The circle's state: this node's public identity, contact and queue
    /// counts, mailbox hosts.
    pub async fn circle_status(&self) -> Result<CircleStatus, NodeError> {
        self.circle(|reply| CircleCommand::Status { reply }).await
    }

    /// Every contact, with their state and safety number.
    pub async fn contacts(&self) -> Result<ContactList, NodeError> {
        self.circle(|reply| CircleCommand::Contacts { reply }).await
    }

    /// A single-use invite, valid `ttl_secs` (1 s to 24 h), showing
    /// `name` (or the last name given) and how to reach this node.
    pub async fn create_invite(
        &self,
        name: Option<String>,
        ttl_secs: u64,
    ) -> Result<InviteView, NodeError> {
        // The short code's keys cost PBKDF2's rounds: derived here, off the
        // event loop.
        let short = tokio::task::spawn_blocking(crate::circle::client::rendezvous::new_short_code)
            .await
            .ok();
        self.circle(|reply| CircleCommand::Invite {
            name,
            ttl_secs,
            short,
            reply,
        })
        .await
    }

    /// Accept someone's invite code: they become a contact awaiting their
    /// approval, and the accept is delivered to them (directly, or through
    /// the invite's mailbox).
    pub async fn accept_invite(
        &self,
        code: &str,
        name: Option<String>,
    ) -> Result<ContactView, NodeError> {
        // The decoder looks at no more than 4096 characters anyway.
        if code.len() > 8192 {
            return Err(NodeError::Circle(CircleRefusal::BadInvite(
                "the code is too long to be an invite code".into(),
            )));
        }
        if let Ok(short) = ShortCode::parse(code) {
            let keys = tokio::task::spawn_blocking(move || short.keys())
                .await
                .map_err(|e| NodeError::InvalidInput(format!("short code: {e}")))?;
            return self
                .circle(|reply| CircleCommand::AcceptShort { keys, name, reply })
                .await;
        }
        let code = code.to_owned();
        self.circle(|reply| CircleCommand::Accept { code, name, reply })
            .await
    }

    /// Approve a contact who accepted one of my invites (after comparing
    /// the safety number): sharing then flows both ways. `contact` is a
    /// contact id, a prefix of one (4 hex digits or more) or a name.
    pub async fn approve_contact(&self, contact: &str) -> Result<ContactView, NodeError> {
        let contact = contact.to_owned();
        self.circle(|reply| CircleCommand::Approve {
            contact,
            safety_number: None,
            reply,
        })
        .await
    }

    /// Approve a contact as an app does: with the safety number the person
    /// compared with them, in full. Refused
    /// ([`crate::CircleRefusal::SafetyNumberMismatch`]) unless it is this
    /// contact's, so that nobody is approved without the comparison that
    /// catches a phished invite.
    pub async fn approve_contact_compared(
        &self,
        contact: &str,
        safety_number: &str,
    ) -> Result<ContactView, NodeError> {
        let contact = contact.to_owned();
        let safety_number = Some(safety_number.to_owned());
        self.circle(|reply| CircleCommand::Approve {
            contact,
            safety_number,
            reply,
        })
        .await
    }

    /// Remove a contact; with `notify`, tell them (a leave message).
    /// Nothing more is sent to them, whether or not they are told.
    pub async fn remove_contact(
        &self,
        contact: &str,
        notify: bool,
    ) -> Result<ContactView, NodeError> {
        let contact = contact.to_owned();
        self.circle(|reply| CircleCommand::Remove {
            contact,
            notify,
            reply,
        })
        .await
    }

    /// Start a journey to `(lat, lon)`, expected at `expected_arrival`
    /// (Unix seconds), overdue `grace_secs` later: the circle is told, a
    /// dead-man's switch is deposited with a mailbox host, and the node's
    /// location is shared at intervals until arrival, cancellation or 8
    /// hours.
    pub async fn start_journey(
        &self,
        lat: f64,
        lon: f64,
        expected_arrival: u64,
        grace_secs: u64,
    ) -> Result<JourneyView, NodeError> {
        self.start_journey_with(lat, lon, expected_arrival, grace_secs, None, None)
            .await
    }

    /// "Add time": move the expected arrival of the journey under way to
    /// `expected_arrival` (Unix seconds, at most 8 hours after its start,
    /// grace included); the circle is told and the switch follows.
    pub async fn extend_journey(&self, expected_arrival: u64) -> Result<JourneyView, NodeError> {
        self.circle(|reply| CircleCommand::ExtendJourney {
            expected_arrival,
            reply,
        })
        .await
    }

    /// As [`Node::start_journey`], in parents' mode when `states_only` is
    /// given: only the journey's states are shared (started, arrived,
    /// deviated from the corridor or stopped, overdue), no positions unless
    /// an alert fires. `destination_name` ("Home", a safe place's name) is
    /// kept on this device and shown in the journey's views, never sent.
    pub async fn start_journey_with(
        &self,
        lat: f64,
        lon: f64,
        expected_arrival: u64,
        grace_secs: u64,
        states_only: Option<StatesOnly>,
        destination_name: Option<String>,
    ) -> Result<JourneyView, NodeError> {
        let destination = ronde_protocol::circle::Place::point(lat, lon, 0)?;
        self.circle(|reply| CircleCommand::StartJourney {
            destination,
            expected_arrival,
            grace_secs,
            states_only,
            destination_name,
            reply,
        })
        .await
    }

    /// The current journey, or the last one.
    pub async fn journey(&self) -> Result<JourneyView, NodeError> {
        self.circle(|reply| CircleCommand::Journey { reply }).await
    }

    /// Arrived: the circle is told, the switch withdrawn, sharing stops.
    /// Refused (`code_required`) once codes are set: use
    /// [`Node::arrived_with_code`].
    pub async fn arrived(&self) -> Result<JourneyView, NodeError> {
        self.arrived_with_code(None).await
    }

    /// Arrived, with the person's code or duress code. With the duress code
    /// the answer is the same as with the code, but the circle is alerted
    /// and the journey goes on underneath.
    pub async fn arrived_with_code(&self, code: Option<String>) -> Result<JourneyView, NodeError> {
        self.circle(|reply| CircleCommand::Arrived { code, reply })
            .await
    }

    /// End the journey without arriving (see [`Node::arrived`] for codes).
    pub async fn cancel_journey(&self) -> Result<JourneyView, NodeError> {
        self.cancel_journey_with_code(None).await
    }

    /// End the journey without arriving, with the person's code or duress
    /// code (see [`Node::arrived_with_code`]).
    pub async fn cancel_journey_with_code(
        &self,
        code: Option<String>,
    ) -> Result<JourneyView, NodeError> {
        self.circle(|reply| CircleCommand::CancelJourney { code, reply })
            .await
    }

    /// Set the person's code and duress code (`current`: the code, to
    /// change them). Once set, ending a journey or cancelling an SOS needs
    /// one of them; the duress code seems to do it while the alert goes on.
    pub async fn set_codes(
        &self,
        code: String,
        duress_code: String,
        current: Option<String>,
    ) -> Result<CodesView, NodeError> {
        self.circle(|reply| CircleCommand::SetCodes {
            code,
            duress_code,
            current,
            reply,
        })
        .await
    }

    /// Remove the codes (with the code).
    pub async fn clear_codes(&self, current: String) -> Result<CodesView, NodeError> {
        self.circle(|reply| CircleCommand::ClearCodes { current, reply })
            .await
    }

    /// Raise an SOS to the whole circle, with the node's location if it has
    /// one and a note (at most 280 bytes). Re-sent until someone acks it.
    pub async fn sos(&self, note: &str) -> Result<SosView, NodeError> {
        let note = note.to_owned();
        self.circle(|reply| CircleCommand::Sos { note, reply })
            .await
    }

    /// The current (or last) SOS and who acknowledged it.
    pub async fn sos_status(&self) -> Result<SosView, NodeError> {
        self.circle(|reply| CircleCommand::SosStatus { reply })
            .await
    }

    /// Cancel the SOS: everyone is told. Refused (`code_required`) once
    /// codes are set: use [`Node::cancel_sos_with_code`].
    pub async fn cancel_sos(&self) -> Result<SosView, NodeError> {
        self.cancel_sos_with_code(None).await
    }

    /// Cancel the SOS with the person's code or duress code. With the
    /// duress code the answer is the same, but the circle is told it was
    /// under duress and the SOS goes on.
    pub async fn cancel_sos_with_code(&self, code: Option<String>) -> Result<SosView, NodeError> {
        self.circle(|reply| CircleCommand::CancelSos { code, reply })
            .await
    }

    /// What contacts said, oldest first; only items after `since` if given.
    pub async fn inbox(&self, since: Option<u64>) -> Result<Inbox, NodeError> {
        self.circle(|reply| CircleCommand::Inbox { since, reply })
            .await
    }

    /// The contacts' journeys shown now, folded from the inbox: alerts
    /// first, each with its path since the start and last position.
    pub async fn shared_journeys(&self) -> Result<SharedJourneys, NodeError> {
        let inbox = self.inbox(None).await?;
        Ok(crate::circle::shared::fold(&inbox.items, self.clock.now()))
    }

    /// Mark inbox items as seen; an SOS or overdue alert among them is
    /// acknowledged to its sender (once). Returns the ids that exist.
    pub async fn ack_inbox(&self, ids: Vec<u64>) -> Result<Vec<u64>, NodeError> {
        self.circle(|reply| CircleCommand::AckInbox { ids, reply })
            .await
    }

    async fn directory_call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> DirectoryCommand,
    ) -> Result<T, NodeError> {
        self.call(|reply| Command::Directory(make(reply))).await
    }

    /// Hold (and serve to peers) a city's signed directory, e.g. the one a
    /// relay just signed. It is verified like one from a peer: against
    /// `city`, the node's clock and the highest serial accepted before.
    /// Returns its serial.
    pub async fn set_directory(
        &self,
        city: DirectoryPublicKey,
        bytes: Vec<u8>,
    ) -> Result<u64, NodeError> {
        self.directory_call(|reply| DirectoryCommand::Set { city, bytes, reply })
            .await
    }

    /// The safe places within `radius_m` metres of a point, nearest first,
    /// from the valid directories this node holds (none: `directory` is
    /// `None` and the list empty). Expired places are never listed.
    pub async fn safe_places(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
    ) -> Result<SafePlaces, NodeError> {
        ronde_protocol::area_of(lat, lon)?;
        if !radius_m.is_finite() || radius_m < 0.0 {
            return Err(NodeError::InvalidInput(format!(
                "radius {radius_m} is not a non-negative number of metres"
            )));
        }
        self.directory_call(|reply| DirectoryCommand::SafePlaces {
            lat,
            lon,
            radius_m,
            reply,
        })
        .await
    }

    /// The directory of the first configured city this node holds a valid
    /// one of: city, serial, times, mediators and emergency contacts.
    pub async fn directory(&self) -> Result<DirectoryAnswer, NodeError> {
        self.directory_call(|reply| DirectoryCommand::Directory { reply })
            .await
    }

    /// Flag a listed place: seal an anonymous flag (a one-time key and a
    /// proof of work, off the event loop), keep it on disk and send it to
    /// the connected relays (or as soon as one is connected).
    pub async fn flag_place(
        &self,
        place: PlaceId,
        reason: FlagReason,
    ) -> Result<FlagSent, NodeError> {
        self.directory_call(|reply| DirectoryCommand::CheckPlace { place, reply })
            .await?;
        let now = self.clock.now();
        let difficulty = self.flag_difficulty;
        let flag = tokio::task::spawn_blocking(move || {
            Flag::seal(place, reason, now, difficulty, &mut rand::rngs::OsRng)
        })
        .await
        .map_err(|e| NodeError::Transport(format!("sealing task failed: {e}")))?;
        let bytes = flag.to_bytes();
        self.directory_call(|reply| DirectoryCommand::SubmitFlag {
            place,
            reason,
            bytes,
            reply,
        })
        .await
    }

    /// Directories accepted and refused, held, flags queued.
    pub async fn directory_stats(&self) -> Result<DirectoryStats, NodeError> {
        self.directory_call(|reply| DirectoryCommand::Stats { reply })
            .await
    }

    /// Foreground (a full gossip node) or background (no gossip, at most one
    /// connection, to one always-on peer; see [`crate::lifecycle`]).
    /// Returns the state the node is in now.
    pub async fn set_lifecycle(
        &self,
        lifecycle: crate::lifecycle::Lifecycle,
    ) -> Result<crate::lifecycle::LifecycleView, NodeError> {
        self.call(|reply| Command::SetLifecycle { lifecycle, reply })
            .await
    }

    /// Set the UnifiedPush endpoint the mailbox hosts wake when mail
    /// arrives for this person (`None`: withdraw it). The app passes what
    /// its UnifiedPush distributor gave it (`onNewEndpoint`) at every start
    /// and whenever it changes; the node registers it with each mailbox
    /// host for each day's mailboxes, proving their keys
    /// (docs/circle.md §7.3). Refused (`invalid_input`) unless an http(s)
    /// URL of at most 512 bytes; each host checks it further.
    pub async fn set_push_endpoint(
        &self,
        endpoint: Option<String>,
    ) -> Result<crate::circle::PushView, NodeError> {
        self.circle(|reply| CircleCommand::SetPush { endpoint, reply })
            .await
    }

    /// A push wake-up arrived (the app's UnifiedPush receiver got a
    /// message), or the app runs for another reason: fetch the mail from
    /// every mailbox host now and send what waits, whatever the lifecycle
    /// state. Answers once the fetches (and their acknowledgements) are
    /// done, or after 25 s: new alerts have then reached the inbox and the
    /// listeners, and the app may let the phone sleep again. A suspended
    /// node stays suspended.
    pub async fn wake(&self) -> Result<crate::circle::WakeView, NodeError> {
        self.circle(|reply| CircleCommand::Wake { reply }).await
    }

    /// Stop the node: close connections, flush the store to disk, end the
    /// event loop. Other handles then get [`NodeError::Stopped`].
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
