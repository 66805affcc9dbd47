//! `GET /search?q=`: full-text search over the messages of the caller's rooms.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{Invalid, NotFound, Unauthorized, Unavailable};
use super::{json, signed_in};
use crate::proto::SearchReply;
use crate::server::commands::ApiError;
use crate::server::commands::validate::MessageSearchQuery;
use crate::server::http::error::respond;
use crate::server::http::extract::query;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::MessageSearch;

const DEFAULT_LIMIT: i64 = 20;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("search")
        .and(warp::get().and(signed_in(state)).and(query()))
        .then(search)
        .map(respond)
        .boxed()
}

/// Messages of your rooms (or of one) containing the words, newest first. Case and accents of
/// plain letters aside, words match as written: no language's stemming.
#[utoipa::path(get, path = "/search", tag = "messages",
    security(("bearer" = [])),
    params(MessageSearchQuery),
    responses(
        (status = 200, description = "Matching messages, newest first", body = SearchReply),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn search(
    state: AppState,
    me: CurrentUser,
    q: MessageSearchQuery,
) -> Result<Response, ApiError> {
    if let Some(room) = q.room_id {
        let mine = state
            .store
            .room_access(room, me.id())
            .await?
            .is_some_and(|a| a.is_member);
        if !mine {
            return Err(ApiError::NotFound("Room not found".into()));
        }
    }
    let query = MessageSearch {
        text: q.q,
        room: q.room_id,
        before: q.before,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT),
    };
    Ok(json(&state.messaging().search(me.id(), &query).await?))
}
