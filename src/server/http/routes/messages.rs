//! `/messages/*`: direct messages between two people, their history, and the list of direct chats.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::history::{read_page, to_message};
use super::responses::{
    BadRequest, BodyErrors, Conflict, Invalid, NotFound, TooManyRequests, Unauthorized, Unavailable,
};
use super::{authenticated, created, json, with_state};
use crate::proto::{ChatSummary, MessageWithSender, SendDirectRequest, SendReply, UserId};
use crate::server::commands::ApiError;
use crate::server::commands::messaging;
use crate::server::commands::validate::HistoryQuery;
use crate::server::http::error::respond;
use crate::server::http::extract::{json_body, path_id, query};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{InsertOutcome, NewMessage, RoomKind, StoredMessage};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let s = || with_state(state.clone());
    let auth = || authenticated(state.clone());
    let send = warp::path!("messages" / "send")
        .and(warp::post())
        .and(s())
        .and(auth())
        .and(json_body())
        .then(send)
        .map(respond);
    let history = warp::path!("messages" / "chat" / String)
        .and(warp::get())
        .and(s())
        .and(auth())
        .and(query())
        .then(history)
        .map(respond);
    let chats = warp::path!("messages" / "chats")
        .and(warp::get())
        .and(s())
        .and(auth())
        .then(chats)
        .map(respond);
    send.or(history).unify().or(chats).unify().boxed()
}

/// The reply to a send, also for a retry that found its first message.
pub fn sent(m: &StoredMessage, sender: UserId) -> Response {
    created(&SendReply {
        message: "Message sent successfully".into(),
        data: to_message(m, sender, m.id, 0),
    })
}

/// Send a direct message.
///
/// With a `client_id`, a retry returns the first message instead of storing a second.
#[utoipa::path(post, path = "/messages/send", tag = "messages",
    security(("bearer" = [])),
    request_body = SendDirectRequest,
    responses(
        (status = 201, description = "Stored (or, for a `client_id` already used, the message stored first)", body = SendReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn send(
    state: AppState,
    me: CurrentUser,
    req: SendDirectRequest,
) -> Result<Response, ApiError> {
    if req.recipient_id == me.id() {
        return Err(ApiError::BadRequest(
            "Cannot send message to yourself".into(),
        ));
    }
    let lookup = state
        .store
        .find_direct_room(me.id(), req.recipient_id)
        .await?;
    if !lookup.other_exists {
        return Err(ApiError::NotFound("Recipient user not found".into()));
    }
    let room_id = match lookup.room_id {
        Some(id) => id,
        None => {
            state
                .store
                .get_or_create_direct_room(me.id(), req.recipient_id)
                .await?
        }
    };
    state
        .messaging()
        .direct_room_ready(room_id, me.id(), req.recipient_id);
    let outcome = state
        .messaging()
        .send(NewMessage {
            room_id,
            kind: RoomKind::Direct,
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
        // Both are members of their direct room from its creation; nobody can leave it.
        InsertOutcome::NotMember => Err(ApiError::internal(format!(
            "sender {} is not in direct room {room_id}",
            me.id()
        ))),
    }
}

/// A page of the direct chat with another person (empty if you have none yet).
#[utoipa::path(get, path = "/messages/chat/{id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i32, Path, description = "The other person's user id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of the conversation, oldest first", body = Vec<MessageWithSender>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
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
    let not_found = || ApiError::NotFound("User not found".into());
    let other: UserId = path_id(&segment, "other_user_id")?.ok_or_else(not_found)?;
    if other == me.id() {
        return Err(ApiError::BadRequest(
            "Cannot open a chat with yourself".into(),
        ));
    }
    let lookup = state.store.find_direct_room(me.id(), other).await?;
    // A chat with someone since deactivated stays readable: their messages stay.
    if !lookup.other_exists && lookup.room_id.is_none() {
        return Err(not_found());
    }
    // Reading never creates the room (W9): no room yet is an empty history.
    let Some(room_id) = lookup.room_id else {
        return Ok(json(&Vec::<MessageWithSender>::new()));
    };
    let access = state
        .store
        .room_access(room_id, me.id())
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&read_page(&state, &me, room_id, &access, &q).await?))
}

/// Your direct chats, newest activity first, with unread counts.
#[utoipa::path(get, path = "/messages/chats", tag = "messages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your direct chats, most recent first", body = Vec<ChatSummary>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn chats(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    let rows = state.store.direct_chats(me.id()).await?;
    let chats: Vec<ChatSummary> = rows
        .into_iter()
        .map(|r| ChatSummary {
            chat_room_id: r.room_id,
            other_user_id: r.other_id,
            other_user_username: r.other_username,
            other_user_full_name: r.other_full_name,
            last_message: r.last_message.unwrap_or_default(),
            last_message_time: r.last_message_time.map(Into::into),
            last_message_sender: r.last_sender,
            unread_count: r.unread_count,
            mention_count: r.mention_count,
            muted: r.mute.until.is_some(),
            muted_until: super::rooms::shown_until(r.mute),
            mute_all: r.mute.all,
        })
        .collect();
    Ok(json(&chats))
}
