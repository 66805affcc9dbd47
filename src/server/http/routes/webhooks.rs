//! Incoming webhooks: `/webhooks` to make, list and revoke them (a group's admins, or the
//! server's), and `POST /hooks/{secret}`, where anything that can send an HTTP request posts
//! `{"text": "..."}` into the group as the webhook's bot, live and in history like any message.

use std::net::IpAddr;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{
    BodyErrors, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, Unavailable,
};
use super::{created, json, one_of, peer_ip, signed_in, with_state};
use crate::proto::MessageReply;
use crate::proto::team::{CreateWebhookRequest, Webhook, WebhookPost, WebhookPosted};
use crate::server::auth::secrets::{self, SecretKind};
use crate::server::commands::ApiError;
use crate::server::commands::{authority, messaging};
use crate::server::http::error::respond;
use crate::server::http::extract::json_body;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{Audit, InsertOutcome, NewMessage, NewWebhook, RoomKind};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("webhooks")
            .and(warp::post().and(me()).and(json_body()))
            .then(create)
            .map(respond)
            .boxed(),
        warp::path!("webhooks")
            .and(warp::get().and(me()))
            .then(list)
            .map(respond)
            .boxed(),
        warp::path!("webhooks" / i32)
            .and(warp::delete().and(me()))
            .then(revoke)
            .map(respond)
            .boxed(),
        warp::path!("hooks" / String)
            .and(warp::post().and(with_state(state.clone())).and(peer_ip()))
            .and(json_body())
            .then(post)
            .map(respond)
            .boxed(),
    ])
}

/// A group's admin, or the server's admin who is in the group, may manage its webhooks.
async fn may_manage(state: &AppState, me: &CurrentUser, group: i32) -> Result<(), ApiError> {
    let not_found = || ApiError::NotFound("Group not found".into());
    let access = state
        .store
        .room_access(group, me.id())
        .await?
        .filter(|a| a.kind == RoomKind::Group && a.is_member)
        .ok_or_else(not_found)?;
    authority::manage_webhooks(&access, &me.user)
}

/// A webhook for a group: its address is in the reply (shown once).
#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The webhook, with its secret `path`", body = Webhook),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn create(
    state: AppState,
    me: CurrentUser,
    req: CreateWebhookRequest,
) -> Result<Response, ApiError> {
    may_manage(&state, &me, req.group_id).await?;
    let name = match req.name {
        Some(name) => name,
        None => {
            let group = state.store.group_name(req.group_id).await?;
            default_name(group.as_deref().unwrap_or("group"), req.group_id)
        }
    };
    let secret = secrets::generate(SecretKind::Webhook);
    let hook = NewWebhook {
        room_id: req.group_id,
        name: &name,
        digest: &secret.digest,
    };
    let audit = Audit::by(
        &me.user,
        "webhook.create",
        Some(&name),
        Some(format!("group {}", req.group_id)),
    );
    let mut webhook = state
        .store
        .create_webhook(&hook, &audit)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "The name {name} is taken: give the webhook another (--name)"
            ))
        })?;
    webhook.path = Some(format!("/hooks/{}", secret.text));
    Ok(created(&webhook))
}

/// `GROUP-hook`, from the group's name as far as a username allows.
fn default_name(group: &str, id: i32) -> String {
    let base: String = group
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(40)
        .collect();
    if base.is_empty() {
        format!("group{id}-hook")
    } else {
        format!("{base}-hook")
    }
}

/// The webhooks of your groups.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Webhook>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn list(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    Ok(json(&state.store.webhooks(Some(me.id())).await?))
}

/// Revoke a webhook: its address stops working, its bot is deactivated, its messages stay.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = i32, Path)),
    responses(
        (status = 200, body = MessageReply),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn revoke(
    id: i32,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("No webhook {id}"));
    let (group, bot, name) = state.store.webhook(id).await?.ok_or_else(not_found)?;
    may_manage(&state, &me, group).await.map_err(|e| match e {
        ApiError::NotFound(_) => not_found(),
        other => other,
    })?;
    let audit = Audit::by(
        &me.user,
        "webhook.revoke",
        Some(&name),
        Some(format!("group {group}")),
    );
    if !state.store.revoke_webhook(id, &audit).await? {
        return Err(not_found());
    }
    state.messaging().user_sessions_ended(bot);
    Ok(json(&MessageReply {
        message: format!("Webhook {name} revoked"),
    }))
}

/// Post into the webhook's group (Slack's body: `{"text": "..."}`), on the webhook's own send
/// limit. Its address is its only credential.
#[utoipa::path(post, path = "/hooks/{secret}", tag = "webhooks",
    params(("secret" = String, Path)),
    request_body = WebhookPost,
    responses(
        (status = 200, body = WebhookPosted),
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn post(
    secret: String,
    state: AppState,
    peer: Option<IpAddr>,
    req: WebhookPost,
) -> Result<Response, ApiError> {
    let gone = || ApiError::NotFound("No such webhook (revoked, or never made)".into());
    let found = if SecretKind::Webhook.marks(&secret) {
        state
            .store
            .webhook_by_secret(&secrets::digest(&secret))
            .await?
    } else {
        None
    };
    let Some(hook) = found else {
        // Only misses spend the address's budget: a guesser is slowed like a login guesser,
        // a busy CI posting to a good address is not.
        state.auth_throttle.from_address(peer)?;
        return Err(gone());
    };
    let outcome = state
        .messaging()
        .send(NewMessage {
            room_id: hook.room_id,
            kind: RoomKind::Group,
            sender_id: hook.bot.id,
            sender_username: hook.bot.username.clone(),
            sender_full_name: hook.bot.full_name.clone(),
            content: req.text,
            client_id: None,
            reply_to: None,
            mentions: Vec::new(),
            files: Vec::new(),
            attachments: Vec::new(),
            thread_root: None,
        })
        .await?;
    match outcome {
        InsertOutcome::Stored(m) | InsertOutcome::Duplicate(m) => Ok(json(&WebhookPosted {
            ok: true,
            message_id: m.id,
        })),
        InsertOutcome::ClientIdReused => Err(messaging::client_id_reused()),
        InsertOutcome::NotMember => Err(ApiError::NotFound(
            "This webhook's bot is no longer in its group".into(),
        )),
    }
}
