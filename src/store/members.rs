//! An organization's members, their roles (never fewer than one admin), invitations and the
//! organization's settings.

use sqlx::FromRow;

use super::accounts::UserRow;
use super::{BeginWrite, Result, Store, StoreError, dispatch, dispatch_write};
use crate::crypto::TokenHash;
use crate::domain::{Millis, OrgId, Role, User, UserId};

/// A member of an organization, as the Members page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: Millis,
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("an organization must keep at least one admin")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MembershipError {
    fn from(e: sqlx::Error) -> Self {
        MembershipError::Store(e.into())
    }
}

/// A pending invitation to join an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: crate::domain::InviteId,
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    pub created_by: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub accepted_at: Option<Millis>,
}

#[derive(FromRow)]
struct InviteRow {
    id: crate::domain::InviteId,
    org_id: OrgId,
    email: String,
    role: String,
    created_by: UserId,
    created_at: i64,
    expires_at: i64,
    accepted_at: Option<i64>,
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;
    fn try_from(r: InviteRow) -> Result<Self> {
        Ok(Invite {
            id: r.id,
            org_id: r.org_id,
            email: r.email,
            role: Role::parse(&r.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", r.role)))?,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            accepted_at: r.accepted_at,
        })
    }
}

const INVITE_COLUMNS: &str =
    "id, org_id, email, role, created_by, created_at, expires_at, accepted_at";

impl Store {
    pub async fn members(&self, org: OrgId) -> Result<Vec<Member>> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            role: String,
            joined_at: i64,
        }
        let rows: Vec<Row> = dispatch!(self, |pool| {
            sqlx::query_as(
                "SELECT u.id, u.email, u.name, u.created_at, m.role, m.created_at AS joined_at \
                 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 \
                 ORDER BY m.created_at, u.email",
            )
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(Member {
                    user: r.user.into(),
                    role: Role::parse(&r.role)
                        .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", r.role)))?,
                    joined_at: r.joined_at,
                })
            })
            .collect()
    }

    /// Changes a member's role. Demoting the organization's last admin is refused; on Postgres
    /// the admins' rows are locked so two admins demoting each other cannot both succeed.
    pub async fn set_role(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
    ) -> Result<(), MembershipError> {
        let lock = self.admin_lock_sql();
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let admins: Vec<UserId> = sqlx::query_scalar(lock)
                .bind(org)
                .fetch_all(&mut *tx)
                .await?;
            if role != Role::Admin && admins.len() <= 1 && admins.contains(&user) {
                return Err(MembershipError::LastAdmin);
            }
            let n =
                sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
                    .bind(org)
                    .bind(user)
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if n == 0 {
                return Err(MembershipError::Store(StoreError::NotFound));
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a member (never the last admin), ends their portal sessions, and revokes the
    /// virtual keys they created in this organization: keys follow their creator out.
    pub async fn remove_member(
        &self,
        org: OrgId,
        user: UserId,
        at: Millis,
    ) -> Result<(), MembershipError> {
        let lock = self.admin_lock_sql();
        dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let admins: Vec<UserId> = sqlx::query_scalar(lock)
                .bind(org)
                .fetch_all(&mut *tx)
                .await?;
            if admins.len() <= 1 && admins.contains(&user) {
                return Err(MembershipError::LastAdmin);
            }
            let n = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(MembershipError::Store(StoreError::NotFound));
            }
            let revoked: Vec<crate::domain::VirtualKeyId> = sqlx::query_scalar(
                "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE org_id = $1 AND created_by = $2 RETURNING id",
            )
            .bind(org)
            .bind(user)
            .bind(at)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            for id in revoked {
                self.cache.forget_key(id);
            }
        });
        Ok(())
    }

    fn admin_lock_sql(&self) -> &'static str {
        match self.backend {
            super::Backend::Postgres(_) => {
                "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'admin' FOR UPDATE"
            }
            super::Backend::Sqlite { .. } => {
                "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'admin'"
            }
        }
    }

    pub async fn update_org_settings(
        &self,
        org: OrgId,
        max_personal_endpoints: i64,
        members_can_create_keys: bool,
    ) -> Result<()> {
        dispatch_write!(self, |pool| {
            sqlx::query(
                "UPDATE organizations SET max_personal_endpoints = $2, members_can_create_keys = $3 WHERE id = $1",
            )
            .bind(org)
            .bind(max_personal_endpoints)
            .bind(members_can_create_keys)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn create_invite(
        &self,
        org: OrgId,
        token_hash: &TokenHash,
        email: &str,
        role: Role,
        created_by: UserId,
        expires_at: Millis,
    ) -> Result<Invite> {
        let invite = Invite {
            id: crate::domain::InviteId::new_v4(),
            org_id: org,
            email: email.to_owned(),
            role,
            created_by,
            created_at: crate::domain::now_ms(),
            expires_at,
            accepted_at: None,
        };
        dispatch_write!(self, |pool| {
            sqlx::query(
                "INSERT INTO invites (id, org_id, token_hash, email, role, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(invite.id)
            .bind(org)
            .bind(&token_hash[..])
            .bind(email)
            .bind(role.as_str())
            .bind(created_by)
            .bind(invite.created_at)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(invite)
    }

    /// Invitations not yet accepted.
    pub async fn pending_invites(&self, org: OrgId) -> Result<Vec<Invite>> {
        let rows: Vec<InviteRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE org_id = $1 AND accepted_at IS NULL ORDER BY created_at DESC"
            ))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Invite::try_from).collect()
    }

    pub async fn invite_by_hash(&self, token_hash: &TokenHash) -> Result<Option<Invite>> {
        let row: Option<InviteRow> = dispatch!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE token_hash = $1"
            ))
            .bind(&token_hash[..])
            .fetch_optional(pool)
            .await?
        });
        row.map(Invite::try_from).transpose()
    }

    /// Accepts an invitation for `user`: marks it used and adds the membership, once. Returns
    /// false when it was already used or has expired.
    pub async fn accept_invite(&self, invite: &Invite, user: UserId, now: Millis) -> Result<bool> {
        let accepted = dispatch_write!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "UPDATE invites SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND expires_at > $2",
            )
            .bind(invite.id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(
                    "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (org_id, user_id) DO NOTHING",
                )
                .bind(invite.org_id)
                .bind(user)
                .bind(invite.role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            n == 1
        });
        Ok(accepted)
    }

    pub async fn delete_invite(&self, org: OrgId, id: crate::domain::InviteId) -> Result<bool> {
        let n = dispatch_write!(self, |pool| {
            sqlx::query("DELETE FROM invites WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL")
                .bind(id)
                .bind(org)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }
}
