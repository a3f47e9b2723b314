//! Starts the real server (the same `App::build` as `sessiond serve`) on port 0 with a
//! fresh data folder and a manual clock, and talks HTTP to it.

#![allow(dead_code)]

pub mod proxy;
pub mod smtp;

use std::sync::Arc;

use sessiond_core::ManualClock;
pub use sessiond_server::testing::*;
use sessiond_server::{App, Config};
use sessiond_store::Store;
use sessiond_store::testing::postgres::{self, TestDatabase};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server and the client that talks to it (`app.register(…)`, `app.base`,
/// `app.admin_key` are the client's, through `Deref`).
pub struct TestApp {
    pub api: ApiClient,
    pub clock: ManualClock,
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
    postgres::available().await
}

/// Starts a server on stopped storage (a restart), keeping the clock and admin key.
pub async fn restart(stopped: Stopped, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: stopped.dir.path().to_path_buf(),
        database_url: stopped
            .database
            .as_ref()
            .map(|db| db.url().parse().unwrap()),
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
        api: ApiClient::new(base, stopped.admin_key),
        clock: stopped.clock,
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
            async fn spawn_app() -> $crate::common::TestApp {
                spawn_with(|_| {}).await
            }

            #[allow(dead_code)]
            async fn spawn_with(configure: impl FnOnce(&mut sessiond_server::Config)) -> $crate::common::TestApp {
                $crate::common::spawn_on($crate::common::Backend::$backend, configure)
                    .await
                    .expect("backend availability was checked before the test")
            }

            $($helper)*

            $(
                #[tokio::test]
                async fn $name() {
                    if $check && !$crate::common::postgres_available().await {
                        return;
                    }
                    $body
                }
            )*
        }
    };
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
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

    /// The stored password hash of the user at `email`.
    pub async fn service_password_hash(&self, email: &str) -> String {
        let email = sessiond_core::Email::parse(email).expect("an email");
        self.store
            .user_by_email(&email)
            .await
            .expect("read")
            .and_then(|c| c.password_hash)
            .expect("a user with a password")
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use sessiond_core::Clock;
        self.clock.now()
    }
}
