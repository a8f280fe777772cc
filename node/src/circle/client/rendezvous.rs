//! Short invite codes on the node ([`ronde_protocol::circle::short_invite`]):
//! the inviter leaves its sealed invite at its mailbox hosts under the
//! short code's mailbox; the invitee fetches it from its own hosts (the
//! same city relays, usually), opens it, deletes it and accepts it.
//!
//! A pending short accept lives in memory only, for
//! [`SHORT_ACCEPT_WAIT_SECS`]: after a restart the person types the code
//! again. Nothing about it is logged.

use std::time::{Duration, Instant};

use libp2p::swarm::Swarm;
use rand::rngs::OsRng;
use ronde_protocol::circle::short_invite::{RendezvousKeys, ShortCode};
use ronde_protocol::circle::{ContactId, MailboxKey};

use super::command::Reply;
use super::store::{Commit, OutItem};
use super::{storage, CircleClient};
use crate::behaviour::Behaviour;
use crate::circle::views::ContactView;
use crate::circle::CircleRefusal;
use crate::error::NodeError;

/// How long an accept by short code waits for the invite to be fetched.
pub const SHORT_ACCEPT_WAIT_SECS: u64 = 30;
/// How often the hosts are asked again meanwhile (the invite may not be
/// there yet when the code is typed quickly).
const SHORT_REFETCH: Duration = Duration::from_secs(2);

/// An accept by short code waiting for its invite.
pub(crate) struct PendingShort {
    keys: RendezvousKeys,
    name: Option<String>,
    reply: Reply<ContactView>,
    until: u64,
    next_fetch: Instant,
}

/// A new short code and its keys (slow: PBKDF2; call it off the event
/// loop).
pub fn new_short_code() -> (ShortCode, RendezvousKeys) {
    let code = ShortCode::random(&mut OsRng);
    let keys = code.keys();
    (code, keys)
}

impl CircleClient {
    /// Leave `invite_code` sealed under `keys` at the mailbox hosts, through
    /// the outbox (retried like any envelope). Returns false when there is
    /// no host to leave it with (then no short code is shown).
    pub(super) fn leave_short_invite(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        invite_code: &str,
        keys: &RendezvousKeys,
        expires_at: u64,
    ) -> Result<bool, NodeError> {
        if self.remote_hosts().is_empty() {
            return Ok(false);
        }
        let blob = keys
            .seal(invite_code)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let seq = self.store.next_id().map_err(storage)?;
        let item = OutItem {
            // Nobody's: it goes only to the mailbox below.
            to: ContactId([0; 32]),
            envelope: blob,
            mailbox: Some(keys.mailbox.address()),
            peers: Vec::new(),
            critical: false,
            created_at: self.clock.now().min(expires_at),
        };
        let mut commit = Commit::new();
        commit.enqueue(seq, &item).map_err(storage)?;
        self.store.apply(commit).map_err(storage)?;
        self.outbox.insert(seq, item);
        self.deliver(swarm, seq);
        Ok(true)
    }

    /// Accept the invite waiting under a short code: ask every mail host
    /// for its mailbox; the answer comes through [`Self::take_short`].
    pub(super) fn accept_short(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        keys: RendezvousKeys,
        name: Option<String>,
        reply: Reply<ContactView>,
    ) {
        let hosts = self.remote_hosts();
        if hosts.is_empty() {
            let _ = reply.send(Err(NodeError::Circle(CircleRefusal::InviteNotFound)));
            return;
        }
        self.short_pending.push(PendingShort {
            keys,
            name,
            reply,
            until: self.clock.now() + SHORT_ACCEPT_WAIT_SECS,
            next_fetch: Instant::now() + SHORT_REFETCH,
        });
        self.fetch_short(swarm);
    }

    fn fetch_short(&mut self, swarm: &mut Swarm<Behaviour>) {
        for (host, _) in self.remote_hosts() {
            // A fetch already under way at this host was asked without the
            // new key: ask again.
            self.fetching.remove(&host);
            self.fetch_from(swarm, host);
        }
    }

    /// Every mailbox key to fetch with now: the short codes being looked
    /// for first (a fetch carries at most `MAX_FETCH_MAILBOXES` keys), then
    /// the person's own mailboxes.
    pub(super) fn keys_to_poll(&self) -> Vec<MailboxKey> {
        let now = self.clock.now();
        let mut keys: Vec<MailboxKey> = self
            .short_pending
            .iter()
            .map(|p| p.keys.mailbox.clone())
            .collect();
        keys.extend(self.circle.mailbox_keys_to_poll(&self.identity, now));
        keys
    }

    /// Mail fetched from a short code's mailbox: open it and accept the
    /// invite inside. Returns whether `mailbox` was one of them (the item is
    /// then acknowledged, opened or not).
    pub(super) fn take_short(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        mailbox: &[u8; 32],
        blob: &[u8],
    ) -> bool {
        let Some(i) = self
            .short_pending
            .iter()
            .position(|p| p.keys.mailbox.address() == *mailbox)
        else {
            return false;
        };
        let Ok(code) = self.short_pending[i].keys.open(blob) else {
            // Not the invite (nobody else should know this mailbox): keep
            // waiting for the real one until the deadline.
            return true;
        };
        let p = self.short_pending.swap_remove(i);
        let _ = p.reply.send(self.accept(swarm, &code, p.name));
        true
    }

    /// Accepts by short code that found nothing in time.
    pub(super) fn short_tick(&mut self, swarm: &mut Swarm<Behaviour>, now: u64) {
        let due = Instant::now();
        if self.short_pending.iter().any(|p| p.next_fetch <= due) {
            for p in &mut self.short_pending {
                p.next_fetch = due + SHORT_REFETCH;
            }
            self.fetch_short(swarm);
        }
        let mut i = 0;
        while i < self.short_pending.len() {
            if self.short_pending[i].until <= now {
                let p = self.short_pending.swap_remove(i);
                let _ = p
                    .reply
                    .send(Err(NodeError::Circle(CircleRefusal::InviteNotFound)));
            } else {
                i += 1;
            }
        }
    }
}
