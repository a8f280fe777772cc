//! The scenario and its plan: everything that happens in a run, drawn in
//! advance from the seed.
//!
//! [`Plan::new`] turns a [`SimConfig`] into the list of timed events (who
//! reports what where, who leaves and comes back, who walks where, when
//! the city is split and healed, when a relay dies, what the adversaries
//! send, which phones become contacts and when one raises an SOS to the
//! other) and the timelines the figures are judged against (when each phone
//! is online, which areas it follows). Both overlays (Ronde and the bare
//! gossipsub baseline) replay the same plan, so their figures compare.
//!
//! Only the plan is reproducible bit for bit from the seed. libp2p draws
//! its own randomness (identities, Noise keys, gossipsub's choice of mesh
//! peers) and two cores schedule tasks as they can, so two runs with the
//! same seed give close, not identical, figures.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ronde_node::GossipTuning;
use ronde_protocol::{cell_for, topics_around, Area, Category, Cell, Draft};
use serde::Serialize;

use crate::city::City;
use crate::net::{mix64, Slot};
use crate::SimError;

/// The Unix time at which every run starts (model time 0), a whole minute.
pub const T0: u64 = 1_790_000_040;

/// Everything a run is made of. All durations are model time.
#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Phones.
    pub phones: usize,
    /// Relays (cover every area of the city, accept many connections).
    pub relays: usize,
    /// Seed of everything the simulator draws.
    pub seed: u64,
    /// Time for meshes to form before the first report.
    pub warmup: Duration,
    /// Time during which reports are made (and churn, walks, events run).
    pub duration: Duration,
    /// How long after its publication a report is followed; also the
    /// drain at the end.
    pub window: Duration,
    /// Smallest one-way link latency.
    pub latency_min: Duration,
    /// Largest one-way link latency.
    pub latency_max: Duration,
    /// Probability that a segment is lost (and retransmitted).
    pub loss: f64,
    /// Fraction of online phones that leave per minute (they come back
    /// after [`SimConfig::offline_mean`] on average, as new peers).
    pub churn_per_min: f64,
    /// Mean time a phone that left stays offline.
    pub offline_mean: Duration,
    /// Fraction of phones that walk.
    pub walkers: f64,
    /// Walking speed, m/s.
    pub speed_mps: f64,
    /// Mean time between two reports, city-wide (Poisson).
    pub report_every: Duration,
    /// Split the city in two (west and east of the centre) at this time,
    /// for this long.
    pub partition: Option<(Duration, Duration)>,
    /// Kill a relay (for good) at this time.
    pub relay_failure: Option<Duration>,
    /// Peers that flood invalid, forged and expired reports.
    pub flooders: usize,
    /// Mean time between two floods of one flooder.
    pub flood_every: Duration,
    /// Peers that join meshes and forward nothing.
    pub droppers: usize,
    /// Live reports in the city when the measurement starts (published,
    /// backdated over the last 29 minutes, by a seeder during the
    /// warm-up), so stores, sync answers and gossip are in steady state.
    /// `None`: 30 minutes of reports at `report_every`, at most 2000.
    pub prefill: Option<usize>,
    /// Phones each phone dials when it comes online.
    pub peers: usize,
    /// Relays each phone dials.
    pub relay_links: usize,
    /// Gossipsub heartbeat (model time; the wall-clock one is dilated).
    pub heartbeat: Duration,
    /// Wall-clock seconds per model second.
    pub dilation: f64,
    /// Run Ronde nodes.
    pub ronde: bool,
    /// Run the bare gossipsub baseline on the same plan.
    pub baseline: bool,
    /// Ronde's gossipsub mesh (the node's default unless an experiment
    /// changes it).
    pub gossip: GossipTuning,
    /// The baseline's mesh; `None`: the same as Ronde's, so that the ratios
    /// measure what Ronde adds to gossipsub, not a different mesh.
    pub baseline_gossip: Option<GossipTuning>,
    /// Ronde's relays are gossip hubs (the directory's `gossip` role,
    /// docs/protocol.md §3.2): they run `GossipTuning::hub()` and the
    /// phones know them as hubs (`NodeConfig::gossip_hubs`); `gossip` is
    /// then the phones' mesh beside them.
    pub hubs: bool,
    /// City centre.
    pub center: (f64, f64),
    /// Spread of the population, km.
    pub sigma_km: f64,
    /// Pairs of phones made contacts during the warm-up (invite, accept,
    /// approve); the first of each pair raises one SOS during the reporting
    /// period. Every other pair's contact (the first, third...) is offline
    /// when it is raised and comes back later, so the SOS can only reach it
    /// through a relay's mailbox (if there are relays).
    pub sos_pairs: usize,
    /// Proof-of-work difficulty of reports (and the nodes' minimum).
    pub difficulty: u8,
    /// Tokio worker threads.
    pub workers: usize,
    /// Nodes started at once.
    pub start_batch: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Fraction of phones that spy (log the first peer of each report and
    /// collude, [`crate::privacy`]); above 0, Ronde runs a second time
    /// without the stem for comparison.
    pub spies: f64,
    /// Fraction of phones in the background (issue 16 §4): from a moment
    /// in [`BACKGROUND_AT`] of the warm-up they follow no area and report
    /// nothing; each has a contact and a push endpoint registered with the
    /// relays' mailboxes, as a phone in a pocket. With it, the contacts of
    /// the SOS pairs that are not away are in the background too.
    pub background: f64,
    /// The background's safety poll (`None`: the node's default, 15
    /// minutes).
    pub background_poll: Option<Duration>,
    /// Ronde's own reports take the stem (`/ronde/stem/1`).
    pub stem: bool,
    /// Sybil phones flooding valid reports (issue 14; see [`crate::spam`]).
    pub spam: crate::spam::SpamConfig,
    /// Node timers overridden for the Ronde nodes.
    #[serde(flatten)]
    pub timers: crate::peers::NodeTimers,
}

impl Default for SimConfig {
    fn default() -> Self {
        let city = City::paris();
        SimConfig {
            phones: 200,
            relays: 4,
            seed: 0,
            warmup: Duration::from_secs(20),
            duration: Duration::from_secs(120),
            window: Duration::from_secs(10),
            latency_min: Duration::from_millis(20),
            latency_max: Duration::from_millis(150),
            loss: 0.01,
            churn_per_min: 0.10,
            offline_mean: Duration::from_secs(60),
            walkers: 0.3,
            speed_mps: 1.4,
            report_every: Duration::from_secs(10),
            partition: None,
            relay_failure: None,
            flooders: 2,
            flood_every: Duration::from_secs(2),
            droppers: 2,
            prefill: None,
            peers: 6,
            relay_links: 1,
            heartbeat: Duration::from_secs(1),
            dilation: 1.0,
            ronde: true,
            baseline: true,
            gossip: GossipTuning::around_hubs(),
            baseline_gossip: None,
            hubs: true,
            center: city.center,
            sigma_km: city.sigma_m / 1000.0,
            sos_pairs: 4,
            difficulty: 8,
            workers: 2,
            start_batch: 32,
            progress: true,
            spies: 0.0,
            background: 0.0,
            background_poll: None,
            stem: true,
            spam: crate::spam::SpamConfig::default(),
            timers: Default::default(),
        }
    }
}

impl SimConfig {
    /// Check the numbers make sense.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_owned()));
        if self.phones < 2 {
            return bad("at least 2 phones");
        }
        if !(self.dilation.is_finite() && self.dilation >= 1.0 && self.dilation <= 1000.0) {
            return bad("dilation must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&self.spies) {
            return bad("spies must be a fraction in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.background) {
            return bad("background must be a fraction in [0, 1]");
        }
        if self.background > 0.0 && self.relays == 0 {
            return bad("background phones need relays (their mailbox hosts)");
        }
        if !(0.0..0.5).contains(&self.loss) {
            return bad("loss must be in [0, 0.5)");
        }
        if !(0.0..=1.0).contains(&self.churn_per_min) {
            return bad("churn must be in [0, 1] per minute");
        }
        if !(0.0..=1.0).contains(&self.walkers) {
            return bad("walkers must be a fraction in [0, 1]");
        }
        if self.latency_min > self.latency_max {
            return bad("latency min is above latency max");
        }
        if self.report_every.is_zero() || self.flood_every.is_zero() {
            return bad("report and flood intervals must be positive");
        }
        if self.heartbeat < Duration::from_millis(50) {
            return bad("heartbeat below 50 ms");
        }
        if self.window.is_zero() || self.duration.is_zero() {
            return bad("duration and window must be positive");
        }
        if !(self.sigma_km > 0.1 && self.sigma_km < 50.0) {
            return bad("sigma must be between 0.1 and 50 km");
        }
        if self.relay_failure.is_some() && self.relays == 0 {
            return bad("a relay failure needs relays");
        }
        if 2 * self.sos_pairs > self.phones {
            return bad("SOS pairs need two phones each");
        }
        if self.sos_pairs > 0 && self.duration.as_secs_f64() < SOS_MIN_DURATION {
            return bad("the SOS workload needs a reporting period of at least 10 s");
        }
        if self.workers == 0 || self.start_batch == 0 {
            return bad("workers and start batch must be positive");
        }
        ronde_protocol::area_of(self.center.0, self.center.1)
            .map_err(|e| SimError::Config(format!("centre: {e}")))?;
        self.spam.validate()
    }

    /// Sybil phones flooding valid reports.
    pub fn spammers(&self) -> usize {
        self.spam.spammers(self.phones)
    }

    /// The city.
    pub fn city(&self) -> City {
        City {
            center: self.center,
            sigma_m: self.sigma_km * 1000.0,
        }
    }

    /// End of the run (model seconds).
    pub fn end(&self) -> f64 {
        (self.warmup + self.duration + self.window).as_secs_f64()
    }

    /// Reports prefilled before the measurement.
    pub fn prefill_count(&self) -> usize {
        self.prefill.unwrap_or_else(|| {
            ((1800.0 / self.report_every.as_secs_f64()).round() as usize).min(2000)
        })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.phones
            + self.relays
            + self.flooders
            + self.droppers
            + self.spammers()
            + usize::from(self.prefill_count() > 0)
    }
}

/// What a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A phone.
    Phone,
    /// A relay.
    Relay,
    /// Sends invalid, forged, expired and future reports.
    Flooder,
    /// Joins meshes and forwards nothing.
    Dropper,
    /// Publishes the prefill during the warm-up, then stays quiet.
    Seeder,
    /// A Sybil phone publishing valid spam ([`crate::spam`]).
    Spammer,
}

/// What a flooder sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloodKind {
    /// A sealed report with one bit of its signature flipped.
    Forged,
    /// Random bytes of a report's length.
    Garbage,
    /// A validly sealed report observed 45 minutes ago (expired).
    Expired,
    /// A validly sealed report observed an hour from now.
    Future,
}

/// A planned report.
#[derive(Debug, Clone)]
pub struct PlannedReport {
    /// When (model seconds).
    pub t: f64,
    /// Which phone.
    pub phone: Slot,
    /// What.
    pub category: Category,
    /// Where the phone is.
    pub at: (f64, f64),
    /// Its cell and area.
    pub cell: Cell,
    /// The report the bare baseline publishes (sealed from the seed; Ronde
    /// nodes seal their own).
    pub bytes: Vec<u8>,
}

/// A planned flood message.
#[derive(Debug, Clone)]
pub struct PlannedFlood {
    /// When (model seconds).
    pub t: f64,
    /// Which flooder.
    pub flooder: Slot,
    /// On which area's topic.
    pub area: Area,
    /// What kind of bad.
    pub kind: FloodKind,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A planned SOS between two phones that become contacts in the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedSos {
    /// Who raises it (and invites the other).
    pub sender: Slot,
    /// The contact it goes to (accepts the invite).
    pub contact: Slot,
    /// When the two start the handshake (model seconds, in the warm-up).
    pub befriend_at: f64,
    /// When the sender raises the SOS.
    pub t: f64,
    /// The contact's planned absence around the SOS (leaves, comes back
    /// with the same data directory), if it is to be offline when the SOS
    /// is raised.
    pub offline: Option<(f64, f64)>,
}

/// A timed event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// Make planned report `i`.
    Report(usize),
    /// A phone goes offline.
    Leave(Slot),
    /// A phone comes (back) online, as a new peer.
    Join(Slot),
    /// A walker crossed into another cell.
    Move(Slot, (f64, f64)),
    /// Split the city.
    PartitionStart,
    /// Heal it.
    PartitionEnd,
    /// A relay dies.
    RelayFail(Slot),
    /// Send planned flood `i`.
    Flood(usize),
    /// Publish prefill report `i`.
    Seed(usize),
    /// A device online from the start dials its first peers (spread over
    /// the first quarter of the warm-up, at most 10 s, as phones do not all
    /// come online in the same millisecond).
    Connect(Slot),
    /// Every node below its target degree dials more peers.
    Maintain,
    /// The two phones of planned SOS `i` become contacts (invite, accept,
    /// approve).
    Befriend(usize),
    /// The sender of planned SOS `i` raises it.
    Sos(usize),
    /// Publish planned spam report `i`.
    Spam(usize),
    /// Background pair `i` becomes contacts (the foreground phone invites).
    BefriendPair(usize),
    /// A background phone registers its push endpoint and goes to the
    /// background.
    Background(Slot),
}

/// When background phones go to the background, as a fraction of the
/// warm-up: each at a moment drawn in this range (after their handshakes,
/// at 20–40 % of it; one whose handshake is not done yet waits for it, at
/// most until the end of the warm-up). Spread, as people put their phones
/// away at different moments: all at once, their push registrations (3
/// days × each host) overflow a host's pending connections.
pub const BACKGROUND_AT: std::ops::Range<f64> = 0.5..0.8;

/// Every few seconds (model) nodes short of peers dial more.
pub const MAINTAIN_EVERY: f64 = 5.0;
/// Walkers' positions are sampled this often (model seconds).
const MOVE_TICK: f64 = 5.0;
/// Shortest reporting period with SOS (model seconds): an offline contact
/// must have time to come back and fetch its mail.
const SOS_MIN_DURATION: f64 = 10.0;
/// An offline contact leaves this long before the SOS (model seconds).
const SOS_LEAVE_BEFORE: f64 = 1.5;
/// ... and comes back at least this long after it.
const SOS_BACK_AFTER: f64 = 2.0;

/// The plan of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Role of each slot.
    pub roles: Vec<Role>,
    /// Initial position of each slot.
    pub start_pos: Vec<(f64, f64)>,
    /// Timed events, sorted by time.
    pub events: Vec<(f64, Event)>,
    /// Online intervals of each slot `[from, to)` (model seconds; `to` is
    /// `f64::INFINITY` if it stays).
    pub online: Vec<Vec<(f64, f64)>>,
    /// Areas each slot follows over time (time it starts, areas).
    pub areas: Vec<Vec<(f64, Vec<Area>)>>,
    /// Position of each slot over time (time, position).
    pub positions: Vec<Vec<(f64, (f64, f64))>>,
    /// The planned reports.
    pub reports: Vec<PlannedReport>,
    /// The planned floods.
    pub floods: Vec<PlannedFlood>,
    /// The prefill: (area, bytes) of valid reports observed up to 29
    /// minutes before their publication.
    pub seeds: Vec<(Area, Vec<u8>)>,
    /// The planned SOS, one per pair of contacts.
    pub sos: Vec<PlannedSos>,
    /// The areas covering the city (what relays follow).
    pub city_areas: Vec<Area>,
    /// Partition side of each slot (0 west of the centre, 1 east).
    pub sides: Vec<u8>,
    /// The Sybils' valid spam.
    pub spam: crate::spam::SpamPlan,
    /// When each background phone goes to the background (model
    /// seconds), `None` for the others.
    pub background: Vec<Option<f64>>,
    /// Background phones with no SOS pair, each with its contact (a
    /// foreground phone) and when they become contacts: (background
    /// phone, contact, model seconds).
    pub background_pairs: Vec<(Slot, Slot, f64)>,
}

fn exp_sample(rng: &mut impl Rng, mean: f64) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    -mean * u.ln()
}

fn sub_rng(seed: u64, purpose: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(mix64(seed ^ mix64(purpose)))
}

fn seal(
    rng: &mut ChaCha20Rng,
    category: Category,
    cell: Cell,
    observed: u64,
    difficulty: u8,
) -> Result<Vec<u8>, SimError> {
    Draft::new(category, cell, observed)
        .seal(difficulty, rng)
        .map(|r| r.to_bytes())
        .map_err(|e| SimError::Config(format!("sealing a planned report: {e}")))
}

/// The SOS pairs of `cfg`: `2 × sos_pairs` distinct phones; handshakes
/// spread over 20–40 % of the warm-up (they dial each other directly), SOS
/// spread over the first half of the reporting period (from 2 s in), and
/// for every other pair (if there are relays to hold mail) the contact
/// away from 1.5 s before its SOS until 2 s + up to min(offline mean,
/// a quarter of the period) after it.
fn plan_sos(cfg: &SimConfig, rng: &mut ChaCha20Rng) -> Vec<PlannedSos> {
    let n = cfg.sos_pairs.min(cfg.phones / 2);
    if n == 0 {
        return Vec::new();
    }
    let t_start = cfg.warmup.as_secs_f64();
    let span = (0.5 * cfg.duration.as_secs_f64() - SOS_BACK_AFTER).max(0.0);
    let away = cfg
        .offline_mean
        .as_secs_f64()
        .min(cfg.duration.as_secs_f64() / 4.0);
    let mut phones: Vec<Slot> = (0..cfg.phones as Slot).collect();
    phones.shuffle(rng);
    (0..n)
        .map(|i| {
            let t =
                t_start + SOS_BACK_AFTER + span * (i as f64 + rng.gen_range(0.0..1.0)) / n as f64;
            let offline = (i % 2 == 0 && cfg.relays > 0).then(|| {
                (
                    t - SOS_LEAVE_BEFORE,
                    t + SOS_BACK_AFTER + away * rng.gen_range(0.0..1.0),
                )
            });
            PlannedSos {
                sender: phones[2 * i],
                contact: phones[2 * i + 1],
                befriend_at: t_start * (0.2 + 0.2 * i as f64 / n as f64),
                t,
                offline,
            }
        })
        .collect()
}

impl Plan {
    /// Draw the plan of `cfg` from its seed.
    pub fn new(cfg: &SimConfig) -> Result<Plan, SimError> {
        cfg.validate()?;
        let city = cfg.city();
        let n = cfg.slots();
        let end = cfg.end();
        let t_start = cfg.warmup.as_secs_f64();
        let t_stop = (cfg.warmup + cfg.duration).as_secs_f64();
        let mut roles = Vec::with_capacity(n);
        roles.extend(std::iter::repeat_n(Role::Phone, cfg.phones));
        roles.extend(std::iter::repeat_n(Role::Relay, cfg.relays));
        roles.extend(std::iter::repeat_n(Role::Flooder, cfg.flooders));
        roles.extend(std::iter::repeat_n(Role::Dropper, cfg.droppers));
        let first_spammer = roles.len() as Slot;
        roles.extend(std::iter::repeat_n(Role::Spammer, cfg.spammers()));
        let spam = crate::spam::plan(
            &cfg.spam,
            &city,
            &crate::spam::Schedule {
                seed: cfg.seed,
                first: first_spammer,
                spammers: cfg.spammers(),
                from: t_start,
                to: t_stop,
                honest_every: cfg.report_every.as_secs_f64(),
                difficulty: cfg.difficulty,
                t0: T0,
            },
        )?;
        if cfg.prefill_count() > 0 {
            roles.push(Role::Seeder);
        }

        // Where everyone is. Relays sit on a ring of radius σ.
        let mut rng = sub_rng(cfg.seed, 1);
        let start_pos: Vec<(f64, f64)> = roles
            .iter()
            .enumerate()
            .map(|(i, role)| match role {
                Role::Relay => {
                    let k = (i - cfg.phones) as f64 / cfg.relays.max(1) as f64;
                    let ang = std::f64::consts::TAU * k;
                    City::offset(
                        city.center,
                        city.sigma_m * ang.cos(),
                        city.sigma_m * ang.sin(),
                    )
                }
                // A Sybil sits in one of its cells.
                Role::Spammer if !spam.cells.is_empty() => {
                    spam.cells[(i - first_spammer as usize) % spam.cells.len()].center()
                }
                _ => city.sample(&mut rng),
            })
            .collect();
        let sides = start_pos
            .iter()
            .map(|p| u8::from(p.1 >= city.center.1))
            .collect();

        let mut events: Vec<(f64, Event)> = Vec::new();

        // Walks: positions every MOVE_TICK, a move event at each cell change.
        let mut rng = sub_rng(cfg.seed, 2);
        let mut positions: Vec<Vec<(f64, (f64, f64))>> =
            start_pos.iter().map(|p| vec![(0.0, *p)]).collect();
        for phone in 0..cfg.phones {
            if !rng.gen_bool(cfg.walkers) {
                continue;
            }
            let mut t = 0.0;
            let mut pos = start_pos[phone];
            let mut cell = cell_for(pos.0, pos.1, 7).ok();
            while t < end {
                let dest = city.sample(&mut rng);
                let dist = City::distance_m(pos, dest);
                let walk = dist / cfg.speed_mps.max(0.1);
                let mut s = MOVE_TICK;
                while s < walk && t + s < end {
                    let p = City::lerp(pos, dest, s / walk);
                    let c = cell_for(p.0, p.1, 7).ok();
                    if c != cell {
                        cell = c;
                        events.push((t + s, Event::Move(phone as Slot, p)));
                        positions[phone].push((t + s, p));
                    }
                    s += MOVE_TICK;
                }
                t += walk + rng.gen_range(0.0..60.0);
                pos = dest;
            }
        }

        // Sessions: everyone online from 0; phones churn from the end of
        // the warm-up until the end of the reporting period.
        let mut rng = sub_rng(cfg.seed, 3);
        let mut online: Vec<Vec<(f64, f64)>> = vec![vec![(0.0, f64::INFINITY)]; n];
        if cfg.churn_per_min > 0.0 {
            let mean_on = 60.0 / cfg.churn_per_min;
            let mean_off = cfg.offline_mean.as_secs_f64().max(1.0);
            for (phone, sessions) in online.iter_mut().enumerate().take(cfg.phones) {
                let mut list = Vec::new();
                let mut from = 0.0;
                let mut t = t_start + exp_sample(&mut rng, mean_on);
                while t < t_stop {
                    list.push((from, t));
                    events.push((t, Event::Leave(phone as Slot)));
                    // At least 2 s offline: a restart is not instant.
                    let back = t + 2.0 + exp_sample(&mut rng, mean_off);
                    if back >= t_stop {
                        from = f64::NAN;
                        break;
                    }
                    events.push((back, Event::Join(phone as Slot)));
                    from = back;
                    t = back + exp_sample(&mut rng, mean_on);
                }
                if !from.is_nan() {
                    list.push((from, f64::INFINITY));
                }
                *sessions = list;
            }
        }
        // SOS pairs: drawn apart from everything else; their phones do not
        // churn, and every other contact is away around its SOS.
        let sos = plan_sos(cfg, &mut sub_rng(cfg.seed, 8));
        for (i, p) in sos.iter().enumerate() {
            for s in [p.sender, p.contact] {
                events.retain(|(_, e)| !matches!(e, Event::Leave(x) | Event::Join(x) if *x == s));
                online[s as usize] = vec![(0.0, f64::INFINITY)];
            }
            events.push((p.befriend_at, Event::Befriend(i)));
            events.push((p.t, Event::Sos(i)));
            if let Some((leave, back)) = p.offline {
                online[p.contact as usize] = vec![(0.0, leave), (back, f64::INFINITY)];
                events.push((leave, Event::Leave(p.contact)));
                events.push((back, Event::Join(p.contact)));
            }
        }
        // Background phones: drawn apart, with the SOS contacts that are
        // not away; they do not walk or churn, and follow no area from a
        // moment in BACKGROUND_AT of the warm-up.
        let mut background: Vec<Option<f64>> = vec![None; n];
        let mut background_pairs = Vec::new();
        if cfg.background > 0.0 {
            let mut rng = sub_rng(cfg.seed, 9);
            let mut paired = vec![false; n];
            for p in &sos {
                paired[p.sender as usize] = true;
                paired[p.contact as usize] = true;
                if p.offline.is_none() {
                    background[p.contact as usize] = Some(0.0);
                }
            }
            for phone in 0..cfg.phones {
                if !paired[phone] && rng.gen_bool(cfg.background) {
                    background[phone] = Some(0.0);
                }
            }
            let friends: Vec<Slot> = (0..cfg.phones as Slot)
                .filter(|p| background[*p as usize].is_none() && !paired[*p as usize])
                .collect();
            for phone in 0..cfg.phones {
                if background[phone].is_none() {
                    continue;
                }
                let at = t_start * rng.gen_range(BACKGROUND_AT);
                background[phone] = Some(at);
                let s = phone as Slot;
                events.retain(|(_, e)| {
                    !matches!(e, Event::Leave(x) | Event::Join(x) | Event::Move(x, _) if *x == s)
                });
                online[phone] = vec![(0.0, f64::INFINITY)];
                positions[phone].truncate(1);
                events.push((at, Event::Background(s)));
                if paired[phone] {
                    continue;
                }
                if let Some(&friend) = friends.choose(&mut rng) {
                    let i = background_pairs.len();
                    let when = t_start * rng.gen_range(0.2..0.4);
                    background_pairs.push((s, friend, when));
                    events.push((when, Event::BefriendPair(i)));
                }
            }
        }
        if let (Some(at), true) = (cfg.relay_failure, cfg.relays > 0) {
            let relay = cfg.phones as Slot;
            let t = at.as_secs_f64();
            online[relay as usize] = vec![(0.0, t)];
            events.push((t, Event::RelayFail(relay)));
        }
        if let Some((at, dur)) = cfg.partition {
            events.push((at.as_secs_f64(), Event::PartitionStart));
            events.push(((at + dur).as_secs_f64(), Event::PartitionEnd));
        }

        // Areas followed over time.
        let city_areas = city.areas();
        let mut areas: Vec<Vec<(f64, Vec<Area>)>> = Vec::with_capacity(n);
        for (slot, role) in roles.iter().enumerate() {
            let list = match role {
                Role::Phone if background[slot].is_some() => {
                    let p = positions[slot][0].1;
                    vec![
                        (0.0, topics_around(p.0, p.1).unwrap_or_default()),
                        (background[slot].unwrap_or(0.0), Vec::new()),
                    ]
                }
                Role::Phone => positions[slot]
                    .iter()
                    .filter_map(|(t, p)| Some((*t, topics_around(p.0, p.1).ok()?)))
                    .collect(),
                Role::Relay | Role::Dropper => vec![(0.0, city_areas.clone())],
                Role::Flooder | Role::Seeder | Role::Spammer => vec![(0.0, Vec::new())],
            };
            areas.push(list);
        }

        // Reports: Poisson city-wide, by a phone online at the time.
        let mut rng = sub_rng(cfg.seed, 4);
        let mut reports = Vec::new();
        let mut t = t_start + exp_sample(&mut rng, cfg.report_every.as_secs_f64());
        let plan_view = PlanView {
            online: &online,
            positions: &positions,
        };
        while t < t_stop {
            let candidates: Vec<Slot> = (0..cfg.phones as Slot)
                .filter(|p| {
                    background[*p as usize].is_none()
                        && plan_view.is_online(*p, t)
                        && plan_view.is_online(*p, t + 1.0)
                })
                .collect();
            if let Some(&phone) = candidates.choose(&mut rng) {
                let at = plan_view.position(phone, t);
                let category = *Category::ALL
                    .choose(&mut rng)
                    .unwrap_or(&Category::Harassment);
                let cell = cell_for(at.0, at.1, 7)
                    .map_err(|e| SimError::Config(format!("report position: {e}")))?;
                let observed = T0 + t as u64;
                let bytes = seal(&mut rng, category, cell, observed, cfg.difficulty)?;
                events.push((t, Event::Report(reports.len())));
                reports.push(PlannedReport {
                    t,
                    phone,
                    category,
                    at,
                    cell,
                    bytes,
                });
            }
            t += exp_sample(&mut rng, cfg.report_every.as_secs_f64());
        }

        // Floods.
        let mut rng = sub_rng(cfg.seed, 5);
        let mut floods = Vec::new();
        let kinds = [
            FloodKind::Forged,
            FloodKind::Garbage,
            FloodKind::Expired,
            FloodKind::Future,
        ];
        for f in 0..cfg.flooders {
            let flooder = (cfg.phones + cfg.relays + f) as Slot;
            let mut t = t_start + exp_sample(&mut rng, cfg.flood_every.as_secs_f64());
            let mut k = 0usize;
            while t < t_stop {
                let at = city.sample(&mut rng);
                let cell = cell_for(at.0, at.1, 7)
                    .map_err(|e| SimError::Config(format!("flood position: {e}")))?;
                let kind = kinds[k % kinds.len()];
                k += 1;
                let now = T0 + t as u64;
                let category = Category::Harassment;
                let bytes = match kind {
                    FloodKind::Forged => {
                        let mut b = seal(&mut rng, category, cell, now, cfg.difficulty)?;
                        if let Some(last) = b.last_mut() {
                            *last ^= 0x01;
                        }
                        b
                    }
                    FloodKind::Garbage => {
                        let mut b = vec![0u8; 121];
                        rng.fill(&mut b[..]);
                        b
                    }
                    FloodKind::Expired => {
                        seal(&mut rng, category, cell, now - 45 * 60, cfg.difficulty)?
                    }
                    FloodKind::Future => {
                        seal(&mut rng, category, cell, now + 3600, cfg.difficulty)?
                    }
                };
                events.push((t, Event::Flood(floods.len())));
                floods.push(PlannedFlood {
                    t,
                    flooder,
                    area: cell.area(),
                    kind,
                    bytes,
                });
                t += exp_sample(&mut rng, cfg.flood_every.as_secs_f64());
            }
        }

        // Prefill: published by the seeder between 25 % and 50 % of the
        // warm-up (after the first connections, and long enough before the
        // measurement for its gossip to be over), backdated up to 29 min.
        let mut rng = sub_rng(cfg.seed, 7);
        let mut seeds = Vec::new();
        for i in 0..cfg.prefill_count() {
            let t = t_start * (0.25 + 0.25 * i as f64 / cfg.prefill_count() as f64);
            let at = city.sample(&mut rng);
            let cell = cell_for(at.0, at.1, 7)
                .map_err(|e| SimError::Config(format!("prefill position: {e}")))?;
            let age = rng.gen_range(0..29 * 60);
            let observed = (T0 + t as u64).saturating_sub(age);
            let category = *Category::ALL
                .choose(&mut rng)
                .unwrap_or(&Category::Harassment);
            let bytes = seal(&mut rng, category, cell, observed, cfg.difficulty)?;
            events.push((t, Event::Seed(seeds.len())));
            seeds.push((cell.area(), bytes));
        }

        let mut rng = sub_rng(cfg.seed, 6);
        let spread = (t_start / 4.0).clamp(0.001, 10.0);
        for (slot, role) in roles.iter().enumerate() {
            if *role != Role::Relay {
                events.push((rng.gen_range(0.0..spread), Event::Connect(slot as Slot)));
            }
        }

        for (i, r) in spam.reports.iter().enumerate() {
            events.push((r.t, Event::Spam(i)));
        }

        let mut m = MAINTAIN_EVERY;
        while m < end {
            events.push((m, Event::Maintain));
            m += MAINTAIN_EVERY;
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));

        Ok(Plan {
            roles,
            start_pos,
            events,
            online,
            areas,
            positions,
            reports,
            floods,
            seeds,
            sos,
            city_areas,
            sides,
            spam,
            background,
            background_pairs,
        })
    }

    /// Whether a slot is a background phone.
    pub fn is_background(&self, slot: Slot) -> bool {
        self.background_at(slot).is_some()
    }

    /// When a background phone goes to the background.
    pub fn background_at(&self, slot: Slot) -> Option<f64> {
        self.background.get(slot as usize).copied().flatten()
    }

    /// Whether a slot has contacts: the phones of the SOS pairs, the
    /// background phones and their contacts. They use the relays as their
    /// mailbox hosts.
    pub fn has_contacts(&self, slot: Slot) -> bool {
        self.is_sos_phone(slot)
            || self.is_background(slot)
            || self.background_pairs.iter().any(|(_, f, _)| *f == slot)
    }

    /// Whether a slot is one of the phones of an SOS pair.
    pub fn is_sos_phone(&self, slot: Slot) -> bool {
        self.sos
            .iter()
            .any(|p| p.sender == slot || p.contact == slot)
    }

    /// Whether a slot is online at `t`.
    pub fn is_online(&self, slot: Slot, t: f64) -> bool {
        PlanView {
            online: &self.online,
            positions: &self.positions,
        }
        .is_online(slot, t)
    }

    /// Whether a slot is online over the whole of `[from, to]`.
    pub fn online_through(&self, slot: Slot, from: f64, to: f64) -> bool {
        self.online
            .get(slot as usize)
            .is_some_and(|s| s.iter().any(|(a, b)| *a <= from && to < *b))
    }

    /// Where a slot is at `t`.
    pub fn position(&self, slot: Slot, t: f64) -> (f64, f64) {
        PlanView {
            online: &self.online,
            positions: &self.positions,
        }
        .position(slot, t)
    }

    /// The areas a slot follows at `t`.
    pub fn areas_at(&self, slot: Slot, t: f64) -> &[Area] {
        let Some(list) = self.areas.get(slot as usize) else {
            return &[];
        };
        list.iter()
            .take_while(|(s, _)| *s <= t)
            .last()
            .map(|(_, a)| a.as_slice())
            .unwrap_or(&[])
    }

    /// Whether a slot follows `area` over the whole of `[from, to]`.
    pub fn follows_through(&self, slot: Slot, area: &Area, from: f64, to: f64) -> bool {
        let Some(list) = self.areas.get(slot as usize) else {
            return false;
        };
        if !self.areas_at(slot, from).contains(area) {
            return false;
        }
        list.iter()
            .filter(|(s, _)| *s > from && *s <= to)
            .all(|(_, a)| a.contains(area))
    }

    /// Honest slots: phones and relays.
    pub fn is_honest(&self, slot: Slot) -> bool {
        matches!(
            self.roles.get(slot as usize),
            Some(Role::Phone) | Some(Role::Relay)
        )
    }

    /// A deterministic random generator for a decision about `slot` at `t`.
    pub fn rng_for(seed: u64, slot: Slot, t: f64) -> ChaCha20Rng {
        sub_rng(seed, (u64::from(slot) << 32) ^ (t * 1000.0) as u64 ^ 0xD1A1)
    }
}

struct PlanView<'a> {
    online: &'a [Vec<(f64, f64)>],
    positions: &'a [Vec<(f64, (f64, f64))>],
}

impl PlanView<'_> {
    fn is_online(&self, slot: Slot, t: f64) -> bool {
        self.online
            .get(slot as usize)
            .is_some_and(|s| s.iter().any(|(a, b)| *a <= t && t < *b))
    }

    fn position(&self, slot: Slot, t: f64) -> (f64, f64) {
        self.positions
            .get(slot as usize)
            .and_then(|l| l.iter().take_while(|(s, _)| *s <= t).last())
            .map(|(_, p)| *p)
            .unwrap_or((0.0, 0.0))
    }
}

/// The planned duration of a run on the wall clock (excluding start-up).
pub fn wall_time(cfg: &SimConfig) -> Duration {
    Duration::from_secs_f64(cfg.end() * cfg.dilation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            phones: 100,
            relays: 2,
            flooders: 1,
            droppers: 1,
            duration: Duration::from_secs(300),
            partition: Some((Duration::from_secs(60), Duration::from_secs(30))),
            relay_failure: Some(Duration::from_secs(100)),
            seed: 9,
            ..SimConfig::default()
        }
    }

    #[test]
    fn the_plan_is_reproducible_from_the_seed() {
        let a = Plan::new(&small()).expect("plan");
        let b = Plan::new(&small()).expect("plan");
        assert_eq!(a.events, b.events);
        assert_eq!(a.start_pos, b.start_pos);
        let bytes = |p: &Plan| {
            p.reports
                .iter()
                .map(|r| r.bytes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(bytes(&a), bytes(&b));
        assert_eq!(a.sos, b.sos);
        assert!(!a.sos.is_empty());
        let c = Plan::new(&SimConfig {
            seed: 10,
            ..small()
        })
        .expect("plan");
        assert_ne!(a.start_pos, c.start_pos);
    }

    #[test]
    fn churn_rate_and_report_rate_match_the_config() {
        let cfg = small();
        let plan = Plan::new(&cfg).expect("plan");
        let leaves = plan
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Leave(_)))
            .count() as f64;
        // ~10 %/min of ~the online phones over 5 minutes: about 50 leaves
        // (fewer, since some phones are offline at any time).
        assert!((25.0..=70.0).contains(&leaves), "{leaves}");
        let reports = plan.reports.len() as f64;
        assert!((15.0..=50.0).contains(&reports), "{reports}");
        // Every report is made by a phone online at the time, in its cell.
        for r in &plan.reports {
            assert!(plan.is_online(r.phone, r.t));
            assert!(plan.areas_at(r.phone, r.t).contains(&r.cell.area()));
        }
        assert!(plan.events.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(!plan.is_online(cfg.phones as Slot, 101.0), "the relay died");
    }

    #[test]
    fn background_phones_follow_nothing_report_nothing_and_each_has_a_contact() {
        let cfg = SimConfig {
            background: 0.3,
            sos_pairs: 4,
            ..small()
        };
        let plan = Plan::new(&cfg).expect("plan");
        let bg: Vec<Slot> = (0..cfg.phones as Slot)
            .filter(|s| plan.is_background(*s))
            .collect();
        assert!((15..=50).contains(&bg.len()), "{}", bg.len());
        // The SOS contacts that are not away are in the background.
        for p in &plan.sos {
            assert_eq!(plan.is_background(p.contact), p.offline.is_none());
            assert!(!plan.is_background(p.sender));
        }
        let warm = cfg.warmup.as_secs_f64();
        for s in &bg {
            let at = plan.background_at(*s).expect("a time");
            assert!((warm * BACKGROUND_AT.start..warm * BACKGROUND_AT.end).contains(&at));
            assert!(plan.areas_at(*s, at).is_empty());
            assert!(!plan.areas_at(*s, 0.0).is_empty());
            assert_eq!(plan.online[*s as usize], vec![(0.0, f64::INFINITY)]);
            assert!(plan.events.contains(&(at, Event::Background(*s))));
            assert!(!plan.events.iter().any(|(_, e)| matches!(
                e,
                Event::Leave(x) | Event::Join(x) | Event::Move(x, _) if x == s
            )));
            assert!(plan.has_contacts(*s));
            if !plan.is_sos_phone(*s) {
                let pair = plan.background_pairs.iter().find(|(b, _, _)| b == s);
                let (_, friend, when) = pair.expect("a contact");
                assert!(!plan.is_background(*friend));
                assert!(*when < at);
            }
        }
        assert!(plan.reports.iter().all(|r| !plan.is_background(r.phone)));
        // Without background phones, the plan is the one of before.
        let none = Plan::new(&SimConfig {
            sos_pairs: 4,
            ..small()
        })
        .expect("plan");
        assert!(none.background.iter().all(Option::is_none));
        assert!(none.background_pairs.is_empty());
        let again = Plan::new(&SimConfig {
            sos_pairs: 4,
            background: 0.0,
            ..small()
        })
        .expect("plan");
        assert_eq!(none.events, again.events);
    }

    #[test]
    fn sos_pairs_are_contacts_before_the_measurement_and_every_other_one_is_away() {
        let cfg = SimConfig {
            sos_pairs: 5,
            ..small()
        };
        let plan = Plan::new(&cfg).expect("plan");
        assert_eq!(plan.sos.len(), 5);
        let t_start = cfg.warmup.as_secs_f64();
        let t_stop = (cfg.warmup + cfg.duration).as_secs_f64();
        let mut phones: Vec<Slot> = plan
            .sos
            .iter()
            .flat_map(|p| [p.sender, p.contact])
            .collect();
        assert!(phones
            .iter()
            .all(|s| plan.roles[*s as usize] == Role::Phone));
        phones.sort_unstable();
        phones.dedup();
        assert_eq!(phones.len(), 10, "pairs do not share phones");
        for (i, p) in plan.sos.iter().enumerate() {
            assert!(p.befriend_at > 0.0 && p.befriend_at < t_start, "{p:?}");
            assert!(p.t > t_start && p.t < t_stop, "{p:?}");
            assert!(plan.events.contains(&(p.befriend_at, Event::Befriend(i))));
            assert!(plan.events.contains(&(p.t, Event::Sos(i))));
            assert!(
                plan.online_through(p.sender, 0.0, cfg.end()),
                "senders stay"
            );
            // Their own sessions only: no churn.
            let moves: Vec<f64> = plan
                .events
                .iter()
                .filter(|(_, e)| matches!(e, Event::Leave(s) | Event::Join(s) if *s == p.contact || *s == p.sender))
                .map(|(t, _)| *t)
                .collect();
            match p.offline {
                Some((leave, back)) => {
                    assert_eq!(i % 2, 0);
                    assert_eq!(moves, vec![leave, back]);
                    assert!(plan.online_through(p.contact, 0.0, p.befriend_at + 1.0));
                    assert!(leave > t_start && leave < p.t && back > p.t + 1.0, "{p:?}");
                    assert!(!plan.is_online(p.contact, p.t));
                    assert!(plan.online_through(p.contact, back, cfg.end()));
                    assert!(back < t_stop, "{p:?}");
                }
                None => {
                    assert_eq!(i % 2, 1);
                    assert!(moves.is_empty());
                    assert!(plan.online_through(p.contact, 0.0, cfg.end()));
                }
            }
        }
        assert!(plan.is_sos_phone(plan.sos[0].contact));
        // Without relays nobody holds mail: no contact is planned away.
        let bare = Plan::new(&SimConfig {
            relays: 0,
            relay_failure: None,
            sos_pairs: 3,
            ..small()
        })
        .expect("plan");
        assert!(bare.sos.iter().all(|p| p.offline.is_none()));
        let none = Plan::new(&SimConfig {
            sos_pairs: 0,
            ..small()
        })
        .expect("plan");
        assert!(none.sos.is_empty());
        assert!(SimConfig {
            sos_pairs: 51,
            ..small()
        }
        .validate()
        .is_err());
        assert!(SimConfig {
            duration: Duration::from_secs(5),
            ..small()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn walkers_change_cells_at_walking_speed() {
        let plan = Plan::new(&small()).expect("plan");
        let moves: Vec<_> = plan
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Move(s, p) => Some((*t, *s, *p)),
                _ => None,
            })
            .collect();
        assert!(!moves.is_empty());
        for (t, s, p) in moves.iter().take(200) {
            let before = plan.position(*s, t - 0.001);
            // Consecutive cell changes are within about one cell (≈ 153 m
            // × 152 m, 216 m across) and one move tick of walking.
            let d = City::distance_m(before, *p);
            assert!(d > 0.0 && d <= 230.0, "{d}");
        }
    }
}
