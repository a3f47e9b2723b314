//! End-to-end tests of the real `sessiond` binary: each test runs the compiled program
//! as a child process and talks to it over HTTP, as an operator, a client or a fuzzer
//! would. One test binary, a module per area.

mod common;

mod api_description;
mod binary;
mod clients;
mod console;
mod multi_instance;
mod proxies;
mod verifier_conformance;
mod verify_rust;
mod webhooks;
