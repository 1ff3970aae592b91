//! The vault over a real SQLite store: what `open` and `check` refuse,
//! which versions `accepted` offers at a given time, and uses written back
//! by `refresh`.

use std::path::Path;

use super::*;

const T0: i64 = 1_767_225_600_000;

fn config(credentials: &str) -> Config {
    let text = format!("[credentials]\n{credentials}\n");
    let env = |k: &str| (k == "E").then(|| "env-value".to_owned());
    Config::parse(&text, "t", Path::new("."), &env).unwrap()
}

async fn store_with(key: &MasterKey, stored: &[(&str, &str)]) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).unwrap();
    unlock(&store, key).await.unwrap();
    for (name, value) in stored {
        put(&store, key, name, value, T0, None, Supersede::All)
            .await
            .unwrap();
    }
    (store, dir)
}

fn key() -> (String, MasterKey) {
    let text = MasterKey::generate().to_string();
    let k = MasterKey::parse(&text).unwrap();
    (text, k)
}

#[tokio::test]
async fn open_needs_the_key_and_every_named_credential() {
    let (text, k) = key();
    let (store, _dir) = store_with(&k, &[("hook", "v1")]).await;
    let clock = Clock::manual(T0);
    let none = config("a = { env = \"E\" }");
    let v = Vault::open(&none, store.clone(), clock.clone(), Err(KeyError::Missing)).await;
    assert!(v.is_ok(), "no store credential: no key needed");
    assert!(matches!(
        v.unwrap().check(&config("h = { store = \"hook\" }")),
        Err(VaultError::Closed)
    ));
    let uses = config("h = { store = \"hook\" }\nm = { store = \"missing\" }");
    let missing_key =
        Vault::open(&uses, store.clone(), clock.clone(), Err(KeyError::Missing)).await;
    assert!(matches!(
        missing_key,
        Err(VaultError::Key(KeyError::Missing))
    ));
    let wrong = Vault::open(&uses, store.clone(), clock.clone(), Ok(key().1)).await;
    assert!(matches!(wrong, Err(VaultError::Key(KeyError::Wrong))));
    let unknown = Vault::open(&uses, store.clone(), clock.clone(), MasterKey::parse(&text)).await;
    match unknown {
        Err(VaultError::Unknown { config, store }) => {
            assert_eq!((config.as_str(), store.as_str()), ("m", "missing"))
        }
        other => panic!("{:?}", other.err()),
    }
    let ok = config("h = { store = \"hook\" }");
    assert!(
        Vault::open(&ok, store, clock, MasterKey::parse(&text))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn accepted_offers_every_version_inside_its_grace_and_notes_uses() {
    let (_, k) = key();
    let (store, _dir) = store_with(&k, &[("hook", "v1")]).await;
    let clock = Clock::manual(T0);
    let vault = Vault::unlocked(store.clone(), clock.clone(), k)
        .await
        .unwrap();
    let cfg = config("h = { store = \"hook\" }\ne = { env = \"E\" }");
    let values = |now: i64| -> Vec<String> {
        let snapshot = vault.snapshot();
        accepted(&cfg, &snapshot, "h", now)
            .iter()
            .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(values(T0), ["v1"]);
    let (k, until_ms) = (vault.inner.as_ref().unwrap(), T0 + 60_000);
    put(
        &store,
        &k.key,
        "hook",
        "v2",
        T0,
        None,
        Supersede::After { until_ms },
    )
    .await
    .unwrap();
    assert_eq!(values(T0), ["v1"], "not before the next refresh");
    assert!(vault.refresh().await.unwrap());
    assert!(!vault.refresh().await.unwrap(), "nothing new: nothing read");
    assert_eq!(
        values(T0 + 59_999),
        ["v2", "v1"],
        "newest first, both in the grace"
    );
    assert_eq!(
        values(T0 + 60_000),
        ["v2"],
        "the old one refused at the grace's end"
    );
    assert_eq!(vault.snapshot().newest("hook").unwrap().version, 2);
    let snapshot = vault.snapshot();
    let env: Vec<_> = accepted(&cfg, &snapshot, "e", T0)
        .iter()
        .map(|a| a.value.to_vec())
        .collect();
    assert_eq!(env, [b"env-value".to_vec()]);
    assert!(accepted(&cfg, &snapshot, "unknown", T0).is_empty());
    // a use is written back on the next beat, once
    snapshot.newest("hook").unwrap().used(T0 + 5);
    vault.refresh().await.unwrap();
    let versions = store.credential_versions().await.unwrap();
    let used: Vec<_> = versions
        .iter()
        .map(|v| (v.version, v.last_used_ms))
        .collect();
    assert_eq!(used, [(1, None), (2, Some(T0 + 5))]);
}
