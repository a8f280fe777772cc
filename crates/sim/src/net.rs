//! The emulated network: an in-process libp2p transport whose every
//! connection is a pair of delay lines.
//!
//! Each node gets a [`SimTransport`] (through
//! [`ronde_node::config::SimTransportFactory`] for Ronde nodes, directly for
//! the bare gossipsub peers); the node wraps it with Noise and Yamux exactly
//! as it wraps libp2p's memory transport. Addresses are `/memory/<port>`;
//! the [`SimNet`] knows which slot (simulated device) listens on which port.
//!
//! # Link model
//!
//! * **Latency.** Every pair of slots has a one-way latency drawn once,
//!   uniformly in `[latency_min, latency_max]`, from the run's seed and the
//!   pair (so a reconnection gets the same latency). Every chunk written is
//!   readable by the other end `latency` later, in order. A dial completes
//!   after one round trip (the TCP handshake); Noise and multistream-select
//!   then pay their own round trips through the delay lines.
//! * **Loss.** Gossip runs over a reliable, ordered stream, so a lost
//!   segment is not a lost message: it is a retransmission. Each chunk is
//!   cut into 1400-byte segments; each segment is lost with probability
//!   `loss`, and every loss adds a retransmission timeout
//!   (`max(min_rto, 4 × latency)`, doubling on each further loss). The
//!   chunk is delivered when its slowest segment is, and never before the
//!   chunk written before it (head-of-line blocking), as on TCP.
//! * **Bandwidth** is not limited: the figures are about latency and
//!   bytes, and a report is 121 bytes.
//! * **Partitions.** [`SimNet::set_partition`] assigns slots to sides;
//!   links across sides are reset at once, and dials across fail.
//! * **Time dilation.** Every modelled duration is multiplied by
//!   `dilation` on the wall clock (see `docs/simulation.md`).
//!
//! # Counting
//!
//! Bytes are counted per slot as they are written (sent) and read
//! (received). The transport also follows the Noise framing of each stream
//! (2-byte big-endian length before every handshake and transport frame,
//! after the plaintext multistream-select negotiation of `/noise`) and
//! counts the frames whose length is that of gossipsub RPCs carrying whole
//! reports, which is how duplicates are counted without decrypting
//! anything (see [`FrameClassifier`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::future::{BoxFuture, Ready};
use futures::{AsyncRead, AsyncWrite, Future, FutureExt};
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, Transport, TransportError, TransportEvent,
};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ronde_node::config::{RawStream, SimTransportFactory};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::meter::{metered, SlotMeter};

/// Index of a simulated device (phone, relay or adversary).
pub type Slot = u32;

/// Largest segment of the loss model, in bytes.
const SEGMENT: usize = 1400;

/// How links behave (all durations are model time).
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// Smallest one-way latency.
    pub latency_min: Duration,
    /// Largest one-way latency.
    pub latency_max: Duration,
    /// Probability that a segment is lost (and retransmitted).
    pub loss: f64,
    /// Smallest retransmission timeout.
    pub min_rto: Duration,
    /// Wall-clock seconds per modelled second.
    pub dilation: f64,
    /// Seed of the per-pair latencies and of the loss draws.
    pub seed: u64,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            latency_min: Duration::from_millis(20),
            latency_max: Duration::from_millis(150),
            loss: 0.0,
            min_rto: Duration::from_millis(200),
            dilation: 1.0,
            seed: 0,
        }
    }
}

/// SplitMix64: a well-mixed 64-bit hash of a 64-bit input.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl LinkModel {
    /// The modelled one-way latency between two slots (symmetric,
    /// deterministic for a seed).
    pub fn latency(&self, a: Slot, b: Slot) -> Duration {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let h = mix64(self.seed ^ mix64((u64::from(lo) << 32) | u64::from(hi)));
        // 53 random bits to a uniform float in [0, 1).
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        let min = self.latency_min.as_secs_f64();
        let max = self.latency_max.as_secs_f64().max(min);
        Duration::from_secs_f64(min + u * (max - min))
    }

    /// A modelled duration on the wall clock.
    pub fn wall(&self, model: Duration) -> Duration {
        model.mul_f64(self.dilation)
    }
}

/// Recognises the Noise frames that carry gossipsub RPCs of whole reports.
///
/// A report of `data_len` bytes published anonymously on a topic of
/// `topic_len` bytes is the protobuf `RPC { publish: [Message { data,
/// topic }] }`, length-prefixed by gossipsub's codec; Yamux adds a 12-byte
/// frame header and Noise a 16-byte tag. One Noise frame may carry `k`
/// such RPCs in `a` Yamux frames (`1 ≤ a ≤ k + 1`, counting a window
/// update riding along); [`FrameClassifier::reports_in`] returns `k`.
#[derive(Debug, Clone, Copy)]
pub struct FrameClassifier {
    unit: usize,
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Length of a protobuf length-delimited field with a one-byte tag.
fn field_len(payload: usize) -> usize {
    1 + varint_len(payload) + payload
}

impl FrameClassifier {
    /// Yamux frame header.
    pub const YAMUX_HEADER: usize = 12;
    /// Noise (ChaCha20-Poly1305) tag.
    pub const NOISE_TAG: usize = 16;

    /// The classifier for reports of `data_len` bytes on topics of
    /// `topic_len` bytes.
    pub fn new(data_len: usize, topic_len: usize) -> Self {
        let message = field_len(data_len) + field_len(topic_len);
        let rpc = field_len(message);
        FrameClassifier {
            unit: varint_len(rpc) + rpc,
        }
    }

    /// Ronde reports (precision-7 cell: 121 bytes) on area topics
    /// (`ronde/1/reports/<5 chars>`: 21 bytes).
    pub fn ronde() -> Self {
        FrameClassifier::new(121, ronde_protocol::TOPIC_PREFIX.len() + 5)
    }

    /// Bytes of one length-prefixed RPC carrying one report.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// How many whole-report RPCs a Noise frame of `len` bytes carries
    /// (0 if it does not look like one).
    pub fn reports_in(&self, len: usize) -> u64 {
        for k in 1..=8usize {
            let Some(rest) = len.checked_sub(Self::NOISE_TAG + k * self.unit) else {
                return 0;
            };
            if rest % Self::YAMUX_HEADER == 0 {
                let a = rest / Self::YAMUX_HEADER;
                if a >= 1 && a <= k + 1 {
                    return k as u64;
                }
            }
        }
        0
    }
}

/// Silence (model time) after which a slot's next byte is a new radio
/// wake-up: a phone's radio stays up for several seconds after its last
/// packet (LTE's inactivity timer is about 10 s), so activity closer than
/// this is one burst.
pub const WAKEUP_GAP_MS: u64 = 10_000;

/// Bytes a slot sent and received (all its connections, all its lives),
/// and its radio wake-ups.
#[derive(Debug)]
pub struct SlotStats {
    /// Bytes written to the network.
    pub sent: AtomicU64,
    /// Bytes read from the network.
    pub recv: AtomicU64,
    /// Model time of its last byte (ms since the network was made;
    /// `u64::MAX`: none yet).
    last_active_ms: AtomicU64,
    /// Bursts of activity at least [`WAKEUP_GAP_MS`] apart.
    pub wakeups: AtomicU64,
    /// Noise frames written and read (each costs 2 bytes of length and 16
    /// of tag on the wire).
    pub noise_frames: AtomicU64,
    /// Of those, the frames carrying exactly one bare Yamux header
    /// ([`BARE_YAMUX_FRAME`]): a ping or its pong, a window update, or a
    /// stream's opening or closing flags without data.
    pub bare_yamux_frames: AtomicU64,
}

/// The length of a Noise frame carrying a bare Yamux header (and its tag).
pub const BARE_YAMUX_FRAME: usize = FrameClassifier::YAMUX_HEADER + FrameClassifier::NOISE_TAG;

/// What Noise adds to each frame on the wire: its 2-byte length and its
/// tag.
pub const NOISE_FRAMING: usize = 2 + FrameClassifier::NOISE_TAG;

impl Default for SlotStats {
    fn default() -> Self {
        SlotStats {
            sent: AtomicU64::new(0),
            recv: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(u64::MAX),
            wakeups: AtomicU64::new(0),
            noise_frames: AtomicU64::new(0),
            bare_yamux_frames: AtomicU64::new(0),
        }
    }
}

impl SlotStats {
    /// A byte went in or out at model time `now_ms`.
    fn active(&self, slot: Slot, now_ms: u64, what: &'static str) {
        let before = self.last_active_ms.swap(now_ms, Ordering::Relaxed);
        if before == u64::MAX || now_ms.saturating_sub(before) >= WAKEUP_GAP_MS {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(target: "ronde_sim::wakeups", slot, t_ms = now_ms, what, "wake-up");
        }
    }

    /// A Noise frame of `len` bytes went in or out.
    fn frame(&self, len: usize) {
        self.noise_frames.fetch_add(1, Ordering::Relaxed);
        if len == BARE_YAMUX_FRAME {
            self.bare_yamux_frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct ListenerEntry {
    slot: Slot,
    tx: mpsc::UnboundedSender<SimStream>,
}

struct LinkEntry {
    a: Slot,
    b: Slot,
    ab: Arc<Pipe>,
    ba: Arc<Pipe>,
}

#[derive(Default)]
struct NetState {
    listeners: HashMap<u64, ListenerEntry>,
    next_port: u64,
    links: HashMap<u64, LinkEntry>,
    next_link: u64,
    /// Side of each slot while a partition is in force.
    sides: Option<Vec<u8>>,
}

struct NetInner {
    model: LinkModel,
    state: Mutex<NetState>,
    stats: Vec<SlotStats>,
    honest: Vec<bool>,
    classifier: FrameClassifier,
    report_frames: AtomicU64,
    /// Bytes per protocol, per slot ([`crate::meter`]).
    meters: Vec<Arc<SlotMeter>>,
    /// When the network was made (wake-ups are counted in model time from
    /// here).
    epoch: Instant,
}

impl NetInner {
    fn now_ms(&self) -> u64 {
        let wall = self.epoch.elapsed().as_secs_f64();
        (wall / self.model.dilation.max(1e-9) * 1e3) as u64
    }

    fn stats_of(&self, slot: Slot) -> Option<&SlotStats> {
        self.stats.get(slot as usize)
    }
}

/// The emulated network of one run (cheap to clone).
#[derive(Clone)]
pub struct SimNet(Arc<NetInner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind;
    // carry on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `/memory/<port>` address of a port.
pub fn addr_of(port: u64) -> Multiaddr {
    Multiaddr::empty().with(Protocol::Memory(port))
}

fn port_of(addr: &Multiaddr) -> Option<u64> {
    let mut it = addr.iter();
    match (it.next(), it.next()) {
        (Some(Protocol::Memory(p)), None) => Some(p),
        (Some(Protocol::Memory(p)), Some(Protocol::P2p(_))) if it.next().is_none() => Some(p),
        _ => None,
    }
}

impl SimNet {
    /// A network of `slots` devices; `honest[s]` says whether slot `s`'s
    /// report frames count towards [`SimNet::report_frames`].
    pub fn new(model: LinkModel, honest: Vec<bool>, classifier: FrameClassifier) -> Self {
        let stats = (0..honest.len()).map(|_| SlotStats::default()).collect();
        let meters = (0..honest.len()).map(|_| Arc::default()).collect();
        SimNet(Arc::new(NetInner {
            model,
            state: Mutex::new(NetState {
                next_port: 1,
                ..NetState::default()
            }),
            stats,
            honest,
            classifier,
            report_frames: AtomicU64::new(0),
            meters,
            epoch: Instant::now(),
        }))
    }

    /// The link model.
    pub fn model(&self) -> &LinkModel {
        &self.0.model
    }

    /// A fresh port, for a new life of a device.
    pub fn alloc_port(&self) -> u64 {
        let mut st = lock(&self.0.state);
        let p = st.next_port;
        st.next_port += 1;
        p
    }

    /// The raw transport of `slot`.
    pub fn transport(&self, slot: Slot) -> SimTransport {
        SimTransport {
            net: self.clone(),
            slot,
            listeners: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// A factory for [`ronde_node::NodeConfig::sim_transport`] (and the
    /// bare peers): `slot`'s raw links, each connection's substreams
    /// counted per protocol in the slot's [`SlotMeter`].
    pub fn factory(&self, slot: Slot) -> SimTransportFactory {
        let net = self.clone();
        let meter = self.meter(slot);
        SimTransportFactory::new(Arc::new(move || -> Boxed<Box<dyn RawStream>> {
            net.transport(slot)
                .map(|s, _| Box::new(s) as Box<dyn RawStream>)
                .boxed()
        }))
        .with_muxer_wrap(Arc::new(move |muxer| metered(muxer, meter.clone())))
    }

    /// The per-protocol counters of `slot` (a detached, empty one for a
    /// slot out of range).
    pub fn meter(&self, slot: Slot) -> Arc<SlotMeter> {
        self.0
            .meters
            .get(slot as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Bytes sent and received by a slot so far.
    pub fn bytes(&self, slot: Slot) -> (u64, u64) {
        match self.0.stats.get(slot as usize) {
            Some(s) => (
                s.sent.load(Ordering::Relaxed),
                s.recv.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        }
    }

    /// Noise frames a slot wrote and read so far, and how many of them
    /// carried a bare Yamux header ([`SlotStats::bare_yamux_frames`]).
    pub fn frames(&self, slot: Slot) -> (u64, u64) {
        match self.0.stats.get(slot as usize) {
            Some(s) => (
                s.noise_frames.load(Ordering::Relaxed),
                s.bare_yamux_frames.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        }
    }

    /// Radio wake-ups of a slot so far (bursts of activity at least
    /// [`WAKEUP_GAP_MS`] apart).
    pub fn wakeups(&self, slot: Slot) -> u64 {
        self.0
            .stats_of(slot)
            .map_or(0, |s| s.wakeups.load(Ordering::Relaxed))
    }

    /// Something reached `slot` outside this network (a push message on
    /// the phone's push connection): `bytes` received, and activity.
    pub fn outside_delivery(&self, slot: Slot, bytes: u64) {
        let now = self.0.now_ms();
        if let Some(s) = self.0.stats_of(slot) {
            s.recv.fetch_add(bytes, Ordering::Relaxed);
            s.active(slot, now, "push");
        }
    }

    /// Whole-report gossip RPCs sent by honest slots so far.
    pub fn report_frames(&self) -> u64 {
        self.0.report_frames.load(Ordering::Relaxed)
    }

    /// The live links: (slot, slot, modelled one-way latency).
    pub fn links(&self) -> Vec<(Slot, Slot, Duration)> {
        let st = lock(&self.0.state);
        st.links
            .values()
            .map(|l| (l.a, l.b, self.0.model.latency(l.a, l.b)))
            .collect()
    }

    /// Number of live links of each slot.
    pub fn degrees(&self) -> Vec<usize> {
        let st = lock(&self.0.state);
        let mut d = vec![0usize; self.0.stats.len()];
        for l in st.links.values() {
            if let Some(x) = d.get_mut(l.a as usize) {
                *x += 1;
            }
            if let Some(x) = d.get_mut(l.b as usize) {
                *x += 1;
            }
        }
        d
    }

    /// Split the network (`Some(side of each slot)`) or heal it (`None`).
    /// Links across sides are reset at once.
    pub fn set_partition(&self, sides: Option<Vec<u8>>) {
        let mut st = lock(&self.0.state);
        if let Some(s) = &sides {
            let crossing: Vec<u64> = st
                .links
                .iter()
                .filter(|(_, l)| s.get(l.a as usize) != s.get(l.b as usize))
                .map(|(id, _)| *id)
                .collect();
            for id in crossing {
                if let Some(l) = st.links.remove(&id) {
                    l.ab.reset();
                    l.ba.reset();
                }
            }
        }
        st.sides = sides;
    }

    fn connect(&self, from: Slot, to_port: u64) -> io::Result<(SimStream, Duration)> {
        let mut st = lock(&self.0.state);
        let Some(listener) = st.listeners.get(&to_port) else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "nobody listens there",
            ));
        };
        let to = listener.slot;
        let listener_tx = listener.tx.clone();
        if let Some(sides) = &st.sides {
            if sides.get(from as usize) != sides.get(to as usize) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "partitioned from the listener",
                ));
            }
        }
        let model = &self.0.model;
        let latency = model.latency(from, to);
        let lat_wall = model.wall(latency);
        let rto_wall = model.wall(model.min_rto.max(latency * 4));
        let id = st.next_link;
        st.next_link += 1;
        tracing::trace!(target: "ronde_sim::links", from, to, t_ms = self.0.now_ms(), "link");
        let ab = Arc::new(Pipe::default());
        let ba = Arc::new(Pipe::default());
        let seed = mix64(model.seed ^ mix64(id ^ 0x5EED));
        let dialer = SimStream::new(
            self,
            id,
            from,
            ab.clone(),
            ba.clone(),
            lat_wall,
            rto_wall,
            seed,
        );
        let listener_side = SimStream::new(
            self,
            id,
            to,
            ba.clone(),
            ab.clone(),
            lat_wall,
            rto_wall,
            seed ^ 1,
        );
        if listener_tx.send(listener_side).is_err() {
            st.listeners.remove(&to_port);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the listener is gone",
            ));
        }
        st.links.insert(
            id,
            LinkEntry {
                a: from,
                b: to,
                ab,
                ba,
            },
        );
        Ok((dialer, lat_wall * 2))
    }

    fn link_closed(&self, id: u64) {
        lock(&self.0.state).links.remove(&id);
    }
}

/// One direction of a link.
#[derive(Default)]
struct Pipe(Mutex<PipeState>);

#[derive(Default)]
struct PipeState {
    queue: VecDeque<Chunk>,
    /// Delivery time of the last chunk written (delivery is in order).
    last: Option<Instant>,
    /// The writer closed or dropped its end: EOF once the queue is drained.
    closed: bool,
    /// The reader dropped its end: writes fail.
    reader_gone: bool,
    /// The link was cut: both ends fail.
    reset: bool,
    waker: Option<Waker>,
}

struct Chunk {
    at: Instant,
    data: Vec<u8>,
    pos: usize,
}

impl Pipe {
    fn reset(&self) {
        let mut st = lock(&self.0);
        st.reset = true;
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

/// Follows the framing of one direction of a stream: multistream-select
/// messages (unsigned-varint length) until this side has sent `/noise\n`,
/// then Noise frames (2-byte big-endian length).
#[derive(Default)]
struct Framer {
    noise: bool,
    /// Multistream: the varint being read, its shift, and the message.
    varint: usize,
    shift: u32,
    msg: Vec<u8>,
    msg_left: Option<usize>,
    /// Noise: header bytes seen and body bytes left.
    hdr: [u8; 2],
    hdr_have: usize,
    body_left: usize,
}

impl Framer {
    /// Feed written bytes; calls `on_frame(len)` for each Noise frame
    /// header.
    fn feed(&mut self, mut buf: &[u8], mut on_frame: impl FnMut(usize)) {
        while let Some((&b, rest)) = buf.split_first() {
            if self.noise {
                if self.body_left > 0 {
                    let n = self.body_left.min(buf.len());
                    self.body_left -= n;
                    buf = &buf[n..];
                    continue;
                }
                self.hdr[self.hdr_have] = b;
                self.hdr_have += 1;
                buf = rest;
                if self.hdr_have == 2 {
                    self.hdr_have = 0;
                    let len = usize::from(u16::from_be_bytes(self.hdr));
                    self.body_left = len;
                    on_frame(len);
                }
                continue;
            }
            match self.msg_left {
                None => {
                    buf = rest;
                    self.varint |= usize::from(b & 0x7f) << self.shift;
                    if b & 0x80 == 0 {
                        self.msg_left = Some(self.varint);
                        self.msg.clear();
                        self.varint = 0;
                        self.shift = 0;
                    } else {
                        self.shift += 7;
                        if self.shift > 28 {
                            // Not multistream-select: stop following.
                            self.noise = true;
                            self.body_left = usize::MAX;
                        }
                    }
                }
                Some(left) => {
                    let n = left.min(buf.len());
                    if self.msg.len() < 64 {
                        self.msg.extend_from_slice(&buf[..n.min(64)]);
                    }
                    buf = &buf[n..];
                    let left = left - n;
                    if left == 0 {
                        self.msg_left = None;
                        if self.msg == b"/noise\n" {
                            self.noise = true;
                        }
                    } else {
                        self.msg_left = Some(left);
                    }
                }
            }
        }
    }
}

/// One end of an emulated connection.
pub struct SimStream {
    net: SimNet,
    link: u64,
    local: Slot,
    tx: Arc<Pipe>,
    rx: Arc<Pipe>,
    latency: Duration,
    rto: Duration,
    rng: ChaCha8Rng,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Follows what this end writes, and what it reads.
    framer: Framer,
    read_framer: Framer,
}

impl SimStream {
    #[allow(clippy::too_many_arguments)]
    fn new(
        net: &SimNet,
        link: u64,
        local: Slot,
        tx: Arc<Pipe>,
        rx: Arc<Pipe>,
        latency: Duration,
        rto: Duration,
        seed: u64,
    ) -> Self {
        SimStream {
            net: net.clone(),
            link,
            local,
            tx,
            rx,
            latency,
            rto,
            rng: ChaCha8Rng::seed_from_u64(seed),
            sleep: None,
            framer: Framer::default(),
            read_framer: Framer::default(),
        }
    }

    /// Extra delay of a chunk of `len` bytes from lost segments.
    fn loss_delay(&mut self, len: usize) -> Duration {
        let p = self.net.0.model.loss;
        if p <= 0.0 {
            return Duration::ZERO;
        }
        let segments = len.div_ceil(SEGMENT).max(1);
        let mut worst = Duration::ZERO;
        for _ in 0..segments {
            let mut extra = Duration::ZERO;
            let mut rto = self.rto;
            // Bounded: a segment lost 16 times in a row is delivered anyway.
            for _ in 0..16 {
                if self.rng.gen::<f64>() >= p {
                    break;
                }
                extra += rto;
                rto *= 2;
            }
            worst = worst.max(extra);
        }
        worst
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            let wait_until = {
                let mut st = lock(&this.rx.0);
                if st.reset {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
                }
                let now = Instant::now();
                let mut n = 0;
                while n < buf.len() {
                    let Some(c) = st.queue.front_mut() else { break };
                    if c.at > now {
                        break;
                    }
                    let take = (c.data.len() - c.pos).min(buf.len() - n);
                    buf[n..n + take].copy_from_slice(&c.data[c.pos..c.pos + take]);
                    c.pos += take;
                    n += take;
                    if c.pos == c.data.len() {
                        st.queue.pop_front();
                    }
                }
                if n > 0 || buf.is_empty() {
                    drop(st);
                    if let Some(s) = this.net.0.stats_of(this.local) {
                        s.recv.fetch_add(n as u64, Ordering::Relaxed);
                        if n > 0 {
                            s.active(this.local, this.net.0.now_ms(), "recv");
                            this.read_framer.feed(&buf[..n], |len| s.frame(len));
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
                st.waker = Some(cx.waker().clone());
                match st.queue.front() {
                    Some(c) => c.at,
                    None if st.closed => return Poll::Ready(Ok(0)),
                    None => return Poll::Pending,
                }
            };
            match &mut this.sleep {
                Some(s) => s.as_mut().reset(wait_until),
                None => this.sleep = Some(Box::pin(tokio::time::sleep_until(wait_until))),
            }
            if let Some(s) = &mut this.sleep {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let extra = this.loss_delay(buf.len());
        {
            let mut st = lock(&this.tx.0);
            if st.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            if st.reader_gone || st.closed {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let mut at = Instant::now() + this.latency + extra;
            if let Some(last) = st.last {
                at = at.max(last);
            }
            st.last = Some(at);
            st.queue.push_back(Chunk {
                at,
                data: buf.to_vec(),
                pos: 0,
            });
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        }
        let inner = &this.net.0;
        let honest = inner
            .honest
            .get(this.local as usize)
            .copied()
            .unwrap_or(false);
        if let Some(s) = inner.stats.get(this.local as usize) {
            s.sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
            s.active(this.local, inner.now_ms(), "sent");
            let classifier = inner.classifier;
            let mut reports = 0;
            this.framer.feed(buf, |len| {
                s.frame(len);
                if honest {
                    reports += classifier.reports_in(len);
                }
            });
            if reports > 0 {
                inner.report_frames.fetch_add(reports, Ordering::Relaxed);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = lock(&self.tx.0);
        st.closed = true;
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.tx.0);
            st.closed = true;
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        }
        {
            let mut st = lock(&self.rx.0);
            st.reader_gone = true;
            st.queue.clear();
        }
        self.net.link_closed(self.link);
    }
}

/// The libp2p transport of one slot.
pub struct SimTransport {
    net: SimNet,
    slot: Slot,
    listeners: Vec<(ListenerId, u64, mpsc::UnboundedReceiver<SimStream>)>,
    events: VecDeque<TransportEvent<Ready<Result<SimStream, io::Error>>, io::Error>>,
}

impl Transport for SimTransport {
    type Output = SimStream;
    type Error = io::Error;
    type ListenerUpgrade = Ready<Result<SimStream, io::Error>>;
    type Dial = BoxFuture<'static, Result<SimStream, io::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(mut port) = port_of(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut st = lock(&self.net.0.state);
            if port == 0 {
                port = st.next_port;
                st.next_port += 1;
            }
            if st.listeners.contains_key(&port) {
                return Err(TransportError::Other(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "port in use",
                )));
            }
            st.listeners.insert(
                port,
                ListenerEntry {
                    slot: self.slot,
                    tx,
                },
            );
        }
        self.listeners.push((id, port, rx));
        self.events.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr_of(port),
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|(l, _, _)| *l == id) else {
            return false;
        };
        let (_, port, _) = self.listeners.remove(i);
        lock(&self.net.0.state).listeners.remove(&port);
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(port) = port_of(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (stream, rtt) = self
            .net
            .connect(self.slot, port)
            .map_err(TransportError::Other)?;
        Ok(async move {
            tokio::time::sleep(rtt).await;
            Ok(stream)
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(ev) = self.events.pop_front() {
            return Poll::Ready(ev);
        }
        for (id, port, rx) in &mut self.listeners {
            if let Poll::Ready(Some(stream)) = rx.poll_recv(cx) {
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id: *id,
                    upgrade: futures::future::ready(Ok(stream)),
                    local_addr: addr_of(*port),
                    send_back_addr: addr_of(0),
                });
            }
        }
        Poll::Pending
    }
}

impl Drop for SimTransport {
    fn drop(&mut self) {
        let mut st = lock(&self.net.0.state);
        for (_, port, _) in &self.listeners {
            st.listeners.remove(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};

    fn net(model: LinkModel) -> SimNet {
        SimNet::new(model, vec![true; 4], FrameClassifier::ronde())
    }

    async fn pair(net: &SimNet) -> (SimStream, SimStream) {
        let mut t1 = net.transport(1);
        let port = net.alloc_port();
        t1.listen_on(ListenerId::next(), addr_of(port))
            .expect("listen");
        let mut t0 = net.transport(0);
        let opts = DialOpts {
            role: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::New,
        };
        let dial = t0.dial(addr_of(port), opts).expect("dial");
        let mut upgrade = None;
        while upgrade.is_none() {
            upgrade = incoming_poll(&mut t1).await;
        }
        let b = upgrade.expect("incoming").await.expect("accept");
        let a = dial.await.expect("dialed");
        // Keep the listener's transport alive through the test.
        std::mem::forget(t1);
        (a, b)
    }

    async fn incoming_poll(t: &mut SimTransport) -> Option<Ready<Result<SimStream, io::Error>>> {
        futures::future::poll_fn(|cx| Pin::new(&mut *t).poll(cx))
            .await
            .into_incoming()
            .map(|(u, _)| u)
    }

    #[test]
    fn latency_is_symmetric_deterministic_and_in_range() {
        let m = LinkModel {
            seed: 42,
            ..LinkModel::default()
        };
        let mut distinct = std::collections::HashSet::new();
        for a in 0..30 {
            for b in 0..30 {
                let l = m.latency(a, b);
                assert_eq!(l, m.latency(b, a));
                assert!(l >= m.latency_min && l <= m.latency_max);
                distinct.insert(l);
            }
        }
        assert!(distinct.len() > 100, "latencies should vary");
        let other = LinkModel {
            seed: 43,
            ..LinkModel::default()
        };
        assert_ne!(m.latency(1, 2), other.latency(1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_arrive_after_the_latency_in_order() {
        let m = LinkModel {
            seed: 1,
            ..LinkModel::default()
        };
        let lat = m.latency(0, 1);
        let net = net(m);
        let (mut a, mut b) = pair(&net).await;
        let t0 = Instant::now();
        a.write_all(b"hello ").await.expect("write");
        a.write_all(b"world").await.expect("write");
        let mut buf = [0u8; 11];
        b.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"hello world");
        let took = Instant::now() - t0;
        assert!(took >= lat, "{took:?} < {lat:?}");
        assert!(took < lat + Duration::from_millis(5), "{took:?}");
        assert_eq!(net.bytes(0).0, 11);
        assert_eq!(net.bytes(1).1, 11);
        assert_eq!(net.links().len(), 1);
        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.expect("eof");
        assert!(rest.is_empty());
        drop(b);
        assert!(net.links().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn activity_closer_than_the_gap_is_one_wake_up() {
        let m = LinkModel {
            seed: 1,
            dilation: 2.0,
            ..LinkModel::default()
        };
        let net = net(m);
        let (mut a, mut b) = pair(&net).await;
        let mut buf = [0u8; 1];
        // Two messages 3 s (model) apart: one burst on each side.
        for _ in 0..2 {
            a.write_all(b"x").await.expect("write");
            b.read_exact(&mut buf).await.expect("read");
            tokio::time::sleep(Duration::from_secs(6)).await;
        }
        assert_eq!((net.wakeups(0), net.wakeups(1)), (1, 1));
        // 12 s of silence (24 s of wall clock at 2×): a new one.
        tokio::time::sleep(Duration::from_secs(18)).await;
        a.write_all(b"x").await.expect("write");
        b.read_exact(&mut buf).await.expect("read");
        assert_eq!((net.wakeups(0), net.wakeups(1)), (2, 2));
        // A push message counts too, and its bytes.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let before = net.bytes(1).1;
        net.outside_delivery(1, 512);
        assert_eq!(net.wakeups(1), 3);
        assert_eq!(net.bytes(1).1, before + 512);
        assert_eq!(net.wakeups(0), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dilation_stretches_the_wall_clock_latency() {
        let m = LinkModel {
            seed: 1,
            dilation: 4.0,
            ..LinkModel::default()
        };
        let lat = m.latency(0, 1);
        let net = net(m);
        let (mut a, mut b) = pair(&net).await;
        let t0 = Instant::now();
        a.write_all(b"x").await.expect("write");
        let mut buf = [0u8; 1];
        b.read_exact(&mut buf).await.expect("read");
        let took = Instant::now() - t0;
        assert!(took >= lat * 4 && took < lat * 4 + Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn loss_delays_but_never_reorders_or_drops() {
        let m = LinkModel {
            seed: 7,
            loss: 0.3,
            latency_min: Duration::from_millis(50),
            latency_max: Duration::from_millis(50),
            ..LinkModel::default()
        };
        let net = net(m);
        let (mut a, mut b) = pair(&net).await;
        let t0 = Instant::now();
        for i in 0..200u8 {
            a.write_all(&[i]).await.expect("write");
        }
        let mut buf = [0u8; 200];
        b.read_exact(&mut buf).await.expect("read");
        for (i, v) in buf.iter().enumerate() {
            assert_eq!(usize::from(*v), i);
        }
        // With 30 % loss some chunk paid at least one 200 ms timeout.
        assert!(Instant::now() - t0 >= Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partition_resets_links_and_refuses_dials() {
        let net = net(LinkModel::default());
        let (mut a, mut b) = pair(&net).await;
        net.set_partition(Some(vec![0, 1, 0, 1]));
        let mut buf = [0u8; 1];
        assert!(b.read(&mut buf).await.is_err());
        assert!(a.write_all(b"x").await.is_err());
        assert!(net.links().is_empty());
        let mut t1 = net.transport(1);
        let port = net.alloc_port();
        t1.listen_on(ListenerId::next(), addr_of(port))
            .expect("listen");
        let opts = DialOpts {
            role: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::New,
        };
        assert!(net.transport(0).dial(addr_of(port), opts).is_err());
        net.set_partition(None);
        assert!(net.transport(0).dial(addr_of(port), opts).is_ok());
    }

    #[test]
    fn the_framer_finds_noise_frames_after_multistream() {
        let mut f = Framer::default();
        let mut frames = Vec::new();
        let mut wire = Vec::new();
        for m in [&b"/multistream/1.0.0\n"[..], b"/noise\n"] {
            wire.push(m.len() as u8);
            wire.extend_from_slice(m);
        }
        for len in [32u16, 179, 500] {
            wire.extend_from_slice(&len.to_be_bytes());
            wire.extend(std::iter::repeat_n(0xAB, usize::from(len)));
        }
        // Fed in awkward pieces.
        for piece in wire.chunks(7) {
            f.feed(piece, |l| frames.push(l));
        }
        assert_eq!(frames, vec![32, 179, 500]);
    }

    #[test]
    fn the_classifier_counts_report_rpcs() {
        let c = FrameClassifier::ronde();
        // 121-byte data, 21-byte topic: Message 146, RPC 149, framed 151.
        assert_eq!(c.unit(), 151);
        assert_eq!(c.reports_in(16 + 12 + 151), 1);
        assert_eq!(c.reports_in(16 + 12 + 12 + 151), 1);
        assert_eq!(c.reports_in(16 + 12 + 302), 2);
        assert_eq!(c.reports_in(16 + 24 + 302), 2);
        assert_eq!(c.reports_in(16 + 12 + 150), 0);
        assert_eq!(c.reports_in(32), 0);
        assert_eq!(c.reports_in(16 + 12 * 3 + 151), 0);
    }
}
