//! `/rooms/{id}/read`: mark a direct chat or a group read up to a message.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, Forbidden, NotFound, Unauthorized, Unavailable};
use super::{authenticated, json, with_state};
use crate::proto::{MarkReadRequest, ReadState, RoomId};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::{optional_json_body, path_id};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::RoomKind;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("rooms" / String / "read")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(authenticated(state))
        .and(optional_json_body())
        .then(mark_read)
        .map(respond)
        .boxed()
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
