//! The storage conformance suite, run against every backend: one test binary, a module
//! per backend.

mod postgres;
mod sqlite;
