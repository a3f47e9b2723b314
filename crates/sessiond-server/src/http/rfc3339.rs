//! Timestamps on the wire: RFC 3339 in UTC (`2026-11-23T08:30:00.123Z`), exactly as
//! chrono's own `Serialize` writes them, but formatted into a string first. chrono's
//! `Serialize` goes through `fmt::Display`, and serde_json then escapes that output one
//! character at a time: measured at an eighth of a whole `GET /v1/session`'s CPU.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "serialize")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "option::serialize")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chrono {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    #[test]
    fn writes_what_chrono_writes_at_every_precision() {
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for nanos in [0, 123_000_000, 123_456_000, 123_456_789, 5] {
            let at = base + chrono::Duration::nanoseconds(nanos);
            for maybe in [Some(at), None] {
                let ours = serde_json::to_string(&Ours { at, maybe }).unwrap();
                let theirs = serde_json::to_string(&Chrono { at, maybe }).unwrap();
                assert_eq!(ours, theirs);
            }
        }
        let ours = serde_json::to_string(&Ours {
            at: base,
            maybe: None,
        })
        .unwrap();
        assert_eq!(ours, r#"{"at":"2027-01-15T08:00:00Z","maybe":null}"#);
    }
}
