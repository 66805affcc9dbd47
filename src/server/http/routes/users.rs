//! `/users/*`: find people by name, so that nobody needs to know a numeric id.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{Invalid, NotFound, Unauthorized, Unavailable};
use super::{authenticated, json, with_state};
use crate::proto::PublicUser;
use crate::server::commands::ApiError;
use crate::server::commands::validate::SearchQuery;
use crate::server::http::error::respond;
use crate::server::http::extract::query;
use crate::server::state::{AppState, CurrentUser};

const DEFAULT_SEARCH_RESULTS: i64 = 20;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let s = || with_state(state.clone());
    let auth = || authenticated(state.clone());
    let by_name = warp::path!("users" / "by-username" / String)
        .and(warp::get())
        .and(s())
        .and(auth())
        .then(by_username)
        .map(respond);
    let search = warp::path!("users" / "search")
        .and(warp::get())
        .and(s())
        .and(auth())
        .and(query())
        .then(search)
        .map(respond);
    by_name.or(search).unify().boxed()
}

/// A person by username (any case).
#[utoipa::path(get, path = "/users/by-username/{username}", tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses(
        (status = 200, body = PublicUser),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn by_username(
    username: String,
    state: AppState,
    _me: CurrentUser,
) -> Result<Response, ApiError> {
    let name = percent_decode(&username);
    let user = state
        .store
        .find_user_by_username(name.trim_start_matches('@'))
        .await?
        .ok_or_else(|| ApiError::NotFound("User not found".into()))?;
    Ok(json(&user.to_public()))
}

/// People whose username or full name starts with `q`.
#[utoipa::path(get, path = "/users/search", tag = "users",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "People whose username or name starts with `q`", body = Vec<PublicUser>),
        (status = 401, response = Unauthorized),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn search(
    state: AppState,
    _me: CurrentUser,
    q: SearchQuery,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_SEARCH_RESULTS);
    let users: Vec<PublicUser> = state
        .store
        .search_users(q.q.trim_start_matches('@'), limit)
        .await?
        .iter()
        .map(|u| u.to_public())
        .collect();
    Ok(json(&users))
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
