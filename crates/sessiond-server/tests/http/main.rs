//! The HTTP integration suite of sessiond-server: each test starts the real server on
//! port 0 (on SQLite, and on PostgreSQL when it is reachable) and talks HTTP to it.
//!
//! One test binary with a module per area, not one binary per file: on 2 cores, linking
//! fifteen test binaries took most of the suite's time.

#[macro_use]
mod common;

mod accounts;
mod admin;
mod bad_input;
mod console;
mod exchange;
mod faults;
mod instances;
mod lifecycle;
mod login;
mod oauth;
mod oidc;
mod ops;
mod otp;
mod policies;
mod rate_limits;
mod redis;
mod refresh;
mod revocations;
mod sessions;
mod web;
mod webhooks;
