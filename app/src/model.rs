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

/// A new key: the only time its secret leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: Uuid,
    pub name: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    pub provider: String,
    pub label: String,
    pub configured: bool,
    pub last4: Option<String>,
    pub base_url: Option<String>,
    pub updated_at: Option<i64>,
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsPage {
    pub providers: Vec<CredentialView>,
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
