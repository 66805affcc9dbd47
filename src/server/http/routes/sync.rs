//! `GET /sync?since=ID&limit=N`: every message of the caller's rooms after a message id, for a client
//! that was away.

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::docs::{Invalid, Unauthorized, Unavailable};
use super::{authenticated, json, with_state};
use crate::proto::{FieldError, MessageId, SyncReply};
use crate::server::http::error::{ApiError, respond};
use crate::server::http::extract::{Validate, query};
use crate::server::messaging::{self, MAX_SYNC_PAGE};
use crate::server::state::{AppState, CurrentUser};

const DEFAULT_SYNC_PAGE: i64 = 100;

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
        let mut errors = Vec::new();
        let mut bad = |field: &str, msg: String| {
            errors.push(FieldError {
                kind: "value_error".into(),
                loc: vec!["query".into(), field.into()],
                msg,
                input: serde_json::Value::Null,
            })
        };
        match self.since {
            None => bad("since", "Field required".into()),
            Some(s) if s < 0 => bad("since", "Input should be greater than or equal to 0".into()),
            _ => {}
        }
        if self
            .limit
            .is_some_and(|l| !(1..=MAX_SYNC_PAGE).contains(&l))
        {
            bad(
                "limit",
                format!("Input should be between 1 and {MAX_SYNC_PAGE}"),
            );
        }
        errors
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
    let reply = messaging::sync(
        &state,
        me.id(),
        q.since.unwrap_or_default(),
        q.limit.unwrap_or(DEFAULT_SYNC_PAGE),
    )
    .await?;
    Ok(json(&reply))
}
