//! PostgreSQL going away: clean, fast 503s, and recovery without a restart.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::*;
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
        c.database_url = Some(through_proxy.to_string());
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
