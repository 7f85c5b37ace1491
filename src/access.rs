//! Who may see and manage what inside an organization: the rules every adapter (the portal's
//! server functions, the CLI, a REST API) asks here instead of writing its own. Whatever is not
//! visible is simply not found: "not yours" and "does not exist" look the same.

use crate::domain::{
    Endpoint, EndpointId, Membership, Role, Scope, User, VirtualKey, VirtualKeyId,
};
use crate::store::{Result, Store};

/// An endpoint `user` may see, with their membership in its organization: an org-shared
/// endpoint of an organization they belong to, or their own personal one. `None` for anything
/// else (another organization's, another member's personal endpoint, admins included, or none).
pub async fn visible_endpoint(
    store: &Store,
    user: &User,
    id: EndpointId,
) -> Result<Option<(Endpoint, Membership)>> {
    let Some(e) = store.endpoint(id).await? else {
        return Ok(None);
    };
    if e.scope == Scope::Personal && e.owner_id != user.id {
        return Ok(None);
    }
    let m = store
        .memberships(user.id)
        .await?
        .into_iter()
        .find(|m| m.org.id == e.org_id);
    Ok(m.map(|m| (e, m)))
}

/// Who may rename or archive an endpoint: the owner of a personal one, an admin for a shared one.
pub fn can_manage_endpoint(e: &Endpoint, user: &User, m: &Membership) -> bool {
    match e.scope {
        Scope::Personal => e.owner_id == user.id,
        Scope::OrgShared => m.role == Role::Admin,
    }
}

/// Who may copy a personal endpoint into a new org-shared one: an admin, while it is active.
pub fn can_duplicate_endpoint(e: &Endpoint, m: &Membership) -> bool {
    e.scope == Scope::Personal && m.role == Role::Admin && e.archived_at.is_none()
}

/// A virtual key of the membership's organization that `user` may see and revoke: an admin any,
/// a member the keys they created.
pub async fn managed_key(
    store: &Store,
    user: &User,
    m: &Membership,
    id: VirtualKeyId,
) -> Result<Option<VirtualKey>> {
    Ok(store
        .virtual_key(id)
        .await?
        .filter(|k| k.org_id == m.org.id)
        .filter(|k| m.role == Role::Admin || k.created_by == user.id))
}
