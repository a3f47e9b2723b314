//! Starts the real server (the same `App::build` as `sessiond serve`) on port 0 with a
//! fresh data folder and a manual clock, and talks HTTP to it.

#![allow(dead_code)]

pub mod proxy;
pub mod smtp;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_core::ManualClock;
use sessiond_server::{App, Config};
use sessiond_store::Store;
use sessiond_store::testing::postgres::{self, TestDatabase};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub admin_key: String,
    pub store: Arc<dyn Store>,
    pub dir: TempDir,
    pub backend: Backend,
    /// The PostgreSQL database (dropped with the last app using it).
    pub database: Option<Arc<TestDatabase>>,
    keys_reloader: Arc<sessiond_server::service::Service>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// What outlives a stopped server: its storage and its clock.
pub struct Stopped {
    pub dir: TempDir,
    pub clock: ManualClock,
    pub backend: Backend,
    pub database: Option<Arc<TestDatabase>>,
    pub admin_key: String,
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
    /// Checks a problem answer and returns its body without `instance`, which names the
    /// request (it must, and must match `X-Request-Id`) and so differs between answers
    /// that are otherwise the same.
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
        let mut body = body;
        let instance = body.as_object_mut().and_then(|b| b.remove("instance"));
        let request_id = self.header("x-request-id").unwrap_or_default();
        assert_eq!(
            instance.as_ref().and_then(Value::as_str),
            Some(format!("urn:sessiond:request:{request_id}").as_str()),
            "body: {}",
            self.text
        );
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

/// On SQLite: for tests that are about something other than storage.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(Backend::Sqlite, configure)
        .await
        .expect("SQLite is always available")
}

/// A fresh app on `backend`; `None` when PostgreSQL tests are skipped (unreachable
/// server without `CI`, which `fresh_database` has announced on stderr).
pub async fn spawn_on(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Arc::new(postgres::fresh_database().await?)),
    };
    let stopped = Stopped {
        dir: tempfile::tempdir().expect("temp dir"),
        clock: ManualClock::starting_now(),
        backend,
        database,
        admin_key: format!("test-admin-key-{}", uuid::Uuid::new_v4().simple()),
    };
    Some(restart(stopped, configure).await)
}

/// Whether PostgreSQL tests run here (announcing a skip on stderr when not).
pub async fn postgres_available() -> bool {
    postgres::fresh_database().await.is_some()
}

/// Starts a server on stopped storage (a restart), keeping the clock and admin key.
pub async fn restart(stopped: Stopped, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: stopped.dir.path().to_path_buf(),
        database_url: stopped.database.as_ref().map(|db| db.url().to_owned()),
        admin_api_key: Some(stopped.admin_key.clone()),
        cleanup_interval: std::time::Duration::ZERO,
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config, Arc::new(stopped.clock.clone()))
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
        clock: stopped.clock,
        admin_key: stopped.admin_key,
        store,
        dir: stopped.dir,
        backend: stopped.backend,
        database: stopped.database,
        keys_reloader,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A second instance on the same storage (the same SQLite file, or the same PostgreSQL
/// database), as another process behind a load balancer would be.
pub async fn spawn_sibling(of: &TestApp, configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = of.dir.path().to_path_buf();
    let stopped = Stopped {
        dir: tempfile::tempdir().expect("temp dir"),
        clock: of.clock.clone(),
        backend: of.backend,
        database: of.database.clone(),
        admin_key: of.admin_key.clone(),
    };
    restart(stopped, |c| {
        if c.database_url.is_none() {
            c.data_dir = data_dir;
        }
        configure(c);
    })
    .await
}

/// Compiles the enclosed tests twice, in `mod sqlite` and `mod postgres`, each with
/// `spawn_app`/`spawn_with` bound to its backend. Helpers that start apps go in
/// `helpers { … }` so they bind to the module's backend too. PostgreSQL tests skip (with a
/// line on stderr) when the server is unreachable, unless `CI` is set.
#[macro_export]
macro_rules! backend_suite {
    (
        $(helpers { $($helper:item)* })?
        $(#[tokio::test] async fn $name:ident() $body:block)*
    ) => {
        $crate::backend_suite!(@module sqlite, Sqlite, false, [$($($helper)*)?], $(($name $body))*);
        $crate::backend_suite!(@module postgres, Postgres, true, [$($($helper)*)?], $(($name $body))*);
    };
    (@module $module:ident, $backend:ident, $check:expr, [$($helper:item)*], $(($name:ident $body:block))*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            #[allow(dead_code)]
            async fn spawn_app() -> common::TestApp {
                spawn_with(|_| {}).await
            }

            #[allow(dead_code)]
            async fn spawn_with(configure: impl FnOnce(&mut sessiond_server::Config)) -> common::TestApp {
                common::spawn_on(common::Backend::$backend, configure)
                    .await
                    .expect("backend availability was checked before the test")
            }

            $($helper)*

            $(
                #[tokio::test]
                async fn $name() {
                    if $check && !common::postgres_available().await {
                        return;
                    }
                    $body
                }
            )*
        }
    };
}

impl TestApp {
    /// Stops the server, waiting for it to drain, and hands back its storage.
    pub async fn stop(mut self) -> Stopped {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        Stopped {
            dir: std::mem::replace(&mut self.dir, dir),
            clock: self.clock.clone(),
            backend: self.backend,
            database: self.database.take(),
            admin_key: self.admin_key.clone(),
        }
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

    /// The service behind this instance (for its cache's state).
    pub fn service(&self) -> &sessiond_server::service::Service {
        &self.keys_reloader
    }

    /// Waits until this instance trusts its session cache (its change subscription
    /// works end to end).
    pub async fn wait_for_cache(&self) {
        for _ in 0..100 {
            if self.service().cache_is_usable() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the session cache never became usable");
    }

    /// Makes this instance reload its signing keys now (as its periodic job would).
    pub async fn state_reload_keys(&self) {
        self.keys_reloader.reload_keys().await.expect("keys reload");
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use sessiond_core::Clock;
        self.clock.now()
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body)).await
    }

    /// A POST as client `ip`, named in `X-Forwarded-For` (the app must trust 127.0.0.1
    /// as a proxy for it to count).
    pub async fn post_from(&self, ip: &str, path: &str, body: Value) -> Reply {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
            .await
            .expect("request reaches the server");
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.expect("body"),
        }
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
