//! Settings: one typed struct, read from defaults, then an optional TOML file, then environment
//! variables (the environment wins). Every variable is declared once in [`VARS`], which is also
//! what `antix config` prints and what the README's table is checked against, so the documented
//! list and the parsed list cannot drift apart.
//!
//! Errors name the variable (or TOML key) and say what is wrong with the value; nothing is
//! silently defaulted when a value is present but invalid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

mod otel;
mod vars;
pub use otel::OtelSettings;
pub use vars::{VARS, Var};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

/// The variables read from the environment, a TOML file, or the defaults, as typed values.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub proxy_listen: Option<SocketAddr>,
    pub portal_serves_proxy: bool,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub database_url: DatabaseUrl,
    pub public_url: Url,
    pub data_dir: PathBuf,
    /// Raw text of the master key when given; `None` means "load or generate in data_dir".
    pub master_key: Option<secrecy::SecretString>,
    pub log: String,
    /// `None`: JSON for the server, text for the CLI's other commands.
    pub log_format: Option<LogFormat>,
    pub upstream: Upstreams,
    pub multi_routes: crate::providers::multi::Routes,
    pub timeouts: Timeouts,
    pub retries: Retries,
    pub limits: Limits,
    pub trace_retention_days: u32,
    pub session_gap: Duration,
    pub metrics: MetricsSettings,
    /// OpenTelemetry export; `None`: off.
    pub otel: Option<OtelSettings>,
    pub dev_mode: bool,
}

/// Where Prometheus may scrape `/metrics`: a listener of its own, or the main listeners with a
/// bearer token. Neither: not served.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    pub listen: Option<SocketAddr>,
    pub token: Option<secrecy::SecretString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(s) | DatabaseUrl::Postgres(s) => s,
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(s.to_owned()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Url::parse(s).map_err(|e| format!("not a valid postgres URL ({e})"))?;
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    /// The URL with any password replaced, for logs and the health route.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(s) => s.clone(),
            DatabaseUrl::Postgres(s) => match Url::parse(s) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("<redacted>"));
                    }
                    u.to_string()
                }
                Err(_) => "postgres://<unparseable>".into(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone)]
pub struct Upstreams {
    pub openai: Url,
    pub anthropic: Url,
    pub gemini: Url,
}

impl Upstreams {
    pub fn for_provider(&self, p: crate::domain::Provider) -> &Url {
        match p {
            crate::domain::Provider::OpenAi => &self.openai,
            crate::domain::Provider::Anthropic => &self.anthropic,
            crate::domain::Provider::Gemini => &self.gemini,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub shutdown: Duration,
    pub write: Duration,
    pub database: Duration,
}

/// Retries of a call (see `crate::gateway::retry`).
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub attempts: u32,
    pub deadline: Duration,
    pub backoff: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_body_bytes: u64,
    pub max_stored_body_bytes: u64,
    pub memory_budget_bytes: u64,
    pub max_spool_bytes: u64,
}

/// Where a value came from, so errors can point at it.
#[derive(Debug, Clone)]
enum Origin {
    Env(&'static str),
    File(String, &'static str),
    Default(&'static str, &'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::File(path, key) => write!(f, "`{key}` in {path}"),
            Origin::Default(key, env) => write!(f, "default value of {env} ({key})"),
        }
    }
}

/// Raw textual values keyed by `Var::key`, with their origin.
struct Raw {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl Raw {
    fn get(&self, key: &str) -> Option<&(String, Origin)> {
        self.values.get(key)
    }

    fn parse<T>(
        &self,
        key: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some((value, origin)) => {
                f(value.trim())
                    .map(Some)
                    .map_err(|message| ConfigError::Invalid {
                        origin: origin.to_string(),
                        message,
                    })
            }
        }
    }

    fn required<T>(
        &self,
        key: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(key, f)?.ok_or_else(|| ConfigError::Invalid {
            origin: key.to_owned(),
            message: "missing value".into(),
        })
    }
}

impl Settings {
    /// Reads settings from the process environment, plus the TOML file named by `ANTIX_CONFIG`
    /// (or `./antix.toml` when that exists).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::from_sources(&env)
    }

    /// Reads settings from an explicit environment map (tests use this; nothing global).
    pub fn from_sources(env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut raw = Raw {
            values: BTreeMap::new(),
        };
        for var in VARS {
            if let Some(d) = var.default {
                raw.values
                    .insert(var.key, (d.to_owned(), Origin::Default(var.key, var.env)));
            }
        }
        let file = match env.get("ANTIX_CONFIG") {
            Some(p) if !p.is_empty() => Some((PathBuf::from(p), true)),
            _ => Some((PathBuf::from("antix.toml"), false)),
        };
        if let Some((path, explicit)) = file {
            match std::fs::read_to_string(&path) {
                Ok(text) => load_toml(&mut raw, &path.display().to_string(), &text)?,
                Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ConfigError::File {
                        path: path.display().to_string(),
                        message: format!("cannot be read ({e}) (named by ANTIX_CONFIG)"),
                    });
                }
            }
        }
        for var in VARS {
            if let Some(v) = env.get(var.env) {
                raw.values
                    .insert(var.key, (v.clone(), Origin::Env(var.env)));
            }
        }
        Self::resolve(&raw)
    }

    fn resolve(raw: &Raw) -> Result<Self, ConfigError> {
        let listen: SocketAddr = raw.required("listen", |s| {
            s.parse()
                .map_err(|_| format!("`{s}` is not an address:port such as 127.0.0.1:3000"))
        })?;
        let database_url = raw.required("database_url", DatabaseUrl::parse)?;
        let public_url = raw
            .parse("public_url", |s| parse_http_url(s, false))?
            .map_or_else(
                || Url::parse(&format!("http://{listen}")),
                Ok::<Url, url::ParseError>,
            )
            .map_err(|e| ConfigError::Invalid {
                origin: "ANTIX_LISTEN".into(),
                message: e.to_string(),
            })?;
        let data_dir = raw.required("data_dir", |s| {
            if s.is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(PathBuf::from(s))
            }
        })?;
        let master_key = raw.parse("master_key", |s| {
            crate::crypto::MasterKey::parse(s).map(|_| secrecy::SecretString::from(s))
        })?;
        let log = raw.required("log", |s| Ok(s.to_owned()))?;
        let log_format = raw.parse("log_format", |s| match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(format!("`{s}` is neither `json` nor `text`")),
        })?;
        let upstream = Upstreams {
            openai: raw.required("upstream.openai", |s| parse_http_url(s, true))?,
            anthropic: raw.required("upstream.anthropic", |s| parse_http_url(s, true))?,
            gemini: raw.required("upstream.gemini", |s| parse_http_url(s, true))?,
        };
        let multi_routes = raw.required("multi.routes", crate::providers::multi::Routes::parse)?;
        let ms = |key: &'static str| -> Result<Duration, ConfigError> {
            raw.required(key, |s| {
                let n: u64 = s
                    .parse()
                    .map_err(|_| format!("`{s}` is not a whole number of milliseconds"))?;
                if n == 0 {
                    return Err("must be greater than 0".into());
                }
                Ok(Duration::from_millis(n))
            })
        };
        let timeouts = Timeouts {
            header: ms("timeouts.header_ms")?,
            connect: ms("timeouts.connect_ms")?,
            first_byte: ms("timeouts.first_byte_ms")?,
            idle: ms("timeouts.idle_ms")?,
            shutdown: ms("timeouts.shutdown_ms")?,
            write: ms("timeouts.write_ms")?,
            database: ms("timeouts.database_ms")?,
        };
        let retries = Retries {
            attempts: raw.required("retries.attempts", |s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=10).contains(n))
                    .ok_or_else(|| format!("`{s}` is not a number of tries from 1 to 10"))
            })?,
            deadline: ms("retries.deadline_ms")?,
            backoff: ms("retries.backoff_ms")?,
        };
        let bytes = |key: &'static str| -> Result<u64, ConfigError> {
            raw.required(key, |s| match s.parse::<u64>() {
                Ok(n) if n >= 1024 => Ok(n),
                Ok(_) => Err("must be at least 1024 bytes".into()),
                Err(_) => Err(format!("`{s}` is not a whole number of bytes")),
            })
        };
        let limits = Limits {
            max_request_body_bytes: bytes("limits.max_request_body_bytes")?,
            max_stored_body_bytes: bytes("limits.max_stored_body_bytes")?,
            memory_budget_bytes: bytes("limits.memory_budget_bytes")?,
            max_spool_bytes: bytes("limits.max_spool_bytes")?,
        };
        let proxy_listen = raw.parse("proxy_listen", |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| format!("`{s}` is not an address:port such as 127.0.0.1:3001"))
        })?;
        let portal_serves_proxy = raw.required("portal_serves_proxy", parse_bool)?;
        if !portal_serves_proxy && proxy_listen.is_none() {
            return Err(ConfigError::Invalid {
                origin: "ANTIX_PORTAL_SERVES_PROXY".into(),
                message:
                    "is false but ANTIX_PROXY_LISTEN is not set: nothing would serve the proxy"
                        .into(),
            });
        }
        let trusted_proxies = raw.required("trusted_proxies", |s| {
            s.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    c.parse::<ipnet::IpNet>()
                        .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            format!("`{c}` is not a CIDR such as 10.0.0.0/8 or an address")
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let trace_retention_days = raw.required("traces.retention_days", |s| {
            s.parse::<u32>()
                .map_err(|_| format!("`{s}` is not a whole number of days"))
        })?;
        let session_gap = raw.required("traces.session_gap_minutes", |s| {
            s.parse::<u64>()
                .ok()
                .filter(|m| *m > 0)
                .map(|m| Duration::from_secs(m * 60))
                .ok_or_else(|| format!("`{s}` is not a whole number of minutes above 0"))
        })?;
        let metrics = MetricsSettings {
            listen: raw.parse("metrics.listen", |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("`{s}` is not an address:port such as 127.0.0.1:9464"))
            })?,
            token: raw.parse("metrics.token", |s| {
                if s.len() < 16 {
                    Err(
                        "must be at least 16 characters (a guessable token would expose the \
                         metrics)"
                            .into(),
                    )
                } else {
                    Ok(secrecy::SecretString::from(s))
                }
            })?,
        };
        let otel = match raw.parse("otel.endpoint", otel::traces_url)? {
            None => None,
            Some(traces_url) => Some(OtelSettings {
                traces_url,
                headers: raw
                    .parse("otel.headers", otel::parse_headers)?
                    .unwrap_or_default(),
                service_name: raw.required("otel.service_name", |s| {
                    Some(s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| "must not be empty".to_owned())
                })?,
                capture_bodies: raw.required("otel.capture_bodies", parse_bool)?,
            }),
        };
        let dev_mode = raw.required("dev_mode", parse_bool)?;
        Ok(Settings {
            listen,
            proxy_listen,
            portal_serves_proxy,
            trusted_proxies,
            database_url,
            public_url,
            data_dir,
            master_key,
            log,
            log_format,
            upstream,
            multi_routes,
            timeouts,
            retries,
            limits,
            trace_retention_days,
            session_gap,
            metrics,
            otel,
            dev_mode,
        })
    }

    /// Whether portal cookies must carry `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public base URL without a trailing slash, for printing endpoint URLs.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true/false)")),
    }
}

fn parse_http_url(s: &str, base_only: bool) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("`{s}` is not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("`{s}` must be an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{s}` has no host"));
    }
    if base_only && (url.query().is_some() || url.fragment().is_some()) {
        return Err(format!("`{s}` must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{s}` must not contain credentials"));
    }
    Ok(url)
}

fn load_toml(raw: &mut Raw, path: &str, text: &str) -> Result<(), ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut flat = Vec::new();
    flatten("", &table, &mut flat);
    for (key, value) in flat {
        let Some(var) = VARS.iter().find(|v| v.key == key) else {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: format!("unknown key `{key}`"),
            });
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: format!("`{key}` must be a string, integer or boolean, not {other}"),
                });
            }
        };
        raw.values
            .insert(var.key, (text, Origin::File(path.to_owned(), var.key)));
    }
    Ok(())
}

fn flatten<'a>(prefix: &str, table: &'a toml::Table, out: &mut Vec<(String, &'a toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // Point at a file that cannot exist so a developer's ./antix.toml never leaks in.
        m.entry("ANTIX_CONFIG".into())
            .or_insert_with(|| "/nonexistent/antix-test.toml".into());
        m
    }

    #[test]
    fn defaults_resolve() {
        let mut e = env(&[]);
        e.remove("ANTIX_CONFIG");
        let s = Settings::resolve(&Raw {
            values: VARS
                .iter()
                .filter_map(|v| {
                    v.default
                        .map(|d| (v.key, (d.to_owned(), Origin::Default(v.key, v.env))))
                })
                .collect(),
        })
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.public_base(), "http://127.0.0.1:3000");
        assert!(matches!(s.database_url, DatabaseUrl::Sqlite(_)));
        assert!(!s.secure_cookies());
    }

    #[test]
    fn explicit_missing_config_file_is_an_error() {
        let err = Settings::from_sources(&env(&[])).unwrap_err();
        assert!(err.to_string().contains("ANTIX_CONFIG"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("antix.toml");
        std::fs::write(&cfg, "").unwrap();
        let cfg = cfg.to_str().unwrap();
        for (var, value, needle) in [
            ("ANTIX_LISTEN", "localhost", "address:port"),
            ("DATABASE_URL", "mysql://x", "sqlite:// or postgres://"),
            ("ANTIX_PUBLIC_URL", "ftp://x", "http:// or https://"),
            ("ANTIX_MASTER_KEY", "short", "32 bytes"),
            ("ANTIX_LOG_FORMAT", "xml", "json"),
            ("ANTIX_CONNECT_TIMEOUT_MS", "0", "greater than 0"),
            ("ANTIX_DEV_MODE", "maybe", "boolean"),
            ("ANTIX_UPSTREAM_OPENAI", "http://u:p@x", "credentials"),
        ] {
            let err = Settings::from_sources(&env(&[("ANTIX_CONFIG", cfg), (var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(var), "{var}: {err}");
            assert!(err.contains(needle), "{var}: {err}");
        }
    }

    #[test]
    fn toml_file_then_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("antix.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:4000\"\n[timeouts]\nconnect_ms = 1500\n[upstream]\nopenai = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        let cfg = cfg.to_str().unwrap();
        let s = Settings::from_sources(&env(&[("ANTIX_CONFIG", cfg)])).unwrap();
        assert_eq!(s.listen.port(), 4000);
        assert_eq!(s.timeouts.connect, Duration::from_millis(1500));
        assert_eq!(s.upstream.openai.as_str(), "http://127.0.0.1:9/");
        let s = Settings::from_sources(&env(&[
            ("ANTIX_CONFIG", cfg),
            ("ANTIX_LISTEN", "0.0.0.0:5000"),
        ]))
        .unwrap();
        assert_eq!(s.listen.port(), 5000);
    }

    #[test]
    fn toml_unknown_key_and_bad_value_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("antix.toml");
        std::fs::write(&cfg, "lisen = \"x\"\n").unwrap();
        let err = Settings::from_sources(&env(&[("ANTIX_CONFIG", cfg.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `lisen`"), "{err}");
        std::fs::write(&cfg, "[timeouts]\nidle_ms = \"soon\"\n").unwrap();
        let err = Settings::from_sources(&env(&[("ANTIX_CONFIG", cfg.to_str().unwrap())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`timeouts.idle_ms`"), "{err}");
    }

    #[test]
    fn postgres_password_is_redacted() {
        let u = DatabaseUrl::parse("postgres://antix:hunter2@db:5432/antix").unwrap();
        assert!(!u.redacted().contains("hunter2"));
    }
}

#[cfg(test)]
mod readme_tests {
    /// Every variable must be documented: the README's table is written by hand, so this keeps
    /// it from drifting away from [`super::VARS`].
    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for var in super::VARS {
            assert!(
                readme.contains(&format!("| `{}` | `{}` |", var.env, var.key)),
                "README.md lacks a table row for {} ({})",
                var.env,
                var.key
            );
        }
    }
}
