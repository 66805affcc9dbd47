//! The HTTP API: one module per area, combined here with the rejection handler, CORS and the access
//! log. Handlers are plain async functions returning `Result<Response, ApiError>`.

mod accounts;
mod admin;
mod changes;
pub mod docs;
mod files;
mod group_settings;
mod groups;
mod history;
mod invites;
mod messages;
mod meta;
mod responses;
pub(crate) mod rooms;
mod search;
mod sync;
mod threads;
mod tokens;
mod users;
mod web_session;
mod webhooks;

use std::convert::Infallible;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::server::http::error::handle_rejection;
use crate::server::http::listener::{PeerAddr, RequestLog};
use crate::server::state::{AppState, CurrentUser};

pub use crate::server::state::with_state;

/// The address the request came from (None only when served by something other than `listener`).
pub fn peer_ip() -> impl Filter<Extract = (Option<std::net::IpAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>().map(|peer: Option<PeerAddr>| peer.map(|p| p.0.ip()))
}

/// `/metrics` alone, for `--metrics-bind`.
pub fn metrics_only(state: AppState) -> BoxedFilter<(Response,)> {
    meta::metrics_only(state)
}

/// The signed-in user, or a 401 rejection.
pub fn authenticated(
    state: AppState,
) -> impl Filter<Extract = (CurrentUser,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(with_state(state))
        .and(warp::ext::optional::<RequestLog>())
        .and_then(
            |headers: HeaderMap, state: AppState, log: Option<RequestLog>| async move {
                let user = state
                    .authenticate(&headers)
                    .await
                    .map_err(warp::reject::custom)?;
                if let Some(log) = log {
                    log.user(user.id());
                }
                Ok::<_, Rejection>(user)
            },
        )
}

/// The state and the signed-in user (or a 401 rejection), as most handlers take them.
pub fn signed_in(
    state: AppState,
) -> impl Filter<Extract = (AppState, CurrentUser), Error = Rejection> + Clone {
    with_state(state.clone()).and(authenticated(state))
}

/// The first of `routes` that matches: an area's route table.
pub fn one_of<const N: usize>(routes: [BoxedFilter<(Response,)>; N]) -> BoxedFilter<(Response,)> {
    routes
        .into_iter()
        .reduce(|first, next| first.or(next).unify().boxed())
        .expect("a route table has routes")
}

/// `area`, tried only for paths whose first segment is one of `first`: a request is matched
/// against the routes of its own area, not against every route before it (measured: trying them
/// all, with the futures warp builds and moves for each, was a tenth of the server's time per
/// REST send, BENCHMARKS.md).
fn under(
    first: &'static [&'static str],
    area: BoxedFilter<(Response,)>,
) -> BoxedFilter<(Response,)> {
    warp::path::peek()
        .and_then(move |rest: warp::path::Peek| async move {
            let segment = rest.segments().next().unwrap_or("");
            if first.contains(&segment) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(area)
        .boxed()
}

pub fn json<T: Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
}

pub fn created<T: Serialize>(value: &T) -> Response {
    warp::reply::with_status(warp::reply::json(value), StatusCode::CREATED).into_response()
}

/// Checks that every configured CORS origin is a bare `scheme://host[:port]`.
pub fn check_cors_origins(origins: &[String]) -> Result<(), String> {
    for origin in origins {
        let ok = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.contains('/')
                && rest.parse::<warp::http::uri::Authority>().is_ok()
        });
        if !ok {
            return Err(format!(
                "invalid CORS origin {origin:?}: expected scheme://host[:port], e.g. https://chat.example.com"
            ));
        }
    }
    Ok(())
}

/// Every route, with errors turned into JSON and CORS for the configured origins only. (The access
/// log is written by `listener`, which also sees the requests that never reach a route.)
pub fn routes(
    state: AppState,
    cors_origins: &[String],
    metrics_here: bool,
) -> BoxedFilter<(Response,)> {
    let api = one_of([
        under(&["", "app"], crate::server::http::web_app::routes()),
        under(
            &["", "health", "metrics", "ws"],
            meta::routes(state.clone(), metrics_here),
        ),
        under(&["auth"], accounts::routes(state.clone())),
        under(&["auth"], web_session::routes(state.clone())),
        under(&["messages"], messages::routes(state.clone())),
        under(&["messages"], changes::routes(state.clone())),
        under(&["messages"], threads::routes(state.clone())),
        under(&["search"], search::routes(state.clone())),
        under(&["files"], files::routes(state.clone())),
        under(&["groups"], groups::routes(state.clone())),
        under(&["groups"], group_settings::routes(state.clone())),
        under(&["users"], users::routes(state.clone())),
        under(&["rooms"], rooms::routes(state.clone())),
        under(&["sync"], sync::routes(state.clone())),
        under(&["admin"], admin::routes(state.clone())),
        under(&["invites"], invites::routes(state.clone())),
        under(&["tokens"], tokens::routes(state.clone())),
        under(&["webhooks", "hooks"], webhooks::routes(state.clone())),
        under(&["ws"], crate::server::ws::connection::routes(state)),
        under(&["docs", "openapi.json", "redoc"], docs::routes()),
    ]);

    let api = if cors_origins.is_empty() {
        api
    } else {
        let cors = warp::cors()
            .allow_origins(cors_origins.iter().map(String::as_str))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(["authorization", "content-type"])
            .max_age(600);
        api.with(cors).map(Reply::into_response).boxed()
    };

    api.recover(handle_rejection)
        .unify()
        .map(Reply::into_response)
        .boxed()
}
