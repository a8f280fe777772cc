//! The two request-response protocols of the city directory: their wire
//! formats (framed by the generic codec of [`crate::codec`]).
//!
//! # `/ronde/directory/1`: fetch the signed directory of a city
//!
//! Every node answers it: a directory is signed by its city, so whoever
//! holds a verified one may pass it on, and the asker verifies it anyway.
//!
//! ```text
//! request  = city key (32) || serial held (8, 0 when none)          exactly 40 bytes
//! response = 0x00                                                   nothing newer
//!          | 0x01 || signed directory (docs/protocol.md §7.2)       2..=1 048 577 bytes
//! ```
//!
//! The answer is a directory only if the node holds one of that city with
//! a serial above the one asked about and not expired by its clock; in
//! every other case (no directory of that city, the same one, an older
//! one) it is `0x00`.
//!
//! # `/ronde/flag/1`: give a relay an anonymous flag against a place
//!
//! Only nodes with a flag sink (city relays) accept it; others speak it
//! outbound only, so it is absent from their identify protocols, which is
//! how phones find the relays among their peers.
//!
//! ```text
//! request  = flag (docs/protocol.md §7.5)                           exactly 127 bytes
//! response = 0x00 counted | 0x01 already counted | 0x02 refused | 0x03 unavailable
//! ```
//!
//! Integers are big-endian. Every read is bounded before anything is
//! parsed; other lengths, unknown tags and trailing bytes are errors and
//! the stream is dropped.

use crate::codec::{invalid, Bounded, WireFormat};
use libp2p::StreamProtocol;
use ronde_protocol::directory::{DirectoryPublicKey, FLAG_LEN, MAX_DIRECTORY_SIZE};

/// Protocol of directory fetches.
pub const DIRECTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/directory/1");
/// Protocol of flags sent to a relay.
pub const FLAG_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/flag/1");

/// Length of a directory request.
pub const DIRECTORY_REQUEST_LEN: usize = 32 + 8;
/// Longest directory response.
pub const MAX_DIRECTORY_RESPONSE: usize = 1 + MAX_DIRECTORY_SIZE;

const NOT_NEWER: u8 = 0x00;
const DIRECTORY: u8 = 0x01;

/// "Do you have a directory of this city newer than this serial?"
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryRequest {
    /// The city's public key.
    pub city: DirectoryPublicKey,
    /// The serial the asker holds (0: none).
    pub serial: u64,
}

/// The answer to a [`DirectoryRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryResponse {
    /// Nothing newer than the serial asked about.
    NotNewer,
    /// The signed bytes, still to be verified by the asker.
    Directory(Vec<u8>),
}

/// What a relay did with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagVerdict {
    /// Verified and counted.
    Counted,
    /// Verified, and already counted before (the same bytes).
    Duplicate,
    /// Refused: malformed, too old, not enough work, a bad signature, or a
    /// place this relay does not list. Sending it again will not help.
    Refused,
    /// Not taken now (busy, shutting down): try again later or elsewhere.
    Unavailable,
}

impl FlagVerdict {
    fn code(self) -> u8 {
        match self {
            FlagVerdict::Counted => 0,
            FlagVerdict::Duplicate => 1,
            FlagVerdict::Refused => 2,
            FlagVerdict::Unavailable => 3,
        }
    }
    fn from_code(c: u8) -> Option<FlagVerdict> {
        Some(match c {
            0 => FlagVerdict::Counted,
            1 => FlagVerdict::Duplicate,
            2 => FlagVerdict::Refused,
            3 => FlagVerdict::Unavailable,
            _ => return None,
        })
    }
}

/// Encode a directory request.
pub fn encode_directory_request(req: &DirectoryRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(DIRECTORY_REQUEST_LEN);
    out.extend_from_slice(&req.city.0);
    out.extend_from_slice(&req.serial.to_be_bytes());
    out
}

/// Decode a directory request (exactly [`DIRECTORY_REQUEST_LEN`] bytes).
pub fn decode_directory_request(buf: &[u8]) -> std::io::Result<DirectoryRequest> {
    if buf.len() != DIRECTORY_REQUEST_LEN {
        return Err(invalid("a directory request is 40 bytes"));
    }
    let mut city = [0u8; 32];
    city.copy_from_slice(&buf[..32]);
    let mut serial = [0u8; 8];
    serial.copy_from_slice(&buf[32..]);
    Ok(DirectoryRequest {
        city: DirectoryPublicKey(city),
        serial: u64::from_be_bytes(serial),
    })
}

/// Encode a directory response (a directory over the size limit is sent
/// as "not newer": the asker could not read it).
pub fn encode_directory_response(res: &DirectoryResponse) -> Vec<u8> {
    match res {
        DirectoryResponse::Directory(d) if !d.is_empty() && d.len() <= MAX_DIRECTORY_SIZE => {
            let mut out = Vec::with_capacity(1 + d.len());
            out.push(DIRECTORY);
            out.extend_from_slice(d);
            out
        }
        _ => vec![NOT_NEWER],
    }
}

/// Decode a directory response. The directory's own structure (and any
/// trailing byte after its signature) is checked by its verification.
pub fn decode_directory_response(buf: &[u8]) -> std::io::Result<DirectoryResponse> {
    match buf.split_first() {
        Some((&NOT_NEWER, [])) => Ok(DirectoryResponse::NotNewer),
        Some((&NOT_NEWER, _)) => Err(invalid("trailing bytes after `not newer`")),
        Some((&DIRECTORY, d)) if !d.is_empty() && d.len() <= MAX_DIRECTORY_SIZE => {
            Ok(DirectoryResponse::Directory(d.to_vec()))
        }
        Some((&DIRECTORY, _)) => Err(invalid("bad directory length")),
        Some(_) => Err(invalid("unknown directory response")),
        None => Err(invalid("empty directory response")),
    }
}

/// Decode a flag request (exactly [`FLAG_LEN`] bytes; the flag itself is
/// verified by the relay).
pub fn decode_flag_request(buf: &[u8]) -> std::io::Result<Vec<u8>> {
    if buf.len() != FLAG_LEN {
        return Err(invalid("a flag is 127 bytes"));
    }
    Ok(buf.to_vec())
}

/// Decode a flag response (exactly one known byte).
pub fn decode_flag_response(buf: &[u8]) -> std::io::Result<FlagVerdict> {
    match buf {
        [c] => FlagVerdict::from_code(*c).ok_or_else(|| invalid("unknown flag verdict")),
        _ => Err(invalid("a flag verdict is one byte")),
    }
}

/// Wire format of `/ronde/directory/1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectoryWire;

/// Codec of `/ronde/directory/1`.
pub type DirectoryCodec = Bounded<DirectoryWire>;

impl WireFormat for DirectoryWire {
    const PROTOCOL: StreamProtocol = DIRECTORY_PROTOCOL;
    const MAX_REQUEST: usize = DIRECTORY_REQUEST_LEN;
    const MAX_RESPONSE: usize = MAX_DIRECTORY_RESPONSE;
    type Request = DirectoryRequest;
    type Response = DirectoryResponse;

    fn encode_request(req: &DirectoryRequest) -> std::io::Result<Vec<u8>> {
        Ok(encode_directory_request(req))
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<DirectoryRequest> {
        decode_directory_request(buf)
    }
    fn encode_response(res: &DirectoryResponse) -> std::io::Result<Vec<u8>> {
        Ok(encode_directory_response(res))
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<DirectoryResponse> {
        decode_directory_response(buf)
    }
}

/// Wire format of `/ronde/flag/1`: the request is the flag's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlagWire;

/// Codec of `/ronde/flag/1`.
pub type FlagCodec = Bounded<FlagWire>;

impl WireFormat for FlagWire {
    const PROTOCOL: StreamProtocol = FLAG_PROTOCOL;
    const MAX_REQUEST: usize = FLAG_LEN;
    const MAX_RESPONSE: usize = 1;
    type Request = Vec<u8>;
    type Response = FlagVerdict;

    fn encode_request(req: &Vec<u8>) -> std::io::Result<Vec<u8>> {
        decode_flag_request(req)
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<Vec<u8>> {
        decode_flag_request(buf)
    }
    fn encode_response(res: &FlagVerdict) -> std::io::Result<Vec<u8>> {
        Ok(vec![res.code()])
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<FlagVerdict> {
        decode_flag_response(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_request_round_trips_and_only_40_bytes_decode() {
        let req = DirectoryRequest {
            city: DirectoryPublicKey([7; 32]),
            serial: 1_790_000_000,
        };
        let bytes = encode_directory_request(&req);
        assert_eq!(bytes.len(), DIRECTORY_REQUEST_LEN);
        assert_eq!(decode_directory_request(&bytes).ok(), Some(req));
        assert!(decode_directory_request(&bytes[..39]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_directory_request(&long).is_err());
        assert!(decode_directory_request(&[]).is_err());
    }

    #[test]
    fn directory_response_round_trips_and_rejects_trailing_and_unknown() {
        let d = DirectoryResponse::Directory(vec![1, 2, 3]);
        assert_eq!(
            decode_directory_response(&encode_directory_response(&d)).ok(),
            Some(d)
        );
        let n = DirectoryResponse::NotNewer;
        assert_eq!(encode_directory_response(&n), vec![0]);
        assert_eq!(decode_directory_response(&[0]).ok(), Some(n));
        assert!(decode_directory_response(&[0, 0]).is_err(), "trailing");
        assert!(decode_directory_response(&[1]).is_err(), "empty directory");
        assert!(decode_directory_response(&[2, 1]).is_err(), "unknown tag");
        assert!(decode_directory_response(&[]).is_err());
        let mut over = vec![1u8];
        over.resize(MAX_DIRECTORY_RESPONSE + 1, 0);
        assert!(decode_directory_response(&over).is_err(), "oversize");
        // An oversized directory is never sent.
        let huge = DirectoryResponse::Directory(vec![0; MAX_DIRECTORY_SIZE + 1]);
        assert_eq!(encode_directory_response(&huge), vec![0]);
    }

    #[test]
    fn flag_frames_have_exact_lengths() {
        assert!(decode_flag_request(&[0; FLAG_LEN]).is_ok());
        assert!(decode_flag_request(&[0; FLAG_LEN - 1]).is_err());
        assert!(decode_flag_request(&[0; FLAG_LEN + 1]).is_err());
        for v in [
            FlagVerdict::Counted,
            FlagVerdict::Duplicate,
            FlagVerdict::Refused,
            FlagVerdict::Unavailable,
        ] {
            assert_eq!(decode_flag_response(&[v.code()]).ok(), Some(v));
        }
        assert!(decode_flag_response(&[4]).is_err());
        assert!(decode_flag_response(&[0, 0]).is_err());
        assert!(decode_flag_response(&[]).is_err());
    }

    #[tokio::test]
    async fn the_codec_refuses_an_oversized_stream_before_parsing() {
        use libp2p::request_response::Codec;
        let mut codec = DirectoryCodec::default();
        let mut big = futures::io::Cursor::new(vec![0u8; DIRECTORY_REQUEST_LEN + 1]);
        assert!(codec
            .read_request(&DIRECTORY_PROTOCOL, &mut big)
            .await
            .is_err());
        let mut ok = futures::io::Cursor::new(vec![0u8; DIRECTORY_REQUEST_LEN]);
        assert!(codec
            .read_request(&DIRECTORY_PROTOCOL, &mut ok)
            .await
            .is_ok());
    }
}
