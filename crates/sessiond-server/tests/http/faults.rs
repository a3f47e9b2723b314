//! PostgreSQL going away: clean, fast 503s, and recovery without a restart.

use std::time::{Duration, Instant};

use crate::common::proxy::{Mode, Proxy};
use crate::common::*;
use reqwest::Method;
use sessiond_store::testing::postgres;

#[tokio::test]
async fn postgres_down_gives_fast_503s_and_service_resumes_when_it_returns() {
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let url = reqwest::Url::parse(database.url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    let mut through_proxy = url.clone();
    through_proxy.set_port(Some(proxy.port)).unwrap();

    let app = spawn_with(|c| {
        c.database_url = Some(through_proxy.to_string().parse().unwrap());
        c.database_timeout = Duration::from_secs(1);
    })
    .await;
    let grant = app.register(&unique_email()).await;
    let token = access(&grant);
    app.whoami(&token).await.ok(200);

    proxy.set(Mode::Cut);
    // What needs storage fails at once.
    let started = Instant::now();
    let reply = app.get("/v1/sessions", &token).await;
    reply.problem(503, "STORAGE_UNAVAILABLE");
    assert!(reply.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        started.elapsed()
    );
    // A token check may be answered from the session cache only until the instance
    // notices it can no longer hear about changes (its heartbeat stops: ≤ 3 s); then 503.
    let cut_at = Instant::now();
    loop {
        let started = Instant::now();
        let reply = app.whoami(&token).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered in {:?}",
            started.elapsed()
        );
        if reply.status == 503 {
            reply.problem(503, "STORAGE_UNAVAILABLE");
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            cut_at.elapsed() < Duration::from_secs(5),
            "still answering from the cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The forward-auth check fails closed with a 401 (a proxy makes any other status a
    // 500), its code naming the cause.
    let check = app.get("/v1/auth/check", &token).await;
    check.problem(401, "STORAGE_UNAVAILABLE");
    assert_eq!(check.header("x-sessiond-user"), Some(""));
    let started = Instant::now();
    app.refresh(&refresh_of(&grant))
        .await
        .problem(503, "STORAGE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(3));
    let ready = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 503);
    let problem_body = app.login(&unique_email()).await;
    assert_eq!(problem_body.status, 503, "{}", problem_body.text);

    proxy.set(Mode::Forward);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.whoami(&token).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not resume: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.send(Method::GET, "/readyz", None, None).await.ok(200);
    app.refresh(&refresh_of(&grant)).await.ok(200);
    drop(database);
}

/// The request, or a failure naming it if it has not answered after `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    request: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer after {limit:?}"))
}

#[tokio::test]
async fn a_postgres_that_stops_answering_gives_503_within_the_deadline_and_recovers() {
    let Some(database) = postgres::fresh_database().await else {
        return;
    };
    let url = reqwest::Url::parse(database.url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    let mut through_proxy = url.clone();
    through_proxy.set_port(Some(proxy.port)).unwrap();
    let deadline = Duration::from_secs(1);
    let app = spawn_with(|c| {
        c.database_url = Some(through_proxy.to_string().parse().unwrap());
        c.database_timeout = deadline;
        c.rate_limits.enabled = false;
    })
    .await;
    let grant = app.register(&unique_email()).await;
    let token = access(&grant);
    // Open several pooled connections, so the requests below pick already-open ones.
    let warm = futures::future::join_all((0..6).map(|_| app.get("/v1/sessions", &token))).await;
    for reply in warm {
        reply.ok(200);
    }

    // A partition: sockets stay open, nothing comes back.
    proxy.set(Mode::Blackhole);
    let answer_within = deadline + Duration::from_secs(2);
    let started = Instant::now();
    let replies = within(
        answer_within * 2,
        "reads on open connections",
        futures::future::join_all((0..6).map(|_| app.get("/v1/sessions", &token))),
    )
    .await;
    for reply in replies {
        reply.problem(503, "STORAGE_UNAVAILABLE");
        assert!(reply.header("retry-after").is_some());
    }
    assert!(
        started.elapsed() < answer_within,
        "answered after {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    within(
        answer_within * 2,
        "a refresh",
        app.refresh(&refresh_of(&grant)),
    )
    .await
    .problem(503, "STORAGE_UNAVAILABLE");
    within(answer_within * 2, "a login", app.login(&unique_email()))
        .await
        .problem(503, "STORAGE_UNAVAILABLE");
    let ready = within(
        answer_within * 2,
        "readiness",
        app.send(Method::GET, "/readyz", None, None),
    )
    .await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(
        started.elapsed() < answer_within * 3,
        "answered after {:?}",
        started.elapsed()
    );

    // The partition heals: no restart needed.
    proxy.set(Mode::Forward);
    let healed = Instant::now();
    loop {
        let reply = within(
            answer_within,
            "after the heal",
            app.get("/v1/sessions", &token),
        )
        .await;
        if reply.status == 200 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "service did not resume: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.send(Method::GET, "/readyz", None, None).await.ok(200);
    app.refresh(&refresh_of(&grant)).await.ok(200);
    drop(database);
}
