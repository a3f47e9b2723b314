//! Abuse limits per client IP, per session and per account.

use crate::common::*;
use chrono::Duration;
use reqwest::Method;
use serde_json::json;

backend_suite! {
    helpers {
        async fn password_login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Reply {
            app.post_from(ip, "/v1/auth/password", json!({"email": email, "password": password}))
                .await
        }
    }

    #[tokio::test]
    async fn anonymous_sessions_are_limited_per_ip_with_rate_limit_headers() {
        let app = spawn_app().await;
        for _ in 0..10 {
            app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
        }
        let reply = app.post("/v1/sessions/anonymous", json!({})).await;
        let body = reply.problem(429, "RATE_LIMITED");
        let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry));
        assert_eq!(body["retry_after"], retry);
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some(r#""anonymous";q=10;w=3600"#)
        );
        assert_eq!(
            reply.header("ratelimit"),
            Some(format!(r#""anonymous";r=0;t={retry}"#).as_str())
        );
        // The window passes.
        app.clock.advance(Duration::seconds(retry as i64));
        app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
    }

    #[tokio::test]
    async fn logins_are_limited_per_ip_across_login_routes() {
        let app = spawn_with(|c| c.rate_limits.login = "5/15m".parse().unwrap()).await;
        let email = unique_email();
        app.register(&email).await;
        for _ in 0..3 {
            app.login(&email).await.ok(200);
        }
        app.post("/v1/auth/otp", json!({"email": unique_email()}))
            .await
            .ok(202);
        let reply = app.login(&email).await;
        reply.problem(429, "RATE_LIMITED");
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some(r#""login";q=5;w=900"#)
        );
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": "x", "code": "1"}),
        )
        .await
        .problem(429, "RATE_LIMITED");
        app.post(
            "/v1/users",
            json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await
        .problem(429, "RATE_LIMITED");
    }

    #[tokio::test]
    async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
        let app = spawn_with(|c| c.rate_limits.anonymous = "2/1h".parse().unwrap()).await;
        for i in 0..2 {
            let reply = app
                .http
                .post(format!("{}/v1/sessions/anonymous", app.base))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .header("forwarded", format!("for=198.51.100.{i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 201);
            let body: serde_json::Value = reply.json().await.unwrap();
            assert_eq!(
                body["session"]["device"]["ip"], "127.0.0.1",
                "the socket address is recorded"
            );
        }
        let reply = app
            .http
            .post(format!("{}/v1/sessions/anonymous", app.base))
            .header("x-forwarded-for", "203.0.113.99")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 429);
    }

    #[tokio::test]
    async fn a_trusted_proxy_forwards_the_client_address() {
        let app = spawn_with(|c| {
            c.rate_limits.anonymous = "2/1h".parse().unwrap();
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        })
        .await;
        let create = |ip: &'static str| {
            app.http
                .post(format!("{}/v1/sessions/anonymous", app.base))
                .header("x-forwarded-for", ip)
                .send()
        };
        for _ in 0..2 {
            let reply = create("203.0.113.7").await.unwrap();
            assert_eq!(reply.status(), 201);
            let body: serde_json::Value = reply.json().await.unwrap();
            assert_eq!(body["session"]["device"]["ip"], "203.0.113.7");
        }
        assert_eq!(create("203.0.113.7").await.unwrap().status(), 429);
        assert_eq!(
            create("203.0.113.8").await.unwrap().status(),
            201,
            "another client has its own budget"
        );
    }

    #[tokio::test]
    async fn refreshes_are_limited_per_session() {
        let app = spawn_with(|c| c.rate_limits.refresh = "3/1h".parse().unwrap()).await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let other = app.login(&email).await.ok(200);
        let mut token = refresh_of(&grant);
        for _ in 0..3 {
            token = refresh_of(&app.refresh(&token).await.ok(200));
        }
        let reply = app.refresh(&token).await;
        reply.problem(429, "RATE_LIMITED");
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some(r#""refresh";q=3;w=3600"#)
        );
        // Refused before rotation: the token still works after the window.
        app.refresh(&refresh_of(&other)).await.ok(200);
        app.clock.advance(Duration::hours(1));
        app.refresh(&token).await.ok(200);
    }

    #[tokio::test]
    async fn validations_are_limited_per_ip() {
        let app = spawn_with(|c| c.rate_limits.validate = "3/1h".parse().unwrap()).await;
        for _ in 0..3 {
            app.validate("garbage").await;
        }
        app.post("/v1/token/validate", json!({"token": "garbage"}))
            .await
            .problem(429, "RATE_LIMITED");
    }

    #[tokio::test]
    async fn a_guesser_on_one_ip_cannot_lock_out_the_owner_on_another() {
        let app = spawn_with(|c| {
            c.rate_limits.password_failures = "3/15m".parse().unwrap();
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        let unknown = unique_email();
        for who in [&email, &unknown] {
            for _ in 0..3 {
                password_login_from(&app, "198.51.100.7", who, "wrong password")
                    .await
                    .problem(401, "INVALID_CREDENTIALS");
            }
        }
        // The guesser's IP is refused even the right password, for known and unknown
        // accounts alike.
        let known = password_login_from(&app, "198.51.100.7", &email, PASSWORD).await;
        let unknown = password_login_from(&app, "198.51.100.7", &unknown, PASSWORD).await;
        let a = known.problem(429, "RATE_LIMITED");
        let b = unknown.problem(429, "RATE_LIMITED");
        assert_eq!(a, b, "locked accounts and unknown addresses look the same");
        assert_eq!(
            known.header("ratelimit-policy"),
            Some(r#""password_failures";q=3;w=900"#)
        );
        // The owner, elsewhere, logs in.
        password_login_from(&app, "203.0.113.20", &email, PASSWORD)
            .await
            .ok(200);
        // The guesser's refusal ends with the window.
        app.clock.advance(Duration::minutes(15));
        password_login_from(&app, "198.51.100.7", &email, PASSWORD)
            .await
            .ok(200);
    }

    #[tokio::test]
    async fn guessing_from_many_ips_is_slowed_account_wide_but_never_locked() {
        let app = spawn_with(|c| {
            c.rate_limits.password_failures = "3/15m".parse().unwrap();
            c.rate_limits.password_failures_account = "6/15m".parse().unwrap();
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        let unknown = unique_email();
        for who in [&email, &unknown] {
            for i in 0..6 {
                password_login_from(&app, &format!("198.51.100.{i}"), who, "wrong password")
                    .await
                    .problem(401, "INVALID_CREDENTIALS");
            }
        }
        // Past the ceiling, the account's attempts are spaced out, whoever makes them,
        // known account or not: even the owner's right password waits for the next slot.
        let owner = "203.0.113.20";
        let known = password_login_from(&app, owner, &email, PASSWORD).await;
        let other = password_login_from(&app, owner, &unknown, PASSWORD).await;
        let body = known.problem(429, "RATE_LIMITED");
        assert_eq!(body, other.problem(429, "RATE_LIMITED"));
        assert_eq!(
            known.header("ratelimit-policy"),
            Some(r#""password_failures_account";q=6;w=900"#)
        );
        assert_eq!(known.header("retry-after"), Some("1"));
        app.clock.advance(Duration::seconds(1));
        // One more guess from yet another IP: the slot doubles.
        password_login_from(&app, "198.51.100.50", &email, "wrong password")
            .await
            .problem(401, "INVALID_CREDENTIALS");
        let waited = password_login_from(&app, owner, &email, PASSWORD).await;
        waited.problem(429, "RATE_LIMITED");
        let retry: i64 = waited.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        // The owner is slowed, not locked out: the next slot lets them in.
        app.clock.advance(Duration::seconds(retry));
        password_login_from(&app, owner, &email, PASSWORD)
            .await
            .ok(200);
    }

    #[tokio::test]
    async fn otp_sends_are_limited_per_address() {
        let app = spawn_with(|c| {
            c.rate_limits.otp_sends = "2/1h".parse().unwrap();
            c.otp.resend_cooldown = std::time::Duration::from_secs(1);
        })
        .await;
        let email = unique_email();
        for _ in 0..2 {
            app.post("/v1/auth/otp", json!({"email": email}))
                .await
                .ok(202);
            app.clock.advance(Duration::seconds(2));
        }
        let reply = app
            .post("/v1/auth/otp", json!({"email": email.to_uppercase()}))
            .await;
        reply.problem(429, "RATE_LIMITED");
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some(r#""otp_sends";q=2;w=3600"#)
        );
        app.post("/v1/auth/otp", json!({"email": unique_email()}))
            .await
            .ok(202);
    }

    #[tokio::test]
    async fn limits_can_be_switched_off() {
        let app = spawn_with(|c| {
            c.rate_limits.enabled = false;
            c.rate_limits.anonymous = "1/1h".parse().unwrap();
        })
        .await;
        for _ in 0..3 {
            app.send(Method::POST, "/v1/sessions/anonymous", None, None)
                .await
                .ok(201);
        }
    }
}
