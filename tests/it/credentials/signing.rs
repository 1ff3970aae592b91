//! ferry as a Standard Webhooks sender (`auth = { kind =
//! "standard-webhooks" }`): what the destination receives verifies with
//! ferry's own inbound verifier, `webhook-id` is the same on every retry,
//! and during a rotation each delivery is signed with every live version.

use ferry::ingest::verify::{self, Inbound, Scheme, VerifyError};
use ferry::sim::receiver::{Receiver, Reply};
use ferry::store::Supersede;
use ferry::vault::MasterKey;

use crate::common::*;

const SIGN_V1: &str = "whsec_c2lnbmluZy1zZWNyZXQtdmVyc2lvbi1vbmUhIQ==";
const SIGN_V2: &str = "whsec_c2lnbmluZy1zZWNyZXQtdmVyc2lvbi10d28hIQ==";

/// Verifies what the receiver got with only `secret`.
fn verifies(r: &ferry::sim::receiver::Received, secret: &str) -> Result<(), VerifyError> {
    let ts: i64 = r.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let req = Inbound {
        method: "POST",
        uri: "",
        headers: &r.headers,
        body: &r.body,
    };
    verify::verify(
        &Scheme::StandardWebhooks,
        &[secret.as_bytes()],
        &req,
        ts,
        300,
    )
    .map(|_| ())
}

/// Options for an app whose system `hooks` signs with store credential `sign`.
fn signing_options(receiver: &Receiver) -> Options {
    Options {
        receiver: Some(receiver.clone()),
        credentials: "signer = { store = \"sign\" }".into(),
        extra: format!(
            r#"
[systems.hooks]
base_url = "{}"
auth = {{ kind = "standard-webhooks", credential = "signer" }}

[routes.out]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
destination = {{ system = "hooks", path = "/hook" }}
"#,
            receiver.url()
        ),
        ..Options::default()
    }
}

#[tokio::test]
async fn deliveries_are_signed_with_every_live_version_and_a_stable_id() {
    let key = MasterKey::generate().to_string();
    let receiver = Receiver::start().await.unwrap();
    let opts = signing_options(&receiver);
    let t = super::app_with_store(&key, &[("sign", SIGN_V1)], opts).await;
    receiver.push([Reply::status(500)]);
    assert_eq!(
        t.signed("out", "e1", r#"{"a":1}"#, t.now_s(), WHSEC)
            .await
            .status(),
        202
    );
    t.drain().await;
    t.clock.advance(60_000);
    t.drain().await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "a 500, then the retry");
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1], "webhook-id is stable across retries");
    assert_eq!(ids[0].to_str().unwrap(), got[0].idempotency_key().unwrap());
    for r in &got {
        assert_eq!(verifies(r, SIGN_V1), Ok(()));
        assert_eq!(
            r.headers["webhook-signature"]
                .to_str()
                .unwrap()
                .split(' ')
                .count(),
            1
        );
    }

    // rotate: every delivery inside the grace carries both signatures
    let mk = MasterKey::parse(&key).unwrap();
    let until_ms = t.clock.now_ms() + 3_600_000;
    ferry::vault::put(
        &t.store,
        &mk,
        "sign",
        SIGN_V2,
        t.clock.now_ms(),
        None,
        Supersede::After { until_ms },
    )
    .await
    .unwrap();
    t.app.vault.refresh().await.unwrap();
    assert_eq!(
        t.signed("out", "e2", r#"{"a":2}"#, t.now_s(), WHSEC)
            .await
            .status(),
        202
    );
    t.drain().await;
    let r = receiver.received().pop().unwrap();
    assert_eq!(
        r.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert_eq!(
        verifies(&r, SIGN_V1),
        Ok(()),
        "a receiver with the old secret accepts"
    );
    assert_eq!(
        verifies(&r, SIGN_V2),
        Ok(()),
        "a receiver with the new secret accepts"
    );
    assert_eq!(verifies(&r, WHSEC), Err(VerifyError::Mismatch));

    // after the grace only the newest signs
    t.clock.advance(3_600_001);
    assert_eq!(
        t.signed("out", "e3", r#"{"a":3}"#, t.now_s(), WHSEC)
            .await
            .status(),
        202
    );
    t.drain().await;
    let r = receiver.received().pop().unwrap();
    assert_eq!(
        r.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    assert_eq!(verifies(&r, SIGN_V2), Ok(()));
    assert_eq!(verifies(&r, SIGN_V1), Err(VerifyError::Mismatch));
    // the attempt log keeps no signature
    let m = t.store.list(&Default::default()).await.unwrap();
    for s in &m {
        let d = t.store.message(&s.id).await.unwrap().unwrap();
        let text = serde_json::to_string(&d).unwrap();
        let sig = got[0].headers["webhook-signature"].to_str().unwrap();
        assert!(!text.contains(&sig[3..]), "a signature in the attempt log");
    }
}

const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, headers, body = sys.argv[1:4]
Webhook(secret).verify(body, json.loads(headers))
"#;

/// The official Python library (`standardwebhooks`) verifies what ferry
/// signs during a rotation, with the old secret and with the new one. Runs
/// when `FERRY_TEST_PYTHON_CLIENTS=1`, like `client_libraries`.
#[tokio::test]
async fn the_official_python_library_verifies_what_ferry_signs() {
    if std::env::var("FERRY_TEST_PYTHON_CLIENTS").as_deref() != Ok("1") {
        eprintln!("skipped: set FERRY_TEST_PYTHON_CLIENTS=1 with `pip install standardwebhooks`");
        return;
    }
    let key = MasterKey::generate().to_string();
    let receiver = Receiver::start().await.unwrap();
    let opts = Options {
        // the library checks the timestamp against the wall clock
        clock: Some(ferry::clock::Clock::System),
        ..signing_options(&receiver)
    };
    let t = super::app_with_store(&key, &[("sign", SIGN_V1)], opts).await;
    let mk = MasterKey::parse(&key).unwrap();
    let (now, until_ms) = (t.clock.now_ms(), t.clock.now_ms() + 3_600_000);
    ferry::vault::put(
        &t.store,
        &mk,
        "sign",
        SIGN_V2,
        now,
        None,
        Supersede::After { until_ms },
    )
    .await
    .unwrap();
    t.app.vault.refresh().await.unwrap();
    assert_eq!(
        t.signed("out", "py1", r#"{"amount":"12.50"}"#, t.now_s(), WHSEC)
            .await
            .status(),
        202
    );
    t.drain().await;
    let r = receiver.received().pop().unwrap();
    let headers: serde_json::Map<String, serde_json::Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|h| (h.to_string(), r.headers[*h].to_str().unwrap().into()))
            .collect();
    let headers = serde_json::Value::Object(headers).to_string();
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    let verify = |secret: &str, body: &str| {
        std::process::Command::new("python3")
            .args(["-c", VERIFY, secret, &headers, body])
            .output()
            .expect("python3")
            .status
            .success()
    };
    assert!(verify(SIGN_V1, &body), "the old secret verifies");
    assert!(verify(SIGN_V2, &body), "the new secret verifies");
    assert!(!verify(WHSEC, &body), "another secret does not");
    assert!(
        !verify(SIGN_V2, &body.replace("12.50", "99.00")),
        "a changed body does not"
    );
}
