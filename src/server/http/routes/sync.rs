//! `GET /sync?since=ID&limit=N`: every message of the caller's rooms after a message id, for a client
//! that was away.

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::responses::{Invalid, Unauthorized, Unavailable};
use super::{authenticated, json, with_state};
use crate::proto::{FieldError, MessageId, SyncReply};
use crate::server::commands::ApiError;
use crate::server::commands::messaging::SyncPage;
use crate::server::commands::validate::Validate;
use crate::server::http::error::respond;
use crate::server::http::extract::query;
use crate::server::state::{AppState, CurrentUser};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The last `sync_cursor` or `next_since` you saw (required; 0 for everything).
    pub since: Option<MessageId>,
    /// Messages in the page, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

impl Validate for SyncQuery {
    fn validate(&self) -> Vec<FieldError> {
        SyncPage::new(self.since, self.limit)
            .err()
            .unwrap_or_default()
    }
}

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("sync")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(authenticated(state))
        .and(query())
        .then(sync)
        .map(respond)
        .boxed()
}

/// Every message of your rooms after `since`, in id order: what a client missed while away.
#[utoipa::path(get, path = "/sync", tag = "realtime",
    security(("bearer" = [])),
    params(SyncQuery),
    responses(
        (status = 200, description = "Messages of your rooms after `since`, in id order, and where to resume", body = SyncReply),
        (status = 401, response = Unauthorized),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
pub(super) async fn sync(
    state: AppState,
    me: CurrentUser,
    q: SyncQuery,
) -> Result<Response, ApiError> {
    let page = SyncPage::new(q.since, q.limit).map_err(ApiError::Validation)?;
    let reply = state.messaging().sync(me.id(), page).await?;
    Ok(json(&reply))
}
