//! Keys, restarts and load shedding: what happens around the requests.

use crate::common::{self, *};
use chrono::Duration;
use reqwest::Method;
use serde_json::json;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

backend_suite! {
    #[tokio::test]
    async fn restart_on_the_same_storage_keeps_users_sessions_tokens_and_keys() {
        let app = spawn_app().await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let rotated = app.refresh(&refresh_of(&grant)).await.ok(200);
        app.send(
            Method::PUT,
            "/v1/session/data",
            Some(&access(&rotated)),
            Some(json!({"k": "v"})),
        )
        .await
        .ok(200);
        let jwks_before = app
            .send(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .ok(200);
        let stopped = app.stop().await;

        let app = common::restart(stopped, |_| {}).await;
        let jwks_after = app
            .send(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .ok(200);
        assert_eq!(jwks_before, jwks_after, "the signing key survives");
        let me = app.whoami(&access(&rotated)).await.ok(200);
        assert_eq!(me["user"]["id"], grant["user"]["id"]);
        assert_eq!(
            app.get("/v1/session/data", &access(&rotated)).await.ok(200),
            json!({"k": "v"})
        );
        app.refresh(&refresh_of(&rotated)).await.ok(200);
        let login = app.login(&email).await.ok(200);
        assert_eq!(login["user"]["id"], grant["user"]["id"]);
    }

    #[tokio::test]
    async fn rotated_keys_keep_verifying_until_their_tokens_expire() {
        let app = spawn_app().await;
        let old = app.register(&unique_email()).await;
        let old_kid = kid_of(&access(&old));

        let (now, lead) = (app.clock_now(), sessiond_server::state::keys::PUBLISH_LEAD);
        let ttl = chrono::Duration::minutes(15);
        let new_key = sessiond_server::state::keys::rotate(
            app.store.as_ref(),
            now,
            now + lead,
            ttl,
            app.service().outbox(),
        )
            .await
            .unwrap();
        app.state_reload_keys().await;
        // Published first: the JWKS lists the new key while tokens are still signed with
        // the old one.
        assert!(app.jwks_kids().await.contains(&new_key.kid));
        let early = app.register(&unique_email()).await;
        assert_eq!(kid_of(&access(&early)), old_kid);
        app.clock.advance(lead);
        app.state_reload_keys().await;
        let new = app.register(&unique_email()).await;
        assert_eq!(kid_of(&access(&new)), new_key.kid);
        assert_ne!(new_key.kid, old_kid);

        let jwks = app
            .send(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .ok(200);
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_key.kid.as_str()));
        app.whoami(&access(&old)).await.ok(200);
        app.whoami(&access(&new)).await.ok(200);
    }

    #[tokio::test]
    async fn a_key_rotated_by_another_instance_is_picked_up_when_a_token_names_it() {
        let app = spawn_app().await;
        // A second instance on the same storage rotates the key and signs with it; the
        // first has not reloaded yet and learns the key on demand from the token's `kid`.
        let other = common::spawn_sibling(&app, |_| {}).await;
        let now = other.clock_now();
        let new_key = sessiond_server::state::keys::rotate(
            other.store.as_ref(),
            now,
            now,
            chrono::Duration::minutes(15),
            other.service().outbox(),
        )
        .await
        .unwrap();
        other.state_reload_keys().await;
        let grant = other.register(&unique_email()).await;
        assert_eq!(kid_of(&access(&grant)), new_key.kid);
        app.whoami(&access(&grant)).await.ok(200);
        // A token naming a key nobody has is still just invalid.
        app.whoami("eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im5vcGUifQ.e30.AAAA")
            .await
            .problem(401, "TOKEN_INVALID");
    }

    #[tokio::test]
    async fn a_burst_of_logins_gets_a_fast_503_when_the_hash_queue_is_full() {
        let app = spawn_with(|c| {
            c.password_hash_workers = Some(1);
            c.password_hash_queue = 1;
        })
        .await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let replies = futures::future::join_all((0..12).map(|_| app.login(&email))).await;
        let overloaded: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
        assert!(!overloaded.is_empty(), "some logins were shed");
        assert!(
            replies.iter().any(|r| r.status == 200),
            "some logins went through"
        );
        for r in &overloaded {
            r.problem(503, "SERVICE_OVERLOADED");
            assert_eq!(r.header("retry-after"), Some("1"));
        }
        // Token checks never wait for hashing.
        app.whoami(&access(&grant)).await.ok(200);
        app.clock.advance(Duration::seconds(1));
        app.login(&email).await.ok(200);
    }

    #[tokio::test]
    async fn token_checks_are_answered_while_logins_hash() {
        let app = spawn_with(|c| c.password_hash_workers = Some(1)).await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let token = access(&grant);
        let logins = futures::future::join_all((0..8).map(|_| app.login(&email)));
        let checks = async {
            let mut answered = 0;
            for _ in 0..20 {
                app.whoami(&token).await.ok(200);
                answered += 1;
            }
            answered
        };
        let (login_replies, answered) = tokio::join!(logins, checks);
        assert_eq!(answered, 20);
        assert!(login_replies.iter().all(|r| r.status == 200));
    }
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_shutdown_past_its_timeout() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(|c| c.shutdown_timeout = std::time::Duration::from_millis(300)).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Headers promise a body that never comes.
    let mut stuck = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stuck
        .write_all(b"POST /v1/users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"email\"")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(5), app.stop())
        .await
        .expect("shutdown finished despite the stuck request");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "it did wait for in-flight work"
    );
    drop(stuck);
}
