use super::*;

fn ok(url: &str) -> (String, u16, SmtpTls) {
    parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn err(url: &str) -> String {
    let e = parse_url(url).expect_err(url).0;
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn the_three_url_forms() {
    assert_eq!(
        ok("smtp://mail.example.com:587"),
        ("mail.example.com".into(), 587, SmtpTls::StartTls)
    );
    assert_eq!(
        ok("smtps://mail.example.com:465"),
        ("mail.example.com".into(), 465, SmtpTls::Implicit)
    );
    assert_eq!(
        ok("smtp+plain://127.0.0.1:2525"),
        ("127.0.0.1".into(), 2525, SmtpTls::None)
    );
    // Default ports, case, a trailing slash, IPv6 and loopback names.
    assert_eq!(
        ok("SMTP://Mail.Example.com"),
        ("mail.example.com".into(), 587, SmtpTls::StartTls)
    );
    assert_eq!(ok("smtps://mail.example.com/").1, 465);
    assert_eq!(ok("smtp+plain://localhost").1, 25);
    assert_eq!(
        ok("smtp+plain://[::1]:2525"),
        ("::1".into(), 2525, SmtpTls::None)
    );
    assert_eq!(ok("smtp://[2001:db8::1]:25").0, "2001:db8::1");
    assert_eq!(ok("smtp+plain://127.0.0.2:1025").1, 1025);
    // Other ports for the TLS forms (a relay's 25, a provider's 2587).
    assert_eq!(ok("smtp://relay.internal:25").1, 25);
    assert_eq!(ok("smtps://relay.internal:2465").1, 2465);
}

#[test]
fn url_errors_say_what_to_write() {
    assert!(err("").contains("empty"));
    assert!(err("mail.example.com:587").contains("smtps://host:465"));
    assert!(err("https://mail.example.com").contains("not an SMTP scheme"));
    assert!(err("submission://mail.example.com").contains("not an SMTP scheme"));
    assert!(err("smtp://user:pw@mail.example.com:587").contains("credential"));
    assert!(err("smtp://mail.example.com:587/inbox").contains("`/inbox`"));
    assert!(err("smtp://mail.example.com:587?tls=no").contains("query"));
    assert!(err("smtp://:587").contains("no host"));
    assert!(err("smtp://mail.example.com:0").contains("not a port"));
    assert!(err("smtp://mail.example.com:99999").contains("not a port"));
    assert!(err("smtp://mail.example.com:smtp").contains("not a port"));
    assert!(err("smtp://mail_server:587").contains("not a host name"));
    assert!(err("smtp://[::1:587").contains("unclosed"));
    assert!(err("smtp://[nope]:587").contains("not an IPv6"));
    assert!(err("smtp+plain://::1:25").contains("in brackets"));
    let wrong_tls = err("smtps://mail.example.com:587");
    assert!(
        wrong_tls.contains("use smtp://mail.example.com:587"),
        "{wrong_tls}"
    );
    let wrong_tls = err("smtp://mail.example.com:465");
    assert!(
        wrong_tls.contains("use smtps://mail.example.com:465"),
        "{wrong_tls}"
    );
    for remote in [
        "smtp+plain://mail.example.com:25",
        "smtp+plain://10.0.0.5:25",
        "smtp+plain://[2001:db8::1]:25",
        "smtp+plain://localhost.example.com:25",
    ] {
        assert!(err(remote).contains("only to a loopback host"), "{remote}");
    }
}

#[test]
fn settings_check_addresses_and_the_plain_rule() {
    let s = SmtpSettings::new(
        "smtp://mail.example.com",
        "Ferry <alerts@example.com>",
        &["ops@example.com"],
    )
    .unwrap();
    assert_eq!(s.url(), "smtp://mail.example.com:587");
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    let e = SmtpSettings::new(
        "smtp://mail.example.com",
        "not an address",
        &["ops@example.com"],
    );
    assert!(e.unwrap_err().0.contains("from `not an address`"));
    let none: [&str; 0] = [];
    let e = SmtpSettings::new("smtp://mail.example.com", "a@example.com", &none);
    assert!(e.unwrap_err().0.contains("at least one recipient"));
    let mut s = SmtpSettings::new(
        "smtp+plain://127.0.0.1:2525",
        "a@example.com",
        &["b@example.com"],
    )
    .unwrap();
    assert_eq!(s.url(), "smtp+plain://127.0.0.1:2525");
    s.host = "mail.example.com".into();
    assert!(s.validate().unwrap_err().0.contains("loopback"));
    s.host = "::1".into();
    assert_eq!(s.url(), "smtp+plain://[::1]:2525");
    s.username = Some("u".to_owned().into());
    assert!(s.validate().unwrap_err().0.contains("together"));
    assert!(matches!(Mailer::new(&s), Err(SmtpError::Config(_))));
}

#[test]
fn email_json() {
    let e = Email::from_json(br#"{"subject":"Route orders is failing","text":"5 dead"}"#).unwrap();
    assert_eq!(e.html, None);
    let e = Email::from_json(br#"{"subject":"s","text":"t","html":"<p>t</p>"}"#).unwrap();
    assert_eq!(e.html.as_deref(), Some("<p>t</p>"));
    let bad = Email::from_json(br#"{"subject":"s","txt":"t"}"#).unwrap_err();
    assert_eq!(bad.http_like_status(), 400);
    assert_eq!(bad.class(), ErrorClass::Config);
}

#[test]
fn status_mapping() {
    let status = |code: u16| SmtpError::from_reply(code, "x").http_like_status();
    for transient in [421, 450, 451, 452, 454] {
        assert_eq!(status(transient), 503, "{transient}");
        assert!(SmtpError::from_reply(transient, "x").is_retryable());
    }
    for permanent in [500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555] {
        assert_eq!(status(permanent), 422, "{permanent}");
        let e = SmtpError::from_reply(permanent, "x");
        assert!(!e.is_retryable());
        assert_eq!(e.class(), ErrorClass::Rejected);
    }
    for auth in [530, 534, 535, 538] {
        assert_eq!(status(auth), 401, "{auth}");
        assert_eq!(SmtpError::from_reply(auth, "x").class(), ErrorClass::Auth);
    }
    assert_eq!(status(250), 502);
    let ok = |code| {
        Ok(SmtpOutcome {
            code,
            message: "queued".into(),
        })
    };
    assert_eq!(http_like_status(&ok(250)), 200);
    assert_eq!(http_like_status(&ok(251)), 200);
    assert_eq!(http_like_status(&ok(354)), 502);
    let e = |e: SmtpError| {
        (
            http_like_status(&Err(e.clone())),
            e.class(),
            e.is_retryable(),
        )
    };
    assert_eq!(
        e(SmtpError::Network("refused".into())),
        (503, ErrorClass::Network, true)
    );
    assert_eq!(
        e(SmtpError::Timeout(Duration::from_secs(1))),
        (504, ErrorClass::Timeout, true)
    );
    assert_eq!(
        e(SmtpError::Protocol("?".into())),
        (502, ErrorClass::ServerError, true)
    );
    assert_eq!(
        e(SmtpError::Tls("UnknownIssuer".into())),
        (495, ErrorClass::Config, false)
    );
    assert_eq!(
        e(SmtpError::Config("bad".into())),
        (400, ErrorClass::Config, false)
    );
    assert_eq!(
        e(SmtpError::Auth {
            code: None,
            message: "no mechanism".into()
        }),
        (401, ErrorClass::Auth, false)
    );
    assert_eq!(
        SmtpError::from_reply(451, "4.7.1 greylisted").to_string(),
        "the SMTP server answered 451 4.7.1 greylisted"
    );
}

#[test]
fn a_wrapped_rustls_error_is_found() {
    let io = std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
    );
    let outer: Box<dyn std::error::Error + 'static> = Box::new(io);
    assert!(matches!(
        rustls_error(outer.as_ref()),
        Some(rustls::Error::InvalidCertificate(_))
    ));
    let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert!(rustls_error(&plain).is_none());
}
