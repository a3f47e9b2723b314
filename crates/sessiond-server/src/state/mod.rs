//! What this process holds in memory: the session cache and the verified-token memo,
//! the activity tracker that spares the store a write per request, the fan-out that
//! keeps every instance's cache exact, and the signing keys. Nothing here talks to the
//! outside world except through [`crate::infra`].

pub mod activity;
pub mod cache;
pub mod fanout;
pub mod feed;
pub mod keys;
