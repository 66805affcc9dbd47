//! `PATCH /messages/{id}` and `DELETE /messages/{id}`: the author edits or deletes a message; a
//! group's admin may delete any of the group's.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{
    BodyErrors, Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable,
};
use super::{json, one_of, signed_in};
use crate::proto::{ChangeReply, EditRequest, MessageId, ReactReply, ReactRequest};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::{json_body, path_id};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::StoredChange;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("messages" / String)
            .and(warp::patch().and(me()).and(json_body()))
            .then(edit)
            .map(respond)
            .boxed(),
        warp::path!("messages" / String)
            .and(warp::delete().and(me()))
            .then(delete)
            .map(respond)
            .boxed(),
        warp::path!("messages" / String / "reactions")
            .and(warp::post().and(me()).and(json_body()))
            .then(react)
            .map(respond)
            .boxed(),
        warp::path!("messages" / String / "reactions")
            .and(warp::delete().and(me()).and(json_body()))
            .then(unreact)
            .map(respond)
            .boxed(),
    ])
}

fn message_id(segment: &str) -> Result<MessageId, ApiError> {
    path_id(segment, "message_id")?.ok_or_else(|| ApiError::NotFound("Message not found".into()))
}

fn reply(what: &str, change: &StoredChange) -> Response {
    json(&ChangeReply {
        message: what.into(),
        data: change.to_change(),
    })
}

/// Edit a message of yours: every member sees the new text, marked edited.
#[utoipa::path(patch, path = "/messages/{id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    request_body = EditRequest,
    responses(
        (status = 200, description = "Edited", body = ChangeReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn edit(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: EditRequest,
) -> Result<Response, ApiError> {
    let id = message_id(&segment)?;
    let change = state.messaging().edit(me.id(), id, &req.content).await?;
    Ok(reply("Message edited", &change))
}

/// Delete a message: yours, or any in a group you are the admin of. Its text is gone for good;
/// history shows a tombstone.
#[utoipa::path(delete, path = "/messages/{id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Deleted", body = ChangeReply),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn delete(
    segment: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let id = message_id(&segment)?;
    let change = state.messaging().delete(me.id(), id).await?;
    Ok(reply("Message deleted", &change))
}

/// Adds (or takes back) `me`'s reaction on the message `segment` names, and says what changed.
async fn reaction(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: ReactRequest,
    add: bool,
) -> Result<Response, ApiError> {
    let id = message_id(&segment)?;
    let change = state
        .messaging()
        .react((me.id(), &me.user.username), id, &req.emoji, add)
        .await?;
    let message = match (&change, add) {
        (None, _) => "Nothing changed",
        (Some(_), true) => "Reaction added",
        (Some(_), false) => "Reaction removed",
    };
    Ok(json(&ReactReply {
        message: message.into(),
        data: change.as_ref().map(StoredChange::to_change),
    }))
}

/// React to a message of a room of yours (one of each emoji per person). It is no message: it
/// raises no unread count. Every member sees it live; `sync` brings it to those away.
#[utoipa::path(post, path = "/messages/{id}/reactions", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    request_body = ReactRequest,
    responses(
        (status = 200, description = "Added (or there already: `data` is null)", body = ReactReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn react(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: ReactRequest,
) -> Result<Response, ApiError> {
    reaction(segment, state, me, req, true).await
}

/// Take a reaction of yours back.
#[utoipa::path(delete, path = "/messages/{id}/reactions", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    request_body = ReactRequest,
    responses(
        (status = 200, description = "Taken back (or not there: `data` is null)", body = ReactReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn unreact(
    segment: String,
    state: AppState,
    me: CurrentUser,
    req: ReactRequest,
) -> Result<Response, ApiError> {
    reaction(segment, state, me, req, false).await
}
