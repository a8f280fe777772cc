//! The push gateway of a run (issue 16 §4): a UnifiedPush-compatible
//! endpoint on loopback, standing in for the push server and the phone's
//! distributor. Each background phone registers `<gateway>/<slot>` with
//! the relays' mailbox hosts; a host POSTs its content-free wake-up there
//! when mail arrives ([`ronde_node::circle::host::push`]); the gateway
//! answers `201 Created`, as a push server does, and hands the slot to the
//! run, which delivers the wake-up to the phone [`PUSH_LATENCY`] (model
//! time) later, counted as [`PUSH_BYTES`] received, and calls the phone's
//! `Node::wake`, as its app's push receiver would.
//!
//! The gateway speaks just enough HTTP/1.1 for the host's client: one
//! request per connection, `Connection: close`, a body of at most
//! [`MAX_BODY`] bytes read and ignored.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::net::Slot;
use crate::SimError;

/// From the host's POST to the phone's wake-up (model time): a push
/// server's high-priority delivery to an idle phone (FCM and APNs
/// typically deliver in well under a second; one second is on the slow
/// side of typical).
pub const PUSH_LATENCY: Duration = Duration::from_secs(1);
/// Bytes a wake-up costs the phone (modelled): the push server's message
/// on the connection the phone's OS keeps to it (TLS record and framing
/// around the constant body). That connection's own keep-alives are the
/// OS's, shared by every app, and are not counted.
pub const PUSH_BYTES: u64 = 512;
/// Largest request the gateway reads (headers and body).
const MAX_REQUEST: usize = 8 * 1024;
/// Largest body.
const MAX_BODY: usize = 4096;

/// A running gateway.
pub struct PushGateway {
    /// `http://127.0.0.1:<port>`, to which `/<slot>` is appended.
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushGateway {
    /// Listen on a loopback port; the slot of every wake-up goes to `tx`.
    pub async fn start(tx: mpsc::UnboundedSender<Slot>) -> Result<PushGateway, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(slot) = serve(stream).await {
                        let _ = tx.send(slot);
                    }
                });
            }
        });
        Ok(PushGateway { base, task })
    }

    /// The endpoint of `slot`.
    pub fn endpoint(&self, slot: Slot) -> String {
        format!("{}/{slot}", self.base)
    }
}

/// Read one request; answer 201 to `POST /<slot>` (and give the slot),
/// 404 to anything else.
async fn serve(mut stream: TcpStream) -> Option<Slot> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?, first.next()?);
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    let slot = (method == "POST")
        .then(|| path.strip_prefix('/')?.parse::<Slot>().ok())
        .flatten();
    let status = if slot.is_some() {
        "201 Created"
    } else {
        "404 Not Found"
    };
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_post_to_a_slot_is_answered_and_handed_over() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gw = PushGateway::start(tx).await.expect("gateway");
        let addr = gw.base.trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(
            b"POST /42 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTTL: 60\r\n\r\nronde-wake",
        )
        .await
        .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert_eq!(rx.recv().await, Some(42));

        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /42 HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert!(rx.try_recv().is_err());
    }
}
