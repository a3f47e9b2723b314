//! Timestamps on the wire: RFC 3339 in UTC (`2026-11-23T08:30:00.123Z`), exactly as
//! chrono's own `Serialize` writes them, but formatted into a string first. chrono's
//! `Serialize` goes through `fmt::Display`, and serde_json then escapes that output one
//! character at a time: measured at an eighth of a whole `GET /v1/session`'s CPU. The
//! common case (years 0 to 9999, no leap second) is written into a stack buffer, with no
//! allocation; anything else goes through chrono.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 32];
    match format(at, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`, with as many fraction digits as chrono's
/// `SecondsFormat::AutoSi` writes; `None` for years outside 0..=9999 and leap seconds,
/// which chrono writes differently.
pub(crate) fn format<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = Ascii { buf, len: 0 };
    out.digits(year, 4);
    out.byte(b'-');
    out.digits(at.month(), 2);
    out.byte(b'-');
    out.digits(at.day(), 2);
    out.byte(b'T');
    out.digits(at.hour(), 2);
    out.byte(b':');
    out.digits(at.minute(), 2);
    out.byte(b':');
    out.digits(at.second(), 2);
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((value, width)) = fraction {
        out.byte(b'.');
        out.digits(value, width);
    }
    out.byte(b'Z');
    let len = out.len;
    std::str::from_utf8(&buf[..len]).ok()
}

/// ASCII written into a fixed buffer (at most 30 bytes are ever written here).
struct Ascii<'b> {
    buf: &'b mut [u8; 32],
    len: usize,
}

impl Ascii<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` in decimal, zero-padded to `width` digits.
    fn digits(&mut self, value: u32, width: u32) {
        for place in (0..width).rev() {
            self.byte(b'0' + (value / 10u32.pow(place) % 10) as u8);
        }
    }
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

    #[test]
    fn writes_what_chrono_writes_at_the_edges() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let edges = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::from_timestamp(0, 0).unwrap(),
            DateTime::from_timestamp(-62_167_219_200, 1).unwrap(), // 0000-01-01
            DateTime::from_timestamp(-62_167_219_201, 0).unwrap(), // year -1
            DateTime::from_timestamp(253_402_300_799, 999_999_999).unwrap(), // 9999-12-31
            DateTime::from_timestamp(253_402_300_800, 0).unwrap(), // year 10000
            leap,
        ];
        for at in edges {
            let ours = serde_json::to_string(&Ours {
                at,
                maybe: Some(at),
            })
            .unwrap();
            let theirs = serde_json::to_string(&Chrono {
                at,
                maybe: Some(at),
            })
            .unwrap();
            assert_eq!(ours, theirs, "{at:?}");
        }
    }
}
