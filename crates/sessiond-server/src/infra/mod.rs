//! What talks to the outside world: the store, Redis (shared by the rate limits, the
//! fan-out and readiness), the mailer, the exchange providers (partner APIs and OIDC issuers), and the password
//! hashing pool (CPU work kept off the async runtime's threads).

pub mod exchange;
pub mod mail;
pub mod oidc;
pub mod password_pool;
pub mod redis;
pub mod storage;
pub mod webhooks;
