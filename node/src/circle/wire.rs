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
//!          | 0x02 fetch  || challenge (32) || n (1, 1..=128) || n × key (32)
//!                        || n × signature (64)
//!          | 0x03 ack    || challenge (32) || k (1, 1..=128) || k × key (32)
//!                        || n (2, 1..=256) || n × (mailbox (32) || seq (8))
//!                        || k × signature (64)
//!          | 0x04 switch || work (8) || a dead-man's-switch request (docs/circle.md §8)
//!          | 0x05 challenge
//!          | 0x06 push   || challenge (32) || lifetime (4) || len (2, 1..=512)
//!                        || endpoint (len, an https URL) || n (1, 1..=128)
//!                        || n × key (32) || n × signature (64)
//! response = 0x00 ok
//!          | 0x01 mail   || more (1: 0|1) || n (1, 0..=32)
//!                        || n × (mailbox (32) || seq (8) || length (2) || envelope)
//!          | 0x02 refused || code (1)             (see [`Refusal`])
//!          | 0x03 receipt || a switch deposit's receipt (104, see
//!                            [`crate::circle::receipt`])
//!          | 0x05 challenge || challenge (32)
//! ```
//!
//! Integers are big-endian. `seq` is the host's number for a stored
//! envelope, used to acknowledge (delete) it once fetched. `more` says the
//! host holds more mail for these mailboxes than one answer carries.
//!
//! A fetch or an acknowledgement proves the mailbox secret: it names the
//! public key of each mailbox (whose address is the key's hash) and ends
//! with each key's signature over the request's bytes before the
//! signatures, bound to a challenge the host issued to this peer, to the
//! host and to the peer ([`ronde_protocol::circle::mailbox_auth`]). An
//! acknowledgement may only name mailboxes of its keys. A put needs no
//! proof: anyone may deposit. A push registration proves its keys the same
//! way: the host wakes `endpoint` (a UnifiedPush endpoint) when mail
//! arrives in their mailboxes, for `lifetime` seconds (0: unregister);
//! see docs/circle.md §7.3 and [`crate::circle::host::push`].
//!
//! Every read is bounded before anything is parsed; lengths that are not
//! exactly those of the format, unknown kinds and trailing bytes are errors
//! and the stream is dropped.

use crate::circle::receipt::{SwitchReceipt, RECEIPT_LEN};
use crate::codec::{invalid, Bounded, WireFormat};
use libp2p::StreamProtocol;
use ronde_protocol::circle::mailbox_auth::{self, AuthError, CHALLENGE_LEN};
use ronde_protocol::circle::switch::{self, MAX_SWITCH_REQUEST_LEN};
use ronde_protocol::circle::{address_of_key, MailboxKey};
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
/// Most mailbox keys in one acknowledgement.
pub const MAX_ACK_KEYS: usize = MAX_FETCH_MAILBOXES;
/// Most envelopes in one `mail` answer.
pub const MAX_MAIL_ITEMS: usize = 32;
/// Longest push endpoint URL (bytes).
pub const MAX_PUSH_ENDPOINT: usize = 512;
/// Most mailbox keys one push registration watches.
pub const MAX_PUSH_KEYS: usize = MAX_FETCH_MAILBOXES;

const PUT: u8 = 0x01;
const FETCH: u8 = 0x02;
const ACK: u8 = 0x03;
const SWITCH: u8 = 0x04;
const CHALLENGE: u8 = 0x05;
const PUSH: u8 = 0x06;
const OK: u8 = 0x00;
const MAIL: u8 = 0x01;
const REFUSED: u8 = 0x02;
const RECEIPT: u8 = 0x03;
const CHALLENGED: u8 = 0x05;
const ACCEPTED: u8 = 0x00;
const REJECTED: u8 = 0x01;

const MAX_FETCH_LEN: usize = 1 + CHALLENGE_LEN + 1 + MAX_FETCH_MAILBOXES * (32 + 64);
const MAX_ACK_LEN: usize =
    1 + CHALLENGE_LEN + 1 + MAX_ACK_KEYS * (32 + 64) + 2 + MAX_ACK_ITEMS * (32 + 8);
const MAX_PUSH_LEN: usize =
    1 + CHALLENGE_LEN + 4 + 2 + MAX_PUSH_ENDPOINT + 1 + MAX_PUSH_KEYS * (32 + 64);
const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}
/// Longest `/ronde/mailbox/1` request.
pub const MAX_MAILBOX_REQUEST: usize = max(
    1 + MAX_SWITCH_REQUEST_LEN,
    max(MAX_PUSH_LEN, max(MAX_FETCH_LEN, MAX_ACK_LEN)),
);
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
    /// Send the envelopes held in the mailboxes of these keys.
    Fetch {
        /// A challenge the host issued to this peer.
        challenge: [u8; CHALLENGE_LEN],
        /// 1 to [`MAX_FETCH_MAILBOXES`] mailbox keys (public halves).
        keys: Vec<[u8; 32]>,
        /// One per key, in order.
        signatures: Vec<[u8; 64]>,
    },
    /// Delete these fetched envelopes.
    Ack {
        /// A challenge the host issued to this peer.
        challenge: [u8; CHALLENGE_LEN],
        /// 1 to [`MAX_ACK_KEYS`] mailbox keys: every item's mailbox is one
        /// of theirs.
        keys: Vec<[u8; 32]>,
        /// `(mailbox, seq)` of each, 1 to [`MAX_ACK_ITEMS`].
        items: Vec<([u8; 32], u64)>,
        /// One per key, in order.
        signatures: Vec<[u8; 64]>,
    },
    /// A dead-man's-switch request (deposit, heartbeat or withdrawal), as
    /// bytes; the host's switch parses and verifies it.
    Switch {
        /// A deposit's proof-of-work stamp (0 for the others).
        work: u64,
        /// The request's bytes.
        request: Vec<u8>,
    },
    /// A challenge, for the next fetch, acknowledgement or push
    /// registration.
    Challenge,
    /// Wake `endpoint` when mail arrives in the mailboxes of these keys,
    /// for `lifetime` seconds (0: forget this client's registration).
    Push {
        /// A challenge the host issued to this peer.
        challenge: [u8; CHALLENGE_LEN],
        /// Seconds the registration lasts; 0 unregisters.
        lifetime: u32,
        /// The UnifiedPush endpoint (at most [`MAX_PUSH_ENDPOINT`] bytes).
        endpoint: String,
        /// 1 to [`MAX_PUSH_KEYS`] mailbox keys (public halves).
        keys: Vec<[u8; 32]>,
        /// One per key, in order.
        signatures: Vec<[u8; 64]>,
    },
}

/// Whether switch request bytes are a deposit (the kind byte).
pub fn is_deposit(request: &[u8]) -> bool {
    request.get(1) == Some(&switch::KIND_DEPOSIT)
}

impl MailboxRequest {
    /// A switch request; a deposit is stamped with `bits` of proof of work
    /// (pure CPU: about 2^`bits` SHA-256).
    pub fn switch(request: Vec<u8>, bits: u8) -> MailboxRequest {
        let work = if is_deposit(&request) {
            switch::deposit_work(&request, bits, 0)
        } else {
            0
        };
        MailboxRequest::Switch { work, request }
    }

    /// A fetch of the mailboxes of `keys` from `host`, asked by `client`,
    /// answering `challenge`. Fails on a request that breaks the limits.
    pub fn fetch(
        challenge: [u8; CHALLENGE_LEN],
        keys: &[MailboxKey],
        host: &[u8],
        client: &[u8],
    ) -> std::io::Result<MailboxRequest> {
        let mut req = MailboxRequest::Fetch {
            challenge,
            keys: keys.iter().map(MailboxKey::public_key).collect(),
            signatures: vec![],
        };
        sign_request(&mut req, keys, host, client)?;
        Ok(req)
    }

    /// An acknowledgement of `items`, whose mailboxes are those of `keys`.
    pub fn ack(
        challenge: [u8; CHALLENGE_LEN],
        keys: &[MailboxKey],
        items: Vec<([u8; 32], u64)>,
        host: &[u8],
        client: &[u8],
    ) -> std::io::Result<MailboxRequest> {
        let mut req = MailboxRequest::Ack {
            challenge,
            keys: keys.iter().map(MailboxKey::public_key).collect(),
            items,
            signatures: vec![],
        };
        sign_request(&mut req, keys, host, client)?;
        Ok(req)
    }

    /// A push registration of `endpoint` for the mailboxes of `keys`, at
    /// `host`, asked by `client`.
    pub fn push(
        challenge: [u8; CHALLENGE_LEN],
        lifetime: u32,
        endpoint: &str,
        keys: &[MailboxKey],
        host: &[u8],
        client: &[u8],
    ) -> std::io::Result<MailboxRequest> {
        let mut req = MailboxRequest::Push {
            challenge,
            lifetime,
            endpoint: endpoint.to_owned(),
            keys: keys.iter().map(MailboxKey::public_key).collect(),
            signatures: vec![],
        };
        sign_request(&mut req, keys, host, client)?;
        Ok(req)
    }

    /// For a fetch, an acknowledgement or a push registration: its challenge and the addresses
    /// of its keys, once every signature verified for `host`, asked by
    /// `client`.
    pub fn proven_mailboxes(
        &self,
        host: &[u8],
        client: &[u8],
    ) -> Result<([u8; CHALLENGE_LEN], Vec<[u8; 32]>), AuthError> {
        let (challenge, keys, signatures) = match self {
            MailboxRequest::Fetch {
                challenge,
                keys,
                signatures,
            }
            | MailboxRequest::Ack {
                challenge,
                keys,
                signatures,
                ..
            }
            | MailboxRequest::Push {
                challenge,
                keys,
                signatures,
                ..
            } => (challenge, keys, signatures),
            _ => return Err(AuthError::Count),
        };
        let unsigned = unsigned_bytes(self).map_err(|_| AuthError::Count)?;
        mailbox_auth::verify(keys, signatures, host, client, &unsigned)?;
        Ok((*challenge, keys.iter().map(address_of_key).collect()))
    }
}

fn sign_request(
    req: &mut MailboxRequest,
    keys: &[MailboxKey],
    host: &[u8],
    client: &[u8],
) -> std::io::Result<()> {
    let unsigned = unsigned_bytes(req)?;
    let sigs =
        mailbox_auth::sign(keys, host, client, &unsigned).map_err(|e| invalid(&e.to_string()))?;
    if let MailboxRequest::Fetch { signatures, .. }
    | MailboxRequest::Ack { signatures, .. }
    | MailboxRequest::Push { signatures, .. } = req
    {
        *signatures = sigs;
    }
    Ok(())
}

/// A count byte of 1..=`max` items.
fn count_u8(n: usize, max: usize, what: &str) -> std::io::Result<u8> {
    u8::try_from(n)
        .ok()
        .filter(|&n| n > 0 && usize::from(n) <= max)
        .ok_or_else(|| invalid(what))
}

/// A request's bytes before its signatures (all of it, for the kinds that
/// carry none).
fn unsigned_bytes(req: &MailboxRequest) -> std::io::Result<Vec<u8>> {
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
        MailboxRequest::Fetch {
            challenge, keys, ..
        } => {
            b.push(FETCH);
            b.extend_from_slice(challenge);
            b.push(count_u8(
                keys.len(),
                MAX_FETCH_MAILBOXES,
                "bad number of mailboxes",
            )?);
            keys.iter().for_each(|k| b.extend_from_slice(k));
        }
        MailboxRequest::Ack {
            challenge,
            keys,
            items,
            ..
        } => {
            let n = u16::try_from(items.len())
                .ok()
                .filter(|&n| n > 0 && usize::from(n) <= MAX_ACK_ITEMS)
                .ok_or_else(|| invalid("bad number of items"))?;
            b.push(ACK);
            b.extend_from_slice(challenge);
            b.push(count_u8(keys.len(), MAX_ACK_KEYS, "bad number of keys")?);
            keys.iter().for_each(|k| b.extend_from_slice(k));
            b.extend_from_slice(&n.to_be_bytes());
            for (m, seq) in items {
                b.extend_from_slice(m);
                b.extend_from_slice(&seq.to_be_bytes());
            }
        }
        MailboxRequest::Switch { work, request } => {
            if request.is_empty() || request.len() > MAX_SWITCH_REQUEST_LEN {
                return Err(invalid("bad switch request length"));
            }
            b.push(SWITCH);
            b.extend_from_slice(&work.to_be_bytes());
            b.extend_from_slice(request);
        }
        MailboxRequest::Challenge => b.push(CHALLENGE),
        MailboxRequest::Push {
            challenge,
            lifetime,
            endpoint,
            keys,
            ..
        } => {
            let len = u16::try_from(endpoint.len())
                .ok()
                .filter(|&n| n > 0 && usize::from(n) <= MAX_PUSH_ENDPOINT)
                .ok_or_else(|| invalid("bad push endpoint length"))?;
            b.push(PUSH);
            b.extend_from_slice(challenge);
            b.extend_from_slice(&lifetime.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(endpoint.as_bytes());
            b.push(count_u8(keys.len(), MAX_PUSH_KEYS, "bad number of keys")?);
            keys.iter().for_each(|k| b.extend_from_slice(k));
        }
    }
    Ok(b)
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
    /// A fetch or acknowledgement without a valid proof of the mailbox
    /// secret, or with a challenge the host did not issue to this peer (or
    /// already spent, or expired).
    #[error("no valid proof of the mailbox secret")]
    Unauthorized,
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
    /// A deposit without enough proof of work.
    #[error("the deposit lacks its proof of work")]
    SwitchWorkMissing,
    /// This peer, or its network, holds as many switches as the host
    /// allows one client.
    #[error("this client holds too many switches")]
    SwitchQuota,
    /// A push endpoint the host will not post to (not an https URL, or a
    /// local or private address).
    #[error("the push endpoint is not acceptable")]
    PushEndpoint,
    /// The host holds as many push registrations as it allows (in all,
    /// for this endpoint, this peer or its network).
    #[error("too many push registrations")]
    PushQuota,
    /// This host sends no push wake-ups.
    #[error("this host sends no push wake-ups")]
    PushUnavailable,
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
            Refusal::Unauthorized => 4,
            Refusal::SwitchInvalid => 0x10,
            Refusal::SwitchWrongRelay => 0x11,
            Refusal::SwitchReleaseInPast => 0x12,
            Refusal::SwitchReleaseTooLate => 0x13,
            Refusal::SwitchAlreadyDeposited => 0x14,
            Refusal::SwitchUnknown => 0x15,
            Refusal::SwitchStaleCounter => 0x16,
            Refusal::SwitchAlreadyDue => 0x17,
            Refusal::SwitchFull => 0x18,
            Refusal::SwitchWorkMissing => 0x19,
            Refusal::SwitchQuota => 0x1a,
            Refusal::PushEndpoint => 0x20,
            Refusal::PushQuota => 0x21,
            Refusal::PushUnavailable => 0x22,
            Refusal::Other(c) => c,
        }
    }

    /// The refusal of a code.
    pub fn from_code(code: u8) -> Refusal {
        match code {
            1 => Refusal::MailboxFull,
            2 => Refusal::HostFull,
            3 => Refusal::Unavailable,
            4 => Refusal::Unauthorized,
            0x10 => Refusal::SwitchInvalid,
            0x11 => Refusal::SwitchWrongRelay,
            0x12 => Refusal::SwitchReleaseInPast,
            0x13 => Refusal::SwitchReleaseTooLate,
            0x14 => Refusal::SwitchAlreadyDeposited,
            0x15 => Refusal::SwitchUnknown,
            0x16 => Refusal::SwitchStaleCounter,
            0x17 => Refusal::SwitchAlreadyDue,
            0x18 => Refusal::SwitchFull,
            0x19 => Refusal::SwitchWorkMissing,
            0x1a => Refusal::SwitchQuota,
            0x20 => Refusal::PushEndpoint,
            0x21 => Refusal::PushQuota,
            0x22 => Refusal::PushUnavailable,
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
    /// A challenge for this peer's next fetch or acknowledgement.
    Challenge([u8; CHALLENGE_LEN]),
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
    let mut b = unsigned_bytes(req)?;
    if let MailboxRequest::Fetch {
        keys, signatures, ..
    }
    | MailboxRequest::Ack {
        keys, signatures, ..
    }
    | MailboxRequest::Push {
        keys, signatures, ..
    } = req
    {
        if signatures.len() != keys.len() {
            return Err(invalid("one signature per key"));
        }
        signatures.iter().for_each(|s| b.extend_from_slice(s));
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
            let challenge = r.array::<CHALLENGE_LEN>()?;
            let n = usize::from(r.u8()?);
            if n == 0 || n > MAX_FETCH_MAILBOXES {
                return Err(invalid("bad number of mailboxes"));
            }
            let keys = (0..n).map(|_| r.array::<32>()).collect::<Result<_, _>>()?;
            let signatures = (0..n).map(|_| r.array::<64>()).collect::<Result<_, _>>()?;
            MailboxRequest::Fetch {
                challenge,
                keys,
                signatures,
            }
        }
        ACK => {
            let challenge = r.array::<CHALLENGE_LEN>()?;
            let k = usize::from(r.u8()?);
            if k == 0 || k > MAX_ACK_KEYS {
                return Err(invalid("bad number of keys"));
            }
            let keys = (0..k).map(|_| r.array::<32>()).collect::<Result<_, _>>()?;
            let n = usize::from(r.u16()?);
            if n == 0 || n > MAX_ACK_ITEMS {
                return Err(invalid("bad number of items"));
            }
            let items = (0..n)
                .map(|_| Ok((r.array::<32>()?, r.u64()?)))
                .collect::<std::io::Result<_>>()?;
            let signatures = (0..k).map(|_| r.array::<64>()).collect::<Result<_, _>>()?;
            MailboxRequest::Ack {
                challenge,
                keys,
                items,
                signatures,
            }
        }
        CHALLENGE => MailboxRequest::Challenge,
        PUSH => {
            let challenge = r.array::<CHALLENGE_LEN>()?;
            let lifetime = r.u32()?;
            let len = usize::from(r.u16()?);
            if len == 0 || len > MAX_PUSH_ENDPOINT {
                return Err(invalid("bad push endpoint length"));
            }
            let endpoint = std::str::from_utf8(r.take(len)?)
                .map_err(|_| invalid("push endpoint is not UTF-8"))?
                .to_owned();
            let n = usize::from(r.u8()?);
            if n == 0 || n > MAX_PUSH_KEYS {
                return Err(invalid("bad number of keys"));
            }
            let keys = (0..n).map(|_| r.array::<32>()).collect::<Result<_, _>>()?;
            let signatures = (0..n).map(|_| r.array::<64>()).collect::<Result<_, _>>()?;
            MailboxRequest::Push {
                challenge,
                lifetime,
                endpoint,
                keys,
                signatures,
            }
        }
        SWITCH => {
            let work = r.u64()?;
            let request = r.rest().to_vec();
            if request.is_empty() {
                return Err(invalid("empty switch request"));
            }
            MailboxRequest::Switch { work, request }
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
        MailboxResponse::Challenge(c) => {
            b.push(CHALLENGED);
            b.extend_from_slice(c);
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
        CHALLENGED => MailboxResponse::Challenge(r.array::<CHALLENGE_LEN>()?),
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
                challenge: [5; 32],
                keys: vec![[1; 32]; MAX_FETCH_MAILBOXES],
                signatures: vec![[2; 64]; MAX_FETCH_MAILBOXES],
            },
            MailboxRequest::Ack {
                challenge: [6; 32],
                keys: vec![[1; 32]; MAX_ACK_KEYS],
                items: vec![([9; 32], u64::MAX); MAX_ACK_ITEMS],
                signatures: vec![[3; 64]; MAX_ACK_KEYS],
            },
            MailboxRequest::Switch {
                work: 77,
                request: vec![1, 2, 3],
            },
            MailboxRequest::Challenge,
            MailboxRequest::Push {
                challenge: [7; 32],
                lifetime: 86_400,
                endpoint: "https://push.example/up/".to_owned() + &"a".repeat(480),
                keys: vec![[1; 32]; MAX_PUSH_KEYS],
                signatures: vec![[2; 64]; MAX_PUSH_KEYS],
            },
        ];
        for r in reqs {
            let b = encode_mailbox_request(&r).expect("encodes");
            assert!(b.len() <= MAX_MAILBOX_REQUEST);
            assert_eq!(decode_mailbox_request(&b).expect("decodes"), r);
        }
    }

    #[test]
    fn proofs_verify_only_for_their_host_client_and_request() {
        let keys = [
            MailboxKey::from_seed(&[1; 32]),
            MailboxKey::from_seed(&[2; 32]),
        ];
        let fetch = MailboxRequest::fetch([9; 32], &keys, b"host", b"client").expect("fetch");
        let wire = encode_mailbox_request(&fetch).expect("encodes");
        let back = decode_mailbox_request(&wire).expect("decodes");
        let (challenge, addrs) = back.proven_mailboxes(b"host", b"client").expect("proven");
        assert_eq!(challenge, [9; 32]);
        assert_eq!(addrs, vec![keys[0].address(), keys[1].address()]);
        assert!(back.proven_mailboxes(b"other", b"client").is_err());
        assert!(back.proven_mailboxes(b"host", b"other").is_err());
        // Another challenge in the same signed bytes: refused.
        let mut moved = wire.clone();
        moved[1] ^= 1;
        let moved = decode_mailbox_request(&moved).expect("decodes");
        assert!(moved.proven_mailboxes(b"host", b"client").is_err());

        let items = vec![(keys[0].address(), 1), (keys[1].address(), 2)];
        let ack = MailboxRequest::ack([8; 32], &keys, items, b"host", b"client").expect("ack");
        let back = decode_mailbox_request(&encode_mailbox_request(&ack).expect("encodes"))
            .expect("decodes");
        assert!(back.proven_mailboxes(b"host", b"client").is_ok());
        // Changing which envelope is deleted breaks the proof.
        if let MailboxRequest::Ack {
            challenge,
            keys,
            signatures,
            ..
        } = back
        {
            let items = vec![(address_of_key(&keys[0]), 7)];
            let forged = MailboxRequest::Ack {
                challenge,
                keys,
                items,
                signatures,
            };
            assert!(forged.proven_mailboxes(b"host", b"client").is_err());
        }
        assert!(MailboxRequest::Challenge
            .proven_mailboxes(b"host", b"client")
            .is_err());

        // A push registration: the endpoint and the lifetime are signed.
        let push = MailboxRequest::push(
            [7; 32],
            3600,
            "https://up.example/x",
            &keys,
            b"host",
            b"client",
        )
        .expect("push");
        let wire = encode_mailbox_request(&push).expect("encodes");
        let back = decode_mailbox_request(&wire).expect("decodes");
        assert_eq!(back, push);
        assert!(back.proven_mailboxes(b"host", b"client").is_ok());
        assert!(back.proven_mailboxes(b"host", b"other").is_err());
        if let MailboxRequest::Push {
            challenge,
            keys,
            signatures,
            ..
        } = back
        {
            let forged = MailboxRequest::Push {
                challenge,
                lifetime: 3600,
                endpoint: "https://evil.example/x".to_owned(),
                keys,
                signatures,
            };
            assert!(forged.proven_mailboxes(b"host", b"client").is_err());
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
            challenge: [0; 32],
            keys: vec![[1; 32]; 2],
            signatures: vec![[2; 64]; 2],
        })
        .expect("encodes");
        let mut trailing = fetch.clone();
        trailing.push(0);
        assert!(decode_mailbox_request(&trailing).is_err());
        let mut none = vec![FETCH];
        none.extend([0u8; 33]);
        assert!(decode_mailbox_request(&none).is_err(), "no mailbox");
        let mut too_many = vec![FETCH];
        too_many.extend([0u8; 32]);
        too_many.push(129);
        too_many.extend(vec![0u8; 129 * 96]);
        assert!(decode_mailbox_request(&too_many).is_err());
        let mut no_items = vec![ACK];
        no_items.extend([0u8; 32]);
        no_items.push(1);
        no_items.extend([0u8; 32 + 2 + 64]);
        assert!(decode_mailbox_request(&no_items).is_err());
        assert!(decode_mailbox_request(&[CHALLENGE, 0]).is_err());
        let push = encode_mailbox_request(&MailboxRequest::Push {
            challenge: [0; 32],
            lifetime: 1,
            endpoint: "https://a.example/".to_owned(),
            keys: vec![[1; 32]],
            signatures: vec![[2; 64]],
        })
        .expect("encodes");
        let mut trailing = push.clone();
        trailing.push(0);
        assert!(decode_mailbox_request(&trailing).is_err());
        assert!(decode_mailbox_request(&push[..push.len() - 1]).is_err());
        let mut no_url = vec![PUSH];
        no_url.extend([0u8; 32 + 4 + 2]);
        no_url.push(1);
        no_url.extend([0u8; 96]);
        assert!(decode_mailbox_request(&no_url).is_err(), "empty endpoint");
        let mut bad_utf8 = push.clone();
        bad_utf8[1 + 32 + 4 + 2] = 0xff;
        assert!(decode_mailbox_request(&bad_utf8).is_err());
        assert!(encode_mailbox_request(&MailboxRequest::Push {
            challenge: [0; 32],
            lifetime: 1,
            endpoint: "x".repeat(MAX_PUSH_ENDPOINT + 1),
            keys: vec![[1; 32]],
            signatures: vec![[2; 64]],
        })
        .is_err());
        assert!(decode_mailbox_request(&[SWITCH]).is_err());
        assert!(decode_mailbox_request(&[SWITCH, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_mailbox_request(&[]).is_err());
        assert!(decode_mailbox_request(&[9]).is_err());
        let huge = vec![SWITCH; MAX_MAILBOX_REQUEST + 1];
        assert!(decode_mailbox_request(&huge).is_err());
        // Encoding refuses what decoding would refuse.
        assert!(encode_mailbox_request(&MailboxRequest::Fetch {
            challenge: [0; 32],
            keys: vec![],
            signatures: vec![],
        })
        .is_err());
        assert!(encode_mailbox_request(&MailboxRequest::Fetch {
            challenge: [0; 32],
            keys: vec![[1; 32]],
            signatures: vec![],
        })
        .is_err());
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
            MailboxResponse::Refused(Refusal::Unauthorized),
            MailboxResponse::Challenge([7; 32]),
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
