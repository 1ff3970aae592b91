//! The load generator of `ferry bench`: `connections` tasks, each with its own
//! keep-alive HTTP/1.1 connection (hyper's connection-level client over a
//! `TcpStream`), sending signed Standard Webhooks POSTs back to back for a
//! fixed time (or, for the rate-limited mode, a fixed number of requests).
//! Every phase of the bench uses it unchanged, so the client-side work per
//! request is the same whatever the server: build a body with a
//! unique event id, sign it (HMAC-SHA256), send, read the whole answer.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, Request, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ingest::verify::sign_standard_webhooks;

/// Length of an event id: `evt_`, 4 hex digits of connection, 12 of sequence.
const ID_LEN: usize = 20;
/// Pause before reconnecting after a connection failed.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// A JSON body of a fixed size with a slot for the event id, so a unique body
/// costs one copy and one overwrite.
pub struct BodyTemplate {
    bytes: Vec<u8>,
    id_at: usize,
}

impl BodyTemplate {
    /// A body of `size` bytes, or the smallest possible one if `size` is smaller.
    pub fn new(size: usize) -> BodyTemplate {
        let head = r#"{"type":"bench.event","id":""#;
        let mid = r#"","pad":""#;
        let tail = r#""}"#;
        let fixed = head.len() + ID_LEN + mid.len() + tail.len();
        let mut text = String::with_capacity(size.max(fixed));
        text.push_str(head);
        text.push_str(&"0".repeat(ID_LEN));
        text.push_str(mid);
        text.push_str(&"x".repeat(size.saturating_sub(fixed)));
        text.push_str(tail);
        BodyTemplate {
            bytes: text.into_bytes(),
            id_at: head.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// Where the generator sends, and how it signs.
pub struct Target {
    /// Servers to spread the connections over (connection i goes to
    /// `addrs[i % len]`, as a round-robin load balancer would).
    pub addrs: Vec<SocketAddr>,
    pub path: &'static str,
    /// The route's `whsec_` secret (a bare server ignores the signature).
    pub secret: String,
    pub body: BodyTemplate,
}

/// What one run of the generator saw.
#[derive(Default)]
pub struct Load {
    /// 2xx answers.
    pub ok: u64,
    /// Answers with another status.
    pub non_2xx: u64,
    /// Connections that failed or broke mid-request.
    pub transport_errors: u64,
    /// From the first send until the last task finished.
    pub elapsed: Duration,
    /// Latency of every 2xx answer in µs, sorted.
    pub latencies_us: Vec<u32>,
}

impl Load {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-quantile (0..=1) of 2xx latencies, in milliseconds.
    pub fn latency_ms(&self, p: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }

    fn merge(&mut self, other: Load) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.transport_errors += other.transport_errors;
        self.latencies_us.extend(other.latencies_us);
    }
}

/// When the senders stop: at a time, or once a number of requests is sent.
#[derive(Clone)]
enum Stop {
    At(Instant),
    /// Requests not yet sent, shared by every sender.
    After(Arc<AtomicU64>),
}

impl Stop {
    fn done(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() >= *deadline,
            Stop::After(left) => left.load(Ordering::Relaxed) == 0,
        }
    }

    /// Whether one more request may be sent (and, counting, takes it).
    fn take(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() < *deadline,
            Stop::After(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Runs `connections` senders against `target` for `duration`; returns when
/// every sender has had its last answer. `started` is when sending began.
pub async fn run(target: Arc<Target>, connections: usize, duration: Duration) -> (Instant, Load) {
    let started = Instant::now();
    run_until(target, connections, started, Stop::At(started + duration)).await
}

/// Like [`run`], but sends `total` requests (a broken connection loses the
/// one it was sending: see `transport_errors`) as fast as they are answered.
pub async fn run_count(target: Arc<Target>, connections: usize, total: u64) -> (Instant, Load) {
    let stop = Stop::After(Arc::new(AtomicU64::new(total)));
    run_until(target, connections, Instant::now(), stop).await
}

async fn run_until(
    target: Arc<Target>,
    connections: usize,
    started: Instant,
    stop: Stop,
) -> (Instant, Load) {
    let tasks: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(sender(target.clone(), i, stop.clone())))
        .collect();
    let mut total = Load::default();
    for t in tasks {
        match t.await {
            Ok(load) => total.merge(load),
            Err(_) => total.transport_errors += 1,
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    (started, total)
}

async fn connect(addr: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

/// One connection's loop: send, wait for the whole answer, repeat.
async fn sender(target: Arc<Target>, conn: usize, stop: Stop) -> Load {
    let mut load = Load::default();
    let uri: Uri = target.path.parse().expect("a valid request path");
    let addr = target.addrs[conn % target.addrs.len()];
    let host = HeaderValue::from_str(&addr.to_string()).expect("an address is a valid host");
    let json = HeaderValue::from_static("application/json");
    let mut id = String::with_capacity(ID_LEN);
    let mut seq: u64 = 0;
    'connect: while !stop.done() {
        let Some(mut http) = connect(addr).await else {
            load.transport_errors += 1;
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        while stop.take() {
            if http.ready().await.is_err() {
                load.transport_errors += 1;
                continue 'connect;
            }
            seq += 1;
            id.clear();
            let _ = write!(
                id,
                "evt_{:04x}{:012}",
                conn & 0xffff,
                seq % 1_000_000_000_000
            );
            let mut body = target.body.bytes.clone();
            body[target.body.id_at..target.body.id_at + ID_LEN].copy_from_slice(id.as_bytes());
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let signature = sign_standard_webhooks(&target.secret, &id, timestamp, &body)
                .expect("the bench secret is a valid whsec_ secret");
            let request = Request::post(uri.clone())
                .header(header::HOST, host.clone())
                .header(header::CONTENT_TYPE, json.clone())
                .header("webhook-id", id.as_str())
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", signature)
                .body(Full::new(Bytes::from(body)))
                .expect("a valid request");
            let sent_at = Instant::now();
            let status = match http.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    if response.into_body().collect().await.is_err() {
                        load.transport_errors += 1;
                        continue 'connect;
                    }
                    status
                }
                Err(_) => {
                    load.transport_errors += 1;
                    continue 'connect;
                }
            };
            if status.is_success() {
                load.ok += 1;
                let us = sent_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                load.latencies_us.push(us);
            } else {
                load.non_2xx += 1;
            }
        }
        break;
    }
    load
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_the_requested_size_and_is_json() {
        for size in [0, 64, 1024, 4096] {
            let t = BodyTemplate::new(size);
            assert!(t.len() >= size);
            if size >= 64 {
                assert_eq!(t.len(), size);
            }
            let v: serde_json::Value = serde_json::from_slice(&t.bytes).unwrap();
            assert_eq!(v["id"].as_str().unwrap().len(), ID_LEN);
        }
    }

    #[test]
    fn percentiles() {
        let load = Load {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(load.latency_ms(0.5), 50.0);
        assert_eq!(load.latency_ms(0.99), 99.0);
        assert_eq!(load.latency_ms(1.0), 100.0);
    }
}
