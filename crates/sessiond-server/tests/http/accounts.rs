//! Accounts: password change and reset, the password policy, re-hashing, email
//! verification and change, with a real SMTP listener.

use crate::common::smtp::{SmtpServer, code_in};
use crate::common::*;
use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new passphrase";

backend_suite! {
    helpers {
        async fn app_with_smtp(
            configure: impl FnOnce(&mut sessiond_server::Config),
        ) -> (TestApp, SmtpServer) {
            let smtp = SmtpServer::start().await;
            let url = smtp.url();
            let app = spawn_with(|c| {
                c.smtp_url = Some(url.parse().unwrap());
                configure(c);
            })
            .await;
            (app, smtp)
        }
        /// The code in the newest mail to `to`.
        fn code_to(smtp: &SmtpServer, to: &str) -> String {
            let mail = smtp
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.to == vec![format!("<{to}>")])
                .unwrap_or_else(|| panic!("no mail to {to}"));
            code_in(&mail.data).expect("the mail carries a code")
        }
        fn mails_to(smtp: &SmtpServer, to: &str) -> Vec<String> {
            smtp.messages()
                .into_iter()
                .filter(|m| m.to == vec![format!("<{to}>")])
                // Undo quoted-printable soft line breaks.
                .map(|m| m.data.replace("=\r\n", "").replace("=\n", ""))
                .collect()
        }
        async fn request_reset(app: &TestApp, email: &str) -> Value {
            app.post("/v1/auth/password/reset", json!({"email": email}))
                .await
                .ok(202)
        }
        fn validation_reason(problem: &Value, field: &str) -> String {
            let errors = problem["errors"].as_array().expect("errors");
            let error = errors
                .iter()
                .find(|e| e["field"] == field)
                .unwrap_or_else(|| panic!("no error for {field}: {problem}"));
            error["reason"].as_str().unwrap_or_default().to_owned()
        }
    }

    #[tokio::test]
    async fn changing_the_password_ends_every_other_session() {
        let app = spawn_app().await;
        let email = unique_email();
        let here = app.register(&email).await;
        let elsewhere = app.login(&email).await.ok(200);

        app.post_as(
            "/v1/session/password",
            &access(&here),
            json!({"current_password": "not the password", "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(401, "INVALID_CREDENTIALS");
        app.whoami(&access(&here)).await.ok(200);

        let weak = app
            .post_as(
                "/v1/session/password",
                &access(&here),
                json!({"current_password": PASSWORD, "new_password": "password1"}),
            )
            .await
            .problem(422, "VALIDATION_ERROR");
        assert_eq!(validation_reason(&weak, "new_password"), "common");

        app.post_as(
            "/v1/session/password",
            &access(&here),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await
        .ok(204);
        app.whoami(&access(&here)).await.ok(200);
        let ended = app
            .whoami(&access(&elsewhere))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(ended["revoked_reason"], "password_changed");
        app.refresh(&refresh_of(&elsewhere))
            .await
            .problem(401, "SESSION_REVOKED");
        app.login(&email).await.problem(401, "INVALID_CREDENTIALS");
        app.login_with(&email, NEW_PASSWORD).await.ok(200);

        // Anonymous sessions have no password to change.
        let anonymous = app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
        app.post_as(
            "/v1/session/password",
            &access(&anonymous),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(401, "INVALID_CREDENTIALS");
    }

    #[tokio::test]
    async fn the_password_policy_names_the_rule_broken() {
        let app = spawn_app().await;
        let email = unique_email();
        let local = email.split('@').next().unwrap().to_owned();
        for (password, reason) in [
            ("short", "too_short"),
            ("password", "common"),
            ("Iloveyou1", "common"),
            (email.as_str(), "matches_email"),
            (local.as_str(), "matches_email"),
        ] {
            let problem = app
                .post("/v1/users", json!({"email": email, "password": password}))
                .await
                .problem(422, "VALIDATION_ERROR");
            assert_eq!(validation_reason(&problem, "password"), reason, "{password}");
        }
        let too_long = "x".repeat(257);
        let problem = app
            .post("/v1/users", json!({"email": email, "password": too_long}))
            .await
            .problem(422, "VALIDATION_ERROR");
        assert_eq!(validation_reason(&problem, "password"), "too_long");
        // Nothing was created by the refusals; 256 characters of any script is fine.
        let long = "é".repeat(256);
        app.post("/v1/users", json!({"email": email, "password": long}))
            .await
            .ok(201);
    }

    #[tokio::test]
    async fn a_reset_code_sets_a_new_password_and_ends_every_session() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let email = unique_email();
        let before = app.register(&email).await;
        let unknown = unique_email();

        let challenge = request_reset(&app, &email.to_uppercase()).await;
        let ghost = request_reset(&app, &unknown).await;
        assert_eq!(
            challenge.as_object().unwrap().keys().collect::<Vec<_>>(),
            ghost.as_object().unwrap().keys().collect::<Vec<_>>(),
            "unknown addresses get the same answer"
        );
        assert!(mails_to(&smtp, &unknown).is_empty(), "and no mail");
        let code = code_to(&smtp, &email);

        // A login code's challenge cannot reset, nor a reset code log in.
        app.post(
            "/v1/auth/otp/verify",
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(401, "OTP_INVALID");
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": challenge["challenge_id"], "code": "000000", "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(401, "OTP_INVALID");
        // A weak password leaves the code good.
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": challenge["challenge_id"], "code": code, "new_password": "qwerty123"}),
        )
        .await
        .problem(422, "VALIDATION_ERROR");
        let grant = app
            .post(
                "/v1/auth/password/reset/confirm",
                json!({"challenge_id": challenge["challenge_id"], "code": code, "new_password": NEW_PASSWORD}),
            )
            .await
            .ok(200);
        assert_eq!(grant["user"]["email"], email.as_str());
        assert_eq!(grant["user"]["email_verified"], true, "the mailbox is proven");
        app.whoami(&access(&grant)).await.ok(200);
        let ended = app
            .whoami(&access(&before))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(ended["revoked_reason"], "password_reset");
        app.login(&email).await.problem(401, "INVALID_CREDENTIALS");
        app.login_with(&email, NEW_PASSWORD).await.ok(200);

        // Single use.
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": challenge["challenge_id"], "code": code, "new_password": "yet another passphrase"}),
        )
        .await
        .problem(401, "OTP_INVALID");
        // The ghost challenge takes no code at all.
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": ghost["challenge_id"], "code": "123456", "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(401, "OTP_INVALID");
    }

    #[tokio::test]
    async fn reset_codes_expire_count_attempts_and_cool_down() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let email = unique_email();
        app.register(&email).await;
        let challenge = request_reset(&app, &email).await;
        app.post("/v1/auth/password/reset", json!({"email": email}))
            .await
            .problem(429, "RATE_LIMITED");
        let code = code_to(&smtp, &email);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        // Wrong codes are refused until the caps (per challenge, per address and IP)
        // close the challenge to the right code too.
        for _ in 0..5 {
            let refused = app
                .post(
                    "/v1/auth/password/reset/confirm",
                    json!({"challenge_id": challenge["challenge_id"], "code": wrong, "new_password": NEW_PASSWORD}),
                )
                .await;
            let code = refused.json()["code"].as_str().unwrap_or_default().to_owned();
            assert!(
                ["OTP_INVALID", "OTP_ATTEMPTS_EXCEEDED"].contains(&code.as_str()),
                "{code}"
            );
        }
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": challenge["challenge_id"], "code": code, "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(429, "OTP_ATTEMPTS_EXCEEDED");

        app.clock.advance(Duration::seconds(61));
        let second = request_reset(&app, &email).await;
        app.clock.advance(Duration::minutes(11));
        app.post(
            "/v1/auth/password/reset/confirm",
            json!({"challenge_id": second["challenge_id"], "code": code_to(&smtp, &email), "new_password": NEW_PASSWORD}),
        )
        .await
        .problem(401, "OTP_EXPIRED");
        app.login(&email).await.ok(200);
    }

    #[tokio::test]
    async fn older_hashes_are_replaced_at_the_next_login() {
        let app = spawn_with(|c| {
            c.password_hash_memory_kib = 8 * 1024;
            c.password_hash_iterations = 1;
        })
        .await;
        let email = unique_email();
        app.register(&email).await;
        let stopped = app.stop().await;
        let app = restart(stopped, |_| {}).await;
        let old = app.service_password_hash(&email).await;
        assert!(old.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{old}");
        app.login(&email).await.ok(200);
        let new = app.service_password_hash(&email).await;
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        app.login(&email).await.ok(200);
        assert_eq!(app.service_password_hash(&email).await, new, "only once");
        app.login_with(&email, "wrong horse battery").await.problem(401, "INVALID_CREDENTIALS");
    }

    #[tokio::test]
    async fn verified_email_is_required_when_configured() {
        let (app, smtp) = app_with_smtp(|c| c.require_verified_email = true).await;
        let email = unique_email();
        let grant = app.register(&email).await;
        assert_eq!(grant["user"]["email_verified"], false);
        app.login(&email).await.problem(403, "EMAIL_NOT_VERIFIED");
        // A wrong password still says only that.
        app.login_with(&email, "wrong horse battery").await.problem(401, "INVALID_CREDENTIALS");

        let challenge = app
            .post_as("/v1/session/email/verify", &access(&grant), json!({}))
            .await
            .ok(202);
        let code = code_to(&smtp, &email);
        let other = app.register(&unique_email()).await;
        app.post_as(
            "/v1/session/email/verify/confirm",
            &access(&other),
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(401, "OTP_INVALID");
        let user = app
            .post_as(
                "/v1/session/email/verify/confirm",
                &access(&grant),
                json!({"challenge_id": challenge["challenge_id"], "code": code}),
            )
            .await
            .ok(200);
        assert_eq!(user["email_verified"], true);
        app.whoami(&access(&grant)).await.ok(200);
        let login = app.login(&email).await.ok(200);
        assert_eq!(login["user"]["email_verified"], true);
    }

    #[tokio::test]
    async fn a_one_time_code_login_verifies_the_address() {
        let (app, smtp) = app_with_smtp(|c| c.require_verified_email = true).await;
        let email = unique_email();
        app.register(&email).await;
        let challenge = app.post("/v1/auth/otp", json!({"email": email})).await.ok(202);
        let grant = app
            .post(
                "/v1/auth/otp/verify",
                json!({"challenge_id": challenge["challenge_id"], "code": code_to(&smtp, &email)}),
            )
            .await
            .ok(200);
        assert_eq!(grant["user"]["email_verified"], true);
        app.login(&email).await.ok(200);
    }

    #[tokio::test]
    async fn changing_the_email_needs_a_code_from_the_new_address_and_tells_the_old() {
        let (app, smtp) = app_with_smtp(|_| {}).await;
        let old = unique_email();
        let new = unique_email();
        let taken = unique_email();
        app.register(&taken).await;
        let grant = app.register(&old).await;

        app.post_as("/v1/session/email", &access(&grant), json!({"email": taken}))
            .await
            .problem(409, "CONFLICT");
        app.post_as("/v1/session/email", &access(&grant), json!({"email": "not an address"}))
            .await
            .problem(422, "VALIDATION_ERROR");
        let challenge = app
            .post_as("/v1/session/email", &access(&grant), json!({"email": new}))
            .await
            .ok(202);
        let code = code_to(&smtp, &new);
        // Nothing changed yet.
        app.login(&old).await.ok(200);
        let user = app
            .post_as(
                "/v1/session/email/confirm",
                &access(&grant),
                json!({"challenge_id": challenge["challenge_id"], "code": code}),
            )
            .await
            .ok(200);
        assert_eq!(user["email"], new.as_str());
        assert_eq!(user["email_verified"], true);
        app.login(&old).await.problem(401, "INVALID_CREDENTIALS");
        app.login(&new).await.ok(200);
        let notices = mails_to(&smtp, &old);
        assert_eq!(notices.len(), 1, "the old address is told");
        assert!(
            notices[0].contains("changed away from this one"),
            "{}",
            notices[0]
        );
        assert!(!notices[0].contains(&new), "without naming the new address");
        // The code is spent.
        app.post_as(
            "/v1/session/email/confirm",
            &access(&grant),
            json!({"challenge_id": challenge["challenge_id"], "code": code}),
        )
        .await
        .problem(401, "OTP_INVALID");
    }

    #[tokio::test]
    async fn admins_find_edit_and_erase_users() {
        let app = spawn_app().await;
        let prefix = format!("find{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut ids = Vec::new();
        for n in 0..5 {
            let grant = app.register(&format!("{prefix}-{n}@example.com")).await;
            ids.push(grant["user"]["id"].as_str().unwrap().to_owned());
        }
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/admin/users?q={prefix}&limit=2&cursor={c}"),
                None => format!("/v1/admin/users?q={prefix}&limit=2"),
            };
            let page = app.admin(Method::GET, &path, None).await.ok(200);
            for user in page["users"].as_array().unwrap() {
                paged.push(user["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(paged, sorted, "every user once, by id");

        let exact = app
            .admin(
                Method::GET,
                &format!("/v1/admin/users?email={prefix}-3@EXAMPLE.com"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(exact["users"].as_array().unwrap().len(), 1);
        assert_eq!(exact["users"][0]["id"], ids[3].as_str());
        app.admin(
            Method::PATCH,
            &format!("/v1/admin/users/{}", ids[1]),
            Some(json!({"email_verified": true})),
        )
        .await
        .ok(200);
        let verified = app
            .admin(
                Method::GET,
                &format!("/v1/admin/users?q={prefix}&email_verified=true"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(verified["users"].as_array().unwrap().len(), 1);
        assert_eq!(verified["users"][0]["id"], ids[1].as_str());
        let unverified = app
            .admin(
                Method::GET,
                &format!("/v1/admin/users?q={prefix}&email_verified=false"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(unverified["users"].as_array().unwrap().len(), 4);
        app.admin(Method::GET, "/v1/admin/users?email_verified=maybe", None)
            .await
            .problem(400, "VALIDATION_ERROR");
        app.admin(Method::GET, "/v1/admin/users?limit=0", None)
            .await
            .problem(422, "VALIDATION_ERROR");
        app.admin(Method::GET, "/v1/admin/users?cursor=nope", None)
            .await
            .problem(400, "VALIDATION_ERROR");

        let detail = app
            .admin(Method::GET, &format!("/v1/admin/users/{}", ids[0]), None)
            .await
            .ok(200);
        assert_eq!(detail["session_count"], 1);
        assert_eq!(detail["has_password"], true);
        assert!(detail["last_active_at"].is_string());
        assert_eq!(detail["identities"], json!([]));

        let edited = app
            .admin(
                Method::PATCH,
                &format!("/v1/admin/users/{}", ids[0]),
                Some(json!({"name": "Ann", "email": format!("{prefix}-moved@example.com"), "email_verified": true})),
            )
            .await
            .ok(200);
        assert_eq!(edited["name"], "Ann");
        assert_eq!(edited["email_verified"], true);
        let cleared = app
            .admin(
                Method::PATCH,
                &format!("/v1/admin/users/{}", ids[0]),
                Some(json!({"name": null})),
            )
            .await
            .ok(200);
        assert_eq!(cleared["name"], Value::Null);
        assert_eq!(cleared["email"], format!("{prefix}-moved@example.com"));
        app.admin(
            Method::PATCH,
            &format!("/v1/admin/users/{}", ids[0]),
            Some(json!({"email": format!("{prefix}-1@example.com")})),
        )
        .await
        .problem(409, "CONFLICT");

        // Erasure: the session dies at once, the address is free, the id is gone.
        let victim = format!("{prefix}-2@example.com");
        let session = app.login(&victim).await.ok(200);
        app.admin(Method::DELETE, &format!("/v1/admin/users/{}", ids[2]), None)
            .await
            .ok(204);
        app.whoami(&access(&session)).await.problem(401, "TOKEN_INVALID");
        app.refresh(&refresh_of(&session)).await.problem(401, "REFRESH_TOKEN_INVALID");
        app.admin(Method::GET, &format!("/v1/admin/users/{}", ids[2]), None)
            .await
            .problem(404, "NOT_FOUND");
        app.admin(Method::DELETE, &format!("/v1/admin/users/{}", ids[2]), None)
            .await
            .problem(404, "NOT_FOUND");
        app.register(&victim).await;
        let feed = app
            .admin(Method::GET, "/v1/revocations?after=0", None)
            .await
            .ok(200);
        assert!(
            feed["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "user_revoked" && e["reason"] == "user_deleted"),
            "verifiers learn of the erasure: {feed}"
        );
    }
}
