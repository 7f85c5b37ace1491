//! Wire types (DTOs) for server functions. They compile to WASM and are the only shapes that
//! leave the server: a hash, a ciphertext or a password can never ride along by accident,
//! because nothing here has a field for one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMembership {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
}

/// The logged-in user, their organizations and the one currently selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub orgs: Vec<OrgMembership>,
    pub current_org: Option<Uuid>,
}

impl Me {
    pub fn current(&self) -> Option<&OrgMembership> {
        self.current_org
            .and_then(|id| self.orgs.iter().find(|o| o.id == id))
    }
}

/// What every page needs to know first: is the instance set up, and who is looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub initialized: bool,
    pub me: Option<Me>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Personal,
    OrgShared,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::Personal => "Personal",
            Scope::OrgShared => "Org-shared",
        }
    }
}

/// The base URL of an endpoint for each SDK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointUrls {
    pub openai: String,
    pub anthropic: String,
    pub gemini: String,
    pub multi: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSummary {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub owner_name: String,
    pub created_at: i64,
    pub archived_at: Option<i64>,
    pub requests_30d: i64,
    pub cost_billed_30d_nanos: i64,
    pub cost_estimated_30d_nanos: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointsPage {
    pub org_id: Uuid,
    pub org_name: String,
    pub is_admin: bool,
    pub endpoints: Vec<EndpointSummary>,
    pub personal_count: i64,
    pub personal_limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDetail {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub org_name: String,
    pub owner_name: String,
    pub created_at: i64,
    pub archived_at: Option<i64>,
    pub urls: EndpointUrls,
    pub can_manage: bool,
    pub can_duplicate: bool,
    /// Accepts the client's own provider keys and OAuth tokens (else virtual keys only).
    pub passthrough: bool,
    /// Whether the endpoint has agent sessions (the Activity tab is shown only then).
    pub has_sessions: bool,
    /// Fallback targets, one `provider/model[#credential]` per line.
    pub fallbacks: String,
    /// The endpoint's own trace retention in days (0: forever), none when it inherits.
    pub retention_days: Option<u32>,
    /// What it inherits: the organization's setting, else the instance's (0: forever).
    pub retention_inherited: u32,
}

/// A key's limits, money in nano-USD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimitsView {
    pub budget_daily_nanos: Option<i64>,
    pub budget_monthly_nanos: Option<i64>,
    pub budget_total_nanos: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub allowed_models: Vec<String>,
    pub allowed_endpoints: Vec<Uuid>,
    /// May call APIs whose cost Antix cannot meter, despite its limits.
    pub allow_unmetered: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpendView {
    pub day_nanos: i64,
    pub month_nanos: i64,
    pub total_nanos: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySummary {
    pub id: Uuid,
    pub name: String,
    pub display: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Past its expiry (decided on the server, so both renders agree).
    pub expired: bool,
    pub limits: KeyLimitsView,
    pub spend: KeySpendView,
    pub can_manage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointChoice {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysPage {
    pub keys: Vec<KeySummary>,
    pub can_create: bool,
    pub is_admin: bool,
    pub endpoints: Vec<EndpointChoice>,
}

/// An organization API token as the Members page lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenView {
    pub id: Uuid,
    pub name: String,
    pub display: String,
    pub can_write: bool,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The organization's budget alert settings and latest alerts (admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsPage {
    pub webhook_url: String,
    /// Like `50, 80, 100`.
    pub thresholds: String,
    /// Dollars, empty for none.
    pub org_monthly_budget: String,
    /// What deliveries are signed with (`X-Antix-Signature`).
    pub signing_secret: String,
    pub events: Vec<AlertEventView>,
}

/// One alert that fired, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEventView {
    pub id: Uuid,
    pub created_at: i64,
    pub message: String,
    /// `delivered`, `retrying`, `failed` or `not sent`.
    pub state: String,
    pub attempts: i64,
    pub detail: Option<String>,
}

/// How a test delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTest {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A new API token: the only time its secret leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub name: String,
    pub secret: String,
}

/// A new key: the only time its secret leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: Uuid,
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    pub id: Uuid,
    pub name: String,
    pub last4: String,
    pub base_url: Option<String>,
    pub weight: i64,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub enabled: bool,
    pub updated_at: i64,
    pub updated_by: Option<String>,
    /// Resting after failures until then (ms), when it is.
    pub resting_until: Option<i64>,
}

/// A provider and the organization's credentials for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCredentials {
    pub provider: String,
    pub label: String,
    pub credentials: Vec<CredentialView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsPage {
    pub providers: Vec<ProviderCredentials>,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub message: String,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
    pub is_me: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersPage {
    pub org_name: String,
    pub is_admin: bool,
    pub members: Vec<MemberView>,
    pub invites: Vec<InviteView>,
    pub max_personal_endpoints: i64,
    pub members_can_create_keys: bool,
    /// The organization's trace retention in days (0: forever), none when it follows the
    /// instance's default.
    pub trace_retention_days: Option<u32>,
    /// The instance's default (`ANTIX_TRACE_RETENTION_DAYS`; 0: forever).
    pub instance_retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteLink {
    pub url: String,
    pub email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteState {
    Valid,
    Used,
    Expired,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub state: InviteState,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub account_exists: bool,
    /// The e-mail of the user this browser is logged in as, if any.
    pub logged_in_as: Option<String>,
}

// ---- Observability ----

/// The Traces tab's filters, exactly as they appear in the page's URL query (empty = any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceQuery {
    /// `1h`, `24h`, `7d`, `30d`, `custom`, or empty for all time.
    pub range: String,
    /// Custom range bounds, `YYYY-MM-DDTHH:MM` in UTC (what `<input type=datetime-local>` sends).
    pub from: String,
    pub to: String,
    /// `virtual_key`, `byok` or `oauth`.
    pub auth: String,
    pub model: String,
    /// Virtual key id.
    pub key: String,
    /// `ok` or `error`.
    pub status: String,
    /// Substring searched in request and response bodies.
    pub q: String,
    /// Cursor of the page (from the previous page's `next`).
    pub after: String,
}

impl TraceQuery {
    pub const FIELDS: [&'static str; 9] = [
        "range", "from", "to", "auth", "model", "key", "status", "q", "after",
    ];

    pub fn get(&self, name: &str) -> &str {
        match name {
            "range" => &self.range,
            "from" => &self.from,
            "to" => &self.to,
            "auth" => &self.auth,
            "model" => &self.model,
            "key" => &self.key,
            "status" => &self.status,
            "q" => &self.q,
            "after" => &self.after,
            _ => "",
        }
    }

    pub fn set(&mut self, name: &str, value: String) {
        match name {
            "range" => self.range = value,
            "from" => self.from = value,
            "to" => self.to = value,
            "auth" => self.auth = value,
            "model" => self.model = value,
            "key" => self.key = value,
            "status" => self.status = value,
            "q" => self.q = value,
            "after" => self.after = value,
            _ => {}
        }
    }

    /// How many filters are set (the cursor is not a filter).
    pub fn active(&self) -> usize {
        Self::FIELDS
            .iter()
            .filter(|f| **f != "after" && **f != "from" && **f != "to" && !self.get(f).is_empty())
            .count()
    }
}

/// How a call authenticated, as the portal names it.
pub fn auth_label(mode: &str) -> &'static str {
    match mode {
        "virtual_key" => "Virtual Key",
        "byok" => "BYOK",
        "oauth" => "OAuth",
        _ => "None",
    }
}

/// One row of the Traces table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    pub id: Uuid,
    pub started_at: i64,
    pub auth_mode: String,
    pub key_id: Option<Uuid>,
    pub key_name: Option<String>,
    /// The visible prefix of a virtual key that was presented and refused.
    pub key_hint: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub method: String,
    pub path: String,
    pub status_code: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub is_stream: bool,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cost_nanos: Option<i64>,
    pub cost_estimated: bool,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub session_key: Option<String>,
    /// Where a body search matched, for search results.
    pub snippet: Option<Snippet>,
}

/// Text around a search match, split so the match can be highlighted (as text, never markup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    pub before: String,
    pub hit: String,
    pub after: String,
}

impl Snippet {
    /// The first case-insensitive (ASCII) occurrence of `needle` in `text`, with up to `context`
    /// bytes either side, cut on character boundaries. Linear in the text's length whatever the
    /// needle (both come from users: a naive search is quadratic on crafted input).
    #[cfg(feature = "ssr")]
    pub fn find(text: &str, needle: &str, context: usize) -> Option<Snippet> {
        let n = needle.as_bytes();
        if n.is_empty() || n.len() > text.len() {
            return None;
        }
        let folded = text.as_bytes().to_ascii_lowercase();
        let at = memchr::memmem::find(&folded, &n.to_ascii_lowercase())?;
        drop(folded);
        let end = at + n.len();
        if !text.is_char_boundary(at) || !text.is_char_boundary(end) {
            return None;
        }
        let mut start = at.saturating_sub(context);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        let mut stop = (end + context).min(text.len());
        while !text.is_char_boundary(stop) {
            stop -= 1;
        }
        // The text exactly as it is: the spaces beside the match belong to the sentence (the
        // page shows runs of whitespace as one space).
        Some(Snippet {
            before: format!("{}{}", if start > 0 { "…" } else { "" }, &text[start..at]),
            hit: text[at..end].to_owned(),
            after: format!(
                "{}{}",
                &text[end..stop],
                if stop < text.len() { "…" } else { "" }
            ),
        })
    }
}

impl TraceSummary {
    pub fn is_error(&self) -> bool {
        self.status_code >= 400 || self.outcome != "ok"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracesPage {
    pub rows: Vec<TraceSummary>,
    /// Cursor of the next (older) page.
    pub next: Option<String>,
    /// Models seen on the endpoint and keys used on it, for the filter strip.
    pub models: Vec<String>,
    pub keys: Vec<Choice>,
}

/// A call's cost by part, nano-USD, with the prices used (pico-USD per token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostView {
    pub total_nanos: i64,
    pub input_nanos: i64,
    pub output_nanos: i64,
    pub cache_read_nanos: i64,
    pub cache_write_nanos: i64,
    pub reasoning_nanos: i64,
    pub priced_as: String,
    pub price_input: u64,
    pub price_output: u64,
    pub price_cache_read: Option<u64>,
    pub price_cache_write_5m: Option<u64>,
    pub price_cache_write_1h: Option<u64>,
    pub price_reasoning: Option<u64>,
    pub tier_above: Option<u64>,
    pub catalog_version: String,
}

/// Everything the observation drawer shows about one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceDetail {
    pub summary: TraceSummary,
    pub wire: Option<String>,
    pub usage_source: String,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost: Option<CostView>,
    pub session_parent: Option<String>,
    pub response_id: Option<String>,
    /// Redacted header objects, as JSON text.
    pub request_headers: String,
    pub response_headers: String,
    /// Bodies as text (JSON for most calls; raw events for streams). `None`: not recorded.
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// A streamed response reassembled into the provider's non-streaming JSON.
    pub response_assembled: Option<String>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    /// The recorder kept only the first part of the body (the size is above).
    pub request_truncated: bool,
    pub response_truncated: bool,
    /// The drawer shows only the first part of a body this large.
    pub request_clipped: bool,
    pub response_clipped: bool,
    /// Each try at the provider, when there was more than one or the call was translated.
    #[serde(default)]
    pub attempts: Vec<AttemptView>,
}

/// One try at the provider, as the drawer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    pub provider: String,
    pub model: Option<String>,
    /// The credential's name, never its secret.
    pub credential: Option<String>,
    /// 0: no answer (the connection failed).
    pub status: u16,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// `anthropic→openai`, when the request was translated for this target.
    #[serde(default)]
    pub translated: Option<String>,
    #[serde(default)]
    pub fallback: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_billed_nanos: i64,
    pub cost_estimated_nanos: i64,
    pub unpriced: i64,
    /// Calls that needed another try at the provider.
    pub retried: i64,
    /// Calls answered by a fallback target.
    pub fell_back: i64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_billed_nanos += o.cost_billed_nanos;
        self.cost_estimated_nanos += o.cost_estimated_nanos;
        self.unpriced += o.unpriced;
        self.retried += o.retried;
        self.fell_back += o.fell_back;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    /// Midnight UTC, ms.
    pub day: i64,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// Filter value for the Traces tab (model name, key id, auth mode); empty when none.
    pub value: String,
    pub label: String,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// First day of the window (midnight UTC, ms); the window is 30 days up to today.
    pub since: i64,
    pub totals: Totals,
    /// One entry per day of the window, zeros included.
    pub days: Vec<DayTotals>,
    pub by_model: Vec<BreakdownRow>,
    pub by_key: Vec<BreakdownRow>,
    pub by_auth: Vec<BreakdownRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub key: String,
    pub parent: Option<String>,
    pub first_at: i64,
    pub last_end_at: i64,
    pub calls: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub preview: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsPage {
    pub sessions: Vec<SessionSummary>,
    /// `before` value for the next (older) page (an opaque cursor).
    pub next: Option<String>,
}

/// One inference call of a session, as a bar of the Gantt chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCall {
    pub id: Uuid,
    pub started_at: i64,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub model: Option<String>,
    pub status_code: i64,
    pub outcome: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_nanos: Option<i64>,
    pub cost_estimated: bool,
    pub is_stream: bool,
    /// The tools the model called in its answer (what the agent did before its next call).
    pub tool_calls: Vec<String>,
}

impl SessionCall {
    pub fn is_error(&self) -> bool {
        self.status_code >= 400 || self.outcome != "ok"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub session: SessionSummary,
    pub calls: Vec<SessionCall>,
    /// The session has more calls than the chart shows.
    pub truncated: bool,
    /// Sessions with the same parent (a main agent and its sub-agents), this one included.
    pub related: Vec<SessionSummary>,
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::Snippet;

    #[test]
    fn an_adversarial_needle_costs_one_pass() {
        // A naive search would compare ~60 K bytes at each of 4 M positions.
        let text = "a".repeat(4 << 20);
        let needle = format!("{}b", "A".repeat(60 << 10));
        assert!(Snippet::find(&text, &needle, 80).is_none());
        let hit = format!("{text}{needle}");
        assert!(Snippet::find(&hit, &needle, 80).is_some());
    }

    #[test]
    fn snippets_cut_on_characters() {
        let s = Snippet::find("héllo wörld, the Needle is here — ünïcode", "needle", 6).unwrap();
        assert_eq!(s.hit, "Needle");
        assert!(s.before.starts_with('…'));
        assert!(s.after.ends_with('…'));
        assert!(Snippet::find("abc", "abcd", 5).is_none());
        assert!(Snippet::find("<script>x</script>", "script", 100).is_some());
    }

    #[test]
    fn snippets_keep_the_spaces_beside_the_match() {
        let s = Snippet::find("Speed up our React dashboard today", "react", 80).unwrap();
        assert_eq!(
            format!("{}[{}]{}", s.before, s.hit, s.after),
            "Speed up our [React] dashboard today"
        );
    }
}
