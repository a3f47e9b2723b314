use std::fmt;

use serde::Serialize;

use crate::DomainError;

/// A normalised email address: trimmed and lower-cased, so that `Ann@Example.com ` and
/// `ann@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Longest accepted address as sent, surrounding blanks included.
    pub const MAX_CHARS: usize = 254;

    /// The rule [`Email::parse`] applies, as a pattern for the API description (the same
    /// in ECMA-262 and Python): optional surrounding blanks (space, tab, CR, LF); a local
    /// part of dot-separated atoms of RFC 5322 `atext` (ASCII); a domain of dot-separated
    /// host-name labels of at most 63 characters. Internationalised domains are taken in
    /// their `xn--` form.
    pub const PATTERN: &'static str = concat!(
        r"^[\t\n\r ]*",
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
        r"@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
        r"[\t\n\r ]*$"
    );

    /// Trims blanks and lower-cases; the rule is [`Email::PATTERN`] and at most
    /// [`Email::MAX_CHARS`].
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::invalid_field("email", "must be an email address");
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(invalid());
        }
        let trimmed = raw.trim_matches(is_blank);
        let (local, domain) = trimmed.split_once('@').ok_or_else(invalid)?;
        let well_formed = local.split('.').all(is_atom) && domain.split('.').all(is_host_label);
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// RFC 5322 `atext`, ASCII only.
fn is_atom(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
}

/// A host-name label: letters, digits and inner hyphens, 1 to 63 of them.
fn is_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
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
    fn accepts_what_mail_systems_take() {
        for good in [
            "a@b",
            "first.last+tag@sub.example.co.uk",
            "o'brien@xn--bcher-kva.de",
            "#!$%&*/=?^_`{|}~-@x-1.example",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
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
            "ann@example.com.",
            "ann\u{85}@example.com",
            "jürgen@example.com",
            "ann@bücher.de",
            "ann@-example.com",
            "ann@example-.com",
            "a..b@example.com",
            ".ann@example.com",
            "ann@exam_ple.com",
            "\"quoted\"@example.com",
            &format!("ann@{}.com", "a".repeat(64)),
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    /// The API description states the rule as `PATTERN`; random near-addresses must be
    /// judged alike by it and by `parse`.
    #[test]
    fn the_pattern_and_the_parser_agree() {
        use rand::{Rng, SeedableRng};
        let pattern = regex::Regex::new(Email::PATTERN).unwrap();
        let alphabet: Vec<char> = "aaaaaZ9..@-_+ \t\n\"'é\u{0}\u{85}[]:".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut accepted = 0;
        for round in 0..200_000 {
            // Half random strings, half a real address with two characters replaced.
            let candidate: String = if round % 2 == 0 {
                let len = rng.random_range(1..12);
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            } else {
                let mut chars: Vec<char> = " ann.lee@mail.example.com".chars().collect();
                for _ in 0..2 {
                    let at = rng.random_range(0..chars.len());
                    chars[at] = alphabet[rng.random_range(0..alphabet.len())];
                }
                chars.into_iter().collect()
            };
            let by_pattern = pattern.is_match(&candidate);
            assert_eq!(
                Email::parse(&candidate).is_ok(),
                by_pattern,
                "{candidate:?}"
            );
            accepted += usize::from(by_pattern);
        }
        assert!(
            accepted > 10_000,
            "the sample must hold addresses too: {accepted}"
        );
    }
}
