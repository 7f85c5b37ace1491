//! First-run setup, login, logout, the session summary every page starts from, and switching
//! the current organization.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::SessionInfo;

/// Whether the instance is set up and who is logged in. Read-only, so GET.
#[server(endpoint = "session", input = GetUrl)]
pub async fn current_session() -> Result<SessionInfo, ApiError> {
    use super::ssr::*;
    use crate::model::{Me, OrgMembership};
    run(async {
        let s = services()?;
        let initialized = s.store.is_initialized().await?;
        let Some(user) = current_user(&s).await? else {
            return Ok(SessionInfo {
                initialized,
                me: None,
            });
        };
        let (memberships, current) = current_membership(&s, &user).await?;
        Ok(SessionInfo {
            initialized,
            me: Some(Me {
                user_id: user.id.0,
                email: user.email,
                name: user.name,
                orgs: memberships
                    .into_iter()
                    .map(|m| OrgMembership {
                        id: m.org.id.0,
                        name: m.org.name,
                        role: m.role.into(),
                    })
                    .collect(),
                current_org: current.map(|m| m.org.id.0),
            }),
        })
    })
    .await
}

/// Creates the first administrator and organization, logs them in and goes to the portal.
/// Refused once any administrator exists.
#[server(endpoint = "setup")]
pub async fn setup(
    email: String,
    name: String,
    password: String,
    org: String,
    token: String,
) -> Result<(), ApiError> {
    use super::ssr::*;
    use antix::accounts::{FirstAdmin, create_first_admin, start_session};
    run(async {
        let s = services()?;
        // Whoever reaches a fresh server first must not become its administrator: setup takes
        // the token the server printed in its log (or `antix admin setup-token` prints).
        if !s.keys.is_setup_token(&token) {
            if s.store.is_initialized().await? {
                return Err(ApiError::Conflict(
                    "This instance already has an administrator.".into(),
                ));
            }
            return Err(ApiError::invalid(
                "token",
                if token.trim().is_empty() {
                    "Enter the setup token from the server's log (or run `antix admin setup-token`)."
                } else {
                    "That is not this server's setup token: find it in the server's log, or run `antix admin setup-token`."
                },
            ));
        }
        let (user, org) = create_first_admin(
            &s.store,
            FirstAdmin {
                email: &email,
                name: &name,
                password: &password,
                org_name: &org,
            },
        )
        .await?;
        let session = start_session(&s.store, &s.keys, &user).await?;
        let secure = s.settings.secure_cookies();
        use secrecy::ExposeSecret;
        set_session_cookie(
            session.token.expose_secret(),
            antix::accounts::SESSION_TTL_MS / 1000,
            secure,
        );
        set_org_cookie(org.id.0, secure);
        leptos_axum::redirect("/");
        Ok(())
    })
    .await
}

#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), ApiError> {
    use super::ssr::*;
    use secrecy::ExposeSecret;
    run(async {
        let s = services()?;
        let mut errors = Vec::new();
        if email.trim().is_empty() {
            errors.push(crate::api::FieldMessage {
                field: "email".into(),
                message: "Enter your e-mail address.".into(),
            });
        }
        if password.is_empty() {
            errors.push(crate::api::FieldMessage {
                field: "password".into(),
                message: "Enter your password.".into(),
            });
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        // Replace any session this browser already had: a fresh id at every login.
        if let Some(old) = session_token(&s) {
            let _ = s.store.delete_session(&s.keys.session_hash(&old)).await;
        }
        let (_, session) = antix::accounts::login(
            &s.store,
            &s.keys,
            &s.logins,
            &email,
            &password,
            &client_addr(),
        )
        .await?;
        set_session_cookie(
            session.token.expose_secret(),
            antix::accounts::SESSION_TTL_MS / 1000,
            s.settings.secure_cookies(),
        );
        leptos_axum::redirect("/");
        Ok(())
    })
    .await
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        if let Some(token) = session_token(&s) {
            s.store.delete_session(&s.keys.session_hash(&token)).await?;
        }
        clear_session_cookie(s.settings.secure_cookies());
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// Changes the user's password; every other session of theirs ends.
#[server(endpoint = "change_password")]
pub async fn change_password(current: String, password: String) -> Result<(), ApiError> {
    use super::ssr::*;
    use secrecy::ExposeSecret;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let session =
            antix::accounts::change_password(&s.store, &s.keys, &user, &current, &password).await?;
        set_session_cookie(
            session.token.expose_secret(),
            antix::accounts::SESSION_TTL_MS / 1000,
            s.settings.secure_cookies(),
        );
        Ok(())
    })
    .await
}

/// Makes `org` the current organization, if the user is a member of it.
#[server(endpoint = "switch_org")]
pub async fn switch_org(org: Uuid) -> Result<(), ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let member = s
            .store
            .role_in(user.id, antix::domain::OrgId(org))
            .await?
            .is_some();
        if !member {
            return Err(ApiError::NotFound);
        }
        set_org_cookie(org, s.settings.secure_cookies());
        Ok(())
    })
    .await
}
