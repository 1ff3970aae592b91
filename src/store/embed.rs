//! Read-only embed tokens: each lets a page of another system (the ERP's
//! own screens) frame one route's failure list without a console session
//! (`console::embed`, `GET /console/embed/failures?token=...`). `ferry
//! embed add ROUTE` makes one and prints it once; the store keeps only its
//! SHA-256, so a leaked database frames nothing. Adding and removing one is
//! audited, with the token's [`EmbedToken::id`], never the token.

use serde::Serialize;

use super::{Store, StoreError};

/// One embed token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmbedToken {
    /// SHA-256 (hex) of the token; the token itself is never kept.
    pub token_sha256: String,
    /// The route whose failures it shows.
    pub route: String,
    pub created_ms: i64,
    /// Who made it (as the audit log's actor: `cli:ana` is kept as `ana`).
    pub created_by: String,
}

/// Hex digits of the SHA-256 that name a token in lists and the audit log.
pub const EMBED_ID_LEN: usize = 12;

/// A token's name in `ferry embed list` and the audit log: the start of
/// its SHA-256 (which says nothing of the token).
pub fn embed_id(sha256: &str) -> &str {
    sha256.get(..EMBED_ID_LEN).unwrap_or(sha256)
}

impl EmbedToken {
    pub fn id(&self) -> &str {
        embed_id(&self.token_sha256)
    }
}

impl Store {
    /// Keeps a new embed token (audited as `embed-add` on its route); false
    /// when one with this hash exists already.
    pub async fn add_embed_token(&self, t: EmbedToken) -> Result<bool, StoreError> {
        on_backend!(self, s => s.add_embed_token(t).await)
    }

    /// The embed token whose SHA-256 (hex) this is.
    pub async fn embed_token(&self, sha256: &str) -> Result<Option<EmbedToken>, StoreError> {
        on_backend!(self, s => s.embed_token(sha256).await)
    }

    /// Every embed token, by route, oldest first.
    pub async fn embed_tokens(&self) -> Result<Vec<EmbedToken>, StoreError> {
        on_backend!(self, s => s.embed_tokens().await)
    }

    /// Revokes an embed token at once (audited as `embed-remove` on its
    /// route); false when there was none.
    pub async fn remove_embed_token(
        &self,
        sha256: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.remove_embed_token(sha256, actor, now_ms).await)
    }
}
