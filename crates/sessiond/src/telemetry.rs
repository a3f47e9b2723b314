use std::io::IsTerminal;

use sessiond_server::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Logs to stdout: human-readable on a terminal, JSON lines otherwise (or as configured).
/// `RUST_LOG` overrides the default `info` level.
pub fn init(format: Option<LogFormat>) {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .fmt_fields(crate::json_fields::JsonSpanFields)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
