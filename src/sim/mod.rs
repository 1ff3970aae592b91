//! Simulated systems: a scriptable downstream ([`receiver`]), and the demo's
//! shop and ERP ([`demo`]). Shipped in the binary because `ferry demo` and
//! `ferry bench` use them; the integration tests use the same parts.

pub mod demo;
pub mod receiver;
