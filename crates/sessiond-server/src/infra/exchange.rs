//! Partner-token exchange: ask a provider's identity API whether a token is good and who
//! it belongs to. Providers are declared in configuration, never in code.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sessiond_core::DomainError;

/// Most of a provider's answer we are willing to read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
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
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub profile: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeConfigError {
    #[error("exchange provider `{provider}`: environment variable `{var}` is not set")]
    MissingVar { provider: String, var: String },
    #[error("exchange provider `{provider}`: {problem}")]
    Invalid { provider: String, problem: String },
}

/// A provider ready to call: variables expanded, headers parsed.
struct Provider {
    url: reqwest::Url,
    timeout: Duration,
    body: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    response: ResponseMapping,
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
            let invalid = |problem: String| ExchangeConfigError::Invalid {
                provider: name.clone(),
                problem,
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    "provider names may use only letters, digits, `-` and `_`".into(),
                ));
            }
            let url = expand(name, &p.url, &env)?;
            let url = reqwest::Url::parse(&url).map_err(|e| invalid(format!("url: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid("url must be http or https".into()));
            }
            if !p.body.contains("{token}") {
                return Err(invalid("body must contain {token}".into()));
            }
            let body = expand(name, &p.body, &env)?;
            let mut headers = Vec::new();
            for (key, value) in &p.headers {
                let value = expand(name, value, &env)?;
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
            providers.insert(
                name.clone(),
                Provider {
                    url,
                    timeout: p.timeout,
                    body,
                    headers,
                    response: p.response.clone(),
                },
            );
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

    /// Asks the provider about `token`. Errors are the contract's upstream codes; the
    /// log names provider, status and latency, never the token.
    pub async fn identify(
        &self,
        provider_name: &str,
        token: &str,
    ) -> Result<ExternalIdentity, DomainError> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or_else(|| DomainError::invalid_field("provider", "unknown provider"))?;
        let started = Instant::now();
        let outcome = self.call(provider, token).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, answer) = match outcome {
            Ok(ok) => ok,
            Err(reason) => {
                tracing::warn!(
                    provider = provider_name,
                    latency_ms,
                    reason,
                    "exchange provider unreachable"
                );
                metrics::counter!("sessiond_exchange_requests_total", "provider" => provider_name.to_owned(), "outcome" => "unavailable").increment(1);
                return Err(DomainError::UpstreamUnavailable);
            }
        };
        let result = interpret(provider_name, provider, status, answer);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        tracing::info!(
            provider = provider_name,
            status = status.as_u16(),
            latency_ms,
            outcome,
            "exchange provider answered"
        );
        metrics::counter!("sessiond_exchange_requests_total", "provider" => provider_name.to_owned(), "outcome" => outcome).increment(1);
        result
    }

    async fn call(
        &self,
        provider: &Provider,
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
    provider: &Provider,
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
        name: text(&mapping.name),
        mobile: text(&mapping.mobile),
        profile: mapping
            .profile
            .as_deref()
            .and_then(|p| json.pointer(p))
            .filter(|v| !v.is_null())
            .cloned(),
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
        assert_eq!(shown.providers["p"].headers["authorization"], "${KEY}");
        assert_eq!(shown.providers["p"].headers["x-literal"], "***");
    }
}
