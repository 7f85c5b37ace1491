//! The table of every configuration variable (see the module above).

/// One configuration variable: its TOML key (dotted for tables), its environment variable, its
/// default as text (parsed like any other value), and a one-line description.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub key: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

/// Every configuration variable the product reads. Order is the order of the README table.
pub const VARS: &[Var] = &[
    Var {
        key: "listen",
        env: "ANTIX_LISTEN",
        default: Some("127.0.0.1:3000"),
        help: "Address and port the server listens on.",
    },
    Var {
        key: "database_url",
        env: "DATABASE_URL",
        default: Some("sqlite://./data/antix.db"),
        help: "sqlite://PATH (created if missing) or postgres://USER@HOST:PORT/DB.",
    },
    Var {
        key: "proxy_listen",
        env: "ANTIX_PROXY_LISTEN",
        default: None,
        help: "A second address serving only the proxy routes (and /healthz), e.g. to give the \
               proxy its own host name, apart from the portal's origin.",
    },
    Var {
        key: "portal_serves_proxy",
        env: "ANTIX_PORTAL_SERVES_PROXY",
        default: Some("true"),
        help: "Whether the portal's address also serves the proxy routes. Set to false with \
               ANTIX_PROXY_LISTEN to keep proxied responses off the portal's origin entirely.",
    },
    Var {
        key: "trusted_proxies",
        env: "ANTIX_TRUSTED_PROXIES",
        default: Some(""),
        help: "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For / Forwarded \
               headers give the client's address (for login throttling). Empty: the TCP peer is \
               the client.",
    },
    Var {
        key: "public_url",
        env: "ANTIX_PUBLIC_URL",
        default: None,
        help: "Base URL users reach the server at; used to print endpoint URLs and to decide \
               whether cookies are Secure. Default: http://<listen>.",
    },
    Var {
        key: "data_dir",
        env: "ANTIX_DATA_DIR",
        default: Some("./data"),
        help: "Folder for the SQLite file, the generated master key and the trace spool.",
    },
    Var {
        key: "master_key",
        env: "ANTIX_MASTER_KEY",
        default: None,
        help: "32 random bytes, base64 or hex, from which every encryption and hashing key is \
               derived. When unset, one is generated into <data_dir>/master.key with a warning.",
    },
    Var {
        key: "log",
        env: "ANTIX_LOG",
        default: Some("info"),
        help: "Log filter (tracing EnvFilter syntax, e.g. `info,antix=debug`).",
    },
    Var {
        key: "log_format",
        env: "ANTIX_LOG_FORMAT",
        default: None,
        help: "`json` (one object per line) or `text`. Unset: `json` for the server, `text` for \
               the other commands (they talk to a person).",
    },
    Var {
        key: "upstream.openai",
        env: "ANTIX_UPSTREAM_OPENAI",
        default: Some("https://api.openai.com"),
        help: "Base URL of the OpenAI API (point it at the mock provider for tests and demos).",
    },
    Var {
        key: "upstream.anthropic",
        env: "ANTIX_UPSTREAM_ANTHROPIC",
        default: Some("https://api.anthropic.com"),
        help: "Base URL of the Anthropic API.",
    },
    Var {
        key: "upstream.gemini",
        env: "ANTIX_UPSTREAM_GEMINI",
        default: Some("https://generativelanguage.googleapis.com"),
        help: "Base URL of the Gemini API.",
    },
    Var {
        key: "multi.routes",
        env: "ANTIX_MULTI_ROUTES",
        default: Some(""),
        help: "Extra model-prefix routes for the `multi` provider, checked before the built-in \
               table: `prefix=provider,…` (e.g. `llama-=openai`).",
    },
    Var {
        key: "timeouts.connect_ms",
        env: "ANTIX_CONNECT_TIMEOUT_MS",
        default: Some("10000"),
        help: "Upstream TCP+TLS connect timeout.",
    },
    Var {
        key: "timeouts.first_byte_ms",
        env: "ANTIX_FIRST_BYTE_TIMEOUT_MS",
        default: Some("600000"),
        help: "Time allowed from sending the request to the upstream's response headers.",
    },
    Var {
        key: "timeouts.idle_ms",
        env: "ANTIX_IDLE_TIMEOUT_MS",
        default: Some("300000"),
        help: "Longest silence allowed inside a response body (streams are never cut for length).",
    },
    Var {
        key: "timeouts.header_ms",
        env: "ANTIX_HEADER_TIMEOUT_MS",
        default: Some("30000"),
        help: "Time a client gets to send its request headers (slow or silent connections are \
               closed).",
    },
    Var {
        key: "timeouts.shutdown_ms",
        env: "ANTIX_SHUTDOWN_TIMEOUT_MS",
        default: Some("30000"),
        help: "On SIGTERM, how long in-flight requests may finish before they are cut.",
    },
    Var {
        key: "timeouts.write_ms",
        env: "ANTIX_WRITE_TIMEOUT_MS",
        default: Some("60000"),
        help: "Longest a write to a client may wait (a client that stops reading is cut off).",
    },
    Var {
        key: "timeouts.database_ms",
        env: "ANTIX_DATABASE_TIMEOUT_MS",
        default: Some("3000"),
        help: "Deadline of each database query on the request path (key, endpoint and \
               credential lookups, budget admission); past it the request gets a 503.",
    },
    Var {
        key: "retries.attempts",
        env: "ANTIX_RETRY_ATTEMPTS",
        default: Some("3"),
        help: "Tries per call (1: no retries) when the provider answers 429, 5xx or 529, or \
               cannot be reached, before anything reached the client.",
    },
    Var {
        key: "retries.deadline_ms",
        env: "ANTIX_RETRY_DEADLINE_MS",
        default: Some("30000"),
        help: "Retries and fallbacks stop once a call has spent this long.",
    },
    Var {
        key: "retries.backoff_ms",
        env: "ANTIX_RETRY_BACKOFF_MS",
        default: Some("250"),
        help: "First wait before retrying on the same credential (doubled each time, with \
               jitter; a provider's Retry-After wins).",
    },
    Var {
        key: "limits.memory_budget_bytes",
        env: "ANTIX_MEMORY_BUDGET_BYTES",
        default: Some("402653184"),
        help: "Bytes of request and response bodies the proxy may hold at once (in flight and \
               queued for recording). Past it new proxy requests get a 503 with Retry-After. \
               The default suits a host with 1 GiB of memory.",
    },
    Var {
        key: "limits.max_spool_bytes",
        env: "ANTIX_MAX_SPOOL_BYTES",
        default: Some("1073741824"),
        help: "Disk the trace spool may use while the database is away; past it traces are \
               kept without their bodies and /healthz reports `degraded`.",
    },
    Var {
        key: "limits.max_request_body_bytes",
        env: "ANTIX_MAX_REQUEST_BODY_BYTES",
        default: Some("67108864"),
        help: "Largest request body the proxy forwards (413 beyond it, streamed bodies included).",
    },
    Var {
        key: "limits.max_stored_body_bytes",
        env: "ANTIX_MAX_STORED_BODY_BYTES",
        default: Some("4194304"),
        help: "Request or response bytes kept per trace; larger bodies are forwarded in full \
               but stored truncated and flagged.",
    },
    Var {
        key: "traces.retention_days",
        env: "ANTIX_TRACE_RETENTION_DAYS",
        default: Some("0"),
        help: "Delete traces older than this many days (0 keeps them forever): the default for \
               organizations and endpoints without a retention of their own (set in the portal). \
               Daily totals are kept.",
    },
    Var {
        key: "traces.session_gap_minutes",
        env: "ANTIX_SESSION_GAP_MINUTES",
        default: Some("30"),
        help: "A conversation recognised only by its first prompt (no client session id) that \
               starts again after this many idle minutes is a new session.",
    },
    Var {
        key: "metrics.listen",
        env: "ANTIX_METRICS_LISTEN",
        default: None,
        help: "An address (e.g. 127.0.0.1:9464) serving Prometheus metrics at /metrics, apart \
               from the public listeners. Unset: no metrics listener.",
    },
    Var {
        key: "metrics.token",
        env: "ANTIX_METRICS_TOKEN",
        default: None,
        help: "When set (16 characters or more), /metrics is also served on the main listeners \
               to scrapers that send `Authorization: Bearer <token>`. Unset: /metrics is not \
               served there.",
    },
    Var {
        key: "otel.endpoint",
        env: "ANTIX_OTEL_ENDPOINT",
        default: None,
        help: "An OpenTelemetry collector's OTLP/HTTP URL (e.g. http://collector:4318): each \
               recorded call is exported as a span with gen_ai.* attributes. Unset: no export.",
    },
    Var {
        key: "otel.headers",
        env: "ANTIX_OTEL_HEADERS",
        default: None,
        help: "Headers sent with every export, key=value,key2=value2 (a vendor's API key).",
    },
    Var {
        key: "otel.service_name",
        env: "ANTIX_OTEL_SERVICE_NAME",
        default: Some("antix"),
        help: "The service.name of the exported spans.",
    },
    Var {
        key: "otel.capture_bodies",
        env: "ANTIX_OTEL_CAPTURE_BODIES",
        default: Some("false"),
        help: "Also export request and response bodies (as recorded, secrets redacted) as span \
               events.",
    },
    Var {
        key: "dev_mode",
        env: "ANTIX_DEV_MODE",
        default: Some("false"),
        help: "Allows http:// and loopback custom provider base URLs and alert webhooks. Never \
               enable in production.",
    },
];
