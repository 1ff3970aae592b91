//! The store contract for the credential store: versions added and
//! superseded (at once, or after a grace window), the generation every
//! change bumps, the master key's check value stored once, coalesced "last
//! used" times, and removal.

use ferry::store::*;

use super::*;

fn version(name: &str, version: i64, at: i64, supersede: Supersede) -> NewVersion {
    NewVersion {
        name: name.into(),
        version,
        sealed: format!("sealed {name} v{version}").into_bytes(),
        created_ms: at,
        expires_ms: Some(at + 90 * 86_400_000),
        supersede,
    }
}

async fn credentials(store: Store) {
    assert!(store.credential_versions().await.unwrap().is_empty());
    let g0 = store.credential_generation().await.unwrap();

    // the key check value: the first one stays
    let first = store
        .credential_key_check(b"check-1".to_vec())
        .await
        .unwrap();
    assert_eq!(first, b"check-1");
    let again = store
        .credential_key_check(b"check-2".to_vec())
        .await
        .unwrap();
    assert_eq!(
        again, b"check-1",
        "a second key never replaces the first's check"
    );

    // a rotation needs something to rotate
    let grace = Supersede::After {
        until_ms: T0 + 1_000,
    };
    assert_eq!(
        store
            .put_credential(version("hook", 1, T0, grace))
            .await
            .unwrap(),
        Put::Missing
    );
    assert_eq!(
        store
            .put_credential(version("hook", 1, T0, Supersede::All))
            .await
            .unwrap(),
        Put::Done
    );
    let g1 = store.credential_generation().await.unwrap();
    assert!(g1 > g0, "a change bumps the generation");
    // the number must be the next one
    for taken in [1, 3] {
        assert_eq!(
            store
                .put_credential(version("hook", taken, T0, grace))
                .await
                .unwrap(),
            Put::Conflict
        );
    }
    assert_eq!(
        store.credential_generation().await.unwrap(),
        g1,
        "a refused put changes nothing"
    );

    // rotate: v1 retires at the grace's end, v2 is the newest
    let grace = Supersede::After {
        until_ms: T0 + 60_000,
    };
    assert_eq!(
        store
            .put_credential(version("hook", 2, T0 + 10, grace))
            .await
            .unwrap(),
        Put::Done
    );
    let vs = store.credential_versions().await.unwrap();
    assert_eq!(vs.len(), 2);
    assert_eq!((vs[0].version, vs[0].retire_ms), (1, Some(T0 + 60_000)));
    assert_eq!((vs[1].version, vs[1].retire_ms), (2, None));
    assert_eq!(vs[1].sealed, b"sealed hook v2");
    assert_eq!(vs[1].expires_ms, Some(T0 + 10 + 90 * 86_400_000));
    // a second rotation inside the grace keeps v1's earlier end
    let longer = Supersede::After {
        until_ms: T0 + 120_000,
    };
    store
        .put_credential(version("hook", 3, T0 + 20, longer))
        .await
        .unwrap();
    let vs = store.credential_versions().await.unwrap();
    let retire: Vec<_> = vs.iter().map(|v| (v.version, v.retire_ms)).collect();
    assert_eq!(
        retire,
        [(1, Some(T0 + 60_000)), (2, Some(T0 + 120_000)), (3, None)]
    );
    // a rotation after v1's grace ended deletes it
    let later = Supersede::After {
        until_ms: T0 + 200_000,
    };
    store
        .put_credential(version("hook", 4, T0 + 60_000, later))
        .await
        .unwrap();
    let numbers: Vec<_> = store
        .credential_versions()
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [2, 3, 4]);

    // last used: raised, never lowered, and no generation bump
    let g = store.credential_generation().await.unwrap();
    store
        .credentials_used(vec![
            ("hook".into(), 4, T0 + 5_000),
            ("hook".into(), 3, T0 + 7),
        ])
        .await
        .unwrap();
    store
        .credentials_used(vec![("hook".into(), 4, T0 + 100), ("nope".into(), 1, T0)])
        .await
        .unwrap();
    store.credentials_used(vec![]).await.unwrap();
    let used: Vec<_> = store
        .credential_versions()
        .await
        .unwrap()
        .iter()
        .map(|v| (v.version, v.last_used_ms))
        .collect();
    assert_eq!(used, [(2, None), (3, Some(T0 + 7)), (4, Some(T0 + 5_000))]);
    assert_eq!(store.credential_generation().await.unwrap(), g);

    // set replaces every version of a name; other names are untouched
    store
        .put_credential(version("api", 1, T0, Supersede::All))
        .await
        .unwrap();
    store
        .put_credential(version("hook", 5, T0 + 70_000, Supersede::All))
        .await
        .unwrap();
    let all: Vec<_> = store
        .credential_versions()
        .await
        .unwrap()
        .iter()
        .map(|v| (v.name.clone(), v.version, v.retire_ms))
        .collect();
    assert_eq!(all, [("api".into(), 1, None), ("hook".into(), 5, None)]);

    // remove
    let g = store.credential_generation().await.unwrap();
    assert!(store.remove_credential("hook").await.unwrap());
    assert!(!store.remove_credential("hook").await.unwrap());
    assert!(store.credential_generation().await.unwrap() > g);
    let names: Vec<_> = store
        .credential_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["api"]);
}

#[tokio::test]
async fn credentials_on_sqlite() {
    on_sqlite(credentials).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_on_postgres() {
    on_postgres("credentials_on_postgres", credentials).await;
}

/// The right to rotate a credential: on PostgreSQL one holder at a time per
/// name (instances, and connections of one instance, take turns; a lock
/// dropped without release frees the name too); SQLite has one instance,
/// whose own single flight suffices, so it never waits.
async fn rotation_lock(store: Store) {
    let first = store.credential_lock("hs_refresh").await.unwrap();
    let other = store.credential_lock("another").await.unwrap();
    other.release().await;
    let s = store.clone();
    let mut waiter = tokio::spawn(async move { s.credential_lock("hs_refresh").await.unwrap() });
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut waiter).await;
    match &store {
        Store::Postgres(_) => assert!(early.is_err(), "a second holder waits for the first"),
        Store::Sqlite(_) => assert!(early.is_ok(), "one instance: no wait"),
    }
    first.release().await;
    let second = match early {
        Ok(done) => done.unwrap(),
        Err(_) => waiter.await.unwrap(),
    };
    // dropped, not released: the name is free again
    drop(second);
    let third = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.credential_lock("hs_refresh"),
    )
    .await
    .expect("a dropped lock frees its name")
    .unwrap();
    third.release().await;
}

#[tokio::test]
async fn rotation_lock_on_sqlite() {
    on_sqlite(rotation_lock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_lock_on_postgres() {
    on_postgres("rotation_lock_on_postgres", rotation_lock).await;
}
