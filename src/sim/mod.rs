//! Simulated systems: a scriptable downstream ([`receiver`]), a scriptable
//! SMTP server for email alert channels ([`smtp`]), platforms that
//! throttle like Shopify, HubSpot and Salesforce do ([`platform`]), and the
//! demo's shop and ERP ([`demo`]). Shipped in the binary because `ferry demo` and
//! `ferry bench` use them; the integration tests use the same parts.

pub mod demo;
pub mod platform;
pub mod receiver;
pub mod smtp;
