//! One module per resource.

pub mod admin;
pub mod auth;
pub mod ops;
pub mod session;
pub mod tokens;
