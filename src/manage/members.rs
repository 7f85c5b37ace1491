//! Members of an organization, their roles (never fewer than one admin) and invitations.
//!
//! Everyone in an organization sees who its members are; only admins see pending invitations,
//! invite, change roles or remove people.

use secrecy::SecretString;

use super::{Actor, ManageError, Result};
use crate::crypto::{self, Keys};
use crate::domain::{DAY_MS, InviteId, Role, UserId, now_ms};
use crate::store::Store;
use crate::store::members::{Invite, Member, MembershipError};

/// How long an invitation link stays valid.
pub const INVITE_TTL_MS: i64 = 7 * DAY_MS;

/// At most this many pending invitations per organization: a loop that invites must not fill
/// the table.
pub const MAX_PENDING_INVITES: usize = 500;

/// What to say for a role that is neither `admin` nor `member`.
pub const ROLE_HINT: &str = "Choose Admin or Member.";

const LAST_ADMIN: &str =
    "An organization needs at least one admin: make someone else an admin first.";

/// A new invitation. `token` goes into the link the admin passes on; only its hash is stored.
pub struct IssuedInvite {
    pub invite: Invite,
    pub token: SecretString,
}

impl IssuedInvite {
    /// The link the invited person opens (the portal's invitation page).
    pub fn url(&self, public_base: &str) -> String {
        use secrecy::ExposeSecret;
        format!("{public_base}/invite/{}", self.token.expose_secret())
    }
}

pub fn parse_role(raw: &str) -> Result<Role> {
    Role::parse(raw.trim()).ok_or_else(|| ManageError::invalid("role", ROLE_HINT))
}

pub async fn list(store: &Store, actor: &Actor) -> Result<Vec<Member>> {
    Ok(store.members(actor.org()).await?)
}

pub async fn find(store: &Store, actor: &Actor, user: UserId) -> Result<Member> {
    list(store, actor)
        .await?
        .into_iter()
        .find(|m| m.user.id == user)
        .ok_or(ManageError::NotFound)
}

/// Pending invitations (expired ones included, so an admin sees a link went stale).
pub async fn invites(store: &Store, actor: &Actor) -> Result<Vec<Invite>> {
    actor.require_admin()?;
    Ok(store.pending_invites(actor.org()).await?)
}

/// Invites `email` with `role`. The e-mail of a current member is refused, as is a second
/// pending invitation beyond [`MAX_PENDING_INVITES`].
pub async fn invite(
    store: &Store,
    keys: &Keys,
    actor: &Actor,
    email: &str,
    role: &str,
) -> Result<IssuedInvite> {
    actor.require_admin()?;
    actor.may_write()?;
    let mut errors = Vec::new();
    let email = crate::domain::normalize_email(email)
        .map_err(|e| errors.push(e))
        .ok();
    let role = match parse_role(role) {
        Ok(r) => Some(r),
        Err(ManageError::Invalid(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(other) => return Err(other),
    };
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ManageError::Invalid(errors));
    };
    if list(store, actor)
        .await?
        .iter()
        .any(|m| m.user.email == email)
    {
        return Err(ManageError::invalid(
            "email",
            "This person is already a member.",
        ));
    }
    if store.pending_invites(actor.org()).await?.len() >= MAX_PENDING_INVITES {
        return Err(ManageError::Conflict(format!(
            "This organization has {MAX_PENDING_INVITES} pending invitations, the most it may \
             have. Revoke some first."
        )));
    }
    let token = crypto::random_base62(43);
    let invite = store
        .create_invite(
            actor.org(),
            &keys.token_hash(&token),
            &email,
            role,
            actor.user.id,
            now_ms() + INVITE_TTL_MS,
        )
        .await?;
    Ok(IssuedInvite {
        invite,
        token: SecretString::from(token),
    })
}

pub async fn revoke_invite(store: &Store, actor: &Actor, id: InviteId) -> Result<()> {
    actor.require_admin()?;
    actor.may_write()?;
    if store.delete_invite(actor.org(), id).await? {
        Ok(())
    } else {
        Err(ManageError::NotFound)
    }
}

fn membership_error(e: MembershipError) -> ManageError {
    match e {
        MembershipError::LastAdmin => ManageError::Conflict(LAST_ADMIN.into()),
        MembershipError::Store(crate::store::StoreError::NotFound) => ManageError::NotFound,
        MembershipError::Store(s) => s.into(),
    }
}

/// Changes a member's role; the organization always keeps an admin.
pub async fn set_role(store: &Store, actor: &Actor, user: UserId, role: Role) -> Result<Member> {
    actor.require_admin()?;
    actor.may_write()?;
    store
        .set_role(actor.org(), user, role)
        .await
        .map_err(membership_error)?;
    find(store, actor, user).await
}

/// Removes a member: their sessions end and the keys they created here are revoked. The last
/// admin cannot be removed.
pub async fn remove(store: &Store, actor: &Actor, user: UserId) -> Result<()> {
    actor.require_admin()?;
    actor.may_write()?;
    store
        .remove_member(actor.org(), user, now_ms())
        .await
        .map_err(membership_error)
}
