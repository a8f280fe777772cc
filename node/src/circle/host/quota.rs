//! Per-client bounds on a host's dead-man's switches ([`Quotas`]): how
//! many switches one peer id, and one network (an IPv4 /24 or an IPv6
//! /48, as the host sees the connection), may hold at once, so that a few
//! clients cannot take the host's whole capacity.
//!
//! A deposit counts against its client until its switch key is gone from
//! the host altogether (live switch and tombstone, i.e. until the release
//! time its deposit signed), so withdrawing and depositing again does not
//! free room. Kept in memory: a restart forgets who deposited what (the
//! host's total capacity still holds). Pure: the caller says which keys
//! the host still holds.

use std::collections::HashMap;
use std::net::IpAddr;

use libp2p::PeerId;

/// Who a deposit is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Peer(PeerId),
    Network([u8; 6]),
}

/// The network of an address: its /24 (IPv4) or /48 (IPv6).
fn network(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, o[0], o[1], o[2], 0, 0]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[0], o[1], o[2], o[3], o[4], o[5]]
        }
    }
}

/// The switches each client deposited.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    held: HashMap<Client, Vec<[u8; 32]>>,
}

impl Quotas {
    fn clients(peer: PeerId, ip: Option<IpAddr>) -> Vec<Client> {
        let mut c = vec![Client::Peer(peer)];
        if let Some(ip) = ip {
            c.push(Client::Network(network(ip)));
        }
        c
    }

    /// Whether `peer` (connected from `ip`, if known) may deposit one more
    /// switch: under `per_peer` and `per_network`. `holds` says whether
    /// the host still holds a key (live or tombstone); keys it no longer
    /// holds are forgotten here.
    pub(crate) fn allows(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        per_peer: usize,
        per_network: usize,
        holds: impl Fn(&[u8; 32]) -> bool,
    ) -> bool {
        Self::clients(peer, ip).into_iter().all(|c| {
            let max = match c {
                Client::Peer(_) => per_peer,
                Client::Network(_) => per_network,
            };
            match self.held.get_mut(&c) {
                Some(keys) => {
                    keys.retain(|k| holds(k));
                    let n = keys.len();
                    if n == 0 {
                        self.held.remove(&c);
                    }
                    n < max
                }
                None => max > 0,
            }
        })
    }

    /// Count the switch `key` against `peer` and its network.
    pub(crate) fn record(&mut self, peer: PeerId, ip: Option<IpAddr>, key: [u8; 32]) {
        for c in Self::clients(peer, ip) {
            self.held.entry(c).or_default().push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_and_networks_are_bounded_until_their_switches_are_gone() {
        let mut q = Quotas::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let ip1: IpAddr = "203.0.113.7".parse().expect("ip");
        let ip2: IpAddr = "203.0.113.200".parse().expect("ip"); // same /24
        let held = std::cell::RefCell::new(std::collections::HashSet::new());
        let holds = |k: &[u8; 32]| held.borrow().contains(k);
        for i in 0..2u8 {
            assert!(q.allows(a, Some(ip1), 2, 3, holds));
            q.record(a, Some(ip1), [i; 32]);
            held.borrow_mut().insert([i; 32]);
        }
        assert!(!q.allows(a, Some(ip1), 2, 3, holds), "the peer's bound");
        assert!(q.allows(b, Some(ip2), 2, 3, holds));
        q.record(b, Some(ip2), [9; 32]);
        held.borrow_mut().insert([9; 32]);
        assert!(
            !q.allows(PeerId::random(), Some(ip2), 2, 3, holds),
            "the network's bound"
        );
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert!(q.allows(PeerId::random(), Some(v6), 2, 3, holds));
        // Once the host no longer holds a switch, it no longer counts.
        held.borrow_mut().remove(&[0; 32]);
        assert!(q.allows(a, Some(ip1), 2, 3, holds));
    }
}
