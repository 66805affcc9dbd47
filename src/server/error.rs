//! The API's one error type and the rejection handler: every failure becomes a JSON body
//! `{"detail": ...}` with the right status. A 5xx tells the client nothing internal; the cause goes to
//! the log.

use std::convert::Infallible;

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Rejection, reject};

use crate::proto::FieldError;
use crate::server::auth::AuthError;
use crate::server::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Missing, malformed, expired or revoked credentials: 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("request body too large")]
    PayloadTooLarge(usize),
    /// Too many attempts (messages, logins, registrations): retry after `retry_after_ms`.
    #[error("{what}; retry in {} s", retry_after_ms.div_ceil(1000))]
    TooManyRequests {
        what: &'static str,
        retry_after_ms: u64,
    },
    /// The request body did not arrive within the body deadline.
    #[error("Request body not received in time")]
    RequestTimeout,
    /// A JSON body sent as something else (a form, text): a browser may send those cross-site.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// Busy right now (the password hashing queue is full): 503 with `Retry-After: 1`.
    #[error("{0}")]
    Busy(&'static str),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl reject::Reject for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        crate::server::metrics::METRICS.db_errors.inc();
        match e {
            StoreError::Pool(e) => ApiError::Unavailable(e.to_string()),
            // Text that slipped past validation with a NUL in it (a path or query string, say).
            StoreError::Query(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE) =>
            {
                ApiError::BadRequest("Text must not contain NUL (\\u0000) characters".into())
            }
            // The database went away mid-request: the next attempt gets a fresh connection.
            StoreError::Query(e) if connection_lost(&e) => ApiError::Unavailable(e.to_string()),
            StoreError::Query(e) => ApiError::Internal(e.to_string()),
            StoreError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

fn connection_lost(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|code| {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code)
        })
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Expired | AuthError::Invalid | AuthError::WrongType => {
                ApiError::Unauthorized("Invalid authentication credentials".into())
            }
            AuthError::Busy => ApiError::Busy("Too many sign-ins at once; try again in a moment"),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// A 422 for one field, shaped like pydantic's error list.
    pub fn field(
        kind: &str,
        loc: &[&str],
        msg: impl Into<String>,
        input: serde_json::Value,
    ) -> Self {
        ApiError::Validation(vec![FieldError {
            kind: kind.into(),
            loc: loc.iter().map(|s| serde_json::Value::from(*s)).collect(),
            msg: msg.into(),
            input,
        }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a client may be told, as one line.
    pub fn public_message(&self) -> String {
        match self.detail() {
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(errors) => errors
                .first()
                .and_then(|e| e["msg"].as_str())
                .unwrap_or("Invalid request")
                .to_string(),
            other => other.to_string(),
        }
    }

    fn detail(&self) -> serde_json::Value {
        match self {
            ApiError::Validation(errors) => serde_json::to_value(errors).unwrap_or_default(),
            ApiError::PayloadTooLarge(limit) => {
                format!("Request body too large (limit {limit} bytes)").into()
            }
            // Never the cause: it may name tables, values or tokens.
            ApiError::Unavailable(_) => "Service temporarily unavailable, try again".into(),
            ApiError::Internal(_) => "Internal server error".into(),
            other => other.to_string().into(),
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "request failed"),
            _ => {}
        }
        let mut response = error_response(
            self.status(),
            self.detail(),
            matches!(self, ApiError::Unauthorized(_)),
        );
        let retry_after = match self {
            ApiError::TooManyRequests { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000)),
            ApiError::Busy(_) | ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn error_response(status: StatusCode, detail: serde_json::Value, bearer: bool) -> Response {
    let body = serde_json::json!({ "detail": detail });
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if bearer {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Turns a handler's result into a response.
pub fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The one rejection handler: filters reject with an `ApiError` (auth, bodies, queries) or with one
/// of warp's own rejections (no route, wrong method, ...).
pub async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(e) = rejection.find::<ApiError>() {
        return Ok(e.clone().into_response());
    }
    let (status, detail) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "Not Found")
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
    } else if rejection.find::<reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    } else if rejection
        .find::<warp::filters::cors::CorsForbidden>()
        .is_some()
    {
        (StatusCode::FORBIDDEN, "Origin not allowed")
    } else if rejection.find::<reject::InvalidHeader>().is_some()
        || rejection.find::<reject::MissingHeader>().is_some()
    {
        (StatusCode::BAD_REQUEST, "Invalid request header")
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        (StatusCode::BAD_REQUEST, "Bad request")
    };
    Ok(error_response(status, detail.into(), false))
}
