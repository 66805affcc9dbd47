//! The HTTP answer to a command's error, and the rejection handler: every failure becomes a JSON
//! body `{"detail": ...}` with the right status. A 5xx's cause, with the whole chain of errors behind
//! it, goes on the request's access-log line.

use std::convert::Infallible;

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Rejection, reject};

use crate::server::commands::{ApiError, Cause};

/// A failed response's cause, carried in its extensions to the access log.
#[derive(Debug, Clone)]
pub struct FailedBecause(pub Cause);

impl reject::Reject for ApiError {}

/// HTTP's side of the command error: its status, and the response that carries it.
impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn into_response(self) -> Response {
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
        if let Some(cause) = self.cause() {
            response
                .extensions_mut()
                .insert(FailedBecause(cause.clone()));
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

#[cfg(test)]
mod cause_tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_keeps_the_errors_behind_it_and_the_client_sees_none() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
        let error = ApiError::Unavailable(Cause::of(Outer(inner)));
        assert_eq!(
            error.cause().unwrap().to_string(),
            "query failed: peer reset"
        );
        assert_eq!(
            error.public_message(),
            "Service temporarily unavailable, try again"
        );
        let response = error.into_response();
        let failed = response.extensions().get::<FailedBecause>().unwrap();
        assert_eq!(failed.0.to_string(), "query failed: peer reset");
    }
}
