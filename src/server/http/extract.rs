//! Request extraction: bodies (size-limited, chunked or not), JSON and query strings parsed into
//! typed requests with pydantic-shaped 422 errors, and numeric path ids.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::proto::FieldError;
use crate::server::commands::ApiError;
use crate::server::commands::validate::Validate;
use crate::server::http::listener::BodyTimedOut;

/// Largest request body accepted. A message is at most 5,000 characters (20 kB of UTF-8).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request body as bytes, at most `MAX_BODY_BYTES`, whether or not it has a Content-Length.
pub fn body_bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::stream().and_then(|stream| async move {
        read_limited(stream, MAX_BODY_BYTES)
            .await
            .map_err(warp::reject::custom)
    })
}

async fn read_limited<S, B>(stream: S, limit: usize) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            if timed_out(&e) {
                ApiError::RequestTimeout
            } else {
                ApiError::BadRequest("Could not read the request body".into())
            }
        })?;
        if body.len() + chunk.remaining() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

pub fn timed_out(e: &warp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<BodyTimedOut>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether a Content-Type names JSON (`application/json`, or `application/<anything>+json`, with any
/// parameters). A browser sends a cross-site form or text body without asking first, never JSON.
fn is_json_content_type(value: Option<&str>) -> bool {
    let Some(value) = value else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The body, which must be declared JSON when it is not empty.
fn json_bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(body_bytes())
        .and_then(|content_type: Option<String>, bytes: Bytes| async move {
            let empty = bytes.iter().all(u8::is_ascii_whitespace);
            if empty || is_json_content_type(content_type.as_deref()) {
                Ok(bytes)
            } else {
                Err(warp::reject::custom(ApiError::UnsupportedMediaType))
            }
        })
}

/// A JSON body parsed into `T` and checked by its `Validate` rules.
pub fn json_body<T>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Validate + Send + 'static,
{
    json_bytes().and_then(|bytes: Bytes| async move {
        parse_json::<T>(&bytes).map_err(warp::reject::custom)
    })
}

/// A JSON body that may be absent (empty), as for `POST /rooms/{id}/read`.
pub fn optional_json_body<T>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Validate + Default + Send + 'static,
{
    json_bytes().and_then(|bytes: Bytes| async move {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            parse_json::<T>(&bytes).map_err(warp::reject::custom)
        }
    })
}

pub fn parse_json<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would take `[...]` for a struct (fields by position): every body is an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::field(
            "model_attributes_type",
            &["body"],
            "Input should be a valid dictionary or object",
            serde_json::Value::Null,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = path_segments(e.path());
        let inner = e.into_inner();
        use serde_json::error::Category;
        let error = match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => FieldError {
                kind: "json_invalid".into(),
                loc: vec!["body".into(), (inner.column() as u64).into()],
                msg: format!("JSON decode error: {inner}"),
                input: serde_json::Value::Object(Default::default()),
            },
            Category::Data => data_error(path, &inner.to_string()),
        };
        ApiError::Validation(vec![error])
    })?;
    let errors = value.validate();
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The query string parsed into `T`; no query string is the same as an empty one.
pub fn query<T>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone
where
    T: DeserializeOwned + Validate + Send + 'static,
{
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move { parse_query::<T>(&raw).map_err(warp::reject::custom) })
}

pub fn parse_query<T: DeserializeOwned + Validate>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = path_segments(e.path());
        let mut error = data_error(path, &e.into_inner().to_string());
        error.loc[0] = "query".into();
        ApiError::Validation(vec![error])
    })?;
    let mut errors = value.validate();
    for e in &mut errors {
        if let Some(first) = e.loc.first_mut() {
            *first = "query".into();
        }
    }
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<serde_json::Value> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone().into()),
            Segment::Seq { index } => Some((*index as u64).into()),
            Segment::Enum { variant } => Some(variant.clone().into()),
            Segment::Unknown => None,
        })
        .collect()
}

fn data_error(mut path: Vec<serde_json::Value>, message: &str) -> FieldError {
    // serde reports a missing field at its parent, naming it in the message.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        path.push(field.into());
        let mut loc = vec!["body".into()];
        loc.extend(path);
        return FieldError {
            kind: "missing".into(),
            loc,
            msg: "Field required".into(),
            input: serde_json::Value::Null,
        };
    }
    let mut loc = vec!["body".into()];
    loc.extend(path);
    let message = message.split(" at line ").next().unwrap_or(message);
    let kind = if message.contains("integer") {
        "int_parsing"
    } else if message.contains("expected a string")
        || message.contains("expected a borrowed string")
    {
        "string_type"
    } else if message.contains("expected a sequence") || message.contains("a list") {
        "list_type"
    } else if message.contains("expected struct") || message.contains("expected a map") {
        "model_type"
    } else {
        "value_error"
    };
    FieldError {
        kind: kind.into(),
        loc,
        msg: capitalise(message),
        input: serde_json::Value::Null,
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A numeric id from a path segment: not a number is 422 (as the seed); a number no row can have is
/// simply unknown (the caller's 404).
pub fn path_id<T: TryFrom<i64>>(segment: &str, name: &str) -> Result<Option<T>, ApiError> {
    let n: i64 = segment.parse().map_err(|_| {
        ApiError::field(
            "int_parsing",
            &["path", name],
            "Input should be a valid integer, unable to parse string as an integer",
            segment.into(),
        )
    })?;
    Ok(T::try_from(n).ok())
}
