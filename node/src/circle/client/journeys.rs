//! This person's journeys: the journey machine's effects carried out
//! (positions, overdue alerts), and its dead-man's switch deposited with,
//! pushed back at and withdrawn from up to [`super::SWITCH_HOSTS`] mailbox
//! hosts (re-armed without a contact removed during the journey).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Instant;

use libp2p::swarm::Swarm;
use libp2p::{Multiaddr, PeerId};
use rand::rngs::OsRng;
use ronde_protocol::circle::{
    epoch_of, CodeCheck, ContactId, Deposit, Effect, Ending, Journey, JourneyError, Message, Place,
    StatesOnly, SwitchError, SwitchOwner,
};

use super::records::{
    HostState, JourneyRecord, OpKind, ShownAtDuress, SwitchHost, SwitchOp, SwitchPlan,
};
use super::store::{keys, Commit};
use super::{circle_refusal, storage, CircleClient, MailboxAsk, SWITCH_HOSTS};
use crate::behaviour::Behaviour;
use crate::circle::host::relay_id;
use crate::circle::receipt::SwitchReceipt;
use crate::circle::views::{
    AckView, JourneyView, PlaceView, SwitchHostState, SwitchHostView, SwitchStatus,
};
use crate::circle::wire::{MailboxRequest, MailboxResponse, Refusal};
use crate::error::{CircleRefusal, NodeError};

/// Longest destination name kept, in characters.
const MAX_DESTINATION_NAME: usize = 64;

impl CircleClient {
    pub(super) fn start_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        destination: Place,
        expected_arrival: u64,
        grace_secs: u64,
        states_only: Option<StatesOnly>,
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
        let started = Journey::start_with(
            states_only,
            destination,
            expected_arrival,
            grace_secs,
            self.config.journey,
            now,
            &mut OsRng,
        );
        let (journey, effects) = started.map_err(|e| match e {
            JourneyError::BadConfig(f @ ("corridor_m" | "stop_secs")) => NodeError::InvalidInput(
                format!("parents' mode: {f} is too small (at least 100 m and 120 s)"),
            ),
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
            destination_name: None,
            shown_at_duress: None,
        };
        self.run_journey(swarm, &mut rec, effects, location)?;
        tracing::debug!("journey started");
        Ok(self.journey_view(&rec))
    }

    /// Name the journey just started (`view` is its view): kept in its
    /// record on this device only, shown in its views.
    pub(super) fn name_journey(&mut self, view: JourneyView, name: Option<String>) -> JourneyView {
        let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
            return view;
        };
        let Some(mut rec) = self.journey.clone() else {
            return view;
        };
        rec.destination_name = Some(name.trim().chars().take(MAX_DESTINATION_NAME).collect());
        let mut commit = Commit::new();
        match commit.put(keys::JOURNEY, &rec).map(|()| commit) {
            Ok(commit) => {
                if let Err(e) = self.store.apply(commit) {
                    tracing::warn!(error = %e, "could not keep the destination's name");
                    return view;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not keep the destination's name");
                return view;
            }
        }
        let named = self.journey_view(&rec);
        self.journey = Some(rec);
        named
    }

    /// "Add time": move the expected arrival of the journey under way (at
    /// most 8 hours after its start); the switch's release follows.
    pub(super) fn extend_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        expected_arrival: u64,
        location: Option<(f64, f64)>,
    ) -> Result<JourneyView, NodeError> {
        let Some(mut rec) = self
            .journey
            .clone()
            .filter(|j| j.journey.is_sharing() && !j.journey.is_under_duress())
        else {
            return Err(NodeError::Circle(CircleRefusal::NoJourney));
        };
        let now = self.clock.now();
        let effects = rec
            .journey
            .extend(expected_arrival, now)
            .map_err(|e| NodeError::Circle(CircleRefusal::BadEta(e.to_string())))?;
        self.run_journey(swarm, &mut rec, effects, location)?;
        tracing::debug!("journey extended");
        Ok(self.journey_view(&rec))
    }

    /// Arrived or cancelled, with the person's `code` once codes are set:
    /// with the duress code the journey only seems to end (see `codes`).
    /// A journey already ended under duress answers as ended, whatever the
    /// code; the real code ends it for good.
    pub(super) fn end_journey(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ending: Ending,
        code: Option<&str>,
        location: Option<(f64, f64)>,
    ) -> Result<JourneyView, NodeError> {
        let Some(mut rec) = self
            .journey
            .clone()
            .filter(|j| j.journey.is_sharing() && !j.journey.is_under_duress())
            .or_else(|| {
                // Under duress, only the real code sees it still going.
                self.journey.clone().filter(|j| {
                    j.journey.is_sharing() && self.unlock(code).ok() == Some(CodeCheck::Code)
                })
            })
        else {
            return Err(NodeError::Circle(CircleRefusal::NoJourney));
        };
        let check = self.unlock(code)?;
        let now = self.clock.now();
        let effects = match (check, ending) {
            (CodeCheck::Duress, _) => {
                rec.shown_at_duress = Some(ShownAtDuress {
                    at: now,
                    last_position_at: rec.last_sent_position,
                    switch_release_at: switch_release_at(&rec),
                });
                rec.journey.end_under_duress(ending, now)
            }
            (_, Ending::Arrived) => rec.journey.arrived(now),
            (_, Ending::Cancelled) => rec.journey.cancel(now),
        };
        self.run_journey(swarm, &mut rec, effects, location)?;
        tracing::debug!("journey ended");
        Ok(self.journey_view(&rec))
    }

    /// Carry out a journey's effects, persist everything in one commit,
    /// then send.
    pub(super) fn run_journey(
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
                            day: Some(epoch_of(now)),
                        };
                        self.add_switch_hosts(&mut plan, now)?;
                        rec.switch = Some(plan);
                    }
                }
                Effect::Heartbeat { release_at } => {
                    if let Some(plan) = rec.switch.as_mut() {
                        plan.release_at = release_at;
                        queue_switch_op(plan, OpKind::Heartbeat, |owner| {
                            owner.heartbeat(release_at).map(|hb| hb.to_bytes())
                        })?;
                    }
                }
                Effect::WithdrawDeadManSwitch => {
                    if let Some(plan) = rec.switch.as_mut() {
                        plan.withdrawn = true;
                        queue_switch_op(plan, OpKind::Withdraw, |owner| {
                            owner.withdraw().map(|w| w.to_bytes())
                        })?;
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
        self.pump_switch();
        Ok(())
    }

    /// The next host for a switch plan: one that takes switches and was
    /// never tried for this plan, of an operator the plan's live hosts do
    /// not have if there is one (the person's configured hosts first, each
    /// its own operator), else of any operator.
    fn next_switch_host(&self, plan: &SwitchPlan) -> Option<PeerId> {
        let live: HashSet<String> = plan
            .hosts
            .iter()
            .filter(|h| matches!(h.state, HostState::Depositing | HostState::Armed))
            .filter_map(|h| h.peer.parse::<PeerId>().ok())
            .map(|p| self.operator_of(&p))
            .collect();
        let mut candidates: Vec<PeerId> = self
            .hosts
            .keys()
            .filter(|p| self.host_meta.get(p).is_some_and(|m| m.switch))
            .filter(|p| !plan.hosts.iter().any(|h| h.peer == p.to_string()))
            .copied()
            .collect();
        // Configured hosts (the person's choice) before the directory's.
        candidates.sort_by_key(|p| self.host_meta.get(p).is_some_and(|m| m.operator.is_some()));
        candidates
            .iter()
            .find(|p| !live.contains(&self.operator_of(p)))
            .or_else(|| candidates.first())
            .copied()
    }

    /// Add hosts to a switch plan (up to [`SWITCH_HOSTS`] live ones, of
    /// different operators where there are), each with a fresh journey key
    /// and its deposit.
    pub(super) fn add_switch_hosts(
        &self,
        plan: &mut SwitchPlan,
        now: u64,
    ) -> Result<bool, NodeError> {
        if plan.withdrawn || now >= plan.release_at {
            return Ok(false);
        }
        let mut added = false;
        while plan.active_hosts() < SWITCH_HOSTS {
            let Some(peer) = self.next_switch_host(plan) else {
                break;
            };
            let peer = &peer;
            let addrs = self.hosts.get(peer).cloned().unwrap_or_default();
            let p = peer.to_string();
            let owner = SwitchOwner::new(&mut OsRng);
            let deposit = owner
                .deposit(
                    relay_id(peer),
                    plan.release_at,
                    plan.alerts.clone(),
                    &mut OsRng,
                )
                .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
            let operator = self
                .host_meta
                .get(peer)
                .and_then(|m| m.operator.clone())
                .unwrap_or_default();
            plan.hosts.push(SwitchHost {
                id: self.store.next_id().map_err(storage)?,
                peer: p,
                operator,
                addrs: addrs.iter().map(|a| a.to_string()).collect(),
                owner: owner.to_bytes().to_vec(),
                ops: VecDeque::from([SwitchOp {
                    kind: OpKind::Deposit,
                    bytes: deposit.to_bytes(),
                }]),
                state: HostState::Depositing,
                day: plan.day,
            });
            added = true;
        }
        Ok(added)
    }

    pub(super) fn journey_view(&self, rec: &JourneyRecord) -> JourneyView {
        let j = &rec.journey;
        // After a duress end the screen shows what a real end would: every
        // host that held or was taking the switch as withdrawn, a host that
        // had failed as failed, while the switch stays armed underneath.
        let duress = j.is_under_duress();
        let frozen = rec.shown_at_duress.filter(|_| duress);
        let shown_state = |h: &SwitchHost| match h.state {
            HostState::Failed => HostState::Failed,
            _ if duress => HostState::Withdrawn,
            state => state,
        };
        let switch = match &rec.switch {
            None => SwitchStatus::Failed,
            Some(p)
                if p.hosts
                    .iter()
                    .any(|h| shown_state(h) == HostState::Withdrawn) =>
            {
                SwitchStatus::Withdrawn
            }
            Some(p) if p.hosts.iter().any(|h| shown_state(h) == HostState::Armed) => {
                SwitchStatus::Armed
            }
            Some(p)
                if p.hosts.is_empty()
                    || p.hosts
                        .iter()
                        .any(|h| shown_state(h) == HostState::Depositing) =>
            {
                SwitchStatus::Pending
            }
            Some(_) => SwitchStatus::Failed,
        };
        JourneyView {
            id: j.id(),
            state: j.shown_state(),
            near_destination: j.near_destination() && !j.is_under_duress(),
            destination_name: rec.destination_name.clone(),
            states_only: j.states_only(),
            started_at: j.started_at(),
            destination: PlaceView::from(&j.destination()),
            expected_arrival: j.expected_arrival(),
            overdue_at: j.overdue_at(),
            ends_at: j.ends_at(),
            last_position_at: frozen.map_or(rec.last_sent_position, |f| f.last_position_at),
            switch,
            switch_release_at: frozen.map_or(switch_release_at(rec), |f| f.switch_release_at),
            switch_hosts: rec
                .switch
                .iter()
                .flat_map(|p| p.hosts.iter())
                .map(|h| SwitchHostView {
                    peer: short_peer(&h.peer),
                    operator: h.operator.clone(),
                    state: match shown_state(h) {
                        HostState::Depositing => SwitchHostState::Depositing,
                        HostState::Armed => SwitchHostState::Armed,
                        HostState::Withdrawn => SwitchHostState::Withdrawn,
                        HostState::Failed => SwitchHostState::Failed,
                    },
                })
                .collect(),
            contacts: rec.contacts,
            acked_by: rec
                .acks
                .iter()
                .filter(|(_, at)| frozen.is_none_or(|f| **at <= f.at))
                .map(|(id, at)| AckView {
                    id: *id,
                    name: self.name_of(id),
                    at: *at,
                })
                .collect(),
        }
    }

    /// A journey's switch holds an alert for every contact of its start.
    /// After a contact was removed (or left), withdraw it and deposit a new
    /// one sealed to the contacts that remain: a removed contact must not be
    /// alerted about this journey.
    pub(super) fn rearm_after_removal(&mut self) {
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
            plan.day = Some(epoch_of(now));
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
                tracing::debug!("journey's dead-man's switch re-armed without the removed contact");
                self.pump_switch();
            }
            Err(e) => {
                tracing::error!(error = %e, "could not re-arm the journey's dead-man's switch")
            }
        }
    }

    /// The days of the switch deposits still held or being tended: their
    /// connections must stay (see [`super::net`]).
    pub(super) fn switch_days(&self) -> Vec<u64> {
        let Some(rec) = self.journey.as_ref() else {
            return Vec::new();
        };
        let today = epoch_of(self.clock.now());
        rec.retired
            .iter()
            .chain(rec.switch.iter().flat_map(|p| p.hosts.iter()))
            .filter(|h| !h.ops.is_empty() || h.state == HostState::Armed)
            .map(|h| h.day.unwrap_or(today))
            .collect()
    }

    /// Send the next pending operation to each switch host (one request
    /// per host at a time; withdrawals of retired deposits first), each
    /// over the connections of its deposit's day.
    pub(super) fn pump_switch(&mut self) {
        let Some(rec) = self.journey.as_ref() else {
            return;
        };
        let today = epoch_of(self.clock.now());
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
                let day = h.day.unwrap_or(today);
                sends.push((peer, h.id, op.bytes.clone(), addrs, day));
                busy.insert(peer);
            }
        }
        for (peer, host_id, bytes, addrs, day) in sends {
            let request =
                MailboxRequest::switch(bytes, self.config.mailbox_limits.deposit_work_bits);
            let Some(id) = self.net.send(day, &peer, addrs, request) else {
                self.switch_retry_at
                    .insert(peer, now + self.config.retry_interval);
                continue;
            };
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

    pub(super) fn switch_answer(
        &mut self,
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
        let mut to_retire = None;
        let done = match response {
            None => {
                self.switch_retry_at
                    .insert(host, Instant::now() + self.config.retry_interval);
                return;
            }
            // A deposit counts only with the receipt of the host it was
            // sent to, for this journey key and release time.
            Some(MailboxResponse::Receipt(r))
                if op.kind == OpKind::Deposit && receipt_holds(&r, &host, &op.bytes) =>
            {
                true
            }
            Some(MailboxResponse::Ok | MailboxResponse::Receipt(_))
                if op.kind == OpKind::Deposit =>
            {
                tracing::warn!(
                    %host,
                    "a mailbox host answered the switch deposit without a valid receipt: \
                     not counted, another host is tried"
                );
                let mut retired = h.clone();
                h.ops.clear();
                h.state = HostState::Failed;
                // Best effort: should it hold the switch after all, it must
                // not release it after the journey ended.
                if let Ok(mut owner) = SwitchOwner::from_bytes(&retired.owner) {
                    if let Ok(w) = owner.withdraw() {
                        retired.owner = owner.to_bytes().to_vec();
                        retired.ops = VecDeque::from([SwitchOp {
                            kind: OpKind::Withdraw,
                            bytes: w.to_bytes(),
                        }]);
                        to_retire = Some(retired);
                    }
                }
                false
            }
            Some(MailboxResponse::Ok) => true,
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
                    tracing::debug!("journey's dead-man's switch armed with a mailbox host");
                }
                OpKind::Withdraw => {
                    h.state = HostState::Withdrawn;
                    tracing::debug!("journey's dead-man's switch withdrawn");
                }
                OpKind::Heartbeat => {}
            }
        }
        rec.retired.extend(to_retire);
        rec.retired.retain(|h| !h.ops.is_empty());
        let mut c = Commit::new();
        match c.put(keys::JOURNEY, &rec) {
            Ok(()) => match self.store.apply(c) {
                Ok(()) => self.journey = Some(rec),
                Err(e) => tracing::error!(error = %e, "could not save the journey"),
            },
            Err(e) => tracing::error!(error = %e, "could not save the journey"),
        }
        self.pump_switch();
    }
}

/// A peer id's short form: `…` and its last 8 characters.
fn short_peer(peer: &str) -> String {
    let tail: String = peer
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// Whether `receipt` is `host`'s for the deposit `deposit` (our own bytes).
fn receipt_holds(receipt: &SwitchReceipt, host: &PeerId, deposit: &[u8]) -> bool {
    Deposit::from_bytes(deposit).is_ok_and(|d| receipt.holds(host, d.key(), d.release_at()))
}

/// Queue one signed operation (a heartbeat, a withdrawal) for every host
/// that holds or is receiving the switch, advancing each host's owner
/// counter.
fn queue_switch_op(
    plan: &mut SwitchPlan,
    kind: OpKind,
    mut sign: impl FnMut(&mut SwitchOwner) -> Result<Vec<u8>, SwitchError>,
) -> Result<(), NodeError> {
    for h in plan
        .hosts
        .iter_mut()
        .filter(|h| matches!(h.state, HostState::Depositing | HostState::Armed))
    {
        let mut owner = SwitchOwner::from_bytes(&h.owner)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let bytes = sign(&mut owner).map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        h.owner = owner.to_bytes().to_vec();
        h.ops.push_back(SwitchOp { kind, bytes });
    }
    Ok(())
}

/// The release time of a journey's switch, as the screen shows it.
fn switch_release_at(rec: &JourneyRecord) -> u64 {
    rec.switch
        .as_ref()
        .map_or(rec.journey.release_at(), |p| p.release_at)
}
