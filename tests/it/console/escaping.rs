//! Safe rendering over HTTP: a payload, a downstream answer and an
//! operator's note full of markup and template syntax are shown on every
//! page as text (the browser test checks that no script runs): no raw tag
//! of theirs reaches a page, their escaped text does, and `{{7*7}}` stays
//! as written on the message page.

use ferry::sim::receiver::Reply;
use ferry::store::Role;

use super::*;

/// The raw markup that must never appear in a page.
const RAW: &[&str] = &[
    "<script>window.__xss",
    "<img src=x",
    "onerror=\"window",
    "<b>SKU</b>",
    "href=\"javascript:",
];

#[tokio::test]
async fn hostile_values_are_escaped_on_every_page() {
    let t = TestApp::spawn().await;
    t.receiver.push([Reply::status(422)
        .header("content-type", "application/json")
        .body(r#"{"error":"<script>window.__xss=4</script> unknown sku <b>SKU</b> {{7*7}}"}"#)]);
    let id = stock_message(&t, HOSTILE).await;
    t.drain().await;
    add_user(&t, "omar", Role::Operator).await;
    let omar = login(&t, "omar").await;
    let group = t.store.failure_groups(&Default::default()).await.unwrap()[0]
        .key
        .clone();
    // An operator's note and edit carry markup too.
    let r = omar
        .act(
            &t,
            &format!("/console/failures/{group}/status"),
            &[
                ("status", "acknowledged"),
                ("note", "<script>window.__xss=5</script>"),
            ],
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.status());
    let pages = [
        "/console".to_owned(),
        "/console/failures".to_owned(),
        format!("/console/failures/{group}"),
        "/console/messages".to_owned(),
        "/console/messages?q=%3Cscript%3E".to_owned(),
        format!("/console/messages/{id}"),
        "/console/audit".to_owned(),
        "/console/routes".to_owned(),
        "/console/systems".to_owned(),
        "/console/mappings".to_owned(),
        "/console/credentials".to_owned(),
        "/console/config".to_owned(),
    ];
    for path in &pages {
        let page = omar.page(&t, path).await;
        for raw in RAW {
            assert!(!page.contains(raw), "{path} holds raw {raw:?}");
        }
    }
    let message = omar.page(&t, &format!("/console/messages/{id}")).await;
    assert!(
        message.contains("&#60;script&#62;window.__xss=1&#60;/script&#62;"),
        "{message}"
    );
    assert!(
        message.contains("{{7*7}} ${7*7}"),
        "template syntax shown as written"
    );
    assert!(message.contains("&#60;b&#62;SKU&#60;/b&#62;"));
    let failure = omar.page(&t, &format!("/console/failures/{group}")).await;
    assert!(
        failure.contains("&#60;script&#62;window.__xss=5&#60;/script&#62;"),
        "the note"
    );
}
