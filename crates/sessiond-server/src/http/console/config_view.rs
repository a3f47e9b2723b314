//! The effective configuration as the console shows it: flattened to dotted keys, every
//! secret masked (keys, passwords in URLs, header values, webhook secrets).

use serde_json::Value;

use crate::config::{Config, mask_url_password};

const MASK: &str = "•••••• (set)";

/// Names whose values are secrets wherever they appear (`path` is the dotted key).
fn is_secret(path: &str, key: &str) -> bool {
    // Limits are named after what they count (`password_failures`), not secrets.
    if path.starts_with("rate_limits.") {
        return false;
    }
    let key = key.to_ascii_lowercase();
    ["key", "secret", "password", "token", "headers", "authorization"]
        .iter()
        .any(|word| key.contains(word))
        // Settings that only name a header or a file, or say how long a token lives.
        && !key.ends_with("_header")
        && !key.ends_with("_ttl")
        && !key.ends_with("_path")
        && !key.starts_with("password_hash")
        && key != "refresh_token_ttl"
}

pub fn flatten(config: &Config) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    match serde_json::to_value(config) {
        Ok(value) => walk("", &value, false, &mut rows),
        Err(e) => rows.push(("(error)".to_owned(), e.to_string())),
    }
    rows
}

fn walk(prefix: &str, value: &Value, secret: bool, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let secret = secret || is_secret(&path, key);
                walk(&path, value, secret, rows);
            }
        }
        _ if secret => {
            let shown = match value {
                Value::Null => "(not set)".to_owned(),
                Value::Array(items) if items.is_empty() => "[]".to_owned(),
                Value::Array(items) => format!("{} × {MASK}", items.len()),
                _ => MASK.to_owned(),
            };
            rows.push((prefix.to_owned(), shown));
        }
        Value::String(s) => rows.push((prefix.to_owned(), mask_url_password(s))),
        Value::Null => rows.push((prefix.to_owned(), "(not set)".to_owned())),
        other => {
            let text = other.to_string();
            rows.push((prefix.to_owned(), mask_url_password(&text)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_settings_kept() {
        let config = Config {
            admin_api_key: Some("super-secret-admin-key".into()),
            verifier_api_keys: vec!["verifier-key-0123456789abcdef0123456789".into()],
            database_url: Some("postgres://app:hunter2@db:5432/app".parse().unwrap()),
            ..Config::default()
        };
        let rows = flatten(&config);
        let text = format!("{rows:?}");
        assert!(!text.contains("super-secret-admin-key"), "{text}");
        assert!(!text.contains("verifier-key-0123"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let get = |k: &str| {
            rows.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("admin_api_key").as_deref(), Some(MASK));
        assert_eq!(get("issuer").as_deref(), Some("sessiond"));
        assert_eq!(get("access_token_ttl").as_deref(), Some("15m"));
        assert!(get("rate_limits.login").is_some());
        assert_eq!(
            get("rate_limits.password_failures").as_deref(),
            Some("10/15m")
        );
        assert_eq!(get("web.user_header").as_deref(), Some("X-Sessiond-User"));
    }
}
