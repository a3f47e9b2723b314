use std::fmt;

use serde::Serialize;

use crate::DomainError;

/// A normalised email address: trimmed and lower-cased, so that `Ann@Example.com ` and
/// `ann@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let normalised = raw.trim().to_lowercase();
        let invalid = || DomainError::invalid_field("email", "must be an email address");
        if normalised.is_empty() || normalised.len() > Self::MAX_LEN {
            return Err(invalid());
        }
        let (local, domain) = normalised.split_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !normalised
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(normalised))
    }

    /// Rebuilds an address that was normalised before it was stored.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  Ann.Lee@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "ann.lee@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "ann@",
            "ann@@example.com",
            "ann@exa mple.com",
            "ann@.example.com",
            "ann@example..com",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
