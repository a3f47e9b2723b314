//! One module per resource.

pub mod account;
pub mod admin;
pub mod auth;
pub mod events;
pub mod exchange;
pub mod forward_auth;
pub mod oauth;
pub mod ops;
pub mod otp;
pub mod revocations;
pub mod session;
pub mod tokens;
