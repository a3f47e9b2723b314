//! The rules for what clients may send, as parse constructors: a value of these types has
//! passed its rule, and the API description states the same limits (a test in the HTTP
//! layer compares them). Lengths count characters (Unicode scalar values), as JSON Schema's
//! `minLength`/`maxLength` do.

use crate::DomainError;
use crate::session::Device;

/// Longest accepted display name.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest accepted device id, user agent or device label.
pub const MAX_DEVICE_FIELD_CHARS: usize = 512;
/// Longest partner token forwarded to an identity provider.
pub const MAX_EXCHANGE_TOKEN_CHARS: usize = 8 * 1024;
/// Longest nonce sent with an ID token.
pub const MAX_EXCHANGE_NONCE_CHARS: usize = 1024;
/// Largest app data object, serialised.
pub const MAX_SESSION_DATA_BYTES: usize = 16 * 1024;

fn too_long(value: Option<&str>, max: usize) -> bool {
    value.is_some_and(|v| v.chars().count() > max)
}

/// A person's display name, if given: at most [`MAX_NAME_CHARS`].
pub fn display_name(name: Option<String>) -> Result<Option<String>, DomainError> {
    if too_long(name.as_deref(), MAX_NAME_CHARS) {
        return Err(DomainError::invalid_field(
            "name",
            "must be at most 256 characters",
        ));
    }
    Ok(name)
}

/// The device as the client describes it; each field at most [`MAX_DEVICE_FIELD_CHARS`].
#[derive(Debug, Default, Clone)]
pub struct DeviceFields {
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
    pub label: Option<String>,
}

impl DeviceFields {
    /// The device of a session: the client's description, its `User-Agent` header when it
    /// named none, and its IP as the server saw it.
    pub fn into_device(
        self,
        header_user_agent: Option<&str>,
        ip: Option<String>,
    ) -> Result<Device, DomainError> {
        for (field, value) in [
            ("device.device_id", &self.device_id),
            ("device.user_agent", &self.user_agent),
            ("device.label", &self.label),
        ] {
            if too_long(value.as_deref(), MAX_DEVICE_FIELD_CHARS) {
                return Err(DomainError::invalid_field(
                    field,
                    "must be at most 512 characters",
                ));
            }
        }
        let user_agent = self.user_agent.or_else(|| {
            header_user_agent.map(|ua| ua.chars().take(MAX_DEVICE_FIELD_CHARS).collect())
        });
        Ok(Device {
            device_id: self.device_id,
            user_agent,
            ip,
            label: self.label,
        })
    }
}

/// A partner app's token for exchange: 1 to [`MAX_EXCHANGE_TOKEN_CHARS`].
pub fn exchange_token(token: &str) -> Result<&str, DomainError> {
    if token.is_empty() || token.chars().count() > MAX_EXCHANGE_TOKEN_CHARS {
        return Err(DomainError::invalid_field(
            "token",
            "must be 1 to 8192 characters",
        ));
    }
    Ok(token)
}

/// The nonce an app passed to an OIDC sign-in: 1 to [`MAX_EXCHANGE_NONCE_CHARS`].
pub fn exchange_nonce(nonce: &str) -> Result<&str, DomainError> {
    if nonce.is_empty() || nonce.chars().count() > MAX_EXCHANGE_NONCE_CHARS {
        return Err(DomainError::invalid_field(
            "nonce",
            "must be 1 to 1024 characters",
        ));
    }
    Ok(nonce)
}

/// App data of a session: a JSON object of at most [`MAX_SESSION_DATA_BYTES`] serialised.
pub fn session_data(data: &serde_json::Value) -> Result<(), DomainError> {
    if !data.is_object() {
        return Err(DomainError::invalid_field("data", "must be a JSON object"));
    }
    if data.to_string().len() > MAX_SESSION_DATA_BYTES {
        return Err(DomainError::PayloadTooLarge {
            limit_bytes: MAX_SESSION_DATA_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_NAME_CHARS);
        assert!(display_name(Some(at_limit)).is_ok());
        assert!(display_name(Some("é".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(exchange_token(&"€".repeat(MAX_EXCHANGE_TOKEN_CHARS)).is_ok());
        assert!(exchange_token(&"a".repeat(MAX_EXCHANGE_TOKEN_CHARS + 1)).is_err());
        assert!(exchange_token("").is_err());
    }

    #[test]
    fn a_device_names_the_field_that_is_too_long_and_falls_back_to_the_header() {
        let long = DeviceFields {
            label: Some("x".repeat(MAX_DEVICE_FIELD_CHARS + 1)),
            ..Default::default()
        };
        match long.into_device(None, None) {
            Err(DomainError::Validation(errors)) => assert_eq!(errors[0].field, "device.label"),
            other => panic!("{other:?}"),
        }
        let header = "h".repeat(MAX_DEVICE_FIELD_CHARS + 10);
        let device = DeviceFields::default()
            .into_device(Some(&header), Some("10.0.0.1".into()))
            .unwrap();
        assert_eq!(device.user_agent.unwrap().len(), MAX_DEVICE_FIELD_CHARS);
        assert_eq!(device.ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn session_data_is_an_object_within_its_size() {
        assert!(session_data(&serde_json::json!({"a": 1})).is_ok());
        assert!(matches!(
            session_data(&serde_json::json!([1])),
            Err(DomainError::Validation(_))
        ));
        let big = serde_json::json!({ "a": "x".repeat(MAX_SESSION_DATA_BYTES) });
        assert!(matches!(
            session_data(&big),
            Err(DomainError::PayloadTooLarge { .. })
        ));
    }
}
