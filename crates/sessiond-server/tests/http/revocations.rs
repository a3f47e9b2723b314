//! The revocation feed: facts written as sessions end, read by a page, a snapshot and a
//! live stream, with a verifier key.

use std::time::Duration as StdDuration;

use crate::common::*;
use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

const VERIFIER_KEY: &str = "verifier-key-for-tests-0123456789abcdef";

/// A page of the feed after `after`, read with the verifier key.
async fn page(app: &TestApp, after: u64) -> Value {
    app.send(
        Method::GET,
        &format!("/v1/revocations?after={after}"),
        Some(VERIFIER_KEY),
        None,
    )
    .await
    .ok(200)
}

async fn snapshot(app: &TestApp) -> Value {
    app.send(
        Method::GET,
        "/v1/revocations/snapshot",
        Some(VERIFIER_KEY),
        None,
    )
    .await
    .ok(200)
}

fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().cloned().unwrap_or_default()
}

fn cursor(value: &Value) -> u64 {
    value
        .as_str()
        .expect("cursors are strings")
        .parse()
        .unwrap()
}

/// An open `/v1/revocations/stream`, read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, last_event_id: Option<&str>) -> EventStream {
        let mut request = app
            .http
            .get(format!("{}/v1/revocations/stream", app.base))
            .bearer_auth(VERIFIER_KEY);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("stream");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, id, data), within five seconds.
    async fn next(&mut self) -> (String, Option<String>, Value) {
        tokio::time::timeout(StdDuration::from_secs(5), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut name, mut id, mut data) = (String::new(), None, String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            name = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().to_owned());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if name.is_empty() {
                        continue;
                    }
                    return (name, id, serde_json::from_str(&data).expect("JSON data"));
                }
                let chunk = self.response.chunk().await.expect("read").expect("open");
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event within 5 s")
    }

    /// The next event that is not a heartbeat.
    async fn next_fact(&mut self) -> (String, Option<String>, Value) {
        loop {
            let event = self.next().await;
            if event.0 != "heartbeat" {
                return event;
            }
        }
    }
}

backend_suite! {
    helpers {
        async fn spawn_verified() -> crate::common::TestApp {
            spawn_with(|c| c.verifier_api_keys = vec![VERIFIER_KEY.to_owned()]).await
        }
    }

    #[tokio::test]
    async fn a_logout_is_a_session_revoked_fact_that_outlives_every_token_of_it() {
        let app = spawn_verified().await;
        let grant = app.register(&unique_email()).await;
        let before = page(&app, 0).await;
        assert_eq!(events(&before), Vec::<Value>::new());
        assert_eq!(before["next_cursor"], "0");
        let logged_out_at = app.clock_now();
        app.post_as("/v1/logout", &access(&grant), json!({})).await.ok(204);

        let after = page(&app, 0).await;
        let [fact] = events(&after).try_into().expect("one fact");
        assert_eq!(fact["type"], "session_revoked");
        assert_eq!(fact["sid"], grant["session"]["id"]);
        assert_eq!(fact["reason"], "logout");
        assert_eq!(fact.get("sub"), None);
        let max_exp: chrono::DateTime<chrono::Utc> =
            fact["max_exp"].as_str().unwrap().parse().unwrap();
        let token_exp = grant["expires_in"].as_i64().unwrap();
        assert!(
            max_exp >= logged_out_at + Duration::seconds(token_exp - 1),
            "no token of the session outlives max_exp"
        );
        assert_eq!(after["next_cursor"], fact["cursor"]);
        assert_eq!(after["has_more"], false);
        assert_eq!(events(&page(&app, cursor(&fact["cursor"])).await), Vec::<Value>::new());
    }

    #[tokio::test]
    async fn deactivation_revokes_the_user_and_each_session() {
        let app = spawn_verified().await;
        let email = unique_email();
        let first = app.register(&email).await;
        let second = app.login(&email).await.ok(200);
        let user_id = first["user"]["id"].as_str().unwrap().to_owned();
        app.admin(
            Method::PATCH,
            &format!("/v1/admin/users/{user_id}"),
            Some(json!({"active": false})),
        )
        .await
        .ok(200);

        let facts = events(&page(&app, 0).await);
        let mut sids: Vec<&Value> = facts
            .iter()
            .filter(|f| f["type"] == "session_revoked")
            .map(|f| &f["sid"])
            .collect();
        sids.sort_by_key(|v| v.as_str().unwrap().to_owned());
        let mut expected = vec![&first["session"]["id"], &second["session"]["id"]];
        expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
        assert_eq!(sids, expected);
        let user_facts: Vec<&Value> = facts.iter().filter(|f| f["type"] == "user_revoked").collect();
        let [user] = user_facts.try_into().expect("one user fact");
        assert_eq!(user["sub"], user_id.as_str());
        assert_eq!(user["reason"], "user_deactivated");
        assert!(user["not_before"].as_str().is_some());
        // Cursors are consecutive.
        let cursors: Vec<u64> = facts.iter().map(|f| cursor(&f["cursor"])).collect();
        assert_eq!(cursors, (1..=3).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn logging_out_other_devices_names_only_their_sessions() {
        let app = spawn_verified().await;
        let email = unique_email();
        let kept = app.register(&email).await;
        let other = app.login(&email).await.ok(200);
        app.send(
            Method::DELETE,
            "/v1/sessions?except=current",
            Some(&access(&kept)),
            None,
        )
        .await
        .ok(200);
        let facts = events(&page(&app, 0).await);
        assert_eq!(facts.len(), 1, "{facts:?}");
        assert_eq!(facts[0]["type"], "session_revoked");
        assert_eq!(facts[0]["sid"], other["session"]["id"]);
        assert_eq!(facts[0]["reason"], "revoked_others");
    }

    #[tokio::test]
    async fn a_reused_refresh_token_is_a_fact_too() {
        let app = spawn_verified().await;
        let grant = app.register(&unique_email()).await;
        let old = refresh_of(&grant);
        let next = app.refresh(&old).await.ok(200);
        app.refresh(&refresh_of(&next)).await.ok(200);
        app.clock.advance(Duration::seconds(60));
        app.refresh(&old).await.problem(401, "REFRESH_TOKEN_REUSED");
        let [fact] = events(&page(&app, 0).await).try_into().expect("one fact");
        assert_eq!(fact["reason"], "refresh_token_reused");
        assert_eq!(fact["sid"], grant["session"]["id"]);
    }

    #[tokio::test]
    async fn only_verifier_and_admin_keys_read_the_feed() {
        let app = spawn_verified().await;
        let grant = app.register(&unique_email()).await;
        for path in ["/v1/revocations", "/v1/revocations/snapshot", "/v1/revocations/stream"] {
            app.send(Method::GET, path, None, None)
                .await
                .problem(401, "TOKEN_NOT_PROVIDED");
            app.send(Method::GET, path, Some(&access(&grant)), None)
                .await
                .problem(403, "FORBIDDEN");
            app.send(Method::GET, path, Some("verifier-key-for-tests-0123456789abcdeX"), None)
                .await
                .problem(403, "FORBIDDEN");
        }
        let admin_key = app.admin_key.clone();
        app.send(Method::GET, "/v1/revocations", Some(&admin_key), None)
            .await
            .ok(200);
        // The verifier key introspects, and does nothing an admin does.
        let introspected = app
            .send(
                Method::POST,
                "/v1/introspect",
                Some(VERIFIER_KEY),
                Some(json!({"token": access(&grant)})),
            )
            .await
            .ok(200);
        assert_eq!(introspected["active"], true);
        app.send(
            Method::POST,
            "/v1/admin/sessions",
            Some(VERIFIER_KEY),
            Some(json!({"user_id": grant["user"]["id"]})),
        )
        .await
        .problem(403, "FORBIDDEN");
    }

    #[tokio::test]
    async fn a_snapshot_of_many_facts_is_whole_across_its_pages() {
        let app = spawn_verified().await;
        let now = app.service().now();
        let live = |minutes| sessiond_core::revocation::RevocationFact::SessionRevoked {
            session: sessiond_core::SessionId::new(),
            reason: sessiond_core::RevokeReason::Admin,
            max_exp: now + Duration::minutes(minutes),
        };
        // 2 500 facts (pages of 1 000), every tenth already dead: 2 250 in the snapshot.
        let facts: Vec<_> = (0..2500).map(|i| live(if i % 10 == 0 { -1 } else { 30 })).collect();
        let mut tx = app.store.begin().await.unwrap();
        tx.record_revocations(&facts, now).await.unwrap();
        tx.commit().await.unwrap();

        let reply = app
            .send(Method::GET, "/v1/revocations/snapshot", Some(VERIFIER_KEY), None)
            .await;
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let snap = reply.ok(200);
        let cursors: Vec<u64> = events(&snap).iter().map(|e| cursor(&e["cursor"])).collect();
        let expected: Vec<u64> = (1..=2500).filter(|n| (n - 1) % 10 != 0).collect();
        assert_eq!(cursors, expected, "every live fact once, in order, none dead");
        assert_eq!(snap["next_cursor"], "2500");
        assert_eq!(snap["has_more"], false);
        assert_eq!(events(&snap)[0]["type"], "session_revoked");
    }

    #[tokio::test]
    async fn a_purged_or_unknown_cursor_sends_the_verifier_to_the_snapshot() {
        let app = spawn_verified().await;
        let email = unique_email();
        let first = app.register(&email).await;
        app.post_as("/v1/logout", &access(&first), json!({})).await.ok(204);
        app.send(Method::GET, "/v1/revocations?after=2", Some(VERIFIER_KEY), None)
            .await
            .problem(409, "REVOCATION_CURSOR_EXPIRED");
        app.send(Method::GET, "/v1/revocations?after=abc", Some(VERIFIER_KEY), None)
            .await
            .problem(400, "VALIDATION_ERROR");
        app.send(Method::GET, "/v1/revocations?limit=0", Some(VERIFIER_KEY), None)
            .await
            .problem(400, "VALIDATION_ERROR");

        // The first fact's tokens all expire; then a second logout.
        app.clock.advance(Duration::minutes(20));
        let second = app.login(&email).await.ok(200);
        app.post_as("/v1/logout", &access(&second), json!({})).await.ok(204);
        assert_eq!(app.service().purge_revocations().await.unwrap(), 1);

        app.send(Method::GET, "/v1/revocations?after=0", Some(VERIFIER_KEY), None)
            .await
            .problem(409, "REVOCATION_CURSOR_EXPIRED");
        let continued = page(&app, 1).await;
        assert_eq!(events(&continued).len(), 1);
        let snap = snapshot(&app).await;
        let [fact] = events(&snap).try_into().expect("one live fact");
        assert_eq!(fact["sid"], second["session"]["id"]);
        assert_eq!(snap["next_cursor"], "2");
        let stream = app
            .http
            .get(format!("{}/v1/revocations/stream", app.base))
            .bearer_auth(VERIFIER_KEY)
            .header("Last-Event-ID", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 409);
    }

    #[tokio::test]
    async fn the_stream_catches_up_follows_live_and_resumes_from_its_last_event() {
        let app = spawn_verified().await;
        let email = unique_email();
        let first = app.register(&email).await;
        app.post_as("/v1/logout", &access(&first), json!({})).await.ok(204);

        let mut stream = EventStream::open(&app, None).await;
        let (name, id, data) = stream.next().await;
        assert_eq!((name.as_str(), id.as_deref()), ("session_revoked", Some("1")));
        assert_eq!(data["sid"], first["session"]["id"]);
        let (name, _, beat) = stream.next().await;
        assert_eq!(name, "heartbeat", "caught up");
        assert_eq!(beat["cursor"], "1");

        let second = app.login(&email).await.ok(200);
        let started = std::time::Instant::now();
        app.post_as("/v1/logout", &access(&second), json!({})).await.ok(204);
        let (name, id, data) = stream.next_fact().await;
        assert_eq!((name.as_str(), id.as_deref()), ("session_revoked", Some("2")));
        assert_eq!(data["sid"], second["session"]["id"]);
        assert!(started.elapsed() < StdDuration::from_secs(2));

        // A reconnecting EventSource sends the last id it saw.
        let third = app.login(&email).await.ok(200);
        app.post_as("/v1/logout", &access(&third), json!({})).await.ok(204);
        let mut resumed = EventStream::open(&app, Some("2")).await;
        let (_, id, data) = resumed.next_fact().await;
        assert_eq!(id.as_deref(), Some("3"));
        assert_eq!(data["sid"], third["session"]["id"]);
    }

    #[tokio::test]
    async fn an_idle_stream_says_it_is_up_to_date() {
        let app = spawn_verified().await;
        let mut stream = EventStream::open(&app, None).await;
        let (name, id, beat) = stream.next().await;
        assert_eq!((name.as_str(), id), ("heartbeat", None));
        assert_eq!(beat["cursor"], "0");
        assert!(beat["at"].as_str().unwrap().ends_with('Z'));
    }
}

/// Facts written on one instance reach the streams of another (PostgreSQL), in order.
#[tokio::test]
async fn a_revocation_on_one_instance_is_streamed_by_another() {
    if !postgres_available().await {
        return;
    }
    let a = spawn_on(Backend::Postgres, |c| {
        c.verifier_api_keys = vec![VERIFIER_KEY.to_owned()]
    })
    .await
    .unwrap();
    let b = spawn_sibling(&a, |c| c.verifier_api_keys = vec![VERIFIER_KEY.to_owned()]).await;
    let mut stream = EventStream::open(&b, None).await;
    assert_eq!(stream.next().await.0, "heartbeat");
    let email = unique_email();
    a.register(&email).await;
    let mut sids = Vec::new();
    for _ in 0..3 {
        let grant = a.login(&email).await.ok(200);
        a.post_as("/v1/logout", &access(&grant), json!({}))
            .await
            .ok(204);
        sids.push(grant["session"]["id"].clone());
    }
    for (n, sid) in sids.iter().enumerate() {
        let (name, id, data) = stream.next_fact().await;
        assert_eq!(name, "session_revoked");
        assert_eq!(id, Some((n + 1).to_string()));
        assert_eq!(&data["sid"], sid);
    }
}
