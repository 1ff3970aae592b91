//! The encrypted credential store end to end: the CLI (`cli`), and
//! rotations reaching a running app while webhooks flow (`rotation`).

mod cli;
mod rotation;
