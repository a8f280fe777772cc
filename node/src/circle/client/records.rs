//! What the client side keeps of this person's own profile, journey
//! (with its dead-man's switch deposits and their keys: secret) and SOS,
//! as JSON documents of the `circle_state` tree ([`super::store`]).

use std::collections::{BTreeMap, VecDeque};

use ronde_protocol::circle::{ContactId, Journey, Sos};
use serde::{Deserialize, Serialize};

use super::store::hex_bytes;
use crate::circle::views::SosView;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Profile {
    pub(super) name: String,
}

/// One operation for a switch host, as signed bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SwitchOp {
    pub(super) kind: OpKind,
    #[serde(with = "hex_bytes")]
    pub(super) bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum OpKind {
    Deposit,
    Heartbeat,
    Withdraw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum HostState {
    Depositing,
    Armed,
    Withdrawn,
    Failed,
}

/// A host holding (or about to hold) this journey's switch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SwitchHost {
    /// This node's number for this deposit.
    #[serde(default)]
    pub(super) id: u64,
    pub(super) peer: String,
    /// Who runs it: the operator the directory lists, or empty for a host
    /// the person configured.
    #[serde(default)]
    pub(super) operator: String,
    pub(super) addrs: Vec<String>,
    /// The journey key and counter ([`ronde_protocol::circle::SwitchOwner::to_bytes`]): secret.
    #[serde(with = "hex_bytes")]
    pub(super) owner: Vec<u8>,
    pub(super) ops: VecDeque<SwitchOp>,
    pub(super) state: HostState,
    /// The UTC day (epoch) the deposit's alerts were sealed for: its
    /// requests go over that day's connections only
    /// ([`super::net`]). `None` in records written before (today's).
    #[serde(default)]
    pub(super) day: Option<u64>,
}

/// The dead-man's switch of a journey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SwitchPlan {
    pub(super) alerts: Vec<ronde_protocol::circle::Alert>,
    pub(super) release_at: u64,
    pub(super) withdrawn: bool,
    pub(super) hosts: Vec<SwitchHost>,
    /// The UTC day (epoch) `alerts` were sealed for (see
    /// [`SwitchHost::day`]).
    #[serde(default)]
    pub(super) day: Option<u64>,
}

impl SwitchPlan {
    /// Hosts receiving or holding the switch (not failed, not withdrawn).
    pub(super) fn active_hosts(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| matches!(h.state, HostState::Depositing | HostState::Armed))
            .count()
    }
}

/// This person's journey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JourneyRecord {
    pub(super) journey: Journey,
    pub(super) contacts: usize,
    pub(super) switch: Option<SwitchPlan>,
    pub(super) acks: BTreeMap<ContactId, u64>,
    pub(super) last_sent_position: Option<u64>,
    /// Deposits being withdrawn because they hold an alert for a contact
    /// removed during the journey (a new deposit replaced them).
    #[serde(default)]
    pub(super) retired: Vec<SwitchHost>,
    /// The destination's name as the person chose it ("Home", a safe
    /// place's name): kept on this device, never sent.
    #[serde(default)]
    pub(super) destination_name: Option<String>,
    /// What the screen showed when the journey "ended" with the duress
    /// code: shown from then on instead of the times that keep moving
    /// underneath (positions sent, the switch pushed back).
    #[serde(default)]
    pub(super) shown_at_duress: Option<ShownAtDuress>,
}

/// The moving parts of a journey's view, frozen at a duress end.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct ShownAtDuress {
    /// When: acknowledgements after it are not shown (a contact
    /// acknowledging the duress alert).
    pub(super) at: u64,
    pub(super) last_position_at: Option<u64>,
    pub(super) switch_release_at: u64,
}

/// This person's SOS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SosRecord {
    pub(super) sos: Sos,
    pub(super) place_updated_at: u64,
    /// What the screen showed when the SOS was "cancelled" with the duress
    /// code (as cancelled): shown from then on, while underneath it is
    /// resent and follows the person.
    #[serde(default)]
    pub(super) shown_at_duress: Option<SosView>,
}
