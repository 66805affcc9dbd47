//! `GET /messages/{id}/thread`: a thread, its first message and every reply in order, for a
//! member of its room (any message of the thread names it).

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::history::with_sender;
use super::responses::{Invalid, NotFound, Unauthorized, Unavailable};
use super::{json, signed_in};
use crate::proto::{MessageId, ThreadReply};
use crate::server::commands::ApiError;
use crate::server::commands::validate::ThreadQuery;
use crate::server::http::error::respond;
use crate::server::http::extract::{path_id, query};
use crate::server::state::{AppState, CurrentUser};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("messages" / String / "thread")
        .and(warp::get())
        .and(signed_in(state))
        .and(query::<ThreadQuery>())
        .then(thread)
        .map(respond)
        .boxed()
}

/// A thread: its first message (with its reply count) and the replies, oldest first.
#[utoipa::path(get, path = "/messages/{id}/thread", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Any message of the thread"), ThreadQuery),
    responses(
        (status = 200, description = "The thread", body = ThreadReply),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn thread(
    segment: String,
    state: AppState,
    me: CurrentUser,
    q: ThreadQuery,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Message not found".into());
    let id: MessageId = path_id(&segment, "message_id")?.ok_or_else(not_found)?;
    let (room, root) = state
        .store
        .thread_and_room(id)
        .await?
        .ok_or_else(not_found)?;
    let access = state
        .store
        .room_access(room, me.id())
        .await?
        .filter(|a| a.is_member)
        .ok_or_else(not_found)?;
    let mut messages = state
        .store
        .thread(root, q.after_id.unwrap_or(0), q.limit.unwrap_or(500))
        .await?
        .into_iter()
        .map(|m| with_sender(m, me.id(), access.last_read, access.others_last_read));
    let root = messages.next().ok_or_else(not_found)?;
    Ok(json(&ThreadReply {
        root,
        replies: messages.collect(),
    }))
}
