//! The names every stage passes around, as types: a message's id, a route's
//! and a system's name. Each wraps the text as configured or stored and
//! reads as a `&str` (`Deref`, `Borrow<str>`, so a map keyed by one is
//! looked up by a `&str`), but a function that takes a [`SystemName`] cannot
//! be handed a route's name by mistake.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> $name {
                $name(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                $name(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name(text.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

name! {
    /// A message's id (`msg_…`), as the API answers it and the store keeps it.
    MessageId
}

name! {
    /// A route's name: its key under `[routes]`.
    RouteName
}

name! {
    /// A system's name: its key under `[systems]`.
    SystemName
}

impl MessageId {
    /// A new id: a UUIDv7, so ids sort by when they were made.
    pub fn generate() -> MessageId {
        MessageId(uuid::Uuid::now_v7().to_string())
    }
}

/// Whether `name` may name a credential of the encrypted store: 1 to 128
/// letters, digits, `.`, `_` or `-` (it is a command-line argument, a TOML
/// value and part of the sealed value's associated data).
pub fn credential_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 128 {
        return Err("a credential name has 1 to 128 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("a credential name may only use letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_name_reads_as_text_and_keys_a_map_looked_up_by_str() {
        let mut systems = BTreeMap::new();
        systems.insert(SystemName::from("shop"), 1);
        assert_eq!(systems.get("shop"), Some(&1));
        let name = SystemName::new("shop");
        assert_eq!(name, "shop");
        assert_eq!(name.len(), 4, "derefs to str");
        assert_eq!(format!("{name}"), "shop");
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""shop""#);
        let back: RouteName = serde_json::from_str(r#""stock""#).unwrap();
        assert_eq!(back.as_str(), "stock");
    }
}
