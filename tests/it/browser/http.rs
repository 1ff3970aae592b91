//! thirtyfour's HTTP client, over the project's own reqwest 0.12: thirtyfour
//! 0.38's `reqwest` feature would bring reqwest 0.13 (a second copy) and its
//! `manager` feature a driver download. chromedriver is plain HTTP on
//! loopback, so no TLS is involved either way.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Response};
use bytes::Bytes;
use thirtyfour::prelude::{WebDriverError, WebDriverResult};
use thirtyfour::session::http::{Body, HttpClient};

/// A client for chromedriver on 127.0.0.1: never through a proxy (the
/// environment's `HTTP_PROXY` must not see loopback calls); a timeout well
/// above a slow session start on a loaded 2-core machine.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("reqwest client for chromedriver")
}

pub struct ReqwestClient(pub reqwest::Client);

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, request: Request<Body<'_>>) -> WebDriverResult<Response<Bytes>> {
        let (parts, body) = request.into_parts();
        let mut req = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers);
        if let Body::Json(json) = body {
            req = req.json(json);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| WebDriverError::HttpError(e.to_string()))?;
        let mut builder = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            builder = builder.header(name, value);
        }
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| WebDriverError::HttpError(e.to_string()))?;
        builder
            .body(body)
            .map_err(|e| WebDriverError::UnknownResponse(status, e.to_string()))
    }

    /// A client with no tie to the current runtime: thirtyfour's Drop quits
    /// the session on a runtime of its own, after the test's may be gone.
    async fn new(&self) -> Arc<dyn HttpClient> {
        Arc::new(ReqwestClient(client()))
    }
}
