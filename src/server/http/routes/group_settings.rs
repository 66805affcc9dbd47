//! A group's settings and roles: `PATCH /groups/{id}` (rename, topic, public or not),
//! `/groups/{id}/admins` (the owner makes and unmakes admins), `/groups/{id}/owner` (the owner
//! hands the group over), and public groups: `GET /groups/public`, `POST /groups/{id}/join`.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::groups::{group_access, group_not_found};
use super::responses::{BodyErrors, Forbidden, NotFound, Unauthorized, Unavailable};
use super::{json, one_of, signed_in};
use crate::proto::team::{GroupMemberRequest, PublicGroup, UpdateGroupRequest};
use crate::proto::{MessageReply, RoomKind, ServerFrame};
use crate::server::commands::messaging::Announce;
use crate::server::commands::{ApiError, authority};
use crate::server::http::error::respond;
use crate::server::http::extract::{json_body, path_id};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::JoinOutcome;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("groups" / "public")
            .and(warp::get().and(me()))
            .then(browse)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String)
            .and(warp::patch().and(me()).and(json_body()))
            .then(update)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "join")
            .and(warp::post().and(me()))
            .then(join)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "admins")
            .and(warp::post().and(me()).and(json_body()))
            .then(promote)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "admins")
            .and(warp::delete().and(me()).and(json_body()))
            .then(demote)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "owner")
            .and(warp::post().and(me()).and(json_body()))
            .then(hand_over)
            .map(respond)
            .boxed(),
    ])
}

/// Rename a group, set its topic (empty clears it), or make it public or private (its owner
/// and admins). Its members hear of it live.
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id, or `#name` / `name` of a group you are in")),
    request_body = UpdateGroupRequest,
    responses(
        (status = 200, description = "The group as it is now", body = crate::proto::GroupSummary),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn update(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: UpdateGroupRequest,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    authority::change_group(&access, &me.user)?;
    let name = req.name.as_deref().map(str::trim);
    let topic = req
        .topic
        .as_deref()
        .map(|t| Some(t.trim()).filter(|t| !t.is_empty()));
    let settings = state
        .store
        .update_group(id, name, topic, req.is_public)
        .await?
        .ok_or_else(group_not_found)?;
    state.messaging().to_room(
        id,
        &ServerFrame::GroupUpdated {
            room_id: id,
            name: settings.name.clone(),
            topic: settings.topic.clone(),
            is_public: settings.is_public,
            by: me.user.username.clone(),
        },
    );
    let mine = state.store.groups_of(me.id()).await?;
    let row = mine
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(group_not_found)?;
    Ok(json(&super::groups::summary(row)))
}

/// Public groups, with their member counts and topics, and whether you are in each. A private
/// group is never listed here.
#[utoipa::path(get, path = "/groups/public", tag = "groups",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<PublicGroup>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn browse(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    Ok(json(&state.store.public_groups(me.id()).await?))
}

/// Join a public group (a private one is joined by invitation only, and looks like no group).
#[utoipa::path(post, path = "/groups/{id}/join", tag = "groups",
    security(("bearer" = [])),
    params(("id" = i32, Path)),
    responses(
        (status = 200, body = MessageReply),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn join(
    segment: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let id = path_id(&segment, "group_id")?.ok_or_else(group_not_found)?;
    match state.store.join_public(id, me.id()).await? {
        JoinOutcome::Joined(username) => {
            let name = state.store.group_name(id).await?.unwrap_or_default();
            state
                .messaging()
                .members_added(id, &name, &[(me.id(), username)], Announce::WholeRoom);
            Ok(json(&MessageReply {
                message: format!("Joined #{name}"),
            }))
        }
        JoinOutcome::AlreadyMember => Ok(json(&MessageReply {
            message: "You are in this group already".into(),
        })),
        JoinOutcome::NotFound => Err(group_not_found()),
    }
}

/// Make a member an admin of the group (its owner only).
#[utoipa::path(post, path = "/groups/{id}/admins", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = GroupMemberRequest,
    responses(
        (status = 200, body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn promote(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: GroupMemberRequest,
) -> Result<Response, ApiError> {
    set_admin(segment, state, me, req, true).await
}

/// Make an admin of the group a plain member again (its owner only).
#[utoipa::path(delete, path = "/groups/{id}/admins", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = GroupMemberRequest,
    responses(
        (status = 200, body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn demote(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: GroupMemberRequest,
) -> Result<Response, ApiError> {
    set_admin(segment, state, me, req, false).await
}

async fn set_admin(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: GroupMemberRequest,
    admin: bool,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    authority::own_group(&access, &me.user, "make or unmake admins")?;
    if req.user_id == me.id() {
        return Err(ApiError::BadRequest(
            "You own the group: hand it over to stop being its owner".into(),
        ));
    }
    if !state.store.set_group_admin(id, req.user_id, admin).await? {
        return Err(ApiError::NotFound("Member not found in group".into()));
    }
    Ok(json(&MessageReply {
        message: if admin {
            "Member is now an admin of the group".into()
        } else {
            "Member is no longer an admin of the group".into()
        },
    }))
}

/// Hand the group to another member (its owner only); the old owner stays as an admin.
#[utoipa::path(post, path = "/groups/{id}/owner", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = GroupMemberRequest,
    responses(
        (status = 200, body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn hand_over(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: GroupMemberRequest,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    authority::own_group(&access, &me.user, "hand it over")?;
    if access.kind != RoomKind::Group {
        return Err(group_not_found());
    }
    if !state.store.transfer_group(id, me.id(), req.user_id).await? {
        return Err(ApiError::NotFound("Member not found in group".into()));
    }
    Ok(json(&MessageReply {
        message: "The group has a new owner; you are one of its admins".into(),
    }))
}
