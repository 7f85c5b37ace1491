//! The store suite, written once and run on both backends (see [`crate::store_test`]): always on
//! SQLite, and on Postgres when `TEST_POSTGRES_URL` is set (each test in a fresh schema).
//! `scripts/test.sh` reports how many ran on each. One file per concept; the helpers every file
//! needs are here.

pub(crate) use super::{Store, StoreError};
pub(crate) use crate::domain::{Role, Scope};
pub(crate) use crate::store::accounts::{FirstRunError, NewAdmin};
pub(crate) use crate::store::endpoints::{CreateEndpointError, NewEndpoint};
pub(crate) use crate::store_test;

mod accounts;
mod alerts;
mod api_tokens;
mod batches;
mod credentials;
mod endpoints;
mod keys;
mod limits;
mod observe;
mod retention;
mod traces;

pub(crate) async fn admin(store: &Store) -> (crate::domain::User, crate::domain::Organization) {
    store
        .create_first_admin(&NewAdmin {
            email: "ada@example.com",
            name: "Ada",
            password_hash: "$argon2id$fake",
            org_name: "Acme",
        })
        .await
        .unwrap()
}

pub(crate) async fn org_and_endpoint(
    s: &Store,
) -> (
    crate::domain::User,
    crate::domain::Organization,
    crate::domain::Endpoint,
) {
    let (u, o) = admin(s).await;
    let e = s
        .create_endpoint(&NewEndpoint {
            org: o.id,
            owner: u.id,
            scope: Scope::OrgShared,
            name: "e",
        })
        .await
        .unwrap();
    (u, o, e)
}
