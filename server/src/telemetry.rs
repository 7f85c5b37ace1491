//! Logging on stderr, filtered by `ANTIX_LOG`: JSON lines for the server (what log collectors
//! read), human text for the CLI's other commands (a person reads them), unless
//! `ANTIX_LOG_FORMAT` says otherwise. Messages are constant strings; user-controlled values go
//! in fields, which the JSON formatter escapes, so a CR/LF in a header or model name cannot forge
//! a log line.

use antix::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

/// Who the logs are for, when `ANTIX_LOG_FORMAT` does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Machine,
    Person,
}

pub fn init(settings: &Settings, reader: Reader) {
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = settings.log_format.unwrap_or(match reader {
        Reader::Machine => LogFormat::Json,
        Reader::Person => LogFormat::Text,
    });
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
