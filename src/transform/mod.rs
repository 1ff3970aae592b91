//! Transform: the stage between a claimed delivery and `connect`, turning the
//! stored body into what the destination's API version expects. This release
//! has only the passthrough (jq mappings, versioned per destination API
//! version, are the next step); config validation rejects anything else, so a
//! mapping is never silently skipped.

pub mod jq;
mod jq_env;
mod jq_errors;
pub mod json_depth;
pub mod pool;

use bytes::Bytes;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Transform {
    /// The body goes out exactly as it was received.
    #[default]
    Passthrough,
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("the mapping failed: {0}")]
    Mapping(String),
}

impl Transform {
    pub fn apply(&self, body: &Bytes) -> Result<Bytes, TransformError> {
        match self {
            Transform::Passthrough => Ok(body.clone()),
        }
    }
}

/// The first `max` bytes of `text` (cut on a character boundary), with an
/// ellipsis when there was more: excerpts in messages stay short.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else {
        format!("{}…", &text[..text.floor_char_boundary(max)])
    }
}
