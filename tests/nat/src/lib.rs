//! Phones behind real NATs: the harness of the tests in `tests/`.
//!
//! [`net`] builds Linux network namespaces joined by veth pairs (a public
//! segment, home networks behind iptables NAT routers, phones) and removes
//! them on drop; [`ronde`] runs real `ronde relay` and `ronde node`
//! processes inside them and drives the phones with the `ronde` client
//! commands; [`scenario`] has the steps the tests share. `nat-probe` (src/bin) sends and receives UDP datagrams to
//! check what kind of NAT a router really is. See README.md.

pub mod net;
pub mod ronde;
pub mod scenario;

/// Build a [`net::World`], or print `SKIPPED: …` and return from the test
/// when namespaces cannot be made here (not root, no `ip` or `iptables`);
/// with `RONDE_NAT_REQUIRED` set (as `.ci/run` does) it fails instead.
#[macro_export]
macro_rules! world_or_skip {
    () => {
        match $crate::net::World::new() {
            Ok(w) => w,
            Err(why) if std::env::var_os("RONDE_NAT_REQUIRED").is_some() => {
                panic!("RONDE_NAT_REQUIRED is set and the NAT world cannot be built: {why}")
            }
            Err(why) => {
                println!("SKIPPED: {why}");
                eprintln!("SKIPPED: {why}");
                return;
            }
        }
    };
}
