//! Management operations: what the portal's server functions, the REST API (`/api/v1`) and the
//! CLI do to endpoints, keys, provider credentials, members and API tokens, with the rules written once. An adapter turns its
//! caller into an [`Actor`], its input into typed values, and a [`ManageError`] into its own
//! answer (a field message, a JSON error, an exit code).
//!
//! Whatever an actor may not see is [`ManageError::NotFound`], exactly like what does not exist.

use crate::domain::{ApiToken, FieldError, Membership, OrgId, Role, User};
use crate::store::StoreError;

pub mod alerts;
pub mod credentials;
pub mod endpoints;
pub mod keys;
pub mod members;
pub mod sessions;
pub mod tokens;

/// Who is acting: a signed-in user in one of their organizations, or an API token, which acts
/// for its organization with the rights of the admin who created it (read-only unless it may
/// write).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub membership: Membership,
    pub token: Option<ApiToken>,
}

impl Actor {
    pub fn portal(user: User, membership: Membership) -> Self {
        Self {
            user,
            membership,
            token: None,
        }
    }

    pub fn org(&self) -> OrgId {
        self.membership.org.id
    }

    pub fn is_admin(&self) -> bool {
        self.membership.role == Role::Admin
    }

    /// Refuses a change to a read-only token.
    pub fn may_write(&self) -> Result<(), ManageError> {
        match &self.token {
            Some(t) if !t.can_write => Err(ManageError::Forbidden(
                "This API token is read-only.".into(),
            )),
            _ => Ok(()),
        }
    }

    pub fn require_admin(&self) -> Result<(), ManageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ManageError::Forbidden(
                "Only organization admins can do this.".into(),
            ))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    /// Every bad field of the input at once.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The resource is in a state that does not allow this (an archived endpoint, say).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for ManageError {
    fn from(e: FieldError) -> Self {
        ManageError::Invalid(vec![e])
    }
}

impl ManageError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ManageError::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type Result<T, E = ManageError> = std::result::Result<T, E>;
