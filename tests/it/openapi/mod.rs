//! The admin API's OpenAPI document: served, unauthenticated, at
//! `/admin/api/openapi.json` (OpenAPI 3.1), identical to the committed
//! `docs/openapi.json` (`FERRY_BLESS=1 cargo test --test it openapi`
//! rewrites it), covering every route under `/admin/api/v1` (the routes are
//! registered through `utoipa_axum::routes!`, and nothing in `src/admin`
//! routes around it), every documented operation answered by a route, and
//! the live answers matching their documented schemas.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

mod check;
use check::Schemas;

/// The served document, as text, and parsed.
async fn served(t: &TestApp) -> (String, Value) {
    let r = t
        .http
        .get(format!("{}/admin/api/openapi.json", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "served without a token");
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let text = r.text().await.unwrap();
    let doc = serde_json::from_str(&text).unwrap();
    (text, doc)
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let t = TestApp::spawn().await;
    let (text, doc) = served(&t).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var("FERRY_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&file, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    if committed != text {
        let line = committed
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(text.lines().count()));
        panic!(
            "docs/openapi.json differs from the document ferry serves (first at line {}: \
             committed {:?}, served {:?}). If the API changed on purpose, rewrite the file with \
             `FERRY_BLESS=1 cargo test --test it openapi` and commit it.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            text.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// Nothing in `src/admin` mounts a route except through `routes!` (which
/// takes only a handler with its `#[utoipa::path]`): the one plain route is
/// the document itself, and the API is nested only at its prefix.
#[test]
fn admin_routes_are_registered_only_with_their_documentation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admin");
    let mut bypasses = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for call in [
            ".route(",
            ".route_service(",
            ".nest(",
            ".nest_service(",
            ".merge(",
        ] {
            for (at, _) in text.match_indices(call) {
                let after: String = text[at + call.len()..].chars().take(60).collect();
                let after = after.trim_start();
                let allowed = (call == ".route(" && after.starts_with("openapi::PATH"))
                    || (call == ".nest(" && after.starts_with("PREFIX"));
                if !allowed {
                    bypasses.push(format!(
                        "{name}: {call}{}",
                        after.lines().next().unwrap_or("")
                    ));
                }
            }
        }
        if text.contains(" Router::new()") || text.contains("(Router::new()") {
            bypasses.push(format!("{name}: Router::new()"));
        }
    }
    assert!(
        bypasses.is_empty(),
        "register admin API handlers with `.routes(routes!(handler))` in `admin::api` \
         (with a `#[utoipa::path]` on the handler), so the OpenAPI document lists them; \
         found routes around it: {bypasses:#?}"
    );
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The schema an operation documents for `status` as `media`.
fn answer_schema<'a>(
    doc: &'a Value,
    method: &str,
    path: &str,
    status: &str,
    media: &str,
) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status]["content"][media]["schema"];
    assert!(
        !s.is_null(),
        "{method} {path} documents no {status} {media} answer"
    );
    s
}

/// Live answers match the documented schemas (every field named, none
/// missing, types right), successes and problems alike; every documented
/// operation is answered by a route; every error is a problem.
#[tokio::test]
async fn live_answers_match_the_document_and_every_operation_is_routed() {
    let opts = Options {
        extra: r#"
[routes.updates]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }
destination = { system = "erp", path = "/stock", ordering_key = ".sku" }
"#
        .into(),
        ..Default::default()
    };
    let t = TestApp::spawn_with(opts).await;
    let (_, doc) = served(&t).await;
    let schemas = Schemas(&doc);
    // A dead message (with its failure group), a delivered one, a queued one.
    t.receiver
        .push([ferry::sim::receiver::Reply::status(422).body(r#"{"error":"unknown sku"}"#)]);
    for (id, body) in [("evt_1", r#"{"sku":"A"}"#), ("evt_2", r#"{"sku":"A"}"#)] {
        let r = t.signed("updates", id, body, t.now_s(), WHSEC).await;
        assert_eq!(r.status(), 202);
    }
    assert_eq!(t.webhook("evt_3", r#"{"n":3}"#).await.status(), 202);
    t.drain().await;
    assert_eq!(t.webhook("evt_4", r#"{"n":4}"#).await.status(), 202);
    let dead = t
        .admin_json(Method::GET, "/messages?state=dead", None)
        .await;
    let dead_id = dead["messages"][0]["id"].as_str().unwrap().to_owned();
    let groups = t.admin_json(Method::GET, "/failures", None).await;
    let group = groups["groups"][0]["key"].as_str().unwrap().to_owned();
    // An audited action for the log.
    let r = t
        .admin(Method::POST, "/failures/x/status")
        .json(&json!({ "status": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = t
        .admin(Method::POST, &format!("/failures/{group}/status"))
        .json(&json!({ "status": "acknowledged", "note": "on it" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let fill = |path: &str| {
        path.replace("{id}", &dead_id)
            .replace("{group}", &group)
            .replace("{route}", "updates")
            .replace("{key}", "A")
    };
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    let mut judge = |method: &str, path: &str, status: u16, ct: &str, body: &Value| {
        let media = if status < 300 {
            "application/json"
        } else {
            "application/problem+json"
        };
        assert_eq!(
            ct, media,
            "{method} {path} answered {status} as {ct}: {body}"
        );
        let s = answer_schema(&doc, method, path, &status.to_string(), media);
        wrong.extend(schemas.errors(s, body, &format!("{method} {path} {status}")));
        checked.push(format!("{method} {path} {status}"));
    };
    // Every read, with its parameters filled in, and a few that are not found.
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    for path in &paths {
        if doc["paths"][path]["get"].is_null() || path.ends_with("/export") {
            continue;
        }
        let mut urls = vec![fill(path)];
        if path.contains('{') {
            urls.push(
                path.replace("{id}", "nope")
                    .replace("{group}", "nope")
                    .replace("{route}", "nope"),
            );
        }
        for url in urls {
            let r = t
                .http
                .get(format!("{}{url}", t.base))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = content_type(&r);
            let text = r.text().await.unwrap();
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("GET {url} answered {status} ({ct}): {text}"));
            judge("get", path, status, &ct, &body);
        }
    }
    // Actions: dry runs first, then for real, then what is refused.
    let prefix = "/admin/api/v1";
    let actions: Vec<(&str, Value)> = vec![
        (
            "/messages/retry",
            json!({ "state": "dead", "dry_run": true }),
        ),
        (
            "/messages/discard",
            json!({ "state": "dead", "reason": "x", "dry_run": true }),
        ),
        ("/failures/{group}/retry", json!({ "dry_run": true })),
        (
            "/failures/{group}/discard",
            json!({ "reason": "x", "dry_run": true }),
        ),
        (
            "/routes/{route}/ordering-keys/{key}/release",
            json!({ "dry_run": true }),
        ),
        (
            "/messages/{id}/edit",
            json!({ "body": { "sku": "A", "n": 1.50 }, "note": "fixed" }),
        ),
        ("/messages/{id}/edit", json!({ "note": "no body" })),
        ("/messages/{id}/retry", json!({})),
        ("/messages/{id}/discard", json!({ "reason": "not needed" })),
        ("/messages/{id}/discard", json!({ "reason": "again" })),
        ("/messages/{id}/retry", json!({})),
        ("/messages/nope/retry", json!({})),
        (
            "/routes/{route}/ordering-keys/{key}/release",
            json!({ "reason": "done" }),
        ),
        ("/routes/nope/ordering-keys/{key}/release", json!({})),
        ("/messages/retry", json!({ "state": "dead" })),
        (
            "/messages/discard",
            json!({ "state": "queued", "reason": "drained" }),
        ),
        ("/messages/discard", json!({ "reason": " " })),
        ("/failures/{group}/retry", json!({})),
    ];
    for (path, body) in actions {
        let r = t
            .http
            .post(format!("{}{prefix}{}", t.base, fill(path)))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let ct = content_type(&r);
        let text = r.text().await.unwrap();
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("POST {path} answered {status} ({ct}): {text}"));
        let documented = match path {
            "/routes/nope/ordering-keys/{key}/release" => {
                "/routes/{route}/ordering-keys/{key}/release"
            }
            "/messages/nope/retry" => "/messages/{id}/retry",
            p => p,
        };
        let documented = format!("{prefix}{documented}");
        judge("post", &documented, status, &ct, &answer);
    }
    assert!(
        wrong.is_empty(),
        "answers differ from the document: {wrong:#?}"
    );
    assert!(checked.len() > 30, "{checked:#?}");

    // Every documented operation is answered by a route (never axum's bare
    // 404 or 405), and every documented error is a problem.
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with(prefix), "{path}");
        for (method, op) in item.as_object().unwrap() {
            for (status, answer) in op["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    let media: Vec<&String> =
                        answer["content"].as_object().unwrap().keys().collect();
                    assert_eq!(
                        media,
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                }
            }
            assert_eq!(op["security"], json!([{ "bearer": [] }]), "{method} {path}");
            let url = format!("{}{}", t.base, path.replace(['{', '}'], ""));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = t
                .http
                .request(m, url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let unrouted = status == 405
                || (status == 404 && ct.as_deref() != Some("application/problem+json"));
            assert!(
                !unrouted,
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
}

/// The schema check is not vacuous: a field added, one missing, one
/// re-typed, and an answer of the wrong kind are each caught.
#[tokio::test]
async fn the_schema_check_sees_a_changed_answer() {
    let t = TestApp::spawn().await;
    let (_, doc) = served(&t).await;
    let s = Schemas(&doc);
    let routes = answer_schema(
        &doc,
        "get",
        "/admin/api/v1/routes",
        "200",
        "application/json",
    );
    let good = json!({ "routes": [{
        "route": "orders", "queued": 1, "delivering": 0, "retrying": 0, "delivered": 0,
        "dead": 0, "discarded": 0, "skipped": 0, "superseded": 0,
    }] });
    assert_eq!(s.errors(routes, &good, "good"), Vec::<String>::new());
    let mut extra = good.clone();
    extra["routes"][0]["new"] = json!(1);
    let mut missing = good.clone();
    missing["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("queued");
    let mut retyped = good.clone();
    retyped["routes"][0]["queued"] = json!("1");
    for bad in [extra, missing, retyped] {
        assert!(!s.errors(routes, &bad, "bad").is_empty(), "{bad}");
    }
    let retried = answer_schema(
        &doc,
        "post",
        "/admin/api/v1/messages/retry",
        "200",
        "application/json",
    );
    assert!(
        s.errors(retried, &json!({ "requeued": 2 }), "ok")
            .is_empty()
    );
    assert!(
        s.errors(retried, &json!({ "matched": 2, "dry_run": true }), "ok")
            .is_empty()
    );
    assert!(
        !s.errors(retried, &json!({ "discarded": 2 }), "bad")
            .is_empty()
    );

    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "operation ids are unique: {ids:?}");
}
