//! A token endpoint written for the tests (axum on port 0): it issues
//! `tok-1`, `tok-2`, ... (refresh tokens `rtok-5b3e-N`) with a scripted `expires_in`, answers the
//! refresh-token grant only with the refresh token it issued last (and
//! rotates it when asked), can be made to fail or redirect, and records
//! every request's form and `Authorization` header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// How the endpoint answers.
#[derive(Clone, Debug)]
pub enum Mode {
    Issue,
    Fail(u16),
    Redirect,
}

/// One token request as the endpoint saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

pub struct Script {
    pub mode: Mode,
    /// `expires_in` of each answer (`None`: left out, as Salesforce does).
    pub ttl_s: Option<i64>,
    /// How long each answer takes.
    pub delay: Duration,
    /// The refresh token the refresh grant must present.
    pub refresh: Option<String>,
    /// Whether each refresh answer rotates the refresh token.
    pub rotate: bool,
    pub issued: u32,
    pub seen: Vec<Seen>,
    /// Refresh-grant requests refused for a spent or unknown refresh token.
    pub refused: u32,
}

#[derive(Clone)]
pub struct TokenServer {
    pub url: String,
    pub script: Arc<Mutex<Script>>,
    stop: CancellationToken,
}

impl TokenServer {
    pub async fn start(ttl_s: Option<i64>) -> TokenServer {
        let script = Arc::new(Mutex::new(Script {
            mode: Mode::Issue,
            ttl_s,
            delay: Duration::ZERO,
            refresh: None,
            rotate: false,
            issued: 0,
            seen: Vec::new(),
            refused: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/oauth/token", post(token))
            .with_state(script.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        TokenServer { url, script, stop }
    }

    pub fn set(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }

    pub fn requests(&self) -> usize {
        self.script.lock().unwrap().seen.len()
    }

    pub fn refused(&self) -> u32 {
        self.script.lock().unwrap().refused
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

async fn token(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form(&body);
    let delay = {
        let mut s = script.lock().unwrap();
        s.seen.push(Seen {
            form: form.clone(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        s.delay
    };
    tokio::time::sleep(delay).await;
    let mut s = script.lock().unwrap();
    match s.mode {
        Mode::Fail(status) => {
            let body = r#"{"error":"temporarily_unavailable","error_description":"the token service is down for maintenance"}"#;
            return (StatusCode::from_u16(status).unwrap(), body).into_response();
        }
        Mode::Redirect => {
            return (
                StatusCode::FOUND,
                [(header::LOCATION, "http://127.0.0.1:9/elsewhere")],
            )
                .into_response();
        }
        Mode::Issue => {}
    }
    let mut answer = serde_json::Map::new();
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        if form.get("refresh_token") != s.refresh.as_ref() {
            s.refused += 1;
            let body =
                r#"{"error":"invalid_grant","error_description":"refresh token is not valid"}"#;
            return (StatusCode::BAD_REQUEST, body).into_response();
        }
        if s.rotate {
            let next = format!("rtok-5b3e-{}", s.issued + 2);
            s.refresh = Some(next.clone());
            answer.insert("refresh_token".into(), next.into());
        }
    }
    s.issued += 1;
    answer.insert("access_token".into(), format!("tok-{}", s.issued).into());
    answer.insert("token_type".into(), "Bearer".into());
    if let Some(ttl) = s.ttl_s {
        answer.insert("expires_in".into(), ttl.into());
    }
    axum::Json(serde_json::Value::Object(answer)).into_response()
}
