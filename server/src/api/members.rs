//! `/api/v1/members` and `/api/v1/invitations`: who belongs to the organization, their roles,
//! and invitation links (admins).

use antix::Services;
use antix::domain::{InviteId, UserId};
use antix::manage::members as ops;
use antix::store::members::{Invite, Member};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiResult, ErrorBody, PageQuery, authenticate, create_once, json, json_body, page_of, path_id,
    query, time,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// The member's user id.
    pub id: uuid::Uuid,
    pub name: String,
    pub email: String,
    /// `admin` or `member`.
    pub role: String,
    pub joined_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub data: Vec<MemberView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin` or `member`.
    pub role: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: uuid::Uuid,
    pub email: String,
    /// The role the invited person gets: `admin` or `member`.
    pub role: String,
    pub created_by: uuid::Uuid,
    pub created_at: String,
    /// The link stops working at this instant (7 days after it was made).
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationList {
    pub data: Vec<InvitationView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub email: String,
    /// `admin` or `member` (default `member`).
    #[serde(default)]
    pub role: Option<String>,
}

/// A new invitation: `url` is the link to pass on, shown this once (only its hash is kept).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvitation {
    pub invitation: InvitationView,
    pub url: String,
}

fn member_view(m: &Member) -> MemberView {
    MemberView {
        id: m.user.id.0,
        name: m.user.name.clone(),
        email: m.user.email.clone(),
        role: m.role.as_str().to_owned(),
        joined_at: time(m.joined_at),
    }
}

fn invitation_view(i: &Invite) -> InvitationView {
    InvitationView {
        id: i.id.0,
        email: i.email.clone(),
        role: i.role.as_str().to_owned(),
        created_by: i.created_by.0,
        created_at: time(i.created_at),
        expires_at: time(i.expires_at),
    }
}

/// List the organization's members, in the order they joined.
#[utoipa::path(get, path = "/api/v1/members", tag = "members", params(PageQuery),
    responses((status = 200, body = MemberList), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let q = query(q)?;
    let all = ops::list(&s.store, &actor).await?;
    let (page, next_cursor) = page_of(all, &q, |m| m.user.id.0)?;
    let data = page.iter().map(member_view).collect();
    Ok(json(StatusCode::OK, &MemberList { data, next_cursor }))
}

/// Get one member.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = uuid::Uuid, Path, description = "The member's user id")),
    responses((status = 200, body = MemberView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let m = ops::find(&s.store, &actor, UserId(path_id(&id)?)).await?;
    Ok(json(StatusCode::OK, &member_view(&m)))
}

/// Change a member's role (admins). The organization always keeps one admin: demoting the
/// last is a conflict.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = uuid::Uuid, Path, description = "The member's user id")),
    request_body = RoleChange,
    responses((status = 200, body = MemberView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_role(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let user = UserId(path_id(&id)?);
    let req: RoleChange = json_body(&headers, &body)?;
    let role = ops::parse_role(&req.role)?;
    let m = ops::set_role(&s.store, &actor, user, role).await?;
    Ok(json(StatusCode::OK, &member_view(&m)))
}

/// Remove a member (admins): their portal sessions end and the virtual keys they created in
/// this organization are revoked. The last admin cannot be removed.
#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = uuid::Uuid, Path, description = "The member's user id")),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    ops::remove(&s.store, &actor, UserId(path_id(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List pending invitations, newest first (admins).
#[utoipa::path(get, path = "/api/v1/invitations", tag = "members", params(PageQuery),
    responses((status = 200, body = InvitationList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn invitations(
    State(s): State<Services>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    let q = query(q)?;
    let all = ops::invites(&s.store, &actor).await?;
    let (page, next_cursor) = page_of(all, &q, |i| i.id.0)?;
    let data = page.iter().map(invitation_view).collect();
    Ok(json(StatusCode::OK, &InvitationList { data, next_cursor }))
}

/// Invite someone by e-mail (admins). The response holds the invitation link, shown this once.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "members", request_body = CreateInvitation,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to a retry")),
    responses((status = 201, body = CreatedInvitation), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn invite(State(s): State<Services>, headers: HeaderMap, body: Bytes) -> Response {
    let s = &s;
    create_once(
        s,
        &headers,
        "POST /invitations",
        &body,
        |actor, req: CreateInvitation| async move {
            let role = req.role.as_deref().unwrap_or("member");
            let issued = ops::invite(&s.store, &s.keys, &actor, &req.email, role).await?;
            let created = CreatedInvitation {
                invitation: invitation_view(&issued.invite),
                url: issued.url(&s.settings.public_base()),
            };
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(created).unwrap_or_default(),
            ))
        },
    )
    .await
}

/// Revoke a pending invitation (admins): its link stops working.
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "members",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_invitation(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let actor = authenticate(&s, &headers).await?;
    ops::revoke_invite(&s.store, &actor, InviteId(path_id(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
