//! Logging: JSON lines (default) or human text on stderr, filtered by `ANTIX_LOG`. Messages are
//! constant strings; user-controlled values go in fields, which the JSON formatter escapes, so
//! a CR/LF in a header or model name cannot forge a log line.

use antix::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
