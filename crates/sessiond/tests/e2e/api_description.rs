//! The API description is the truth: schemathesis (pinned, from PyPI, in a virtualenv this
//! test creates under the target folder) runs every check it has against the real binary,
//! as the admin and as a user, and any failure fails the test. What it checks: every
//! status answered is documented, every content type and body matches its schema,
//! schema-valid requests are accepted, schema-invalid ones are refused with a 4xx, missing
//! credentials are refused, unsupported methods answer 405 with `Allow`, and no input
//! gets a 5xx.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{PASSWORD, Server, expect, sessiond, tempdir, token};

const SCHEMATHESIS: &str = "4.32.5";
const ADMIN_KEY: &str = "api-description-admin-key-0123456789abcdef0123";
/// Fixed, so a failure reproduces; the coverage phase is deterministic anyway.
const SEED: &str = "20261203";

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// The pinned schemathesis, installed into a virtualenv on first use.
fn schemathesis() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{SCHEMATHESIS}"));
    let bin = venv.join("bin").join("schemathesis");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(SCHEMATHESIS));
    if installed {
        return Some(bin);
    }
    let pip = venv.join("bin").join("pip");
    let steps: [(&Path, Vec<String>); 2] = [
        (
            Path::new("python3"),
            vec!["-m".into(), "venv".into(), venv.display().to_string()],
        ),
        (
            &pip,
            vec![
                "install".into(),
                "--quiet".into(),
                "--disable-pip-version-check".into(),
                format!("schemathesis=={SCHEMATHESIS}"),
            ],
        ),
    ];
    for (program, args) in steps {
        let status = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            let why = format!("could not run {} {}", program.display(), args.join(" "));
            assert!(!required(), "{why}");
            eprintln!("SKIPPED: schemathesis is not available ({why})");
            return None;
        }
    }
    Some(bin)
}

/// A partner identity API that vouches for every token.
async fn provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "valid": true, "user": { "id": "partner-7", "email": "partner@example.com", "name": "P" } }
        })))
        .mount(&server)
        .await;
    server
}

fn config(dir: &Path, provider: &MockServer) -> PathBuf {
    let path = dir.join("sessiond.toml");
    let text = format!(
        r#"
admin_api_key = "{ADMIN_KEY}"

[rate_limits]
enabled = false

[exchange.providers.rapido]
url = "{}/identity"
[exchange.providers.rapido.response]
valid = "/data/valid"
user_id = "/data/user/id"
email = "/data/user/email"
name = "/data/user/name"
"#,
        provider.uri()
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// One schemathesis run; its report is printed, and a failure fails the test.
fn run(bin: &Path, server: &Server, work: &Path, credential: &str, extra: &[&str]) {
    let output = Command::new(bin)
        .current_dir(work)
        .args(["run", &format!("http://{}/openapi.json", server.addr)])
        .args(["--checks", "all", "--max-examples", "25", "--seed", SEED])
        .args(["--no-color", "--generation-database", "none"])
        .args(["--header", &format!("Authorization: Bearer {credential}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "schemathesis found failures ({extra:?}); see its report above\n{}",
        server
            .logs()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(
        tested.is_some_and(|n| n >= 20),
        "operations tested: {tested:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_as_the_admin_or_as_a_user() {
    let Some(bin) = schemathesis() else { return };
    let provider = provider().await;
    let dir = tempdir();
    let config = config(dir.path(), &provider);
    let mut cmd = sessiond(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let server = Server::start(cmd);
    let api = server.api();
    let user = |email: &'static str| {
        let api = api.clone();
        async move {
            let body = json!({"email": email, "password": PASSWORD});
            let grant = expect(api.call("POST", "/v1/users", None, Some(body)).await, 201);
            token(&grant, "access_token")
        }
    };

    let bin_path = bin.clone();
    let work = dir.path().to_owned();
    let user_token = user("fuzzed@example.com").await;
    let last_user_token = user("fuzzed-last@example.com").await;
    let server = tokio::task::spawn_blocking(move || {
        // The revocation stream is endless by design (Server-Sent Events), which a fuzzer
        // reads as a hang; its answers are tested in the server's revocations suite.
        let endless = ["--exclude-operation-id", "stream_revocations"];
        // `use_after_free` takes `DELETE /v1/admin/users/{id}/sessions` (end every session
        // of the user) for deleting a resource, and calls the answer to the `GET` of the
        // same path (the live sessions: now none, 200) a deleted resource still there.
        // That path is a collection, emptied, not deleted; erasure's 404 afterwards is
        // tested in the server's suite (`admins_find_edit_and_erase_users`).
        let collections = ["--exclude-checks", "use_after_free"];
        run(
            &bin_path,
            &server,
            &work,
            ADMIN_KEY,
            &[endless[0], endless[1], collections[0], collections[1]],
        );
        // As a user, first without the operations that end the calling session, so the
        // rest is tested with a live one; then everything, with another user.
        let ending = ["--exclude-operation-id", "logout"];
        let ending_all = ["--exclude-operation-id", "revoke_sessions"];
        run(
            &bin_path,
            &server,
            &work,
            &user_token,
            &[ending[0], ending[1], ending_all[0], ending_all[1]],
        );
        run(&bin_path, &server, &work, &last_user_token, &[]);
        server
    })
    .await
    .expect("the runs finish");
    server.stop();
}
