//! `/`, `/health`, `/metrics` and `/ws/online-users`.

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{authenticated, json, with_state};
use crate::proto::{Health, OnlineUsers, RootInfo};
use crate::server::commands::ApiError;
use crate::server::http::error::respond;
use crate::server::metrics::METRICS;
use crate::server::state::{AppState, CurrentUser};

/// `/metrics` alone, for a listener of its own (`--metrics-bind`).
pub fn metrics_only(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state))
        .map(metrics)
        .recover(crate::server::http::error::handle_rejection)
        .unify()
        .boxed()
}

/// `/`, `/health`, `/ws/online-users`, and `/metrics` unless it has a listener of its own.
pub fn routes(state: AppState, with_metrics: bool) -> BoxedFilter<(Response,)> {
    let root = warp::path::end()
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(root);
    let health = warp::path!("health")
        .and(warp::get())
        .and(with_state(state.clone()))
        .then(health);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(move |state: AppState| async move {
            if with_metrics {
                Ok(metrics(state))
            } else {
                Err(warp::reject::not_found())
            }
        });
    let online = warp::path!("ws" / "online-users")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(authenticated(state))
        .then(online_users)
        .map(respond);
    root.or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(online)
        .unify()
        .boxed()
}

/// What this is and where its documentation lives.
#[utoipa::path(get, path = "/", tag = "meta", responses((status = 200, body = RootInfo)))]
pub(super) fn root(state: AppState) -> Response {
    json(&RootInfo {
        message: state.app_name.clone(),
        status: "running".into(),
        docs: "/docs".into(),
    })
}

/// Whether the server can reach its database (answered within half the request deadline).
#[utoipa::path(get, path = "/health", tag = "meta", responses(
    (status = 200, body = Health),
    (status = 503, description = "`{\"status\": \"unhealthy\", \"detail\": ...}`: the database does not answer")))]
pub(super) async fn health(state: AppState) -> Response {
    // Answered well inside the request deadline, so that a frozen database reads as unhealthy.
    let within = (state.db_timeout / 2).min(std::time::Duration::from_secs(2));
    let pinged = match tokio::time::timeout(within, state.store.ping()).await {
        Ok(pinged) => pinged.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {within:?}")),
    };
    match pinged {
        Ok(()) => json(&Health {
            status: "healthy".into(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            warp::reply::with_status(
                warp::reply::json(&serde_json::json!({
                    "status": "unhealthy",
                    "detail": "Database unavailable",
                })),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .into_response()
        }
    }
}

/// Prometheus' scrape: the process's metrics with the gauges of this moment (404 here when
/// `--metrics-bind` gives it a listener of its own).
#[utoipa::path(get, path = "/metrics", tag = "meta", responses(
    (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
    (status = 404, response = crate::server::http::routes::responses::NotFound)))]
pub(super) fn metrics(state: AppState) -> Response {
    let m = &METRICS;
    let pool = state.store.pool_status();
    m.db_pool_size.set(pool.size as i64);
    m.db_pool_available.set(pool.available as i64);
    m.db_pool_waiting.set(pool.waiting as i64);
    m.ws_connections.set(state.hub.connection_count() as i64);
    m.hashing_queued.set(state.hasher.queued() as i64);
    let mut response = m.encode().into_response();
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// Online users the caller shares a room with, on any instance (the seed showed everyone's to
/// anyone, S11).
#[utoipa::path(get, path = "/ws/online-users", tag = "realtime", security(("bearer" = [])), responses(
    (status = 200, body = OnlineUsers),
    (status = 401, response = crate::server::http::routes::responses::Unauthorized),
    (status = 503, response = crate::server::http::routes::responses::Unavailable)))]
pub(super) async fn online_users(state: AppState, me: CurrentUser) -> Result<Response, ApiError> {
    let online = state.store.online_users().await?;
    let visible = if online.is_empty() {
        online
    } else {
        let mut visible = state.store.share_a_room(me.id(), &online).await?;
        if online.contains(&me.id()) && !visible.contains(&me.id()) {
            visible.push(me.id());
            visible.sort_unstable();
        }
        visible
    };
    Ok(json(&OnlineUsers {
        count: visible.len(),
        online_users: visible,
    }))
}
