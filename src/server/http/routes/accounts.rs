//! `/auth/*`: register, login, token refresh (rotating), logout, logout everywhere, password change,
//! who am I, and one's own profile.

use std::net::IpAddr;

use uuid::Uuid;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{BodyErrors, Conflict, TooManyRequests, Unauthorized, Unavailable};
use super::{authenticated, created, json, one_of, peer_ip, signed_in, with_state};
use crate::proto::team::ResetPasswordRequest;
use crate::proto::{
    AuthReply, ChangePasswordRequest, ErrorBody, LoginRequest, LogoutAllReply, MessageReply,
    RefreshRequest, RegisterRequest, ServerRole, Tokens, UpdateProfileRequest, User,
};
use crate::server::auth::secrets;
use crate::server::auth::{self, AuthError, Registration, Source, TokenKind};
use crate::server::commands::ApiError;
use crate::server::commands::validate::normalise_email;
use crate::server::http::error::respond;
use crate::server::http::extract::json_body;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{Admission, CreateUserOutcome, NewUser, ProfileOutcome, RotateOutcome};

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let s = || with_state(state.clone());
    let user = || signed_in(state.clone());
    one_of([
        warp::path!("auth" / "register")
            .and(warp::post().and(s()).and(peer_ip()).and(json_body()))
            .then(register)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "login")
            .and(warp::post().and(s()).and(peer_ip()).and(json_body()))
            .then(login)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "refresh")
            .and(warp::post().and(s()).and(json_body()))
            .then(refresh)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "logout")
            .and(warp::post().and(s()).and(json_body()))
            .then(logout)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "logout-all")
            .and(warp::post().and(user()))
            .then(logout_all)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "change-password")
            .and(warp::post().and(s()).and(peer_ip()))
            .and(authenticated(state.clone()).and(json_body()))
            .then(change_password)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "reset-password")
            .and(warp::post().and(s()).and(peer_ip()).and(json_body()))
            .then(reset_password)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "me")
            .and(warp::get().and(authenticated(state.clone())))
            .map(me)
            .boxed(),
        warp::path!("auth" / "me")
            .and(warp::patch().and(s()).and(peer_ip()))
            .and(authenticated(state.clone()).and(json_body()))
            .then(update_profile)
            .map(respond)
            .boxed(),
    ])
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = User),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) fn me(me: CurrentUser) -> Response {
    json(&me.user.to_proto())
}

/// Change one's own full name or email; the email only with the current password.
#[utoipa::path(patch, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The account as it is now", body = User),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn update_profile(
    state: AppState,
    peer: Option<IpAddr>,
    me: CurrentUser,
    req: UpdateProfileRequest,
) -> Result<Response, ApiError> {
    let email = req.email.as_deref().and_then(normalise_email);
    let new_email = email.as_deref().filter(|e| *e != me.user.email);
    if new_email.is_some() {
        let Some(password) = req.current_password else {
            return Err(ApiError::BadRequest(
                "Changing the email needs the current password".into(),
            ));
        };
        check_own_password(&state, peer, &me, password).await?;
    }
    let full_name = req
        .full_name
        .as_deref()
        .map(|name| Some(name.trim()).filter(|n| !n.is_empty()));
    match state
        .store
        .update_profile(me.id(), full_name, new_email)
        .await?
    {
        ProfileOutcome::Updated(user) => {
            state.messaging().profile_changed(me.id());
            Ok(json(&user.to_proto()))
        }
        ProfileOutcome::EmailTaken => Err(ApiError::Conflict("Email already registered".into())),
    }
}

fn taken(outcome: CreateUserOutcome) -> ApiError {
    match outcome {
        CreateUserOutcome::EmailTaken => ApiError::Conflict("Email already registered".into()),
        _ => ApiError::Conflict("Username already taken".into()),
    }
}

/// Why a registration is not let in: the same words for an unknown, used, expired or revoked
/// invite code (no oracle for codes).
fn not_admitted(rule: Registration, code_given: bool) -> ApiError {
    ApiError::Forbidden(
        match (rule, code_given) {
            (Registration::Closed, _) => "This server is not taking new accounts",
            (_, false) => {
                "This server admits new accounts by invitation: ask someone on it for an invite \
                 code (`rtchat invite`) and register with it (`--invite CODE`)"
            }
            (_, true) => {
                "This invite code is not valid (unknown, used up, expired or revoked): ask for a \
                 new one"
            }
        }
        .into(),
    )
}

/// Create an account and log in: the reply carries the user and a first pair of tokens.
///
/// The server's first account needs no invite and becomes its owner; after it, the server's
/// `--registration` rule decides (by default an `invite` code is needed).
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = AuthReply),
        BodyErrors,
        (status = 403, description = "Needs an invite code, the code is not valid, or the server takes no new accounts", body = ErrorBody),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn register(
    state: AppState,
    peer: Option<IpAddr>,
    req: RegisterRequest,
) -> Result<Response, ApiError> {
    Ok(created(&create_account(&state, peer, req).await?))
}

/// A new account and its first session (`register`, and the web client's).
pub(super) async fn create_account(
    state: &AppState,
    peer: Option<IpAddr>,
    req: RegisterRequest,
) -> Result<AuthReply, ApiError> {
    // Before anything is looked up: "already registered" must not answer at the rate of a loop.
    state.auth_throttle.from_address(peer)?;
    let email = normalise_email(&req.email)
        .ok_or_else(|| ApiError::BadRequest("value is not a valid email address".into()))?;
    let code = req
        .invite
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(secrets::digest);
    let rule = state.registration;
    let admission = match rule {
        Registration::Open => Admission::Open,
        Registration::Invite => Admission::Invite(code.as_deref()),
        Registration::Closed => Admission::Closed,
    };
    // Whoever cannot get in learns nothing more (not even which names are taken) and costs no
    // bcrypt; the insert checks again, atomically.
    let may_pass = match admission {
        Admission::Open => true,
        Admission::Invite(Some(code)) => state.store.invite_usable(code).await?,
        _ => false,
    };
    if !may_pass && state.store.has_users().await? {
        return Err(not_admitted(rule, code.is_some()));
    }
    // Checked before hashing so a taken name costs no bcrypt; the unique indexes still decide races.
    if let Some(outcome) = state.store.name_taken(&req.username, &email).await? {
        return Err(taken(outcome));
    }
    let hash = state.hasher.hash(req.password, Source::of(peer)).await?;
    let id = state.store.reserve_user_id().await?;
    let issued = state.keys.issue(id, Uuid::new_v4())?;
    let full_name = req
        .full_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let new_user = NewUser {
        id,
        username: &req.username,
        email: &email,
        password_hash: &hash,
        full_name,
        source: peer,
    };
    match state
        .store
        .create_user(&new_user, &issued.refresh, admission)
        .await?
    {
        CreateUserOutcome::Created(user) => {
            if user.role == ServerRole::Owner {
                tracing::info!(username = %user.username, "the server's first account: its owner");
            }
            Ok(AuthReply {
                message: "User registered successfully".into(),
                user: user.to_proto(),
                tokens: issued.tokens,
            })
        }
        CreateUserOutcome::NotAdmitted => Err(not_admitted(rule, code.is_some())),
        outcome => Err(taken(outcome)),
    }
}

/// Set a new password with a one-time code from an admin; every session of the account ends.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "Password set; every session ended (log in with it)", body = MessageReply),
        BodyErrors,
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn reset_password(
    state: AppState,
    peer: Option<IpAddr>,
    req: ResetPasswordRequest,
) -> Result<Response, ApiError> {
    state.auth_throttle.from_address(peer)?;
    let code = secrets::digest(&req.code);
    // A bad code costs no bcrypt: the code is checked (without spending it) first.
    if !state.store.reset_code_usable(&code).await? {
        return Err(bad_reset_code());
    }
    let hash = state
        .hasher
        .hash(req.new_password, Source::of(peer))
        .await?;
    let user = state
        .store
        .use_reset_code(&code, &hash)
        .await?
        .ok_or_else(bad_reset_code)?;
    state.messaging().user_sessions_ended(user);
    Ok(json(&MessageReply {
        message:
            "Password set. Every session of the account has ended: log in with the new password."
                .into(),
    }))
}

fn bad_reset_code() -> ApiError {
    ApiError::BadRequest(
        "This reset code is not valid (unknown, used or expired): ask an admin for a new one"
            .into(),
    )
}

/// Log in with a username or email; starts a new session.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body(content = LoginRequest, description = "`username` may also be the email"),
    responses(
        (status = 200, body = AuthReply),
        BodyErrors,
        (status = 401, description = "Wrong username or password, or an inactive account", body = ErrorBody),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn login(
    state: AppState,
    peer: Option<IpAddr>,
    req: LoginRequest,
) -> Result<Response, ApiError> {
    Ok(json(&sign_in(&state, peer, req).await?))
}

/// A password login: a new session (`login`, and the web client's).
pub(super) async fn sign_in(
    state: &AppState,
    peer: Option<IpAddr>,
    req: LoginRequest,
) -> Result<AuthReply, ApiError> {
    state.auth_throttle.from_address(peer)?;
    let found = state.store.find_login(req.username.trim(), peer).await?;
    // Before any hashing; an unknown name is throttled as an account is.
    let known_source = found.as_ref().is_some_and(|f| f.known_source);
    state
        .auth_throttle
        .login_attempt(&req.username, peer, known_source)?;
    let (user, hash) = match found {
        Some(found) if found.user.is_bot => {
            return Err(ApiError::Unauthorized(
                "A bot signs in with an access token, not a password".into(),
            ));
        }
        Some(found) => (Some(found.user), found.password_hash),
        None => (None, state.dummy_hash.clone()),
    };
    let password_ok = state
        .hasher
        .verify(req.password, hash, Source::of(peer))
        .await?;
    let Some(user) = user.filter(|_| password_ok) else {
        return Err(ApiError::Unauthorized(
            "Invalid username or password".into(),
        ));
    };
    if !user.is_active {
        return Err(ApiError::Unauthorized(
            "This account has been deactivated: ask an admin of this server".into(),
        ));
    }
    let issued = state.keys.issue(user.id, Uuid::new_v4())?;
    state
        .store
        .start_session(user.id, &issued.refresh, peer)
        .await?;
    Ok(AuthReply {
        message: "Login successful".into(),
        user: user.to_proto(),
        tokens: issued.tokens,
    })
}

/// Exchange a refresh token for a new pair.
///
/// Rotation: a refresh token works once; a second use ends its whole session (someone has a copy).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens (the old refresh token is spent)", body = Tokens),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn refresh(state: AppState, req: RefreshRequest) -> Result<Response, ApiError> {
    Ok(json(&rotate(&state, &req.refresh_token).await?))
}

/// Exchanges a refresh token for a new pair (`refresh`, and the web client's).
pub(super) async fn rotate(state: &AppState, refresh_token: &str) -> Result<Tokens, ApiError> {
    let claims = state
        .keys
        .verify(refresh_token, TokenKind::Refresh)
        .map_err(|e| match e {
            AuthError::Expired => ApiError::Unauthorized("Refresh token expired".into()),
            _ => ApiError::Unauthorized("Invalid refresh token".into()),
        })?;
    let issued = state.keys.issue(claims.user_id()?, claims.sid)?;
    let old_hash = auth::hash_refresh_token(refresh_token);
    let detail = match state
        .store
        .rotate_refresh(&old_hash, &issued.refresh)
        .await?
    {
        RotateOutcome::Rotated => return Ok(issued.tokens),
        RotateOutcome::NotFound => "Refresh token not found",
        RotateOutcome::Expired => "Refresh token expired",
        RotateOutcome::Revoked => "Refresh token revoked",
        RotateOutcome::Reused => {
            // Somebody holds a copy: the session is over everywhere, its sockets too.
            state.messaging().session_ended(claims.sid);
            "Refresh token already used; the session has been ended"
        }
        RotateOutcome::UserInactive => "User not found or inactive",
    };
    Err(ApiError::Unauthorized(detail.into()))
}

/// End the session of this refresh token (its access tokens stop working at once).
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "This session ended", body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn logout(state: AppState, req: RefreshRequest) -> Result<Response, ApiError> {
    end_session(&state, &req.refresh_token).await?;
    Ok(json(&MessageReply {
        message: "Logout successful".into(),
    }))
}

/// Ends the session of a refresh token, expired or not (`logout`, and the web client's).
pub(super) async fn end_session(state: &AppState, refresh_token: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::BadRequest("Invalid refresh token".into());
    state
        .keys
        .verify_ignoring_expiry(refresh_token, TokenKind::Refresh)
        .map_err(|_| invalid())?;
    let hash = auth::hash_refresh_token(refresh_token);
    let session = state
        .store
        .end_session_by_refresh(&hash)
        .await?
        .ok_or_else(invalid)?;
    state.messaging().session_ended(session);
    Ok(())
}

/// End every session of the account, on every device.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every session of the account ended", body = LogoutAllReply),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn logout_all(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    let n = state.store.end_all_sessions(me.id()).await?;
    state.messaging().user_sessions_ended(me.id());
    Ok(json(&LogoutAllReply {
        message: "Logged out from all devices".into(),
        sessions_terminated: n,
    }))
}

/// The signed-in caller's current password, checked before a change that needs it (the password
/// itself, the email). It is guessable here by whoever holds a stolen access token, so it is
/// throttled as a login is; a signed-in caller draws on its address's own budget.
async fn check_own_password(
    state: &AppState,
    peer: Option<IpAddr>,
    me: &CurrentUser,
    password: String,
) -> Result<(), ApiError> {
    if me.user.is_bot {
        return Err(ApiError::BadRequest("A bot has no password".into()));
    }
    state.auth_throttle.from_address(peer)?;
    state
        .auth_throttle
        .login_attempt(&me.user.username, peer, true)?;
    let current = state
        .store
        .password_hash(me.id())
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Invalid authentication credentials".into()))?;
    if state
        .hasher
        .verify(password, current, Source::of(peer))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::BadRequest("Current password is incorrect".into()))
    }
}

/// Change the password; every session ends (log in again).
#[utoipa::path(post, path = "/auth/change-password", tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; every session ended", body = MessageReply),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn change_password(
    state: AppState,
    peer: Option<IpAddr>,
    me: CurrentUser,
    req: ChangePasswordRequest,
) -> Result<Response, ApiError> {
    check_own_password(&state, peer, &me, req.old_password).await?;
    let hash = state
        .hasher
        .hash(req.new_password, Source::of(peer))
        .await?;
    state.store.change_password(me.id(), &hash).await?;
    state.messaging().user_sessions_ended(me.id());
    Ok(json(&MessageReply {
        message: "Password changed successfully. Please login again.".into(),
    }))
}
