//! Access: who may use the console and the admin API, and as what. People
//! are users with a role and a password, hashed with Argon2id (PHC strings;
//! no default password exists: `ferry users add` asks for one); machines
//! use API tokens (`ferry tokens add`, checked by the admin API). It sits
//! above the store, which keeps users and tokens, and below the routers.

pub mod password;

pub use crate::store::Role;
