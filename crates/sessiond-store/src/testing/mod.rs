//! Test support, compiled into every build so that other crates' tests can use it
//! without a feature flag. Nothing here is used by sessiond itself.

pub mod postgres;
