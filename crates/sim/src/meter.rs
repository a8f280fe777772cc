//! Bytes per protocol: a wrapper around each connection's multiplexer that
//! counts every substream's plaintext bytes under the protocol it
//! negotiated.
//!
//! The emulated links ([`crate::net`]) count what goes on the wire, which is
//! Noise ciphertext: they say how many bytes a device moved, not what for.
//! Above Yamux every substream begins with multistream-select in the clear
//! (`/multistream/1.0.0\n`, then the protocol the dialer proposes, each a
//! varint-length-prefixed line), so [`MeteredMuxer`] reads the first
//! proposal of each substream (from what it writes on an outbound one, from
//! what it reads on an inbound one) and adds the substream's bytes,
//! negotiation included, to that protocol's counters in the slot's
//! [`SlotMeter`]. A proposal the listener refuses (`na`) is still counted
//! under the first name proposed; Ronde's nodes all speak the same versions,
//! so that does not happen between them.
//!
//! What the substreams do not carry, the wire counters minus the sum of the
//! protocols, is the connections themselves: TCP-like dials are free here,
//! so it is the Noise handshake and framing (2 + 16 bytes a frame), the
//! multistream-select of `/noise` and `/yamux/1.0.0`, and Yamux's frame
//! headers, pings and window updates. [`crate::run`] splits it with the
//! Noise frames the links count ([`crate::net::SlotStats`]).

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, SubstreamBox};

/// Most bytes read before the protocol of a substream must be known; past
/// it the substream counts as [`UNKNOWN`].
const MAX_NEGOTIATION: usize = 512;
/// The multistream-select header line.
const HEADER: &[u8] = b"/multistream/1.0.0\n";
/// Name under which a substream whose negotiation could not be read counts.
pub const UNKNOWN: &str = "(unknown)";

/// Counters of one protocol on one slot.
#[derive(Debug, Default)]
pub struct Counters {
    /// Plaintext bytes written on its substreams.
    pub sent: AtomicU64,
    /// Plaintext bytes read from its substreams.
    pub recv: AtomicU64,
    /// Substreams opened (either way).
    pub streams: AtomicU64,
}

/// A protocol's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolBytes {
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub recv: u64,
    /// Substreams opened.
    pub streams: u64,
}

/// The per-protocol counters of one slot (all its lives and identities).
#[derive(Debug, Default)]
pub struct SlotMeter(Mutex<BTreeMap<String, Arc<Counters>>>);

impl SlotMeter {
    fn counters(&self, protocol: &str) -> Arc<Counters> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(protocol.to_owned()).or_default().clone()
    }

    /// The figures so far, by protocol name.
    pub fn snapshot(&self) -> BTreeMap<String, ProtocolBytes> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    ProtocolBytes {
                        sent: c.sent.load(Ordering::Relaxed),
                        recv: c.recv.load(Ordering::Relaxed),
                        streams: c.streams.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }
}

/// What the first bytes a dialer wrote on a substream say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// It proposed this protocol.
    Protocol(String),
    /// More bytes are needed.
    Incomplete,
    /// Not multistream-select.
    Unreadable,
}

/// The protocol a dialer proposes in `buf` (the first bytes it wrote).
pub fn proposed_protocol(buf: &[u8]) -> Proposal {
    let mut rest = buf;
    loop {
        let (len, used) = match varint(rest) {
            Some(Some(v)) => v,
            Some(None) => return Proposal::Incomplete,
            None => return Proposal::Unreadable,
        };
        let Some(line) = rest.get(used..used + len) else {
            return Proposal::Incomplete;
        };
        rest = &rest[used + len..];
        if line == HEADER {
            continue;
        }
        return match line.strip_suffix(b"\n").map(std::str::from_utf8) {
            Some(Ok(name)) => Proposal::Protocol(name.to_owned()),
            _ => Proposal::Unreadable,
        };
    }
}

/// An unsigned LEB128 length at the start of `buf`: `Some(None)` if cut
/// short, `None` past two bytes (multistream-select lines are short).
fn varint(buf: &[u8]) -> Option<Option<(usize, usize)>> {
    let mut n = 0usize;
    for (i, b) in buf.iter().enumerate().take(2) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(Some((n, i + 1)));
        }
    }
    if buf.len() >= 2 {
        None
    } else {
        Some(None)
    }
}

/// Wraps `muxer` so that its substreams count into `meter`.
pub fn metered(muxer: StreamMuxerBox, meter: Arc<SlotMeter>) -> StreamMuxerBox {
    StreamMuxerBox::new(MeteredMuxer {
        inner: muxer,
        meter,
    })
}

/// A multiplexer whose substreams count their bytes (see the module doc).
pub struct MeteredMuxer {
    inner: StreamMuxerBox,
    meter: Arc<SlotMeter>,
}

impl StreamMuxer for MeteredMuxer {
    type Substream = MeteredStream;
    type Error = io::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<MeteredStream, io::Error>> {
        let meter = self.meter.clone();
        Pin::new(&mut self.inner)
            .poll_inbound(cx)
            .map_ok(|s| MeteredStream::new(s, meter, false))
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<MeteredStream, io::Error>> {
        let meter = self.meter.clone();
        Pin::new(&mut self.inner)
            .poll_outbound(cx)
            .map_ok(|s| MeteredStream::new(s, meter, true))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, io::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

enum Attribution {
    /// The protocol is not known yet: the negotiation bytes seen so far
    /// (written if outbound, read if inbound) and the counts to carry over.
    Pending {
        head: Vec<u8>,
        sent: u64,
        recv: u64,
    },
    Known(Arc<Counters>),
}

/// A substream that counts its bytes under its protocol.
pub struct MeteredStream {
    inner: SubstreamBox,
    meter: Arc<SlotMeter>,
    outbound: bool,
    attribution: Attribution,
}

impl MeteredStream {
    fn new(inner: SubstreamBox, meter: Arc<SlotMeter>, outbound: bool) -> Self {
        MeteredStream {
            inner,
            meter,
            outbound,
            attribution: Attribution::Pending {
                head: Vec::new(),
                sent: 0,
                recv: 0,
            },
        }
    }

    /// `bytes` went out (`sent`) or came in.
    fn count(&mut self, bytes: &[u8], sent: bool) {
        let n = bytes.len() as u64;
        let resolved = match &mut self.attribution {
            Attribution::Known(c) => {
                let field = if sent { &c.sent } else { &c.recv };
                field.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Attribution::Pending {
                head,
                sent: s,
                recv: r,
            } => {
                *(if sent { s } else { r }) += n;
                if sent != self.outbound {
                    return;
                }
                head.extend_from_slice(&bytes[..bytes.len().min(MAX_NEGOTIATION)]);
                match proposed_protocol(head) {
                    Proposal::Protocol(name) => name,
                    Proposal::Incomplete if head.len() < MAX_NEGOTIATION => return,
                    _ => UNKNOWN.to_owned(),
                }
            }
        };
        self.resolve(&resolved);
    }

    /// The substream's protocol is `name`: one more substream of it, and
    /// the bytes counted while pending are its.
    fn resolve(&mut self, name: &str) {
        let counters = self.meter.counters(name);
        if let Attribution::Pending { sent, recv, .. } = &self.attribution {
            counters.sent.fetch_add(*sent, Ordering::Relaxed);
            counters.recv.fetch_add(*recv, Ordering::Relaxed);
        }
        counters.streams.fetch_add(1, Ordering::Relaxed);
        self.attribution = Attribution::Known(counters);
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // A substream closed before its protocol was read (a refused or
        // reset stream) still moved bytes.
        if let Attribution::Pending { sent, recv, .. } = &self.attribution {
            if sent + recv > 0 {
                self.resolve(UNKNOWN);
            }
        }
    }
}

impl AsyncRead for MeteredStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            let n = *n;
            self.count(&buf[..n], false);
        }
        poll
    }
}

impl AsyncWrite for MeteredStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            let n = *n;
            self.count(&buf[..n], true);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn reads_the_first_proposal_after_the_header() {
        let mut buf = line("/multistream/1.0.0\n");
        assert_eq!(proposed_protocol(&buf), Proposal::Incomplete);
        buf.extend(line("/ronde/sync/3\n"));
        buf.extend_from_slice(b"payload");
        assert_eq!(
            proposed_protocol(&buf),
            Proposal::Protocol("/ronde/sync/3".into())
        );
        // Cut anywhere inside the proposal: more bytes are needed.
        let cut = line("/multistream/1.0.0\n").len() + 4;
        assert_eq!(proposed_protocol(&buf[..cut]), Proposal::Incomplete);
    }

    #[test]
    fn refuses_what_is_not_multistream_select() {
        assert_eq!(proposed_protocol(&[0xff, 0xff, 0xff]), Proposal::Unreadable);
        assert_eq!(proposed_protocol(&line("no newline")), Proposal::Unreadable);
    }
}
