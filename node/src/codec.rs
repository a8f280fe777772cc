//! The one request-response codec every Ronde protocol uses, and the
//! [`WireFormat`] trait each protocol implements to plug into it.
//!
//! All the request-response protocols (`/ronde/sync/3`, `/ronde/circle/1`,
//! `/ronde/mailbox/1`, `/ronde/directory/1`, `/ronde/flag/1`) frame a
//! message the same way: one stream carries one request and one response,
//! each written whole and ended by closing the writing side. So the codec
//! is the same for all of them, [`Bounded`]:
//!
//! * **read**: read at most the format's limit ([`WireFormat::MAX_REQUEST`]
//!   or [`WireFormat::MAX_RESPONSE`]) until the writer closes; one byte more
//!   is an error and the stream is dropped, before anything is parsed and
//!   without a bigger buffer ever being allocated; then decode the bytes,
//!   which must be exactly one message;
//! * **write**: encode the message (a message that breaks the format's
//!   limits fails here, and nothing is sent), write it, close.
//!
//! What differs between protocols, the types, limits and byte layouts,
//! lives with each protocol as a [`WireFormat`]: [`crate::behaviour`]
//! (sync), [`crate::circle::wire`] (circle, mailbox) and
//! [`crate::directory::wire`] (directory, flag). Decoders return the
//! `invalid` error (`InvalidData`) for bytes that break their format.
//!
//! This module is below every protocol module and imports none of them.

use std::fmt;
use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::{self, ProtocolSupport};
/// The protocol name type of [`WireFormat`] (re-exported for the fuzz
/// harness, which has no libp2p of its own).
pub use libp2p::StreamProtocol;

/// The byte format of one request-response protocol: its name, its message
/// types, how long each may be, and how each is encoded and decoded.
/// Implemented by a unit type per protocol; [`Bounded`] turns it into a
/// libp2p codec.
pub trait WireFormat {
    /// The protocol name negotiated on the stream.
    const PROTOCOL: StreamProtocol;
    /// The longest request read, in bytes.
    const MAX_REQUEST: usize;
    /// The longest response read, in bytes.
    const MAX_RESPONSE: usize;
    /// A request.
    type Request: Send;
    /// A response.
    type Response: Send;

    /// Older versions of the protocol still spoken, newest first: answered
    /// for peers that know no newer one, and offered after
    /// [`Self::PROTOCOL`] when asking (so a peer that speaks both picks the
    /// newest). Requests and responses may differ between versions
    /// ([`Self::encode_request_on`], [`Self::encode_response_on`]). None by
    /// default.
    const OLDER: &'static [StreamProtocol] = &[];

    /// The bytes of a request; fails on one that breaks the format's limits.
    fn encode_request(req: &Self::Request) -> io::Result<Vec<u8>>;
    /// A request from exactly its bytes (at most [`Self::MAX_REQUEST`]).
    fn decode_request(buf: &[u8]) -> io::Result<Self::Request>;
    /// The bytes of a response; fails on one that breaks the format's limits.
    fn encode_response(res: &Self::Response) -> io::Result<Vec<u8>>;
    /// A response from exactly its bytes (at most [`Self::MAX_RESPONSE`]).
    fn decode_response(buf: &[u8]) -> io::Result<Self::Response>;

    /// The bytes of a response on `protocol` ([`Self::PROTOCOL`] or one of
    /// [`Self::OLDER`]); by default the same in every version.
    fn encode_response_on(protocol: &StreamProtocol, res: &Self::Response) -> io::Result<Vec<u8>> {
        let _ = protocol;
        Self::encode_response(res)
    }
    /// A response read on `protocol`; by default the same in every version.
    fn decode_response_on(protocol: &StreamProtocol, buf: &[u8]) -> io::Result<Self::Response> {
        let _ = protocol;
        Self::decode_response(buf)
    }
    /// The bytes of a request on `protocol`; by default the same in every
    /// version.
    fn encode_request_on(protocol: &StreamProtocol, req: &Self::Request) -> io::Result<Vec<u8>> {
        let _ = protocol;
        Self::encode_request(req)
    }
    /// A request read on `protocol`; by default the same in every version.
    fn decode_request_on(protocol: &StreamProtocol, buf: &[u8]) -> io::Result<Self::Request> {
        let _ = protocol;
        Self::decode_request(buf)
    }
}

/// The request-response codec of a [`WireFormat`]: one bounded message
/// each way, each ended by closing the stream (see the module
/// documentation).
pub struct Bounded<W>(PhantomData<fn() -> W>);

impl<W> Bounded<W> {
    /// The codec (it holds no state).
    pub const fn new() -> Self {
        Bounded(PhantomData)
    }
}

impl<W> Default for Bounded<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> Clone for Bounded<W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W> Copy for Bounded<W> {}

impl<W> fmt::Debug for Bounded<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bounded")
    }
}

/// A request-response behaviour speaking the protocol of `W` (its newest
/// version first, then [`WireFormat::OLDER`]) with the given support
/// (inbound and outbound, or outbound only).
pub fn behaviour<W: WireFormat>(
    support: ProtocolSupport,
    config: request_response::Config,
) -> request_response::Behaviour<Bounded<W>> {
    let protocols = std::iter::once(W::PROTOCOL)
        .chain(W::OLDER.iter().cloned())
        .map(|p| (p, support.clone()));
    request_response::Behaviour::with_codec(Bounded::new(), protocols, config)
}

/// An `InvalidData` I/O error: what a decoder returns for bytes that break
/// its format (and an encoder for a message that breaks its limits).
pub(crate) fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Read a whole message of at most `max` bytes (the stream is closed by the
/// writer); one byte more is an error, never a bigger buffer.
async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    io.take(limit).read_to_end(&mut buf).await?;
    if buf.len() > max {
        return Err(invalid("message over the size limit"));
    }
    Ok(buf)
}

/// Write a whole message and close the stream.
async fn write_closed<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

impl<W: WireFormat> request_response::Codec for Bounded<W> {
    type Protocol = StreamProtocol;
    type Request = W::Request;
    type Response = W::Response;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<W::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        W::decode_request_on(protocol, &read_bounded(io, W::MAX_REQUEST).await?)
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<W::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        W::decode_response_on(protocol, &read_bounded(io, W::MAX_RESPONSE).await?)
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        req: W::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_closed(io, &W::encode_request_on(protocol, &req)?).await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        res: W::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_closed(io, &W::encode_response_on(protocol, &res)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use request_response::Codec;

    /// A format of exactly-two-byte requests and one-byte responses.
    struct Pair;

    impl WireFormat for Pair {
        const PROTOCOL: StreamProtocol = StreamProtocol::new("/test/pair/1");
        const MAX_REQUEST: usize = 2;
        const MAX_RESPONSE: usize = 1;
        type Request = [u8; 2];
        type Response = u8;

        fn encode_request(req: &[u8; 2]) -> io::Result<Vec<u8>> {
            Ok(req.to_vec())
        }
        fn decode_request(buf: &[u8]) -> io::Result<[u8; 2]> {
            buf.try_into().map_err(|_| invalid("not two bytes"))
        }
        fn encode_response(res: &u8) -> io::Result<Vec<u8>> {
            if *res == 0 {
                return Err(invalid("zero is never sent"));
            }
            Ok(vec![*res])
        }
        fn decode_response(buf: &[u8]) -> io::Result<u8> {
            match buf {
                [b] => Ok(*b),
                _ => Err(invalid("not one byte")),
            }
        }
    }

    #[tokio::test]
    async fn reads_at_most_the_limit_then_decodes() {
        let mut codec = Bounded::<Pair>::new();
        let p = Pair::PROTOCOL;
        let mut ok = futures::io::Cursor::new(vec![1u8, 2]);
        assert_eq!(codec.read_request(&p, &mut ok).await.ok(), Some([1, 2]));
        let mut over = futures::io::Cursor::new(vec![1u8, 2, 3]);
        let err = codec.read_request(&p, &mut over).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        let mut short = futures::io::Cursor::new(vec![1u8]);
        assert!(codec.read_request(&p, &mut short).await.is_err());
        let mut two = futures::io::Cursor::new(vec![1u8, 2]);
        assert!(codec.read_response(&p, &mut two).await.is_err());
    }

    #[tokio::test]
    async fn writes_the_encoding_whole_and_nothing_when_it_fails() {
        let mut codec = Bounded::<Pair>::new();
        let p = Pair::PROTOCOL;
        let mut out = futures::io::Cursor::new(Vec::new());
        assert!(codec.write_request(&p, &mut out, [7, 8]).await.is_ok());
        assert_eq!(out.into_inner(), vec![7, 8]);
        let mut out = futures::io::Cursor::new(Vec::new());
        assert!(codec.write_response(&p, &mut out, 0).await.is_err());
        assert!(out.into_inner().is_empty());
    }
}
