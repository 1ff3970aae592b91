//! The console's static files, compiled into the binary: htmx 2.0.11 as
//! published (`htmx.org@2.0.11`, `dist/htmx.min.js`, pinned by its SHA-256,
//! which a test checks), the console's own script (htmx's error display and
//! confirmations, no inline code anywhere) and its stylesheet. Names carry
//! the version, so they are cached for good.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The vendored htmx and its published SHA-256 (also in DEPENDENCIES.md).
pub const HTMX: &[u8] = include_bytes!("static/htmx-2.0.11.min.js");
const SCRIPT: &[u8] = include_bytes!("static/console.js");
const STYLE: &[u8] = include_bytes!("static/console.css");

/// The files by the name pages link them under (`/console/static/NAME`).
fn file(name: &str) -> Option<(&'static [u8], &'static str)> {
    match name {
        "htmx-2.0.11.min.js" => Some((HTMX, "text/javascript; charset=utf-8")),
        "console-1.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "console-1.css" => Some((STYLE, "text/css; charset=utf-8")),
        _ => None,
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match file(&name) {
        Some((bytes, kind)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    #[test]
    fn vendored_htmx_is_the_pinned_release() {
        assert_eq!(
            hex::encode(sha2::Sha256::digest(super::HTMX)),
            "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
        );
        assert!(super::file("console-1.js").is_some());
        assert!(super::file("../Cargo.toml").is_none());
    }
}
