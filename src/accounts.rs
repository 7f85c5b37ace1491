//! Account workflows shared by the portal and the CLI: first-run administrator, login with
//! throttling, and portal sessions. Cookies are the server's business; here a session is an
//! opaque token whose keyed hash is stored.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{self, Keys};
use crate::domain::{
    self, FieldError, Millis, Organization, User, normalize_email, validate_name, validate_password,
};
use crate::store::accounts::{FirstRunError, NewAdmin};
use crate::store::{Store, StoreError};

/// How long a portal session lasts without logging in again.
pub const SESSION_TTL_MS: Millis = 7 * 24 * 3600 * 1000;
pub mod guard;
mod hasher;

pub use guard::LoginGuard;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("this instance already has an administrator")]
    AlreadyInitialized,
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FirstRunError> for AccountError {
    fn from(e: FirstRunError) -> Self {
        match e {
            FirstRunError::AlreadyInitialized => AccountError::AlreadyInitialized,
            FirstRunError::Store(StoreError::Conflict(_)) => AccountError::EmailTaken,
            FirstRunError::Store(s) => AccountError::Store(s),
        }
    }
}

pub struct FirstAdmin<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
    pub org_name: &'a str,
}

/// Validates every field (reporting all problems at once), hashes the password off the async
/// runtime, then creates the administrator and organization atomically.
pub async fn create_first_admin(
    store: &Store,
    input: FirstAdmin<'_>,
) -> Result<(User, Organization), AccountError> {
    let mut errors = Vec::new();
    let email = normalize_email(input.email)
        .map_err(|e| errors.push(e))
        .ok();
    let name = validate_name("name", input.name)
        .map_err(|e| errors.push(e))
        .ok();
    let org = validate_name("org", input.org_name)
        .map_err(|e| errors.push(e))
        .ok();
    if let Err(e) = validate_password(input.password) {
        errors.push(e);
    }
    let (Some(email), Some(name), Some(org)) = (email, name, org) else {
        return Err(AccountError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    if store.is_initialized().await? {
        return Err(AccountError::AlreadyInitialized);
    }
    let hash = hash_password(input.password.to_owned()).await?;
    Ok(store
        .create_first_admin(&NewAdmin {
            email: &email,
            name: &name,
            password_hash: &hash,
            org_name: &org,
        })
        .await?)
}

async fn hash_password(password: String) -> Result<String, AccountError> {
    hasher::run(move || crypto::hash_password(&password))
        .await?
        .map_err(|e| AccountError::Internal(e.to_string()))
}

/// A new session's secret token (goes in the cookie, never stored) and expiry.
pub struct NewSession {
    pub token: SecretString,
    pub expires_at: Millis,
}

/// Checks a login, throttled per account and per client address (the rules are
/// [`guard`]'s). Unknown accounts cost the same argon2 verification as wrong passwords and get
/// the same error.
pub async fn login(
    store: &Store,
    keys: &Keys,
    guard: &LoginGuard,
    email: &str,
    password: &str,
    client: &str,
) -> Result<(User, NewSession), AccountError> {
    let now = domain::now_ms();
    let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    // Bounded: a megabyte of "e-mail" must not become a megabyte of counter key.
    let email: String = email.chars().take(320).collect();
    let client: String = client.chars().take(64).collect();
    let subjects = [
        format!("pair:{email}|{client}"),
        format!("acct:{email}"),
        format!("ip:{client}"),
    ];
    let since = now - guard::WINDOW_MS;
    // What other replicas (and earlier runs) counted; this process's own attempts are counted
    // exactly by the guard, in flight included.
    let mut stored = [0u32; 3];
    for (n, subject) in stored.iter_mut().zip(&subjects) {
        *n = u32::try_from(store.login_failures_since(subject, since).await?).unwrap_or(u32::MAX);
    }
    let attempt = guard
        .begin(&email, &client, (stored[0], stored[1], stored[2]), now)
        .await
        .map_err(|r| match r {
            guard::Refusal::Busy => AccountError::Busy,
            guard::Refusal::Throttled { retry_after_secs } => {
                AccountError::Throttled { retry_after_secs }
            }
        })?;
    // Bounded like validate_password, so a megabyte "password" cannot burn CPU.
    let password = password.chars().take(256).collect::<String>();
    let found = store.user_for_login(&email).await?;
    let phc = found.as_ref().map(|(_, h)| h.clone());
    let ok = hasher::run(move || crypto::verify_password(&password, phc.as_deref())).await?;
    let now = domain::now_ms();
    match (ok, found) {
        (true, Some((user, _))) => {
            attempt.succeeded(now);
            store.clear_login_failures(&subjects[0]).await?;
            store.clear_login_failures(&subjects[1]).await?;
            let session = start_session(store, keys, &user).await?;
            Ok((user, session))
        }
        _ => {
            attempt.failed(now);
            for subject in &subjects {
                store.record_login_failure(subject, now).await?;
            }
            tracing::warn!(target: "audit", event = "login_failed", client = %client, "failed login");
            Err(AccountError::BadCredentials)
        }
    }
}

/// Creates a fresh session for a user (at login, and after first-run setup). A new random token
/// every time: session ids are never reused across logins.
pub async fn start_session(
    store: &Store,
    keys: &Keys,
    user: &User,
) -> Result<NewSession, AccountError> {
    let token = crypto::random_base62(43);
    let expires_at = domain::now_ms() + SESSION_TTL_MS;
    store
        .create_session(&keys.session_hash(&token), user.id, expires_at)
        .await?;
    Ok(NewSession {
        token: SecretString::from(token),
        expires_at,
    })
}

/// Changes a password after checking the current one, ends every session of the user (other
/// browsers included) and starts a fresh one for this browser.
pub async fn change_password(
    store: &Store,
    keys: &Keys,
    user: &User,
    current: &str,
    new: &str,
) -> Result<NewSession, AccountError> {
    validate_password(new).map_err(|e| AccountError::Invalid(vec![e]))?;
    let phc = store
        .user_for_login(&user.email)
        .await?
        .map(|(_, h)| h)
        .ok_or(AccountError::BadCredentials)?;
    let current = current.chars().take(256).collect::<String>();
    let ok = hasher::run(move || crypto::verify_password(&current, Some(&phc))).await?;
    if !ok {
        return Err(AccountError::Invalid(vec![FieldError::new(
            "current",
            "That is not your current password.",
        )]));
    }
    let hash = hash_password(new.to_owned()).await?;
    store.set_password_hash(user.id, &hash).await?;
    store.delete_user_sessions(user.id).await?;
    start_session(store, keys, user).await
}

/// The user behind a session token, if it is valid and unexpired.
pub async fn session_user(
    store: &Store,
    keys: &Keys,
    token: &str,
) -> Result<Option<User>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    store
        .session_user(&keys.session_hash(token), domain::now_ms())
        .await
}

pub async fn logout(store: &Store, keys: &Keys, token: &SecretString) -> Result<(), StoreError> {
    store
        .delete_session(&keys.session_hash(token.expose_secret()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::TestDb;

    fn keys() -> Keys {
        crypto::MasterKey::generate().keys()
    }

    #[tokio::test]
    async fn first_admin_reports_every_bad_field() {
        let db = TestDb::sqlite().await.unwrap();
        let err = create_first_admin(
            &db.store,
            FirstAdmin {
                email: "nope",
                name: " ",
                password: "short",
                org_name: "",
            },
        )
        .await
        .unwrap_err();
        let AccountError::Invalid(fields) = err else {
            panic!("{err:?}")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field).collect();
        assert_eq!(names, ["email", "name", "org", "password"]);
        assert!(!db.store.is_initialized().await.unwrap());
    }

    #[tokio::test]
    async fn password_change_ends_every_other_session() {
        let db = TestDb::sqlite().await.unwrap();
        let k = keys();
        let g = LoginGuard::new(2);
        let (user, _) = create_first_admin(
            &db.store,
            FirstAdmin {
                email: "ada@example.com",
                name: "Ada",
                password: "first password!",
                org_name: "Acme",
            },
        )
        .await
        .unwrap();
        let (_, laptop) = login(
            &db.store,
            &k,
            &g,
            "ada@example.com",
            "first password!",
            "1.1.1.1",
        )
        .await
        .unwrap();
        let (_, phone) = login(
            &db.store,
            &k,
            &g,
            "ada@example.com",
            "first password!",
            "1.1.1.1",
        )
        .await
        .unwrap();
        assert!(matches!(
            change_password(&db.store, &k, &user, "wrong!", "second password!").await,
            Err(AccountError::Invalid(f)) if f[0].field == "current"
        ));
        let fresh = change_password(&db.store, &k, &user, "first password!", "second password!")
            .await
            .unwrap();
        for old in [&laptop, &phone] {
            assert!(
                session_user(&db.store, &k, old.token.expose_secret())
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert!(
            session_user(&db.store, &k, fresh.token.expose_secret())
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            login(
                &db.store,
                &k,
                &g,
                "ada@example.com",
                "second password!",
                "1.1.1.1"
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn login_session_logout_and_throttle() {
        let db = TestDb::sqlite().await.unwrap();
        let k = keys();
        let g = LoginGuard::new(2);
        let (user, _) = create_first_admin(
            &db.store,
            FirstAdmin {
                email: "Ada@Example.com",
                name: "Ada",
                password: "correct horse battery",
                org_name: "Acme",
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            create_first_admin(
                &db.store,
                FirstAdmin {
                    email: "b@example.com",
                    name: "B",
                    password: "correct horse battery",
                    org_name: "B",
                },
            )
            .await,
            Err(AccountError::AlreadyInitialized)
        ));
        let (u, s) = login(
            &db.store,
            &k,
            &g,
            "ada@example.com",
            "correct horse battery",
            "1.1.1.1",
        )
        .await
        .unwrap();
        assert_eq!(u.id, user.id);
        let found = session_user(&db.store, &k, s.token.expose_secret())
            .await
            .unwrap();
        assert_eq!(found.map(|u| u.id), Some(user.id));
        logout(&db.store, &k, &s.token).await.unwrap();
        assert!(
            session_user(&db.store, &k, s.token.expose_secret())
                .await
                .unwrap()
                .is_none()
        );

        // Unknown account and wrong password look the same.
        for (email, pw) in [
            ("ghost@example.com", "whatever!!"),
            ("ada@example.com", "wrong one!"),
        ] {
            assert!(matches!(
                login(&db.store, &k, &g, email, pw, "2.2.2.2").await,
                Err(AccountError::BadCredentials)
            ));
        }
        for _ in 0..5 {
            let _ = login(
                &db.store,
                &k,
                &g,
                "ada@example.com",
                "wrong one!",
                "3.3.3.3",
            )
            .await;
        }
        // Five failures from one address: even the right password is refused from there for
        // a while…
        assert!(matches!(
            login(
                &db.store,
                &k,
                &g,
                "ada@example.com",
                "correct horse battery",
                "3.3.3.3"
            )
            .await,
            Err(AccountError::Throttled { .. })
        ));
        // …by every replica (another guard, the same database)…
        let other = LoginGuard::new(2);
        assert!(matches!(
            login(
                &db.store,
                &k,
                &other,
                "ada@example.com",
                "correct horse battery",
                "3.3.3.3"
            )
            .await,
            Err(AccountError::Throttled { .. })
        ));
        // …but Ada at her own desk gets in.
        assert!(
            login(
                &db.store,
                &k,
                &g,
                "ada@example.com",
                "correct horse battery",
                "4.4.4.4"
            )
            .await
            .is_ok()
        );
    }
}
