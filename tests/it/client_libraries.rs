//! Compatibility with code no one on this project wrote: webhooks signed by the
//! providers' official Python libraries (`standardwebhooks`, `stripe`) are
//! accepted, and the same request tampered with is refused. Runs when
//! `FERRY_TEST_PYTHON_CLIENTS=1` (`.ci/run` installs the libraries and sets it).

use crate::common::*;

const SIGN: &str = r#"
import json, sys, datetime
from standardwebhooks.webhooks import Webhook
import stripe
secret_sw, secret_stripe, msg_id, ts, payload = sys.argv[1:6]
ts = int(ts)
sw = Webhook(secret_sw).sign(msg_id, datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc), payload)
v1 = stripe.WebhookSignature._compute_signature("%d.%s" % (ts, payload), secret_stripe)
print(json.dumps({"standard": sw, "stripe": "t=%d,v1=%s" % (ts, v1)}))
"#;

#[tokio::test]
async fn official_python_libraries_sign_what_ferry_accepts() {
    if std::env::var("FERRY_TEST_PYTHON_CLIENTS").as_deref() != Ok("1") {
        eprintln!(
            "skipped: set FERRY_TEST_PYTHON_CLIENTS=1 with `pip install standardwebhooks stripe`"
        );
        return;
    }
    let t = TestApp::spawn().await;
    let payload = r#"{"id":"evt_py_1","type":"order.created","amount":"12.50"}"#;
    let ts = t.now_s().to_string();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            SIGN,
            WHSEC,
            "whsec_stripe_test_secret",
            "msg_py_1",
            &ts,
            payload,
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sigs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let standard = |body: &str| {
        t.http
            .post(format!("{}/in/orders", t.base))
            .header("webhook-id", "msg_py_1")
            .header("webhook-timestamp", &ts)
            .header("webhook-signature", sigs["standard"].as_str().unwrap())
            .body(body.to_owned())
            .send()
    };
    assert_eq!(standard(payload).await.unwrap().status(), 202);
    assert_eq!(
        standard(&payload.replace("12.50", "99.00"))
            .await
            .unwrap()
            .status(),
        401
    );

    let stripe = |body: &str| {
        t.http
            .post(format!("{}/in/stripe", t.base))
            .header("stripe-signature", sigs["stripe"].as_str().unwrap())
            .body(body.to_owned())
            .send()
    };
    assert_eq!(stripe(payload).await.unwrap().status(), 202);
    assert_eq!(
        stripe(&payload.replace("12.50", "99.00"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(t.total_messages().await, 2);
}
