//! Responses whose body is streamed (a file download): warp 0.4 builds bodies only from bytes in
//! memory, so a handler puts its stream in the response's extensions (`streamed`) and the
//! listener makes it the body (`into_hyper`) on the way out.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use warp::reply::Response;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the listener hands to hyper: warp's body, or a stream.
pub type ReplyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A streamed body's chunks.
pub type BodyStream = BoxStream<'static, Result<Bytes, BoxError>>;

/// A body to stream, waiting in a response's extensions (which must be `Clone`).
#[derive(Clone)]
struct Streamed(Arc<Mutex<Option<BodyStream>>>);

/// `response` (its status and headers) with `stream` as its body.
pub fn streamed(mut response: Response, stream: BodyStream) -> Response {
    response
        .extensions_mut()
        .insert(Streamed(Arc::new(Mutex::new(Some(stream)))));
    response
}

/// A routes' response as hyper sends it.
pub fn into_hyper(reply: Response) -> warp::http::Response<ReplyBody> {
    let (mut parts, body) = reply.into_parts();
    let stream = parts
        .extensions
        .remove::<Streamed>()
        .and_then(|s| s.0.lock().ok().and_then(|mut s| s.take()));
    let body = match stream {
        Some(stream) => StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync(),
        None => body.map_err(BoxError::from).boxed_unsync(),
    };
    warp::http::Response::from_parts(parts, body)
}
