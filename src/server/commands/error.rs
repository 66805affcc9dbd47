//! The commands' one error: every failure a command can have, with the status-like kind each door
//! maps to its own answer (an HTTP status and body in `http::error`, an `error` frame or close code
//! in `ws`). A 5xx-kind error carries its whole cause (the error and its sources) for the log and
//! tells the client nothing internal.

use std::sync::Arc;

use crate::proto::FieldError;
use crate::server::auth::AuthError;
use crate::server::auth::throttle::Throttled;
use crate::server::delivery::writer::WriteError;
use crate::server::store::StoreError;

/// What made a request fail inside the server, kept whole (the error and its sources) for the log;
/// never shown to the client. Shared, so that one failure can answer a whole batch of senders.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

/// A cause that is only words (no error value behind it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Words(String);

impl Cause {
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(error))
    }

    pub fn msg(words: impl Into<String>) -> Cause {
        Cause::of(Words(words.into()))
    }
}

/// The error, then each source in turn: `query failed: db error: ERROR: deadlock detected`. A
/// source whose words its error already ends with (`#[error("query failed: {0}")]`) is not
/// written twice.
impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut written = self.0.to_string();
        let mut source = self.0.source();
        while let Some(e) = source {
            let words = e.to_string();
            if !written.ends_with(&words) {
                written.push_str(": ");
                written.push_str(&words);
            }
            source = e.source();
        }
        f.write_str(&written)
    }
}

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
    /// An upload over a limit (its size, or the uploader's storage quota): 413 with these words.
    #[error("{0}")]
    TooLarge(String),
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
    Unavailable(Cause),
    #[error("internal error: {0}")]
    Internal(Cause),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        crate::server::metrics::METRICS.db_errors.inc();
        ApiError::from_store(Arc::new(e))
    }
}

impl From<Throttled> for ApiError {
    fn from(t: Throttled) -> Self {
        ApiError::TooManyRequests {
            what: t.what,
            retry_after_ms: t.retry_after_ms,
        }
    }
}

/// A message the writer did not store. Counted in `db_errors` by the writer, once per failure
/// (each of the batch's senders converts its own copy).
impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Stopped | WriteError::Lost => ApiError::unavailable(e.to_string()),
            WriteError::Inconsistent => ApiError::internal(e.to_string()),
            WriteError::Store(e) => ApiError::from_store(e),
        }
    }
}

impl ApiError {
    /// A database failure as the client may hear of it; the failure itself is the cause.
    fn from_store(e: Arc<StoreError>) -> ApiError {
        let cause = Cause(e.clone());
        match &*e {
            // Named by StoreError's own words: a pool timeout's ("Timeout occurred while creating
            // a new object") do not say what it was waiting for.
            StoreError::Pool(_) => ApiError::Unavailable(cause),
            // Text that slipped past validation with a NUL in it (a path or query string, say).
            StoreError::Query(q)
                if q.code()
                    == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE) =>
            {
                ApiError::BadRequest("Text must not contain NUL (\\u0000) characters".into())
            }
            // The database went away mid-request: the next attempt gets a fresh connection.
            StoreError::Query(q) if connection_lost(q) => ApiError::Unavailable(cause),
            StoreError::Query(_) | StoreError::Unexpected(_) => ApiError::Internal(cause),
            StoreError::Cancelled => ApiError::Busy("The database took too long; try again"),
            StoreError::Objects(_) => ApiError::Unavailable(cause),
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
            other => ApiError::Internal(Cause::of(other)),
        }
    }
}

impl ApiError {
    /// A 503 for a reason in words.
    pub fn unavailable(why: impl Into<String>) -> ApiError {
        ApiError::Unavailable(Cause::msg(why))
    }

    /// A 500 for a reason in words (a state the code should never reach).
    pub fn internal(why: impl Into<String>) -> ApiError {
        ApiError::Internal(Cause::msg(why))
    }

    /// The cause of a 5xx, for the log.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

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

    /// The `detail` of an error body: words, or pydantic's list of field errors.
    pub fn detail(&self) -> serde_json::Value {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed: {0}")]
    struct Wrapping(#[from] std::io::Error);

    #[test]
    fn a_source_already_in_its_errors_words_is_not_written_twice() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer reset");
        let cause = Cause::of(Wrapping(inner));
        assert_eq!(cause.to_string(), "query failed: peer reset");
    }

    #[test]
    fn a_database_failure_is_its_own_cause() {
        let error =
            ApiError::from_store(Arc::new(StoreError::Unexpected("a room_type 'x'".into())));
        assert!(matches!(error, ApiError::Internal(_)));
        assert_eq!(
            error.cause().unwrap().to_string(),
            "unexpected data: a room_type 'x'"
        );
        let busy = ApiError::from(WriteError::Store(Arc::new(StoreError::Cancelled)));
        assert!(matches!(busy, ApiError::Busy(_)));
        let stopped = ApiError::from(WriteError::Stopped);
        assert_eq!(
            stopped.cause().unwrap().to_string(),
            "the message writer has stopped"
        );
    }
}
