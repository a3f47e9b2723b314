//! The verifier conformance scenario of `clients/VERIFIER-CONFORMANCE.md`, written once and
//! run against every verifier library through its **driver**: a small HTTP app that
//! protects `GET /protected` with the library's framework integration and answers
//! `GET /stats`. The scenario only talks HTTP to the driver, so the Rust driver (in
//! process: the axum extractor, and the tower layer) and the TypeScript and Python drivers
//! (child processes) are held to exactly the same checks.
//!
//! Each library runs on SQLite (one instance) and on two instances sharing PostgreSQL and
//! Redis; the driver follows instance A, logouts and revocations go to B. On SQLite the one
//! instance plays both parts. The TypeScript and Python cases need their folders
//! (`clients/verify-js`, `clients/python`): without them they fail under CI and are
//! skipped, saying so, otherwise.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use sessiond_store::testing::postgres::{self, TestDatabase};
use tempfile::TempDir;

use crate::common::*;

const ADMIN_KEY: &str = "conformance-admin-key-0123456789abcdef";
const VERIFIER_KEY: &str = "conformance-verifier-key-0123456789abcdef";
/// A logout or a deactivation must be refused by the driver within this.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// The drivers' staleness bound. sessiond's heartbeat comes every 5 s (fixed), so a bound
/// at or under 5 s would flap between heartbeats on a healthy feed; 7 s is the shortest
/// bound with room for a late heartbeat on a loaded machine.
const STALENESS: Duration = Duration::from_secs(7);
const HEARTBEAT: Duration = Duration::from_secs(5);
const JWKS_COOLDOWN: Duration = Duration::from_secs(1);
/// How long a driver may take to reconnect and prove itself fresh after its instance
/// came back: a reconnection attempt, then at most a heartbeat.
const RECONNECT: Duration = Duration::from_secs(12);
const DRIVER_STARTUP: Duration = Duration::from_secs(60);
const PREPARE_LIMIT: Duration = Duration::from_secs(15 * 60);

// ---------------------------------------------------------------------------------------
// The tests: every library on every topology
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_axum_extractor_on_sqlite() {
    scenario(Library::RustExtractor, Topology::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_axum_extractor_on_two_instances() {
    if let Some(topology) = Topology::two_instances().await {
        scenario(Library::RustExtractor, topology).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_tower_layer_on_sqlite() {
    scenario(Library::RustLayer, Topology::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_tower_layer_on_two_instances() {
    if let Some(topology) = Topology::two_instances().await {
        scenario(Library::RustLayer, topology).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_on_sqlite() {
    if Library::TypeScript.prepared() {
        scenario(Library::TypeScript, Topology::sqlite()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_on_two_instances() {
    if Library::TypeScript.prepared()
        && let Some(topology) = Topology::two_instances().await
    {
        scenario(Library::TypeScript, topology).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_on_sqlite() {
    if Library::Python.prepared() {
        scenario(Library::Python, Topology::sqlite()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_on_two_instances() {
    if Library::Python.prepared()
        && let Some(topology) = Topology::two_instances().await
    {
        scenario(Library::Python, topology).await;
    }
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

async fn scenario(library: Library, mut topology: Topology) {
    let label = format!("{library:?} on {}", topology.label());
    let started = Instant::now();

    // Before the scenario proper, an expired token signed with the key the scenario
    // starts with: A briefly on 1 s tokens.
    topology.start_with(0, &[("SESSIOND_ACCESS_TOKEN_TTL", "1s")]);
    let expired = token(
        &topology.a().register("expired@example.com").await,
        "access_token",
    );
    topology.stop(0);
    topology.start_all();
    let (a, b) = (topology.a(), topology.b());
    let driver = Driver::start(library, &topology.a_url()).await;

    // 1. A fresh token: 200 with its sid (and sub).
    let email = "conformance@example.com";
    let grant = a.register(email).await;
    let user_id = grant["user"]["id"].as_str().expect("a user id").to_owned();
    let first = token(&grant, "access_token");
    let answer = driver.get(Some(&first)).await;
    answer.accepted();
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/json"),
        "{answer:?}"
    );
    assert_eq!(answer.body["sid"], grant["session"]["id"], "{answer:?}");
    assert_eq!(answer.body["sub"], json!(user_id), "{answer:?}");

    // 2. Logout on the other instance: refused within the bound, with its reason.
    b.post_as("/v1/logout", &first, json!({})).await.ok(204);
    let took = refused_within(&driver, &first, "logout").await;
    say(&format!("{label}: logout refused after {took:?}"));

    // 3. Deactivation: every other token of the user is refused.
    let on_a = token(&a.login(email).await.ok(200), "access_token");
    let on_b = token(&b.login(email).await.ok(200), "access_token");
    for t in [&on_a, &on_b] {
        driver.get(Some(t)).await.accepted();
    }
    b.admin(
        Method::PATCH,
        &format!("/v1/admin/users/{user_id}"),
        Some(json!({"active": false})),
    )
    .await
    .ok(200);
    for t in [&on_a, &on_b] {
        refused_within(&driver, t, "user_deactivated").await;
    }

    // 4. A driver started after those revocations refuses them at once: its snapshot.
    {
        let late = Driver::start(library, &topology.a_url()).await;
        for (t, reason) in [
            (&first, "logout"),
            (&on_a, "user_deactivated"),
            (&on_b, "user_deactivated"),
        ] {
            late.get(Some(t)).await.revoked(reason);
        }
        for d in [&late, &driver] {
            let (sessions, users) = d.stats().await;
            assert!(
                sessions >= 3 && users >= 1,
                "deny-set of {sessions} sessions and {users} users"
            );
        }
    }

    // 5. The JWT attack set, a missing token and an expired one.
    let attacked = "attacked@example.com";
    let good = token(&a.register(attacked).await, "access_token");
    driver.get(Some(&good)).await.accepted();
    driver.get(None).await.problem(401, "TOKEN_NOT_PROVIDED");
    let public_key = a.jwks().await["keys"][0]["x"]
        .as_str()
        .expect("an Ed25519 public key")
        .to_owned();
    for (what, forged) in attack_set(&good, &public_key) {
        let answer = driver.get(Some(&forged)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "TOKEN_INVALID"),
            "{what} ({forged}): {answer:?}"
        );
    }
    // The scenario can get here within its second of life: wait it out.
    let exp = jwt_part(&expired, 1)["exp"].as_u64().expect("an exp claim");
    let now = || {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since_epoch.expect("a clock after 1970").as_secs()
    };
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
        .get(Some(&expired))
        .await
        .problem(401, "TOKEN_EXPIRED");
    // The unknown kids above used up the JWKS cooldown; the next one may refetch after it.
    let cooldown_ends = Instant::now() + JWKS_COOLDOWN + Duration::from_millis(100);

    // 6. Key rotation: new tokens accepted (an unknown kid: one JWKS refetch), old ones
    // still accepted until they expire.
    let old = good;
    topology.rotate_keys();
    let (a, b) = (topology.a(), topology.b());
    let new = token(&a.login(attacked).await.ok(200), "access_token");
    assert_ne!(kid_of(&new), kid_of(&old), "a token of the new key");
    tokio::time::sleep_until(cooldown_ends.into()).await;
    // The instances were down for a moment: the driver may be stale until it reconnects.
    accepted_within(&driver, &new, RECONNECT).await;
    driver.get(Some(&old)).await.accepted();

    // 7. The followed instance stops: every answer fails closed within the staleness
    // bound plus a heartbeat. A session revoked before the driver reconnects (on B
    // while A is down; on SQLite, as soon as A is back) is refused once it has.
    let doomed_grant = b.login(attacked).await.ok(200);
    let doomed = token(&doomed_grant, "access_token");
    let doomed_sid = doomed_grant["session"]["id"].as_str().expect("a sid");
    driver.get(Some(&doomed)).await.accepted();
    topology.stop(0);
    let took = stale_within(
        &driver,
        &new,
        STALENESS + HEARTBEAT + Duration::from_secs(2),
    )
    .await;
    say(&format!("{label}: failing closed {took:?} after A stopped"));
    for t in [&new, &doomed, &old] {
        driver
            .get(Some(t))
            .await
            .problem(503, "REVOCATION_FEED_STALE");
    }
    let revoked_at = if topology.two_instances {
        b.admin(
            Method::DELETE,
            &format!("/v1/admin/sessions/{doomed_sid}"),
            None,
        )
        .await
        .ok(204);
        let at = Instant::now();
        topology.start(0);
        at
    } else {
        topology.start(0);
        topology
            .a()
            .admin(
                Method::DELETE,
                &format!("/v1/admin/sessions/{doomed_sid}"),
                None,
            )
            .await
            .ok(204);
        Instant::now()
    };
    refused_after_reconnect(&driver, &doomed, revoked_at, topology.two_instances).await;
    accepted_within(&driver, &new, RECONNECT).await;
    driver.get(Some(&doomed)).await.revoked("admin");

    say(&format!(
        "{label}: the conformance scenario passed in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    drop(driver);
    topology.stop_all();
}

/// Polls until the driver refuses `token` as revoked for `reason`; fails past
/// [`REVOCATION_BOUND`] or on any answer but 200 or that refusal. How long it took.
async fn refused_within(driver: &Driver, token: &str, reason: &str) -> Duration {
    let started = Instant::now();
    loop {
        let answer = driver.get(Some(token)).await;
        if answer.status != 200 {
            answer.revoked(reason);
            return started.elapsed();
        }
        assert!(
            started.elapsed() < REVOCATION_BOUND,
            "still accepted {REVOCATION_BOUND:?} after the revocation ({reason})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until the driver accepts `token`, allowing only stale-feed refusals meanwhile.
async fn accepted_within(driver: &Driver, token: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let answer = driver.get(Some(token)).await;
        if answer.status == 200 {
            return answer.accepted();
        }
        answer.problem(503, "REVOCATION_FEED_STALE");
        assert!(
            started.elapsed() < limit,
            "still failing closed {limit:?} later"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the driver answers 503 `REVOCATION_FEED_STALE` for a good token; fails past
/// `limit` or on any answer but 200 or that one.
async fn stale_within(driver: &Driver, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = driver.get(Some(token)).await;
        if answer.status != 200 {
            answer.problem(503, "REVOCATION_FEED_STALE");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still accepting {limit:?} after the followed instance stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After the followed instance is back: the revoked `token` is never accepted (on two
/// instances it was revoked before the driver could reconnect; on one, a 200 is allowed
/// only within [`REVOCATION_BOUND`] of the revocation) and is refused as revoked once
/// the driver is fresh.
async fn refused_after_reconnect(
    driver: &Driver,
    token: &str,
    revoked_at: Instant,
    revoked_before_reconnect: bool,
) {
    loop {
        let answer = driver.get(Some(token)).await;
        match answer.status {
            503 => {
                answer.problem(503, "REVOCATION_FEED_STALE");
            }
            200 => assert!(
                !revoked_before_reconnect && revoked_at.elapsed() < REVOCATION_BOUND,
                "a session revoked while the driver was away was accepted after it came back"
            ),
            _ => {
                answer.revoked("admin");
                return;
            }
        }
        assert!(
            revoked_at.elapsed() < RECONNECT,
            "not refused {RECONNECT:?} after the instance came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Forgeries of a good token, each named: every one must be `TOKEN_INVALID`.
fn attack_set(good: &str, public_key: &str) -> Vec<(&'static str, String)> {
    let parts: Vec<&str> = good.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let kid = jwt_part(good, 0)["kid"].clone();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let with_header = |h: Value| format!("{}.{payload}.{signature}", b64(&h));
    let hs256_header = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let signing_input = format!("{hs256_header}.{payload}");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_key.as_bytes()),
        signing_input.as_bytes(),
    );
    vec![
        (
            "alg none, unsigned",
            format!(
                "{}.{payload}.",
                b64(&json!({"alg": "none", "typ": "at+jwt"}))
            ),
        ),
        (
            "alg none with the signature kept",
            with_header(json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        ),
        (
            "HS256 signed with the public key",
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref())),
        ),
        (
            "unknown kid",
            with_header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "no-such-key"})),
        ),
        (
            "path-like kid",
            with_header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "../../etc/passwd"})),
        ),
        (
            "jku header",
            with_header(
                json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jku": "http://127.0.0.1:1/jwks.json"}),
            ),
        ),
        (
            "jwk header",
            with_header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "evil",
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}})),
        ),
        (
            "typ JWT",
            with_header(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})),
        ),
        (
            "no kid",
            with_header(json!({"alg": "EdDSA", "typ": "at+jwt"})),
        ),
        ("padded header", format!("{header}=.{payload}.{signature}")),
        (
            "non-base64url payload",
            format!("{header}.{payload}+/.{signature}"),
        ),
        (
            "truncated signature",
            format!("{header}.{payload}.{}", &signature[..signature.len() - 4]),
        ),
        (
            "another signature",
            format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode([7u8; 64])),
        ),
        ("two segments", format!("{header}.{payload}")),
        ("garbage", "not a token at all".to_owned()),
    ]
}

// ---------------------------------------------------------------------------------------
// sessiond: one instance on SQLite, or two on PostgreSQL + Redis, on fixed ports
// ---------------------------------------------------------------------------------------

/// The sessiond instances of one scenario run. Each keeps its port across restarts, so a
/// driver following A finds it again.
struct Topology {
    dir: TempDir,
    env: Vec<(String, String)>,
    /// A's port, then B's (two instances only).
    ports: Vec<u16>,
    servers: Vec<Option<Server>>,
    two_instances: bool,
    // Last: the database outlives the instances.
    _database: Option<TestDatabase>,
}

impl Topology {
    fn sqlite() -> Topology {
        Topology::new(1, Vec::new(), None)
    }

    /// `None` (said on stderr) when PostgreSQL or Redis is unavailable and `CI` is unset.
    async fn two_instances() -> Option<Topology> {
        let database = postgres::fresh_database().await?;
        if let Err(reason) = redis_ping() {
            assert!(
                !in_ci(),
                "Redis not reachable at {REDIS_URL}: {reason}\nCI is set, so this fails"
            );
            say(&format!(
                "skipped: Redis not reachable at {REDIS_URL} ({reason})"
            ));
            return None;
        }
        let env = vec![
            (
                "SESSIOND_DATABASE_URL".to_owned(),
                database.url().to_owned(),
            ),
            (
                "SESSIOND_DATABASE_MAX_CONNECTIONS".to_owned(),
                "8".to_owned(),
            ),
            ("SESSIOND_REDIS_URL".to_owned(), REDIS_URL.to_owned()),
            (
                "SESSIOND_REDIS_PREFIX".to_owned(),
                format!("sessiond-test:{}:", database.name()),
            ),
        ];
        Some(Topology::new(2, env, Some(database)))
    }

    fn new(
        instances: usize,
        mut env: Vec<(String, String)>,
        database: Option<TestDatabase>,
    ) -> Self {
        for (key, value) in [
            ("SESSIOND_ADMIN_API_KEY", ADMIN_KEY.to_owned()),
            (
                "SESSIOND_VERIFIER_API_KEYS",
                format!("[\"{VERIFIER_KEY}\"]"),
            ),
            ("SESSIOND_LOG_FORMAT", "json".to_owned()),
            ("SESSIOND_RATE_LIMITS__ENABLED", "false".to_owned()),
        ] {
            env.push((key.to_owned(), value));
        }
        Topology {
            dir: tempdir(),
            env,
            ports: (0..instances).map(|_| free_port()).collect(),
            servers: (0..instances).map(|_| None).collect(),
            two_instances: instances == 2,
            _database: database,
        }
    }

    fn label(&self) -> &'static str {
        if self.two_instances {
            "two instances (PostgreSQL + Redis)"
        } else {
            "SQLite"
        }
    }

    /// `sessiond ARGS` as instance `i`: in a folder of its own, with the shared settings
    /// (and, on SQLite, the one data folder).
    fn command(&self, i: usize, args: &[&str]) -> Command {
        let cwd = self.dir.path().join(format!("instance-{i}"));
        std::fs::create_dir_all(&cwd).expect("an instance folder");
        let mut cmd = sessiond(&cwd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.two_instances {
            cmd.arg("--data-dir").arg(self.dir.path().join("data"));
        }
        cmd.args(args);
        cmd
    }

    fn start_with(&mut self, i: usize, extra: &[(&str, &str)]) {
        let bind = format!("127.0.0.1:{}", self.ports[i]);
        let mut cmd = self.command(i, &["serve", "--bind", &bind]);
        cmd.envs(extra.iter().copied());
        self.servers[i] = Some(Server::start(cmd));
    }

    fn start(&mut self, i: usize) {
        self.start_with(i, &[]);
    }

    fn start_all(&mut self) {
        for i in 0..self.ports.len() {
            self.start(i);
        }
    }

    fn stop(&mut self, i: usize) {
        if let Some(server) = self.servers[i].take() {
            server.stop();
        }
    }

    fn stop_all(&mut self) {
        for i in 0..self.ports.len() {
            self.stop(i);
        }
    }

    /// `sessiond keys rotate --now` with every instance stopped, then all started again.
    fn rotate_keys(&mut self) {
        self.stop_all();
        let rotated = run(self.command(0, &["keys", "rotate", "--now"])).success();
        assert!(
            rotated.stdout.starts_with("new signing key"),
            "{}",
            rotated.stdout
        );
        self.start_all();
    }

    fn a_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    fn api(&self, i: usize) -> Api {
        Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            base: format!("http://127.0.0.1:{}", self.ports[i]),
            admin_key: ADMIN_KEY.to_owned(),
        }
    }

    /// The instance the driver follows.
    fn a(&self) -> Api {
        self.api(0)
    }

    /// The other instance, where logouts and revocations go (A itself on SQLite).
    fn b(&self) -> Api {
        self.api(self.ports.len() - 1)
    }
}

// ---------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Library {
    /// `sessiond_verify::extract::VerifiedToken` in an axum handler.
    RustExtractor,
    /// `sessiond_verify::layer::VerifyLayer` in front of an axum route.
    RustLayer,
    TypeScript,
    Python,
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

impl Library {
    /// The library's folder, for the ones whose driver is a child process.
    fn folder(self) -> Option<&'static str> {
        match self {
            Library::RustExtractor | Library::RustLayer => None,
            Library::TypeScript => Some("clients/verify-js"),
            Library::Python => Some("clients/python"),
        }
    }

    /// Whether the driver can run: its folder is there and its build (or virtualenv) is
    /// made, once per test process. A missing folder fails under CI and skips otherwise.
    fn prepared(self) -> bool {
        let Some(folder) = self.folder() else {
            return true;
        };
        let dir = repository().join(folder);
        if !dir.is_dir() {
            assert!(
                !in_ci(),
                "{folder} is missing: the {self:?} verifier conformance scenario cannot run, and CI is set"
            );
            say(&format!(
                "skipped: {folder} is not in this checkout, so the {self:?} driver cannot run"
            ));
            return false;
        }
        static PREPARED: OnceLock<Mutex<Vec<Library>>> = OnceLock::new();
        let mut prepared = PREPARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !prepared.contains(&self) {
            match self {
                Library::TypeScript => {
                    if !dir.join("node_modules").is_dir() {
                        prepare_step(&dir, "npm", &["ci", "--no-audit", "--no-fund"]);
                    }
                    prepare_step(&dir, "npm", &["run", "build"]);
                }
                Library::Python => {
                    if !dir.join(".venv/bin/python").exists() {
                        prepare_step(&dir, "scripts/setup.sh", &[]);
                    }
                }
                Library::RustExtractor | Library::RustLayer => {}
            }
            prepared.push(self);
        }
        true
    }
}

/// Runs one preparation command in `dir`, its output streaming through; it must succeed
/// within [`PREPARE_LIMIT`].
fn prepare_step(dir: &Path, program: &str, args: &[&str]) {
    let started = Instant::now();
    let program_path = if program.contains('/') {
        dir.join(program).into_os_string()
    } else {
        program.into()
    };
    let mut child = Command::new(&program_path)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} {args:?} did not start in {}: {e}", dir.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > PREPARE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish within {PREPARE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// One answer of a driver.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    content_type: Option<String>,
    challenge: Option<String>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn accepted(&self) {
        assert_eq!(self.status, 200, "{self:?}");
        assert!(self.body["sid"].is_string(), "{self:?}");
    }

    /// A problem+json refusal with this status and code (401s with their challenge).
    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{self:?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json"),
            "{self:?}"
        );
        if status == 401 {
            let scheme = self.challenge.as_deref().and_then(|c| c.split(' ').next());
            assert_eq!(scheme, Some("Bearer"), "{self:?}");
        }
    }

    #[track_caller]
    fn revoked(&self, reason: &str) {
        self.problem(401, "SESSION_REVOKED");
        assert_eq!(self.body["revoked_reason"], reason, "{self:?}");
    }
}

/// A running driver, stopped when dropped.
struct Driver {
    base: String,
    http: reqwest::Client,
    _running: Running,
}

enum Running {
    InProcess(tokio::task::JoinHandle<()>),
    /// Held only to be dropped: that stops the process.
    Child(#[allow(dead_code)] ChildDriver),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::InProcess(task) = self {
            task.abort();
        }
    }
}

impl Driver {
    /// Starts `library`'s driver following `sessiond_url`, and waits until it listens.
    async fn start(library: Library, sessiond_url: &str) -> Driver {
        let (port, running) = match library {
            Library::RustExtractor | Library::RustLayer => {
                rust_driver(library == Library::RustLayer, sessiond_url).await
            }
            Library::TypeScript => {
                let script = repository().join("clients/verify-js/conformance/driver.mjs");
                let mut cmd = Command::new("node");
                cmd.arg(script);
                ChildDriver::start(cmd, sessiond_url).await
            }
            Library::Python => {
                let python = repository().join("clients/python/.venv/bin/python");
                let mut cmd = Command::new(python);
                cmd.args(["-m", "sessiond_verify._conformance_driver"]);
                ChildDriver::start(cmd, sessiond_url).await
            }
        };
        Driver {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            _running: running,
        }
    }

    /// `GET /protected`, with `Authorization: Bearer <token>` when given.
    async fn get(&self, token: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}/protected", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("the driver answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        };
        let (content_type, challenge) = (header("content-type"), header("www-authenticate"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            content_type,
            challenge,
        }
    }

    /// `GET /stats`: the deny-set's sizes (sessions, users).
    async fn stats(&self) -> (u64, u64) {
        let response = self
            .http
            .get(format!("{}/stats", self.base))
            .send()
            .await
            .expect("the driver answers");
        assert_eq!(response.status().as_u16(), 200);
        let stats: Value = response.json().await.expect("JSON stats");
        let count = |name: &str| {
            stats[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} in {stats}"))
        };
        (count("denied_sessions"), count("denied_users"))
    }
}

/// The Rust driver, in this process: the axum extractor or the tower layer on a port of
/// its own, with the same settings the child drivers get from their environment.
async fn rust_driver(with_layer: bool, sessiond_url: &str) -> (u16, Running) {
    use axum::routing::get;
    use axum::{Extension, Json, Router};
    use sessiond_verify::extract::VerifiedToken;
    use sessiond_verify::layer::VerifyLayer;
    use sessiond_verify::{Claims, Config, Verifier};

    let mut config = Config::new(sessiond_url, VERIFIER_KEY, "sessiond", "sessiond");
    config.staleness_bound = STALENESS;
    config.jwks_cooldown = JWKS_COOLDOWN;
    let verifier = Verifier::start(config)
        .await
        .expect("the Rust verifier starts");
    let answer = |claims: Claims| Json(json!({"sub": claims.sub, "sid": claims.sid}));
    let protected = if with_layer {
        Router::new()
            .route(
                "/protected",
                get(move |Extension(claims): Extension<Claims>| async move { answer(claims) }),
            )
            .layer(VerifyLayer::new(verifier.clone()))
    } else {
        Router::new()
            .route(
                "/protected",
                get(move |VerifiedToken(claims): VerifiedToken| async move { answer(claims) }),
            )
            .with_state(verifier.clone())
    };
    let stats = Router::new().route(
        "/stats",
        get(move || {
            let (sessions, users) = verifier.denied_count();
            async move { Json(json!({"denied_sessions": sessions, "denied_users": users})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the driver");
    let port = listener.local_addr().expect("its address").port();
    let app = protected.merge(stats);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the driver serves");
    });
    (port, Running::InProcess(task))
}

/// A driver run as a child process per the contract: started from the repository root
/// with its settings in the environment; it prints `listening <port>` once ready.
struct ChildDriver {
    child: Child,
}

impl ChildDriver {
    async fn start(mut cmd: Command, sessiond_url: &str) -> (u16, Running) {
        cmd.current_dir(repository())
            .env("SESSIOND_URL", sessiond_url)
            .env("SESSIOND_VERIFIER_KEY", VERIFIER_KEY)
            .env("SESSIOND_ISSUER", "sessiond")
            .env("SESSIOND_AUDIENCE", "sessiond")
            .env("STALENESS_MS", STALENESS.as_millis().to_string())
            .env("JWKS_COOLDOWN_MS", JWKS_COOLDOWN.as_millis().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        // Its stderr, for the failure message; drained so the driver never blocks on it.
        let errors = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let driver = ChildDriver { child };
        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(DRIVER_STARTUP))
            .await
            .expect("the reader");
        let port = line
            .ok()
            .and_then(|l| l.strip_prefix("listening ")?.trim().parse::<u16>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{cmd:?} printed no `listening <port>` line within {DRIVER_STARTUP:?}; stderr:\n{}",
                    errors.lock().unwrap_or_else(|e| e.into_inner())
                )
            });
        (port, Running::Child(driver))
    }
}

impl Drop for ChildDriver {
    fn drop(&mut self) {
        // SIGTERM as the contract says, then a kill if it lingers.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
