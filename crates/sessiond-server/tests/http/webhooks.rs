//! Audit events through the admin API, and webhooks delivered to a real local receiver
//! (a wiremock server) with faults: 500s, timeouts, a refused connection, 410 Gone.
//! Signatures are checked here by recomputing them, as a receiver would.

use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use sessiond_server::infra::webhooks::{EndpointConfig, WebhooksConfig};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `whsec_` and 32 bytes.
const SECRET: &str = "whsec_c2Vzc2lvbmQtd2ViaG9vay10ZXN0LXNlY3JldC0zMmI=";

fn webhooks(url: &str, events: &[&str], schedule: &[&str]) -> WebhooksConfig {
    WebhooksConfig {
        endpoints: [(
            "hook".to_owned(),
            EndpointConfig {
                url: url.to_owned(),
                secret: SECRET.to_owned(),
                events: events.iter().map(|e| (*e).to_owned()).collect(),
            },
        )]
        .into(),
        timeout: Duration::from_millis(800),
        retry_schedule: schedule.iter().map(|s| (*s).to_owned()).collect(),
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
    }
}

/// A request the receiver got, checked: the signature is good for its id, timestamp
/// and exact body. Its parsed body.
struct Received {
    id: String,
    timestamp: i64,
    body: Value,
}

fn verified(request: &wiremock::Request) -> Received {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{name} header"))
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = std::str::from_utf8(&request.body).expect("UTF-8 body");
    let key_bytes = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let tag = ring::hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    assert_eq!(
        signature,
        format!("v1,{}", STANDARD.encode(tag.as_ref())),
        "the signature covers id, timestamp and body"
    );
    assert_eq!(header("content-type"), "application/json");
    Received {
        id,
        timestamp: timestamp.parse().expect("seconds"),
        body: serde_json::from_str(body).expect("JSON body"),
    }
}

async fn received(server: &MockServer) -> Vec<Received> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(verified)
        .collect()
}

/// Waits (up to 10 s) until the receiver has `n` requests.
async fn wait_for_requests(server: &MockServer, n: usize) -> Vec<Received> {
    let started = Instant::now();
    loop {
        let got = received(server).await;
        if got.len() >= n || started.elapsed() > Duration::from_secs(10) {
            assert!(got.len() >= n, "{} of {n} requests arrived", got.len());
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (up to 10 s) until nothing is pending for any endpoint.
async fn wait_for_empty_backlog(app: &TestApp) {
    let started = Instant::now();
    loop {
        let backlog = app.store.webhook_backlog().await.expect("backlog");
        if backlog.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still pending: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn events(app: &TestApp, query: &str) -> Value {
    app.admin(Method::GET, &format!("/v1/admin/events{query}"), None)
        .await
        .ok(200)
}

fn types(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

backend_suite! {
    #[tokio::test]
    async fn sessions_that_end_by_themselves_are_explained_by_a_sweep() {
        let app = spawn_with(|c| {
            c.rate_limits.enabled = false;
            c.idle_timeout = std::time::Duration::from_secs(3600);
            c.absolute_lifetime = std::time::Duration::from_secs(3 * 3600);
        })
        .await;
        let email = unique_email();
        let idle = app.register(&email).await;
        let busy = app.login(&email).await.ok(200);
        let user = idle["user"]["id"].as_str().unwrap().to_owned();
        let ended = |page: &Value| -> Vec<(String, String)> {
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["session_id"].as_str().unwrap().to_owned(),
                        e["data"]["reason"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };

        // 50 minutes in, both are live: nothing to record.
        app.clock.advance(chrono::Duration::minutes(50));
        let mut refresh = refresh_of(&busy);
        refresh = refresh_of(&app.refresh(&refresh).await.ok(200));
        assert_eq!(app.service().record_expired_sessions().await.unwrap(), 0);

        // Idle past the timeout, but not yet past the margin for other instances'
        // unwritten activity (the resolution and 10 s): not yet.
        app.clock.advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(30));
        assert_eq!(app.service().record_expired_sessions().await.unwrap(), 0);
        app.refresh(&refresh_of(&idle)).await.problem(401, "SESSION_INACTIVE");

        app.clock.advance(chrono::Duration::minutes(2));
        assert_eq!(app.service().record_expired_sessions().await.unwrap(), 1);
        let page = events(&app, &format!("?type=session.ended&user_id={user}")).await;
        assert_eq!(ended(&page), [(session_id(&idle), "idle_timeout".to_owned())]);
        let event = &page["events"][0];
        assert_eq!(event["data"]["initiator"], "policy");
        // The check answers as before the sweep, and the session says when it ended.
        let problem = app.refresh(&refresh_of(&idle)).await.problem(401, "SESSION_INACTIVE");
        assert_eq!(problem["revoked_reason"], "idle_timeout");
        assert_eq!(app.service().record_expired_sessions().await.unwrap(), 0, "once");

        // The busy one reaches its absolute end (3 h) while kept active.
        for _ in 0..3 {
            app.clock.advance(chrono::Duration::minutes(30));
            refresh = refresh_of(&app.refresh(&refresh).await.ok(200));
        }
        app.clock.advance(chrono::Duration::minutes(30));
        app.refresh(&refresh).await.problem(401, "SESSION_EXPIRED");
        assert_eq!(app.service().record_expired_sessions().await.unwrap(), 1);
        let page = events(&app, &format!("?type=session.ended&user_id={user}")).await;
        assert_eq!(
            ended(&page),
            [
                (session_id(&idle), "idle_timeout".to_owned()),
                (session_id(&busy), "absolute_lifetime".to_owned()),
            ]
        );
        app.refresh(&refresh).await.problem(401, "SESSION_EXPIRED");
        // An admin's list of the user's sessions no longer counts either.
        let sessions = app
            .admin(Method::GET, &format!("/v1/admin/users/{user}/sessions"), None)
            .await
            .ok(200);
        assert_eq!(sessions["sessions"].as_array().unwrap().len(), 0, "{sessions}");
    }

    #[tokio::test]
    async fn a_session_lifecycle_is_explained_by_its_events() {
        let app = spawn_with(|c| c.rate_limits.enabled = false).await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let user = grant["user"]["id"].as_str().unwrap().to_owned();
        let first = session_id(&grant);
        app.login_with(&email, "not the password at all").await;
        let second = app.login(&email).await.ok(200);
        app.post_as("/v1/logout", &access(&second), json!({})).await.ok(204);
        app.admin(Method::PATCH, &format!("/v1/admin/users/{user}"), Some(json!({"active": false})))
            .await
            .ok(200);

        let mine = events(&app, &format!("?user_id={user}")).await;
        assert_eq!(
            types(&mine),
            [
                "user.created",
                "session.created",
                "login.failed",
                "session.created",
                "session.ended",
                "user.deactivated",
                "session.ended",
            ],
            "{mine}"
        );
        let all = mine["events"].as_array().unwrap();
        assert_eq!(all[1]["session_id"], first.as_str());
        assert_eq!(all[1]["data"]["method"], "pwd");
        assert!(all[1]["data"]["device"].is_object(), "{}", all[1]);
        assert_eq!(all[2]["data"], json!({"method": "pwd", "reason": "wrong_password", "device": all[2]["data"]["device"].clone()}));
        let text = mine.to_string();
        assert!(!text.contains("not the password at all"), "no secret in events");
        assert!(!text.contains(&email), "no address in events");
        assert_eq!(all[4]["data"], json!({"reason": "logout", "initiator": "user"}));
        assert_eq!(all[4]["session_id"], session_id(&second).as_str());
        assert_eq!(all[6]["data"], json!({"reason": "user_deactivated", "initiator": "admin"}));
        assert_eq!(all[6]["session_id"], first.as_str());
        assert!(all.windows(2).all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));

        // Filters and pages.
        let ended = events(&app, &format!("?type=session.ended&user_id={user}")).await;
        assert_eq!(types(&ended), ["session.ended", "session.ended"]);
        let of_first = events(&app, &format!("?session_id={first}")).await;
        assert_eq!(types(&of_first), ["session.created", "session.ended"]);
        let page = events(&app, &format!("?user_id={user}&limit=3")).await;
        assert_eq!(types(&page).len(), 3);
        let cursor = page["next_cursor"].as_u64().expect("a next page");
        let rest = events(&app, &format!("?user_id={user}&after={cursor}")).await;
        assert_eq!(types(&rest).len(), 4);
        assert_eq!(rest["next_cursor"], Value::Null, "the last page");

        // Bad queries.
        for (query, status) in [
            ("?type=session.nope", 422),
            ("?limit=0", 422),
            ("?limit=501", 422),
            ("?after=-1", 422),
            ("?after=99999999999999999999", 400),
            ("?user_id=not-a-uuid", 400),
        ] {
            let reply = app.admin(Method::GET, &format!("/v1/admin/events{query}"), None).await;
            reply.problem(status, "VALIDATION_ERROR");
        }
    }

    #[tokio::test]
    async fn a_refresh_token_reuse_is_an_event_and_ends_the_session_for_theft() {
        let app = spawn_with(|c| c.refresh_grace = Duration::ZERO).await;
        let grant = app.register(&unique_email()).await;
        let old = refresh_of(&grant);
        app.refresh(&old).await.ok(200);
        app.clock.advance(chrono::Duration::seconds(1));
        app.refresh(&old).await.problem(401, "REFRESH_TOKEN_REUSED");
        let page = events(&app, &format!("?session_id={}", session_id(&grant))).await;
        assert_eq!(types(&page), ["session.created", "refresh.reuse_detected", "session.ended"]);
        assert_eq!(page["events"][2]["data"], json!({"reason": "refresh_token_reused", "initiator": "theft_detection"}));
    }

    #[tokio::test]
    async fn webhooks_arrive_signed_in_order_with_their_event_ids() {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&receiver)
            .await;
        let config = webhooks(&receiver.uri(), &["session.*", "user.created"], &["5s"]);
        let app = spawn_with(move |c| c.webhooks = config).await;
        let grant = app.register(&unique_email()).await;
        let sid = session_id(&grant);
        for _ in 0..3 {
            let again = app.refresh(&refresh_of(&grant)).await;
            assert!(again.status.is_success());
        }
        app.post_as("/v1/logout", &access(&grant), json!({})).await.ok(204);

        let got = wait_for_requests(&receiver, 3).await;
        wait_for_empty_backlog(&app).await;
        let got_types: Vec<&str> = got.iter().map(|r| r.body["type"].as_str().unwrap()).collect();
        assert!(got_types.contains(&"user.created"), "{got_types:?}");
        let of_session: Vec<&str> = got
            .iter()
            .filter(|r| r.body["data"]["session_id"] == sid.as_str())
            .map(|r| r.body["type"].as_str().unwrap())
            .collect();
        assert_eq!(of_session, ["session.created", "session.ended"], "in order, no refreshes");
        let listed = events(&app, &format!("?session_id={sid}")).await;
        for (r, e) in got
            .iter()
            .filter(|r| r.body["data"]["session_id"] == sid.as_str())
            .zip(listed["events"].as_array().unwrap())
        {
            assert_eq!(r.id, e["id"].as_str().unwrap(), "webhook-id is the event id");
            assert_eq!(r.body["id"], e["id"]);
            assert_eq!(r.body["data"]["user_id"], grant["user"]["id"]);
            assert!((r.timestamp - app.clock_now().timestamp()).abs() < 60);
        }
        assert_eq!(got.len(), 3, "each event once");
    }

    #[tokio::test]
    async fn failures_and_timeouts_are_retried_with_the_same_id_on_schedule() {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("down for maintenance"))
            .up_to_n_times(1)
            .mount(&receiver)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
            .up_to_n_times(1)
            .mount(&receiver)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let config = webhooks(&receiver.uri(), &["user.created"], &["5s", "1m"]);
        let app = spawn_with(move |c| c.webhooks = config).await;
        app.register(&unique_email()).await;

        wait_for_requests(&receiver, 1).await;
        // Not before its time.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(received(&receiver).await.len(), 1, "the retry waits for its delay");
        app.clock.advance(chrono::Duration::seconds(5));
        wait_for_requests(&receiver, 2).await;
        // That attempt times out after 800 ms; its retry is due a minute after that.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        app.clock.advance(chrono::Duration::seconds(60));
        let got = wait_for_requests(&receiver, 3).await;
        wait_for_empty_backlog(&app).await;
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.id == got[0].id), "one id for every attempt");
        assert!(got[2].timestamp > got[0].timestamp, "each attempt has its own timestamp");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_after_the_schedule_and_logins_never_wait() {
        // Nothing listens on port 1.
        let config = webhooks("http://127.0.0.1:1/hook", &["*"], &["1s"]);
        let app = spawn_with(move |c| c.webhooks = config).await;
        let started = Instant::now();
        for _ in 0..5 {
            app.register(&unique_email()).await;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        let pending = app.store.webhook_backlog().await.unwrap();
        assert!(!pending.is_empty(), "deliveries are pending");
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.clock.advance(chrono::Duration::seconds(1));
        wait_for_empty_backlog(&app).await;
    }

    #[tokio::test]
    async fn an_endpoint_answering_410_is_disabled() {
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(410))
            .mount(&receiver)
            .await;
        let url = format!("{}/gone", receiver.uri());
        let config = webhooks(&url, &["*"], &["5s"]);
        let app = spawn_with(move |c| c.webhooks = config).await;
        // A registration is two events (user.created, session.created), of two subjects:
        // both may be attempted at once, and both hear 410.
        app.register(&unique_email()).await;
        wait_for_requests(&receiver, 1).await;
        wait_for_empty_backlog(&app).await;
        assert_eq!(
            app.store.disabled_endpoints().await.unwrap(),
            [("hook".to_owned(), url)]
        );
        let before = received(&receiver).await.len();
        assert!((1..=2).contains(&before), "{before}");
        // Later events are not even queued for it.
        app.register(&unique_email()).await;
        app.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(received(&receiver).await.len(), before, "nothing after the 410");
        assert!(app.store.webhook_backlog().await.unwrap().is_empty());
    }
}

/// Two instances on one PostgreSQL database deliver together: every event arrives, and
/// exactly once (the receiver never fails, so nothing is retried).
#[tokio::test]
async fn two_instances_on_postgres_deliver_every_event_exactly_once() {
    if !postgres_available().await {
        return;
    }
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(40)))
        .mount(&receiver)
        .await;
    let config = webhooks(&receiver.uri(), &["*"], &["5s"]);
    let (for_a, for_b) = (config.clone(), config);
    let a = spawn_on(Backend::Postgres, move |c| {
        c.webhooks = for_a;
        c.rate_limits.enabled = false;
    })
    .await
    .expect("PostgreSQL is available");
    let b = spawn_sibling(&a, move |c| {
        c.webhooks = for_b;
        c.rate_limits.enabled = false;
    })
    .await;
    for i in 0..15 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.register(&unique_email()).await;
    }
    // Each registration is user.created and session.created.
    let got = wait_for_requests(&receiver, 30).await;
    wait_for_empty_backlog(&a).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = if got.len() == 30 {
        received(&receiver).await
    } else {
        got
    };
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no event delivered twice");
    assert_eq!(ids.len(), 30, "every event delivered");
}
