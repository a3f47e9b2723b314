//! Several real `sessiond serve` processes on one PostgreSQL database (and, where a test
//! says so, one Redis), the way the README's "Running several instances" recipe deploys
//! them: what one instance does, the others honour (and how soon, for revocation).
//!
//! Each test gets a fresh database from `sessiond_store::testing::postgres`. Without a
//! reachable PostgreSQL (and with `CI` unset) a test says so on stderr and passes; the
//! Redis variant does the same for Redis on 127.0.0.1:6379.

use std::future::Future;
use std::ops::Deref;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessiond_store::testing::postgres::{self, TestDatabase};
use tempfile::TempDir;
use tokio::task::JoinSet;

use crate::common::{
    Api, REDIS_URL, Server, expect, expect_problem, in_ci, kid_of, redis_ping, run, say, sessiond,
    tempdir, token,
};

/// The admin key every instance of a cluster shares (at least 32 characters).
const ADMIN_KEY: &str = "multi-instance-test-admin-key-0123456789";
/// How long a poll loop waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Harness: a cluster of instances sharing one database
// ---------------------------------------------------------------------------------------

/// What the instances of one test share: a fresh database, the admin key and every other
/// setting. Each instance runs in a folder of its own.
struct Cluster {
    env: Vec<(String, String)>,
    dir: TempDir,
    started: AtomicUsize,
    database: TestDatabase,
}

impl Cluster {
    /// A cluster on a fresh PostgreSQL database, or `None` (said on stderr) when the
    /// PostgreSQL tests are skipped.
    async fn postgres() -> Option<Cluster> {
        let database = postgres::fresh_database().await?;
        let cluster = Cluster {
            env: Vec::new(),
            dir: tempdir(),
            started: AtomicUsize::new(0),
            database,
        };
        let url = cluster.database.url().to_owned();
        Some(
            cluster
                .with("SESSIOND_DATABASE_URL", &url)
                .with("SESSIOND_ADMIN_API_KEY", ADMIN_KEY)
                .with("SESSIOND_LOG_FORMAT", "json")
                // Several instances, and several tests at once, stay well under
                // PostgreSQL's default 100 connections.
                .with("SESSIOND_DATABASE_MAX_CONNECTIONS", "8"),
        )
    }

    fn with(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds the shared Redis, with a key prefix of this test's own; `None` (said on
    /// stderr) when Redis is unreachable and `CI` is unset.
    fn with_redis(self) -> Option<Self> {
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
        let prefix = format!("sessiond-test:{}:", self.database.name());
        Some(
            self.with("SESSIOND_REDIS_URL", REDIS_URL)
                .with("SESSIOND_REDIS_PREFIX", &prefix),
        )
    }

    /// `sessiond ARGS` with the cluster's settings, in a fresh folder of its own.
    fn command(&self, args: &[&str]) -> Command {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let cwd = self.dir.path().join(format!("instance-{n}"));
        std::fs::create_dir(&cwd).expect("an instance folder");
        let mut cmd = sessiond(&cwd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).args(args);
        cmd
    }

    /// Starts one more `sessiond serve` on a port of its own.
    fn serve(&self) -> Instance {
        let server = Server::start(self.command(&["serve", "--bind", "127.0.0.1:0"]));
        Instance {
            api: server.api(),
            server,
        }
    }
}

/// A running instance; it derefs to its HTTP client.
struct Instance {
    api: Api,
    server: Server,
}

impl Deref for Instance {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A session created by the admin API for `user_id`, through any instance's client.
async fn admin_session(api: &Api, user_id: &str) -> Value {
    let body = json!({"user_id": user_id});
    let answer = api
        .call("POST", "/v1/admin/sessions", Some(ADMIN_KEY), Some(body))
        .await;
    expect(answer, 201)
}

/// What these tests ask of an instance beyond the shared client; admin calls use the
/// cluster's key.
impl Instance {
    async fn admin_revoke(&self, session_id: &str) {
        let path = format!("/v1/admin/sessions/{session_id}");
        expect(self.call("DELETE", &path, Some(ADMIN_KEY), None).await, 204);
    }

    async fn logout(&self, access_token: &str) {
        let answer = self
            .call("POST", "/v1/logout", Some(access_token), None)
            .await;
        expect(answer, 204);
    }

    /// The ids of the user's live sessions, sorted.
    async fn live_sessions(&self, user_id: &str) -> Vec<String> {
        let path = format!("/v1/admin/users/{user_id}/sessions");
        let answer = expect(self.call("GET", &path, Some(ADMIN_KEY), None).await, 200);
        let mut ids: Vec<String> = answer["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(id)
            .collect();
        ids.sort();
        ids
    }

    /// The sample of `series` (a name with its labels as rendered, e.g.
    /// `name{a="b"}`) on `/metrics`, if it is there.
    async fn sample(&self, series: &str) -> Option<f64> {
        let (status, body) = self.call("GET", "/metrics", None, None).await;
        assert_eq!(status, 200, "{body}");
        let text = body.as_str().expect("Prometheus text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Polls `series` until `wanted` holds for its sample, within `PATIENCE` × 3.
    async fn sample_until(&self, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let started = Instant::now();
        loop {
            let sample = self.sample(series).await;
            if let Some(value) = sample.filter(|v| wanted(*v)) {
                return value;
            }
            assert!(
                started.elapsed() < PATIENCE * 3,
                "{series} is {sample:?} after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of a counter on `/metrics` (0 when it has not been counted yet).
    async fn counter(&self, name: &str) -> f64 {
        let (status, body) = self.call("GET", "/metrics", None, None).await;
        assert_eq!(status, 200, "{body}");
        let text = body.as_str().expect("Prometheus text");
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The `id` of a session or user object.
fn id(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an id in {object}"))
        .to_owned()
}

/// Runs `task(i)` for every `i` in `0..n` at once; the results in the order of `i`.
async fn concurrently<T, F>(n: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        let future = task(i);
        set.spawn(async move { (i, future.await) });
    }
    let mut results = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        results.push(joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Polls `GET /v1/session` on `instance` until it answers `401 SESSION_REVOKED` (at most
/// [`PATIENCE`]). Returns the problem and how many `200`s came first.
async fn revoked_on(instance: &Instance, access: &str) -> (Value, usize) {
    let deadline = Instant::now() + PATIENCE;
    let mut stale = 0;
    loop {
        match instance.whoami(access).await.into() {
            (401, problem) if problem["code"] == "SESSION_REVOKED" => return (problem, stale),
            (200, _) => stale += 1,
            (status, body) => panic!("unexpected answer while polling: {status} {body}"),
        }
        assert!(
            Instant::now() < deadline,
            "still accepted {PATIENCE:?} after the revocation ({stale} polls)"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1. One refresh token presented to two instances at the same moment
// ---------------------------------------------------------------------------------------

const RACES: usize = 20;

#[tokio::test]
async fn a_refresh_raced_on_two_instances_answers_one_successor_and_reuse_is_caught_on_both() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    // A short grace window, so the test can outwait it.
    let cluster = cluster.with("SESSIOND_REFRESH_GRACE", "1s");
    let (a, b) = (cluster.serve(), cluster.serve());

    let registered = a.register("racer@example.com").await;
    let user_id = id(&registered["user"]);
    let mut parents = vec![token(&registered, "refresh_token")];
    for round in 1..RACES {
        let creator = if round % 2 == 0 { &a } else { &b };
        parents.push(token(
            &admin_session(creator, &user_id).await,
            "refresh_token",
        ));
    }

    // Both racers get 200 and the same successor: nobody is logged out.
    let mut successors = Vec::new();
    for parent in &parents {
        let (on_a, on_b) = tokio::join!(a.refresh(parent), b.refresh(parent));
        let (on_a, on_b) = (expect(on_a, 200), expect(on_b, 200));
        assert_eq!(
            on_a["refresh_token"], on_b["refresh_token"],
            "one successor"
        );
        assert_ne!(on_a["refresh_token"], json!(parent), "a rotated token");
        assert_eq!(on_a["session"]["id"], on_b["session"]["id"]);
        // Each racer's access token works on the other instance.
        expect(b.whoami(&token(&on_a, "access_token")).await, 200);
        expect(a.whoami(&token(&on_b, "access_token")).await, 200);
        successors.push(token(&on_a, "refresh_token"));
    }
    // Exactly one racer rotated each token; the other was answered from the grace window.
    let replays = a.counter("sessiond_refresh_grace_replays_total").await
        + b.counter("sessiond_refresh_grace_replays_total").await;
    assert_eq!(replays, RACES as f64, "one grace replay per race");

    // The successor works: rotate it on B.
    let mut latest = Vec::new();
    for successor in &successors {
        latest.push(expect(b.refresh(successor).await, 200));
    }

    // Past the grace window (which the successor's use has ended anyway), the grandparent
    // is a stolen token: presented on A, it ends the session, at once on A and on B as soon
    // as B hears of it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for (grandparent, latest) in parents.iter().zip(&latest) {
        expect_problem(a.refresh(grandparent).await, 401, "REFRESH_TOKEN_REUSED");
        let (access, refresh) = (
            token(latest, "access_token"),
            token(latest, "refresh_token"),
        );
        let on_a = expect_problem(a.whoami(&access).await, 401, "SESSION_REVOKED");
        let (on_b, _) = revoked_on(&b, &access).await;
        for problem in [on_a, on_b] {
            assert_eq!(problem["revoked_reason"], "refresh_token_reused");
        }
        for instance in [&a, &b] {
            expect_problem(instance.refresh(&refresh).await, 401, "SESSION_REVOKED");
        }
    }
    assert!(a.live_sessions(&user_id).await.is_empty());
    assert!(b.live_sessions(&user_id).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. The session limit under logins racing on two instances
// ---------------------------------------------------------------------------------------

const LOGINS: usize = 20;
const LIMIT: usize = 3;

/// A user registered on A, then `LOGINS` password logins of that user fired at once,
/// alternating between A and B, with `max_sessions_per_user = LIMIT`.
struct LoginRace {
    a: Instance,
    b: Instance,
    user_id: String,
    registered: Value,
    /// The answer to each login.
    logins: Vec<(u16, Value)>,
    // Last: the database outlives the instances.
    _cluster: Cluster,
}

impl LoginRace {
    async fn run(on_limit: &str) -> Option<LoginRace> {
        let cluster = Cluster::postgres()
            .await?
            .with("SESSIOND_MAX_SESSIONS_PER_USER", &LIMIT.to_string())
            .with("SESSIOND_ON_SESSION_LIMIT", on_limit)
            .with("SESSIOND_RATE_LIMITS__LOGIN", "10000/15m");
        let (a, b) = (cluster.serve(), cluster.serve());
        let email = "many-devices@example.com";
        let registered = a.register(email).await;
        let (on_a, on_b) = (a.api.clone(), b.api.clone());
        let logins = concurrently(LOGINS, |i| {
            let api = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            async move { api.login(email).await.into() }
        })
        .await;
        Some(LoginRace {
            user_id: id(&registered["user"]),
            a,
            b,
            registered,
            logins,
            _cluster: cluster,
        })
    }

    /// The live sessions, which both instances must agree on.
    async fn live_sessions(&self) -> Vec<String> {
        let on_a = self.a.live_sessions(&self.user_id).await;
        assert_eq!(self.b.live_sessions(&self.user_id).await, on_a);
        on_a
    }
}

#[tokio::test]
async fn evict_oldest_holds_the_session_limit_under_logins_racing_on_two_instances() {
    let Some(race) = LoginRace::run("evict_oldest").await else {
        return;
    };
    let grants: Vec<Value> = race
        .logins
        .iter()
        .map(|answer| expect(answer.clone(), 200))
        .collect();
    let logged_in: Vec<String> = grants.iter().map(|g| id(&g["session"])).collect();

    let live = race.live_sessions().await;
    assert_eq!(live.len(), LIMIT, "live sessions: {live:?}");
    assert!(live.iter().all(|s| logged_in.contains(s)), "{live:?}");

    // Every other session, the registration's (the oldest) among them, was evicted, and
    // both instances say why.
    let evicted: Vec<&Value> = std::iter::once(&race.registered)
        .chain(&grants)
        .filter(|grant| !live.contains(&id(&grant["session"])))
        .collect();
    assert_eq!(evicted.len(), LOGINS + 1 - LIMIT);
    for grant in evicted {
        for instance in [&race.a, &race.b] {
            let (problem, _) = revoked_on(instance, &token(grant, "access_token")).await;
            assert_eq!(problem["revoked_reason"], "evicted_by_limit");
        }
    }
}

#[tokio::test]
async fn reject_holds_the_session_limit_under_logins_racing_on_two_instances() {
    let Some(race) = LoginRace::run("reject").await else {
        return;
    };
    let (accepted, rejected): (Vec<_>, Vec<_>) =
        race.logins.iter().partition(|(status, _)| *status == 200);
    let statuses: Vec<u16> = race.logins.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        accepted.len(),
        LIMIT - 1,
        "the registration holds one of the {LIMIT} places; statuses: {statuses:?}"
    );
    for answer in rejected {
        let problem = expect_problem(answer.clone(), 409, "SESSION_LIMIT_EXCEEDED");
        assert_eq!(
            problem["sessions"].as_array().map(Vec::len),
            Some(LIMIT),
            "the 409 lists the live sessions: {problem}"
        );
    }

    let mut kept: Vec<String> = std::iter::once(&race.registered)
        .chain(accepted.iter().map(|(_, grant)| grant))
        .map(|grant| id(&grant["session"]))
        .collect();
    kept.sort();
    assert_eq!(race.live_sessions().await, kept);
}

// ---------------------------------------------------------------------------------------
// 3. Revocation through one instance, seen by the others: measured
// ---------------------------------------------------------------------------------------

const REVOCATIONS: usize = 200;

#[tokio::test]
async fn revocation_on_one_instance_reaches_the_others_within_a_second_postgres_only() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    revocation_propagation(cluster, "postgres only").await;
}

#[tokio::test]
async fn revocation_on_one_instance_reaches_the_others_within_a_second_with_redis() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    let Some(cluster) = cluster.with_redis() else {
        return;
    };
    revocation_propagation(cluster, "postgres + redis").await;
}

/// `REVOCATIONS` sessions, each revoked on A (admin API and logout in turn) while B is
/// polled with its access token until B refuses it; prints and checks the delays.
async fn revocation_propagation(cluster: Cluster, label: &str) {
    let (a, b, c) = (cluster.serve(), cluster.serve(), cluster.serve());
    let user_id = id(&a.register("revoked@example.com").await["user"]);
    let creators = [a.api.clone(), b.api.clone(), c.api.clone()];
    let grants = concurrently(REVOCATIONS, |i| {
        let (api, user_id) = (creators[i % 3].clone(), user_id.clone());
        async move { admin_session(&api, &user_id).await }
    })
    .await;
    let access_tokens: Vec<String> = grants.iter().map(|g| token(g, "access_token")).collect();

    let mut delays = Vec::with_capacity(REVOCATIONS);
    let (mut stale_answers, mut late_revocations) = (0, 0);
    for (i, (grant, access)) in grants.iter().zip(&access_tokens).enumerate() {
        // B has seen the session (and may remember it) before A revokes it.
        expect(b.whoami(access).await, 200);
        let reason = if i % 2 == 0 {
            a.admin_revoke(&id(&grant["session"])).await;
            "admin"
        } else {
            a.logout(access).await;
            "logout"
        };
        let revoked_at = Instant::now();
        let (problem, stale) = revoked_on(&b, access).await;
        delays.push(revoked_at.elapsed());
        stale_answers += stale;
        late_revocations += usize::from(stale > 0);
        assert_eq!(problem["revoked_reason"], reason, "{problem}");
    }

    delays.sort();
    let rank = |p: usize| delays[(delays.len() * p).div_ceil(100) - 1];
    let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
    let (p50, p99, max) = (rank(50), rank(99), delays[delays.len() - 1]);
    say(&format!(
        "revocation propagation ({label}, {REVOCATIONS} revocations): p50={} p99={} max={}; \
         B still answered 200 after A's revoke for {late_revocations} of them \
         ({stale_answers} stale answers)",
        ms(p50),
        ms(p99),
        ms(max)
    ));
    assert!(p99 < Duration::from_secs(1), "p99 = {}", ms(p99));

    // Afterwards no instance accepts any of the old access tokens.
    for instance in [&a, &b, &c] {
        let api = instance.api.clone();
        let tokens = access_tokens.clone();
        let answers = concurrently(REVOCATIONS, |i| {
            let (api, access) = (api.clone(), tokens[i].clone());
            async move { api.whoami(&access).await }
        })
        .await;
        for answer in answers {
            expect_problem(answer, 401, "SESSION_REVOKED");
        }
    }
    assert!(
        c.live_sessions(&user_id).await.len() == 1,
        "the registration's session"
    );
}

// ---------------------------------------------------------------------------------------
// 4. `sessiond migrate` from several processes at once
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_migrations_of_one_database_all_succeed() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    let outputs = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| run(cluster.command(&["migrate"]))))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a migrate run"))
            .collect::<Vec<_>>()
    });
    for output in outputs {
        let output = output.success();
        assert!(
            output.stdout.contains("migrations applied (postgres)"),
            "{}",
            output.stdout
        );
    }

    // The schema works: a server that does not migrate itself serves on it.
    let cluster = cluster.with("SESSIOND_MIGRATE_ON_START", "false");
    let server = cluster.serve();
    let registered = server.register("after-migrate@example.com").await;
    expect(
        server.whoami(&token(&registered, "access_token")).await,
        200,
    );
    let refreshed = expect(
        server.refresh(&token(&registered, "refresh_token")).await,
        200,
    );
    assert_eq!(refreshed["session"]["id"], registered["session"]["id"]);
}

// ---------------------------------------------------------------------------------------
// 5. An instance joining a serving one uses the same signing key
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_instance_started_later_uses_the_signing_key_of_the_serving_one() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    let a = cluster.serve();
    let from_a = a.register("keys@example.com").await;
    let access_a = token(&from_a, "access_token");

    let b = cluster.serve();
    assert_eq!(a.jwks().await, b.jwks().await, "the same JWKS");
    assert_eq!(b.jwks_kids().await, vec![kid_of(&access_a)]);
    assert!(
        !b.server.logs().contains("generated a new signing key"),
        "B generated a key of its own:\n{}",
        b.server.logs()
    );

    // A's token validates on B, and B signs with the same key.
    let me = expect(b.whoami(&access_a).await, 200);
    assert_eq!(me["session"]["id"], from_a["session"]["id"]);
    let validated = expect(
        b.call(
            "POST",
            "/v1/token/validate",
            None,
            Some(json!({"token": access_a})),
        )
        .await,
        200,
    );
    assert_eq!(validated["valid"], true, "{validated}");
    let from_b = expect(b.login("keys@example.com").await, 200);
    let access_b = token(&from_b, "access_token");
    assert_eq!(kid_of(&access_b), kid_of(&access_a));
    expect(a.whoami(&access_b).await, 200);
}

/// What an operator graphs for a cluster: the channel between instances connected with its
/// heartbeat's lag, the live sessions counted in the shared storage (the same on every
/// instance), the pool, token checks by outcome and the session cache's hits.
#[tokio::test]
async fn operator_metrics_describe_the_cluster() {
    let Some(cluster) = Cluster::postgres().await else {
        return;
    };
    let (a, b) = (cluster.serve(), cluster.serve());
    for instance in [&a, &b] {
        instance
            .sample_until("sessiond_fanout_connected", |v| v == 1.0)
            .await;
        let lag = instance
            .sample_until("sessiond_fanout_heartbeat_lag_seconds", |v| v > 0.0)
            .await;
        assert!(lag < 1.0, "a heartbeat took {lag} s through PostgreSQL");
        let max = instance
            .sample(r#"sessiond_storage_connections_max{pool="main"}"#)
            .await;
        assert!(max.is_some_and(|m| m >= 1.0), "pool max {max:?}");
        let in_use = instance
            .sample(r#"sessiond_storage_connections{pool="main",state="in_use"}"#)
            .await;
        assert!(
            in_use.is_some_and(|n| n <= max.unwrap_or(0.0)),
            "in use {in_use:?}"
        );
    }

    let grants = [
        a.register("metrics-1@example.com").await,
        a.register("metrics-2@example.com").await,
        b.register("metrics-3@example.com").await,
    ];
    b.logout(&token(&grants[0], "access_token")).await;
    for instance in [&a, &b] {
        instance
            .sample_until("sessiond_sessions_active", |v| v == 2.0)
            .await;
    }

    let valid = r#"sessiond_token_checks_total{outcome="valid"}"#;
    let revoked = r#"sessiond_token_checks_total{outcome="SESSION_REVOKED"}"#;
    let hits = r#"sessiond_cache_lookups_total{cache="session",result="hit"}"#;
    let (valid_before, revoked_before, hits_before) = (
        b.sample(valid).await.unwrap_or(0.0),
        b.sample(revoked).await.unwrap_or(0.0),
        b.sample(hits).await.unwrap_or(0.0),
    );
    let live = token(&grants[1], "access_token");
    for _ in 0..3 {
        expect(b.whoami(&live).await, 200);
    }
    expect_problem(
        b.whoami(&token(&grants[0], "access_token")).await,
        401,
        "SESSION_REVOKED",
    );
    assert_eq!(b.sample(valid).await, Some(valid_before + 3.0));
    assert_eq!(b.sample(revoked).await, Some(revoked_before + 1.0));
    let hits_after = b.sample(hits).await.unwrap_or(0.0);
    assert!(
        hits_after >= hits_before + 2.0,
        "the second and third checks come from the cache: {hits_before} -> {hits_after}"
    );
}
