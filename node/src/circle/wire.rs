//! The two request-response protocols of the trusted circle: their wire
//! formats (framed by the generic codec of [`crate::codec`]).
//!
//! # `/ronde/circle/1`: direct delivery
//!
//! Every node accepts it. One stream carries one envelope, from whoever
//! holds it to the node of its recipient.
//!
//! ```text
//! request  = envelope                     (exactly 561 or 2097 bytes)
//! response = 0x00 accepted | 0x01 refused (1 byte)
//! ```
//!
//! The answer says only whether the envelope opened and was new: a refusal
//! does not say why (misaddressed, tampered, replayed, from a stranger).
//! A sender whose envelope is refused tries the mailbox instead.
//!
//! # `/ronde/mailbox/1`: store-and-forward and the dead-man's switch
//!
//! Only nodes with [`crate::NodeConfig::mailbox_host`] accept it (others
//! speak it outbound only). A node never takes a peer as its host because
//! it speaks it: hosts are configured or listed in the city's signed
//! directory (docs/circle.md §8.1).
//!
//! ```text
//! request  = 0x01 put    || mailbox (32) || envelope (561 | 2097)
//!          | 0x02 fetch  || n (1, 1..=128) || n × mailbox (32)
//!          | 0x03 ack    || n (2, 1..=256) || n × (mailbox (32) || seq (8))
//!          | 0x04 switch || a dead-man's-switch request (docs/circle.md §8)
//! response = 0x00 ok
//!          | 0x01 mail   || more (1: 0|1) || n (1, 0..=32)
//!                        || n × (mailbox (32) || seq (8) || length (2) || envelope)
//!          | 0x02 refused || code (1)             (see [`Refusal`])
//!          | 0x03 receipt || a switch deposit's receipt (104, see
//!                            [`crate::circle::receipt`])
//! ```
//!
//! Integers are big-endian. `seq` is the host's number for a stored
//! envelope, used to acknowledge (delete) it once fetched. `more` says the
//! host holds more mail for these mailboxes than one answer carries.
//!
//! Every read is bounded before anything is parsed; lengths that are not
//! exactly those of the format, unknown kinds and trailing bytes are errors
//! and the stream is dropped.

use crate::circle::receipt::{SwitchReceipt, RECEIPT_LEN};
use crate::codec::{invalid, Bounded, WireFormat};
use libp2p::StreamProtocol;
use ronde_protocol::circle::switch::MAX_SWITCH_REQUEST_LEN;
use ronde_protocol::circle::{LARGE_ENVELOPE_LEN, SMALL_ENVELOPE_LEN};
use ronde_protocol::cursor::{Cursor, CursorError};

/// Protocol of direct envelope delivery.
pub const CIRCLE_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/circle/1");
/// Protocol of the mailbox and dead-man's-switch service.
pub const MAILBOX_PROTOCOL: StreamProtocol = StreamProtocol::new("/ronde/mailbox/1");

/// Most mailboxes in one fetch (32 contacts × 2 days + 16 invites fit).
pub const MAX_FETCH_MAILBOXES: usize = 128;
/// Most envelopes acknowledged in one request.
pub const MAX_ACK_ITEMS: usize = 256;
/// Most envelopes in one `mail` answer.
pub const MAX_MAIL_ITEMS: usize = 32;

const PUT: u8 = 0x01;
const FETCH: u8 = 0x02;
const ACK: u8 = 0x03;
const SWITCH: u8 = 0x04;
const OK: u8 = 0x00;
const MAIL: u8 = 0x01;
const REFUSED: u8 = 0x02;
const RECEIPT: u8 = 0x03;
const ACCEPTED: u8 = 0x00;
const REJECTED: u8 = 0x01;

/// Longest `/ronde/mailbox/1` request.
pub const MAX_MAILBOX_REQUEST: usize = 1 + MAX_SWITCH_REQUEST_LEN;
/// Longest `/ronde/mailbox/1` response.
pub const MAX_MAILBOX_RESPONSE: usize = 3 + MAX_MAIL_ITEMS * (32 + 8 + 2 + LARGE_ENVELOPE_LEN);

/// Whether `len` is the length of an envelope.
pub fn is_envelope_len(len: usize) -> bool {
    len == SMALL_ENVELOPE_LEN || len == LARGE_ENVELOPE_LEN
}

/// The answer to a direct delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The envelope opened and was new.
    Accepted,
    /// It did not open, was a replay, or came from someone not allowed.
    Refused,
}

/// A `/ronde/mailbox/1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxRequest {
    /// Keep `envelope` in `mailbox` until fetched and acknowledged, or
    /// until the host's retention period ends.
    Put {
        /// The mailbox address.
        mailbox: [u8; 32],
        /// One envelope.
        envelope: Vec<u8>,
    },
    /// Send the envelopes held in these mailboxes.
    Fetch {
        /// 1 to [`MAX_FETCH_MAILBOXES`] addresses.
        mailboxes: Vec<[u8; 32]>,
    },
    /// Delete these fetched envelopes.
    Ack {
        /// `(mailbox, seq)` of each, 1 to [`MAX_ACK_ITEMS`].
        items: Vec<([u8; 32], u64)>,
    },
    /// A dead-man's-switch request (deposit, heartbeat or withdrawal), as
    /// bytes; the host's switch parses and verifies it.
    Switch(Vec<u8>),
}

/// One envelope held by a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailItem {
    /// Its mailbox.
    pub mailbox: [u8; 32],
    /// The host's number for it (to acknowledge it).
    pub seq: u64,
    /// The envelope.
    pub envelope: Vec<u8>,
}

/// Why a host refused a request. Each has a stable one-byte code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// This mailbox holds as many envelopes as the host allows.
    #[error("the mailbox is full")]
    MailboxFull,
    /// The host stores as much as it allows.
    #[error("the mailbox host is full")]
    HostFull,
    /// The host could not store it (its own failure).
    #[error("the mailbox host failed to store it")]
    Unavailable,
    /// A switch request that does not parse or verify.
    #[error("invalid dead-man's-switch request")]
    SwitchInvalid,
    /// A deposit for another relay.
    #[error("the deposit names another relay")]
    SwitchWrongRelay,
    /// A release time in the past.
    #[error("the release time has passed")]
    SwitchReleaseInPast,
    /// A release time too far ahead.
    #[error("the release time is too late")]
    SwitchReleaseTooLate,
    /// This switch key was already deposited.
    #[error("this switch was already deposited")]
    SwitchAlreadyDeposited,
    /// No switch with this key.
    #[error("no such switch")]
    SwitchUnknown,
    /// A counter not above the last one.
    #[error("stale switch counter")]
    SwitchStaleCounter,
    /// The switch is due: too late to change it.
    #[error("the switch is already due")]
    SwitchAlreadyDue,
    /// The host holds as many switches as it accepts.
    #[error("the host holds too many switches")]
    SwitchFull,
    /// A code this version does not know.
    #[error("refused (code {0})")]
    Other(u8),
}

impl Refusal {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Refusal::MailboxFull => 1,
            Refusal::HostFull => 2,
            Refusal::Unavailable => 3,
            Refusal::SwitchInvalid => 0x10,
            Refusal::SwitchWrongRelay => 0x11,
            Refusal::SwitchReleaseInPast => 0x12,
            Refusal::SwitchReleaseTooLate => 0x13,
            Refusal::SwitchAlreadyDeposited => 0x14,
            Refusal::SwitchUnknown => 0x15,
            Refusal::SwitchStaleCounter => 0x16,
            Refusal::SwitchAlreadyDue => 0x17,
            Refusal::SwitchFull => 0x18,
            Refusal::Other(c) => c,
        }
    }

    /// The refusal of a code.
    pub fn from_code(code: u8) -> Refusal {
        match code {
            1 => Refusal::MailboxFull,
            2 => Refusal::HostFull,
            3 => Refusal::Unavailable,
            0x10 => Refusal::SwitchInvalid,
            0x11 => Refusal::SwitchWrongRelay,
            0x12 => Refusal::SwitchReleaseInPast,
            0x13 => Refusal::SwitchReleaseTooLate,
            0x14 => Refusal::SwitchAlreadyDeposited,
            0x15 => Refusal::SwitchUnknown,
            0x16 => Refusal::SwitchStaleCounter,
            0x17 => Refusal::SwitchAlreadyDue,
            0x18 => Refusal::SwitchFull,
            c => Refusal::Other(c),
        }
    }

    /// The refusal for a switch error.
    pub fn of_switch(e: &ronde_protocol::circle::SwitchError) -> Refusal {
        use ronde_protocol::circle::SwitchError as E;
        match e {
            E::WrongRelay => Refusal::SwitchWrongRelay,
            E::ReleaseInPast => Refusal::SwitchReleaseInPast,
            E::ReleaseTooLate { .. } => Refusal::SwitchReleaseTooLate,
            E::AlreadyDeposited => Refusal::SwitchAlreadyDeposited,
            E::UnknownSwitch => Refusal::SwitchUnknown,
            E::StaleCounter { .. } => Refusal::SwitchStaleCounter,
            E::AlreadyDue => Refusal::SwitchAlreadyDue,
            E::Full => Refusal::SwitchFull,
            _ => Refusal::SwitchInvalid,
        }
    }
}

/// A `/ronde/mailbox/1` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxResponse {
    /// Done.
    Ok,
    /// Envelopes held in the mailboxes asked for.
    Mail {
        /// The host holds more than this answer carries: fetch again after
        /// acknowledging these.
        more: bool,
        /// Up to [`MAX_MAIL_ITEMS`] envelopes, oldest first.
        items: Vec<MailItem>,
    },
    /// Refused.
    Refused(Refusal),
    /// A switch deposit taken (or already held), with the host's signed
    /// receipt.
    Receipt(SwitchReceipt),
}

/// The cursor's two faults (truncated, trailing bytes) as this codec's I/O
/// errors, with the messages the codec always gave.
struct Fault(std::io::Error);

impl From<CursorError> for Fault {
    fn from(e: CursorError) -> Self {
        Fault(invalid(&e.to_string()))
    }
}

impl From<Fault> for std::io::Error {
    fn from(f: Fault) -> Self {
        f.0
    }
}

type Reader<'a> = Cursor<'a, Fault>;

/// Decode a direct-delivery request: exactly one envelope.
pub fn decode_envelope(buf: &[u8]) -> std::io::Result<Vec<u8>> {
    if !is_envelope_len(buf.len()) {
        return Err(invalid("not the length of an envelope"));
    }
    Ok(buf.to_vec())
}

/// Decode a direct-delivery response.
pub fn decode_delivery(buf: &[u8]) -> std::io::Result<Delivery> {
    match buf {
        [ACCEPTED] => Ok(Delivery::Accepted),
        [REJECTED] => Ok(Delivery::Refused),
        _ => Err(invalid("bad delivery answer")),
    }
}

/// Encode a direct-delivery response.
pub fn encode_delivery(d: Delivery) -> [u8; 1] {
    match d {
        Delivery::Accepted => [ACCEPTED],
        Delivery::Refused => [REJECTED],
    }
}

/// Encode a mailbox request. Fails on a request that breaks the limits
/// (nothing is sent then).
pub fn encode_mailbox_request(req: &MailboxRequest) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    match req {
        MailboxRequest::Put { mailbox, envelope } => {
            if !is_envelope_len(envelope.len()) {
                return Err(invalid("not the length of an envelope"));
            }
            b.push(PUT);
            b.extend_from_slice(mailbox);
            b.extend_from_slice(envelope);
        }
        MailboxRequest::Fetch { mailboxes } => {
            let n = u8::try_from(mailboxes.len())
                .ok()
                .filter(|&n| n > 0 && usize::from(n) <= MAX_FETCH_MAILBOXES)
                .ok_or_else(|| invalid("bad number of mailboxes"))?;
            b.push(FETCH);
            b.push(n);
            mailboxes.iter().for_each(|m| b.extend_from_slice(m));
        }
        MailboxRequest::Ack { items } => {
            let n = u16::try_from(items.len())
                .ok()
                .filter(|&n| n > 0 && usize::from(n) <= MAX_ACK_ITEMS)
                .ok_or_else(|| invalid("bad number of items"))?;
            b.push(ACK);
            b.extend_from_slice(&n.to_be_bytes());
            for (m, seq) in items {
                b.extend_from_slice(m);
                b.extend_from_slice(&seq.to_be_bytes());
            }
        }
        MailboxRequest::Switch(bytes) => {
            if bytes.is_empty() || bytes.len() > MAX_SWITCH_REQUEST_LEN {
                return Err(invalid("bad switch request length"));
            }
            b.push(SWITCH);
            b.extend_from_slice(bytes);
        }
    }
    Ok(b)
}

/// Decode a mailbox request.
pub fn decode_mailbox_request(buf: &[u8]) -> std::io::Result<MailboxRequest> {
    if buf.len() > MAX_MAILBOX_REQUEST {
        return Err(invalid("request over the size limit"));
    }
    let mut r = Reader::new(buf);
    let req = match r.u8()? {
        PUT => {
            let mailbox = r.array::<32>()?;
            let envelope = decode_envelope(r.rest())?;
            MailboxRequest::Put { mailbox, envelope }
        }
        FETCH => {
            let n = usize::from(r.u8()?);
            if n == 0 || n > MAX_FETCH_MAILBOXES {
                return Err(invalid("bad number of mailboxes"));
            }
            let mailboxes = (0..n).map(|_| r.array::<32>()).collect::<Result<_, _>>()?;
            MailboxRequest::Fetch { mailboxes }
        }
        ACK => {
            let n = usize::from(r.u16()?);
            if n == 0 || n > MAX_ACK_ITEMS {
                return Err(invalid("bad number of items"));
            }
            let items = (0..n)
                .map(|_| Ok((r.array::<32>()?, r.u64()?)))
                .collect::<std::io::Result<_>>()?;
            MailboxRequest::Ack { items }
        }
        SWITCH => {
            let bytes = r.rest().to_vec();
            if bytes.is_empty() {
                return Err(invalid("empty switch request"));
            }
            MailboxRequest::Switch(bytes)
        }
        _ => return Err(invalid("unknown mailbox request")),
    };
    r.finish()?;
    Ok(req)
}

/// Encode a mailbox response. Fails on a response that breaks the limits.
pub fn encode_mailbox_response(res: &MailboxResponse) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    match res {
        MailboxResponse::Ok => b.push(OK),
        MailboxResponse::Mail { more, items } => {
            let n = u8::try_from(items.len())
                .ok()
                .filter(|&n| usize::from(n) <= MAX_MAIL_ITEMS)
                .ok_or_else(|| invalid("too many items"))?;
            b.push(MAIL);
            b.push(u8::from(*more));
            b.push(n);
            for it in items {
                let len = u16::try_from(it.envelope.len())
                    .ok()
                    .filter(|_| is_envelope_len(it.envelope.len()))
                    .ok_or_else(|| invalid("not the length of an envelope"))?;
                b.extend_from_slice(&it.mailbox);
                b.extend_from_slice(&it.seq.to_be_bytes());
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&it.envelope);
            }
        }
        MailboxResponse::Refused(r) => {
            b.push(REFUSED);
            b.push(r.code());
        }
        MailboxResponse::Receipt(r) => {
            b.push(RECEIPT);
            b.extend_from_slice(&r.to_bytes());
        }
    }
    Ok(b)
}

/// Decode a mailbox response.
pub fn decode_mailbox_response(buf: &[u8]) -> std::io::Result<MailboxResponse> {
    if buf.len() > MAX_MAILBOX_RESPONSE {
        return Err(invalid("response over the size limit"));
    }
    let mut r = Reader::new(buf);
    let res = match r.u8()? {
        OK => MailboxResponse::Ok,
        MAIL => {
            let more = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(invalid("bad flag")),
            };
            let n = usize::from(r.u8()?);
            if n > MAX_MAIL_ITEMS {
                return Err(invalid("too many items"));
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let mailbox = r.array::<32>()?;
                let seq = r.u64()?;
                let len = usize::from(r.u16()?);
                if !is_envelope_len(len) {
                    return Err(invalid("not the length of an envelope"));
                }
                let envelope = r.take(len)?.to_vec();
                items.push(MailItem {
                    mailbox,
                    seq,
                    envelope,
                });
            }
            MailboxResponse::Mail { more, items }
        }
        REFUSED => MailboxResponse::Refused(Refusal::from_code(r.u8()?)),
        RECEIPT => MailboxResponse::Receipt(
            SwitchReceipt::from_bytes(r.take(RECEIPT_LEN)?)
                .ok_or_else(|| invalid("bad receipt"))?,
        ),
        _ => return Err(invalid("unknown mailbox response")),
    };
    r.finish()?;
    Ok(res)
}

/// Wire format of `/ronde/circle/1`: the request is one envelope's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CircleWire;

/// Codec of `/ronde/circle/1`.
pub type CircleCodec = Bounded<CircleWire>;

impl WireFormat for CircleWire {
    const PROTOCOL: StreamProtocol = CIRCLE_PROTOCOL;
    const MAX_REQUEST: usize = LARGE_ENVELOPE_LEN;
    const MAX_RESPONSE: usize = 1;
    type Request = Vec<u8>;
    type Response = Delivery;

    fn encode_request(req: &Vec<u8>) -> std::io::Result<Vec<u8>> {
        decode_envelope(req)
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<Vec<u8>> {
        decode_envelope(buf)
    }
    fn encode_response(res: &Delivery) -> std::io::Result<Vec<u8>> {
        Ok(encode_delivery(*res).to_vec())
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<Delivery> {
        decode_delivery(buf)
    }
}

/// Wire format of `/ronde/mailbox/1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailboxWire;

/// Codec of `/ronde/mailbox/1`.
pub type MailboxCodec = Bounded<MailboxWire>;

impl WireFormat for MailboxWire {
    const PROTOCOL: StreamProtocol = MAILBOX_PROTOCOL;
    const MAX_REQUEST: usize = MAX_MAILBOX_REQUEST;
    const MAX_RESPONSE: usize = MAX_MAILBOX_RESPONSE;
    type Request = MailboxRequest;
    type Response = MailboxResponse;

    fn encode_request(req: &MailboxRequest) -> std::io::Result<Vec<u8>> {
        encode_mailbox_request(req)
    }
    fn decode_request(buf: &[u8]) -> std::io::Result<MailboxRequest> {
        decode_mailbox_request(buf)
    }
    fn encode_response(res: &MailboxResponse) -> std::io::Result<Vec<u8>> {
        encode_mailbox_response(res)
    }
    fn decode_response(buf: &[u8]) -> std::io::Result<MailboxResponse> {
        decode_mailbox_response(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(len: usize) -> Vec<u8> {
        let mut e = vec![7u8; len];
        if let Some(b) = e.first_mut() {
            *b = 1;
        }
        e
    }

    #[test]
    fn delivery_framing() {
        assert!(decode_envelope(&env(SMALL_ENVELOPE_LEN)).is_ok());
        assert!(decode_envelope(&env(LARGE_ENVELOPE_LEN)).is_ok());
        for bad in [0, 1, SMALL_ENVELOPE_LEN - 1, SMALL_ENVELOPE_LEN + 1, 4096] {
            assert!(decode_envelope(&env(bad)).is_err(), "{bad}");
        }
        for d in [Delivery::Accepted, Delivery::Refused] {
            assert_eq!(decode_delivery(&encode_delivery(d)).ok(), Some(d));
        }
        assert!(decode_delivery(&[]).is_err());
        assert!(decode_delivery(&[0, 0]).is_err());
        assert!(decode_delivery(&[2]).is_err());
    }

    #[test]
    fn mailbox_requests_round_trip() {
        let reqs = [
            MailboxRequest::Put {
                mailbox: [3; 32],
                envelope: env(SMALL_ENVELOPE_LEN),
            },
            MailboxRequest::Put {
                mailbox: [4; 32],
                envelope: env(LARGE_ENVELOPE_LEN),
            },
            MailboxRequest::Fetch {
                mailboxes: vec![[1; 32]; MAX_FETCH_MAILBOXES],
            },
            MailboxRequest::Ack {
                items: vec![([9; 32], u64::MAX), ([8; 32], 0)],
            },
            MailboxRequest::Switch(vec![1, 2, 3]),
        ];
        for r in reqs {
            let b = encode_mailbox_request(&r).expect("encodes");
            assert_eq!(decode_mailbox_request(&b).expect("decodes"), r);
        }
    }

    #[test]
    fn mailbox_requests_reject_bad_framing() {
        let put = encode_mailbox_request(&MailboxRequest::Put {
            mailbox: [3; 32],
            envelope: env(SMALL_ENVELOPE_LEN),
        })
        .expect("encodes");
        let mut long = put.clone();
        long.push(0);
        assert!(decode_mailbox_request(&long).is_err(), "trailing byte");
        assert!(decode_mailbox_request(&put[..put.len() - 1]).is_err());
        let fetch = encode_mailbox_request(&MailboxRequest::Fetch {
            mailboxes: vec![[1; 32]; 2],
        })
        .expect("encodes");
        let mut trailing = fetch.clone();
        trailing.push(0);
        assert!(decode_mailbox_request(&trailing).is_err());
        assert!(decode_mailbox_request(&[FETCH, 0]).is_err(), "no mailbox");
        let mut too_many = vec![FETCH, 129];
        too_many.extend(vec![0u8; 129 * 32]);
        assert!(decode_mailbox_request(&too_many).is_err());
        assert!(decode_mailbox_request(&[ACK, 0, 0]).is_err());
        assert!(decode_mailbox_request(&[SWITCH]).is_err());
        assert!(decode_mailbox_request(&[]).is_err());
        assert!(decode_mailbox_request(&[9]).is_err());
        let huge = vec![SWITCH; MAX_MAILBOX_REQUEST + 1];
        assert!(decode_mailbox_request(&huge).is_err());
        // Encoding refuses what decoding would refuse.
        assert!(encode_mailbox_request(&MailboxRequest::Fetch { mailboxes: vec![] }).is_err());
        assert!(encode_mailbox_request(&MailboxRequest::Put {
            mailbox: [0; 32],
            envelope: vec![1; 10],
        })
        .is_err());
    }

    #[test]
    fn mailbox_responses_round_trip_and_reject_bad_framing() {
        let mail = MailboxResponse::Mail {
            more: true,
            items: vec![
                MailItem {
                    mailbox: [1; 32],
                    seq: 5,
                    envelope: env(SMALL_ENVELOPE_LEN),
                };
                MAX_MAIL_ITEMS
            ],
        };
        for r in [
            MailboxResponse::Ok,
            mail.clone(),
            MailboxResponse::Mail {
                more: false,
                items: vec![],
            },
            MailboxResponse::Refused(Refusal::MailboxFull),
            MailboxResponse::Refused(Refusal::SwitchStaleCounter),
            MailboxResponse::Receipt(SwitchReceipt {
                key: [5; 32],
                release_at: 77,
                signature: [6; 64],
            }),
        ] {
            let b = encode_mailbox_response(&r).expect("encodes");
            assert!(b.len() <= MAX_MAILBOX_RESPONSE);
            assert_eq!(decode_mailbox_response(&b).expect("decodes"), r);
        }
        let b = encode_mailbox_response(&mail).expect("encodes");
        let mut trailing = b.clone();
        trailing.push(0);
        assert!(decode_mailbox_response(&trailing).is_err());
        assert!(decode_mailbox_response(&b[..b.len() - 1]).is_err());
        assert!(decode_mailbox_response(&[MAIL, 2, 0]).is_err(), "bad flag");
        assert!(decode_mailbox_response(&[MAIL, 0, 33]).is_err());
        assert!(decode_mailbox_response(&[OK, 0]).is_err());
        assert!(decode_mailbox_response(&[RECEIPT; RECEIPT_LEN]).is_err());
        assert!(decode_mailbox_response(&[RECEIPT; RECEIPT_LEN + 2]).is_err());
        let mut bad_len = vec![MAIL, 0, 1];
        bad_len.extend([0u8; 40]);
        bad_len.extend(100u16.to_be_bytes());
        bad_len.extend([0u8; 100]);
        assert!(decode_mailbox_response(&bad_len).is_err());
        for code in 0..=255u8 {
            assert_eq!(Refusal::from_code(code).code(), code);
        }
    }
}
