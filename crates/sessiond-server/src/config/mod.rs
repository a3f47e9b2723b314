//! The one typed configuration. The binary fills it from defaults, a TOML file, the
//! environment and flags; tests build it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessiond_core::{OnLimit, SessionPolicy};

use crate::http::web::WebConfig;
use crate::infra::exchange::ExchangeConfig;
use crate::infra::webhooks::WebhooksConfig;
use crate::ratelimit::RateLimitConfig;

mod values;

pub use values::{DatabaseUrl, HttpUrl, ProxyNetwork, RedisUrl, SmtpUrl, mask_url_password};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite:` URL or `postgres://…`; SQLite in the data folder when absent.
    pub database_url: Option<DatabaseUrl>,
    /// `redis://[user:pass@]host:6379[/db]`: rate-limit counters shared by every instance
    /// using it. Without it (or while it is unreachable), each instance counts alone.
    pub redis_url: Option<RedisUrl>,
    /// Prefix of every Redis key sessiond writes.
    pub redis_prefix: String,
    /// PostgreSQL: how long a request waits for a connection (or a new one to open)
    /// before answering `503 STORAGE_UNAVAILABLE`.
    #[serde(with = "humantime_serde")]
    pub database_timeout: Duration,
    /// PostgreSQL: the server-side limit on one statement (row-lock waits included).
    #[serde(with = "humantime_serde")]
    pub database_statement_timeout: Duration,
    /// PostgreSQL: most connections one instance holds.
    pub database_max_connections: u32,
    /// When absent, a key is generated into `<data_dir>/admin-api-key`.
    pub admin_api_key: Option<String>,
    /// Keys for token verifiers in app backends: they may read the revocation feed and
    /// introspect tokens, nothing else. Each at least 32 characters.
    pub verifier_api_keys: Vec<String>,
    pub issuer: String,
    /// The URL clients reach sessiond at (`https://auth.example.com`), for the absolute
    /// URLs of the OAuth metadata; without it, they use the request's `Host`.
    pub public_url: Option<HttpUrl>,
    /// Defaults to the issuer.
    pub audience: Option<String>,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub absolute_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub activity_resolution: Duration,
    pub max_sessions_per_user: u32,
    pub on_session_limit: OnLimit,
    pub log_format: Option<LogFormat>,
    /// How long ended sessions are kept (to answer "why was I logged out?") before
    /// cleanup deletes them.
    #[serde(with = "humantime_serde")]
    pub session_retention: Duration,
    /// How often the background cleanup runs; `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub cleanup_interval: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Password hashes computed at once; defaults to the number of cores.
    pub password_hash_workers: Option<usize>,
    /// Logins allowed to wait for a hashing worker before new ones get a fast 503.
    pub password_hash_queue: usize,
    /// argon2id memory per hash, KiB (OWASP: 19456 with 2 iterations).
    pub password_hash_memory_kib: u32,
    /// argon2id passes over the memory.
    pub password_hash_iterations: u32,
    /// argon2id lanes.
    pub password_hash_parallelism: u32,
    /// Refuse password logins of users whose email is not verified (`EMAIL_NOT_VERIFIED`).
    pub require_verified_email: bool,
    /// Apply migrations on `serve`.
    pub migrate_on_start: bool,
    /// How long SIGTERM/Ctrl-C waits for in-flight requests before exiting anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Proxies (addresses or CIDR blocks) whose `Forwarded` / `X-Forwarded-For` headers
    /// are believed; everyone else's are ignored.
    pub trusted_proxies: Vec<ProxyNetwork>,
    pub rate_limits: RateLimitConfig,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://…:465` (implicit
    /// TLS) or `smtp://host:25` (plain relay). Without it, mail goes to `<data_dir>/outbox`.
    pub smtp_url: Option<SmtpUrl>,
    /// Sender of one-time-code mail.
    pub mail_from: String,
    /// Shown in mail.
    pub app_name: String,
    pub otp: OtpConfig,
    pub exchange: ExchangeConfig,
    pub web: WebConfig,
    /// How long audit events are kept before cleanup deletes them.
    #[serde(with = "humantime_serde")]
    pub events_retention: Duration,
    /// Record every refresh as a `session.refreshed` event (off: they are counted in
    /// metrics, as they are the most frequent write by far).
    pub record_refresh_events: bool,
    pub webhooks: WebhooksConfig,
}

/// Emailed one-time codes (`[otp]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpConfig {
    /// Create the user on the first verified code for an unknown address.
    pub create_users: bool,
    pub code_length: u32,
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Least time between two codes for one address.
    #[serde(with = "humantime_serde")]
    pub resend_cooldown: Duration,
    /// Folder with `otp.txt` / `otp.html` replacing the built-in bodies.
    pub template_dir: Option<PathBuf>,
    pub subject: String,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            create_users: true,
            code_length: 6,
            ttl: Duration::from_secs(600),
            resend_cooldown: Duration::from_secs(60),
            template_dir: None,
            subject: "Your {{app_name}} sign-in code".to_owned(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8420)),
            data_dir: PathBuf::from("./sessiond-data"),
            database_url: None,
            redis_url: None,
            redis_prefix: "sessiond:".to_owned(),
            database_timeout: Duration::from_secs(3),
            database_statement_timeout: Duration::from_secs(5),
            database_max_connections: 16,
            admin_api_key: None,
            verifier_api_keys: Vec::new(),
            issuer: "sessiond".to_owned(),
            public_url: None,
            audience: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(7 * 24 * 3600),
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            activity_resolution: Duration::from_secs(60),
            max_sessions_per_user: 0,
            on_session_limit: OnLimit::EvictOldest,
            log_format: None,
            session_retention: Duration::from_secs(7 * 24 * 3600),
            cleanup_interval: Duration::from_secs(3600),
            max_body_bytes: 64 * 1024,
            password_hash_workers: None,
            password_hash_queue: 64,
            password_hash_memory_kib: 19 * 1024,
            password_hash_iterations: 2,
            password_hash_parallelism: 1,
            require_verified_email: false,
            migrate_on_start: true,
            shutdown_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            rate_limits: RateLimitConfig::default(),
            smtp_url: None,
            mail_from: "sessiond <no-reply@localhost>".to_owned(),
            app_name: "sessiond".to_owned(),
            otp: OtpConfig::default(),
            exchange: ExchangeConfig::default(),
            web: WebConfig::default(),
            events_retention: Duration::from_secs(30 * 24 * 3600),
            record_refresh_events: false,
            webhooks: WebhooksConfig::default(),
        }
    }
}

/// A configuration value that makes no sense, named by its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: `{key}` {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        problem: problem.into(),
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Config {
    /// Checks what the values' types alone cannot (ranges, and values that depend on
    /// each other).
    /// The argon2id parameters new password hashes are made with.
    pub fn argon2_params(&self) -> sessiond_core::password::Argon2Params {
        sessiond_core::password::Argon2Params {
            memory_kib: self.password_hash_memory_kib,
            iterations: self.password_hash_iterations,
            parallelism: self.password_hash_parallelism,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("idle_timeout", self.idle_timeout),
            ("absolute_lifetime", self.absolute_lifetime),
        ];
        for (key, value) in positive {
            if value.is_zero() {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        let too_long = Duration::from_secs(100 * 365 * 24 * 3600);
        for (key, value) in positive {
            if value > too_long {
                return Err(invalid(key, "must be at most 100 years"));
            }
        }
        if self.refresh_grace > Duration::from_secs(600) {
            return Err(invalid(
                "refresh_grace",
                "must be at most 10m: it is a window for racing refreshes, not a lifetime",
            ));
        }
        if self.access_token_ttl > self.absolute_lifetime {
            return Err(invalid(
                "access_token_ttl",
                "must not exceed absolute_lifetime",
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(invalid("issuer", "must not be empty"));
        }
        if let Some(key) = &self.admin_api_key
            && key.len() < 32
        {
            return Err(invalid(
                "admin_api_key",
                "must be at least 32 characters (256 bits of randomness recommended)",
            ));
        }
        if self.database_timeout.is_zero() || self.database_statement_timeout.is_zero() {
            return Err(invalid(
                "database_timeout",
                "database timeouts must be greater than zero",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        if self.redis_prefix.chars().any(char::is_whitespace) {
            return Err(invalid("redis_prefix", "must not contain whitespace"));
        }
        if self.verifier_api_keys.iter().any(|key| key.len() < 32) {
            return Err(invalid(
                "verifier_api_keys",
                "every key must be at least 32 characters (256 bits of randomness recommended)",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if !(4..=10).contains(&self.otp.code_length) {
            return Err(invalid("otp.code_length", "must be between 4 and 10"));
        }
        if self.otp.ttl.is_zero() || self.otp.ttl > Duration::from_secs(24 * 3600) {
            return Err(invalid("otp.ttl", "must be between 1s and 24h"));
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                "must be a mailbox such as `App <no-reply@example.com>`",
            ));
        }
        if self.password_hash_workers == Some(0) {
            return Err(invalid("password_hash_workers", "must be at least 1"));
        }
        // Below OWASP's weakest listed choice (7 MiB with 5 passes), a leaked hash is cheap
        // to crack; above 1 GiB one login could exhaust the machine.
        if !(7 * 1024..=1024 * 1024).contains(&self.password_hash_memory_kib) {
            return Err(invalid(
                "password_hash_memory_kib",
                "must be between 7168 (7 MiB) and 1048576 (1 GiB)",
            ));
        }
        if !(1..=64).contains(&self.password_hash_iterations) {
            return Err(invalid(
                "password_hash_iterations",
                "must be between 1 and 64",
            ));
        }
        if !(1..=16).contains(&self.password_hash_parallelism) {
            return Err(invalid(
                "password_hash_parallelism",
                "must be between 1 and 16",
            ));
        }
        crate::http::web::WebSettings::parse(&self.web)?;
        Ok(())
    }

    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            access_token_ttl: chrono(self.access_token_ttl),
            refresh_token_ttl: chrono(self.refresh_token_ttl),
            refresh_grace: chrono(self.refresh_grace),
            idle_timeout: chrono(self.idle_timeout),
            absolute_lifetime: chrono(self.absolute_lifetime),
            activity_resolution: chrono(self.activity_resolution),
            max_sessions_per_user: self.max_sessions_per_user,
            on_limit: self.on_session_limit,
        }
    }

    pub fn audience(&self) -> String {
        self.audience.clone().unwrap_or_else(|| self.issuer.clone())
    }

    /// A copy safe to print: secrets and URL passwords replaced by `***`.
    pub fn masked(&self) -> Config {
        let mut shown = self.clone();
        shown.admin_api_key = shown.admin_api_key.map(|_| "***".to_owned());
        shown.verifier_api_keys = vec!["***".to_owned(); shown.verifier_api_keys.len()];
        shown.database_url = shown.database_url.as_ref().map(DatabaseUrl::masked);
        shown.redis_url = shown.redis_url.as_ref().map(RedisUrl::masked);
        shown.smtp_url = shown.smtp_url.as_ref().map(SmtpUrl::masked);
        shown.exchange = crate::infra::exchange::masked(&shown.exchange);
        shown.webhooks = crate::infra::webhooks::masked(&shown.webhooks);
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the configuration, dotted (`otp.ttl`); maps of named entries
    /// (`exchange.providers`) stop at the map.
    fn keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(map) = value.as_object() {
            for (key, inner) in map {
                let path = format!("{prefix}{key}");
                if inner.is_object() && path != "exchange.providers" && path != "webhooks.endpoints"
                {
                    keys(inner, &format!("{path}."), out);
                } else {
                    out.push(path);
                }
            }
        }
    }

    #[test]
    fn the_readme_documents_every_configuration_key() {
        let readme = include_str!("../../../../README.md");
        let mut all = Vec::new();
        keys(
            &serde_json::to_value(Config::default()).unwrap(),
            "",
            &mut all,
        );
        assert!(all.len() > 30, "{all:?}");
        let missing: Vec<&String> = all
            .iter()
            .filter(|key| {
                let row = match key.strip_prefix("rate_limits.") {
                    // The rate limits have their own table, keyed without the prefix.
                    Some(limit) if limit != "enabled" => format!("| `{limit}` |"),
                    _ if key.as_str() == "exchange.providers" => {
                        "| `exchange.providers.<name>` |".to_owned()
                    }
                    _ if key.as_str() == "webhooks.endpoints" => {
                        "| `webhooks.endpoints.<name>` |".to_owned()
                    }
                    _ => format!("| `{key}` |"),
                };
                !readme.contains(&row)
            })
            .collect();
        assert!(missing.is_empty(), "README lacks rows for {missing:?}");
    }

    #[test]
    fn defaults_are_the_contract_defaults_and_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8420");
        assert_eq!(c.data_dir, PathBuf::from("./sessiond-data"));
        let p = c.policy();
        assert_eq!(p, SessionPolicy::default());
    }

    #[test]
    fn validation_names_the_key() {
        let c = Config {
            idle_timeout: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "idle_timeout");
        let c = Config {
            admin_api_key: Some("short".into()),
            ..Config::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "admin_api_key");
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_refused_when_read_under_its_key() {
        for (line, key) in [
            ("database_url = \"mysql://x\"", "database_url"),
            ("redis_url = \"localhost:6379\"", "redis_url"),
            ("smtp_url = \"mail.example:25\"", "smtp_url"),
            (
                "trusted_proxies = [\"10.0.0.0/8\", \"proxy\"]",
                "trusted_proxies",
            ),
        ] {
            let error = toml::from_str::<Config>(line).unwrap_err().to_string();
            assert!(error.contains(key), "{line}: {error}");
        }
        let c: Config = toml::from_str(
            "database_url = \"postgres://app:pw@db/s\"\nredis_url = \"redis://:pw@cache:6379/2\"\n\
             trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        // What is read is what is written back, passwords included (the masked copy is for
        // printing).
        let again: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn masking_hides_secrets() {
        let c = Config {
            admin_api_key: Some("k".repeat(40)),
            database_url: Some("postgres://app:hunter2@db:5432/sessiond".parse().unwrap()),
            ..Config::default()
        };
        let shown = toml::to_string(&c.masked()).unwrap();
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains(&"k".repeat(40)));
        assert!(shown.contains("postgres://app:***@db:5432/sessiond"));
    }
}
