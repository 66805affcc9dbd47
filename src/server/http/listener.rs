//! Accepting connections so that no client can hold what others need: a cap on open connections
//! below the descriptor limit and one per address, deadlines for a request's headers (and for idle
//! keep-alive), its body and its handler, and a shutdown that ends in bounded time. Every request's
//! access-log line, request id and metrics are written here too, whatever answered it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{Request, StatusCode};
use warp::reply::Response;

use crate::server::commands::ApiError;
use crate::server::http::error::FailedBecause;
use crate::server::http::streamed_body::{ReplyBody, into_hyper};
use crate::server::metrics::{METRICS, RequestLabels, RouteLabel, Throttle, route_of};

/// Descriptors kept free for the database pool, the log and files, whatever clients do.
pub const RESERVED_DESCRIPTORS: usize = 256;

/// The peer of a request, for per-address throttles (warp's own `remote()` is not available when
/// serving connections ourselves).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// What the access log line of a request says beyond its method, path and status: filled in by the
/// handlers (the signed-in user) while the request runs.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    user: Arc<std::sync::OnceLock<i32>>,
}

impl RequestLog {
    /// The request's signed-in user, for its access line and the span of everything it logs.
    pub fn user(&self, id: i32) {
        let _ = self.user.set(id);
        tracing::Span::current().record("user_id", id);
    }
}

/// A client's `X-Request-Id` if it is a sane one (1-64 visible ASCII characters), else a new id:
/// 128 random bits in hex, from the thread's generator (no system call per request).
fn request_id(headers: &warp::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()))
}

/// A method for labels: the standard ones, else "other" (a client may send any token).
fn method_label(method: &warp::http::Method) -> &'static str {
    use warp::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Shortest run of token characters taken for a token in a logged path (every token we issue is
/// longer; no route's path segment is this long).
const TOKEN_SHAPED: usize = 32;

/// The path as logged: anything token-shaped in it (a run of `TOKEN_SHAPED` or more characters
/// that tokens and their percent-encodings are made of) becomes `<token>`, wherever it is.
/// `/ws/{token}` is the seed's form, but a mistyped or hostile path carries one anywhere
/// (`/WS/...`, `/%77s/...`, `/ws%2f...`).
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    // A webhook's address is its secret, whatever its length or shape.
    if path.starts_with("/hooks/") {
        return std::borrow::Cow::Borrowed("/hooks/<redacted>");
    }
    let tokenish = |c: char| c.is_ascii_alphanumeric() || "-_.~+=%".contains(c);
    let mut out = String::new();
    let mut run_start = None;
    let mut redacted = false;
    for (i, c) in path
        .char_indices()
        .chain(std::iter::once((path.len(), '/')))
    {
        match (tokenish(c) && i < path.len(), run_start) {
            (true, None) => run_start = Some(i),
            (true, Some(_)) => {}
            (false, start) => {
                if let Some(start) = start {
                    if i - start >= TOKEN_SHAPED {
                        out.push_str("<token>");
                        redacted = true;
                    } else {
                        out.push_str(&path[start..i]);
                    }
                    run_start = None;
                }
                if i < path.len() {
                    out.push(c);
                }
            }
        }
    }
    if redacted {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

/// The request's path with runs of slashes made one (`//ws/TOKEN`, from a client whose base URL
/// ends in `/`, is `/ws/TOKEN`). None when it has none.
fn without_double_slashes(uri: &warp::http::Uri) -> Option<warp::http::Uri> {
    let path = uri.path();
    if !path.contains("//") {
        return None;
    }
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    if let Some(query) = uri.query() {
        collapsed.push('?');
        collapsed.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = collapsed.parse().ok();
    warp::http::Uri::from_parts(parts).ok()
}

/// What one connection and one request may take.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no per-address cap.
    pub max_per_ip: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// The handler's time once the body is in (it waits for the database): then 503.
    pub handler_timeout: Duration,
}

/// The connection cap for this process: the configured one, but never above the descriptor limit
/// less the reserve.
pub fn connection_cap(configured: Option<usize>) -> usize {
    let available = descriptor_limit()
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(16);
    match configured {
        Some(n) if n > available => {
            tracing::warn!(
                configured = n,
                available,
                "--max-connections is above the descriptor limit; using the limit"
            );
            available
        }
        Some(n) => n,
        None => available,
    }
}

fn descriptor_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid pointer to a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    }
}

/// Open connections, in all and per address.
#[derive(Default)]
struct Census {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A place in the census, given back when the connection ends. A request carries it in its
/// extensions: an upgraded WebSocket keeps it for as long as the socket lives.
pub struct ConnectionSlot {
    census: Arc<Mutex<Census>>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        METRICS.http_connections.dec();
        let mut census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        census.total -= 1;
        if let Some(n) = census.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                census.per_ip.remove(&self.ip);
            }
        }
    }
}

fn admit(census: &Arc<Mutex<Census>>, ip: IpAddr, limits: &Limits) -> Option<Arc<ConnectionSlot>> {
    let mut c = census.lock().unwrap_or_else(|e| e.into_inner());
    let here = c.per_ip.get(&ip).copied().unwrap_or(0);
    if c.total >= limits.max_connections || (limits.max_per_ip > 0 && here >= limits.max_per_ip) {
        return None;
    }
    c.total += 1;
    *c.per_ip.entry(ip).or_default() += 1;
    METRICS.http_connections.inc();
    Some(Arc::new(ConnectionSlot {
        census: census.clone(),
        ip,
    }))
}

/// A connection over a cap gets a short answer, written without waiting, and is closed.
fn refuse(stream: tokio::net::TcpStream) {
    const BODY: &str = r#"{"detail":"Too many connections; try again later"}"#;
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(reply.as_bytes());
}

/// Serves `routes` on `listener` (inside TLS when `tls` is given) until `shutdown` completes; then
/// stops accepting and tells every connection to finish its request in flight and close.
/// Connection tasks run on `tasks`: waiting for them (with a deadline) is the caller's.
///
/// HTTP/1.1 only (hyper's own connection, not hyper-util's auto-detecting one, whose version sniffing
/// waits for a first byte with no deadline).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    routes: BoxedFilter<(Response,)>,
    limits: Limits,
    tasks: TaskTracker,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Infallible> {
    let census = Arc::new(Mutex::new(Census::default()));
    let (stopping, stop) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors despite the cap (files, the database): wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = admit(&census, peer.ip(), &limits) else {
            tracing::debug!(%peer, "connection refused: over the connection cap");
            METRICS.throttled(Throttle::Connections);
            if tls.is_none() {
                // A TLS client would read the plain answer as garbage: it just sees the close.
                refuse(stream);
            }
            continue;
        };
        let service = Guarded {
            routes: routes.clone(),
            peer,
            slot,
            body_timeout: limits.body_timeout,
            handler_timeout: limits.handler_timeout,
        };
        let (builder, stop, tls) = (builder.clone(), stop.clone(), tls.clone());
        let handshake_timeout = limits.header_timeout;
        tasks.spawn(async move {
            let Some(tls) = tls else {
                return drive(&builder, TokioIo::new(stream), service, stop, peer).await;
            };
            // The handshake is part of what a client must finish within the header deadline.
            match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => drive(&builder, TokioIo::new(stream), service, stop, peer).await,
                Ok(Err(e)) => {
                    METRICS.tls_handshake_failures.inc();
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    METRICS.tls_handshake_failures.inc();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
    drop(listener);
    stopping.send_replace(true);
    Ok(())
}

/// One connection's requests until it closes, or until `stop` when it finishes the one in flight.
async fn drive<I>(
    builder: &http1::Builder,
    io: I,
    service: Guarded,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        // Clients hang up mid-request, time out or send garbage: theirs, not ours.
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// warp's service, with the peer address and the body and handler deadlines added to each request.
#[derive(Clone)]
struct Guarded {
    routes: BoxedFilter<(Response,)>,
    peer: SocketAddr,
    slot: Arc<ConnectionSlot>,
    body_timeout: Duration,
    handler_timeout: Duration,
}

/// The one route whose body may take longer than `--body-timeout` in all: an upload's deadline is
/// for each stretch without a byte, not for the whole body.
fn is_upload(parts: &warp::http::request::Parts) -> bool {
    parts.method == warp::http::Method::POST && parts.uri.path() == "/files"
}

/// How long an upload's handler may take once its body is in (moving the file into place,
/// making an image's preview), beyond the database allowance.
const UPLOAD_FINISHING: Duration = Duration::from_secs(60);

impl hyper::service::Service<Request<Incoming>> for Guarded {
    type Response = warp::http::Response<ReplyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        if let Some(uri) = without_double_slashes(&parts.uri) {
            parts.uri = uri;
        }
        let request = Requested {
            started: std::time::Instant::now(),
            id: request_id(&parts.headers),
            method: parts.method.clone(),
            path: loggable_path(parts.uri.path()).into_owned(),
            peer: self.peer,
            log: RequestLog::default(),
        };
        // Every line logged while the request is handled (and by a WebSocket it opens) says
        // which request it belongs to, and whose; the access line carries those and the rest
        // itself. Two fields only: the span's fields are formatted for every request.
        let span = tracing::info_span!("request", request_id = %request.id,
            user_id = tracing::field::Empty);
        parts.extensions.insert(PeerAddr(self.peer));
        parts.extensions.insert(self.slot.clone());
        parts.extensions.insert(request.log.clone());
        let progress = Arc::new(BodyProgress::new(body.is_end_stream()));
        let upload = is_upload(&parts);
        let body = TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(self.body_timeout)),
            progress: progress.clone(),
            sliding: upload.then_some(self.body_timeout),
        };
        let handled = span
            .in_scope(|| warp::service(self.routes.clone()).call(Request::from_parts(parts, body)))
            .instrument(span);
        let (body_timeout, handler_timeout) = (self.body_timeout, self.handler_timeout);
        Box::pin(async move {
            // The handler's clock starts when its body is in; a handler that never reads its body
            // gets both allowances.
            let deadline = async {
                if upload {
                    // The body's own deadline slides with each byte (see `TimedBody`).
                    progress.wait().await;
                    tokio::time::sleep(handler_timeout + UPLOAD_FINISHING).await;
                    return;
                }
                let body_in = async {
                    progress.wait().await;
                    tokio::time::sleep(handler_timeout).await;
                };
                let _ = tokio::time::timeout(body_timeout + handler_timeout, body_in).await;
            };
            let mut reply = tokio::select! {
                Ok(reply) = handled => reply,
                () = deadline => if progress.done() {
                    ApiError::unavailable("the request took too long (database)").into_response()
                } else {
                    ApiError::RequestTimeout.into_response()
                },
            };
            request.answered(&reply);
            if let Ok(value) = warp::http::HeaderValue::from_str(&request.id) {
                reply.headers_mut().insert("x-request-id", value);
            }
            Ok(into_hyper(reply))
        })
    }
}

/// A request as the access log and the metrics see it.
struct Requested {
    started: std::time::Instant,
    id: String,
    method: warp::http::Method,
    /// With anything token-shaped redacted.
    path: String,
    peer: SocketAddr,
    log: RequestLog,
}

impl Requested {
    /// One line per request; a 5xx carries its cause (with the errors behind it) and is logged as
    /// a warning (503) or an error (500), so that it can be found by level. Then the metrics.
    fn answered(&self, reply: &Response) {
        let status = reply.status();
        let error = reply
            .extensions()
            .get::<FailedBecause>()
            .map(|failed| tracing::field::display(failed.0.clone()));
        macro_rules! access_line {
            ($level:expr) => {
                tracing::event!(
                    target: "rtchat::access",
                    $level,
                    request_id = %self.id,
                    method = %self.method,
                    path = %self.path,
                    status = status.as_u16(),
                    micros = self.started.elapsed().as_micros() as u64,
                    user_id = self.log.user.get().copied(),
                    peer = %self.peer,
                    error,
                )
            };
        }
        match status {
            StatusCode::INTERNAL_SERVER_ERROR => access_line!(tracing::Level::ERROR),
            s if s.is_server_error() && error.is_some() => access_line!(tracing::Level::WARN),
            _ => access_line!(tracing::Level::INFO),
        }
        let route = route_of(&self.path);
        METRICS
            .requests
            .get_or_create(&RequestLabels {
                method: method_label(&self.method),
                route,
                status: status.as_u16(),
            })
            .inc();
        METRICS
            .request_seconds
            .get_or_create(&RouteLabel { route })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Whether a request's body has been read to its end.
struct BodyProgress {
    done: AtomicBool,
    notify: Notify,
}

impl BodyProgress {
    fn new(done: bool) -> Self {
        BodyProgress {
            done: AtomicBool::new(done),
            notify: Notify::new(),
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.done() {
            notified.await;
        }
    }
}

/// The error a body gives when its sender took longer than the body deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    progress: Arc<BodyProgress>,
    /// An upload's: the deadline moves this far ahead with each frame that arrives.
    sliding: Option<Duration>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.progress.done() {
            return Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.progress.finish();
        }
        if let (Poll::Ready(Some(Ok(_))), Some(every)) = (&polled, self.sliding) {
            let next = tokio::time::Instant::now() + every;
            self.deadline.as_mut().reset(next);
        }
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";

    #[test]
    fn token_shaped_parts_of_any_path_are_redacted() {
        for path in [
            format!("/ws/{TOKEN}"),
            format!("//ws/{TOKEN}"),
            format!("/./ws/{TOKEN}"),
            format!("/WS/{TOKEN}"),
            format!("/%77s/{TOKEN}"),
            format!("/ws%2f{TOKEN}"),
            format!("/x/../ws/{TOKEN}"),
            format!("/messages/{TOKEN}/x"),
        ] {
            let logged = loggable_path(&path);
            assert!(!logged.contains("eyJ"), "{path} -> {logged}");
            assert!(logged.contains("<token>"), "{path} -> {logged}");
        }
        assert_eq!(loggable_path(&format!("/ws/{TOKEN}")), "/ws/<token>");
        // A webhook's address is a secret of any shape.
        assert_eq!(loggable_path("/hooks/rtch_0123"), "/hooks/<redacted>");
    }

    #[test]
    fn ordinary_paths_are_logged_as_they_are() {
        for path in [
            "/",
            "/ws/online-users",
            "/groups/12/messages",
            "/docs/swagger-ui-standalone-preset.js",
            "/users/by-username/alice",
        ] {
            assert_eq!(loggable_path(path), path);
        }
    }

    #[test]
    fn double_slashes_are_made_one() {
        let uri: warp::http::Uri = "//ws//x?a=1".parse().unwrap();
        assert_eq!(without_double_slashes(&uri).unwrap(), "/ws/x?a=1");
        let plain: warp::http::Uri = "/ws/x".parse().unwrap();
        assert!(without_double_slashes(&plain).is_none());
    }
}
