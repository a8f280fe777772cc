//! Steps the tests share: waiting for a circuit or a verdict, pairing two
//! phones, timing a report's and an SOS's delivery.

use std::time::{Duration, Instant};

use crate::ronde::{eventually, Phone, AT};

/// The relayed address a phone listens on, once it holds a circuit.
pub fn circuit_addr(phone: &Phone) -> Option<String> {
    phone
        .status()
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/p2p-circuit"))
        .map(|l| {
            if l.ends_with(&phone.peer_id) {
                l.to_owned()
            } else {
                format!("{l}/p2p/{}", phone.peer_id)
            }
        })
}

/// Waits until `phone` holds a relay circuit; returns its address.
pub fn wait_for_circuit(phone: &Phone, limit: Duration) -> String {
    eventually(limit, "a relay circuit", || {
        circuit_addr(phone).ok_or_else(|| format!("{}\n{}", phone.status(), phone.log()))
    })
}

/// Waits until `phone`'s log has AutoNAT's verdict `verdict`.
pub fn wait_for_verdict(phone: &Phone, verdict: &str, limit: Duration) {
    let needle = format!("reachability=\"{verdict}\"");
    eventually(limit, &format!("AutoNAT's verdict {verdict}"), || {
        let log = phone.log();
        if log.contains(&needle) {
            Ok(())
        } else {
            Err(log)
        }
    });
}

/// Pairs two phones through invite, accept and approve (the CLI's flow):
/// `a` is "Alice", `b` is "Bob", each in the other's circle.
pub fn pair(a: &Phone, b: &Phone) {
    let out = a
        .cli(&["contacts", "invite", "--name", "Alice", "--no-qr"])
        .expect("invite");
    let code = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ronde1:"))
        .unwrap_or_else(|| panic!("no code in {out}"))
        .to_owned();
    b.cli(&["contacts", "accept", &code, "--name", "Bob"])
        .expect("accept");
    eventually(Duration::from_secs(30), "Bob's request at Alice", || {
        let out = a.cli(&["contacts", "list"])?;
        if out.contains("Bob") && out.contains("YOUR approval") {
            Ok(())
        } else {
            Err(out)
        }
    });
    a.cli(&["contacts", "approve", "Bob", "--yes"])
        .expect("approve");
    eventually(Duration::from_secs(30), "Alice in Bob's circle", || {
        let out = b.cli(&["contacts", "list"])?;
        if out.contains("Alice  (in your circle)") {
            Ok(())
        } else {
            Err(out)
        }
    });
}

/// Raises an SOS at `a` and waits for it in `b`'s inbox; the time it took.
pub fn sos_delivery(a: &Phone, b: &Phone, limit: Duration) -> Duration {
    let start = Instant::now();
    a.cli(&["sos", "--note", "test"]).expect("sos");
    eventually(limit, "the SOS in Bob's inbox", || {
        let out = b.cli(&["inbox", "--no-ack"])?;
        if out.contains("SOS from Alice") {
            Ok(())
        } else {
            Err(out)
        }
    });
    start.elapsed()
}

/// Sends a report at `a` and waits until `b` shows it; the time it took.
pub fn report_delivery(a: &Phone, b: &Phone, limit: Duration) -> Duration {
    let start = Instant::now();
    a.cli(&["report", "--category", "harassment", "--at", AT])
        .expect("report");
    eventually(limit, "the report at the other phone", || {
        let out = b.cli(&["nearby", "--at", AT, "--radius", "1000"])?;
        if out.contains("harassment") {
            Ok(())
        } else {
            Err(format!("{out}\n{}", b.status()))
        }
    });
    start.elapsed()
}

/// Whether `phone`'s log shows a hole punch that succeeded.
pub fn hole_punched(phone: &Phone) -> bool {
    phone.log().contains("hole punch succeeded")
}
