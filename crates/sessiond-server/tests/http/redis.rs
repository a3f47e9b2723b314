//! Rate limits shared through Redis across instances, and what happens when Redis goes
//! away: every instance keeps serving with its own counts, says so on `/readyz`, and
//! shares again by itself once Redis is back.
//!
//! Needs Redis on 127.0.0.1:6379: skipped (with a line on stderr) when it is unreachable,
//! unless `CI` is set. Each test writes under its own key prefix and deletes it after.

use std::time::{Duration, Instant};

use crate::common::proxy::{Mode, Proxy};
use crate::common::*;
use serde_json::{Value, json};

const REDIS: &str = "127.0.0.1:6379";
/// A request never takes longer than this, Redis or not.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether Redis answers; announces the skip, or fails under `CI`.
pub(crate) async fn redis_available() -> bool {
    let answered = async {
        let client = redis::Client::open(format!("redis://{REDIS}")).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), answered).await {
        Ok(Some(_)) => true,
        _ if std::env::var_os("CI").is_some() => panic!("Redis must be reachable on {REDIS} in CI"),
        _ => {
            eprintln!("skipped: Redis not reachable on {REDIS}");
            false
        }
    }
}

pub(crate) fn unique_prefix() -> String {
    format!("sessiond-test:{}:", uuid::Uuid::new_v4().simple())
}

/// Deletes every key under `prefix`.
pub(crate) async fn delete_keys(prefix: &str) {
    let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// The configuration every test here uses: 3 anonymous sessions per client an hour,
/// counted through `redis_url`, with clients told apart by `X-Forwarded-For`.
fn shared_limits(
    redis_url: &str,
    prefix: &str,
) -> impl FnOnce(&mut sessiond_server::Config) + use<> {
    let (redis_url, prefix) = (redis_url.to_owned(), prefix.to_owned());
    move |c| {
        c.redis_url = Some(redis_url.parse().unwrap());
        c.redis_prefix = prefix;
        c.rate_limits.anonymous = "3/1h".parse().unwrap();
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Creates an anonymous session as client `ip`; returns the status.
async fn anonymous(app: &TestApp, ip: &str) -> u16 {
    let started = Instant::now();
    let reply = client()
        .post(format!("{}/v1/sessions/anonymous", app.base))
        .header("x-forwarded-for", ip)
        .json(&json!({}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer within {REQUEST_TIMEOUT:?}: {e}"));
    let status = reply.status().as_u16();
    assert!(
        status == 201 || status == 429,
        "status {status}: {}",
        reply.text().await.unwrap_or_default()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered in {:?}",
        started.elapsed()
    );
    status
}

/// `/readyz`: the status code and body.
async fn readyz(app: &TestApp) -> (u16, Value) {
    let reply = client()
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("/readyz answers");
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// Polls `/readyz` until `redis` reads `want`; how long that took.
async fn wait_for_redis(app: &TestApp, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = readyz(app).await;
        assert_eq!(status, 200, "{body}");
        if body["redis"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz still says {body} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two instances share the budget of client `ip` (3): two sessions on `a`, one on `b`,
/// and the fourth is refused on either.
async fn assert_shared(a: &TestApp, b: &TestApp, ip: &str) {
    assert_eq!(anonymous(a, ip).await, 201);
    assert_eq!(anonymous(a, ip).await, 201);
    assert_eq!(anonymous(b, ip).await, 201);
    assert_eq!(anonymous(a, ip).await, 429, "the budget is shared");
    assert_eq!(anonymous(b, ip).await, 429, "the budget is shared");
}

fn proxied_redis(proxy: &Proxy) -> String {
    format!("redis://127.0.0.1:{}", proxy.port)
}

#[tokio::test]
async fn without_redis_readiness_says_not_configured() {
    let app = spawn_app().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["storage"], "ok");
    assert_eq!(body["redis"], "not_configured");
}

#[tokio::test]
async fn limits_hold_across_instances_sharing_redis() {
    if !redis_available().await {
        return;
    }
    let prefix = unique_prefix();
    let url = format!("redis://{REDIS}");
    let a = spawn_with(shared_limits(&url, &prefix)).await;
    let b = spawn_sibling(&a, shared_limits(&url, &prefix)).await;
    for app in [&a, &b] {
        let (status, body) = readyz(app).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["redis"], "ok");
    }
    assert_shared(&a, &b, "203.0.113.1").await;
    // Other clients have their own budgets.
    assert_eq!(anonymous(&b, "203.0.113.2").await, 201);
    // The window passes (the instances share a clock, as real instances share time).
    a.clock.advance(chrono::Duration::hours(1));
    assert_eq!(anonymous(&b, "203.0.113.1").await, 201);
    delete_keys(&prefix).await;
}

#[tokio::test]
async fn a_redis_outage_degrades_to_per_instance_limits_and_recovers() {
    if !redis_available().await {
        return;
    }
    let proxy = Proxy::start(REDIS).await;
    let prefix = unique_prefix();
    let a = spawn_with(shared_limits(&proxied_redis(&proxy), &prefix)).await;
    let b = spawn_sibling(&a, shared_limits(&proxied_redis(&proxy), &prefix)).await;
    assert_eq!(readyz(&a).await.1["redis"], "ok");
    assert_shared(&a, &b, "203.0.113.1").await;

    proxy.set(Mode::Cut);
    let cut_at = Instant::now();
    // Without traffic, the background check notices.
    let noticed_idle = wait_for_redis(&a, "degraded", Duration::from_secs(8)).await;
    // With traffic, the first request notices; none fails or hangs, and each instance
    // enforces the limit with its own counts.
    let started = Instant::now();
    for app in [&a, &b] {
        for _ in 0..3 {
            assert_eq!(anonymous(app, "203.0.113.2").await, 201);
        }
        assert_eq!(
            anonymous(app, "203.0.113.2").await,
            429,
            "limited per instance"
        );
    }
    let eight_requests = started.elapsed();
    // Clients limited before the outage stay limited: every instance kept its own counts.
    assert_eq!(anonymous(&a, "203.0.113.1").await, 429);
    for app in [&a, &b] {
        let (status, body) = readyz(app).await;
        assert_eq!(status, 200, "degraded is still ready: {body}");
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["storage"], "ok");
        assert_eq!(body["redis"], "degraded");
    }
    // Sessions made during the outage work.
    let reply = client()
        .post(format!("{}/v1/sessions/anonymous", a.base))
        .header("x-forwarded-for", "203.0.113.3")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let grant: Value = reply.json().await.unwrap();
    b.whoami(&access(&grant)).await.ok(200);

    proxy.set(Mode::Forward);
    let restored_at = Instant::now();
    wait_for_redis(&a, "ok", Duration::from_secs(5)).await;
    let recovered_a = restored_at.elapsed();
    wait_for_redis(&b, "ok", Duration::from_secs(5)).await;
    let recovered_b = restored_at.elapsed();
    assert_eq!(readyz(&a).await.1["status"], "ready");
    assert_shared(&a, &b, "203.0.113.4").await;
    eprintln!(
        "idle degradation noticed after {noticed_idle:?} (cut {:?} ago); \
         8 requests during the outage took {eight_requests:?}; \
         /readyz said ok {recovered_a:?} (a) and {recovered_b:?} (b) after Redis returned",
        cut_at.elapsed()
    );
    delete_keys(&prefix).await;
}

#[tokio::test]
async fn an_instance_started_while_redis_is_down_serves_and_recovers() {
    if !redis_available().await {
        return;
    }
    let proxy = Proxy::start(REDIS).await;
    proxy.set(Mode::Cut);
    let prefix = unique_prefix();
    let started = Instant::now();
    let a = spawn_with(shared_limits(&proxied_redis(&proxy), &prefix)).await;
    let build = started.elapsed();
    assert!(build < Duration::from_secs(3), "started in {build:?}");
    let (status, body) = readyz(&a).await;
    assert_eq!(status, 200);
    assert_eq!(body["redis"], "degraded", "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    for _ in 0..3 {
        assert_eq!(anonymous(&a, "203.0.113.1").await, 201);
    }
    assert_eq!(anonymous(&a, "203.0.113.1").await, 429);

    proxy.set(Mode::Forward);
    let recovered = wait_for_redis(&a, "ok", Duration::from_secs(5)).await;
    let b = spawn_sibling(&a, shared_limits(&proxied_redis(&proxy), &prefix)).await;
    assert_eq!(readyz(&b).await.1["redis"], "ok");
    assert_shared(&a, &b, "203.0.113.2").await;
    eprintln!("started degraded in {build:?}; recovered {recovered:?} after Redis returned");
    delete_keys(&prefix).await;
}

#[tokio::test]
async fn a_redis_that_stops_answering_costs_a_request_at_most_a_short_timeout() {
    if !redis_available().await {
        return;
    }
    let proxy = Proxy::start(REDIS).await;
    let prefix = unique_prefix();
    let a = spawn_with(shared_limits(&proxied_redis(&proxy), &prefix)).await;
    assert_eq!(readyz(&a).await.1["redis"], "ok");

    proxy.set(Mode::Blackhole);
    let started = Instant::now();
    assert_eq!(anonymous(&a, "203.0.113.1").await, 201);
    let first = started.elapsed();
    let started = Instant::now();
    assert_eq!(anonymous(&a, "203.0.113.1").await, 201);
    assert_eq!(anonymous(&a, "203.0.113.1").await, 201);
    assert_eq!(anonymous(&a, "203.0.113.1").await, 429);
    let next_three = started.elapsed();
    // The first request waits out the Redis timeout (250 ms); once degraded, none waits
    // on Redis (three waits would take at least 750 ms).
    assert!(
        first < Duration::from_millis(900),
        "first request took {first:?}"
    );
    assert!(
        next_three < Duration::from_millis(700),
        "once degraded, requests do not wait on Redis: {next_three:?}"
    );
    assert_eq!(readyz(&a).await.1["redis"], "degraded");

    proxy.set(Mode::Forward);
    let restored_at = Instant::now();
    wait_for_redis(&a, "ok", Duration::from_secs(5)).await;
    let recovered = restored_at.elapsed();
    let b = spawn_sibling(&a, shared_limits(&proxied_redis(&proxy), &prefix)).await;
    assert_shared(&a, &b, "203.0.113.2").await;
    eprintln!(
        "frozen Redis: first request {first:?}, next three {next_three:?}; \
         recovered {recovered:?} after it answered again"
    );
    delete_keys(&prefix).await;
}

/// Two instances on one SQLite folder hear nothing from each other except through Redis:
/// a logout on one must still reach the other's session cache.
#[tokio::test]
async fn session_changes_travel_through_redis_pub_sub() {
    if !redis_available().await {
        return;
    }
    let prefix = format!("sessiond-test:{}:", uuid::Uuid::new_v4().simple());
    let (url, p) = (format!("redis://{REDIS}"), prefix.clone());
    let a = spawn_with(move |c| {
        c.redis_url = Some(url.parse().unwrap());
        c.redis_prefix = p;
    })
    .await;
    let (url, p) = (format!("redis://{REDIS}"), prefix.clone());
    let b = spawn_sibling(&a, move |c| {
        c.redis_url = Some(url.parse().unwrap());
        c.redis_prefix = p;
    })
    .await;
    // Let both subscriptions settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grant = a.register(&unique_email()).await;
    let token = access(&grant);
    a.whoami(&token).await.ok(200);
    a.whoami(&token).await.ok(200);
    b.post_as("/v1/logout", &token, serde_json::json!({}))
        .await
        .ok(204);
    let started = std::time::Instant::now();
    loop {
        let reply = a.whoami(&token).await;
        if reply.status == 401 {
            reply.problem(401, "SESSION_REVOKED");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the change never arrived through Redis"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
