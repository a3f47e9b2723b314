//! Token exchange: a provider vouches for a token and says who it belongs to. A provider
//! of kind `http` (the default) is a partner's identity API asked per login; one of kind
//! `oidc` is an OpenID Connect issuer whose ID tokens are checked here ([`super::oidc`]).
//! Providers are declared in configuration, never in code.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessiond_core::DomainError;

use super::oidc::{OidcProvider, OidcProviderConfig};

/// Most of a provider's answer we are willing to read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// One provider, by its `kind`: `http` when absent, or `oidc`.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderConfig {
    Http(HttpProviderConfig),
    Oidc(OidcProviderConfig),
}

impl<'de> Deserialize<'de> for ProviderConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let kind = match table.remove("kind") {
            None => "http".to_owned(),
            Some(serde_json::Value::String(kind)) => kind,
            Some(_) => return Err(D::Error::custom("`kind` must be \"http\" or \"oidc\"")),
        };
        let rest = serde_json::Value::Object(table);
        match kind.as_str() {
            "http" => HttpProviderConfig::deserialize(rest).map(Self::Http),
            "oidc" => OidcProviderConfig::deserialize(rest).map(Self::Oidc),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown provider kind `{other}`; expected \"http\" or \"oidc\""
                )));
            }
        }
        .map_err(D::Error::custom)
    }
}

impl Serialize for ProviderConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        match self {
            ProviderConfig::Http(http) => http.serialize(serializer),
            ProviderConfig::Oidc(oidc) => {
                let mut value = serde_json::to_value(oidc).map_err(S::Error::custom)?;
                if let Some(table) = value.as_object_mut() {
                    table.retain(|_, v| !v.is_null());
                    table.insert("kind".into(), "oidc".into());
                }
                value.serialize(serializer)
            }
        }
    }
}

/// A partner's identity API, asked about each token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    pub url: String,
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// JSON body template; `{token}` is replaced by the JSON-escaped token.
    #[serde(default = "default_body")]
    pub body: String,
    /// Header values may name environment variables as `${VAR}`, read at start.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub response: ResponseMapping,
}

/// JSON pointers (RFC 6901) into the provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseMapping {
    /// Must point at `true` when present.
    pub valid: Option<String>,
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub mobile: Option<String>,
    /// Any JSON, kept with the user.
    pub profile: Option<String>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body() -> String {
    r#"{"token": "{token}"}"#.to_owned()
}

/// Who the provider says the token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalIdentity {
    pub provider: String,
    pub external_id: String,
    pub email: Option<String>,
    /// Whether the provider vouches that the person reads mail at `email`.
    pub email_verified: bool,
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub profile: Option<serde_json::Value>,
    /// For tokens that may be used once: what the use is remembered by, and until when.
    pub single_use: Option<SingleUse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SingleUse {
    pub fingerprint: String,
    pub until: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeConfigError {
    #[error("exchange provider `{provider}`: environment variable `{var}` is not set")]
    MissingVar { provider: String, var: String },
    #[error("exchange provider `{provider}`: {problem}")]
    Invalid { provider: String, problem: String },
}

enum Provider {
    Http(HttpProvider),
    Oidc(OidcProvider),
}

/// A partner API ready to call: variables expanded, headers parsed.
struct HttpProvider {
    url: reqwest::Url,
    timeout: Duration,
    body: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    response: ResponseMapping,
}

impl HttpProvider {
    fn new(
        name: &str,
        p: &HttpProviderConfig,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ExchangeConfigError> {
        let invalid = |problem: String| ExchangeConfigError::Invalid {
            provider: name.to_owned(),
            problem,
        };
        let url = expand(name, &p.url, env)?;
        let url = reqwest::Url::parse(&url).map_err(|e| invalid(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("url must be http or https".into()));
        }
        if !p.body.contains("{token}") {
            return Err(invalid("body must contain {token}".into()));
        }
        let body = expand(name, &p.body, env)?;
        let mut headers = Vec::new();
        for (key, value) in &p.headers {
            let value = expand(name, value, env)?;
            let key = HeaderName::try_from(key.as_str())
                .map_err(|_| invalid(format!("bad header name {key:?}")))?;
            let mut value = HeaderValue::try_from(value)
                .map_err(|_| invalid(format!("bad value for header {key}")))?;
            value.set_sensitive(true);
            headers.push((key, value));
        }
        for (key, pointer) in p.response.pointers() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(invalid(format!(
                    "response.{key} must be a JSON pointer starting with `/`"
                )));
            }
        }
        Ok(Self {
            url,
            timeout: p.timeout,
            body,
            headers,
            response: p.response.clone(),
        })
    }
}

/// The configured providers and the HTTP client that calls them.
pub struct Exchange {
    client: reqwest::Client,
    providers: HashMap<String, Provider>,
}

impl Exchange {
    /// Builds providers from configuration, expanding `${VAR}` with `env`; a missing
    /// variable is an error naming it.
    pub fn new(
        config: &ExchangeConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ExchangeConfigError> {
        let mut providers = HashMap::new();
        for (name, p) in &config.providers {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ExchangeConfigError::Invalid {
                    provider: name.clone(),
                    problem: "provider names may use only letters, digits, `-` and `_`".into(),
                });
            }
            let provider = match p {
                ProviderConfig::Http(p) => Provider::Http(HttpProvider::new(name, p, &env)?),
                ProviderConfig::Oidc(p) => {
                    Provider::Oidc(OidcProvider::new(name, p).map_err(|problem| {
                        ExchangeConfigError::Invalid {
                            provider: name.clone(),
                            problem,
                        }
                    })?)
                }
            };
            providers.insert(name.clone(), provider);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ExchangeConfigError::Invalid {
                provider: "*".into(),
                problem: format!("HTTP client: {e}"),
            })?;
        Ok(Self { client, providers })
    }

    /// The configured providers' names, sorted.
    pub fn provider_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.providers.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// Whether the provider checks a nonce (an `oidc` one), so a request may send one.
    pub fn takes_nonce(&self, name: &str) -> bool {
        matches!(self.providers.get(name), Some(Provider::Oidc(_)))
    }

    /// Asks the provider about `token` (an `oidc` one checks it here, as of `now`).
    /// Errors are the contract's upstream codes; the log names provider, outcome and
    /// latency, never the token.
    pub async fn identify(
        &self,
        provider_name: &str,
        token: &str,
        nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ExternalIdentity, DomainError> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or_else(|| DomainError::invalid_field("provider", "unknown provider"))?;
        let started = Instant::now();
        let result = match provider {
            // A partner token is bound to nothing a nonce could prove: one sent along
            // is not the partner's business, and is not forwarded.
            Provider::Http(http) => self.ask(provider_name, http, token).await,
            Provider::Oidc(oidc) => {
                oidc.verify(&self.client, token, nonce, now)
                    .await
                    .map(|verified| ExternalIdentity {
                        provider: provider_name.to_owned(),
                        external_id: verified.subject,
                        email_verified: verified.verified_email.is_some(),
                        email: verified.verified_email,
                        name: verified.name,
                        mobile: None,
                        profile: None,
                        single_use: Some(SingleUse {
                            fingerprint: verified.fingerprint,
                            until: verified.replayable_until,
                        }),
                    })
            }
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        match &result {
            Err(DomainError::IdTokenRejected(reason)) => {
                tracing::info!(
                    provider = provider_name,
                    latency_ms,
                    outcome,
                    reason,
                    "ID token refused"
                );
            }
            _ => tracing::info!(
                provider = provider_name,
                latency_ms,
                outcome,
                "exchange provider answered"
            ),
        }
        metrics::counter!("sessiond_exchange_requests_total", "provider" => provider_name.to_owned(), "outcome" => outcome).increment(1);
        result
    }

    /// One call to a partner's identity API.
    async fn ask(
        &self,
        provider_name: &str,
        provider: &HttpProvider,
        token: &str,
    ) -> Result<ExternalIdentity, DomainError> {
        match self.call(provider, token).await {
            Ok((status, answer)) => interpret(provider_name, provider, status, answer),
            Err(reason) => {
                tracing::warn!(
                    provider = provider_name,
                    reason,
                    "exchange provider unreachable"
                );
                Err(DomainError::UpstreamUnavailable)
            }
        }
    }

    async fn call(
        &self,
        provider: &HttpProvider,
        token: &str,
    ) -> Result<(reqwest::StatusCode, Answer), &'static str> {
        let body = provider.body.replace("{token}", &json_escape(token));
        let mut request = self
            .client
            .post(provider.url.clone())
            .timeout(provider.timeout)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body);
        for (k, v) in &provider.headers {
            request = request.header(k, v);
        }
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout"
            } else {
                "connection failed"
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_RESPONSE_BYTES {
                        return Err("response too large");
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err("timeout"),
                Err(_) => return Err("response interrupted"),
            }
        }
        Ok((status, Answer { bytes, retry_after }))
    }
}

struct Answer {
    bytes: Vec<u8>,
    retry_after: Option<u64>,
}

impl ResponseMapping {
    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut all = vec![("user_id", self.user_id.as_str())];
        for (key, p) in [
            ("valid", &self.valid),
            ("email", &self.email),
            ("name", &self.name),
            ("mobile", &self.mobile),
            ("profile", &self.profile),
        ] {
            if let Some(p) = p {
                all.push((key, p.as_str()));
            }
        }
        all
    }
}

fn interpret(
    name: &str,
    provider: &HttpProvider,
    status: reqwest::StatusCode,
    answer: Answer,
) -> Result<ExternalIdentity, DomainError> {
    match status.as_u16() {
        200..=299 => {}
        400 | 401 | 403 => return Err(DomainError::UpstreamRejected),
        429 => {
            return Err(DomainError::UpstreamRateLimited {
                retry_after_secs: answer.retry_after,
            });
        }
        _ => return Err(DomainError::UpstreamUnavailable),
    }
    let json: serde_json::Value =
        serde_json::from_slice(&answer.bytes).map_err(|_| DomainError::UpstreamUnavailable)?;
    let mapping = &provider.response;
    if let Some(pointer) = &mapping.valid
        && json.pointer(pointer) != Some(&serde_json::Value::Bool(true))
    {
        return Err(DomainError::UpstreamRejected);
    }
    let external_id = match json.pointer(&mapping.user_id) {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(DomainError::UpstreamUnavailable),
    };
    let text = |pointer: &Option<String>| -> Option<String> {
        let value = json.pointer(pointer.as_deref()?)?;
        match value {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(512).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(ExternalIdentity {
        provider: name.to_owned(),
        external_id,
        email: text(&mapping.email),
        // The partner vouched for the person, not that they read this mail.
        email_verified: false,
        name: text(&mapping.name),
        mobile: text(&mapping.mobile),
        profile: mapping
            .profile
            .as_deref()
            .and_then(|p| json.pointer(p))
            .filter(|v| !v.is_null())
            .cloned(),
        single_use: None,
    })
}

/// `Retry-After` as seconds (the HTTP-date form is turned into seconds from now).
fn parse_retry_after(value: &str) -> Option<u64> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    Some((at.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64)
}

/// The token as it appears inside a JSON string literal.
fn json_escape(token: &str) -> String {
    let quoted = serde_json::to_string(token).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Replaces every `${VAR}` with the variable's value.
fn expand(
    provider: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, ExchangeConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ExchangeConfigError::Invalid {
                provider: provider.to_owned(),
                problem: format!("unterminated `${{` in {text:?}"),
            })?;
        let var = &after[..end];
        let value = env(var).ok_or_else(|| ExchangeConfigError::MissingVar {
            provider: provider.to_owned(),
            var: var.to_owned(),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A printable copy: header values that are not `${VAR}` references are masked.
pub fn masked(config: &ExchangeConfig) -> ExchangeConfig {
    let mut shown = config.clone();
    for provider in shown.providers.values_mut() {
        let ProviderConfig::Http(provider) = provider else {
            continue;
        };
        for value in provider.headers.values_mut() {
            let is_reference = value.trim().starts_with("${") && value.trim().ends_with('}');
            if !is_reference {
                *value = "***".to_owned();
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_missing_ones_are_named() {
        let env = |v: &str| (v == "KEY").then(|| "s3cret".to_owned());
        assert_eq!(
            expand("p", "Bearer ${KEY}!", &env).unwrap(),
            "Bearer s3cret!"
        );
        let err = expand("p", "${NOPE}", &env).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
        assert!(expand("p", "${KEY", &env).is_err());
    }

    #[test]
    fn tokens_are_json_escaped_into_the_body() {
        assert_eq!(json_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(json_escape("plain"), "plain");
    }

    #[test]
    fn retry_after_accepts_seconds() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn masking_keeps_references_and_hides_literals() {
        let config: ExchangeConfig = toml::from_str(
            r#"
            [providers.p]
            url = "https://x.test/"
            [providers.p.headers]
            authorization = "${KEY}"
            x-literal = "hunter2"
            [providers.p.response]
            user_id = "/id"
            "#,
        )
        .unwrap();
        let shown = masked(&config);
        let ProviderConfig::Http(shown) = &shown.providers["p"] else {
            panic!("an http provider");
        };
        assert_eq!(shown.headers["authorization"], "${KEY}");
        assert_eq!(shown.headers["x-literal"], "***");
    }
}
