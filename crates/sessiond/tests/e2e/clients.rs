//! The client libraries under `clients/`, each with its own test command, run against
//! this build's `sessiond` binary, so `cargo test --workspace` runs every test of the
//! repository:
//!
//! - `clients/js` (`@sessiond/client`, the SDK; Node and headless Chromium) and
//!   `clients/verify-js` (`@sessiond/verify`): `npm ci` only when `node_modules` is missing
//!   or older than `package-lock.json`, then `npm test`;
//! - `clients/python` (`sessiond-verify`): `scripts/test.sh` (its virtualenv made or
//!   refreshed first, then ruff, mypy --strict and pytest).
//!
//! Output streams to the terminal. Without the tools (node and npm; python3) a test fails
//! under CI (`CI` set) and is skipped with a message otherwise.

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
    run_tool(dir, "npm", args);
}

/// Runs `program <args>` in `dir` with `SESSIOND_BIN` set, output streaming through,
/// killed past the limit.
fn run_tool(dir: &Path, program: &str, args: &[&str]) {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("SESSIOND_BIN", env!("CARGO_BIN_EXE_sessiond"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} {args:?} did not start: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "{program} {args:?} failed: {status}");
    eprintln!(
        "clients: {program} {} in {} finished in {:.1} s",
        args.join(" "),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}

fn client_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../clients")
        .join(name)
        .canonicalize()
        .unwrap_or_else(|e| panic!("clients/{name} exists: {e}"))
}

/// `npm ci` when needed, then `npm test`, in `clients/<name>`.
pub(crate) fn npm_suite(name: &str) {
    let dir = client_dir(name);
    if !available("node") || !available("npm") {
        assert!(
            !under_ci(),
            "node and npm are needed for the clients/{name} tests under CI"
        );
        eprintln!("clients: {name} skipped: node and npm are not installed");
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

#[test]
fn js_client_sdk_suite() {
    npm_suite("js");
}

#[test]
fn typescript_verifier_suite() {
    npm_suite("verify-js");
}

#[test]
fn python_verifier_suite() {
    let dir = client_dir("python");
    if !available("python3") {
        assert!(
            !under_ci(),
            "python3 is needed for the clients/python tests under CI"
        );
        eprintln!("clients: python skipped: python3 is not installed");
        return;
    }
    run_tool(&dir, "bash", &["scripts/test.sh"]);
}
