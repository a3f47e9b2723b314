//! The admin console in a real browser: `clients/console-tests` (headless Debian Chromium
//! driven by playwright-core, installed by `clients/js/scripts/setup-browser.sh` when
//! missing) against this build's binary. Screenshots of every page are written to
//! `target/console-screenshots/`. Without node and npm the test fails under CI and is
//! skipped with a message otherwise (as the client suites in `clients.rs`).

#[test]
fn admin_console_in_chromium() {
    crate::clients::npm_suite("console-tests");
}
