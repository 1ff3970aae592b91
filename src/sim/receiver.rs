//! A scriptable downstream HTTP server: the stand-in for an ERP or platform in
//! tests, in `ferry demo` and in `ferry bench`. Each request gets the next
//! scripted [`Reply`] (or the default), is recorded, and is counted by its
//! `Idempotency-Key`, so a test can assert "every message, no duplicate effect".

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn body(mut self, b: &str) -> Reply {
        self.body = b.to_owned();
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// What the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it answered.
    pub status: u16,
    /// When the request arrived (before any scripted delay).
    pub at: std::time::Instant,
}

impl Received {
    pub fn idempotency_key(&self) -> Option<&str> {
        self.headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
    }
}

/// Decides a reply from the request: used by simulations that answer by content.
pub type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    responder: Option<Responder>,
    received: Vec<Received>,
    /// Successful (2xx) effects per idempotency key.
    effects: HashMap<String, u32>,
    /// Requests in flight per idempotency key, and the worst overlap seen.
    in_flight: HashMap<String, u32>,
    max_overlap: u32,
    keep_bodies: bool,
    count: u64,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    events: Arc<Mutex<Option<mpsc::UnboundedSender<Received>>>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1, port 0, answering 200 by default.
    pub async fn start() -> std::io::Result<Receiver> {
        Receiver::start_on(0).await
    }

    pub async fn start_on(port: u16) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let script = Arc::new(Mutex::new(Script {
            keep_bodies: true,
            ..Default::default()
        }));
        let r = Receiver {
            addr,
            script,
            events: Arc::new(Mutex::new(None)),
            stop: CancellationToken::new(),
        };
        let app = Router::new().fallback(handle).with_state(r.clone());
        let stop = r.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("receiver script poisoned")
    }

    /// Queues replies for the next requests, in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().queue.extend(replies);
    }

    /// The reply once the queue is empty (default: 200).
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = Some(reply);
    }

    /// Answers by content instead of by script (simulations).
    pub fn set_responder(&self, f: Responder) {
        self.lock().responder = Some(f);
    }

    /// Stops keeping requests and per-key effects (long benchmarks).
    pub fn forget_requests(&self) {
        self.lock().keep_bodies = false;
    }

    /// A channel of every request from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Received> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.events.lock().expect("receiver events poisoned") = Some(tx);
        rx
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Requests answered so far.
    pub fn count(&self) -> u64 {
        self.lock().count
    }

    /// Successful effects per idempotency key.
    pub fn effects(&self) -> HashMap<String, u32> {
        self.lock().effects.clone()
    }

    /// The most requests ever in flight at once for one idempotency key.
    pub fn max_overlap(&self) -> u32 {
        self.lock().max_overlap
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// One request in flight for an idempotency key, for `max_overlap`.
struct InFlight {
    receiver: Receiver,
    key: String,
}

impl InFlight {
    fn enter(receiver: &Receiver, key: String) -> InFlight {
        let mut s = receiver.lock();
        let n = s.in_flight.entry(key.clone()).or_default();
        *n += 1;
        let n = *n;
        s.max_overlap = s.max_overlap.max(n);
        drop(s);
        InFlight {
            receiver: receiver.clone(),
            key,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.receiver.lock();
        if let Some(n) = s.in_flight.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(&self.key);
            }
        }
    }
}

async fn handle(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut seen = Received {
        at: std::time::Instant::now(),
        method,
        path: uri.path().to_owned(),
        headers,
        body,
        status: 0,
    };
    let key = seen.idempotency_key().map(str::to_owned);
    // Counts this request in flight until it is answered or its sender hangs
    // up (hyper then drops this future mid-delay).
    let _in_flight = key.clone().map(|k| InFlight::enter(&r, k));
    let reply = {
        let mut s = r.lock();
        match (s.queue.pop_front(), &s.responder) {
            (Some(reply), _) => reply,
            (None, Some(f)) => f(&seen),
            (None, None) => s
                .default
                .clone()
                .unwrap_or_else(|| Reply::status(200).body("{\"ok\":true}")),
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    seen.status = reply.status;
    {
        let mut s = r.lock();
        s.count += 1;
        if let Some(k) = &key
            && s.keep_bodies
            && (200..300).contains(&reply.status)
        {
            *s.effects.entry(k.clone()).or_default() += 1;
        }
        if s.keep_bodies {
            s.received.push(seen.clone());
        }
    }
    if let Some(tx) = r.events.lock().expect("receiver events poisoned").as_ref() {
        let _ = tx.send(seen);
    }
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        reply.body,
    )
        .into_response();
    for (k, v) in &reply.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
