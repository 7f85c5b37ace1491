//! Users, the first administrator and organization, portal sessions and login throttling
//! records. (Members, roles and invitations are in [`super::members`].)

use sqlx::FromRow;

use super::{BeginWrite, Result, Store, StoreError, dispatch, dispatch_write};
use crate::crypto::TokenHash;
use crate::domain::{Membership, Millis, OrgId, Organization, Role, User, UserId};

#[derive(FromRow)]
pub(super) struct UserRow {
    id: UserId,
    email: String,
    name: String,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(FromRow)]
struct OrgRow {
    id: OrgId,
    name: String,
    created_at: i64,
    max_personal_endpoints: i64,
    members_can_create_keys: bool,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Self {
        Organization {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            max_personal_endpoints: r.max_personal_endpoints,
            members_can_create_keys: r.members_can_create_keys,
        }
    }
}

#[derive(FromRow)]
struct MembershipRow {
    #[sqlx(flatten)]
    org: OrgRow,
    role: String,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;
    fn try_from(r: MembershipRow) -> Result<Self> {
        let role = Role::parse(&r.role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {:?}", r.role)))?;
        Ok(Membership {
            org: r.org.into(),
            role,
        })
    }
}

/// What the first-run form (or `antix admin create`) supplies, already validated and hashed.
pub struct NewAdmin<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub org_name: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum FirstRunError {
    #[error("this instance already has an administrator")]
    AlreadyInitialized,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FirstRunError {
    fn from(e: sqlx::Error) -> Self {
        FirstRunError::Store(e.into())
    }
}

const ORG_COLUMNS: &str =
    "o.id, o.name, o.created_at, o.max_personal_endpoints, o.members_can_create_keys";

impl Store {
    /// Whether the first administrator has been created.
    pub async fn is_initialized(&self) -> Result<bool> {
        let n: i64 = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM instance")
                .fetch_one(pool)
                .await?
        });
        Ok(n > 0)
    }

    /// Creates the first administrator and their organization in one transaction, or nothing.
    /// The `instance` row's fixed primary key makes a second, concurrent attempt fail cleanly.
    pub async fn create_first_admin(
        &self,
        new: &NewAdmin<'_>,
    ) -> Result<(User, Organization), FirstRunError> {
        let now = crate::domain::now_ms();
        let user_id = UserId::new_v4();
        let org_id = OrgId::new_v4();
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let claimed = sqlx::query(
                "INSERT INTO instance (id, initialized_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Err(FirstRunError::AlreadyInitialized);
            }
            sqlx::query(
                "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(new.email)
            .bind(new.name)
            .bind(new.password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO organizations (id, name, created_at, max_personal_endpoints, members_can_create_keys) \
                 VALUES ($1, $2, $3, $4, FALSE)",
            )
            .bind(org_id)
            .bind(new.org_name)
            .bind(now)
            .bind(crate::domain::DEFAULT_MAX_PERSONAL_ENDPOINTS)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'admin', $3)",
            )
            .bind(org_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        let user = self.user(user_id).await?.ok_or(StoreError::NotFound)?;
        let org = self
            .organization(org_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((user, org))
    }

    /// Creates a user. A taken e-mail is `StoreError::Conflict`.
    pub async fn create_user(&self, email: &str, name: &str, password_hash: &str) -> Result<User> {
        let user = User {
            id: UserId::new_v4(),
            email: email.to_owned(),
            name: name.to_owned(),
            created_at: crate::domain::now_ms(),
        };
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user.id)
            .bind(&user.email)
            .bind(&user.name)
            .bind(password_hash)
            .bind(user.created_at)
            .execute(pool)
            .await?;
        });
        Ok(user)
    }

    /// Creates an organization with `admin` as its first administrator.
    pub async fn create_organization(&self, name: &str, admin: UserId) -> Result<Organization> {
        let org = Organization {
            id: OrgId::new_v4(),
            name: name.to_owned(),
            created_at: crate::domain::now_ms(),
            max_personal_endpoints: crate::domain::DEFAULT_MAX_PERSONAL_ENDPOINTS,
            members_can_create_keys: false,
        };
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO organizations (id, name, created_at, max_personal_endpoints, members_can_create_keys) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .bind(org.max_personal_endpoints)
            .bind(org.members_can_create_keys)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'admin', $3)",
            )
            .bind(org.id)
            .bind(admin)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(org)
    }

    /// Adds a user to an organization. Already a member is `StoreError::Conflict`.
    pub async fn add_membership(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(org)
            .bind(user)
            .bind(role.as_str())
            .bind(crate::domain::now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row: Option<UserRow> = dispatch!(self, |pool| {
            sqlx::query_as("SELECT id, email, name, created_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(User::from))
    }

    /// The user with this (normalized) e-mail and their password hash, for login.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let row: Option<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| (r.user.into(), r.password_hash)))
    }

    pub async fn organization(&self, id: OrgId) -> Result<Option<Organization>> {
        let row: Option<OrgRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Organization::from))
    }

    /// Every organization the user belongs to, with their role, oldest membership first.
    pub async fn memberships(&self, user: UserId) -> Result<Vec<Membership>> {
        let rows: Vec<MembershipRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {ORG_COLUMNS}, m.role FROM memberships m \
                 JOIN organizations o ON o.id = m.org_id \
                 WHERE m.user_id = $1 ORDER BY m.created_at, o.name"
            ))
            .bind(user)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Membership::try_from).collect()
    }

    /// The user's role in one organization, or `None` when they are not a member.
    pub async fn role_in(&self, user: UserId, org: OrgId) -> Result<Option<Role>> {
        let role: Option<String> = dispatch!(self, |pool| {
            sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2")
                .bind(user)
                .bind(org)
                .fetch_optional(pool)
                .await?
        });
        role.map(|r| Role::parse(&r).ok_or_else(|| StoreError::Corrupt(format!("role {r:?}"))))
            .transpose()
    }

    /// Records a portal session by the keyed hash of its cookie value.
    pub async fn create_session(
        &self,
        token_hash: &TokenHash,
        user: UserId,
        expires_at: Millis,
    ) -> Result<()> {
        let now = crate::domain::now_ms();
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $3)",
            )
            .bind(&token_hash[..])
            .bind(user)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The user behind an unexpired session.
    pub async fn session_user(&self, token_hash: &TokenHash, now: Millis) -> Result<Option<User>> {
        let row: Option<UserRow> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT u.id, u.email, u.name, u.created_at FROM sessions s \
                 JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(&token_hash[..])
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(User::from))
    }

    pub async fn delete_session(&self, token_hash: &TokenHash) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(&token_hash[..])
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn set_password_hash(&self, user: UserId, hash: &str) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user)
                .bind(hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends every session of a user (password change, removal from an organization).
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    pub async fn purge_expired_sessions(&self, now: Millis) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    pub async fn record_login_failure(&self, subject: &str, at: Millis) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("INSERT INTO login_failures (subject, failed_at) VALUES ($1, $2)")
                .bind(subject)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn login_failures_since(&self, subject: &str, since: Millis) -> Result<i64> {
        let n: i64 = dispatch!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM login_failures WHERE subject = $1 AND failed_at > $2",
            )
            .bind(subject)
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }

    pub async fn clear_login_failures(&self, subject: &str) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                .bind(subject)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn purge_login_failures(&self, before: Millis) -> Result<u64> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE failed_at <= $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
