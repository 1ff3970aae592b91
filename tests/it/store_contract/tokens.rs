//! Admin API tokens in the store, on both backends: kept by their SHA-256
//! with a role, names unique, adding and removing audited.

use super::*;

async fn tokens(store: Store) {
    let t = |name: &str, role| Account {
        name: name.into(),
        role,
        created_ms: T0,
        created_by: "ana".into(),
    };
    assert!(
        store
            .add_account(AccountKind::Token, t("ci", Role::Viewer), "aa11")
            .await
            .unwrap()
    );
    assert!(
        store
            .add_account(AccountKind::Token, t("ops", Role::Operator), "bb22")
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_account(AccountKind::Token, t("ci", Role::Admin), "cc33")
            .await
            .unwrap(),
        "names are unique"
    );
    assert_eq!(
        store.token("bb22").await.unwrap(),
        Some(t("ops", Role::Operator))
    );
    assert_eq!(store.token("cc33").await.unwrap(), None);
    let names: Vec<_> = store
        .accounts(AccountKind::Token)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["ci", "ops"]);
    assert!(
        store
            .remove_account(AccountKind::Token, "ci", "ana", T0 + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_account(AccountKind::Token, "ci", "ana", T0 + 2)
            .await
            .unwrap()
    );
    assert_eq!(store.token("aa11").await.unwrap(), None);
    let audit = store.audit_log(10).await.unwrap();
    let actions: Vec<_> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.target.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("token-remove", "ci"),
            ("token-add", "ops"),
            ("token-add", "ci")
        ]
    );
    assert!(
        audit.iter().all(|a| !a.detail.contains("aa11")),
        "no hash in the audit"
    );
}

#[tokio::test]
async fn tokens_on_sqlite() {
    on_sqlite(tokens).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_on_postgres() {
    on_postgres("tokens_on_postgres", tokens).await;
}

async fn users(store: Store) {
    let ana = Account {
        name: "ana".into(),
        role: Role::Operator,
        created_ms: T0,
        created_by: "root".into(),
    };
    assert!(
        store
            .add_account(AccountKind::User, ana.clone(), "$argon2id$one")
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_account(AccountKind::User, ana.clone(), "$argon2id$two")
            .await
            .unwrap()
    );
    assert_eq!(
        store.user("ana").await.unwrap(),
        Some((ana.clone(), "$argon2id$one".into()))
    );
    assert!(
        store
            .set_password("ana", "$argon2id$new", "ana", T0 + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_password("bob", "$x", "ana", T0 + 1)
            .await
            .unwrap()
    );
    assert_eq!(store.user("ana").await.unwrap().unwrap().1, "$argon2id$new");
    assert_eq!(store.accounts(AccountKind::User).await.unwrap(), [ana]);
    assert!(
        store.accounts(AccountKind::Token).await.unwrap().is_empty(),
        "users are not tokens"
    );
    assert!(
        store
            .remove_account(AccountKind::User, "ana", "root", T0 + 2)
            .await
            .unwrap()
    );
    assert_eq!(store.user("ana").await.unwrap(), None);
    let audit = store.audit_log(10).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["user-remove", "user-password", "user-add"]);
    assert!(
        audit.iter().all(|a| !a.detail.contains("argon2")),
        "no hash in the audit"
    );
}

#[tokio::test]
async fn users_on_sqlite() {
    on_sqlite(users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_postgres() {
    on_postgres("users_on_postgres", users).await;
}
