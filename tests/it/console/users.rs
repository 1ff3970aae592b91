//! Users and tokens from the console: only an admin manages them (an
//! operator is refused), a new user signs in, a removed one's session ends,
//! a new token is shown once and works, a revoked one is refused.

use ferry::store::Role;
use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn only_an_admin_manages_users_and_tokens() {
    let t = TestApp::spawn().await;
    add_user(&t, "ada", Role::Admin).await;
    add_user(&t, "omar", Role::Operator).await;
    let ada = login(&t, "ada").await;
    let omar = login(&t, "omar").await;
    // An operator neither sees nor uses the page.
    assert_eq!(
        omar.get(&t, "/console/users").await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(
        !omar
            .page(&t, "/console")
            .await
            .contains("href=\"/console/users\"")
    );
    let form = [
        ("name", "vera"),
        ("role", "viewer"),
        ("password", "another good password"),
        ("confirm", "another good password"),
    ];
    let (status, p) = problem(omar.act(&t, "/console/users", &form).await).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (403, Some("urn:ferry:problem:forbidden-role"))
    );
    let (status, _) = problem(
        omar.act(&t, "/console/tokens", &[("name", "ci"), ("role", "admin")])
            .await,
    )
    .await;
    assert_eq!(status, 403, "an operator cannot make itself an admin token");
    assert!(
        ada.page(&t, "/console")
            .await
            .contains("href=\"/console/users\"")
    );

    // The admin adds a user, who signs in.
    let r = ada.act(&t, "/console/users", &form).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let short = [
        ("name", "x"),
        ("role", "viewer"),
        ("password", "short"),
        ("confirm", "short"),
    ];
    let (status, p) = problem(ada.act(&t, "/console/users", &short).await).await;
    assert_eq!(
        (status, p["type"].as_str()),
        (400, Some("urn:ferry:problem:bad-password"))
    );
    let (status, _) = problem(ada.act(&t, "/console/users", &form).await).await;
    assert_eq!(status, 409, "names are unique");
    let page = ada.page(&t, "/console/users").await;
    assert!(page.contains("data-name=\"vera\""), "{page}");
    let r = client()
        .post(format!("{}/console/login", t.base))
        .header("origin", &t.base)
        .form(&[("username", "vera"), ("password", "another good password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "vera signs in");

    // Removing omar ends his session.
    let r = ada.act(&t, "/console/users/omar/remove", &[]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        omar.get(&t, "/console").await.status(),
        StatusCode::SEE_OTHER
    );

    // A token, shown once, works on the admin API until revoked.
    let r = ada
        .act(
            &t,
            "/console/tokens",
            &[("name", "grafana"), ("role", "viewer")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.unwrap();
    let at = shown.find("ferry_").expect("the token is shown");
    let token: String = shown[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_-".contains(*c))
        .collect();
    let api = |token: String| {
        let url = format!("{}/admin/api/v1/messages", t.base);
        let http = t.http.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(api(token.clone()).await, StatusCode::OK);
    assert!(
        !ada.page(&t, "/console/users").await.contains(&token),
        "shown once only"
    );
    let r = ada.act(&t, "/console/tokens/grafana/remove", &[]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(api(token).await, StatusCode::UNAUTHORIZED);

    let audit = ada.page(&t, "/console/audit").await;
    for action in ["user-add", "user-remove", "token-add", "token-remove"] {
        assert!(audit.contains(action), "{action}");
    }
}
