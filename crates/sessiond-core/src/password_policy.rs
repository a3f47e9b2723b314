//! What a new password must be (NIST SP 800-63B §3.1.1.2): long enough, not absurdly long,
//! not one of the passwords attackers try first, and not the account's own address. No
//! composition rules: they make passwords harder to remember, not to guess.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::error::FieldError;
use crate::password::Password;
use crate::{DomainError, Email};

/// The 10 000 most frequent passwords of 8 characters or more (see `data/README.md`).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// Which rule a refused password broke, as the problem's `errors[].reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    TooShort,
    TooLong,
    Common,
    IsEmail,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Rule::TooShort, Rule::TooLong, Rule::Common, Rule::IsEmail];

    pub fn reason(self) -> &'static str {
        match self {
            Rule::TooShort => "too_short",
            Rule::TooLong => "too_long",
            Rule::Common => "common",
            Rule::IsEmail => "matches_email",
        }
    }

    fn message(self) -> String {
        match self {
            Rule::TooShort => format!("must be at least {} characters", Password::MIN_CHARS),
            Rule::TooLong => format!("must be at most {} characters", Password::MAX_CHARS),
            Rule::Common => "is one of the most commonly used passwords; choose another".into(),
            Rule::IsEmail => "must not be the account's email address".into(),
        }
    }
}

/// The first rule `raw` breaks, if any.
pub fn broken_rule(raw: &str, email: Option<&Email>) -> Option<Rule> {
    let chars = raw.chars().count();
    if chars < Password::MIN_CHARS {
        return Some(Rule::TooShort);
    }
    if chars > Password::MAX_CHARS {
        return Some(Rule::TooLong);
    }
    let folded = raw.trim().to_lowercase();
    if COMMON.contains(folded.as_str()) {
        return Some(Rule::Common);
    }
    if let Some(email) = email {
        let address = email.as_str();
        let local = address.split('@').next().unwrap_or(address);
        if folded == address || folded == local {
            return Some(Rule::IsEmail);
        }
    }
    None
}

/// A new password for the account at `email` (when known), reported under `field`.
pub fn new_password(
    raw: String,
    field: &str,
    email: Option<&Email>,
) -> Result<Password, DomainError> {
    match broken_rule(&raw, email) {
        None => Ok(Password::accepted(raw)),
        Some(rule) => Err(DomainError::Validation(vec![FieldError {
            field: field.to_owned(),
            message: rule.message(),
            reason: Some(rule.reason().to_owned()),
        }])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("ann.smith@example.com").unwrap()
    }

    #[test]
    fn the_list_holds_ten_thousand_long_enough_passwords() {
        assert_eq!(COMMON.len(), 10_000);
        assert!(
            COMMON
                .iter()
                .all(|p| p.chars().count() >= Password::MIN_CHARS)
        );
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(broken_rule("short", None), Some(Rule::TooShort));
        assert_eq!(broken_rule(&"x".repeat(257), None), Some(Rule::TooLong));
        assert_eq!(broken_rule("password", None), Some(Rule::Common));
        assert_eq!(broken_rule("Password1 ", None), Some(Rule::Common));
        assert_eq!(broken_rule("iloveyou2", None), Some(Rule::Common));
        assert_eq!(
            broken_rule("ANN.SMITH@example.com", Some(&email())),
            Some(Rule::IsEmail)
        );
        assert_eq!(
            broken_rule("ann.smith", Some(&email())),
            Some(Rule::IsEmail)
        );
        assert_eq!(broken_rule("correct horse battery", Some(&email())), None);
        // No composition rules: a long lower-case passphrase is fine, and so is any script.
        assert_eq!(broken_rule("žluťoučký kůň", None), None);
        assert_eq!(broken_rule(&"é".repeat(256), None), None);
    }

    #[test]
    fn refusals_carry_field_and_reason() {
        let Err(DomainError::Validation(errors)) =
            new_password("qwertyuiop".into(), "new_password", None)
        else {
            panic!("a common password passed");
        };
        assert_eq!(errors[0].field, "new_password");
        assert_eq!(errors[0].reason.as_deref(), Some("common"));
    }
}
