//! `/rooms/{id}/read`: mark a direct chat or a group read up to a message; `/rooms/{id}/mute`:
//! mute or unmute it, for yourself, on every client.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, Forbidden, NotFound, Unauthorized, Unavailable};
use super::{authenticated, json, with_state};
use crate::proto::{MarkReadRequest, MuteRequest, MuteState, ReadState, RoomId};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::{optional_json_body, path_id};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{FOREVER, Mute, RoomKind};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let read = warp::path!("rooms" / String / "read")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(authenticated(state.clone()))
        .and(optional_json_body())
        .then(mark_read)
        .map(respond);
    let mute = warp::path!("rooms" / String / "mute")
        .and(warp::put())
        .and(with_state(state.clone()))
        .and(authenticated(state.clone()))
        .and(optional_json_body())
        .then(mute)
        .map(respond);
    let unmute = warp::path!("rooms" / String / "mute")
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(authenticated(state))
        .then(unmute)
        .map(respond);
    read.or(mute).unify().or(unmute).unify().boxed()
}

/// A mute's end as chat lists show it: none for "until unmuted".
pub fn shown_until(mute: Mute) -> Option<crate::proto::Timestamp> {
    let forever: chrono::DateTime<chrono::Utc> = FOREVER.parse().expect("a valid time");
    mute.until.filter(|t| *t < forever).map(Into::into)
}

/// Mute a room for yourself (for `seconds`, or until unmuted): it does not ring, notify or count
/// towards totals on any client, though its own unread count stays; with `all`, mentions of you
/// there are silenced too (they are not marked as mentions).
#[utoipa::path(put, path = "/rooms/{id}/mute", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "A room id")),
    request_body(content = MuteRequest, description = "Empty: until unmuted, mentions still heard"),
    responses(
        (status = 200, body = MuteState),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn mute(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: MuteRequest,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Room not found".into());
    let room_id: RoomId = path_id(&segment, "room_id")?.ok_or_else(not_found)?;
    let until = req
        .seconds
        .map(|s| chrono::Utc::now() + chrono::Duration::seconds(s));
    let until = state
        .store
        .mute(room_id, me.id(), until, req.all)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&MuteState {
        room_id,
        muted: true,
        muted_until: shown_until(Mute {
            until: Some(until),
            all: req.all,
        }),
        all: req.all,
    }))
}

/// Unmute a room.
#[utoipa::path(delete, path = "/rooms/{id}/mute", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "A room id")),
    responses(
        (status = 200, body = MuteState),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn unmute(
    segment: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Room not found".into());
    let room_id: RoomId = path_id(&segment, "room_id")?.ok_or_else(not_found)?;
    if !state.store.unmute(room_id, me.id()).await? {
        return Err(not_found());
    }
    Ok(json(&MuteState {
        room_id,
        muted: false,
        muted_until: None,
        all: false,
    }))
}

/// Mark a room read up to a message, or to its latest.
#[utoipa::path(post, path = "/rooms/{id}/read", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "A room id (a direct chat's `chat_room_id` or a group's `id`)")),
    request_body(content = MarkReadRequest, description = "Up to `message_id`, or (empty body) to the latest"),
    responses(
        (status = 200, body = ReadState),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn mark_read(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: MarkReadRequest,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Room not found".into());
    let room_id: RoomId = path_id(&segment, "room_id")?.ok_or_else(not_found)?;
    let access = state
        .store
        .room_access(room_id, me.id())
        .await?
        .ok_or_else(not_found)?;
    if !access.is_member {
        return Err(match access.kind {
            RoomKind::Direct => not_found(),
            RoomKind::Group => ApiError::Forbidden("You are not a member of this room".into()),
        });
    }
    let read = state
        .messaging()
        .read(me.id(), &me.user.username, room_id, req.message_id)
        .await?
        .ok_or_else(|| ApiError::Forbidden("You are not a member of this room".into()))?;
    Ok(json(&ReadState {
        message: "Marked as read".into(),
        room_id,
        last_read_message_id: read.last_read,
        unread_count: read.unread,
        mention_count: read.mentions,
    }))
}
