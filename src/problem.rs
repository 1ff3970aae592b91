//! RFC 9457 problem details: every error ferry answers over HTTP (ingest, ERP
//! API, admin API) is `application/problem+json` with a stable `type`, a short
//! `title` and a `detail` that says what to fix.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:ferry:problem:<slug>`: stable, for programs to branch on.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem's kind.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What happened and what to fix, in words.
    pub detail: String,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// `slug` becomes the type `urn:ferry:problem:<slug>`.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            kind: format!("urn:ferry:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    pub fn unauthorized(slug: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, slug, "Unauthorized", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        p.retry_after = Some(retry_after);
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// Middleware: a client error answered as plain text (axum's own rejections
/// of a body, form, query or path it could not read) becomes a problem
/// document with that text as its detail, so every refusal is
/// `application/problem+json`.
pub async fn rejections_as_problems(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024)
        .await
        .unwrap_or_default();
    let (slug, title) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid-request", "Unprocessable request"),
        _ => ("bad-request", "Bad request"),
    };
    Problem::new(status, slug, title, String::from_utf8_lossy(&bytes)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::post;
    use tower_service::Service;

    #[tokio::test]
    async fn a_plain_rejection_becomes_a_problem() {
        let mut app = Router::new()
            .route("/", post(|_: axum::Json<u32>| async { "ok" }))
            .layer(axum::middleware::from_fn(super::rejections_as_problems));
        let req = axum::http::Request::post("/")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("\"nope\""))
            .unwrap();
        let resp = app.call(req).await.unwrap();
        assert_eq!(resp.status(), 422);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(p["type"], "urn:ferry:problem:invalid-request");
        assert!(
            p["detail"].as_str().unwrap().contains("invalid type"),
            "{p}"
        );
    }
}
