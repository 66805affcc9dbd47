//! `/tokens`: personal access tokens. Each is shown once, kept as a digest, and works as
//! `Authorization: Bearer TOKEN` on REST and the WebSocket exactly like an access token, without
//! refresh; revoking one ends its session, and its sockets close on every instance.

use chrono::{DateTime, Duration, Utc};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, Conflict, NotFound, Unauthorized, Unavailable};
use super::{created, json, one_of, signed_in};
use crate::proto::MessageReply;
use crate::proto::team::{AccessToken, CreateTokenRequest, CreatedToken};
use crate::server::auth::secrets::{self, SecretKind};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::json_body;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::UserRecord;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("tokens")
            .and(warp::post().and(me()).and(json_body()))
            .then(create)
            .map(respond)
            .boxed(),
        warp::path!("tokens")
            .and(warp::get().and(me()))
            .then(list)
            .map(respond)
            .boxed(),
        warp::path!("tokens" / String)
            .and(warp::delete().and(me()))
            .then(revoke)
            .map(respond)
            .boxed(),
    ])
}

/// Makes a token for `user` named `name`; the reply is the only place its text appears.
pub(super) async fn issue_token(
    state: &AppState,
    user: &UserRecord,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedToken, ApiError> {
    let secret = secrets::generate(SecretKind::AccessToken);
    state
        .store
        .create_token(user.id, name, &secret.digest, expires_at)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "You already have a token named {name}: revoke it first or choose another name"
            ))
        })?;
    Ok(CreatedToken {
        name: name.to_string(),
        token: secret.text,
        expires_at: expires_at.map(Into::into),
        username: user.username.clone(),
    })
}

/// A new personal access token (shown once).
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    security(("bearer" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreatedToken),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn create(
    state: AppState,
    me: CurrentUser,
    req: CreateTokenRequest,
) -> Result<Response, ApiError> {
    let expires_at = req
        .expires_in_seconds
        .map(|s| Utc::now() + Duration::seconds(s));
    Ok(created(
        &issue_token(&state, &me.user, &req.name, expires_at).await?,
    ))
}

/// Your live tokens, by name (never their text).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<AccessToken>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn list(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    Ok(json(&state.store.tokens(me.id()).await?))
}

/// Revoke a token of yours: it stops working at once, and its sockets close.
#[utoipa::path(delete, path = "/tokens/{name}", tag = "tokens",
    security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, body = MessageReply),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn revoke(
    name: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    let session = state
        .store
        .revoke_token(me.id(), &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("You have no token named {name}")))?;
    state.messaging().session_ended(session);
    Ok(json(&MessageReply {
        message: format!("Token {name} revoked"),
    }))
}
