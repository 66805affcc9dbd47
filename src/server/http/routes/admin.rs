//! `/admin/*`: a server's administration, for its admins and owners. The accounts, deactivation
//! and reactivation, one-time password reset codes, roles (owners only), bot accounts, and the
//! audit log every one of these actions is written to.

use chrono::{Duration, Utc};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};
use super::tokens::issue_token;
use super::{created, json, one_of, signed_in};
use crate::proto::team::{
    AdminUser, AuditEntry, BotCreated, CreateBotRequest, ResetCode, SetRoleRequest,
};
use crate::proto::{MessageReply, ServerRole};
use crate::server::auth::secrets::{self, SecretKind};
use crate::server::commands::validate::AuditQuery;
use crate::server::commands::{ApiError, authority};
use crate::server::http::error::respond;
use crate::server::http::extract::{json_body, query};
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{Audit, CreateUserOutcome, RoleOutcome, UserRecord};

/// How long an admin's password reset code works.
pub const RESET_CODE_HOURS: i64 = 1;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let me = || signed_in(state.clone());
    one_of([
        warp::path!("admin" / "users")
            .and(warp::get().and(me()))
            .then(users)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "users" / String / "deactivate")
            .and(warp::post().and(me()))
            .then(deactivate)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "users" / String / "reactivate")
            .and(warp::post().and(me()))
            .then(reactivate)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "users" / String / "reset-password")
            .and(warp::post().and(me()))
            .then(reset_password)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "users" / String / "role")
            .and(warp::put().and(me()).and(json_body()))
            .then(set_role)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "bots")
            .and(warp::post().and(me()).and(json_body()))
            .then(create_bot)
            .map(respond)
            .boxed(),
        warp::path!("admin" / "log")
            .and(warp::get().and(me()).and(query()))
            .then(log)
            .map(respond)
            .boxed(),
    ])
}

/// The account an admin names, active or not.
async fn account(state: &AppState, username: &str) -> Result<UserRecord, ApiError> {
    state
        .store
        .find_any_user(username)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No user named {username}")))
}

/// Every account: role, whether active, whether a bot, online now or when last seen.
#[utoipa::path(get, path = "/admin/users", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<AdminUser>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn users(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    Ok(json(&state.store.accounts().await?))
}

/// Deactivate an account: every session ends and every socket closes, on every instance; login
/// is refused; its messages stay.
#[utoipa::path(post, path = "/admin/users/{username}/deactivate", tag = "admin",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = MessageReply),
        (status = 400, description = "Yourself, or an owner (by an admin)", body = crate::proto::ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn deactivate(
    username: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    let user = account(&state, &username).await?;
    authority::deactivate(&me.user, &user)?;
    let changed = state
        .store
        .set_active(
            user.id,
            false,
            &Audit::by(&me.user, "user.deactivate", Some(&user.username), None),
        )
        .await?;
    // Whether or not it already was: nothing of theirs may stay open.
    state.messaging().user_sessions_ended(user.id);
    let message = if changed {
        format!("@{} deactivated: every session has ended", user.username)
    } else {
        format!("@{} was already deactivated", user.username)
    };
    Ok(json(&MessageReply { message }))
}

/// Let a deactivated account sign in again.
#[utoipa::path(post, path = "/admin/users/{username}/reactivate", tag = "admin",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = MessageReply),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn reactivate(
    username: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    let user = account(&state, &username).await?;
    let changed = state
        .store
        .set_active(
            user.id,
            true,
            &Audit::by(&me.user, "user.reactivate", Some(&user.username), None),
        )
        .await?;
    state.messaging().profile_changed(user.id);
    let message = if changed {
        format!("@{} reactivated: they can log in again", user.username)
    } else {
        format!("@{} was already active", user.username)
    };
    Ok(json(&MessageReply { message }))
}

/// A one-time code (valid one hour) with which the user sets a new password
/// (`POST /auth/reset-password`); an older code of theirs stops working.
#[utoipa::path(post, path = "/admin/users/{username}/reset-password", tag = "admin",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 201, body = ResetCode),
        (status = 400, description = "A bot (it has no password)", body = crate::proto::ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn reset_password(
    username: String,
    state: AppState,
    me: CurrentUser,
) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    let user = account(&state, &username).await?;
    authority::reset_password_of(&me.user, &user)?;
    let code = secrets::generate(SecretKind::PasswordReset);
    let expires_at = Utc::now() + Duration::hours(RESET_CODE_HOURS);
    let line = Audit::by(&me.user, "user.reset-password", Some(&user.username), None);
    state
        .store
        .create_reset_code(user.id, &code.digest, expires_at, &line)
        .await?;
    Ok(created(&ResetCode {
        username: user.username,
        code: code.text,
        expires_at: expires_at.into(),
    }))
}

/// Make someone an owner, an admin or a member again (owners only). The last active owner
/// stays one.
#[utoipa::path(put, path = "/admin/users/{username}/role", tag = "admin",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    request_body = SetRoleRequest,
    responses(
        (status = 200, body = AdminUser),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "It would leave the server without an owner", body = crate::proto::ErrorBody),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn set_role(
    username: String,
    state: AppState,
    me: CurrentUser,
    req: SetRoleRequest,
) -> Result<Response, ApiError> {
    authority::set_roles(&me.user)?;
    let user = account(&state, &username).await?;
    if user.is_bot && req.role != ServerRole::Member {
        return Err(ApiError::BadRequest("A bot cannot administer".into()));
    }
    let detail = Some(format!("{} -> {}", user.role, req.role));
    let line = Audit::by(&me.user, "user.role", Some(&user.username), detail);
    match state.store.set_role(user.id, req.role, &line).await? {
        RoleOutcome::Changed => {}
        RoleOutcome::LastOwner => {
            return Err(ApiError::Conflict(
                "The server would have no owner left: make someone else an owner first".into(),
            ));
        }
    }
    // Every instance reads the account again: the new role counts at once.
    state.messaging().profile_changed(user.id);
    let row = state
        .store
        .account(user.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No user named {username}")))?;
    Ok(json(&row))
}

/// A bot account: it cannot log in with a password, only use tokens; its first token is in the
/// reply (shown once).
#[utoipa::path(post, path = "/admin/bots", tag = "admin",
    security(("bearer" = [])),
    request_body = CreateBotRequest,
    responses(
        (status = 201, body = BotCreated),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn create_bot(
    state: AppState,
    me: CurrentUser,
    req: CreateBotRequest,
) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    let full_name = req
        .full_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let bot = match state.store.create_bot(&req.username, full_name).await? {
        CreateUserOutcome::Created(bot) => bot,
        _ => return Err(ApiError::Conflict("Username already taken".into())),
    };
    state
        .store
        .audit(&Audit::by(
            &me.user,
            "bot.create",
            Some(&bot.username),
            None,
        ))
        .await?;
    let token = issue_token(&state, &bot, "default", None).await?;
    Ok(created(&BotCreated {
        user: bot.to_public(),
        token,
    }))
}

/// The audit log, newest first: who did what to whom, when.
#[utoipa::path(get, path = "/admin/log", tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = Vec<AuditEntry>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = super::responses::Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn log(
    state: AppState,
    me: CurrentUser,
    q: AuditQuery,
) -> Result<Response, ApiError> {
    authority::administer(&me.user)?;
    let entries = state
        .store
        .audit_log(q.limit.unwrap_or(50), q.before_id)
        .await?;
    Ok(json(&entries))
}
