//! `/invites`: invite codes, for a server that admits new accounts by invitation (its default).
//! Anyone on the server may invite; admins see and revoke everybody's invites, others their own.

use chrono::{Duration, Utc};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, NotFound, Unauthorized, Unavailable};
use super::{created, json, one_of, signed_in};
use crate::proto::MessageReply;
use crate::proto::team::{CreateInviteRequest, Invite, RevokeInviteRequest};
use crate::server::auth::Registration;
use crate::server::auth::secrets::{self, SecretKind};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::json_body;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::Audit;

/// An invite's life when its maker does not say: 7 days.
pub const DEFAULT_INVITE_DAYS: i64 = 7;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("invites")
            .and(warp::post().and(me()).and(json_body()))
            .then(create)
            .map(respond)
            .boxed(),
        warp::path!("invites")
            .and(warp::get().and(me()))
            .then(list)
            .map(respond)
            .boxed(),
        warp::path!("invites" / "revoke")
            .and(warp::post().and(me()).and(json_body()))
            .then(revoke)
            .map(respond)
            .boxed(),
    ])
}

/// Whose invites the caller may see and revoke: None for everybody's.
fn maker_scope(me: &CurrentUser) -> Option<i32> {
    (!me.user.role.administers()).then_some(me.id())
}

/// A new invite code (shown once): single use and 7 days unless asked otherwise.
#[utoipa::path(post, path = "/invites", tag = "invites",
    security(("bearer" = [])),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "The invite, with its code", body = Invite),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn create(
    state: AppState,
    me: CurrentUser,
    req: CreateInviteRequest,
) -> Result<Response, ApiError> {
    if state.registration == Registration::Closed {
        return Err(ApiError::BadRequest(
            "This server takes no new accounts (--registration closed): an invite would not work"
                .into(),
        ));
    }
    if me.user.is_bot {
        return Err(ApiError::Forbidden("A bot cannot invite".into()));
    }
    let code = secrets::generate(SecretKind::Invite);
    let uses = req.max_uses.unwrap_or(1);
    let lifetime = req
        .expires_in_seconds
        .map_or(Duration::days(DEFAULT_INVITE_DAYS), Duration::seconds);
    let audit = Audit::by(
        &me.user,
        "invite.create",
        None,
        Some(format!("{uses} use(s), {} hour(s)", lifetime.num_hours())),
    );
    let mut invite = state
        .store
        .create_invite(&code.digest, uses, Utc::now() + lifetime, &audit)
        .await?;
    invite.code = Some(code.text);
    Ok(created(&invite))
}

/// Invites, newest first: your own, or everybody's for an admin.
#[utoipa::path(get, path = "/invites", tag = "invites",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Invite>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn list(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    Ok(json(&state.store.invites(maker_scope(&me)).await?))
}

/// Revoke an invite by its id or its code: it admits nobody more.
#[utoipa::path(post, path = "/invites/revoke", tag = "invites",
    security(("bearer" = [])),
    request_body = RevokeInviteRequest,
    responses(
        (status = 200, body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn revoke(
    state: AppState,
    me: CurrentUser,
    req: RevokeInviteRequest,
) -> Result<Response, ApiError> {
    let digest = req.code.as_deref().map(secrets::digest);
    let audit = Audit::by(
        &me.user,
        "invite.revoke",
        None,
        req.id.map(|id| format!("invite {id}")),
    );
    let revoked = state
        .store
        .revoke_invite(req.id, digest.as_deref(), maker_scope(&me), &audit)
        .await?;
    if !revoked {
        return Err(ApiError::NotFound("No live invite of yours matches".into()));
    }
    Ok(json(&MessageReply {
        message: "Invite revoked".into(),
    }))
}
