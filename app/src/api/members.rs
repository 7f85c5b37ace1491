//! Members of the current organization, invitations, roles, and the organization's settings.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{InviteInfo, InviteLink, MembersPage};

#[server(endpoint = "members", input = GetUrl)]
pub async fn list_members() -> Result<MembersPage, ApiError> {
    use super::ssr::*;
    use crate::model::{InviteView, MemberView};
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let is_admin = actor.is_admin();
        let members = antix::manage::members::list(&s.store, &actor)
            .await?
            .into_iter()
            .map(|mb| MemberView {
                user_id: mb.user.id.0,
                is_me: mb.user.id == actor.user.id,
                name: mb.user.name,
                email: mb.user.email,
                role: mb.role.into(),
                joined_at: mb.joined_at,
            })
            .collect();
        let invites = if is_admin {
            antix::manage::members::invites(&s.store, &actor)
                .await?
                .into_iter()
                .map(|i| InviteView {
                    id: i.id.0,
                    email: i.email,
                    role: i.role.into(),
                    created_at: i.created_at,
                    expires_at: i.expires_at,
                })
                .collect()
        } else {
            Vec::new()
        };
        let m = &actor.membership;
        Ok(MembersPage {
            org_name: m.org.name.clone(),
            is_admin,
            members,
            invites,
            max_personal_endpoints: m.org.max_personal_endpoints,
            members_can_create_keys: m.org.members_can_create_keys,
            trace_retention_days: s.store.org_retention(m.org.id).await?,
            instance_retention_days: s.settings.trace_retention_days,
        })
    })
    .await
}

/// Creates an invitation link for an e-mail address (shown once to the admin, who passes it
/// on). Only its hash is stored.
#[server(endpoint = "invite_member")]
pub async fn invite_member(email: String, role: String) -> Result<InviteLink, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let issued =
            antix::manage::members::invite(&s.store, &s.keys, &actor, &email, &role).await?;
        Ok(InviteLink {
            url: issued.url(&s.settings.public_base()),
            email: issued.invite.email,
        })
    })
    .await
}

#[server(endpoint = "revoke_invite")]
pub async fn revoke_invite(id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::members::revoke_invite(&s.store, &actor, antix::domain::InviteId(id))
            .await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "set_role")]
pub async fn set_role(user_id: Uuid, role: String) -> Result<(), ApiError> {
    use super::ssr::*;
    use antix::manage::members;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        let r = members::parse_role(&role)?;
        members::set_role(&s.store, &actor, antix::domain::UserId(user_id), r).await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "remove_member")]
pub async fn remove_member(user_id: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let actor = actor(&s).await?;
        antix::manage::members::remove(&s.store, &actor, antix::domain::UserId(user_id)).await?;
        Ok(())
    })
    .await
}

#[server(endpoint = "org_settings")]
pub async fn update_org_settings(
    max_personal_endpoints: String,
    members_can_create_keys: Option<String>,
    #[server(default)] trace_retention_days: String,
) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let (_, m) = org_context(&s).await?;
        require_admin(&m)?;
        let max = match max_personal_endpoints.trim().parse::<i64>() {
            Ok(n) if (0..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "max_personal_endpoints",
                    "Enter a number from 0 to 1000.",
                ));
            }
        };
        let retention =
            super::endpoints::parse_retention(&trace_retention_days).map_err(|e| match e {
                ApiError::Invalid(mut fields) => {
                    for f in &mut fields {
                        f.field = "trace_retention_days".into();
                    }
                    ApiError::Invalid(fields)
                }
                other => other,
            })?;
        s.store
            .update_org_settings(m.org.id, max, members_can_create_keys.is_some())
            .await?;
        s.store.set_org_retention(m.org.id, retention).await?;
        Ok(())
    })
    .await
}

/// What an invitation link leads to (public: the token is the secret).
#[server(endpoint = "invite_info", input = GetUrl)]
pub async fn get_invite(token: String) -> Result<InviteInfo, ApiError> {
    use super::ssr::*;
    use crate::model::{InviteState, Role};
    run(async {
        let s = services()?;
        let logged_in_as = current_user(&s).await?.map(|u| u.email);
        let unknown = InviteInfo {
            state: InviteState::Unknown,
            org_name: String::new(),
            email: String::new(),
            role: Role::Member,
            account_exists: false,
            logged_in_as: logged_in_as.clone(),
        };
        if token.len() > 100 {
            return Ok(unknown);
        }
        let Some(inv) = s.store.invite_by_hash(&s.keys.token_hash(&token)).await? else {
            return Ok(unknown);
        };
        let org = s
            .store
            .organization(inv.org_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let state = if inv.accepted_at.is_some() {
            InviteState::Used
        } else if inv.expires_at <= antix::domain::now_ms() {
            InviteState::Expired
        } else {
            InviteState::Valid
        };
        Ok(InviteInfo {
            state,
            org_name: org.name,
            account_exists: s.store.user_for_login(&inv.email).await?.is_some(),
            email: inv.email,
            role: inv.role.into(),
            logged_in_as,
        })
    })
    .await
}

/// Joins the organization of an invitation: creating the account (name and password) when the
/// invited e-mail has none, else as the logged-in user with that e-mail.
#[server(endpoint = "accept_invite")]
pub async fn accept_invite(token: String, name: String, password: String) -> Result<(), ApiError> {
    use super::ssr::*;
    use secrecy::ExposeSecret;
    run(async {
        let s = services()?;
        let now = antix::domain::now_ms();
        let inv = s
            .store
            .invite_by_hash(&s.keys.token_hash(&token))
            .await?
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
            .ok_or_else(|| ApiError::Conflict("This invitation link is no longer valid.".into()))?;
        let user = match s.store.user_for_login(&inv.email).await? {
            Some((existing, _)) => {
                let me = current_user(&s).await?;
                if me.as_ref().map(|u| u.id) != Some(existing.id) {
                    return Err(ApiError::Forbidden(format!(
                        "Log in as {} first, then open the link again.",
                        inv.email
                    )));
                }
                existing
            }
            None => {
                let mut f = Fields::default();
                let name = f.check(
                    "name",
                    antix::domain::validate_name("name", &name).map_err(|e| e.message),
                );
                f.check(
                    "password",
                    antix::domain::validate_password(&password).map_err(|e| e.message),
                );
                f.finish()?;
                let hash = {
                    let pw = password.clone();
                    tokio::task::spawn_blocking(move || antix::crypto::hash_password(&pw))
                        .await
                        .map_err(internal)?
                        .map_err(internal)?
                };
                s.store
                    .create_user(&inv.email, &name.unwrap_or_default(), &hash)
                    .await?
            }
        };
        if !s.store.accept_invite(&inv, user.id, now).await? {
            return Err(ApiError::Conflict(
                "This invitation link is no longer valid.".into(),
            ));
        }
        let session = antix::accounts::start_session(&s.store, &s.keys, &user).await?;
        let secure = s.settings.secure_cookies();
        set_session_cookie(
            session.token.expose_secret(),
            antix::accounts::SESSION_TTL_MS / 1000,
            secure,
        );
        set_org_cookie(inv.org_id.0, secure);
        leptos_axum::redirect("/");
        Ok(())
    })
    .await
}
