//! Login by emailed one-time code, through a real SMTP listener and the outbox.

use crate::common::smtp::{SmtpServer, code_in};
use crate::common::*;
use chrono::Duration;
use serde_json::{Value, json};

backend_suite! {
    helpers {
        async fn app_with_smtp(
            configure: impl FnOnce(&mut sessiond_server::Config),
        ) -> (TestApp, SmtpServer) {
            let smtp = SmtpServer::start().await;
            let url = smtp.url();
            let app = spawn_with(|c| {
                c.smtp_url = Some(url.parse().unwrap());
                c.app_name = "Acme".into();
                configure(c);
            })
            .await;
            (app, smtp)
        }
        async fn request_code(app: &TestApp, email: &str) -> Value {
            let reply = app.post("/v1/auth/otp", json!({"email": email})).await;
            let body = reply.ok(202);
            assert_eq!(body["expires_in"], 600);
            body
        }
        fn last_code(smtp: &SmtpServer) -> String {
            let mail = smtp.messages().pop().expect("a mail was received");
            code_in(&mail.data).expect("the mail carries a code")
        }
    }

    #[tokio::test]
    async fn a_mailed_code_logs_in_and_creates_the_user() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let email = unique_email();
        let challenge = request_code(&app, &email.to_uppercase()).await;
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, vec![format!("<{email}>")]);
        assert!(
            mails[0].data.contains("Acme"),
            "templates carry the app name"
        );
        assert!(
            mails[0].data.to_ascii_lowercase().contains("text/html"),
            "an HTML part too"
        );
        let code = last_code(&smtp);
        assert_eq!(code.len(), 6);

        let grant = app
            .post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": challenge["challenge_id"], "code": code}),
            )
            .await
            .ok(200);
        assert_eq!(grant["session"]["auth_method"], "otp");
        assert_eq!(grant["user"]["email"], email.as_str());
        app.whoami(&access(&grant)).await.ok(200);

        // Single use.
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(401, "OTP_INVALID");

        // The same address later logs into the same user.
        app.clock.advance(Duration::seconds(61));
        let again = request_code(&app, &email).await;
        let second = app
            .post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": again["challenge_id"], "code": last_code(&smtp)}),
            )
            .await
            .ok(200);
        assert_eq!(second["user"]["id"], grant["user"]["id"]);
    }

    #[tokio::test]
    async fn codes_expire_after_ten_minutes() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let challenge = request_code(&app, &unique_email()).await;
        app.clock.advance(Duration::minutes(10));
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": last_code(&smtp)}),
        )
        .await
        .problem(401, "OTP_EXPIRED");
    }

    #[tokio::test]
    async fn five_wrong_codes_kill_the_challenge() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let challenge = request_code(&app, &unique_email()).await;
        let code = last_code(&smtp);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..4 {
            app.post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": challenge["challenge_id"], "code": wrong}),
            )
            .await
            .problem(401, "OTP_INVALID");
        }
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": wrong}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");
    }

    #[tokio::test]
    async fn concurrent_redemptions_of_one_code_give_one_session() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let challenge = request_code(&app, &unique_email()).await;
        let code = last_code(&smtp);
        let body = json!({"challenge_id": challenge["challenge_id"], "code": code});
        let replies =
            futures::future::join_all((0..10).map(|_| app.post("/v1/auth/otp/verify", body.clone())))
                .await;
        assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1);
        for r in replies.iter().filter(|r| r.status != 200) {
            r.problem(401, "OTP_INVALID");
        }
    }

    #[tokio::test]
    async fn a_new_code_does_not_reset_the_address_failure_count() {
        let (app, smtp) = app_with_smtp(|c| {
            c.rate_limits.otp_failures = "6/1h".parse().unwrap();
            c.otp.resend_cooldown = std::time::Duration::from_secs(1);
        })
        .await;
        let email = unique_email();
        let first = request_code(&app, &email).await;
        for _ in 0..4 {
            app.post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": first["challenge_id"], "code": "999999x"}),
            )
            .await;
        }
        app.clock.advance(Duration::seconds(2));
        let second = request_code(&app, &email).await;
        let code = last_code(&smtp);
        for _ in 0..2 {
            app.post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": second["challenge_id"], "code": "12"}),
            )
            .await
            .problem(401, "OTP_INVALID");
        }
        // Six wrong codes for the address in all: even the right one is refused now.
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": second["challenge_id"], "code": code}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");
    }

    #[tokio::test]
    async fn a_code_guesser_on_one_ip_cannot_lock_out_the_owner_on_another() {
        let (app, smtp) = app_with_smtp(|c| {
            c.rate_limits.otp_failures = "3/1h".parse().unwrap();
            c.otp.resend_cooldown = std::time::Duration::from_secs(1);
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        })
        .await;
        let email = unique_email();
        // Anyone can have a code sent to the address, and guess at it.
        let guessed = app
            .post_from("198.51.100.7", "/v1/auth/otp", json!({"email": email}))
            .await
            .ok(202);
        let guessed_code = last_code(&smtp);
        for _ in 0..3 {
            app.post_from(
                "198.51.100.7",
                "/v1/auth/otp/verify",
                json!({"challenge_id": guessed["challenge_id"], "code": "000000x"}),
            )
            .await
            .problem(401, "OTP_INVALID");
        }
        // That IP is refused from now on, even the right code…
        app.post_from(
            "198.51.100.7",
            "/v1/auth/otp/verify",
            json!({"challenge_id": guessed["challenge_id"], "code": guessed_code}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");
        // …but the owner, elsewhere, asks for a code and logs in with it.
        app.clock.advance(Duration::seconds(2));
        let own = app
            .post_from("203.0.113.20", "/v1/auth/otp", json!({"email": email}))
            .await
            .ok(202);
        let code = last_code(&smtp);
        app.post_from(
            "203.0.113.20",
            "/v1/auth/otp/verify",
            json!({"challenge_id": own["challenge_id"], "code": code}),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn wrong_codes_from_many_ips_are_throttled_per_address() {
        let (app, smtp) = app_with_smtp(|c| {
            c.rate_limits.otp_failures = "3/1h".parse().unwrap();
            c.rate_limits.otp_failures_address = "4/1h".parse().unwrap();
            c.otp.resend_cooldown = std::time::Duration::from_secs(1);
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        })
        .await;
        let email = unique_email();
        let challenge = request_code(&app, &email).await;
        let code = last_code(&smtp);
        for i in 0..4 {
            app.post_from(
                &format!("198.51.100.{i}"),
                "/v1/auth/otp/verify",
                json!({"challenge_id": challenge["challenge_id"], "code": "000000x"}),
            )
            .await
            .problem(401, "OTP_INVALID");
        }
        // Past the address-wide ceiling, the next attempt waits for its back-off slot,
        // from whichever IP.
        app.post_from(
            "203.0.113.20",
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");
        app.clock.advance(Duration::seconds(1));
        app.post_from(
            "203.0.113.20",
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn resends_are_held_back_by_a_cooldown() {
        let (app, _smtp) = app_with_smtp(|_| {}).await;
        let email = unique_email();
        request_code(&app, &email).await;
        let reply = app.post("/v1/auth/otp", json!({"email": email})).await;
        reply.problem(429, "RATE_LIMITED");
        assert!(reply.header("retry-after").is_some());
        app.clock.advance(Duration::seconds(60));
        request_code(&app, &email).await;
    }

    #[tokio::test]
    async fn without_create_users_unknown_addresses_get_202_and_no_mail() {
        let (app, smtp) = app_with_smtp(|c| c.otp.create_users = false).await;
        let known = unique_email();
        app.register(&known).await;
        let unknown = request_code(&app, &unique_email()).await;
        assert!(smtp.messages().is_empty(), "no mail to unknown addresses");
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": unknown["challenge_id"], "code": "123456"}),
        )
        .await
        .problem(401, "OTP_INVALID");

        let challenge = request_code(&app, &known).await;
        let grant = app
            .post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": challenge["challenge_id"], "code": last_code(&smtp)}),
            )
            .await
            .ok(200);
        assert_eq!(grant["user"]["email"], known.as_str());
    }

    #[tokio::test]
    async fn a_mail_that_fails_gives_503_and_leaves_no_usable_challenge() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        smtp.refuse_messages(true);
        let email = unique_email();
        let reply = app.post("/v1/auth/otp", json!({"email": email})).await;
        reply.problem(503, "UPSTREAM_UNAVAILABLE");
        // The failed attempt does not hold back a retry once mail works again.
        smtp.refuse_messages(false);
        request_code(&app, &email).await;
    }

    #[tokio::test]
    async fn an_unreachable_smtp_server_gives_503() {
        let app = spawn_with(|c| c.smtp_url = Some("smtp://127.0.0.1:1".parse().unwrap())).await;
        app.post("/v1/auth/otp", json!({"email": unique_email()}))
            .await
            .problem(503, "UPSTREAM_UNAVAILABLE");
    }

    #[tokio::test]
    async fn without_smtp_codes_land_in_the_outbox() {
        let app = spawn_app().await;
        let email = unique_email();
        let challenge = request_code(&app, &email).await;
        let outbox = app.dir.path().join("outbox");
        let mails: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        assert_eq!(mails.len(), 1);
        let mail = std::fs::read_to_string(&mails[0]).unwrap();
        assert!(mail.contains(&email));
        let code = code_in(&mail).unwrap();
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn an_otp_login_upgrades_an_anonymous_session() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let anon = app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
        let challenge = request_code(&app, &unique_email()).await;
        let grant = app
            .post_as(
                "/v1/auth/otp/verify",
                &access(&anon),
                json!({"challenge_id": challenge["challenge_id"], "code": last_code(&smtp)}),
            )
            .await
            .ok(200);
        assert_eq!(session_id(&grant), session_id(&anon));
    }

    #[tokio::test]
    async fn bad_otp_input_is_a_validation_error() {
        let (app, _smtp) = app_with_smtp(|_| {}).await;
        app.post("/v1/auth/otp", json!({"email": "nope"}))
            .await
            .problem(422, "VALIDATION_ERROR");
        app.post("/v1/auth/otp", json!({}))
            .await
            .problem(422, "VALIDATION_ERROR");
        app.post("/v1/auth/otp/verify", json!({"challenge_id": "x"}))
            .await
            .problem(422, "VALIDATION_ERROR");
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": "not-a-challenge", "code": "123456"}),
        )
        .await
        .problem(401, "OTP_INVALID");
    }
}
