//! Domain types shared by the store, the gateway and the portal adapters: identifiers, roles,
//! scopes, providers and the plain records the store returns. No I/O here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn new_v4() -> Self { Self(Uuid::new_v4()) }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
    )*};
}

id_type!(
    OrgId,
    UserId,
    /// The secret part of an endpoint URL: always a random v4 UUID, never reissued.
    EndpointId,
    VirtualKeyId,
    /// UUIDv7, generated before the upstream call so retries of a write are idempotent and the
    /// ids sort by time for cursor pagination.
    TraceId,
    InviteId,
    /// One of an organization's provider credentials.
    CredentialId,
    /// An organization API token (the management REST API's credential).
    ApiTokenId,
);

impl TraceId {
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// A UUIDv7 for a trace that started at `ms` (the trace generator backdates traces).
    pub fn at(ms: Millis) -> Self {
        let ms = u64::try_from(ms).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            ms / 1000,
            ((ms % 1000) * 1_000_000) as u32,
        );
        Self(Uuid::new_v7(ts))
    }

    /// The smallest UUIDv7 of millisecond `ms`: every trace started at or after `ms` has an id
    /// at least this, every earlier one an id below it (v7 ids begin with their timestamp).
    pub fn floor(ms: Millis) -> Self {
        let ms = u64::try_from(ms).unwrap_or(0).min((1 << 48) - 1);
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        b[6] = 0x70;
        b[8] = 0x80;
        Self(Uuid::from_bytes(b))
    }
}

/// Milliseconds since the Unix epoch: the one time representation in the store, so SQLite and
/// Postgres compare, index and aggregate times identically.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds in a minute, an hour and a UTC day (a day has no leap seconds in Unix time).
pub const MINUTE_MS: Millis = 60_000;
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// Midnight UTC of the day `ms` falls in: the one day bucketing of limits, daily totals, the
/// Overview and retention.
pub fn day_start(ms: Millis) -> Millis {
    ms - ms.rem_euclid(DAY_MS)
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// A member's role in one organization.
    Role { Admin = "admin", Member = "member" }
);

text_enum!(
    /// Who can see an endpoint: its owner only, or every member of its organization.
    Scope { Personal = "personal", OrgShared = "org_shared" }
);

text_enum!(
    /// The upstream API family a request is sent to.
    Provider { OpenAi = "openai", Anthropic = "anthropic", Gemini = "gemini" }
);

text_enum!(
    /// How a proxied request authenticated.
    AuthMode { VirtualKey = "virtual_key", Byok = "byok", OAuth = "oauth" }
);

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream answered (any status) and the whole answer reached the client.
    Ok,
    /// The gateway refused the request (authentication, limits, bad input, unknown endpoint).
    Rejected,
    /// The upstream could not be reached or answered nothing usable before headers.
    UpstreamError,
    /// The upstream's response broke off mid-body (reset, malformed stream).
    UpstreamCut,
    /// A connect, first-byte or idle timeout fired.
    Timeout,
    /// The client went away before the response was complete.
    ClientDisconnected,
    /// The gateway shut down before the response was complete.
    ShutdownAborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamCut => "upstream_cut",
            Outcome::Timeout => "timeout",
            Outcome::ClientDisconnected => "client_disconnected",
            Outcome::ShutdownAborted => "shutdown_aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: Millis,
    /// At most this many personal endpoints per user in this organization.
    pub max_personal_endpoints: i64,
    /// Whether members may create virtual keys for their own personal use.
    pub members_can_create_keys: bool,
}

/// Documented default for `Organization::max_personal_endpoints`.
pub const DEFAULT_MAX_PERSONAL_ENDPOINTS: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org: Organization,
    pub role: Role,
}

/// An organization API token: acts for `org_id` with the rights of the admin who created it,
/// read-only unless `can_write`. The token itself is shown once; `display` is its recognisable
/// start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub org_id: OrgId,
    pub created_by: UserId,
    pub name: String,
    pub display: String,
    pub can_write: bool,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub org_id: OrgId,
    pub owner_id: UserId,
    pub scope: Scope,
    pub name: String,
    pub created_at: Millis,
    pub archived_at: Option<Millis>,
    /// Whether the endpoint passes through the client's own provider keys and OAuth tokens;
    /// `false`: Antix virtual keys only.
    pub passthrough: bool,
    /// Targets tried in order when the call's own target fails (see [`Fallback`]).
    pub fallbacks: Vec<Fallback>,
}

/// A target a call falls back to when its own fails (rate-limited, down, overloaded, the model
/// unavailable or its context too small), after its retries: a provider's model, optionally on
/// one named credential of the organization. Written `provider/model` or
/// `provider/model#credential` in the portal and in the `X-Antix-Fallbacks` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    pub provider: Provider,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// At most this many fallbacks per endpoint or request.
pub const MAX_FALLBACKS: usize = 5;

impl Fallback {
    /// Parses one `provider/model[#credential]`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let Some((provider, rest)) = s.split_once('/') else {
            return Err(format!(
                "`{s}`: write provider/model, e.g. anthropic/claude-haiku-4-5"
            ));
        };
        let provider = Provider::parse(&provider.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("`{s}`: the provider must be openai, anthropic or gemini"))?;
        let (model, credential) = match rest.split_once('#') {
            Some((m, c)) => (m.trim(), Some(c.trim())),
            None => (rest.trim(), None),
        };
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.is_empty() || model.len() > 200 {
            return Err(format!("`{s}`: name a model (at most 200 characters)"));
        }
        if model
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | ',' | ';'))
        {
            return Err(format!(
                "`{s}`: the model name has a character models never have"
            ));
        }
        if gemini_model_breaks_path(provider, model) {
            return Err(format!("`{s}`: a Gemini model name has no `/` or `:`"));
        }
        let credential = match credential {
            Some(c)
                if c.is_empty() || c.chars().count() > 80 || c.chars().any(char::is_control) =>
            {
                return Err(format!(
                    "`{s}`: after `#`, name one of the organization's credentials"
                ));
            }
            c => c.map(str::to_owned),
        };
        Ok(Fallback {
            provider,
            model: model.to_owned(),
            credential,
        })
    }

    /// Parses a list, separated by commas or new lines; `none` is the empty list. At most
    /// [`MAX_FALLBACKS`], each once.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let items: Vec<&str> = raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.len() == 1 && items[0].eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        if items.len() > MAX_FALLBACKS {
            return Err(format!("At most {MAX_FALLBACKS} fallbacks."));
        }
        let mut out: Vec<Fallback> = Vec::with_capacity(items.len());
        for item in items {
            let f = Fallback::parse(item)?;
            if out.contains(&f) {
                return Err(format!("`{f}` is listed twice."));
            }
            out.push(f);
        }
        Ok(out)
    }
}

/// A Gemini model is a path segment: nothing in its name may leave it.
fn gemini_model_breaks_path(provider: Provider, model: &str) -> bool {
    provider == Provider::Gemini && model.contains(['/', ':', '%'])
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)?;
        if let Some(c) = &self.credential {
            write!(f, "#{c}")?;
        }
        Ok(())
    }
}

/// Limits set on a virtual key. `None` and empty lists mean "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    pub budget_daily_nanos: Option<i64>,
    pub budget_monthly_nanos: Option<i64>,
    pub budget_total_nanos: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    /// Glob patterns (`*` wildcard) of models the key may call.
    pub allowed_models: Vec<String>,
    pub allowed_endpoints: Vec<EndpointId>,
    /// May use APIs the gateway cannot meter (fine-tuning, vector stores, realtime sessions…)
    /// although the key has a budget or a model allow-list: spend there is not counted.
    #[serde(default)]
    pub allow_unmetered: bool,
}

impl KeyLimits {
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|p| glob_match(p, model))
    }

    pub fn allows_endpoint(&self, endpoint: EndpointId) -> bool {
        self.allowed_endpoints.is_empty() || self.allowed_endpoints.contains(&endpoint)
    }

    /// Whether every call must be metered or checked before it goes out: a budget, a model
    /// allow-list or a token rate limit can only hold if the gateway knows what a call is.
    pub fn limited(&self) -> bool {
        self.budget_daily_nanos.is_some()
            || self.budget_monthly_nanos.is_some()
            || self.budget_total_nanos.is_some()
            || self.tpm.is_some()
            || !self.allowed_models.is_empty()
    }
}

/// `*` matches any run of characters; everything else matches itself (case-sensitive, as model
/// names are).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// A virtual key as stored: never the key itself, only its display form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualKey {
    pub id: VirtualKeyId,
    pub org_id: OrgId,
    pub created_by: UserId,
    pub name: String,
    /// `sk-vk-AbCd…wxyz`
    pub display: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub limits: KeyLimits,
}

impl VirtualKey {
    /// Why the key cannot be used at `now`, if it cannot.
    pub fn unusable_reason(&self, now: Millis) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("expired")
        } else {
            None
        }
    }
}

/// Field-level validation failure: which input, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Lower-cases and checks an e-mail address. Deliberately permissive (one `@`, a dot in the
/// domain, no spaces): the only real check of an address is mail reaching it.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(FieldError::new(
            "email",
            "Enter an e-mail address like name@example.com.",
        ))
    }
}

/// Passwords: at least 10 characters and at most 256 (argon2 input is bounded to keep a login
/// request from costing unbounded CPU).
pub fn validate_password(p: &str) -> Result<(), FieldError> {
    let n = p.chars().count();
    if n < 10 {
        Err(FieldError::new("password", "Use at least 10 characters."))
    } else if n > 256 {
        Err(FieldError::new("password", "Use at most 256 characters."))
    } else {
        Ok(())
    }
}

/// Display names of organizations, endpoints, keys: trimmed, 1–80 characters, no control
/// characters (they would forge lines in logs and break layouts).
pub fn validate_name(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(FieldError::new(field, "Enter a name."));
    }
    if s.chars().count() > 80 {
        return Err(FieldError::new(field, "Use at most 80 characters."));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(field, "Remove control characters."));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_parse_and_print() {
        let list =
            Fallback::parse_list("anthropic/claude-haiku-4-5, gemini/models/gemini-2.5-flash\nOpenAI/openrouter/llama-3#backup")
                .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].model, "gemini-2.5-flash");
        assert_eq!(list[2].provider, Provider::OpenAi);
        assert_eq!(list[2].model, "openrouter/llama-3");
        assert_eq!(list[2].credential.as_deref(), Some("backup"));
        let printed: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            Fallback::parse_list(&printed.join(",")).unwrap(),
            list,
            "round trip"
        );
        assert_eq!(Fallback::parse_list(" none ").unwrap(), vec![]);
        assert_eq!(Fallback::parse_list("").unwrap(), vec![]);
        for bad in [
            "claude-haiku",
            "mistral/large",
            "openai/",
            "openai/gpt 4",
            "gemini/a:b",
            "gemini/../x",
            "openai/gpt-4o#",
            "openai/a,openai/a",
            "openai/a,openai/b,openai/c,openai/d,openai/e,openai/f",
        ] {
            assert!(Fallback::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Provider::parse("openai"), Some(Provider::OpenAi));
        assert_eq!(Provider::parse("OpenAI"), None);
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "a b@x.io", "a@x", "a@.x", "a@x.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(validate_name("name", "  Acme  ").unwrap(), "Acme");
        assert!(validate_name("name", " ").is_err());
        assert!(validate_name("name", "a\nb").is_err());
        assert!(validate_name("name", &"x".repeat(81)).is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough!").is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("claude-*-4-5", "claude-sonnet-4-5"));
        assert!(!glob_match("claude-*-4-5", "claude-sonnet-4-5-2025"));
        assert!(glob_match("gpt-4o", "gpt-4o"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        let l = KeyLimits {
            allowed_models: vec!["gpt-*".into()],
            ..Default::default()
        };
        assert!(l.allows_model("gpt-4.1") && !l.allows_model("claude-haiku-4-5"));
        assert!(KeyLimits::default().allows_model("x"));
    }

    #[test]
    fn trace_ids_sort_by_time() {
        let a = TraceId::new_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let cut = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = TraceId::new_v7();
        assert!(a < b);
        assert!(a < TraceId::floor(cut) && TraceId::floor(cut) <= b);
        assert_eq!(TraceId::floor(cut).0.get_version_num(), 7);
    }
}

/// One try at a call's upstream, as its trace shows it (a call with retries or fallbacks has
/// several; the last is the answer the client got).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub provider: String,
    pub model: Option<String>,
    /// The organization credential's name (never its secret); none for passthrough callers.
    pub credential: Option<String>,
    /// The upstream's status, 0 when no answer came (a connection that failed).
    pub status: u16,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The shape conversion made for this target (`anthropic→openai`), when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated: Option<String>,
    /// A fallback target (not the endpoint's first).
    #[serde(default)]
    pub fallback: bool,
    /// A fallback passed over without a try (no credential for it, say): `error` says why.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// The tries a call made at the provider (at least one), skipped fallbacks not counted.
pub fn tries(attempts: &[Attempt]) -> usize {
    attempts.iter().filter(|a| !a.skipped).count().max(1)
}

/// Whether a call was answered by a fallback target (its last try was one).
pub fn served_by_fallback(attempts: &[Attempt]) -> bool {
    attempts
        .iter()
        .rev()
        .find(|a| !a.skipped)
        .is_some_and(|a| a.fallback)
}
