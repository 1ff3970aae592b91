//! A scriptable SMTP server: the stand-in for a mail relay in tests and in
//! the demo, as [`receiver`](super::receiver) is for an HTTP downstream. It
//! listens on 127.0.0.1 (port 0), plain or with TLS (STARTTLS or implicit,
//! with a `rustls::ServerConfig` the caller makes, see [`tls_config`]),
//! optionally wants AUTH PLAIN or LOGIN, and speaks enough SMTP for a real
//! client: EHLO/HELO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, RSET, NOOP,
//! QUIT. Each message is recorded ([`ReceivedMail`]: envelope, raw data,
//! decoded subject) with the answer it got; the answer to the end of DATA
//! is scripted: "451 for the next 2 messages, then 250", or "550 always".

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The name the server greets with.
const NAME: &str = "ferry-sim";
/// Longest command line read (RFC 5321 allows 512; be generous).
const MAX_LINE: usize = 4096;
/// Largest message accepted (answered 552 beyond).
const MAX_DATA: usize = 10 * 1024 * 1024;

/// One scripted answer to the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub text: String,
    /// Wait this long before answering (a slow or stuck server).
    pub delay: Duration,
}

impl SmtpReply {
    pub fn new(code: u16, text: &str) -> SmtpReply {
        SmtpReply {
            code,
            text: text.to_owned(),
            delay: Duration::ZERO,
        }
    }
    /// `250 2.0.0 OK: queued`.
    pub fn ok() -> SmtpReply {
        SmtpReply::new(250, "2.0.0 OK: queued")
    }
    pub fn delay(mut self, d: Duration) -> SmtpReply {
        self.delay = d;
        self
    }
}

/// A message the server took in (whatever it answered).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address, without the angle brackets.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after DATA: headers and body, CRLF line ends,
    /// dot-stuffing undone.
    pub data: String,
    /// The `Subject` header, unfolded and with RFC 2047 words decoded.
    pub subject: Option<String>,
    /// Whether it came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The user that authenticated, if any.
    pub user: Option<String>,
    /// The code answered to the end of DATA.
    pub answered: u16,
}

impl ReceivedMail {
    /// A header's value, unfolded (the first of that name; not decoded).
    pub fn header(&self, name: &str) -> Option<String> {
        headers(&self.data)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Everything after the header block, as sent (MIME parts included).
    pub fn body(&self) -> &str {
        match self.data.find("\r\n\r\n") {
            Some(i) => &self.data[i + 4..],
            None => "",
        }
    }
}

/// TLS on the simulated server.
#[derive(Clone, Default)]
pub enum SimTls {
    #[default]
    None,
    /// Plain first, `STARTTLS` offered (AUTH only after it, as real
    /// submission servers do).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte.
    Implicit(Arc<ServerConfig>),
}

/// How the server starts.
#[derive(Clone, Default)]
pub struct SimOptions {
    pub tls: SimTls,
    /// Wanted credentials: with them, AUTH PLAIN and LOGIN are offered and
    /// MAIL FROM before a successful AUTH is answered 530.
    pub credentials: Option<(String, String)>,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<SmtpReply>,
    default: Option<SmtpReply>,
    received: Vec<ReceivedMail>,
    connections: u64,
}

/// A running simulated SMTP server; clones share it.
#[derive(Clone)]
pub struct SmtpSim {
    pub addr: SocketAddr,
    tls: SimTls,
    credentials: Option<(String, String)>,
    script: Arc<Mutex<Script>>,
    arrived: Arc<Notify>,
    stop: CancellationToken,
}

impl SmtpSim {
    /// A plain-text server on 127.0.0.1, port 0, answering 250.
    pub async fn start() -> io::Result<SmtpSim> {
        SmtpSim::start_with(SimOptions::default()).await
    }

    pub async fn start_with(options: SimOptions) -> io::Result<SmtpSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let sim = SmtpSim {
            addr: listener.local_addr()?,
            tls: options.tls,
            credentials: options.credentials,
            script: Arc::default(),
            arrived: Arc::default(),
            stop: CancellationToken::new(),
        };
        let s = sim.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.stop.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((tcp, _)) = accepted else { continue };
                s.script.lock().unwrap().connections += 1;
                let conn = s.clone();
                let stop = s.stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        r = conn.serve(tcp) => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "smtp sim: connection ended");
                            }
                        }
                    }
                });
            }
        });
        Ok(sim)
    }

    /// The URL ferry's SMTP settings take for this server (`smtp+plain://`,
    /// `smtp://` with STARTTLS or `smtps://`, on 127.0.0.1).
    pub fn url(&self) -> String {
        let scheme = match self.tls {
            SimTls::None => "smtp+plain",
            SimTls::StartTls(_) => "smtp",
            SimTls::Implicit(_) => "smtps",
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The next `n` messages are answered `reply`, then the default again.
    pub fn reply_next(&self, n: usize, reply: SmtpReply) {
        let mut s = self.script.lock().unwrap();
        s.queue.extend(std::iter::repeat_n(reply, n));
    }

    /// Every message not scripted by [`SmtpSim::reply_next`] is answered
    /// `reply` (250 until this is called).
    pub fn reply_always(&self, reply: SmtpReply) {
        self.script.lock().unwrap().default = Some(reply);
    }

    /// The messages taken in so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.script.lock().unwrap().received.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.script.lock().unwrap().connections
    }

    /// Waits until `n` messages have arrived (or `within` passes) and
    /// returns what arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrived.notified();
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.messages();
            }
        }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    fn answer(&self) -> SmtpReply {
        let mut s = self.script.lock().unwrap();
        s.queue
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or_else(SmtpReply::ok)
    }

    async fn serve(self, tcp: TcpStream) -> io::Result<()> {
        match self.tls.clone() {
            SimTls::None => {
                self.converse(tcp, false, false).await?;
            }
            SimTls::Implicit(config) => {
                let tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
                self.converse(tls, true, false).await?;
            }
            SimTls::StartTls(config) => {
                if let Some(tcp) = self.converse(tcp, false, true).await? {
                    let tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
                    self.converse(tls, true, false).await?;
                }
            }
        }
        Ok(())
    }

    /// One SMTP conversation over `stream`; returns the stream when the
    /// client asked for STARTTLS (and it was offered), for the caller to
    /// wrap. `tls`: the stream is already encrypted.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        tls: bool,
        offer_starttls: bool,
    ) -> io::Result<Option<S>> {
        let mut conn = BufReader::new(stream);
        // After STARTTLS the client speaks first (EHLO): no second greeting.
        if !tls || matches!(self.tls, SimTls::Implicit(_)) {
            send(&mut conn, &format!("220 {NAME} ESMTP ready")).await?;
        }
        // Auth is offered only where the credentials would not travel in
        // the clear (unless the server has no TLS at all).
        let offer_auth = self.credentials.is_some() && (tls || matches!(self.tls, SimTls::None));
        let mut user: Option<String> = None;
        let mut from: Option<String> = None;
        let mut to: Vec<String> = Vec::new();
        loop {
            let Some(line) = read_line(&mut conn, MAX_LINE).await? else {
                return Ok(None);
            };
            let Ok(line) = String::from_utf8(line) else {
                send(&mut conn, "500 5.5.2 not UTF-8").await?;
                continue;
            };
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
                None => (line.to_ascii_uppercase(), String::new()),
            };
            match verb.as_str() {
                "EHLO" => {
                    from = None;
                    to.clear();
                    let mut lines = vec![format!("{NAME} greets {arg}"), "8BITMIME".into()];
                    lines.push("SMTPUTF8".into());
                    lines.push(format!("SIZE {MAX_DATA}"));
                    if offer_starttls {
                        lines.push("STARTTLS".into());
                    }
                    if offer_auth {
                        lines.push("AUTH PLAIN LOGIN".into());
                    }
                    send_multi(&mut conn, 250, &lines).await?;
                }
                "HELO" => {
                    from = None;
                    to.clear();
                    send(&mut conn, &format!("250 {NAME}")).await?;
                }
                "STARTTLS" if offer_starttls => {
                    send(&mut conn, "220 2.0.0 ready to start TLS").await?;
                    // Commands sent before the handshake (pipelined behind
                    // STARTTLS) would be an injection: refuse to go on.
                    if !conn.buffer().is_empty() {
                        return Err(io::Error::other("data after STARTTLS before the handshake"));
                    }
                    return Ok(Some(conn.into_inner()));
                }
                "STARTTLS" => send(&mut conn, "454 4.7.0 TLS not available").await?,
                "AUTH" if offer_auth && user.is_none() => {
                    let (mech, initial) = match arg.split_once(' ') {
                        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.to_owned())),
                        None => (arg.to_ascii_uppercase(), None),
                    };
                    let given = match mech.as_str() {
                        "PLAIN" => {
                            let blob = match initial {
                                Some(b) => b,
                                None => {
                                    send(&mut conn, "334 ").await?;
                                    read_text(&mut conn).await?
                                }
                            };
                            decode(&blob).and_then(|b| {
                                let mut parts = b.split(|&c| c == 0).skip(1);
                                let u = String::from_utf8(parts.next()?.to_vec()).ok()?;
                                let p = String::from_utf8(parts.next()?.to_vec()).ok()?;
                                Some((u, p))
                            })
                        }
                        "LOGIN" => {
                            let u = match initial {
                                Some(u) => u,
                                None => {
                                    send(&mut conn, "334 VXNlcm5hbWU6").await?;
                                    read_text(&mut conn).await?
                                }
                            };
                            send(&mut conn, "334 UGFzc3dvcmQ6").await?;
                            let p = read_text(&mut conn).await?;
                            decode_text(&u).zip(decode_text(&p))
                        }
                        _ => {
                            send(&mut conn, "504 5.5.4 unrecognized authentication type").await?;
                            continue;
                        }
                    };
                    match given {
                        Some(given) if Some(&given) == self.credentials.as_ref() => {
                            user = Some(given.0);
                            send(&mut conn, "235 2.7.0 authentication successful").await?;
                        }
                        _ => {
                            send(&mut conn, "535 5.7.8 authentication credentials invalid").await?;
                        }
                    }
                }
                "AUTH" => send(&mut conn, "503 5.5.1 AUTH not available").await?,
                "MAIL" => {
                    if self.credentials.is_some() && user.is_none() {
                        send(&mut conn, "530 5.7.0 authentication required").await?;
                    } else if let Some(addr) = path(&arg, "FROM:") {
                        from = Some(addr);
                        to.clear();
                        send(&mut conn, "250 2.1.0 OK").await?;
                    } else {
                        send(&mut conn, "501 5.5.4 syntax: MAIL FROM:<address>").await?;
                    }
                }
                "RCPT" => {
                    if from.is_none() {
                        send(&mut conn, "503 5.5.1 MAIL first").await?;
                    } else if let Some(addr) = path(&arg, "TO:") {
                        to.push(addr);
                        send(&mut conn, "250 2.1.5 OK").await?;
                    } else {
                        send(&mut conn, "501 5.5.4 syntax: RCPT TO:<address>").await?;
                    }
                }
                "DATA" => {
                    if to.is_empty() {
                        send(&mut conn, "503 5.5.1 RCPT first").await?;
                        continue;
                    }
                    send(&mut conn, "354 end data with <CR><LF>.<CR><LF>").await?;
                    let Some(data) = read_data(&mut conn).await? else {
                        send(&mut conn, "552 5.3.4 message too big").await?;
                        from = None;
                        to.clear();
                        continue;
                    };
                    let reply = self.answer();
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let mail = ReceivedMail {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        subject: headers(&data)
                            .into_iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
                            .map(|(_, v)| decode_words(&v)),
                        data,
                        tls,
                        user: user.clone(),
                        answered: reply.code,
                    };
                    self.script.lock().unwrap().received.push(mail);
                    self.arrived.notify_waiters();
                    send(&mut conn, &format!("{} {}", reply.code, reply.text)).await?;
                }
                "RSET" => {
                    from = None;
                    to.clear();
                    send(&mut conn, "250 2.0.0 OK").await?;
                }
                "NOOP" => send(&mut conn, "250 2.0.0 OK").await?,
                "QUIT" => {
                    send(&mut conn, "221 2.0.0 bye").await?;
                    let _ = conn.get_mut().shutdown().await;
                    return Ok(None);
                }
                _ => send(&mut conn, "502 5.5.1 command not implemented").await?,
            }
        }
    }
}

/// A server config for the simulator from PEM: the certificate chain
/// (leaf first) and its private key; ring, like the rest of ferry.
pub fn tls_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

mod wire;

pub use wire::decode_words;
use wire::*;
