//! `/groups/*`: create, send, history, my groups, and membership (add, remove or leave, list).

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::history::read_page;
use super::messages::sent;
use super::responses::{
    BadRequest, BodyErrors, Conflict, Forbidden, Invalid, NotFound, TooManyRequests, Unauthorized,
    Unavailable,
};
use super::{created, json, one_of, signed_in};
use crate::proto::{
    AddMembersReply, AddMembersRequest, CreateGroupReply, CreateGroupRequest, Group, GroupSummary,
    Member, MessageReply, MessageWithSender, RemoveMemberRequest, RoomId, SendGroupRequest,
    SendReply, UserId,
};
use crate::server::commands::ApiError;
use crate::server::commands::validate::HistoryQuery;
use crate::server::commands::{authority, messaging};
use crate::server::http::error::respond;
use crate::server::http::extract::{json_body, path_id, query};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{
    GroupRow, InsertOutcome, NewMessage, RemoveOutcome, RoomAccess, RoomKind,
};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("groups" / "create")
            .and(warp::post().and(me()).and(json_body()))
            .then(create)
            .map(respond)
            .boxed(),
        warp::path!("groups" / "send")
            .and(warp::post().and(me()).and(json_body()))
            .then(send)
            .map(respond)
            .boxed(),
        warp::path!("groups" / "my-groups")
            .and(warp::get().and(me()))
            .then(my_groups)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "messages")
            .and(warp::get().and(me()).and(query()))
            .then(history)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "members")
            .and(warp::get().and(me()))
            .then(list_members)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "members")
            .and(warp::post().and(me()).and(json_body()))
            .then(add_members)
            .map(respond)
            .boxed(),
        warp::path!("groups" / String / "members")
            .and(warp::delete().and(me()).and(json_body()))
            .then(remove_member)
            .map(respond)
            .boxed(),
    ])
}

pub(super) fn group_not_found() -> ApiError {
    ApiError::NotFound("Group not found".into())
}

/// The caller's access to a group they belong to. Others' direct rooms look like nothing at all.
fn require_group_member(access: Option<RoomAccess>) -> Result<RoomAccess, ApiError> {
    match access {
        None => Err(group_not_found()),
        Some(a) if a.kind == RoomKind::Direct && !a.is_member => Err(group_not_found()),
        Some(a) if a.kind == RoomKind::Direct => {
            Err(ApiError::BadRequest("This is not a group chat".into()))
        }
        Some(a) if !a.is_member => Err(ApiError::Forbidden(
            "You are not a member of this group".into(),
        )),
        Some(a) => Ok(a),
    }
}

pub(super) async fn group_access(
    state: &AppState,
    segment: &str,
    me: UserId,
) -> Result<(RoomId, RoomAccess), ApiError> {
    let id: RoomId = path_id(segment, "group_id")?.ok_or_else(group_not_found)?;
    let access = require_group_member(state.store.room_access(id, me).await?)?;
    Ok((id, access))
}

/// Order kept, duplicates dropped (the seed failed with a 500 on duplicates, W7).
fn dedup(ids: &[UserId]) -> Vec<UserId> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

async fn check_users_exist(state: &AppState, ids: &[UserId]) -> Result<(), ApiError> {
    match state.store.missing_users(ids).await?.first() {
        Some(id) => Err(ApiError::NotFound(format!("User with ID {id} not found"))),
        None => Ok(()),
    }
}

/// Create a group with its first members; you are its owner. A public group is listed to
/// everyone on the server, who may join it.
#[utoipa::path(post, path = "/groups/create", tag = "groups",
    security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses(
        (status = 201, body = CreateGroupReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn create(
    state: AppState,
    me: CurrentUser,
    req: CreateGroupRequest,
) -> Result<Response, ApiError> {
    let mut members = vec![me.id()];
    members.extend(req.member_ids.iter().copied());
    let members = dedup(&members);
    check_users_exist(&state, &members).await?;
    let group = state
        .store
        .create_group(me.id(), req.name.trim(), &members, req.is_public)
        .await?
        .ok_or_else(|| ApiError::NotFound("A member no longer exists".into()))?;
    let named = state.store.usernames(&members).await?;
    state.messaging().members_added(
        group.id,
        &group.name,
        &named,
        messaging::Announce::EachNewMember,
    );
    Ok(created(&CreateGroupReply {
        message: "Group created successfully".into(),
        group: Group {
            id: group.id,
            name: group.name,
            room_type: RoomKind::Group,
            created_by: group.created_by,
            member_count: group.member_count,
            created_at: group.created_at.into(),
            is_public: group.is_public,
        },
    }))
}

/// Send a message to a group you are in.
#[utoipa::path(post, path = "/groups/send", tag = "groups",
    security(("bearer" = [])),
    request_body = SendGroupRequest,
    responses(
        (status = 201, description = "Stored (or, for a `client_id` already used, the message stored first)", body = SendReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn send(
    state: AppState,
    me: CurrentUser,
    req: SendGroupRequest,
) -> Result<Response, ApiError> {
    let outcome = state
        .messaging()
        .send(NewMessage {
            room_id: req.group_id,
            kind: RoomKind::Group,
            sender_id: me.id(),
            sender_username: me.user.username.clone(),
            sender_full_name: me.user.full_name.clone(),
            content: req.content,
            client_id: req.client_id,
            reply_to: req.reply_to,
            mentions: Vec::new(),
            files: req.attachments,
            attachments: Vec::new(),
            thread_root: None,
        })
        .await?;
    match outcome {
        InsertOutcome::Stored(m) | InsertOutcome::Duplicate(m) => Ok(sent(&m, me.id())),
        InsertOutcome::ClientIdReused => Err(messaging::client_id_reused()),
        InsertOutcome::NotMember => {
            // Only the failure path pays for finding out why.
            let access = state.store.room_access(req.group_id, me.id()).await?;
            require_group_member(access)?;
            Err(ApiError::Forbidden(
                "You are not a member of this group".into(),
            ))
        }
    }
}

/// A page of a group's messages.
#[utoipa::path(get, path = "/groups/{id}/messages", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id, or `#name` / `name` of a group you are in"), HistoryQuery),
    responses(
        (status = 200, description = "A page of the group's messages, oldest first", body = Vec<MessageWithSender>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn history(
    segment: String,
    state: AppState,
    me: CurrentUser,
    q: HistoryQuery,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    Ok(json(&read_page(&state, &me, id, &access, &q).await?))
}

/// Your groups, newest activity first, with unread counts.
#[utoipa::path(get, path = "/groups/my-groups", tag = "groups",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your groups with unread counts", body = Vec<GroupSummary>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn my_groups(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    let groups: Vec<GroupSummary> = state
        .store
        .groups_of(me.id())
        .await?
        .into_iter()
        .map(summary)
        .collect();
    Ok(json(&groups))
}

/// A group as `/groups/my-groups` lists it.
pub(super) fn summary(g: GroupRow) -> GroupSummary {
    GroupSummary {
        id: g.id,
        name: g.name,
        room_type: RoomKind::Group,
        created_by: g.created_by,
        member_count: g.member_count,
        last_message: g.last_message,
        last_message_time: g.last_message_time.map(Into::into),
        last_message_sender: g.last_sender,
        created_at: g.created_at.into(),
        unread_count: g.unread_count,
        mention_count: g.mention_count,
        topic: g.topic,
        is_public: g.is_public,
        muted: g.mute.until.is_some(),
        muted_until: crate::server::http::routes::rooms::shown_until(g.mute),
        mute_all: g.mute.all,
    }
}

/// A group's members.
#[utoipa::path(get, path = "/groups/{id}/members", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id, or `#name` / `name` of a group you are in")),
    responses(
        (status = 200, body = Vec<Member>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn list_members(
    segment: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let (id, _) = group_access(&state, &segment, me.id()).await?;
    let members: Vec<Member> = state
        .store
        .members(id)
        .await?
        .into_iter()
        .map(|m| Member {
            id: m.id,
            username: m.username,
            full_name: m.full_name,
            joined_at: m.joined_at.into(),
            is_admin: m.is_admin,
            role: match (m.is_owner, m.is_admin) {
                (true, _) => "owner",
                (_, true) => "admin",
                _ => "member",
            }
            .into(),
            is_bot: m.is_bot,
        })
        .collect();
    Ok(json(&members))
}

/// Add people to a group (its owner and admins).
#[utoipa::path(post, path = "/groups/{id}/members", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id, or `#name` / `name` of a group you are in")),
    request_body = AddMembersRequest,
    responses(
        (status = 200, description = "Added (a group admin only)", body = AddMembersReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn add_members(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: AddMembersRequest,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    if !access.is_admin(me.id()) {
        return Err(ApiError::Forbidden(
            "Only group creator can add members".into(),
        ));
    }
    let users = dedup(&req.user_ids);
    check_users_exist(&state, &users).await?;
    let added = state
        .store
        .add_members(id, &users)
        .await?
        .ok_or_else(|| ApiError::NotFound("A user no longer exists".into()))?;
    let name = state.store.group_name(id).await?.unwrap_or_default();
    state
        .messaging()
        .members_added(id, &name, &added, messaging::Announce::WholeRoom);
    Ok(json(&AddMembersReply {
        message: format!("Successfully added {} members", added.len()),
        members_added: added.len() as u64,
    }))
}

/// Leave a group (your own id), or remove someone (its admin only).
#[utoipa::path(delete, path = "/groups/{id}/members", tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id, or `#name` / `name` of a group you are in")),
    request_body(content = RemoveMemberRequest, description = "Yourself to leave; anyone else if you are an admin"),
    responses(
        (status = 200, body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn remove_member(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: RemoveMemberRequest,
) -> Result<Response, ApiError> {
    let (id, access) = group_access(&state, &segment, me.id()).await?;
    if req.user_id != me.id() {
        let target = state.store.room_access(id, req.user_id).await?;
        authority::remove_from_group(&access, &me.user, target.as_ref(), req.user_id)?;
    }
    // The removal takes a place in the message log: no message committed after it reaches the
    // member, on any instance.
    match state.store.remove_member(id, req.user_id).await? {
        RemoveOutcome::Removed { username, at } => {
            let by = (req.user_id != me.id()).then_some((me.id(), me.user.username.as_str()));
            state
                .messaging()
                .member_removed(id, (req.user_id, &username), by, at);
            Ok(json(&MessageReply {
                message: "Member removed successfully".into(),
            }))
        }
        RemoveOutcome::NotAMember => Err(ApiError::NotFound("Member not found in group".into())),
    }
}
