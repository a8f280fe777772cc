//! The wire format of `/ronde/stem/1` as a [`WireFormat`] of the one
//! codec ([`crate::codec`]); the bytes are `ronde_protocol::stem`'s
//! (docs/protocol.md §3.4). Below the behaviour, which mounts it.

use std::io;

use libp2p::StreamProtocol;
use ronde_protocol::stem::{StemRequest, StemResponse, MAX_STEM_REQUEST, STEM_RESPONSE_LEN};

use crate::codec::{invalid, Bounded, WireFormat};

/// Protocol of the stem.
pub const STEM_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/stem/1");
/// Wire format of `/ronde/stem/1` (docs/protocol.md §3.4).
#[derive(Debug, Clone, Copy, Default)]
pub struct StemWire;

/// Codec of `/ronde/stem/1`.
pub type StemCodec = Bounded<StemWire>;

impl WireFormat for StemWire {
    const PROTOCOL: StreamProtocol = STEM_PROTOCOL;
    const MAX_REQUEST: usize = MAX_STEM_REQUEST;
    const MAX_RESPONSE: usize = STEM_RESPONSE_LEN;
    type Request = StemRequest;
    type Response = StemResponse;

    fn encode_request(req: &StemRequest) -> io::Result<Vec<u8>> {
        req.encode().map_err(|e| invalid(&e.to_string()))
    }
    fn decode_request(buf: &[u8]) -> io::Result<StemRequest> {
        StemRequest::decode(buf).map_err(|e| invalid(&e.to_string()))
    }
    fn encode_response(res: &StemResponse) -> io::Result<Vec<u8>> {
        Ok(res.encode())
    }
    fn decode_response(buf: &[u8]) -> io::Result<StemResponse> {
        StemResponse::decode(buf).map_err(|e| invalid(&e.to_string()))
    }
}
