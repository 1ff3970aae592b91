//! `ferry demo`: ferry on a throw-away SQLite store with the built-in
//! [`DEMO_TOML`] config, between two simulated systems running in the same
//! process: a shop ([`shop`]) sending signed order webhooks (some twice, some
//! for products the ERP does not know) and an ERP ([`erp`], a
//! [`Receiver`](super::receiver::Receiver) with a responder) that is sometimes
//! slow, rate-limited or unavailable and rejects unknown products. The ERP also
//! pushes stock levels back through the `erp-stock` API route, opening with a
//! sync larger than the shop's rate limit allows at once; the shop's API is
//! the Shopify-like sim ([`ShopifySim`]: a leaky bucket of 40 leaking 2 a
//! second), so ferry's pacing shows. At start the ERP also uploads its
//! customers as one bulk job to a HubSpot-like CRM ([`HubspotSim`]: batches
//! of 100, 100 calls per 10 s, per-item errors). A summary line every second
//! shows messages received, delivered, retrying, dead and duplicates absorbed.

mod erp;
mod shop;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::platform::hubspot::{HubspotConfig, HubspotSim};
use super::platform::shopify::{ShopifyConfig, ShopifySim};
use super::receiver::Receiver;
use crate::app::App;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, LogFormat};
use crate::store::{MessageFilter, RouteStats, State, Store};

/// The demo's configuration, an example of a real `ferry.toml`. `{listen}`,
/// `{erp_url}` and `{shop_url}` are filled in at start; the `env` names are
/// answered by [`demo_secret`], never by the process environment.
pub const DEMO_TOML: &str = r#"
[server]
listen = "{listen}"
data_dir = "data"
admin_token = { env = "FERRY_ADMIN_TOKEN" }
workers = 16

[credentials]
shop_webhook = { env = "SHOP_WEBHOOK_SECRET" }   # the shop signs its webhooks with this
erp_token    = { env = "ERP_TOKEN" }             # ferry's token toward the ERP
erp_client   = { env = "ERP_CLIENT_KEY" }        # the ERP's key toward ferry's API
shop_token   = { env = "SHOP_TOKEN" }            # ferry's access token toward the shop
crm_token    = { env = "CRM_TOKEN" }             # ferry's token toward the CRM

[systems.erp]
base_url = "{erp_url}/api"
auth = { kind = "bearer", credential = "erp_token" }
timeout = "5s"
retry = { max_attempts = 6, initial_delay = "1s", max_delay = "30s", max_age = "1h" }
rate_limit = { max_concurrency = 4 }

[systems.shop]
base_url = "{shop_url}/admin/api/{api_version}"
api_version = "2024-07"
auth = { kind = "header", name = "X-Shopify-Access-Token", credential = "shop_token" }
rate_limit = { per_second = 2, burst = 40, dialect = "shopify" }   # Shopify's leaky bucket

# The shop's order webhooks, into the ERP as sales orders.
[routes.shop-orders]
source = { kind = "webhook", scheme = "standard-webhooks", credentials = ["shop_webhook"], dedupe_window = "7d" }
destination = { system = "erp", method = "POST", path = "/sales-orders", headers = { "X-Source" = "ferry-demo" } }

[systems.crm]
base_url = "{crm_url}"
auth = { kind = "bearer", credential = "crm_token" }
rate_limit = { per_second = 10, burst = 10, dialect = "hubspot" }

# The ERP's customers, into the CRM's batch API as bulk jobs: 100 per call,
# and the CRM's per-item errors mapped back to the messages they belong to.
[routes.erp-contacts]
source = { kind = "api", credentials = ["erp_client"] }
destination = { system = "crm", path = "/crm/v3/objects/contacts", batch = { max_items = 100, max_wait = "1s", path = "/crm/v3/objects/contacts/batch/create", body = "{inputs: .}", results = "(.response.errors // []) as $e | [.request[] | .objectWriteTraceId as $id | [$e[] | select(any(.context.objectWriteTraceId[]?; . == $id)) | .message] | .[0]]" } }

# The ERP's stock levels, into the shop, through the mapping for the shop's
# API version ([`STOCK_MAPPING`], written beside the config).
[routes.erp-stock]
source = { kind = "api", credentials = ["erp_client"], idempotency_window = "24h" }
transform = "mappings/shopify/{api_version}/stock_level.jq"
destination = { system = "shop", method = "POST", path = "/inventory_levels/set.json" }
"#;

/// The demo's stock mapping (Shopify 2024-07): the ERP's
/// `{sku, location, available}` as Shopify's inventory call, with the
/// location's and item's ids looked up in tables the mapping carries.
pub const STOCK_MAPPING: &str = r#"# ERP stock level -> Shopify inventory_levels/set.json (2024-07)
{"main-warehouse": 655441491, "berlin-store": 655441492, "wien-store": 655441493,
 "lyon-store": 655441494, "utrecht-store": 655441495, "bologna-store": 655441496} as $locations
| {
    location_id: ($locations[.location] // .location),
    inventory_item_id: .sku,
    available: .available
  }
"#;

/// Writes the demo's mapping files under `dir` (the config's folder).
pub fn write_mappings(dir: &Path) -> anyhow::Result<()> {
    let folder = dir.join("mappings/shopify/2024-07");
    std::fs::create_dir_all(&folder).context("cannot write the demo's mappings")?;
    std::fs::write(folder.join("stock_level.jq"), STOCK_MAPPING)
        .context("cannot write the demo's mappings")
}

pub const ADMIN_TOKEN: &str = "demo-admin-token";
/// `whsec_` + base64("ferry-demo-shop-webhook-key").
pub const SHOP_WEBHOOK_SECRET: &str = "whsec_ZmVycnktZGVtby1zaG9wLXdlYmhvb2sta2V5";
pub const ERP_CLIENT_KEY: &str = "demo-erp-client-key";

/// The demo's fixed secrets, by the `env` names [`DEMO_TOML`] uses.
pub fn demo_secret(name: &str) -> Option<String> {
    let value = match name {
        "FERRY_ADMIN_TOKEN" => ADMIN_TOKEN,
        "SHOP_WEBHOOK_SECRET" => SHOP_WEBHOOK_SECRET,
        "ERP_TOKEN" => "demo-erp-token",
        "ERP_CLIENT_KEY" => ERP_CLIENT_KEY,
        "SHOP_TOKEN" => "demo-shop-token",
        "CRM_TOKEN" => "demo-crm-token",
        _ => return None,
    };
    Some(value.to_owned())
}

/// Logs for the CLI's simulations: `RUST_LOG` if set (ferry's usual logs),
/// otherwise errors only, on stderr, so the summary lines stay readable.
pub fn init_quiet_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        crate::telemetry::init_logs(LogFormat::Pretty);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    }
}

/// Parses config text whose secrets come from `lookup`, turning problems into
/// one readable error.
pub fn parse_config(
    text: &str,
    origin: &str,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    Config::parse(text, origin, dir, lookup).map_err(|e| match e {
        ConfigError::Invalid(problems) => anyhow::anyhow!(
            "the built-in {origin} config is invalid:\n{}",
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => other.into(),
    })
}

/// Runs the demo until Ctrl-C or for `seconds`.
pub async fn run(port: u16, seconds: Option<u64>) -> anyhow::Result<()> {
    init_quiet_logs();
    let dir = tempfile::Builder::new()
        .prefix("ferry-demo-")
        .tempdir()
        .context("cannot create a temporary data directory")?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let world = World::start(listener.local_addr()?).await?;
    let text = DEMO_TOML
        .replace("{listen}", &listener.local_addr()?.to_string())
        .replace("{erp_url}", &world.erp.url())
        .replace("{shop_url}", &world.apis.shop.url())
        .replace("{crm_url}", &world.apis.crm.url());
    write_mappings(dir.path())?;
    let config = parse_config(&text, "demo", dir.path(), &demo_secret)?;
    let data_dir = config.server.data_dir.clone();
    let app = App::build(config).await?;
    let state = app.state().clone();
    let operator = demo_operator(&state).await?;
    let shutdown = CancellationToken::new();
    let mut server = tokio::spawn(app.run(listener, shutdown.clone()));

    print_banner(&world, &data_dir, &operator);
    let sims = CancellationToken::new();
    let tasks = world.drive(&sims);
    let started = Instant::now();
    let server_done = watch(&world, &state, &mut server, started, seconds).await?;
    sims.cancel();
    let _ = tasks.await;
    let stats = state.store.stats().await.unwrap_or_default();
    let dead = dead_sample(&state.store).await;
    shutdown.cancel();
    let served = match server_done {
        Some(r) => r,
        None => server.await,
    };
    world.stop();
    print_final(started.elapsed(), &stats, &dead, &world);
    drop(state);
    let shown = dir.path().display().to_string();
    dir.close()
        .with_context(|| format!("cannot remove the demo data directory {shown}"))?;
    println!("Removed the demo data directory {shown}.");
    served.context("the ferry task panicked")??;
    Ok(())
}

type Served = Result<Result<(), crate::app::AppError>, tokio::task::JoinError>;

/// Prints a summary line every second until Ctrl-C, `seconds`, or the
/// server's end (then its result).
async fn watch(
    world: &World,
    state: &crate::app::AppState,
    server: &mut tokio::task::JoinHandle<Result<(), crate::app::AppError>>,
    started: Instant,
    seconds: Option<u64>,
) -> anyhow::Result<Option<Served>> {
    let stop_after = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_after);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let stats = state.store.stats().await.unwrap_or_default();
                println!("{}", summary_line(started.elapsed(), &stats, world));
            }
            r = tokio::signal::ctrl_c() => {
                r.context("cannot listen for Ctrl-C")?;
                println!("\nCtrl-C: stopping.");
                return Ok(None);
            }
            _ = &mut stop_after => return Ok(None),
            r = &mut *server => return Ok(Some(r)),
        }
    }
}

/// The simulated platforms' APIs ferry delivers to.
struct Apis {
    shop: ShopifySim,
    crm: HubspotSim,
}

/// Everything around ferry in the demo: the simulated ERP and platforms,
/// and what the simulated senders counted.
struct World {
    /// ferry's own address, for the senders and the printed commands.
    base: String,
    erp: Receiver,
    erp_stats: Arc<erp::ErpStats>,
    shop_stats: Arc<shop::ShopStats>,
    apis: Apis,
}

impl World {
    async fn start(ferry: std::net::SocketAddr) -> anyhow::Result<World> {
        let erp_stats = Arc::new(erp::ErpStats::default());
        let erp = Receiver::start().await?;
        erp.forget_requests();
        erp.set_responder(erp::responder(erp_stats.clone()));
        let apis = Apis {
            shop: ShopifySim::start(Clock::System, ShopifyConfig::default()).await?,
            crm: HubspotSim::start(Clock::System, HubspotConfig::default()).await?,
        };
        apis.shop.forget_requests();
        apis.crm.forget_requests();
        Ok(World {
            base: format!("http://{ferry}"),
            erp,
            erp_stats,
            shop_stats: Arc::new(shop::ShopStats::default()),
            apis,
        })
    }

    /// Starts the simulated shop's webhooks, the ERP's stock pushes and its
    /// contact sync; the first two stop with `sims`.
    fn drive(&self, sims: &CancellationToken) -> impl Future<Output = ()> + use<> {
        let base = &self.base;
        let shop_task = tokio::spawn(shop::run(
            format!("{base}/in/shop-orders"),
            self.shop_stats.clone(),
            sims.clone(),
        ));
        let stock_task = tokio::spawn(erp::push_stock(
            format!("{base}/api/v1/routes/erp-stock/messages"),
            sims.clone(),
        ));
        tokio::spawn(erp::sync_contacts(format!(
            "{base}/api/v1/routes/erp-contacts/bulk"
        )));
        async move {
            let _ = tokio::join!(shop_task, stock_task);
        }
    }

    fn stop(&self) {
        self.erp.stop();
        self.apis.shop.stop();
        self.apis.crm.stop();
    }
}

/// The console's demo operator, with a password made for this run (the
/// store is thrown away at exit): (name, password).
async fn demo_operator(state: &crate::state::AppState) -> anyhow::Result<(String, String)> {
    let password = crate::access::random_token()[..16].to_owned();
    let phc = crate::access::password::hash(&password)?;
    let account = crate::store::Account {
        name: DEMO_OPERATOR.to_owned(),
        role: crate::store::Role::Operator,
        created_ms: state.clock.now_ms(),
        created_by: "ferry demo".to_owned(),
    };
    state
        .store
        .add_account(crate::store::AccountKind::User, account, &phc)
        .await?;
    Ok((DEMO_OPERATOR.to_owned(), password))
}

/// The demo's console user (an operator).
pub const DEMO_OPERATOR: &str = "demo";

fn print_banner(world: &World, data_dir: &Path, (user, password): &(String, String)) {
    let (base, erp, apis) = (&world.base, &world.erp, &world.apis);
    println!("ferry demo: a simulated shop sends order webhooks through ferry to a simulated ERP;");
    println!(
        "the ERP sends stock levels back through ferry's API. Built-in config: ferry::sim::demo::DEMO_TOML."
    );
    println!();
    println!("  ferry listener   {base}");
    println!(
        "  console          {base}/console  (sign in as {user}, password {password}: an operator for this run)"
    );
    println!(
        "  shop webhooks    POST {base}/in/shop-orders  (Standard Webhooks, secret {SHOP_WEBHOOK_SECRET})"
    );
    println!(
        "  ERP API          curl -s -X POST {base}/api/v1/routes/erp-stock/messages -H 'Authorization: Bearer {ERP_CLIENT_KEY}' -H 'Idempotency-Key: try-1' -H 'Content-Type: application/json' -d '{{\"sku\":\"TEA-EARL-250\",\"available\":12}}'"
    );
    println!(
        "  admin API        curl -s -H 'Authorization: Bearer {ADMIN_TOKEN}' '{base}/admin/api/v1/messages?state=dead'"
    );
    println!("  metrics          {base}/metrics");
    println!(
        "  simulated ERP    {}/api/sales-orders  (slow, 429 Retry-After: 2, 503, 422 for unknown SKUs)",
        erp.url()
    );
    println!(
        "  simulated shop   {}/admin/api/2024-07/inventory_levels/set.json  (Shopify-like: bucket of 40, leaks 2/s, 429 when full)",
        apis.shop.url()
    );
    println!(
        "  simulated CRM    {}/crm/v3/objects/contacts/batch/create  (HubSpot-like: 100 inputs a call, 100 calls per 10 s, per-item errors)",
        apis.crm.url()
    );
    println!(
        "  data             {}  (SQLite in a temporary directory, removed at exit)",
        data_dir.display()
    );
    println!();
    println!(
        "Stop with Ctrl-C. Every second: the shop-orders route's messages by state, then the stock route and the contact sync."
    );
}

fn route<'a>(stats: &'a [RouteStats], name: &str) -> Option<&'a RouteStats> {
    stats.iter().find(|s| s.route == name)
}

fn total(s: &RouteStats) -> u64 {
    s.queued + s.delivering + s.retrying + s.delivered + s.dead + s.discarded + s.skipped
}

fn summary_line(elapsed: Duration, stats: &[RouteStats], world: &World) -> String {
    let (shop, erp, apis) = (&world.shop_stats, &world.erp_stats, &world.apis);
    let empty = RouteStats::default();
    let o = route(stats, "shop-orders").unwrap_or(&empty);
    let st = route(stats, "erp-stock").unwrap_or(&empty);
    let c = route(stats, "erp-contacts").unwrap_or(&empty);
    format!(
        "[{:>4}s] orders: received {:>4}  delivered {:>4}  queued {:>2}  retrying {:>2}  dead {:>3}  duplicates absorbed {:>3} | stock: {}/{} delivered, shop 429s {} | contacts: {}/{} delivered, {} refused, {} CRM calls | ERP answered: {}",
        elapsed.as_secs(),
        total(o),
        o.delivered,
        o.queued + o.delivering,
        o.retrying,
        o.dead,
        shop.duplicates_absorbed(),
        st.delivered,
        total(st),
        apis.shop.counters().throttled,
        c.delivered,
        total(c),
        c.dead,
        apis.crm.counters().requests,
        erp.describe(),
    )
}

/// A few dead messages with ferry's explanation, read before the store closes.
async fn dead_sample(store: &Store) -> Vec<(String, String)> {
    let filter = MessageFilter {
        state: Some(State::Dead),
        limit: Some(3),
        ..Default::default()
    };
    store
        .list(&filter)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.id.into_string(), m.last_explanation.unwrap_or_default()))
        .collect()
}

fn print_final(elapsed: Duration, stats: &[RouteStats], dead: &[(String, String)], world: &World) {
    let (shop, erp, apis, base) = (
        &world.shop_stats,
        &world.erp_stats,
        &world.apis,
        &world.base,
    );
    let empty = RouteStats::default();
    let o = route(stats, "shop-orders").unwrap_or(&empty);
    let st = route(stats, "erp-stock").unwrap_or(&empty);
    println!();
    println!("Final, after {} s:", elapsed.as_secs());
    println!(
        "  shop sent        {} order webhooks, {} of them a second time (same webhook-id); ferry refused {}",
        shop.sent(),
        shop.resent(),
        shop.refused()
    );
    println!(
        "  shop-orders      received {}, delivered {}, still pending {} (retrying {}), dead {}, duplicates absorbed {}",
        total(o),
        o.delivered,
        o.pending(),
        o.retrying,
        o.dead,
        shop.duplicates_absorbed()
    );
    let api = apis.shop.counters();
    println!(
        "  erp-stock        received {}, delivered {}; the shop's API answered {} requests, {} with 429 (bucket full)",
        total(st),
        st.delivered,
        api.requests,
        api.throttled
    );
    let c = route(stats, "erp-contacts").unwrap_or(&empty);
    println!(
        "  erp-contacts     a bulk job of {} contacts: delivered {}, refused by the CRM {}, pending {}; {} CRM batch calls",
        total(c),
        c.delivered,
        c.dead,
        c.pending(),
        apis.crm.counters().requests
    );
    println!("  ERP answered     {}", erp.describe());
    if !dead.is_empty() {
        println!("  why messages died (latest {}):", dead.len());
        for (id, why) in dead {
            println!("    {id}  {why}");
        }
    }
    println!(
        "  While a demo runs, every dead message and its attempts: curl -s -H 'Authorization: Bearer {ADMIN_TOKEN}' '{base}/admin/api/v1/messages?state=dead'"
    );
}
