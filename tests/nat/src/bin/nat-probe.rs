//! `nat-probe`: tell what a NAT does to UDP source ports.
//!
//! `nat-probe listen ADDR` waits (at most 5 s) for one datagram and prints
//! the address it came from. `nat-probe send BIND DEST...` sends one
//! datagram from the local address BIND to each DEST, a few times.

use std::net::UdpSocket;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("listen") if args.len() == 2 => {
            let sock = UdpSocket::bind(&args[1]).expect("bind");
            sock.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            match sock.recv_from(&mut buf) {
                Ok((_, from)) => println!("{from}"),
                Err(e) => {
                    eprintln!("nothing received: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("send") if args.len() >= 3 => {
            let sock = UdpSocket::bind(&args[1]).expect("bind");
            for _ in 0..10 {
                for dest in &args[2..] {
                    let _ = sock.send_to(b"probe", dest);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        _ => {
            eprintln!("usage: nat-probe listen ADDR | nat-probe send BIND DEST...");
            std::process::exit(2);
        }
    }
}
