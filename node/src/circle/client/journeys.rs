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
    ContactId, Effect, Journey, JourneyError, Message, Place, SwitchError, SwitchOwner,
};

use super::records::{HostState, JourneyRecord, OpKind, SwitchHost, SwitchOp, SwitchPlan};
use super::store::{keys, Commit};
use super::{circle_refusal, storage, CircleClient, MailboxAsk, SWITCH_HOSTS};
use crate::behaviour::Behaviour;
use crate::circle::host::relay_id;
use crate::circle::views::{AckView, JourneyView, PlaceView, SwitchStatus};
use crate::circle::wire::{MailboxRequest, MailboxResponse, Refusal};
use crate::error::{CircleRefusal, NodeError};

impl CircleClient {
    pub(super) fn start_journey(
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
        tracing::debug!("journey started");
        Ok(self.journey_view(&rec))
    }

    pub(super) fn end_journey(
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
        tracing::debug!(arrived, "journey ended");
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
        self.pump_switch(swarm);
        Ok(())
    }

    /// Add hosts to a switch plan (up to [`SWITCH_HOSTS`]), each with a
    /// fresh journey key and its deposit.
    pub(super) fn add_switch_hosts(
        &self,
        plan: &mut SwitchPlan,
        now: u64,
    ) -> Result<bool, NodeError> {
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

    pub(super) fn journey_view(&self, rec: &JourneyRecord) -> JourneyView {
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

    /// A journey's switch holds an alert for every contact of its start.
    /// After a contact was removed (or left), withdraw it and deposit a new
    /// one sealed to the contacts that remain: a removed contact must not be
    /// alerted about this journey.
    pub(super) fn rearm_after_removal(&mut self, swarm: &mut Swarm<Behaviour>) {
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
                tracing::debug!("journey's dead-man's switch re-armed without the removed contact");
                self.pump_switch(swarm);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not re-arm the journey's dead-man's switch")
            }
        }
    }

    /// Send the next pending operation to each switch host (one request
    /// per host at a time; withdrawals of retired deposits first).
    pub(super) fn pump_switch(&mut self, swarm: &mut Swarm<Behaviour>) {
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
                MailboxRequest::switch(bytes, self.config.mailbox_limits.deposit_work_bits),
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

    pub(super) fn switch_answer(
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
                    tracing::debug!("journey's dead-man's switch armed with a mailbox host");
                }
                OpKind::Withdraw => {
                    h.state = HostState::Withdrawn;
                    tracing::debug!("journey's dead-man's switch withdrawn");
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
