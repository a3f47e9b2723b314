//! The JSON log format's span fields, written straight into the span's text.
//!
//! `tracing_subscriber`'s `JsonFields` collects a span's fields into a map of JSON values
//! and serialises that: every request opens a span (its id, method and path), and that
//! was 15 % of a token check's instructions. The JSON event formatter reads the stored
//! text back as a JSON object whenever a line is written inside the span, so any valid
//! object with the same keys and values logs the same line; a key recorded again later
//! is appended and, as with `JsonFields`, the later value wins when it is read back.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'writer> FormatFields<'writer> for JsonSpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Written whole at the end: the span's text then grows once, not at every field.
        let mut text = String::with_capacity(160);
        let mut visitor = Visitor::new(&mut text);
        fields.record(&mut visitor);
        visitor.finish()?;
        writer.write_str(&text)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        let mut added = String::new();
        let mut visitor = Visitor::new(&mut added);
        fields.record(&mut visitor);
        visitor.finish()?;
        if added.len() > 2 {
            // `{…}` + `{…}` = `{…,…}`
            current.fields.pop();
            current.fields.push(',');
            current.fields.push_str(&added[1..]);
        }
        Ok(())
    }
}

struct Visitor<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: Write> Visitor<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
        }
    }

    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_char(if self.first { '{' } else { ',' })?;
        self.first = false;
        string(self.out, field.name())?;
        self.out.write_char(':')
    }

    fn value(&mut self, field: &Field, write: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| write(self.out));
        }
    }

    fn finish(self) -> fmt::Result {
        self.result?;
        self.out.write_str(if self.first { "{}" } else { "}" })
    }
}

impl<W: Write> Visit for Visitor<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, |out| string(out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json: a number that JSON cannot hold is null.
        if value.is_finite() {
            let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
            self.value(field, |out| out.write_str(&text));
        } else {
            self.value(field, |out| out.write_str("null"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = value.to_string();
        self.value(field, |out| string(out, &text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.value(field, |out| string(out, &text));
    }
}

/// A JSON string literal.
fn string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut plain = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // Escaped bytes are ASCII, so `i` is on a character boundary.
        out.write_str(&text[plain..i])?;
        if escaped.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escaped)?;
        }
        plain = i + 1;
    }
    out.write_str(&text[plain..])?;
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(ours: bool) -> String {
        let buffer = Buffer::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .without_time()
            .json()
            .flatten_event(true);
        let log = || {
            let span = tracing::info_span!("request", request_id = "r-1", method = %"GET",
                path = "/v1/\"odd\"\\\n\u{1}é", n = 3u64, m = -4i64, b = true, f = 1.5f64,
                later = tracing::field::Empty, twice = "first");
            let _entered = span.enter();
            tracing::info!(x = 1, "inside");
            span.record("later", "now");
            span.record("twice", "second");
            tracing::info!("after record");
            let inner = tracing::info_span!("inner", e = ?Some("dbg"));
            let _inner = inner.enter();
            tracing::warn!("nested");
        };
        if ours {
            tracing::subscriber::with_default(builder.fmt_fields(JsonSpanFields).finish(), log);
        } else {
            tracing::subscriber::with_default(builder.finish(), log);
        }
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_those_of_json_fields() {
        let (ours, theirs) = (lines(true), lines(false));
        assert_eq!(ours.lines().count(), 3, "{ours}");
        assert_eq!(ours, theirs);
    }
}
