//! The email channel's transport: the checked settings and lettre's pool of
//! SMTP connections ([`Mailer`]), one submission under the whole timeout,
//! and TLS toward the server with the web roots plus a private CA.

use super::*;

/// An email channel's transport: the checked settings and a pool of SMTP
/// connections, reused between sends. Build it inside a Tokio runtime and
/// drop it inside one (lettre's pool spawns its cleanup task on both), and
/// keep it as long as the channel's settings do: a `Mailer` per attempt
/// gets nothing from the pool.
pub struct Mailer {
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    /// Rebuilt after a timeout: see [`Mailer::send`].
    transport: Mutex<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
    build: Box<dyn Fn() -> AsyncSmtpTransport<Tokio1Executor> + Send + Sync>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings and reads the CA file; connects on the first send.
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, SmtpError> {
        settings
            .validate()
            .map_err(|e| SmtpError::Config(e.to_string()))?;
        let from = mailbox("from", &settings.from).map_err(|e| SmtpError::Config(e.0))?;
        let to = settings
            .to
            .iter()
            .map(|t| mailbox("to", t).map_err(|e| SmtpError::Config(e.0)))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(settings)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(settings)?),
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(u), Some(p)) => Some(Credentials::new(
                u.expose_secret().to_owned(),
                p.expose_secret().to_owned(),
            )),
            _ => None,
        };
        let (host, port, timeout) = (settings.host.clone(), settings.port, settings.timeout);
        let build = move || {
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                .port(port)
                .tls(tls.clone())
                .timeout(Some(timeout));
            if let Some(c) = &credentials {
                b = b.credentials(c.clone());
            }
            b.build()
        };
        Ok(Mailer {
            server: settings.url(),
            from,
            to,
            timeout,
            transport: Mutex::new(Arc::new(build())),
            build: Box::new(build),
        })
    }

    /// The server, as a URL (for logs).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Submits one email. `message_id` (without the angle brackets: a
    /// delivery key at a domain, say `01h…@ferry.example`) makes every
    /// retry of the same alert the same message to the receiver; without
    /// one lettre makes none and the server may add its own.
    ///
    /// The whole submission is bounded by the settings' timeout: lettre
    /// bounds only the TCP connect on Tokio, so a server that accepts and
    /// then says nothing would hold the attempt forever. A submission cut
    /// off mid-transaction leaves its connection out of step with the
    /// server, and lettre's pool would park it for the next send; so after
    /// a timeout the pool is shut down and a fresh one takes its place.
    pub async fn send(
        &self,
        email: &Email,
        message_id: Option<&str>,
    ) -> Result<SmtpOutcome, SmtpError> {
        let message = self.message(email, message_id)?;
        let transport = self.transport.lock().expect("mailer lock").clone();
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(Ok(response)) => Ok(SmtpOutcome {
                code: u16::from(response.code()),
                message: one_line(&response.message().collect::<Vec<_>>().join(" ")),
            }),
            Ok(Err(e)) => Err(SmtpError::from_lettre(&e, self.timeout)),
            Err(_) => {
                {
                    let mut current = self.transport.lock().expect("mailer lock");
                    if Arc::ptr_eq(&current, &transport) {
                        *current = Arc::new((self.build)());
                    }
                }
                transport.shutdown().await;
                Err(SmtpError::Timeout(self.timeout))
            }
        }
    }

    fn message(&self, email: &Email, message_id: Option<&str>) -> Result<Message, SmtpError> {
        let mut b = Message::builder()
            .from(self.from.clone())
            // Line breaks in a subject would start new headers.
            .subject(one_line(&email.subject));
        for to in &self.to {
            b = b.to(to.clone());
        }
        if let Some(id) = message_id {
            let id = id.trim_matches(['<', '>']);
            if id.is_empty() || !id.contains('@') || id.bytes().any(|c| !c.is_ascii_graphic()) {
                return Err(SmtpError::Config(format!(
                    "`{id}` is not a Message-ID (left@right, printable ASCII)"
                )));
            }
            b = b.message_id(Some(format!("<{id}>")));
        }
        let built = match &email.html {
            None => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.clone()),
            ),
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                html.clone(),
            )),
        };
        built.map_err(|e| SmtpError::Config(format!("cannot build the email: {e}")))
    }
}

/// Submits one email with a transport made for it (no pool reuse): the
/// simple form for a test or a one-off; a channel keeps a [`Mailer`].
pub async fn send(settings: &SmtpSettings, email: &Email) -> Result<SmtpOutcome, SmtpError> {
    Mailer::new(settings)?.send(email, None).await
}

/// TLS toward the server's host name: the web PKI roots plus `ca_file`.
pub(super) fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, SmtpError> {
    let mut b = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| SmtpError::Config(format!("ca_file `{shown}` cannot be read: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SmtpError::Config(format!("ca_file `{shown}` is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(SmtpError::Config(format!(
                "ca_file `{shown}` holds no certificate"
            )));
        }
        for cert in certs {
            let cert = Certificate::from_der(cert.to_vec()).map_err(|e| {
                SmtpError::Config(format!("ca_file `{shown}`: {}", one_line(&e.to_string())))
            })?;
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| {
        SmtpError::Config(format!(
            "cannot set up TLS for {}: {}",
            settings.host,
            one_line(&e.to_string())
        ))
    })
}
