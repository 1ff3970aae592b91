//! Unit tests of batch forming, bodies, per-item results and keys.

use std::path::Path;

use super::*;

const CONFIG: &str = r#"
[credentials]
k = { env = "K" }

[systems.crm]
base_url = "http://127.0.0.1:1"

[routes.contacts]
source = { kind = "api", credentials = ["k"] }
destination = { system = "crm", path = "/contacts", batch = { max_items = 3, max_bytes = "64B", max_wait = "2s", path = "/contacts/batch", body = "{inputs: .}", results = "[.response.errors as $e | .request[] | .id as $id | ($e | map(select(.id == $id)) | first | .message) // null]" } }

[routes.keyed]
source = { kind = "api", credentials = ["k"] }
destination = { system = "crm", path = "/c", batch = { path = "/c/batch", body = "{inputs: [range(length) as $i | {id: $keys[$i], properties: .[$i]}]}" } }

[routes.single]
source = { kind = "api", credentials = ["k"] }
destination = { system = "crm", path = "/one" }
"#;

fn config() -> Config {
    Config::parse(CONFIG, "test", Path::new("/tmp"), &|k| {
        (k == "K").then(|| "x".into())
    })
    .unwrap()
}

fn item(n: i64, route: &str, body: &str, received_ms: i64) -> Claimed {
    Claimed {
        delivery_id: n,
        message_id: format!("m{n}").into(),
        route: route.into(),
        system: "crm".into(),
        delivery_key: format!("k{n}"),
        body: Bytes::from(body.to_owned()),
        attempts: 0,
        rate_limited_streak: 0,
        auth_streak: 0,
        budget_start_ms: received_ms,
        received_ms,
        lease_until: 0,
    }
}

fn ids(u: &Unit) -> Vec<i64> {
    match u {
        Unit::One(d) => vec![d.delivery_id],
        Unit::Batch(items) => items.iter().map(|d| d.delivery_id).collect(),
    }
}

#[test]
fn batches_fill_by_count_and_unbatched_routes_go_alone() {
    let c = config();
    let claimed = (1..=7)
        .map(|n| item(n, "contacts", r#"{"id":1}"#, 0))
        .chain([item(8, "single", "{}", 0)])
        .collect();
    let f = form(claimed, &c, 10_000);
    let got: Vec<Vec<i64>> = f.units.iter().map(ids).collect();
    assert_eq!(got, vec![vec![8], vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert!(
        f.waiting.is_empty(),
        "the last one is old enough to go alone"
    );
}

#[test]
fn a_young_partial_batch_waits_for_max_wait() {
    let c = config();
    let f = form(
        vec![
            item(1, "contacts", "{}", 9_000),
            item(2, "contacts", "{}", 9_500),
        ],
        &c,
        10_000,
    );
    assert!(f.units.is_empty());
    assert_eq!(f.waiting.len(), 2);
    assert_eq!(f.wait_until_ms, 11_000, "the oldest item's arrival + 2 s");
    // A retried item never waits again.
    let mut retried = item(3, "contacts", "{}", 9_900);
    retried.attempts = 1;
    let f = form(vec![retried], &c, 10_000);
    assert_eq!(f.units.len(), 1);
}

#[test]
fn batches_close_at_max_bytes() {
    let c = config();
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(20));
    let f = form(
        (1..=3).map(|n| item(n, "contacts", &big, 0)).collect(),
        &c,
        10_000,
    );
    let got: Vec<Vec<i64>> = f.units.iter().map(ids).collect();
    assert_eq!(
        got,
        vec![vec![1, 2], vec![3]],
        "{} bytes each, 64 at most",
        big.len()
    );
}

#[tokio::test]
async fn the_body_program_wraps_the_items() {
    let c = config();
    let b = c.routes["contacts"].destination.batch.as_ref().unwrap();
    let items = [
        item(1, "contacts", r#"{"id":"a"}"#, 0),
        item(2, "contacts", r#"{"id":"b"}"#, 0),
    ];
    assert_eq!(
        &body(b, &items, 0).await.unwrap()[..],
        br#"{"inputs":[{"id":"a"},{"id":"b"}]}"#
    );
    let bad = [item(3, "contacts", "not json", 0)];
    assert!(matches!(
        body(b, &bad, 0).await,
        Err(MapError::Items(why)) if why.contains("m3 is not JSON")
    ));
}

#[tokio::test]
async fn per_item_results_come_back_from_the_answer() {
    let c = config();
    let b = c.routes["contacts"].destination.batch.as_ref().unwrap();
    let items = [
        item(1, "contacts", r#"{"id":"a"}"#, 0),
        item(2, "contacts", r#"{"id":"b"}"#, 0),
        item(3, "contacts", r#"{"id":"c"}"#, 0),
    ];
    let answer = br#"{"errors":[{"id":"b","message":"email is invalid"}]}"#;
    assert_eq!(
        results(b, &items, 207, answer, 0).await.unwrap(),
        vec![None, Some("email is invalid".into()), None]
    );
    let wrong = results(b, &items[..1], 207, br#"{"errors":[{"id":"a"}]}"#, 0).await;
    assert_eq!(
        wrong.unwrap(),
        vec![None],
        "an error without a message names nothing"
    );
}

#[tokio::test]
async fn the_body_program_can_give_each_item_its_stable_key() {
    let c = config();
    let b = c.routes["keyed"].destination.batch.as_ref().unwrap();
    let items = [
        item(1, "keyed", r#"{"a":1}"#, 0),
        item(2, "keyed", r#"{"a":2}"#, 0),
    ];
    assert_eq!(
        &body(b, &items, 0).await.unwrap()[..],
        br#"{"inputs":[{"id":"k1","properties":{"a":1}},{"id":"k2","properties":{"a":2}}]}"#
    );
}

#[tokio::test]
async fn a_program_past_its_limits_is_an_overrun_not_an_item_error() {
    let slow = CONFIG
        .replace(
            "[credentials]",
            "[server]\njq_timeout = \"100ms\"\n\n[credentials]",
        )
        .replace("body = \"{inputs: .}\"", "body = \"last(range(infinite))\"")
        .replace(
            "body = \"{inputs: [range",
            "body = \"range(1e9), {inputs: [range",
        );
    let c = Config::parse(&slow, "test", Path::new("/tmp"), &|k| {
        (k == "K").then(|| "x".into())
    })
    .unwrap();
    let items = [item(1, "contacts", "{}", 0), item(2, "contacts", "{}", 0)];
    let b = c.routes["contacts"].destination.batch.as_ref().unwrap();
    assert!(matches!(
        body(b, &items, 0).await,
        Err(MapError::Overrun(why)) if why.contains("ran longer than 100ms")
    ));
    // Only the output cap stops this one, even behind other tests' programs.
    let patient = slow.replace("jq_timeout = \"100ms\"", "jq_timeout = \"60s\"");
    let c = Config::parse(&patient, "test", Path::new("/tmp"), &|k| {
        (k == "K").then(|| "x".into())
    })
    .unwrap();
    let b = c.routes["keyed"].destination.batch.as_ref().unwrap();
    assert!(matches!(
        body(b, &items, 0).await,
        Err(MapError::Overrun(why)) if why.contains("more than 10000 values")
    ));
}

#[test]
fn batch_keys_name_the_items_not_their_order() {
    let a = [item(1, "contacts", "{}", 0), item(2, "contacts", "{}", 0)];
    let b = [item(2, "contacts", "{}", 0), item(1, "contacts", "{}", 0)];
    assert_eq!(key(&a), key(&b));
    assert_ne!(key(&a), key(&a[..1]));
}
