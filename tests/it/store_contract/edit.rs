//! Edit and replay in the store, on both backends: the original body is
//! kept, the delivery sends the edited one under a new idempotency key with
//! a fresh budget, the edit is audited, and work in flight is not edited.

use super::*;

async fn edit_and_replay(store: Store) {
    assert_eq!(store.accept(msg("m1", None)).await.unwrap(), Accepted::New);
    let edit = |body: &str, now_ms| Edit {
        id: "m1".into(),
        body: body.as_bytes().to_vec(),
        actor: "ops@example.com".into(),
        detail: format!("edited to {body}"),
        now_ms,
    };
    // Queued: not editable yet.
    assert_eq!(
        store.edit(edit("{}", T0)).await.unwrap(),
        Edited::Busy(State::Queued)
    );
    let c = store.claim("erp", T0, 30_000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert!(store.record(record(&c[0], T0, Next::Dead)).await.unwrap());

    let body = r#"{"id":"m1","qty":12.50}"#;
    assert_eq!(
        store.edit(edit(body, T0 + 1_000)).await.unwrap(),
        Edited::Done {
            delivery_key: "ferry-m1.edit1".into()
        }
    );
    let m = store.message("m1").await.unwrap().unwrap();
    assert_eq!(m.body, r#"{"id":"m1"}"#, "the original is kept");
    assert_eq!(m.edited_body.as_deref(), Some(body));
    assert_eq!((m.edits, m.summary.state), (1, State::Queued));
    let c = store.claim("erp", T0 + 1_000, 30_000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].body, body.as_bytes(), "the replay sends the edit");
    assert_eq!(c[0].delivery_key, "ferry-m1.edit1");
    assert_eq!(c[0].attempts, 0, "a fresh retry budget");
    assert!(
        store
            .record(record(&c[0], T0 + 1_000, Next::Dead))
            .await
            .unwrap()
    );
    // A second edit: the next key, from the original's.
    assert_eq!(
        store.edit(edit("{}", T0 + 2_000)).await.unwrap(),
        Edited::Done {
            delivery_key: "ferry-m1.edit2".into()
        }
    );
    let audit = store.audit_log(10).await.unwrap();
    let edits: Vec<_> = audit.iter().filter(|a| a.action == "edit").collect();
    assert_eq!(edits.len(), 2);
    assert!(
        edits
            .iter()
            .all(|a| a.actor == "ops@example.com" && a.target == "m1")
    );
    assert!(
        edits
            .iter()
            .any(|a| a.detail == format!("edited to {body}"))
    );
    // One message's audit: its own entries only, newest first.
    let of_m1 = store.audit_of("m1", 10).await.unwrap();
    assert_eq!(of_m1.len(), 2, "{of_m1:?}");
    assert!(of_m1[0].at_ms >= of_m1[1].at_ms);
    assert!(store.audit_of("m2", 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .edit(Edit {
                id: "nope".into(),
                ..edit("{}", T0)
            })
            .await
            .unwrap(),
        Edited::NotFound
    );
}

#[tokio::test]
async fn edit_and_replay_on_sqlite() {
    on_sqlite(edit_and_replay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_replay_on_postgres() {
    on_postgres("edit_and_replay_on_postgres", edit_and_replay).await;
}
