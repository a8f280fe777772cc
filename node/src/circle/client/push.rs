//! The phone's side of push wake-ups (docs/circle.md §7.3): the UnifiedPush
//! endpoint the app set, registered with every mailbox host for each day's
//! mailboxes (over that day's connections, proving that day's keys, like a
//! fetch), renewed when the day's mailboxes change; and the wake-up itself,
//! which fetches the mail once, even when the node is suspended.
//!
//! A registration lasts until the end of the day after its mailboxes' day
//! (they are polled until then), so a day's registration is made once and
//! left to lapse; a new endpoint (the distributor gave another) replaces
//! it, `None` withdraws it. **Tomorrow's** contact mailboxes are registered
//! ahead too (over tomorrow's identity), so that a phone suspended across
//! midnight is still woken for mail sent to the new day's mailboxes; every
//! poll and every wake-up registers what changed. A host that refused is
//! asked again an hour later, or at once for a new endpoint. Logs name no
//! endpoint.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::command::Reply;
use super::{CircleClient, MailboxAsk, Proven};
use crate::circle::host::push::MAX_PUSH_LIFETIME_SECS;
use crate::circle::views::{PushView, WakeView};
use crate::circle::wire::{MailboxResponse, MAX_PUSH_ENDPOINT};
use crate::error::NodeError;

/// After a wake-up, the other days' mailboxes are fetched at a random
/// moment within this (not with today's: §7.2), short enough for the few
/// seconds a phone is given.
pub(super) const WAKE_SPREAD: Duration = Duration::from_secs(8);
/// A wake-up is answered by then at the latest, fetches done or not (an
/// iOS notification extension has about 30 s).
const WAKE_DEADLINE: Duration = Duration::from_secs(25);
/// A host that refused a registration is asked again after this long
/// (its quota may have room again), or at once for another endpoint.
const REFUSED_BACKOFF: Duration = Duration::from_secs(3600);

/// A `wake()` waiting for its fetches.
struct Waiter {
    reply: Reply<WakeView>,
    hosts: usize,
    taken_before: u64,
    deadline: Instant,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}

/// An endpoint and the mailboxes registered for it.
type Registered = (String, Vec<[u8; 32]>);

/// The endpoint and where it is registered.
#[derive(Debug, Default)]
pub(super) struct PushState {
    endpoint: Option<String>,
    /// `(day, host)` → the endpoint and the mailboxes registered there.
    pub(super) registered: BTreeMap<(u64, PeerId), Registered>,
    /// Registrations under way.
    pub(super) inflight: HashSet<(u64, PeerId)>,
    /// `(day, host)` that refused the current endpoint, and when: not
    /// asked again for [`REFUSED_BACKOFF`].
    refused: BTreeMap<(u64, PeerId), Instant>,
    /// Envelopes taken from mailboxes since start.
    pub(super) mail_taken: u64,
    /// `wake()` calls waiting for their fetches.
    waiters: Vec<Waiter>,
}

/// The lifetime asked for a registration of `day`'s mailboxes at `now`:
/// to the end of the next day.
pub(super) fn lifetime_for(day: u64, now: u64) -> u32 {
    let end = day.saturating_add(2).saturating_mul(86_400);
    let secs = end.saturating_sub(now).max(3600);
    u32::try_from(secs)
        .unwrap_or(MAX_PUSH_LIFETIME_SECS)
        .min(MAX_PUSH_LIFETIME_SECS)
}

impl CircleClient {
    /// Set (or with `None` withdraw) the UnifiedPush endpoint the mailbox
    /// hosts wake.
    pub(crate) fn set_push_endpoint(
        &mut self,
        endpoint: Option<String>,
    ) -> Result<PushView, NodeError> {
        if let Some(e) = &endpoint {
            let ok = e.len() <= MAX_PUSH_ENDPOINT
                && (e.starts_with("https://") || e.starts_with("http://"))
                && !e.chars().any(char::is_control);
            if !ok {
                return Err(NodeError::InvalidInput(format!(
                    "a push endpoint is an https URL of at most {MAX_PUSH_ENDPOINT} bytes"
                )));
            }
        }
        if endpoint == self.push.endpoint {
            return Ok(self.push_view(0));
        }
        let hosts = match endpoint {
            Some(e) => {
                self.push.endpoint = Some(e);
                // Registered again everywhere (a registration replaces the
                // one of the same day's identity).
                self.push.registered.clear();
                self.push.refused.clear();
                self.register_push_all()
            }
            None => {
                self.push.endpoint = None;
                let at: Vec<(u64, PeerId)> = self.push.registered.keys().copied().collect();
                for (day, host) in &at {
                    if self.push.inflight.insert((*day, *host)) {
                        self.ask_challenge(*host, *day, Proven::Push { endpoint: None });
                    }
                }
                at.len()
            }
        };
        Ok(self.push_view(hosts))
    }

    fn push_view(&self, hosts: usize) -> PushView {
        PushView {
            endpoint_set: self.push.endpoint.is_some(),
            hosts,
            registered: self.push.registered.len(),
            pending: self.push.inflight.len(),
        }
    }

    /// Register the endpoint with every mailbox host for each day whose
    /// mailboxes are not registered there as they are now; how many
    /// requests went out.
    pub(super) fn register_push_all(&mut self) -> usize {
        let Some(endpoint) = self.push.endpoint.clone() else {
            return 0;
        };
        let mut by_day: BTreeMap<u64, Vec<[u8; 32]>> = BTreeMap::new();
        for (day, key) in self.push_keys() {
            by_day.entry(day).or_default().push(key.address());
        }
        let hosts: Vec<PeerId> = self
            .host_meta
            .iter()
            .filter(|(p, m)| m.mailbox && self.hosts.contains_key(p))
            .map(|(p, _)| *p)
            .collect();
        // Registrations of days no longer polled lapse by themselves.
        self.push
            .registered
            .retain(|(d, _), _| by_day.contains_key(d));
        self.push.refused.retain(|(d, _), _| by_day.contains_key(d));
        let mut sent = 0;
        for (day, mut mailboxes) in by_day {
            mailboxes.sort_unstable();
            mailboxes.truncate(crate::circle::wire::MAX_PUSH_KEYS);
            for host in &hosts {
                let current = self.push.registered.get(&(day, *host));
                let same = current.is_some_and(|(e, m)| {
                    let mut m = m.clone();
                    m.sort_unstable();
                    *e == endpoint && m == mailboxes
                });
                let backing_off = self
                    .push
                    .refused
                    .get(&(day, *host))
                    .is_some_and(|at| at.elapsed() < REFUSED_BACKOFF);
                if same || backing_off || !self.push.inflight.insert((day, *host)) {
                    continue;
                }
                self.ask_challenge(
                    *host,
                    day,
                    Proven::Push {
                        endpoint: Some(endpoint.clone()),
                    },
                );
                sent += 1;
            }
        }
        sent
    }

    /// A host's answer to a registration (or its failure).
    pub(super) fn push_answer(
        &mut self,
        host: PeerId,
        day: u64,
        mailboxes: Vec<[u8; 32]>,
        response: Option<MailboxResponse>,
    ) {
        self.push.inflight.remove(&(day, host));
        match response {
            Some(MailboxResponse::Ok) if mailboxes.is_empty() => {
                self.push.registered.remove(&(day, host));
            }
            Some(MailboxResponse::Ok) => {
                if let Some(e) = self.push.endpoint.clone() {
                    self.push.registered.insert((day, host), (e, mailboxes));
                }
                tracing::debug!("push endpoint registered with a mailbox host");
            }
            Some(MailboxResponse::Refused(r)) => {
                tracing::info!(refusal = %r, "a mailbox host refused the push registration");
                self.push.refused.insert((day, host), Instant::now());
            }
            _ => {}
        }
    }

    /// Suspend: no polls and no retries of its own, and every circle
    /// connection closed (what was under way fails, and is retried when
    /// woken). The days' identities stay: their push registrations are
    /// theirs.
    pub(crate) fn suspend(&mut self) {
        self.suspended = true;
        self.net.disconnect_all();
    }

    /// Back from suspended (to the background or the foreground): polls
    /// and retries again, starting now.
    pub(crate) fn resume(&mut self, swarm: &mut libp2p::Swarm<crate::behaviour::Behaviour>) {
        if !self.suspended {
            return;
        }
        self.suspended = false;
        self.poll_mailboxes(swarm, None);
        self.retry_outbox(swarm, true);
    }

    /// The keys a push registration watches, by day: those polled now and
    /// tomorrow's contact mailboxes.
    pub(super) fn push_keys(&self) -> Vec<(u64, ronde_protocol::circle::MailboxKey)> {
        let now = self.clock.now();
        let tomorrow = ronde_protocol::circle::epoch_of(now) + 1;
        let mut keys = self.keys_to_poll();
        keys.extend(
            self.circle
                .mailbox_keys_to_poll(&self.identity, now.saturating_add(86_400))
                .into_iter()
                .filter(|(d, _)| *d == tomorrow),
        );
        keys
    }

    /// In the background (`true`) or the foreground. In the background,
    /// once the push endpoint is registered for today's mailboxes
    /// ([`Self::push_covers`]), the node is [quiet](Self::quiet): it
    /// fetches its mail when woken, and by itself only every
    /// `background_poll_interval`.
    pub(crate) fn set_background(&mut self, on: bool) {
        self.background = on;
        self.close_when_quiet();
    }

    /// Whether the push endpoint is registered with at least one mailbox
    /// host for today's mailboxes: mail sent now would wake the phone.
    pub(crate) fn push_covers(&self) -> bool {
        let today = ronde_protocol::circle::epoch_of(self.clock.now());
        self.push.endpoint.is_some()
            && self
                .push
                .registered
                .keys()
                .any(|(day, host)| *day == today && self.hosts.contains_key(host))
    }

    /// Suspended, or in the background with push: no connection is kept,
    /// the mail is fetched when woken (and rarely by the background's own
    /// poll).
    pub(super) fn quiet(&self) -> bool {
        self.suspended || (self.background && self.push_covers())
    }

    /// Whether mail may be fetched now: always, except suspended, where
    /// only a `wake()` under way fetches (a poll, a host connecting or a
    /// challenge answered after the suspension waits for it).
    pub(super) fn may_fetch(&self) -> bool {
        !self.suspended || !self.push.waiters.is_empty()
    }

    /// Quiet means no connection kept: a connection that a request under
    /// way (a push registration, a dial, a poll) or a wake-up opened is
    /// closed as soon as nothing needs it any more, not when it falls
    /// idle.
    pub(crate) fn close_when_quiet(&mut self) {
        if self.quiet()
            && self.push.waiters.is_empty()
            && self.mailbox_inflight.is_empty()
            && self.fetching.is_empty()
            && self.later_polls.is_empty()
            && self.net.connected() > 0
        {
            self.net.disconnect_all();
        }
    }

    /// Peers connected over the circle's day connections.
    pub(crate) fn circle_connections(&self) -> usize {
        self.net.connected()
    }

    /// A push wake-up arrived (or the app woke for another reason): fetch
    /// the mail from every host now (other days' within a few seconds) and
    /// send what waits, whatever the lifecycle state; `reply` once every
    /// fetch is done (or after [`WAKE_DEADLINE`]). A suspended node stays
    /// suspended: its connections close once idle, or at the next
    /// [`Self::suspend`].
    pub(crate) fn wake(
        &mut self,
        swarm: &mut libp2p::Swarm<crate::behaviour::Behaviour>,
        reply: Reply<WakeView>,
    ) {
        let hosts = self
            .host_meta
            .iter()
            .filter(|(p, m)| m.mailbox && self.hosts.contains_key(p))
            .count();
        self.push.waiters.push(Waiter {
            reply,
            hosts,
            taken_before: self.push.mail_taken,
            deadline: Instant::now() + WAKE_DEADLINE,
        });
        self.last_poll = Some(Instant::now());
        self.poll_round(swarm, None, WAKE_SPREAD);
        self.retry_outbox(swarm, true);
        self.register_push_all();
        self.wake_progress();
    }

    /// Answer the `wake()` calls whose fetches are done (none under way,
    /// none scheduled), or whose deadline passed.
    pub(super) fn wake_progress(&mut self) {
        if self.push.waiters.is_empty() {
            return;
        }
        let busy = !self.fetching.is_empty()
            || !self.later_polls.is_empty()
            || self.mailbox_inflight.values().any(|a| {
                matches!(
                    a,
                    MailboxAsk::Fetch { .. }
                        | MailboxAsk::Ack { .. }
                        | MailboxAsk::Challenge {
                            then: Proven::Fetch | Proven::Ack { .. },
                            ..
                        }
                )
            });
        let now = Instant::now();
        let taken = self.push.mail_taken;
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.push.waiters)
            .into_iter()
            .partition(|w| !busy || now >= w.deadline);
        self.push.waiters = waiting;
        for w in done {
            let received =
                usize::try_from(taken.saturating_sub(w.taken_before)).unwrap_or(usize::MAX);
            let _ = w.reply.send(Ok(WakeView {
                hosts: w.hosts,
                complete: !busy,
                received,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_lasts_to_the_end_of_the_next_day() {
        let day = 20_000;
        let start = day * 86_400;
        assert_eq!(lifetime_for(day, start), 2 * 86_400);
        assert_eq!(lifetime_for(day, start + 86_400 + 3600), 86_400 - 3600);
        // Late in the next day: at least an hour.
        assert_eq!(lifetime_for(day, start + 2 * 86_400 - 60), 3600);
        assert!(lifetime_for(day, start) <= MAX_PUSH_LIFETIME_SECS);
    }
}
