//! The relays a city lists in its directory (`docs/protocol.md` §7.1):
//! a [`RelayEntry`] names a relay's libp2p peer id, the addresses it is
//! reached at, what it does ([`RelayRoles`]) and who runs it. Phones take
//! their mailbox and dead-man's-switch hosts from these entries (or from
//! the person's own settings), never from whoever connects to them, and
//! deposit a switch with two relays of different operators.
//!
//! The crate knows nothing of libp2p: the peer id is kept as its bytes
//! (a multihash, as libp2p encodes it) and each address as its text form
//! (`/ip4/…/tcp/…`); the node parses them and skips what it cannot use.

use serde::{Deserialize, Serialize};

use super::entries::check_text;
use super::error::DirectoryError;
use super::limits::{MAX_OPERATOR_LEN, MAX_RELAY_ADDRS, MAX_RELAY_ADDR_LEN, MAX_RELAY_PEER_LEN};
use super::wire::Reader;
use crate::cursor::Put;

/// What a listed relay does: a set of bit flags. Bits this version does not
/// know are kept (they are signed with the rest) and ignored, so that a
/// city can announce a new role without refusing older phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayRoles(pub u8);

impl RelayRoles {
    /// Hosts mailboxes (store-and-forward of circle envelopes).
    pub const MAILBOX: RelayRoles = RelayRoles(0x01);
    /// Holds journeys' dead-man's switches.
    pub const SWITCH: RelayRoles = RelayRoles(0x02);
    /// Relays circuits for phones behind NAT.
    pub const CIRCUIT: RelayRoles = RelayRoles(0x04);
    /// Is a bootstrap peer of the city's network.
    pub const BOOTSTRAP: RelayRoles = RelayRoles(0x08);
    /// Is a hub of the city's gossip: phones keep it in their meshes, and
    /// it passes every report to every phone of its area
    /// (`docs/protocol.md` §3.2).
    pub const GOSSIP: RelayRoles = RelayRoles(0x10);
    /// Every role this version knows, with its name.
    pub const NAMED: [(RelayRoles, &'static str); 5] = [
        (RelayRoles::MAILBOX, "mailbox"),
        (RelayRoles::SWITCH, "switch"),
        (RelayRoles::CIRCUIT, "circuit"),
        (RelayRoles::BOOTSTRAP, "bootstrap"),
        (RelayRoles::GOSSIP, "gossip"),
    ];

    /// Whether every bit of `role` is set.
    pub fn has(self, role: RelayRoles) -> bool {
        self.0 & role.0 == role.0 && role.0 != 0
    }

    /// These roles and `other`'s.
    #[must_use]
    pub fn with(self, other: RelayRoles) -> RelayRoles {
        RelayRoles(self.0 | other.0)
    }

    /// The names of the known roles set, in bit order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMED
            .iter()
            .filter(|(r, _)| self.has(*r))
            .map(|(_, n)| *n)
            .collect()
    }

    /// The role of a name (`mailbox`, `switch`, `circuit`, `bootstrap`,
    /// `gossip`).
    pub fn from_name(name: &str) -> Option<RelayRoles> {
        Self::NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(r, _)| *r)
    }
}

/// A relay listed by the city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEntry {
    /// Its libp2p peer id, as bytes (1..=64).
    pub peer: Vec<u8>,
    /// What it does; never empty.
    pub roles: RelayRoles,
    /// Who runs it (a short name, not blank): phones deposit a switch with
    /// relays of two different operators.
    pub operator: String,
    /// Its public addresses, multiaddr text without `/p2p/` (1 to
    /// [`MAX_RELAY_ADDRS`], each 1..=[`MAX_RELAY_ADDR_LEN`] bytes starting
    /// with `/`, no control characters or spaces).
    pub addrs: Vec<String>,
}

impl RelayEntry {
    /// Check every field against the limits of the format.
    pub fn check(&self) -> Result<(), DirectoryError> {
        if self.peer.is_empty() || self.peer.len() > MAX_RELAY_PEER_LEN {
            return Err(DirectoryError::BadRelay("peer id of 1 to 64 bytes"));
        }
        if self.roles.0 == 0 {
            return Err(DirectoryError::BadRelay("a relay with no role"));
        }
        check_text("operator", &self.operator, MAX_OPERATOR_LEN, false)?;
        if self.addrs.is_empty() || self.addrs.len() > MAX_RELAY_ADDRS {
            return Err(DirectoryError::TooMany {
                what: "relay addresses (or none)",
                n: self.addrs.len(),
                max: MAX_RELAY_ADDRS,
            });
        }
        for a in &self.addrs {
            check_text("relay address", a, MAX_RELAY_ADDR_LEN, false)?;
            if !a.starts_with('/') || a.contains(' ') {
                return Err(DirectoryError::BadRelay(
                    "an address is multiaddr text starting with /",
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn encode_relay(w: &mut Vec<u8>, r: &RelayEntry) {
    // Lengths were checked (peer ≤ 64, ≤ 8 addresses).
    w.put_u8(u8::try_from(r.peer.len()).unwrap_or(u8::MAX));
    w.put_slice(&r.peer);
    w.put_u8(r.roles.0);
    w.put_short_str(&r.operator);
    w.put_u8(u8::try_from(r.addrs.len()).unwrap_or(u8::MAX));
    for a in &r.addrs {
        w.put_short_str(a);
    }
}

pub(super) fn decode_relay(r: &mut Reader<'_>) -> Result<RelayEntry, DirectoryError> {
    let n = usize::from(r.u8()?);
    let peer = r.take(n)?.to_vec();
    let roles = RelayRoles(r.u8()?);
    let operator = r.str("operator")?;
    let n = usize::from(r.u8()?);
    if n > MAX_RELAY_ADDRS {
        return Err(DirectoryError::TooMany {
            what: "relay addresses (or none)",
            n,
            max: MAX_RELAY_ADDRS,
        });
    }
    let addrs = (0..n)
        .map(|_| r.str("relay address"))
        .collect::<Result<Vec<_>, _>>()?;
    let e = RelayEntry {
        peer,
        roles,
        operator,
        addrs,
    };
    e.check()?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RelayEntry {
        RelayEntry {
            peer: vec![0, 36, 8, 1, 18, 32, 7],
            roles: RelayRoles::MAILBOX.with(RelayRoles::SWITCH),
            operator: "Ville d'Ivry".into(),
            addrs: vec!["/ip4/192.0.2.1/tcp/4001".into()],
        }
    }

    #[test]
    fn an_entry_round_trips_and_its_limits_hold() {
        let e = entry();
        let mut w = Vec::new();
        encode_relay(&mut w, &e);
        let mut r = Reader::new(&w);
        assert_eq!(decode_relay(&mut r), Ok(e.clone()));
        assert!(r.finish().is_ok());
        let bad = [
            RelayEntry {
                peer: vec![],
                ..e.clone()
            },
            RelayEntry {
                peer: vec![1; 65],
                ..e.clone()
            },
            RelayEntry {
                roles: RelayRoles(0),
                ..e.clone()
            },
            RelayEntry {
                operator: " ".into(),
                ..e.clone()
            },
            RelayEntry {
                addrs: vec![],
                ..e.clone()
            },
            RelayEntry {
                addrs: vec!["/a".into(); 9],
                ..e.clone()
            },
            RelayEntry {
                addrs: vec!["ip4/1.2.3.4".into()],
                ..e.clone()
            },
            RelayEntry {
                addrs: vec!["/ip4/1.2.3.4\n".into()],
                ..e
            },
        ];
        for b in bad {
            assert!(b.check().is_err(), "{b:?}");
        }
    }

    #[test]
    fn unknown_role_bits_are_kept_and_ignored() {
        let r = RelayRoles(0x80 | 0x02);
        assert!(r.has(RelayRoles::SWITCH));
        assert!(!r.has(RelayRoles::MAILBOX));
        assert_eq!(r.names(), ["switch"]);
        let e = RelayEntry {
            roles: RelayRoles(0x80),
            ..entry()
        };
        assert!(e.check().is_ok(), "a role this version does not know");
    }
}
