//! The TypeScript client SDK (`clients/js`, `@sessiond/client`): its Node and headless
//! Chromium tests run against this build's `sessiond` binary, so `cargo test --workspace`
//! runs every test of the repository. `npm ci` runs only when `node_modules` is missing or
//! older than `package-lock.json`; then `npm test` (type check, build, `node --test`), whose
//! output streams to the terminal. Without node and npm the test fails under CI (`CI` set)
//! and is skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Generous: the JS suite takes about two minutes on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(15 * 60);

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs `npm <args>` in `dir`, output streaming through, killed past the limit.
fn npm(dir: &Path, args: &[&str]) {
    let started = Instant::now();
    let mut child = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("SESSIOND_BIN", env!("CARGO_BIN_EXE_sessiond"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("npm {args:?} did not start: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("npm {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "npm {args:?} failed: {status}");
    eprintln!(
        "clients_js: npm {} finished in {:.1} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn js_client_sdk_suite() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/js");
    let dir = dir.canonicalize().expect("clients/js exists");
    if !available("node") || !available("npm") {
        assert!(
            !under_ci(),
            "node and npm are needed for the clients/js tests under CI"
        );
        eprintln!("clients_js: skipped: node and npm are not installed");
        return;
    }
    let lock = modified(&dir.join("package-lock.json"));
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let stale = match (lock, installed) {
        (Some(lock), Some(installed)) => installed < lock,
        _ => true,
    };
    if stale {
        npm(&dir, &["ci", "--no-audit", "--no-fund"]);
    }
    npm(&dir, &["test"]);
}
