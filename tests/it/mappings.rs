//! Body mappings end to end: jq mapping files per API version (the repo's
//! `examples/mappings`, golden-tested in `cli`), numbers sent as written,
//! `emits = "request"` filling the path and headers, `skipped`, a mapping
//! error that is fixed, reloaded and retried, and shadow runs of the next
//! API version counted beside live delivery. The app runs from a config
//! file (secrets in files) so that it can reload it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry::app::{App, Reloader};
use ferry::clock::Clock;
use ferry::config::Config;
use ferry::deliver::Deliverer;
use ferry::reload::Trigger;
use ferry::sim::receiver::Receiver;
use ferry::store::{MessageFilter, State, Store};
use tokio_util::sync::CancellationToken;

use crate::common::*;

pub struct MapApp {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub store: Store,
    pub deliverer: Arc<Deliverer>,
    pub reloader: Reloader,
    pub receiver: Receiver,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for MapApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Copies the repo's example mappings into `dir/mappings`.
pub fn copy_examples(dir: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mappings");
    copy_tree(&from, &dir.join("mappings"));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The test's config: `erp` at `api_version` v1 (plus `erp_extra`), routes
/// `orders` (webhook, the Shopify order mapping), `stock` (API, the
/// Shopify stock mapping toward `shop`) and `contacts` (API, the HubSpot
/// request mapping toward `crm`), plus `extra`.
pub fn map_config(receiver: &str, erp_extra: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "data"
admin_token = {{ file = "secrets/admin" }}

[credentials]
whsec = {{ file = "secrets/whsec" }}
erp_client = {{ file = "secrets/erp_client" }}

[systems.erp]
base_url = "{receiver}/erp/{{api_version}}"
api_version = "v1"
retry = {{ max_attempts = 3, initial_delay = "1s", max_delay = "10s", max_age = "1h" }}
{erp_extra}

[systems.shop]
base_url = "{receiver}/admin/api/{{api_version}}"
api_version = "2024-07"

[systems.crm]
base_url = "{receiver}/hubspot"
api_version = "v3"

[routes.orders]
source = {{ kind = "webhook", scheme = "standard-webhooks", credentials = ["whsec"] }}
transform = "mappings/erp/{{api_version}}/shopify_order.jq"
destination = {{ system = "erp", path = "/sales_orders" }}

[routes.stock]
source = {{ kind = "api", credentials = ["erp_client"] }}
transform = "mappings/shopify/{{api_version}}/stock_level.jq"
destination = {{ system = "shop", path = "/inventory_levels/set.json" }}

[routes.contacts]
source = {{ kind = "api", credentials = ["erp_client"] }}
transform = {{ file = "mappings/hubspot/{{api_version}}/contact.jq", emits = "request" }}
destination = {{ system = "crm", method = "PATCH", path = "/crm/v3/objects/contacts/{{contact_id}}" }}
{extra}
"#
    )
}

impl MapApp {
    pub async fn start(erp_extra: &str, extra: &str) -> MapApp {
        let receiver = Receiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        for (name, value) in [
            ("admin", ADMIN_TOKEN),
            ("whsec", WHSEC),
            ("erp_client", ERP_KEY),
        ] {
            std::fs::write(dir.path().join("secrets").join(name), value).unwrap();
        }
        let file = dir.path().join("ferry.toml");
        std::fs::write(&file, map_config(&receiver.url(), erp_extra, extra)).unwrap();
        let config = Config::load(&file).expect("the test config loads");
        let store = Store::open_sqlite(&dir.path().join("data")).unwrap();
        let mut app = App::with_parts(config, store.clone(), Clock::manual(T0)).unwrap();
        app.reload_from(&file).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (deliverer, reloader) = (app.deliverer(), app.reloader());
        let shutdown = CancellationToken::new();
        let sd = shutdown.clone();
        tokio::spawn(async move { app.serve(listener, sd).await });
        MapApp {
            base,
            dir,
            file,
            store,
            deliverer,
            reloader,
            receiver,
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn sample(&self, mapping: &str, name: &str) -> String {
        let p = self
            .dir
            .path()
            .join(format!("mappings/{mapping}.golden/{name}.in.json"));
        std::fs::read_to_string(p).unwrap()
    }

    /// The golden output, compact (as ferry writes it).
    pub fn golden(&self, mapping: &str, name: &str) -> String {
        let p = self
            .dir
            .path()
            .join(format!("mappings/{mapping}.golden/{name}.out.json"));
        ferry::transform::diff::compact(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    pub async fn webhook(&self, id: &str, body: &str) {
        let r = post_signed(&self.http, &self.base, "orders", id, body, T0 / 1000, WHSEC).await;
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
    }

    pub async fn api(&self, route: &str, body: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/routes/{route}/messages", self.base))
            .bearer_auth(ERP_KEY)
            .header("idempotency-key", uuid::Uuid::now_v7().to_string())
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().await.unwrap();
        v["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned()
    }

    pub async fn drain(&self) {
        while let ferry::deliver::Step::Worked(_) = self.deliverer.run_once().await.unwrap() {}
    }

    pub async fn admin(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}/admin/api/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.base)).send().await;
        r.unwrap().text().await.unwrap()
    }

    pub async fn in_state(&self, state: State) -> Vec<ferry::store::MessageSummary> {
        let filter = MessageFilter {
            state: Some(state),
            ..MessageFilter::default()
        };
        self.store.list(&filter).await.unwrap()
    }

    /// Writes `file` (relative to the config's folder) by rename, as editors save.
    pub fn save(&self, file: &str, text: &str) {
        let path = self.dir.path().join(file);
        let tmp = path.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
}

#[tokio::test]
async fn mapped_bodies_go_out_with_their_numbers_as_written() {
    let t = MapApp::start("", "").await;
    t.webhook("ord_1", &t.sample("erp/v1/shopify_order", "paid_order"))
        .await;
    t.webhook(
        "ord_2",
        &t.sample("erp/v1/shopify_order", "guest_without_shipping"),
    )
    .await;
    t.api("stock", &t.sample("shopify/2024-07/stock_level", "big_ids"))
        .await;
    t.drain().await;
    let got = t.receiver.received();
    let body = |path: &str| {
        let r: Vec<_> = got.iter().filter(|r| r.path == path).collect();
        r.iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect::<Vec<_>>()
    };
    let orders = body("/erp/v1/sales_orders");
    assert_eq!(orders.len(), 2, "{got:?}");
    assert!(orders.contains(&t.golden("erp/v1/shopify_order", "paid_order")));
    assert!(orders.contains(&t.golden("erp/v1/shopify_order", "guest_without_shipping")));
    // 9007199254740993 is not a double: it went out exactly, with 12.50.
    assert!(
        orders
            .iter()
            .any(|o| o.contains(r#""external_id":9007199254740993"#)
                && o.contains(r#""unit_price":"12.50""#))
    );
    assert_eq!(
        body("/admin/api/2024-07/inventory_levels/set.json"),
        [t.golden("shopify/2024-07/stock_level", "big_ids")]
    );
}

#[tokio::test]
async fn a_request_mapping_fills_the_path_and_adds_headers() {
    let t = MapApp::start("", "").await;
    t.api(
        "contacts",
        &t.sample("hubspot/v3/contact", "lead_with_big_id"),
    )
    .await;
    t.drain().await;
    let got = t.receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.path, "/hubspot/crm/v3/objects/contacts/9007199254740993");
    assert_eq!(r.headers["x-ferry-source"], "erp");
    assert!(r.idempotency_key().is_some());
    let golden: serde_json::Value =
        serde_json::from_str(&t.golden("hubspot/v3/contact", "lead_with_big_id")).unwrap();
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains(r#""credit_limit":"1500.50""#), "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        golden["body"]
    );
}

#[tokio::test]
async fn no_output_skips_the_delivery_visibly() {
    let t = MapApp::start("", "").await;
    let id = t
        .api(
            "stock",
            &t.sample("shopify/2024-07/stock_level", "not_stocked"),
        )
        .await;
    t.drain().await;
    assert_eq!(t.receiver.count(), 0);
    let skipped = t.in_state(State::Skipped).await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id.as_str(), id);
    let m = t.admin(&format!("/messages/{id}")).await;
    assert_eq!(m["state"], "skipped");
    assert!(
        m["attempts"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("nothing to send")
    );
    let stats = t.admin("/routes").await;
    let stock = stats["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "stock")
        .unwrap();
    assert_eq!(stock["skipped"], 1);
}

#[tokio::test]
async fn a_failing_mapping_is_dead_then_fixed_reloaded_and_retried() {
    let t = MapApp::start("", "").await;
    // v1's mapping, broken at run time for orders without line items.
    let mapping = "mappings/erp/v1/shopify_order.jq";
    t.save(
        mapping,
        "{external_id: .id, first_sku: (.line_items[0].sku | ascii_downcase)}",
    );
    let last = t.reloader.reload(Trigger::Asked).await.unwrap();
    assert_eq!(last.result, "applied", "{last:?}");
    t.webhook("ord_bad", r#"{"id":9007199254740993,"line_items":[]}"#)
        .await;
    t.drain().await;
    let dead = t.in_state(State::Dead).await;
    assert_eq!(dead.len(), 1, "{:?}", t.receiver.received());
    assert_eq!(dead[0].last_class.map(|c| c.as_str()), Some("mapping"));
    let why = dead[0].last_explanation.clone().unwrap();
    assert!(why.contains("shopify_order.jq failed"), "{why}");
    assert!(why.contains(r#"(input: {"id":9007199254740993"#), "{why}");
    assert_eq!(t.receiver.count(), 0);

    // Fixed in the file, reloaded, retried: delivered with the new body.
    t.save(
        mapping,
        "{external_id: .id, first_sku: (.line_items[0].sku // \"none\")}",
    );
    let last = t.reloader.reload(Trigger::Asked).await.unwrap();
    assert_eq!(last.result, "applied", "{last:?}");
    let id = dead[0].id.to_string();
    let r = t
        .http
        .post(format!("{}/admin/api/v1/messages/{id}/retry", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.drain().await;
    let got = t.receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].body,
        r#"{"external_id":9007199254740993,"first_sku":"none"}"#
    );
    assert_eq!(t.in_state(State::Delivered).await.len(), 1);
}

#[tokio::test]
async fn shadow_mode_counts_differences_while_the_live_version_delivers() {
    let t = MapApp::start(r#"next_api_version = "v2""#, "").await;
    for (i, name) in ["paid_order", "guest_without_shipping", "paid_order"]
        .iter()
        .enumerate()
    {
        t.webhook(&format!("ord_{i}"), &t.sample("erp/v1/shopify_order", name))
            .await;
    }
    t.drain().await;
    // Live is v1: every request went to v1 with v1's body.
    let got = t.receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.path == "/erp/v1/sales_orders"));
    assert!(
        got.iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("tags"))
    );
    let shadow = t.admin("/routes/orders/shadow").await;
    assert_eq!(shadow["enabled"], true);
    assert_eq!(shadow["next_api_version"], "v2");
    assert_eq!(shadow["compared"], 3, "{shadow}");
    assert_eq!(shadow["differing"], 3);
    let examples = shadow["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    // The three went out concurrently: the examples' order is theirs.
    let changes: Vec<&str> = examples
        .iter()
        .flat_map(|e| e["changes"].as_array().unwrap().iter())
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changes.contains(&r#"$.lines[0].unit_price: "199.00" → 199.00 (string → number)"#),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("+ $.tags")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("- $.note")),
        "{changes:?}"
    );
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_shadow_compared_total{route="orders"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"ferry_shadow_differences_total{route="orders"} 3"#));
    // A route without a next version has no shadow.
    assert_eq!(t.admin("/routes/stock/shadow").await["enabled"], false);
}

#[tokio::test]
async fn an_invalid_config_is_refused_and_the_running_one_stays() {
    let t = MapApp::start("", "").await;
    let before = t.admin("/config").await;
    let hash = before["hash"].as_str().unwrap().to_owned();
    // A syntax error in a mapping: refused, with the file, line and column.
    t.save("mappings/erp/v1/shopify_order.jq", "{\n  id: (.id\n}\n");
    let last = t.reloader.reload(Trigger::Files).await.unwrap();
    assert_eq!(last.result, "refused");
    let reason = last.reason.unwrap();
    assert!(reason.contains("routes.orders.transform"), "{reason}");
    assert!(reason.contains("shopify_order.jq:3:1"), "{reason}");
    let now = t.admin("/config").await;
    assert_eq!(now["hash"], hash.as_str());
    assert_eq!(now["last_reload"]["result"], "refused");
    // The same content again is not tried again by a file event.
    assert!(t.reloader.reload(Trigger::Files).await.is_none());
    // The old mapping still delivers.
    t.webhook("ord_1", &t.sample("erp/v1/shopify_order", "paid_order"))
        .await;
    t.drain().await;
    assert_eq!(
        t.receiver.received()[0].body,
        t.golden("erp/v1/shopify_order", "paid_order")
    );
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"ferry_config_reloads_total{result="refused"} 1"#),
        "{metrics}"
    );

    // A setting that needs a restart is reported, the rest applied.
    let text = std::fs::read_to_string(&t.file).unwrap();
    t.save("mappings/erp/v1/shopify_order.jq", "{id}");
    t.save(
        "ferry.toml",
        &text.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""),
    );
    let last = t.reloader.reload(Trigger::Files).await.unwrap();
    assert_eq!(last.result, "applied", "{last:?}");
    assert_eq!(last.restart_needed, ["listen"]);
    let now = t.admin("/config").await;
    assert_ne!(now["hash"], hash.as_str());
    assert_eq!(now["restart_needed"][0], "listen");
}

#[tokio::test]
async fn breaker_state_carries_across_a_reload_by_system_name() {
    let breaker = r#"circuit_breaker = { failure_ratio = 0.5, window = "10s", min_requests = 3, open_for = "30s" }"#;
    let t = MapApp::start(breaker, "").await;
    t.receiver
        .set_default(ferry::sim::receiver::Reply::status(503));
    for i in 0..3 {
        t.webhook(
            &format!("ord_{i}"),
            &t.sample("erp/v1/shopify_order", "paid_order"),
        )
        .await;
    }
    t.drain().await;
    let circuit = |v: serde_json::Value| {
        v["systems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "erp")
            .unwrap()["circuit"]["state"]
            .clone()
    };
    assert_eq!(circuit(t.admin("/systems").await), "open");
    // A reload that adds a system and changes erp's timeout keeps erp's breaker open.
    let text = std::fs::read_to_string(&t.file).unwrap().replace(
        "[systems.crm]",
        "[systems.extra]\nbase_url = \"http://127.0.0.1:9\"\n\n[systems.crm]",
    );
    t.save(
        "ferry.toml",
        &text.replace(breaker, &format!("{breaker}\ntimeout = \"3s\"")),
    );
    let last = t.reloader.reload(Trigger::Files).await.unwrap();
    assert_eq!(last.result, "applied", "{last:?}");
    let systems = t.admin("/systems").await;
    assert_eq!(circuit(systems.clone()), "open", "{systems}");
    assert!(
        systems["systems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "extra")
    );
    assert_eq!(
        t.deliverer.config().systems["erp"].timeout,
        std::time::Duration::from_secs(3)
    );
}
