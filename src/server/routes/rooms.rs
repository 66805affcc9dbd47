//! `/rooms/{id}/read`: mark a direct chat or a group read up to a message.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::{authenticated, json, with_state};
use crate::proto::{MarkReadRequest, ReadState, RoomId};
use crate::server::error::{ApiError, respond};
use crate::server::extract::{optional_json_body, path_id};
use crate::server::messaging;
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

async fn mark_read(
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
    let upto = state
        .store
        .message_in_room(room_id, req.message_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Message not found in this room".into()))?;
    let (pointer, unread) = messaging::mark_read(&state, me.id(), &me.user.username, room_id, upto)
        .await?
        .ok_or_else(|| ApiError::Forbidden("You are not a member of this room".into()))?;
    Ok(json(&ReadState {
        message: "Marked as read".into(),
        room_id,
        last_read_message_id: pointer,
        unread_count: unread,
    }))
}
