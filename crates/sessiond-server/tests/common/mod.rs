//! Starts the real server (the same `App::build` as `sessiond serve`) on port 0 with a
//! fresh data folder and a manual clock, and talks HTTP to it.

#![allow(dead_code)]

pub mod smtp;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_core::ManualClock;
use sessiond_server::{App, Config};
use sessiond_store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub admin_key: String,
    pub store: Arc<dyn Store>,
    pub dir: TempDir,
    keys_reloader: Arc<sessiond_server::service::Service>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {}", self.text);
        assert_eq!(body["status"], status);
        body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_in(dir, ManualClock::starting_now(), configure).await
}

/// Starts a server on an existing data folder (for restart tests).
pub async fn spawn_in(
    dir: TempDir,
    clock: ManualClock,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let admin_key = format!("test-admin-key-{}", uuid::Uuid::new_v4().simple());
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        admin_api_key: Some(admin_key.clone()),
        cleanup_interval: std::time::Duration::ZERO,
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config, Arc::new(clock.clone()))
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let store = app.store();
    let keys_reloader = app.state().service.clone();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        clock,
        admin_key,
        store,
        dir,
        keys_reloader,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server, waiting for it to drain, and hands back the data folder.
    pub async fn stop(mut self) -> (TempDir, ManualClock) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        (std::mem::replace(&mut self.dir, dir), self.clock.clone())
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches the server");
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.expect("body"),
        }
    }

    /// Makes this instance reload its signing keys now (as its periodic job would).
    pub async fn state_reload_keys(&self) {
        self.keys_reloader
            .keys
            .reload(self.store.as_ref(), self.clock_now())
            .await
            .expect("keys reload");
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use sessiond_core::Clock;
        self.clock.now()
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn post_as(&self, path: &str, bearer: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(bearer), Some(body))
            .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.send(Method::GET, path, Some(bearer), None).await
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Reply {
        self.send(Method::DELETE, path, Some(bearer), None).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, Some(&self.admin_key.clone()), body)
            .await
    }

    /// Registers `email` and returns the token response.
    pub async fn register(&self, email: &str) -> Value {
        self.post("/v1/users", json!({"email": email, "password": PASSWORD}))
            .await
            .ok(201)
    }

    pub async fn login(&self, email: &str) -> Reply {
        self.post(
            "/v1/auth/password",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/v1/token/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn whoami(&self, access_token: &str) -> Reply {
        self.get("/v1/session", access_token).await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        self.admin(
            Method::POST,
            "/v1/introspect",
            Some(json!({"token": token})),
        )
        .await
        .ok(200)
    }

    pub async fn validate(&self, token: &str) -> Value {
        self.post("/v1/token/validate", json!({"token": token}))
            .await
            .ok(200)
    }
}

pub fn access(grant: &Value) -> String {
    grant["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub fn refresh_of(grant: &Value) -> String {
    grant["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

pub fn session_id(grant: &Value) -> String {
    grant["session"]["id"]
        .as_str()
        .expect("session id")
        .to_owned()
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}
