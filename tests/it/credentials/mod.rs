//! The encrypted credential store end to end: the CLI (`cli`), rotations
//! reaching a running app while webhooks flow (`rotation`), and outbound
//! Standard Webhooks signatures with every live version (`signing`).

pub mod cli;
mod leak;
mod rotation;
mod signing;

use ferry::store::{Store, Supersede};
use ferry::vault::MasterKey;

use crate::common::*;

/// An app on a fresh SQLite store holding `stored` (name, value) under
/// master key `key`, started as `App::build` does (through `Vault::open`).
pub async fn app_with_store(key: &str, stored: &[(&str, &str)], opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).unwrap();
    // The store's folder must outlive the app; the test process ends soon.
    std::mem::forget(dir);
    let mk = MasterKey::parse(key).unwrap();
    ferry::vault::unlock(&store, &mk).await.unwrap();
    for (name, value) in stored {
        ferry::vault::put(&store, &mk, name, value, T0, None, Supersede::All)
            .await
            .unwrap();
    }
    app_on(store, key, opts).await
}

/// An app on `store` (another instance, or a restart), opened with `key`.
pub async fn app_on(store: Store, key: &str, opts: Options) -> TestApp {
    TestApp::spawn_with(Options {
        store: Some(store),
        master_key: Some(key.to_owned()),
        ..opts
    })
    .await
}
