//! What contacts say to each other, and its canonical encoding.
//!
//! A message is a kind byte followed by the kind's fields (big-endian, no
//! padding, no trailing bytes). It is versioned by the envelope it travels
//! in ([`crate::circle::envelope`]). Layouts are in `docs/circle.md` §4.
//!
//! | kind   | message              |
//! |--------|----------------------|
//! | `0x01` | [`Message::Accept`]  |
//! | `0x02` | [`Message::Confirm`] |
//! | `0x03` | [`Message::Leave`]   |
//! | `0x10` | [`Message::JourneyStarted`] |
//! | `0x11` | [`Message::Position`] |
//! | `0x12` | [`Message::Arrived`] |
//! | `0x13` | [`Message::JourneyCancelled`] |
//! | `0x14` | [`Message::Overdue`] |
//! | `0x15` | [`Message::Deviated`] |
//! | `0x16` | [`Message::JourneyStarted`] with `states_only` |
//! | `0x20` | [`Message::Sos`]     |
//! | `0x21` | [`Message::SosCancelled`] |
//! | `0x22` | [`Message::Duress`]  |
//! | `0x30` | [`Message::Ack`]     |

use crate::circle::invite::{
    check_address, check_name, read_addresses, InviteToken, MAX_ADDRESSES, MAX_NAME_LEN,
};
use crate::circle::wire::{check_text, len_u8, read_short_text, text, DecodeError, Reader};
use crate::circle::MessageId;
use crate::cursor::Put;
use crate::geo::{Cell, GeoError, MAX_CELL_PRECISION, MIN_CELL_PRECISION};

/// Longest SOS note, in bytes of UTF-8.
pub const MAX_NOTE_LEN: usize = 280;
/// Longest encoded message. Every message fits a large envelope; every
/// message but a [`Message::Accept`] with long names or addresses fits a
/// small one.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Kind byte of [`Message::Accept`].
pub const KIND_ACCEPT: u8 = 0x01;
/// Kind byte of [`Message::Confirm`].
pub const KIND_CONFIRM: u8 = 0x02;
/// Kind byte of [`Message::Leave`].
pub const KIND_LEAVE: u8 = 0x03;
/// Kind byte of [`Message::JourneyStarted`].
pub const KIND_JOURNEY_STARTED: u8 = 0x10;
/// Kind byte of [`Message::Position`].
pub const KIND_POSITION: u8 = 0x11;
/// Kind byte of [`Message::Arrived`].
pub const KIND_ARRIVED: u8 = 0x12;
/// Kind byte of [`Message::JourneyCancelled`].
pub const KIND_JOURNEY_CANCELLED: u8 = 0x13;
/// Kind byte of [`Message::Overdue`].
pub const KIND_OVERDUE: u8 = 0x14;
/// Kind byte of [`Message::Deviated`].
pub const KIND_DEVIATED: u8 = 0x15;
/// Kind byte of a [`Message::JourneyStarted`] in parents' mode (with
/// `states_only`).
pub const KIND_JOURNEY_STARTED_STATES_ONLY: u8 = 0x16;
/// Kind byte of [`Message::Sos`].
pub const KIND_SOS: u8 = 0x20;
/// Kind byte of [`Message::SosCancelled`].
pub const KIND_SOS_CANCELLED: u8 = 0x21;
/// Kind byte of [`Message::Duress`].
pub const KIND_DURESS: u8 = 0x22;
/// Kind byte of [`Message::Ack`].
pub const KIND_ACK: u8 = 0x30;

const PLACE_POINT: u8 = 1;
const PLACE_CELL: u8 = 2;
const MAX_LAT_E7: i32 = 900_000_000;
const MAX_LON_E7: i32 = 1_800_000_000;

/// A location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// A point, in units of 10⁻⁷ degree (about 1 cm), with the fix's
    /// accuracy.
    Point {
        /// Latitude × 10⁷, in −900 000 000 ..= 900 000 000.
        lat_e7: i32,
        /// Longitude × 10⁷, in −1 800 000 000 ..= 1 800 000 000.
        lon_e7: i32,
        /// Radius of the 68 % confidence circle in metres; 0 if unknown.
        accuracy_m: u16,
    },
    /// A geohash cell (precision 6 or 7): for a destination given coarsely.
    Cell(Cell),
}

impl Place {
    /// A point from degrees, rounded to 10⁻⁷ degree.
    pub fn point(lat: f64, lon: f64, accuracy_m: u16) -> Result<Place, GeoError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::BadLatitude(lat));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::BadLongitude(lon));
        }
        // In range by the checks above, so the casts cannot saturate.
        #[allow(clippy::cast_possible_truncation)]
        let (lat_e7, lon_e7) = ((lat * 1e7).round() as i32, (lon * 1e7).round() as i32);
        Ok(Place::Point {
            lat_e7,
            lon_e7,
            accuracy_m,
        })
    }

    /// Latitude and longitude in degrees (a cell's centre for a cell).
    pub fn lat_lon(&self) -> (f64, f64) {
        match self {
            Place::Point { lat_e7, lon_e7, .. } => {
                (f64::from(*lat_e7) / 1e7, f64::from(*lon_e7) / 1e7)
            }
            Place::Cell(c) => c.center(),
        }
    }

    fn encode(&self, b: &mut Vec<u8>) {
        match self {
            Place::Point {
                lat_e7,
                lon_e7,
                accuracy_m,
            } => {
                b.put_u8(PLACE_POINT);
                b.put_i32(*lat_e7);
                b.put_i32(*lon_e7);
                b.put_u16(*accuracy_m);
            }
            Place::Cell(c) => {
                b.put_u8(PLACE_CELL);
                b.put_u8(c.precision());
                b.put_slice(c.as_str().as_bytes());
            }
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        if let Place::Point { lat_e7, lon_e7, .. } = self {
            if !(-MAX_LAT_E7..=MAX_LAT_E7).contains(lat_e7)
                || !(-MAX_LON_E7..=MAX_LON_E7).contains(lon_e7)
            {
                return Err(DecodeError::BadValue("place"));
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Place, DecodeError> {
        let place = match r.u8()? {
            PLACE_POINT => Place::Point {
                lat_e7: r.i32()?,
                lon_e7: r.i32()?,
                accuracy_m: r.u16()?,
            },
            PLACE_CELL => {
                let p = r.u8()?;
                if !(MIN_CELL_PRECISION..=MAX_CELL_PRECISION).contains(&p) {
                    return Err(DecodeError::BadValue("cell"));
                }
                let s = std::str::from_utf8(r.take(usize::from(p))?)
                    .map_err(|_| DecodeError::BadValue("cell"))?;
                Place::Cell(s.parse().map_err(|_| DecodeError::BadValue("cell"))?)
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        place.validate()?;
        Ok(place)
    }
}

/// Where a device was, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fix {
    /// When (Unix seconds).
    pub at: u64,
    /// Where.
    pub place: Place,
}

impl Fix {
    fn encode(&self, b: &mut Vec<u8>) {
        b.put_u64(self.at);
        self.place.encode(b);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Fix, DecodeError> {
        Ok(Fix {
            at: r.u64()?,
            place: Place::decode(r)?,
        })
    }
}

/// Parents' mode: a journey that shares only its states (started, arrived,
/// deviated, overdue), never a trail of positions unless an alert fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StatesOnly {
    /// How far from the straight corridor between the start and the
    /// destination counts as a deviation (metres, ≥ 1).
    pub corridor_m: u16,
    /// How long without moving counts as a deviation (seconds, ≥ 1).
    pub stop_secs: u32,
}

/// Why a parents'-mode journey raised a deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deviation {
    /// Further than `corridor_m` from the corridor to the destination.
    OffRoute,
    /// Stayed in one place for `stop_secs` away from the destination.
    Stopped,
}

impl Deviation {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            Deviation::OffRoute => 1,
            Deviation::Stopped => 2,
        }
    }
    fn from_code(code: u8) -> Result<Deviation, DecodeError> {
        match code {
            1 => Ok(Deviation::OffRoute),
            2 => Ok(Deviation::Stopped),
            _ => Err(DecodeError::BadValue("deviation")),
        }
    }
}

/// A message between two contacts. Its serde form (for the node's API) is
/// tagged by `"kind"`; it is not the wire format.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Handshake, sent by the person who received an invite, to its author:
    /// "I accept your invite". Carries how to reach the sender.
    Accept {
        /// The token of the invite being accepted.
        token: InviteToken,
        /// The sender's display name (≤ 64 bytes).
        name: String,
        /// How to reach the sender (≤ 4 opaque multiaddr strings).
        addresses: Vec<String>,
    },
    /// Handshake, sent by the invite's author once they approved the
    /// [`Message::Accept`]: the relation is now mutual.
    Confirm,
    /// "I removed you from my circle"; the receiver forgets the sender.
    Leave,
    /// A journey started, or its expected arrival changed (same id).
    JourneyStarted {
        /// The journey.
        journey: MessageId,
        /// When it started (Unix seconds).
        started_at: u64,
        /// Where the person is going.
        destination: Place,
        /// When they expect to arrive (Unix seconds).
        expected_arrival: u64,
        /// How long after `expected_arrival` they become overdue (seconds).
        grace_secs: u32,
        /// Parents' mode: only states are shared (kind `0x16` on the wire).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        states_only: Option<StatesOnly>,
    },
    /// Where the person is on a journey.
    Position {
        /// The journey.
        journey: MessageId,
        /// The position.
        fix: Fix,
    },
    /// The person arrived; the journey is over.
    Arrived {
        /// The journey.
        journey: MessageId,
        /// When (Unix seconds).
        at: u64,
    },
    /// The person ended the journey without arriving.
    JourneyCancelled {
        /// The journey.
        journey: MessageId,
        /// When (Unix seconds).
        at: u64,
    },
    /// The person has not arrived by `expected_arrival` + grace, or their
    /// phone went silent (released by the dead-man's switch). Receivers
    /// handle it once per journey.
    Overdue {
        /// The journey.
        journey: MessageId,
        /// When they expected to arrive (Unix seconds).
        expected_arrival: u64,
        /// The last position known to the sender, if any.
        last_seen: Option<Fix>,
    },
    /// A parents'-mode journey left its corridor or stopped: an alert. The
    /// journey shares its positions from then on.
    Deviated {
        /// The journey.
        journey: MessageId,
        /// Off the route, or stopped.
        reason: Deviation,
        /// Where and when it was noticed.
        fix: Fix,
    },
    /// Distress. Re-sent with the same id until someone acknowledges it.
    Sos {
        /// The SOS.
        sos: MessageId,
        /// When it was raised (Unix seconds).
        at: u64,
        /// Where the person is, if known.
        place: Option<Place>,
        /// A short note (≤ 280 bytes of UTF-8; may be empty).
        note: String,
    },
    /// The SOS is over.
    SosCancelled {
        /// The SOS.
        sos: MessageId,
        /// When (Unix seconds).
        at: u64,
    },
    /// The person's SOS or journey `of` was cancelled or ended with the
    /// **duress code**: their screen shows it cancelled, but they may be
    /// under coercion. The alert goes on (the SOS is still re-sent, the
    /// journey still shares positions). Same size as a cancellation.
    Duress {
        /// The SOS or journey.
        of: MessageId,
        /// When (Unix seconds).
        at: u64,
    },
    /// "I have seen message `of`" (an SOS, an overdue journey…).
    Ack {
        /// The acknowledged journey or SOS.
        of: MessageId,
    },
}

impl Message {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Accept { .. } => KIND_ACCEPT,
            Message::Confirm => KIND_CONFIRM,
            Message::Leave => KIND_LEAVE,
            Message::JourneyStarted {
                states_only: None, ..
            } => KIND_JOURNEY_STARTED,
            Message::JourneyStarted {
                states_only: Some(_),
                ..
            } => KIND_JOURNEY_STARTED_STATES_ONLY,
            Message::Deviated { .. } => KIND_DEVIATED,
            Message::Duress { .. } => KIND_DURESS,
            Message::Position { .. } => KIND_POSITION,
            Message::Arrived { .. } => KIND_ARRIVED,
            Message::JourneyCancelled { .. } => KIND_JOURNEY_CANCELLED,
            Message::Overdue { .. } => KIND_OVERDUE,
            Message::Sos { .. } => KIND_SOS,
            Message::SosCancelled { .. } => KIND_SOS_CANCELLED,
            Message::Ack { .. } => KIND_ACK,
        }
    }

    /// Whether this is part of the contact handshake (accept, confirm,
    /// leave) rather than sharing.
    pub fn is_handshake(&self) -> bool {
        self.kind() < 0x10
    }

    /// Checks the limits the encoding enforces (text lengths, place ranges).
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            Message::Accept {
                name, addresses, ..
            } => {
                check_name(name)?;
                if addresses.len() > MAX_ADDRESSES {
                    return Err(DecodeError::FieldTooLong {
                        field: "addresses",
                        len: addresses.len(),
                        max: MAX_ADDRESSES,
                    });
                }
                addresses.iter().try_for_each(|a| check_address(a))
            }
            Message::JourneyStarted {
                destination,
                states_only,
                ..
            } => {
                if states_only.is_some_and(|s| s.corridor_m == 0 || s.stop_secs == 0) {
                    return Err(DecodeError::BadValue("states_only"));
                }
                destination.validate()
            }
            Message::Position { fix, .. } | Message::Deviated { fix, .. } => fix.place.validate(),
            Message::Overdue {
                last_seen: Some(fix),
                ..
            } => fix.place.validate(),
            Message::Sos { place, note, .. } => {
                if let Some(p) = place {
                    p.validate()?;
                }
                check_text(note, "note", MAX_NOTE_LEN, true)
            }
            _ => Ok(()),
        }
    }

    /// The canonical bytes. Fails only if [`Message::validate`] fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        self.validate()?;
        let mut b = Vec::with_capacity(64);
        b.put_u8(self.kind());
        match self {
            Message::Accept {
                token,
                name,
                addresses,
            } => {
                b.put_slice(&token.0);
                b.put_short_str(name);
                b.put_u8(len_u8(addresses.len()));
                for a in addresses {
                    b.put_short_str(a);
                }
            }
            Message::Confirm | Message::Leave => {}
            Message::JourneyStarted {
                journey,
                started_at,
                destination,
                expected_arrival,
                grace_secs,
                states_only,
            } => {
                b.put_slice(&journey.0);
                b.put_u64(*started_at);
                destination.encode(&mut b);
                b.put_u64(*expected_arrival);
                b.put_u32(*grace_secs);
                if let Some(s) = states_only {
                    b.put_u16(s.corridor_m);
                    b.put_u32(s.stop_secs);
                }
            }
            Message::Deviated {
                journey,
                reason,
                fix,
            } => {
                b.put_slice(&journey.0);
                b.put_u8(reason.code());
                fix.encode(&mut b);
            }
            Message::Duress { of, at } => {
                b.put_slice(&of.0);
                b.put_u64(*at);
            }
            Message::Position { journey, fix } => {
                b.put_slice(&journey.0);
                fix.encode(&mut b);
            }
            Message::Arrived { journey, at } | Message::JourneyCancelled { journey, at } => {
                b.put_slice(&journey.0);
                b.put_u64(*at);
            }
            Message::Overdue {
                journey,
                expected_arrival,
                last_seen,
            } => {
                b.put_slice(&journey.0);
                b.put_u64(*expected_arrival);
                match last_seen {
                    None => b.put_u8(0),
                    Some(fix) => {
                        b.put_u8(1);
                        fix.encode(&mut b);
                    }
                }
            }
            Message::Sos {
                sos,
                at,
                place,
                note,
            } => {
                b.put_slice(&sos.0);
                b.put_u64(*at);
                match place {
                    None => b.put_u8(0),
                    Some(p) => {
                        b.put_u8(1);
                        p.encode(&mut b);
                    }
                }
                // ≤ 280 bytes, checked by validate.
                let len = u16::try_from(note.len()).unwrap_or(u16::MAX);
                b.put_u16(len);
                b.put_slice(note.as_bytes());
            }
            Message::SosCancelled { sos, at } => {
                b.put_slice(&sos.0);
                b.put_u64(*at);
            }
            Message::Ack { of } => b.put_slice(&of.0),
        }
        Ok(b)
    }

    /// Parse canonical bytes: any unknown kind, out-of-range field, over-long
    /// text or trailing byte is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let m = match r.u8()? {
            KIND_ACCEPT => {
                let token = InviteToken(r.array()?);
                let name = read_short_text(&mut r, "name", MAX_NAME_LEN)?;
                check_name(&name)?;
                let addresses = read_addresses(&mut r)?;
                Message::Accept {
                    token,
                    name,
                    addresses,
                }
            }
            KIND_CONFIRM => Message::Confirm,
            KIND_LEAVE => Message::Leave,
            kind @ (KIND_JOURNEY_STARTED | KIND_JOURNEY_STARTED_STATES_ONLY) => {
                let journey = MessageId(r.array()?);
                let started_at = r.u64()?;
                let destination = Place::decode(&mut r)?;
                let expected_arrival = r.u64()?;
                let grace_secs = r.u32()?;
                let states_only = if kind == KIND_JOURNEY_STARTED_STATES_ONLY {
                    let s = StatesOnly {
                        corridor_m: r.u16()?,
                        stop_secs: r.u32()?,
                    };
                    if s.corridor_m == 0 || s.stop_secs == 0 {
                        return Err(DecodeError::BadValue("states_only"));
                    }
                    Some(s)
                } else {
                    None
                };
                Message::JourneyStarted {
                    journey,
                    started_at,
                    destination,
                    expected_arrival,
                    grace_secs,
                    states_only,
                }
            }
            KIND_DEVIATED => Message::Deviated {
                journey: MessageId(r.array()?),
                reason: Deviation::from_code(r.u8()?)?,
                fix: Fix::decode(&mut r)?,
            },
            KIND_DURESS => Message::Duress {
                of: MessageId(r.array()?),
                at: r.u64()?,
            },
            KIND_POSITION => Message::Position {
                journey: MessageId(r.array()?),
                fix: Fix::decode(&mut r)?,
            },
            KIND_ARRIVED => Message::Arrived {
                journey: MessageId(r.array()?),
                at: r.u64()?,
            },
            KIND_JOURNEY_CANCELLED => Message::JourneyCancelled {
                journey: MessageId(r.array()?),
                at: r.u64()?,
            },
            KIND_OVERDUE => Message::Overdue {
                journey: MessageId(r.array()?),
                expected_arrival: r.u64()?,
                last_seen: if r.flag("last_seen")? {
                    Some(Fix::decode(&mut r)?)
                } else {
                    None
                },
            },
            KIND_SOS => {
                let sos = MessageId(r.array()?);
                let at = r.u64()?;
                let place = if r.flag("place")? {
                    Some(Place::decode(&mut r)?)
                } else {
                    None
                };
                let len = usize::from(r.u16()?);
                if len > MAX_NOTE_LEN {
                    return Err(DecodeError::FieldTooLong {
                        field: "note",
                        len,
                        max: MAX_NOTE_LEN,
                    });
                }
                let note = text(r.take(len)?, "note", MAX_NOTE_LEN, true)?.to_owned();
                Message::Sos {
                    sos,
                    at,
                    place,
                    note,
                }
            }
            KIND_SOS_CANCELLED => Message::SosCancelled {
                sos: MessageId(r.array()?),
                at: r.u64()?,
            },
            KIND_ACK => Message::Ack {
                of: MessageId(r.array()?),
            },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(m)
    }
}
