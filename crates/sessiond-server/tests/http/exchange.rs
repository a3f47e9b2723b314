//! Partner-token exchange against a real local HTTP server playing the provider.

use std::time::Duration;

use crate::common::*;
use serde_json::json;
use sessiond_server::infra::exchange::{
    ExchangeConfig, HttpProviderConfig, ProviderConfig, ResponseMapping,
};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROVIDER_PATH: &str = "/api/ota/fetch-user-details";

#[test]
fn the_shipped_rapido_example_is_a_valid_configuration() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rapido.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config: sessiond_server::Config =
        toml::from_str(&text).expect("the example parses as a full configuration");
    config.validate().unwrap();
    let ProviderConfig::Http(rapido) = &config.exchange.providers["rapido"] else {
        panic!("rapido is an http provider");
    };
    assert_eq!(rapido.timeout, Duration::from_secs(10));
    assert_eq!(rapido.response.user_id, "/data/user/id");
    let with_vars = |v: &str| {
        matches!(v, "RAPIDO_CLIENT_KEY" | "RAPIDO_CLIENT_ID").then(|| format!("value-of-{v}"))
    };
    assert!(sessiond_server::infra::exchange::Exchange::new(&config.exchange, with_vars).is_ok());
    let Err(err) = sessiond_server::infra::exchange::Exchange::new(&config.exchange, |_| None)
    else {
        panic!("missing variables must fail");
    };
    assert!(err.to_string().contains("RAPIDO_CLIENT_KEY"), "{err}");
}

backend_suite! {
    helpers {
        fn rapido(server: &MockServer, timeout: Duration) -> ExchangeConfig {
            let mut config = ExchangeConfig::default();
            config.providers.insert(
                "rapido".into(),
                ProviderConfig::Http(HttpProviderConfig {
                    url: format!("{}{PROVIDER_PATH}", server.uri()),
                    timeout,
                    body: r#"{"token": "{token}"}"#.into(),
                    headers: [
                        // A variable every test process has, so no test needs to set one.
                        ("authorization".to_owned(), "Key ${PATH}".to_owned()),
                        ("x-client-id".to_owned(), "client-7".to_owned()),
                        ("x-client-service".to_owned(), "my-service".to_owned()),
                    ]
                    .into(),
                    response: ResponseMapping {
                        valid: Some("/data/valid".into()),
                        user_id: "/data/user/id".into(),
                        email: Some("/data/user/email".into()),
                        name: Some("/data/user/name".into()),
                        mobile: Some("/data/user/mobile".into()),
                        profile: Some("/data/user/profile".into()),
                    },
                }),
            );
            config
        }
        fn http_mut(exchange: &mut ExchangeConfig) -> &mut HttpProviderConfig {
            match exchange.providers.get_mut("rapido") {
                Some(ProviderConfig::Http(p)) => p,
                _ => panic!("rapido is an http provider"),
            }
        }
        fn user_answer(id: &str, name: &str) -> serde_json::Value {
            json!({"data": {"valid": true, "user": {"id": id, "email": "rider@example.com", "name": name, "mobile": "+911234567890", "profile": {"tier": "gold", "rides": 12}}}})
        }
        async fn app_with_provider(timeout: Duration) -> (TestApp, MockServer) {
            let server = MockServer::start().await;
            let exchange = rapido(&server, timeout);
            let app = spawn_with(move |c| c.exchange = exchange).await;
            (app, server)
        }
    }

    #[tokio::test]
    async fn a_vouched_token_logs_in_and_the_configured_request_arrives() {
        let (app, server) = app_with_provider(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .and(path(PROVIDER_PATH))
            .and(header(
                "authorization",
                format!("Key {}", std::env::var("PATH").unwrap()).as_str(),
            ))
            .and(header("x-client-id", "client-7"))
            .and(header("x-client-service", "my-service"))
            .and(body_json(json!({"token": "partner \"token\" 1"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-42", "Asha")))
            .expect(2)
            .mount(&server)
            .await;

        let grant = app
            .post(
                "/v1/auth/exchange",
                json!({"provider": "rapido", "token": "partner \"token\" 1"}),
            )
            .await
            .ok(200);
        assert_eq!(grant["session"]["auth_method"], "exchange:rapido");
        assert_eq!(grant["user"]["name"], "Asha");
        assert_eq!(grant["user"]["email"], "rider@example.com");
        assert_eq!(grant["user"]["mobile"], "+911234567890");
        assert_eq!(
            grant["user"]["profile"],
            json!({"tier": "gold", "rides": 12})
        );
        let claims = app.introspect(&access(&grant)).await;
        assert_eq!(claims["amr"], json!(["exchange:rapido"]));

        // Same external id: same user.
        let again = app
            .post(
                "/v1/auth/exchange",
                json!({"provider": "rapido", "token": "partner \"token\" 1"}),
            )
            .await
            .ok(200);
        assert_eq!(again["user"]["id"], grant["user"]["id"]);
    }

    #[tokio::test]
    async fn the_profile_is_refreshed_at_each_login() {
        let (app, server) = app_with_provider(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-1", "Old Name")))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        let first = app
            .post(
                "/v1/auth/exchange",
                json!({"provider": "rapido", "token": "t"}),
            )
            .await
            .ok(200);
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-1", "New Name")))
            .mount(&server)
            .await;
        let second = app
            .post(
                "/v1/auth/exchange",
                json!({"provider": "rapido", "token": "t"}),
            )
            .await
            .ok(200);
        assert_eq!(second["user"]["id"], first["user"]["id"]);
        assert_eq!(second["user"]["name"], "New Name");
    }

    #[tokio::test]
    async fn an_email_already_taken_is_not_claimed_by_an_exchange() {
        let (app, server) = app_with_provider(Duration::from_secs(5)).await;
        let owner = app.register("rider@example.com").await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-9", "Other")))
            .mount(&server)
            .await;
        let grant = app
            .post(
                "/v1/auth/exchange",
                json!({"provider": "rapido", "token": "t"}),
            )
            .await
            .ok(200);
        assert_ne!(grant["user"]["id"], owner["user"]["id"]);
        assert_eq!(grant["user"]["email"], serde_json::Value::Null);
    }

    #[tokio::test]
    async fn every_upstream_answer_maps_to_its_code() {
        let (app, server) = app_with_provider(Duration::from_millis(500)).await;
        let cases: Vec<(&str, ResponseTemplate, u16, &str)> = vec![
            (
                "invalid",
                ResponseTemplate::new(200).set_body_json(json!({"data": {"valid": false}})),
                401,
                "UPSTREAM_REJECTED",
            ),
            (
                "unauthorized",
                ResponseTemplate::new(401),
                401,
                "UPSTREAM_REJECTED",
            ),
            (
                "forbidden",
                ResponseTemplate::new(403).set_body_string("no"),
                401,
                "UPSTREAM_REJECTED",
            ),
            (
                "limited",
                ResponseTemplate::new(429).insert_header("retry-after", "17"),
                429,
                "UPSTREAM_RATE_LIMITED",
            ),
            (
                "down",
                ResponseTemplate::new(503),
                503,
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                "broken",
                ResponseTemplate::new(500).set_body_string("oops"),
                503,
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                "garbage",
                ResponseTemplate::new(200).set_body_string("<html>not json"),
                503,
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                "no-user-id",
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"valid": true, "user": {"name": "x"}}})),
                503,
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                "slow",
                ResponseTemplate::new(200)
                    .set_body_json(user_answer("u", "n"))
                    .set_delay(Duration::from_secs(3)),
                503,
                "UPSTREAM_UNAVAILABLE",
            ),
        ];
        for (token, response, _, _) in &cases {
            Mock::given(method("POST"))
                .and(body_json(json!({"token": token})))
                .respond_with(response.clone())
                .mount(&server)
                .await;
        }
        for (token, _, status, code) in &cases {
            let reply = app
                .post(
                    "/v1/auth/exchange",
                    json!({"provider": "rapido", "token": token}),
                )
                .await;
            let body = reply.problem(*status, code);
            if *token == "limited" {
                assert_eq!(reply.header("retry-after"), Some("17"));
                assert_eq!(body["retry_after"], 17);
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        let server = MockServer::start().await;
        let mut exchange = rapido(&server, Duration::from_secs(2));
        http_mut(&mut exchange).url = "http://127.0.0.1:1/x".into();
        let app = spawn_with(move |c| c.exchange = exchange).await;
        app.post(
            "/v1/auth/exchange",
            json!({"provider": "rapido", "token": "t"}),
        )
        .await
        .problem(503, "UPSTREAM_UNAVAILABLE");
    }

    #[tokio::test]
    async fn unknown_providers_and_empty_tokens_are_validation_errors() {
        let (app, _server) = app_with_provider(Duration::from_secs(5)).await;
        app.post(
            "/v1/auth/exchange",
            json!({"provider": "nope", "token": "t"}),
        )
        .await
        .problem(422, "VALIDATION_ERROR");
        app.post(
            "/v1/auth/exchange",
            json!({"provider": "rapido", "token": ""}),
        )
        .await
        .problem(422, "VALIDATION_ERROR");
        app.post("/v1/auth/exchange", json!({"provider": "rapido"}))
            .await
            .problem(422, "VALIDATION_ERROR");
    }

    #[tokio::test]
    async fn a_nonce_sent_to_a_partner_provider_is_not_forwarded() {
        let (app, server) = app_with_provider(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .and(body_json(json!({"token": "t"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-8", "Mira")))
            .expect(1)
            .mount(&server)
            .await;
        app.post(
            "/v1/auth/exchange",
            json!({"provider": "rapido", "token": "t", "nonce": "n"}),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn a_new_address_from_the_partner_is_not_verified() {
        let (app, server) = app_with_provider(Duration::from_secs(5)).await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(user_answer("u-9", "Ravi")))
            .mount(&server)
            .await;
        let grant = app
            .post("/v1/auth/exchange", json!({"provider": "rapido", "token": "t"}))
            .await
            .ok(200);
        let id = grant["user"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/admin/users/{id}");
        let user = app.admin(reqwest::Method::GET, &path, None).await.ok(200);
        assert_eq!(user["email"], "rider@example.com");
        assert_eq!(user["email_verified"], false, "{user}");
        // Verified by an admin, then the partner reports another address: unverified again.
        app.admin(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"email": "old@example.com", "email_verified": true})),
        )
        .await
        .ok(200);
        app.post("/v1/auth/exchange", json!({"provider": "rapido", "token": "t"}))
            .await
            .ok(200);
        let user = app.admin(reqwest::Method::GET, &path, None).await.ok(200);
        assert_eq!(user["email"], "rider@example.com");
        assert_eq!(user["email_verified"], false, "{user}");
    }

    #[tokio::test]
    async fn a_missing_variable_fails_the_start_naming_it() {
        let server = MockServer::start().await;
        let mut exchange = rapido(&server, Duration::from_secs(1));
        http_mut(&mut exchange).headers.insert(
                "x-secret".into(),
                "${SURELY_UNSET_VAR_FOR_A_SESSIOND_TEST}".into(),
            );
        let dir = tempfile::tempdir().unwrap();
        let config = sessiond_server::Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            exchange,
            ..sessiond_server::Config::default()
        };
        let clock = std::sync::Arc::new(sessiond_core::ManualClock::starting_now());
        let Err(err) = sessiond_server::App::build(config, clock).await else {
            panic!("start must fail");
        };
        assert!(
            err.to_string()
                .contains("SURELY_UNSET_VAR_FOR_A_SESSIOND_TEST"),
            "{err}"
        );
    }
}
