//! End-to-end tests of the real `sessiond` binary: each test runs the compiled program as
//! a child process in its own temporary folder, talks to it over HTTP and reads its JSON
//! log lines, the way an operator and a client would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    CliOutput, PASSWORD, STOP, Server, event, events, expect, jwt_part, kid_of, run, serve,
    sessiond, tempdir, token,
};

fn read_admin_key(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("admin key file")
        .trim()
        .to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------------------
// 1. Zero configuration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn serve_without_configuration_creates_its_data_folder_and_admin_key() {
    let dir = tempdir();
    let server = Server::start(serve(dir.path(), None));
    assert!(server.addr.ip().is_loopback() && server.addr.port() != 0);

    let data = dir.path().join("sessiond-data");
    assert!(data.join("sessiond.db").is_file(), "the SQLite database");
    let key_path = data.join("admin-api-key");
    let key = read_admin_key(&key_path);
    assert!(key.len() >= 32, "a long admin key, got {} chars", key.len());
    #[cfg(unix)]
    {
        assert_eq!(mode(&key_path), 0o600, "the admin key file is private");
        assert_eq!(
            mode(&data),
            0o700,
            "the data folder holds the signing keys and is private"
        );
    }

    let api = server.api();
    let health = expect(api.call("GET", "/healthz", None, None).await, 200);
    assert_eq!(health["status"], "ok");
    expect(api.call("GET", "/readyz", None, None).await, 200);
    // The generated key works.
    expect(
        api.call("POST", "/v1/admin/cleanup", Some(&key), None)
            .await,
        200,
    );

    let logs = server.stop();
    assert!(!logs.contains(&key), "the admin key leaked into the log");
    let events = events(&logs);
    let generated = event(&events, "admin API key").expect("the log says where the key is");
    let path = generated["path"].as_str().expect("a path field");
    assert!(
        path.ends_with("sessiond-data/admin-api-key"),
        "path field: {path}"
    );
    assert!(event(&events, "generated a new signing key").is_some());
}

// ---------------------------------------------------------------------------------------
// 2. Restart persistence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn everything_survives_a_restart_on_the_same_data_folder() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let email = "persist@example.com";

    let first = Server::start(serve(dir.path(), Some(&data)));
    let api = first.api();
    let registered = api.register(email).await;
    let user_id = registered["user"]["id"].clone();
    let session_id = registered["session"]["id"].clone();
    let refreshed = expect(api.refresh(&token(&registered, "refresh_token")).await, 200);
    let access = token(&refreshed, "access_token");
    let refresh = token(&refreshed, "refresh_token");
    let kids_before = api.jwks_kids().await;
    assert_eq!(kids_before.len(), 1);
    assert_eq!(kid_of(&access), kids_before[0]);
    let key_path = data.join("admin-api-key");
    let key_before = std::fs::read(&key_path).expect("admin key file");
    // `stop` asserts a clean exit with code 0 (the client still holds an idle
    // keep-alive connection, which must not hold up the shutdown).
    first.stop();

    let second = Server::start(serve(dir.path(), Some(&data)));
    let api = second.api();
    let login = expect(api.login(email).await, 200);
    assert_eq!(login["user"]["id"], user_id);
    let me = expect(api.whoami(&access).await, 200);
    assert_eq!(me["session"]["id"], session_id);
    assert_eq!(me["user"]["id"], user_id);
    let again = expect(api.refresh(&refresh).await, 200);
    assert_eq!(again["session"]["id"], session_id);
    assert_eq!(api.jwks_kids().await, kids_before, "the same signing key");
    assert_eq!(
        std::fs::read(&key_path).expect("admin key file"),
        key_before,
        "the admin key file is unchanged"
    );
    let key = read_admin_key(&key_path);
    let path = format!("/v1/admin/users/{}/sessions", user_id.as_str().unwrap());
    let sessions = expect(api.call("GET", &path, Some(&key), None).await, 200);
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(2));

    let logs = second.stop();
    let events = events(&logs);
    assert!(event(&events, "admin API key loaded from file").is_some());
    assert!(event(&events, "generated").is_none(), "nothing regenerated");
}

// ---------------------------------------------------------------------------------------
// 3. Graceful shutdown
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_and_exits_cleanly() {
    let dir = tempdir();
    let mut cmd = serve(dir.path(), Some(&dir.path().join("data")));
    // tower_http logs when it starts processing a request.
    cmd.env("RUST_LOG", "info,tower_http=debug");
    let mut server = Server::start(cmd);

    // A registration whose body arrives in two parts: the request is in flight (its
    // head parsed, the handler waiting for the body) when SIGTERM arrives.
    let body = json!({"email": "drain@example.com", "password": PASSWORD}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut conn = TcpStream::connect(server.addr).expect("connect");
    conn.set_read_timeout(Some(STOP)).expect("timeout");
    write!(
        conn,
        "POST /v1/users HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        server.addr,
        body.len()
    )
    .expect("send the head");
    conn.flush().expect("flush");
    server.wait_for_event("started processing request");

    server.sigterm();
    server.wait_for_event("shutting down");
    // The listener closes at once: no new connections once shutting down...
    let deadline = Instant::now() + STOP;
    while TcpStream::connect(server.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        std::thread::sleep(Duration::from_millis(10));
    }
    // ...but the process stays up for the request in flight.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server.is_running(),
        "still draining while a request is in flight"
    );

    conn.write_all(tail.as_bytes()).expect("send the rest");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("the response");
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight request completes: {response}"
    );

    let status = server.wait_exit(STOP);
    let logs = server.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    let events = events(&logs);
    assert!(event(&events, "shutting down").is_some(), "{logs}");
    assert!(event(&events, "sessiond stopped").is_some(), "{logs}");
}

// ---------------------------------------------------------------------------------------
// 4. Secrets never reach the log
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn secrets_never_appear_in_the_log_even_at_debug_level() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut cmd = serve(dir.path(), Some(&data));
    cmd.env("RUST_LOG", "debug");
    let server = Server::start(cmd);
    let api = server.api();
    let admin_key = read_admin_key(&data.join("admin-api-key"));
    let wrong_password = "Tr0ub4dor&3-not-it";
    let wrong_admin_key = format!("sdk_{}", "W".repeat(43));
    let email = "secrets@example.com";
    let mut secrets = vec![
        PASSWORD.to_owned(),
        wrong_password.to_owned(),
        admin_key.clone(),
        wrong_admin_key.clone(),
    ];
    let mut keep = |grant: &Value| {
        secrets.push(token(grant, "access_token"));
        secrets.push(token(grant, "refresh_token"));
    };

    let registered = api.register(email).await;
    keep(&registered);
    let user_id = registered["user"]["id"].as_str().unwrap().to_owned();
    let first_session = registered["session"]["id"].as_str().unwrap().to_owned();

    let (status, problem) = api.login_with(email, wrong_password).await.into();
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("INVALID_CREDENTIALS"))
    );

    let login = expect(api.login(email).await, 200);
    keep(&login);
    let rotated = expect(api.refresh(&token(&login, "refresh_token")).await, 200);
    keep(&rotated);
    // Replaying the rotated token at once (the grace window) answers the same successor.
    let replay = expect(api.refresh(&token(&login, "refresh_token")).await, 200);
    keep(&replay);
    assert_eq!(replay["refresh_token"], rotated["refresh_token"]);

    let access = token(&rotated, "access_token");
    let data_body = json!({"theme": "dark"});
    expect(
        api.call("PUT", "/v1/session/data", Some(&access), Some(data_body))
            .await,
        200,
    );
    let valid = expect(
        api.call(
            "POST",
            "/v1/token/validate",
            None,
            Some(json!({"token": token(&rotated, "refresh_token")})),
        )
        .await,
        200,
    );
    assert_eq!(valid["valid"], true);
    let path = format!("/v1/admin/users/{user_id}/sessions");
    expect(api.call("GET", &path, Some(&admin_key), None).await, 200);
    let introspected = expect(
        api.call(
            "POST",
            "/v1/introspect",
            Some(&admin_key),
            Some(json!({"token": access})),
        )
        .await,
        200,
    );
    assert_eq!(introspected["active"], true);
    expect(
        api.call(
            "POST",
            "/v1/introspect",
            Some(&wrong_admin_key),
            Some(json!({"token": access})),
        )
        .await,
        403,
    );
    expect(
        api.call("POST", "/v1/logout", Some(&access), None).await,
        204,
    );
    let (status, problem) = api.whoami(&access).await.into();
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("SESSION_REVOKED"))
    );

    let logs = server.stop();

    // Not vacuous: the log is there, at debug level, and names sessions and users.
    let events = events(&logs);
    assert!(events.len() > 10, "a real log:\n{logs}");
    assert!(events.iter().any(|e| e["level"] == "DEBUG"), "debug lines");
    let established = event(&events, "session established").expect("a login is logged");
    assert_eq!(established["session_id"], first_session.as_str());
    assert_eq!(
        established["user_id"],
        user_id.as_str(),
        "a plain, searchable id"
    );
    assert!(event(&events, "user registered").is_some());
    assert!(logs.contains(&first_session), "session ids are logged");
    assert!(logs.contains(&user_id), "user ids are logged");
    assert!(event(&events, "session revoked").is_some(), "the logout");

    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the log: {secret}"
        );
        // Not even a recognisable piece of it: a JWT's payload or signature, or the
        // first characters of an opaque token.
        let pieces: Vec<&str> = if secret.matches('.').count() == 2 {
            secret.split('.').skip(1).collect()
        } else {
            let random = secret.strip_prefix("sdk_").unwrap_or(secret);
            vec![&random[..16.min(random.len())]]
        };
        for piece in pieces {
            assert!(
                !logs.contains(piece),
                "part of a secret leaked into the log: {piece}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. The CLI: migrate and keys
// ---------------------------------------------------------------------------------------

fn with_data_dir(cwd: &Path, data: &Path, args: &[&str]) -> CliOutput {
    let mut cmd = sessiond(cwd);
    cmd.arg("--data-dir").arg(data).args(args);
    run(cmd)
}

/// The `keys list` line naming `kid`.
fn key_line<'a>(list: &'a str, kid: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(kid))
        .unwrap_or_else(|| panic!("{kid} not listed:\n{list}"))
}

#[tokio::test]
async fn migrate_and_keys_list_and_rotate() {
    let dir = tempdir();
    let data = dir.path().join("data");

    let migrated = with_data_dir(dir.path(), &data, &["migrate"]).success();
    assert!(
        migrated.stdout.contains("migrations applied"),
        "{}",
        migrated.stdout
    );
    // Migrating twice is harmless.
    with_data_dir(dir.path(), &data, &["migrate"]).success();
    let list = with_data_dir(dir.path(), &data, &["keys", "list"]).success();
    assert!(
        list.stdout.contains("no signing keys yet"),
        "{}",
        list.stdout
    );

    // The first serve creates the signing key.
    let server = Server::start(serve(dir.path(), Some(&data)));
    let api = server.api();
    let old = api.register("keys-old@example.com").await;
    let old_access = token(&old, "access_token");
    let old_kid = kid_of(&old_access);
    assert_eq!(api.jwks_kids().await, vec![old_kid.clone()]);
    server.stop();

    let list = with_data_dir(dir.path(), &data, &["keys", "list"]).success();
    assert_eq!(list.stdout.lines().count(), 1, "{}", list.stdout);
    assert!(key_line(&list.stdout, &old_kid).ends_with("active"));

    // A rotation publishes the key first...
    let published = with_data_dir(dir.path(), &data, &["keys", "rotate"]).success();
    let next_kid = published
        .stdout
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("a kid in {:?}", published.stdout))
        .to_owned();
    let list = with_data_dir(dir.path(), &data, &["keys", "list"]).success();
    assert!(
        key_line(&list.stdout, &next_kid).contains("next: published, signs from"),
        "{}",
        list.stdout
    );
    assert!(key_line(&list.stdout, &old_kid).contains("active until"));

    // ...and `--now` (a compromised key) makes a new one sign at once.
    let rotated = with_data_dir(dir.path(), &data, &["keys", "rotate", "--now"]).success();
    let new_kid = rotated
        .stdout
        .strip_prefix("new signing key ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("a kid in {:?}", rotated.stdout))
        .to_owned();
    assert_ne!(new_kid, old_kid);

    let list = with_data_dir(dir.path(), &data, &["keys", "list"]).success();
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.stdout);
    assert!(key_line(&list.stdout, &new_kid).ends_with("active"));
    let retired = key_line(&list.stdout, &old_kid);
    assert!(
        retired.contains("retired") && retired.contains("still verifying"),
        "{retired}"
    );

    // A server started after the rotation signs with the new key and still accepts
    // tokens signed with the old one until they expire.
    let server = Server::start(serve(dir.path(), Some(&data)));
    let api = server.api();
    let new = api.register("keys-new@example.com").await;
    assert_eq!(kid_of(&token(&new, "access_token")), new_kid);
    // Every key whose tokens may be alive is published: the old one, the superseded
    // "next" one, and the new one.
    let mut all = vec![old_kid.clone(), next_kid.clone(), new_kid.clone()];
    all.sort();
    assert_eq!(api.jwks_kids().await, all);
    expect(api.whoami(&old_access).await, 200);
    server.stop();
}

// ---------------------------------------------------------------------------------------
// 6. `sessiond config`
// ---------------------------------------------------------------------------------------

fn config_cmd(cwd: &Path, file: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut cmd = sessiond(cwd);
    if let Some(file) = file {
        cmd.arg("--config").arg(file);
    }
    cmd.args(args).envs(env.iter().copied());
    run(cmd)
}

#[test]
fn config_prints_the_defaults_as_toml_without_touching_the_disk() {
    let dir = tempdir();
    let shown = config_cmd(dir.path(), None, &["config"], &[]).success();
    let out = &shown.stdout;
    for line in [
        r#"bind = "127.0.0.1:8420""#,
        r#"data_dir = "./sessiond-data""#,
        r#"access_token_ttl = "15m""#,
        r#"refresh_token_ttl = "30days""#,
        r#"refresh_grace = "30s""#,
        r#"idle_timeout = "7days""#,
        r#"absolute_lifetime = "30days""#,
        r#"activity_resolution = "1m""#,
        "max_sessions_per_user = 0",
        r#"on_session_limit = "evict_oldest""#,
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line} in:\n{out}");
    }
    assert!(!out.contains("admin_api_key"), "no key configured:\n{out}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "`config` creates nothing"
    );

    // What it prints is itself a valid configuration file.
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, out).unwrap();
    config_cmd(dir.path(), Some(&file), &["config", "check"], &[]).success();
}

#[test]
fn config_masks_secrets() {
    let dir = tempdir();
    let key = "Kq8vT3nZ0pW5yR2mX7bL4cJ9hF6dS1aG-eU_iO0q";
    assert_eq!(key.len(), 40);
    let env = [
        ("SESSIOND_ADMIN_API_KEY", key),
        ("SESSIOND_DATABASE_URL", "postgres://u:hunter2@h/db"),
    ];
    let shown = config_cmd(dir.path(), None, &["config"], &env).success();
    let all = format!("{}{}", shown.stdout, shown.stderr);
    assert!(!all.contains(key) && !all.contains("hunter2"), "{all}");
    assert!(shown.stdout.contains(r#"admin_api_key = "***""#), "{all}");
    assert!(
        shown
            .stdout
            .contains(r#"database_url = "postgres://u:***@h/db""#),
        "{all}"
    );
    config_cmd(dir.path(), None, &["config", "check"], &env).success();

    // Nor does a server that cannot reach its database say the password.
    let env = [
        ("SESSIOND_ADMIN_API_KEY", key),
        (
            "SESSIOND_DATABASE_URL",
            "postgres://u:hunter2@127.0.0.1:1/db",
        ),
    ];
    let failed = config_cmd(dir.path(), None, &["serve", "--bind", "127.0.0.1:0"], &env).failure();
    let all = format!("{}{}", failed.stdout, failed.stderr);
    assert!(!all.contains(key) && !all.contains("hunter2"), "{all}");
}

#[test]
fn config_check_names_the_offending_key() {
    let dir = tempdir();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let bad = write("bad.toml", "idle_timeout = \"banana\"\n");
    let out = config_cmd(dir.path(), Some(&bad), &["config", "check"], &[]).failure();
    assert!(out.stderr.contains("idle_timeout"), "{}", out.stderr);
    assert!(
        out.stderr.contains("bad.toml"),
        "names the file: {}",
        out.stderr
    );

    let typo = write("typo.toml", "idle_timout = \"1d\"\n");
    let out = config_cmd(dir.path(), Some(&typo), &["config", "check"], &[]).failure();
    assert!(out.stderr.contains("idle_timout"), "{}", out.stderr);

    let env = [("SESSIOND_MAX_SESSIONS_PER_USER", "abc")];
    let out = config_cmd(dir.path(), None, &["config", "check"], &env).failure();
    assert!(
        out.stderr.contains("max_sessions_per_user"),
        "{}",
        out.stderr
    );

    // A misspelt environment variable is caught too, not silently ignored.
    let env = [("SESSIOND_IDLE_TIMOUT", "1d")];
    let out = config_cmd(dir.path(), None, &["config", "check"], &env).failure();
    assert!(out.stderr.contains("idle_timout"), "{}", out.stderr);

    // Values of the wrong shape are refused as they are read, under their key and with
    // what is wrong.
    let env = [("SESSIOND_REDIS_URL", "localhost:6379")];
    let out = config_cmd(dir.path(), None, &["config", "check"], &env).failure();
    assert!(out.stderr.contains("redis_url"), "{}", out.stderr);
    assert!(out.stderr.contains("redis://"), "{}", out.stderr);
    let proxies = write(
        "proxies.toml",
        "trusted_proxies = [\"10.0.0.0/8\", \"gateway\"]\n",
    );
    let out = config_cmd(dir.path(), Some(&proxies), &["config", "check"], &[]).failure();
    assert!(out.stderr.contains("trusted_proxies"), "{}", out.stderr);
    assert!(out.stderr.contains("\"gateway\""), "{}", out.stderr);

    // Values of the right type that make no sense.
    let silly = write("silly.toml", "refresh_grace = \"1h\"\n");
    let out = config_cmd(dir.path(), Some(&silly), &["config", "check"], &[]).failure();
    assert!(out.stderr.contains("refresh_grace"), "{}", out.stderr);

    let missing = dir.path().join("missing.toml");
    let out = config_cmd(dir.path(), Some(&missing), &["config", "check"], &[]).failure();
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);

    // A broken configuration stops `serve` before it starts.
    let out = config_cmd(dir.path(), Some(&bad), &["serve"], &[]).failure();
    assert!(out.stderr.contains("idle_timeout"), "{}", out.stderr);

    let good = write(
        "good.toml",
        "idle_timeout = \"1d\"\naccess_token_ttl = \"5m\"\nmax_sessions_per_user = 3\n\
         on_session_limit = \"reject\"\n",
    );
    let out = config_cmd(dir.path(), Some(&good), &["config", "check"], &[]).success();
    assert!(
        out.stdout.contains("configuration is valid"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------
// 7. Precedence: defaults < file < environment < flags
// ---------------------------------------------------------------------------------------

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let dir = tempdir();
    let file = dir.path().join("sessiond.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:1\"\naccess_token_ttl = \"10m\"\nissuer = \"from-file\"\n\
         idle_timeout = \"1d\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("SESSIOND_CONFIG", file),
        ("SESSIOND_BIND", "127.0.0.1:2"),
        ("SESSIOND_ACCESS_TOKEN_TTL", "5m"),
    ];
    let out = config_cmd(dir.path(), None, &["--bind", "127.0.0.1:3", "config"], &env).success();
    let shown = out.stdout.lines().collect::<Vec<_>>();
    for line in [
        r#"bind = "127.0.0.1:3""#,
        r#"access_token_ttl = "5m""#,
        r#"issuer = "from-file""#,
        r#"idle_timeout = "1day""#,
        r#"refresh_grace = "30s""#,
    ] {
        assert!(shown.contains(&line), "missing {line} in:\n{}", out.stdout);
    }
}

#[tokio::test]
async fn a_server_runs_with_file_environment_and_flag_settings_combined() {
    let dir = tempdir();
    let data = dir.path().join("from-file-data");
    let file = dir.path().join("sessiond.toml");
    std::fs::write(
        &file,
        format!(
            "bind = \"127.0.0.1:1\"\naccess_token_ttl = \"10m\"\ndata_dir = {:?}\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    // No subcommand: `serve` is the default.
    let mut cmd = sessiond(dir.path());
    cmd.arg("--config")
        .arg(&file)
        .args(["--bind", "127.0.0.1:0"])
        .env("SESSIOND_ACCESS_TOKEN_TTL", "5m");
    let server = Server::start(cmd);
    assert_ne!(server.addr.port(), 1, "--bind beats the file");
    assert!(
        data.join("admin-api-key").is_file(),
        "data_dir from the file"
    );
    assert!(!dir.path().join("sessiond-data").exists());

    let grant = server.api().register("ttl@example.com").await;
    assert_eq!(grant["expires_in"], 300, "the environment beats the file");
    let claims = jwt_part(&token(&grant, "access_token"), 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    server.stop();
}
