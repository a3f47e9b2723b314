//! Webhook endpoints: their configuration, and one signed attempt at delivering an event,
//! per the Standard Webhooks specification: `webhook-id` (the event's id, the same on
//! every retry), `webhook-timestamp` (seconds, of this attempt) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under the endpoint's
//! secret).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sessiond_core::EventType;

/// The retry delays after each failed attempt (the Standard Webhooks schedule): about a
/// day and a half of attempts in all, eight of them.
const DEFAULT_SCHEDULE: [&str; 7] = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"];
/// Most of a receiver's answer read (and logged) on failure.
const MAX_ERROR_BODY: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// Per attempt, connection included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Delays before each retry (`["5s", "5m", …]`); when they run out, the delivery fails.
    pub retry_schedule: Vec<String>,
    /// Attempts in flight at once, per instance.
    pub concurrency: usize,
    /// How often an idle instance looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            endpoints: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            retry_schedule: DEFAULT_SCHEDULE.iter().map(|s| (*s).to_owned()).collect(),
            concurrency: 8,
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// `whsec_` and the base64 key (at least 24 bytes); `${VAR}` reads the environment.
    pub secret: String,
    /// Types (`session.ended`), families (`session.*`) or `*` (the default).
    #[serde(default = "every_event")]
    pub events: Vec<String>,
}

fn every_event() -> Vec<String> {
    vec!["*".to_owned()]
}

#[derive(Debug, thiserror::Error)]
#[error("webhooks: {problem}")]
pub struct WebhookConfigError {
    pub problem: String,
}

/// An endpoint ready to deliver to.
pub struct Endpoint {
    pub name: String,
    pub url: reqwest::Url,
    key: ring::hmac::Key,
    events: Vec<String>,
}

impl Endpoint {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.iter().any(|f| kind.matches(f))
    }
}

/// Every configured endpoint, the retry schedule, and the HTTP client.
pub struct Webhooks {
    pub endpoints: Vec<Endpoint>,
    pub schedule: Vec<Duration>,
    pub timeout: Duration,
    pub concurrency: usize,
    pub poll_interval: Duration,
    client: reqwest::Client,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// The receiver says the endpoint is gone for good (410).
    Gone,
    Failed(String),
}

impl Webhooks {
    pub fn new(
        config: &WebhooksConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WebhookConfigError> {
        let invalid = |problem: String| WebhookConfigError { problem };
        let mut endpoints = Vec::new();
        for (name, e) in &config.endpoints {
            let key = format!("webhooks.endpoints.{name}");
            let url = reqwest::Url::parse(&e.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| invalid(format!("`{key}.url` must be an http or https URL")))?;
            let secret = expand_var(&e.secret, &env).ok_or_else(|| {
                invalid(format!("`{key}.secret`: the variable it names is not set"))
            })?;
            let bytes = secret_bytes(&secret)
                .ok_or_else(|| invalid(format!("`{key}.secret` must be `whsec_` and base64")))?;
            if bytes.len() < 24 {
                return Err(invalid(format!(
                    "`{key}.secret` must hold at least 24 bytes"
                )));
            }
            if e.events.is_empty() {
                return Err(invalid(format!(
                    "`{key}.events` is empty: it would receive nothing"
                )));
            }
            if let Some(bad) = e.events.iter().find(|f| !EventType::is_filter(f)) {
                return Err(invalid(format!(
                    "`{key}.events`: {bad:?} names no event type"
                )));
            }
            endpoints.push(Endpoint {
                name: name.clone(),
                url,
                key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
                events: e.events.clone(),
            });
        }
        let schedule = config
            .retry_schedule
            .iter()
            .map(|d| humantime::parse_duration(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("`webhooks.retry_schedule`: {e}")))?;
        if config.concurrency == 0 {
            return Err(invalid("`webhooks.concurrency` must be at least 1".into()));
        }
        if config.timeout.is_zero() || config.poll_interval.is_zero() {
            return Err(invalid(
                "`webhooks.timeout` and `webhooks.poll_interval` must be above zero".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "sessiond/",
                env!("CARGO_PKG_VERSION"),
                " (webhooks)"
            ))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            endpoints,
            schedule,
            timeout: config.timeout,
            concurrency: config.concurrency,
            poll_interval: config.poll_interval,
            client,
        })
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// One signed POST of `body`; never longer than the timeout.
    pub async fn attempt(
        &self,
        endpoint: &Endpoint,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> Attempt {
        let signature = sign(&endpoint.key, id, timestamp, body);
        let sent = self
            .client
            .post(endpoint.url.clone())
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => return Attempt::Failed("timeout".into()),
            Err(e) if e.is_connect() => return Attempt::Failed("connection failed".into()),
            Err(_) => return Attempt::Failed("request failed".into()),
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        if status == reqwest::StatusCode::GONE {
            return Attempt::Gone;
        }
        let body = tokio::time::timeout(self.timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let excerpt: String = body.chars().take(MAX_ERROR_BODY).collect();
        Attempt::Failed(format!("status {}: {excerpt}", status.as_u16()))
    }
}

/// The `webhook-signature` value for one attempt.
pub fn sign(key: &ring::hmac::Key, id: &str, timestamp: i64, body: &str) -> String {
    let message = format!("{id}.{timestamp}.{body}");
    let tag = ring::hmac::sign(key, message.as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The key bytes of `whsec_<base64>` (the prefix may be left out).
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(encoded.trim())
        .ok()
        .filter(|b| !b.is_empty())
}

/// `${VAR}` (the whole value) read from the environment; anything else as it is.
fn expand_var(value: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    match value
        .trim()
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
    {
        Some(var) => env(var),
        None => Some(value.to_owned()),
    }
}

/// A printable copy: secrets that are not `${VAR}` references are masked.
pub fn masked(config: &WebhooksConfig) -> WebhooksConfig {
    let mut shown = config.clone();
    for endpoint in shown.endpoints.values_mut() {
        let s = endpoint.secret.trim();
        if !(s.starts_with("${") && s.ends_with('}')) {
            endpoint.secret = "***".to_owned();
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_match_the_specification_example() {
        let bytes = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes);
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn mistakes_are_named() {
        let config = |secret: &str, events: Vec<String>| WebhooksConfig {
            endpoints: [(
                "crm".to_owned(),
                EndpointConfig {
                    url: "https://crm.example/hook".into(),
                    secret: secret.into(),
                    events,
                },
            )]
            .into(),
            ..WebhooksConfig::default()
        };
        let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(Webhooks::new(&config(good, every_event()), |_| None).is_ok());
        for (c, named) in [
            (config("whsec_!!", every_event()), "secret"),
            (config("whsec_c2hvcnQ=", every_event()), "24 bytes"),
            (config("${NOPE}", every_event()), "variable"),
            (config(good, vec!["sesion.*".into()]), "sesion.*"),
            (config(good, vec![]), "empty"),
        ] {
            let Err(e) = Webhooks::new(&c, |_| None) else {
                panic!("{c:?} should be refused");
            };
            assert!(e.to_string().contains(named), "{e} should name {named}");
        }
        let env = |v: &str| (v == "HOOK_SECRET").then(|| good.to_owned());
        assert!(Webhooks::new(&config("${HOOK_SECRET}", every_event()), env).is_ok());
    }

    #[test]
    fn secrets_are_masked_unless_references() {
        let mut c = WebhooksConfig::default();
        for (name, secret) in [("a", "whsec_abc"), ("b", "${VAR}")] {
            c.endpoints.insert(
                name.into(),
                EndpointConfig {
                    url: "https://x.example".into(),
                    secret: secret.into(),
                    events: every_event(),
                },
            );
        }
        let shown = masked(&c);
        assert_eq!(shown.endpoints["a"].secret, "***");
        assert_eq!(shown.endpoints["b"].secret, "${VAR}");
    }
}
