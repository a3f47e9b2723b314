//! The sessiond HTTP server: routes, extractors and problem responses over the session
//! rules in [`service`], on top of any [`sessiond_store::Store`].

pub mod app;
pub mod config;
pub mod http;
pub mod infra;
pub mod ratelimit;
pub mod serve;
pub mod service;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

pub use app::{App, AppError};
pub use config::Config;
pub use infra::storage::{open_store, open_store_with_events};

/// What every handler can reach. Cloned for every request (axum's `State`), so it is one
/// shared pointer rather than a struct of several.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    pub service: Arc<service::Service>,
    pub trusted_proxies: Arc<http::client_ip::TrustedProxies>,
    pub metrics: PrometheusHandle,
    pub max_body_bytes: usize,
    /// Turns true when the server starts shutting down: endless answers (event streams)
    /// end then, rather than hold the drain until its timeout.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// `public_url`, for absolute URLs in answers.
    pub public_url: Option<String>,
    /// The shared Redis, for readiness to report; `None` without `redis_url`.
    pub redis: Option<Arc<infra::redis::Redis>>,
    /// `[web]`: cookies, CSRF, CORS and the forward-auth headers.
    pub web: Arc<http::web::WebSettings>,
    /// The admin console's keys, cookie and activity samples.
    pub console: Arc<http::console::ConsoleState>,
}
