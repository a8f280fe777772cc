//! The trusted-circle story the demo plays between five of its phones:
//!
//! * **Camille** is the phone whose app the demo serves on `--app`: she is
//!   in the circle of the three others, so her inbox shows what happens.
//! * **Inès** shares a journey home with Camille and arrives.
//! * **Malik** shares a journey with Camille and does not arrive: his phone
//!   alerts Camille once he is overdue (a dead-man's switch with the relay's
//!   mailbox would do it if his phone died).
//! * **Léa** raises an SOS to Camille and Sofiane; Sofiane acknowledges it,
//!   and Léa's phone shows who did. Camille's copy waits in her app.
//!
//! Circles are made through the real handshake (invite → accept →
//! approve). Times are in *story seconds*, divided by `--speed` on the real
//! clock: at the default speed 10, Malik is overdue a bit over a minute
//! after the story starts.
//!
//! The narrative says who and what, never where, and never an SOS note.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_node::circle::{InboxItem, InboxNotice};
use ronde_node::{Node, NodeError, NodeEvent};
use ronde_protocol::circle::ContactState;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::city::{distance_m, offset, City, Walker};
use crate::narrator::Narrator;

/// The names of the cast, in phone order: phone 0 is Camille.
pub const CAST: [&str; 5] = ["Camille", "Inès", "Malik", "Léa", "Sofiane"];
/// Camille: the phone whose app is served.
pub const CAMILLE: usize = 0;
/// Inès: the journey that arrives.
pub const INES: usize = 1;
/// Malik: the journey that goes overdue.
pub const MALIK: usize = 2;
/// Léa: the SOS.
pub const LEA: usize = 3;
/// Sofiane: acknowledges Léa's SOS.
pub const SOFIANE: usize = 4;

/// Story time of each step, seconds after the circles are made.
pub mod at {
    /// Inès sets off home.
    pub const INES_LEAVES: u64 = 30;
    /// Malik sets off.
    pub const MALIK_LEAVES: u64 = 60;
    /// Malik's phone stops moving.
    pub const MALIK_STOPS: u64 = 3 * 60;
    /// Léa raises an SOS.
    pub const LEA_SOS: u64 = 4 * 60;
    /// Sofiane acknowledges it, this long after it reached him.
    pub const SOFIANE_ACK_AFTER: u64 = 60;
    /// Inès arrives.
    pub const INES_ARRIVES: u64 = 9 * 60;
    /// Inès's expected journey time and grace.
    pub const INES_ETA: u64 = 12 * 60;
    /// Grace after Inès's expected arrival.
    pub const INES_GRACE: u64 = 5 * 60;
    /// Malik's expected journey time.
    pub const MALIK_ETA: u64 = 6 * 60;
    /// Grace after Malik's expected arrival: he is overdue at
    /// `MALIK_LEAVES + MALIK_ETA + MALIK_GRACE` (11 minutes).
    pub const MALIK_GRACE: u64 = 4 * 60;
    /// The story is told.
    pub const END: u64 = 12 * 60;
}

/// How far the story got (for the summary and the tests).
#[derive(Debug, Default)]
pub struct Progress {
    /// The circles were made.
    pub circles: AtomicBool,
    /// Inès's arrival reached Camille.
    pub arrival_seen: AtomicBool,
    /// Malik's overdue alert reached Camille.
    pub overdue_seen: AtomicBool,
    /// Léa's SOS reached Camille.
    pub sos_seen: AtomicBool,
    /// Sofiane's acknowledgement reached Léa.
    pub sos_acked: AtomicBool,
}

/// Why a step of the story failed.
#[derive(Debug, thiserror::Error)]
pub enum StoryError {
    /// A node refused or stopped.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Something did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The demo is stopping.
    #[error("stopping")]
    Stopped,
}

/// Everything the story needs.
pub struct Story {
    /// The five phones of the cast, in [`CAST`] order.
    pub cast: Vec<Node>,
    /// Every phone's walker (the cast first), shared with the walking task.
    pub walkers: Arc<Mutex<Vec<Walker>>>,
    /// The city.
    pub city: City,
    /// Story seconds per real second.
    pub speed: f64,
    /// Tells what happens.
    pub narrator: Narrator,
    /// How far it got.
    pub progress: Arc<Progress>,
    /// Seed of the destinations.
    pub seed: u64,
}

/// How long to wait for one handshake step.
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// Wait until `deadline`; `false` if the demo stops first.
async fn wait_until(stop: &mut watch::Receiver<bool>, deadline: Instant) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Poll `f` every 100 ms until it returns `Some`.
async fn eventually<T, F, Fut>(
    what: &'static str,
    stop: &mut watch::Receiver<bool>,
    mut f: F,
) -> Result<T, StoryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(StoryError::Timeout(what));
        }
        if !wait_until(stop, Instant::now() + Duration::from_millis(100)).await {
            return Err(StoryError::Stopped);
        }
    }
}

async fn contact_state(node: &Node, name: &str) -> Option<(String, ContactState)> {
    node.contacts()
        .await
        .ok()?
        .contacts
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| (c.id.to_hex(), c.state))
}

/// `a` invites `b`, `b` accepts, `a` approves: mutual contacts.
pub async fn befriend(
    a: &Node,
    a_name: &str,
    b: &Node,
    b_name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), StoryError> {
    let invite = a.create_invite(Some(a_name.to_owned()), 3_600).await?;
    b.accept_invite(&invite.code, Some(b_name.to_owned()))
        .await?;
    let (id, _) = eventually("an accepted invite", stop, || async {
        contact_state(a, b_name)
            .await
            .filter(|(_, s)| *s == ContactState::AwaitingMyApproval)
    })
    .await?;
    a.approve_contact(&id).await?;
    eventually("an approval", stop, || async {
        contact_state(b, a_name)
            .await
            .filter(|(_, s)| *s == ContactState::Mutual)
    })
    .await?;
    Ok(())
}

impl Story {
    fn real(&self, story_secs: u64) -> Duration {
        Duration::from_secs_f64(story_secs as f64 / self.speed)
    }

    /// Story seconds as real whole seconds, at least one.
    fn real_secs(&self, story_secs: u64) -> u64 {
        (story_secs as f64 / self.speed).round().max(1.0) as u64
    }

    /// "6 min", and how long that is here when sped up: "6 min (36 s here)".
    fn demo_time(&self, story_secs: u64) -> String {
        if self.speed == 1.0 {
            format!("{} min", story_secs / 60)
        } else {
            format!(
                "{} min ({} s here)",
                story_secs / 60,
                self.real_secs(story_secs)
            )
        }
    }

    fn set_walker(&self, i: usize, f: impl FnOnce(&mut Walker)) -> (f64, f64) {
        let mut w = match self.walkers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match w.get_mut(i) {
            Some(walker) => {
                f(walker);
                walker.pos
            }
            None => self.city.centre,
        }
    }

    /// Play the story until its end (then wait for the stop signal).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut watchers = Vec::new();
        let n = self.narrator.clone();
        let p = self.progress.clone();
        watchers.push(tokio::spawn(watch_camille(
            self.cast[CAMILLE].clone(),
            self.cast[CAMILLE].events(),
            n.clone(),
            p.clone(),
            stop.clone(),
        )));
        watchers.push(tokio::spawn(watch_sofiane(
            self.cast[SOFIANE].clone(),
            self.cast[SOFIANE].events(),
            self.real(at::SOFIANE_ACK_AFTER),
            n.clone(),
            stop.clone(),
        )));
        watchers.push(tokio::spawn(watch_lea(
            self.cast[LEA].clone(),
            self.cast[LEA].events(),
            n.clone(),
            p.clone(),
            stop.clone(),
        )));

        match self.play(&mut stop).await {
            Ok(()) | Err(StoryError::Stopped) => {}
            Err(e) => n.say(format!("the story stopped short: {e}")),
        }
        let _ = stop.wait_for(|s| *s).await;
        for w in watchers {
            let _ = w.await;
        }
    }

    async fn play(&self, stop: &mut watch::Receiver<bool>) -> Result<(), StoryError> {
        let n = &self.narrator;
        let c = &self.cast;
        for (a, b) in [
            (CAMILLE, INES),
            (CAMILLE, MALIK),
            (CAMILLE, LEA),
            (SOFIANE, LEA),
        ] {
            befriend(&c[a], CAST[a], &c[b], CAST[b], stop).await?;
        }
        self.progress.circles.store(true, Ordering::Relaxed);
        n.say(
            "circles: Inès, Malik and Léa each added Camille to their trusted circle, and Léa \
             added Sofiane (invite, accept, approve; end-to-end encrypted from now on)",
        );

        let t0 = Instant::now();
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed ^ 0x5709);

        // Inès walks home and shares the journey with Camille.
        if !wait_until(stop, t0 + self.real(at::INES_LEAVES)).await {
            return Err(StoryError::Stopped);
        }
        let walk_secs = self.real(at::INES_ARRIVES - at::INES_LEAVES).as_secs_f64();
        let pos = self.set_walker(INES, |_| {});
        let home = self.city.clamp(offset(
            pos,
            rng.gen_range(-350.0..350.0),
            rng.gen_range(-350.0..350.0),
        ));
        let now = c[INES].now();
        c[INES]
            .start_journey(
                home.0,
                home.1,
                now + self.real_secs(at::INES_ETA),
                self.real_secs(at::INES_GRACE),
            )
            .await?;
        self.set_walker(INES, |w| {
            w.target = home;
            w.speed_mps = distance_m(pos, home) / walk_secs.max(1.0) * 0.95;
            w.wander = false;
        });
        n.say(format!(
            "Inès starts walking home and shares the journey with Camille: expected in {}; \
             a dead-man's switch waits in the relay's mailbox",
            self.demo_time(at::INES_ETA)
        ));

        // Malik sets off too.
        if !wait_until(stop, t0 + self.real(at::MALIK_LEAVES)).await {
            return Err(StoryError::Stopped);
        }
        let pos = self.set_walker(MALIK, |_| {});
        let dest = self.city.clamp(offset(
            pos,
            rng.gen_range(-300.0..300.0),
            rng.gen_range(-300.0..300.0),
        ));
        let now = c[MALIK].now();
        c[MALIK]
            .start_journey(
                dest.0,
                dest.1,
                now + self.real_secs(at::MALIK_ETA),
                self.real_secs(at::MALIK_GRACE),
            )
            .await?;
        let malik_secs = self.real(at::MALIK_ETA).as_secs_f64();
        self.set_walker(MALIK, |w| {
            w.target = dest;
            w.speed_mps = distance_m(pos, dest) / malik_secs.max(1.0);
            w.wander = false;
        });
        n.say(format!(
            "Malik sets off and shares his journey with Camille: expected in {}, overdue {} \
             after that",
            self.demo_time(at::MALIK_ETA),
            self.demo_time(at::MALIK_GRACE)
        ));

        if !wait_until(stop, t0 + self.real(at::MALIK_STOPS)).await {
            return Err(StoryError::Stopped);
        }
        self.set_walker(MALIK, |w| w.speed_mps = 0.0);
        n.say("Malik's phone stops moving halfway");

        // Léa raises an SOS.
        if !wait_until(stop, t0 + self.real(at::LEA_SOS)).await {
            return Err(StoryError::Stopped);
        }
        let pos = self.set_walker(LEA, |_| {});
        c[LEA].set_location(pos.0, pos.1).await?;
        let sos = c[LEA]
            .sos("Someone has been following me since the station.")
            .await?;
        n.say(format!(
            "Léa raises an SOS with her position: it goes to her {} contacts, end-to-end \
             encrypted, and is re-sent until one of them acknowledges it",
            sos.recipients.len()
        ));

        // Inès arrives.
        if !wait_until(stop, t0 + self.real(at::INES_ARRIVES)).await {
            return Err(StoryError::Stopped);
        }
        c[INES].arrived().await?;
        self.set_walker(INES, |w| {
            w.speed_mps = 1.2;
            w.wander = true;
        });
        n.say("Inès arrives and taps \"arrived\": her switch is withdrawn from the mailbox");

        if !wait_until(stop, t0 + self.real(at::END)).await {
            return Err(StoryError::Stopped);
        }
        n.say(
            "the story is told; reports keep coming. Open Camille's app to see her inbox \
             (Ctrl-C to stop)",
        );
        Ok(())
    }
}

/// A key for "already told": the kind of notice, who, and its id.
fn told_key(item: &InboxItem) -> Option<String> {
    let (kind, id) = match &item.notice {
        InboxNotice::JourneyStarted { journey, .. } => ("started", journey.to_hex()),
        InboxNotice::Arrived { journey } => ("arrived", journey.to_hex()),
        InboxNotice::Overdue { journey, .. } => ("overdue", journey.to_hex()),
        InboxNotice::Sos { sos, .. } => ("sos", sos.to_hex()),
        InboxNotice::Acked { of } => ("acked", of.to_hex()),
        _ => return None,
    };
    Some(format!("{kind}:{}:{id}", item.from_name))
}

/// The next inbox items of a node: from its events, or (if the watcher fell
/// behind and events were lost) the whole inbox. `None` once stopping.
async fn next_items(
    node: &Node,
    events: &mut broadcast::Receiver<NodeEvent>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<InboxItem>> {
    loop {
        let lagged = tokio::select! {
            ev = events.recv() => match ev {
                Ok(NodeEvent::Alert(item)) | Ok(NodeEvent::Circle(item)) => return Some(vec![item]),
                Ok(NodeEvent::Report(_)) => false,
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = stop.wait_for(|s| *s) => return None,
        };
        if lagged {
            if let Ok(inbox) = node.inbox(None).await {
                return Some(inbox.items);
            }
        }
    }
}

async fn watch_camille(
    node: Node,
    mut events: broadcast::Receiver<NodeEvent>,
    n: Narrator,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told = HashSet::new();
    while let Some(items) = next_items(&node, &mut events, &mut stop).await {
        for item in items {
            camille_sees(&item, &mut told, &n, &progress);
        }
    }
}

fn camille_sees(item: &InboxItem, told: &mut HashSet<String>, n: &Narrator, progress: &Progress) {
    let Some(key) = told_key(item) else { return };
    if !told.insert(key) {
        return;
    }
    let who = &item.from_name;
    match &item.notice {
        InboxNotice::JourneyStarted { .. } => n.say(format!(
            "Camille's phone: {who} is on a journey (she can follow it on her map)"
        )),
        InboxNotice::Arrived { .. } => {
            progress.arrival_seen.store(true, Ordering::Relaxed);
            n.say(format!("Camille's phone: {who} arrived safely"));
        }
        InboxNotice::Overdue { .. } => {
            progress.overdue_seen.store(true, Ordering::Relaxed);
            n.say(format!(
                "Camille's phone: ALERT, {who} is overdue (not arrived, grace time over); \
                 the app shows it with his last position"
            ));
        }
        InboxNotice::Sos { .. } => {
            progress.sos_seen.store(true, Ordering::Relaxed);
            n.say(format!(
                "Camille's phone: ALERT, SOS from {who}; it waits in Camille's app for her \
                 to acknowledge"
            ));
        }
        _ => {}
    }
}

async fn watch_sofiane(
    node: Node,
    mut events: broadcast::Receiver<NodeEvent>,
    delay: Duration,
    n: Narrator,
    mut stop: watch::Receiver<bool>,
) {
    let mut told = HashSet::new();
    while let Some(items) = next_items(&node, &mut events, &mut stop).await {
        for item in items {
            if !matches!(item.notice, InboxNotice::Sos { .. }) {
                continue;
            }
            let Some(key) = told_key(&item) else { continue };
            if !told.insert(key) {
                continue;
            }
            n.say(format!(
                "Sofiane's phone: ALERT, SOS from {}",
                item.from_name
            ));
            if !wait_until(&mut stop, Instant::now() + delay).await {
                return;
            }
            match node.ack_inbox(vec![item.id]).await {
                Ok(_) => n.say(format!(
                    "Sofiane acknowledges {}'s SOS (and calls her)",
                    item.from_name
                )),
                Err(e) => n.say(format!("Sofiane's phone could not acknowledge: {e}")),
            }
        }
    }
}

async fn watch_lea(
    node: Node,
    mut events: broadcast::Receiver<NodeEvent>,
    n: Narrator,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told = HashSet::new();
    while let Some(items) = next_items(&node, &mut events, &mut stop).await {
        for item in items {
            if !matches!(item.notice, InboxNotice::Acked { .. }) {
                continue;
            }
            let Some(key) = told_key(&item) else { continue };
            if told.insert(key) {
                progress.sos_acked.store(true, Ordering::Relaxed);
                n.say(format!(
                    "Léa's phone: {} has seen her SOS (acknowledged)",
                    item.from_name
                ));
            }
        }
    }
}
