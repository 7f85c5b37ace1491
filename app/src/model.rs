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
