//! `/auth/web/*`: sign-in for the web client. The access token (30 minutes) lives in the page's
//! memory; the refresh token lives in an HttpOnly, SameSite=Strict cookie scoped to `/auth/web`,
//! which no script can read, so a script injected into the page could use the session while the
//! page is open but could not carry a long-lived credential away. Every route here takes a
//! header a cross-site page cannot send without a CORS preflight the server never grants
//! (`X-Rtchat-Web: 1`): with SameSite=Strict, that is the CSRF guard.

use std::net::IpAddr;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::http::header::{HeaderValue, SET_COOKIE};
use warp::reply::{Reply, Response};

use super::accounts::{create_account, end_session, rotate, sign_in};
use super::responses::{BodyErrors, Conflict, TooManyRequests, Unauthorized, Unavailable};
use super::{json, one_of, peer_ip, with_state};
use crate::proto::{AuthReply, LoginRequest, MessageReply, RegisterRequest, WebSession};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::http::extract::json_body;
use crate::server::state::AppState;

/// The refresh token's cookie.
const COOKIE: &str = "rtchat_refresh";
/// Where the browser sends it: these routes only.
const COOKIE_PATH: &str = "/auth/web";

/// What the page sends with every request here (see the module's comment).
fn from_the_app() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("x-rtchat-web")
        .and_then(|value: Option<String>| async move {
            if value.as_deref() == Some("1") {
                Ok(())
            } else {
                Err(warp::reject::custom(ApiError::Forbidden(
                    "This route is for rtchat's web client (X-Rtchat-Web: 1)".into(),
                )))
            }
        })
        .untuple_one()
}

/// Whether the browser reached the server over TLS (here, or at a proxy that says so).
fn over_tls() -> impl Filter<Extract = (bool,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("x-forwarded-proto")
        .map(|proto: Option<String>| proto.is_some_and(|p| p.eq_ignore_ascii_case("https")))
}

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let app = || {
        from_the_app()
            .and(with_state(state.clone()))
            .and(over_tls())
    };
    let cookie = || warp::cookie::optional::<String>(COOKIE);
    one_of([
        warp::path!("auth" / "web" / "login")
            .and(warp::post().and(app()).and(peer_ip()).and(json_body()))
            .then(login)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "web" / "register")
            .and(warp::post().and(app()).and(peer_ip()).and(json_body()))
            .then(register)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "web" / "refresh")
            .and(warp::post().and(app()).and(cookie()))
            .then(refresh)
            .map(respond)
            .boxed(),
        warp::path!("auth" / "web" / "logout")
            .and(warp::post().and(app()).and(cookie()))
            .then(logout)
            .map(respond)
            .boxed(),
    ])
}

/// `Set-Cookie` for the refresh token (empty and expired: forget it).
fn cookie(state: &AppState, forwarded_tls: bool, token: Option<&str>) -> HeaderValue {
    let secure = if state.tls || forwarded_tls {
        "; Secure"
    } else {
        ""
    };
    let (value, max_age) = match token {
        Some(token) => (token, state.keys.refresh_ttl().num_seconds()),
        None => ("", 0),
    };
    let text = format!(
        "{COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_cookie(mut reply: Response, cookie: HeaderValue) -> Response {
    reply.headers_mut().append(SET_COOKIE, cookie);
    reply
}

/// The page's session from a new pair: the access token to the page, the refresh token to the
/// cookie.
fn session(state: &AppState, tls: bool, reply: AuthReply, status: StatusCode) -> Response {
    let cookie = cookie(state, tls, Some(&reply.tokens.refresh_token));
    let body = WebSession {
        user: reply.user,
        access_token: reply.tokens.access_token,
    };
    let response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    with_cookie(response, cookie)
}

/// Sign in from the web client: the refresh token is set as an HttpOnly cookie.
#[utoipa::path(post, path = "/auth/web/login", tag = "auth",
    request_body = LoginRequest,
    params(("X-Rtchat-Web" = String, Header, description = "1")),
    responses(
        (status = 200, body = WebSession),
        BodyErrors,
        (status = 401, response = Unauthorized),
        (status = 403, description = "Not from the web client (no X-Rtchat-Web header)", body = crate::proto::ErrorBody),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn login(
    state: AppState,
    tls: bool,
    peer: Option<IpAddr>,
    req: LoginRequest,
) -> Result<Response, ApiError> {
    let reply = sign_in(&state, peer, req).await?;
    Ok(session(&state, tls, reply, StatusCode::OK))
}

/// Create an account from the web client (with `invite` where needed); signed in as `login`.
#[utoipa::path(post, path = "/auth/web/register", tag = "auth",
    request_body = RegisterRequest,
    params(("X-Rtchat-Web" = String, Header, description = "1")),
    responses(
        (status = 201, body = WebSession),
        BodyErrors,
        (status = 403, description = "Needs an invite code, or the code is not valid, or not from the web client", body = crate::proto::ErrorBody),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn register(
    state: AppState,
    tls: bool,
    peer: Option<IpAddr>,
    req: RegisterRequest,
) -> Result<Response, ApiError> {
    let reply = create_account(&state, peer, req).await?;
    Ok(session(&state, tls, reply, StatusCode::CREATED))
}

/// A new access token for the page, from its cookie (rotated: the cookie is replaced).
#[utoipa::path(post, path = "/auth/web/refresh", tag = "auth",
    params(("X-Rtchat-Web" = String, Header, description = "1")),
    responses(
        (status = 200, body = WebSession),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Not from the web client (no X-Rtchat-Web header)", body = crate::proto::ErrorBody),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn refresh(
    state: AppState,
    tls: bool,
    token: Option<String>,
) -> Result<Response, ApiError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Unauthorized("Not signed in".into()));
    };
    let tokens = match rotate(&state, &token).await {
        Ok(tokens) => tokens,
        Err(e) => {
            // A dead cookie is forgotten, so the page shows its sign-in.
            let forget = cookie(&state, tls, None);
            return Ok(with_cookie(e.into_response(), forget));
        }
    };
    let me = state.authenticate_token(&tokens.access_token).await?;
    let reply = AuthReply {
        message: "Refreshed".into(),
        user: me.user.to_proto(),
        tokens,
    };
    Ok(session(&state, tls, reply, StatusCode::OK))
}

/// Sign out: the session ends everywhere it is used, and the cookie is forgotten.
#[utoipa::path(post, path = "/auth/web/logout", tag = "auth",
    params(("X-Rtchat-Web" = String, Header, description = "1")),
    responses(
        (status = 200, body = MessageReply),
        (status = 403, description = "Not from the web client (no X-Rtchat-Web header)", body = crate::proto::ErrorBody),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn logout(
    state: AppState,
    tls: bool,
    token: Option<String>,
) -> Result<Response, ApiError> {
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        // Already ended or not: the page signs out either way.
        let _ = end_session(&state, &token).await;
    }
    let reply = json(&MessageReply {
        message: "Signed out".into(),
    });
    Ok(with_cookie(reply, cookie(&state, tls, None)))
}
