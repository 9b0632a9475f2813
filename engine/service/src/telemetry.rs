//! Structured logs through `tracing-subscriber`: JSON for machines, pretty for terminals,
//! filtered by `RUST_LOG` (default `info`). Logs go to stderr; stdout stays for command output.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable, multi-line.
    #[default]
    Pretty,
    /// Human-readable, one line per event.
    Compact,
}

/// Installs the global subscriber. Calling it again is harmless (the first one stays).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
        LogFormat::Compact => builder.compact().try_init(),
    };
}
