//! Startup you can test: `App::build(config, clock)` opens storage, loads keys and binds
//! the listener; `App::run(shutdown)` serves until `shutdown` resolves, then drains
//! in-flight requests. `sessiond serve` and the integration tests use the same path.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sessiond_core::jwt::TokenAudience;
use sessiond_core::secret::ApiKey;
use sessiond_core::{Clock, TokenHash};
use sessiond_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::ConfigError;
use crate::http::client_ip::TrustedProxies;
use crate::infra::exchange::{Exchange, ExchangeConfigError};
use crate::infra::mail::{MailConfigError, Mailer, Templates};
use crate::infra::password_pool::PasswordPool;
use crate::infra::redis::Redis;
use crate::infra::webhooks::{WebhookConfigError, Webhooks};
use crate::ratelimit::{
    CounterStore, FallbackCounters, MemoryCounters, RateLimiter, RedisCounters,
};
use crate::service::events::Outbox;
use crate::service::otp::OtpSettings;
use crate::service::{Service, ServiceParts};
use crate::state::activity::ActivityTracker;
use crate::state::cache::{SessionCache, VerifiedTokens};
use crate::state::fanout::{Fanout, RedisChannel};
use crate::state::feed::FeedWatch;
use crate::state::keys::{KeyManager, KeysError};
use crate::{AppState, Config, Shared, open_store_with_events};
use sessiond_core::password::PasswordHasher;

/// The file in the data folder that holds the generated admin API key.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";
/// The folder in the data folder where mail goes when no SMTP server is configured.
pub const OUTBOX_DIR: &str = "outbox";
/// Sessions whose state is kept in memory (about 1 KiB each).
const SESSION_CACHE_CAPACITY: usize = 100_000;
/// Verified access tokens remembered (about 0.5 KiB each).
const VERIFIED_TOKENS_CAPACITY: usize = 100_000;
/// A backstop only: invalidations keep the cache exact.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(60);
const COUNTER_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How often sessions that ended by themselves (absolute end, idleness) are looked for,
/// so their `session.ended` events come within this long of the end.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// The console's activity charts are per minute.
const CONSOLE_SAMPLE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeysError),
    #[error("admin API key file {path}: {source}")]
    AdminKey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Mail(#[from] MailConfigError),
    #[error(transparent)]
    Exchange(#[from] ExchangeConfigError),
    #[error(transparent)]
    Webhooks(#[from] WebhookConfigError),
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    config: Config,
    counters: Arc<MemoryCounters>,
    redis: Option<Arc<Redis>>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl App {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        config.validate()?;
        let (store, events) = open_store_with_events(&config).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let admin_key = admin_key_hash(&config)?;
        let policy = config.policy();
        let audience = TokenAudience {
            issuer: config.issuer.clone(),
            audience: config.audience(),
        };
        let keys = KeyManager::load(
            store.as_ref(),
            audience.clone(),
            policy.access_token_ttl,
            clock.now(),
        )
        .await?;
        let workers = config
            .password_hash_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let counters = Arc::new(MemoryCounters::default());
        let redis = open_redis(&config).await?;
        let limits = RateLimiter::new(
            config.rate_limits.clone(),
            match &redis {
                Some(redis) => Arc::new(FallbackCounters::new(
                    RedisCounters::new(redis.clone(), &config.redis_prefix),
                    counters.clone(),
                )) as Arc<dyn CounterStore>,
                None => counters.clone(),
            },
            clock.clone(),
        );
        let trusted_proxies = TrustedProxies::new(&config.trusted_proxies);
        let templates = Templates::load(&config.otp.subject, config.otp.template_dir.as_deref())?;
        let mailer = Mailer::new(
            config.smtp_url.as_ref(),
            &config.data_dir.join(OUTBOX_DIR),
            &config.mail_from,
            &config.app_name,
            templates,
        )?;
        let otp = OtpSettings::new(
            config.otp.create_users,
            config.otp.code_length,
            config.otp.ttl,
            config.otp.resend_cooldown,
            mailer,
        );
        let exchange = Exchange::new(&config.exchange, |var| std::env::var(var).ok())?;
        let webhooks = Webhooks::new(&config.webhooks, |var| std::env::var(var).ok())?;
        let outbox = Arc::new(Outbox::new(
            Arc::new(webhooks),
            config.record_refresh_events,
        ));
        outbox.set_disabled(&store.disabled_endpoints().await?);
        // With PostgreSQL, other instances change sessions too: the cache waits for the
        // change subscription before it is trusted.
        let cache = Arc::new(SessionCache::new(
            SESSION_CACHE_CAPACITY,
            SESSION_CACHE_TTL,
            events.is_none(),
        ));
        let redis_channel = redis
            .as_ref()
            .map(|redis| RedisChannel::new(redis.clone(), &config.redis_prefix));
        let fanout = Arc::new(Fanout::new(cache, events, redis_channel));
        let service = Service::from(ServiceParts {
            verified: VerifiedTokens::new(VERIFIED_TOKENS_CAPACITY),
            fanout,
            limits,
            otp,
            exchange,
            feed: Arc::new(FeedWatch::default()),
            verifier_keys: config
                .verifier_api_keys
                .iter()
                .map(|key| ApiKey::new(key.clone()).hash())
                .collect(),
            activity: ActivityTracker::new(policy.activity_resolution),
            passwords: PasswordPool::new(
                workers,
                config.password_hash_queue,
                PasswordHasher::with_params(config.argon2_params()).map_err(|problem| {
                    ConfigError {
                        key: "password_hash_memory_kib",
                        problem,
                    }
                })?,
            ),
            accounts: crate::service::accounts::AccountSettings {
                require_verified_email: config.require_verified_email,
            },
            session_retention: chrono::Duration::from_std(config.session_retention)
                .unwrap_or(chrono::Duration::MAX),
            events_retention: chrono::Duration::from_std(config.events_retention)
                .unwrap_or(chrono::Duration::MAX),
            outbox,
            store,
            clock,
            policy,
            keys,
            audience,
            admin_key,
        });
        let web = crate::http::web::WebSettings::parse(&config.web)?;
        if config.web.insecure_cookies {
            tracing::warn!(
                "web.insecure_cookies is on: token cookies are sent without `Secure` and \
                 without the `__Host-`/`__Secure-` prefixes, readable by anyone on the \
                 network path; for plain-HTTP development only, never in production"
            );
        }
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.bind,
                source,
            })?;
        let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
        let metrics = metrics_handle();
        let console = Arc::new(crate::http::console::ConsoleState::new(
            &config,
            &service,
            &metrics,
            redis.clone(),
            web.cookies.secure,
        ));
        let state = AppState::new(Shared {
            stopping: stopping_seen,
            service: Arc::new(service),
            trusted_proxies: Arc::new(trusted_proxies),
            metrics,
            max_body_bytes: config.max_body_bytes,
            public_url: config.public_url.as_ref().map(|u| u.as_str().to_owned()),
            redis: redis.clone(),
            web: Arc::new(web),
            console,
        });
        Ok(Self {
            listener,
            state,
            config,
            counters,
            redis,
            stopping,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.service.store().clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits for in-flight
    /// requests to finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let background = self.spawn_background();
        tracing::info!(addr = %self.local_addr(), storage = self.state.service.store().backend(), "sessiond listening");
        let app = crate::http::router(self.state);
        // Shutdown drains in-flight requests, but not forever: a request that outlives
        // `shutdown_timeout` (a huge cleanup, a stuck client) does not keep the process up.
        let stopping = self.stopping;
        let mut stop_requested = stopping.subscribe();
        let signal = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        let drain_limit = self.config.shutdown_timeout;
        let deadline = async move {
            let _ = stop_requested.wait_for(|stop| *stop).await;
            tokio::time::sleep(drain_limit).await;
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = crate::serve::Workers::start(threads, app).map_err(AppError::Serve)?;
        let served = tokio::select! {
            served = workers.serve(self.listener, signal) => served,
            () = deadline => {
                tracing::warn!(timeout = ?drain_limit, "requests still in flight at the shutdown timeout; stopping anyway");
                Ok(())
            }
        };
        for task in background {
            task.abort();
        }
        drop(workers);
        tracing::info!("sessiond stopped");
        served.map_err(AppError::Serve)
    }

    fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        let fanout = self.state.service.fanout();
        let mut tasks = vec![
            tokio::spawn(fanout.clone().listen()),
            tokio::spawn(fanout.clone().listen_redis()),
        ];
        let service = self.state.service.clone();
        let cleanup_every = self.config.cleanup_interval;
        if !cleanup_every.is_zero() {
            tasks.push(tokio::spawn(every(cleanup_every, move || {
                let service = service.clone();
                async move {
                    match service.purge_ended_sessions().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "purged ended sessions"),
                        Err(e) => tracing::warn!(error = %e, "session cleanup failed"),
                    }
                    match service.purge_revocations().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "purged expired revocation facts"),
                        Err(e) => tracing::warn!(error = %e, "revocation cleanup failed"),
                    }
                }
            })));
        }
        if !cleanup_every.is_zero() {
            let service = self.state.service.clone();
            let sweep_every = EXPIRY_SWEEP_INTERVAL.min(cleanup_every);
            tasks.push(tokio::spawn(every(sweep_every, move || {
                let service = service.clone();
                async move {
                    match service.record_expired_sessions().await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::debug!(ended = n, "recorded sessions that ended by themselves")
                        }
                        Err(e) => tracing::warn!(error = %e, "could not record expired sessions"),
                    }
                }
            })));
        }
        tasks.push(tokio::spawn(crate::service::webhooks::run(
            self.state.service.clone(),
            self.stopping.subscribe(),
        )));
        let service = self.state.service.clone();
        tasks.push(tokio::spawn(service.feed().clone().poll(move || {
            let service = service.clone();
            async move { service.revocation_bounds().await.ok().map(|b| b.latest) }
        })));
        let (counters, service) = (self.counters.clone(), self.state.service.clone());
        tasks.push(tokio::spawn(every(COUNTER_PRUNE_INTERVAL, move || {
            counters.prune(service.now());
            std::future::ready(())
        })));
        let state = self.state.clone();
        tasks.push(tokio::spawn(every(CONSOLE_SAMPLE_INTERVAL, move || {
            state.console.activity.sample(&state.metrics);
            std::future::ready(())
        })));
        if let Some(redis) = &self.redis {
            tasks.push(tokio::spawn(redis.clone().watch()));
        }
        let service = self.state.service.clone();
        tasks.push(tokio::spawn(every(
            crate::state::keys::RELOAD_INTERVAL,
            move || {
                let service = service.clone();
                async move {
                    if let Err(e) = service.reload_keys().await {
                        tracing::warn!(error = %e, "could not reload signing keys");
                    }
                }
            },
        )));
        tasks
    }
}

/// With `redis_url`, the Redis every instance shares. Redis being down does not stop the
/// start: the instance starts degraded and recovers by itself.
async fn open_redis(config: &Config) -> Result<Option<Arc<Redis>>, AppError> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let redis = Redis::open(url.as_str()).map_err(|e| ConfigError {
        key: "redis_url",
        problem: e.to_string(),
    })?;
    if redis.check().await {
        tracing::info!(
            redis = ?url,
            "rate limits and session changes are shared through Redis"
        );
    }
    Ok(Some(Arc::new(redis)))
}

/// Runs `job` every `period`, starting one period from now.
async fn every<F, Fut>(period: Duration, job: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        job().await;
    }
}

/// The process-wide Prometheus recorder (metrics macros report to one global recorder).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program);
            // then our handle simply renders nothing, which is not worth failing over.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The hash of the configured admin key, or of the one generated into the data folder.
fn admin_key_hash(config: &Config) -> Result<TokenHash, AppError> {
    if let Some(key) = &config.admin_api_key {
        return Ok(ApiKey::new(key.clone()).hash());
    }
    let path = config.data_dir.join(ADMIN_KEY_FILE);
    let key = load_or_create_admin_key(&path).map_err(|source| AppError::AdminKey {
        path: path.clone(),
        source,
    })?;
    Ok(key.hash())
}

pub fn load_or_create_admin_key(path: &Path) -> std::io::Result<ApiKey> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            tracing::info!(path = %path.display(), "admin API key loaded from file");
            return Ok(ApiKey::new(text.trim().to_owned()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        crate::infra::storage::create_private_dir(dir)?;
    }
    let key = ApiKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{}", key.expose())?;
    tracing::info!(path = %path.display(), "generated an admin API key; read it from this file");
    Ok(key)
}
