//! The binary's subcommands that need more than a few lines of `main.rs`
//! (which parses the command line and dispatches): the top of the flow,
//! calling into the library like any other client of it.

pub mod failures;
pub mod mapping;
pub mod tokens;
pub mod users;
