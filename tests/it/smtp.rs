//! Email delivery (`connect::smtp`) against the SMTP simulator (`sim::smtp`):
//! plain loopback, STARTTLS and implicit TLS with a private CA made here
//! with rcgen, AUTH, and what each failure maps to for the retry rules: a
//! 451 retryable, a 550 permanent, a 535 auth, a wrong CA a TLS
//! configuration error, a stuck server a timeout (and no desynchronised
//! connection reused after it).

use std::sync::Arc;
use std::time::Duration;

use ferry::connect::smtp::{
    self, Email, Mailer, SmtpError, SmtpSettings, SmtpTls, http_like_status,
};
use ferry::model::ErrorClass;
use ferry::sim::smtp::{SimOptions, SimTls, SmtpReply, SmtpSim, tls_config};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use secrecy::SecretString;

const FROM: &str = "Ferry alerts <alerts@ferry.test>";
const TO: &str = "ops@example.test";

/// A private CA and a server certificate it signed for localhost and 127.0.0.1.
struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

fn private_ca(name: &str) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &*ca).unwrap();
    let server = tls_config(cert.pem().as_bytes(), leaf_key.serialize_pem().as_bytes()).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server,
    }
}

fn email(subject: &str) -> Email {
    Email {
        subject: subject.to_owned(),
        text: "Route orders: 3 messages are dead.\nSee the console.".to_owned(),
        html: None,
    }
}

fn settings(url: &str) -> SmtpSettings {
    SmtpSettings::new(url, FROM, &[TO])
        .unwrap()
        .with_timeout(Duration::from_secs(10))
}

/// Writes `pem` to a file in `dir` and returns its path.
fn ca_file(dir: &tempfile::TempDir, pem: &str) -> std::path::PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

fn secret(s: &str) -> SecretString {
    s.to_owned().into()
}

#[tokio::test]
async fn plain_loopback_delivers_subject_and_text() {
    let sim = SmtpSim::start().await.unwrap();
    assert!(sim.url().starts_with("smtp+plain://127.0.0.1:"));
    let s = settings(&sim.url());
    assert_eq!(s.tls, SmtpTls::None);

    let got = smtp::send(&s, &email("Route orders is failing — Grüße")).await;
    let outcome = got.as_ref().expect("delivered");
    assert_eq!(outcome.code, 250);
    assert_eq!(http_like_status(&got), 200);

    let mail = sim.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mail.len(), 1);
    let m = &mail[0];
    assert_eq!(m.from, "alerts@ferry.test");
    assert_eq!(m.to, vec![TO.to_owned()]);
    assert_eq!(
        m.subject.as_deref(),
        Some("Route orders is failing — Grüße")
    );
    assert!(
        m.body()
            .contains("Route orders: 3 messages are dead.\r\nSee the console.")
    );
    assert!(!m.tls);
    assert_eq!(m.user, None);
    assert!(m.header("Date").is_some());
}

#[tokio::test]
async fn html_goes_as_an_alternative_and_the_message_id_is_kept() {
    let sim = SmtpSim::start().await.unwrap();
    let mailer = Mailer::new(&settings(&sim.url())).unwrap();
    let mut e = email("with html");
    e.html = Some("<p>Route <b>orders</b>: 3 dead</p>".into());
    mailer
        .send(&e, Some("01JALERT-orders-7@ferry.test"))
        .await
        .unwrap();
    let m = &sim.wait_for(1, Duration::from_secs(5)).await[0];
    let ct = m.header("Content-Type").unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    assert!(m.body().contains("Route orders: 3 messages are dead."));
    assert!(m.body().contains("<p>Route <b>orders</b>: 3 dead</p>"));
    assert_eq!(
        m.header("Message-ID").as_deref(),
        Some("<01JALERT-orders-7@ferry.test>")
    );
}

#[tokio::test]
async fn starttls_with_a_private_ca_and_auth_delivers() {
    let pki = private_ca("ferry test CA");
    let sim = SmtpSim::start_with(SimOptions {
        tls: SimTls::StartTls(pki.server.clone()),
        credentials: Some(("alerts".into(), "s3cret".into())),
    })
    .await
    .unwrap();
    assert!(sim.url().starts_with("smtp://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&sim.url())
        .with_ca_file(ca_file(&dir, &pki.ca_pem))
        .with_credentials(secret("alerts"), secret("s3cret"));
    assert_eq!(s.tls, SmtpTls::StartTls);

    let got = smtp::send(&s, &email("over STARTTLS")).await;
    assert_eq!(http_like_status(&got), 200, "{got:?}");
    let m = &sim.wait_for(1, Duration::from_secs(5)).await[0];
    assert!(m.tls, "the message came after STARTTLS");
    assert_eq!(m.user.as_deref(), Some("alerts"));
    assert_eq!(m.subject.as_deref(), Some("over STARTTLS"));

    // The wrong password: 535, an auth failure, not retried.
    let wrong = settings(&sim.url())
        .with_ca_file(ca_file(&dir, &pki.ca_pem))
        .with_credentials(secret("alerts"), secret("guess"));
    let e = smtp::send(&wrong, &email("x")).await.unwrap_err();
    assert!(
        matches!(
            e,
            SmtpError::Auth {
                code: Some(535),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!((e.http_like_status(), e.class()), (401, ErrorClass::Auth));
    assert!(!e.is_retryable());

    // No credentials at all where the server wants them: 530, auth too.
    let none = settings(&sim.url()).with_ca_file(ca_file(&dir, &pki.ca_pem));
    let e = smtp::send(&none, &email("x")).await.unwrap_err();
    assert!(
        matches!(
            e,
            SmtpError::Auth {
                code: Some(530),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(sim.messages().len(), 1);
}

#[tokio::test]
async fn implicit_tls_with_a_private_ca_delivers() {
    let pki = private_ca("ferry test CA");
    let sim = SmtpSim::start_with(SimOptions {
        tls: SimTls::Implicit(pki.server.clone()),
        credentials: None,
    })
    .await
    .unwrap();
    assert!(sim.url().starts_with("smtps://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&sim.url()).with_ca_file(ca_file(&dir, &pki.ca_pem));
    assert_eq!(s.tls, SmtpTls::Implicit);
    let got = smtp::send(&s, &email("over implicit TLS")).await;
    assert_eq!(http_like_status(&got), 200, "{got:?}");
    let m = &sim.wait_for(1, Duration::from_secs(5)).await[0];
    assert!(m.tls);
    assert_eq!(m.subject.as_deref(), Some("over implicit TLS"));
}

#[tokio::test]
async fn a_wrong_ca_is_a_tls_configuration_error() {
    let pki = private_ca("ferry test CA");
    let other = private_ca("someone else's CA");
    let dir = tempfile::tempdir().unwrap();
    for tls in [
        SimTls::Implicit(pki.server.clone()),
        SimTls::StartTls(pki.server.clone()),
    ] {
        let sim = SmtpSim::start_with(SimOptions {
            tls,
            credentials: None,
        })
        .await
        .unwrap();
        // Another CA, and no private CA at all (the web PKI roots only).
        for s in [
            settings(&sim.url()).with_ca_file(ca_file(&dir, &other.ca_pem)),
            settings(&sim.url()),
        ] {
            let e = smtp::send(&s, &email("x")).await.unwrap_err();
            assert!(matches!(e, SmtpError::Tls(_)), "{}: {e:?}", sim.url());
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
            assert_eq!(e.http_like_status(), 495);
            assert_eq!(e.class(), ErrorClass::Config);
            assert!(!e.is_retryable());
        }
        assert!(sim.messages().is_empty(), "nothing is sent without TLS");
    }

    // A CA file that is not one: a config error before any connection.
    let junk = settings("smtps://127.0.0.1:1465").with_ca_file(ca_file(&dir, "not a PEM file"));
    let e = smtp::send(&junk, &email("x")).await.unwrap_err();
    assert!(matches!(e, SmtpError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("holds no certificate"), "{e}");
    assert_eq!(e.http_like_status(), 400);
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_not_spoken_to_in_clear() {
    let sim = SmtpSim::start().await.unwrap();
    let url = format!("smtp://{}", sim.addr);
    let e = smtp::send(&settings(&url), &email("x")).await.unwrap_err();
    assert!(matches!(e, SmtpError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert_eq!((e.http_like_status(), e.class()), (495, ErrorClass::Config));
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn a_451_is_retryable_and_the_pool_goes_on() {
    let sim = SmtpSim::start().await.unwrap();
    sim.reply_next(2, SmtpReply::new(451, "4.7.1 greylisted, try again later"));
    let mailer = Mailer::new(&settings(&sim.url())).unwrap();
    for _ in 0..2 {
        let got = mailer.send(&email("greylisted"), None).await;
        assert_eq!(http_like_status(&got), 503, "{got:?}");
        let e = got.unwrap_err();
        assert_eq!(e.code(), Some(451));
        assert!(e.is_retryable());
        assert_eq!(e.class(), ErrorClass::ServerError);
        assert!(e.to_string().contains("451 4.7.1 greylisted"), "{e}");
    }
    let got = mailer.send(&email("greylisted"), None).await;
    assert_eq!(http_like_status(&got), 200, "{got:?}");
    let answered: Vec<u16> = sim.messages().iter().map(|m| m.answered).collect();
    assert_eq!(answered, vec![451, 451, 250]);
}

#[tokio::test]
async fn a_550_is_permanent() {
    let sim = SmtpSim::start().await.unwrap();
    sim.reply_always(SmtpReply::new(550, "5.1.1 mailbox unavailable"));
    let got = smtp::send(&settings(&sim.url()), &email("x")).await;
    assert_eq!(http_like_status(&got), 422, "{got:?}");
    let e = got.unwrap_err();
    assert!(matches!(e, SmtpError::Permanent { code: 550, .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Rejected);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_stuck_server_times_out_and_the_next_send_starts_afresh() {
    let sim = SmtpSim::start().await.unwrap();
    sim.reply_next(1, SmtpReply::ok().delay(Duration::from_secs(3)));
    let s = settings(&sim.url()).with_timeout(Duration::from_millis(600));
    let mailer = Mailer::new(&s).unwrap();
    let got = mailer.send(&email("stuck"), None).await;
    assert_eq!(http_like_status(&got), 504, "{got:?}");
    let e = got.unwrap_err();
    assert!(matches!(e, SmtpError::Timeout(_)));
    assert!(e.is_retryable());
    // The next send must not reuse the connection cut off mid-DATA (its
    // late 250 would be read as the answer to the next command). Give
    // lettre's pool the moment it takes to park a dropped connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = mailer.send(&email("after"), None).await;
    assert_eq!(http_like_status(&got), 200, "{got:?}");
    assert_eq!(got.unwrap().code, 250);
    assert_eq!(sim.connections(), 2);
    // The stuck message did arrive: a retry after a timeout can duplicate.
    // (It is recorded when answered, after its delay: the second first.)
    let mut subjects: Vec<_> = sim
        .wait_for(2, Duration::from_secs(5))
        .await
        .into_iter()
        .filter_map(|m| m.subject)
        .collect();
    subjects.sort();
    assert_eq!(subjects, vec!["after", "stuck"]);
}

#[tokio::test]
async fn nothing_listening_is_a_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let got = smtp::send(
        &settings(&format!("smtp+plain://127.0.0.1:{port}")),
        &email("x"),
    )
    .await;
    assert_eq!(http_like_status(&got), 503, "{got:?}");
    let e = got.unwrap_err();
    assert!(matches!(e, SmtpError::Network(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Network);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn credentials_for_a_server_that_offers_no_auth_are_an_auth_error() {
    let sim = SmtpSim::start().await.unwrap();
    let s = settings(&sim.url()).with_credentials(secret("alerts"), secret("s3cret"));
    let e = smtp::send(&s, &email("x")).await.unwrap_err();
    assert!(matches!(e, SmtpError::Auth { code: None, .. }), "{e:?}");
    assert_eq!(e.http_like_status(), 401);
    assert!(sim.messages().is_empty());
}
