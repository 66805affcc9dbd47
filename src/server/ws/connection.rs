//! The WebSocket endpoint: authentication (token in the path, an `Authorization` header, or a first
//! `auth` frame), then one task per connection that writes its queued frames, reads and answers the
//! client's frames, pings, and says goodbye to the rooms when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, protocol};
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::proto::ClientFrame;
use crate::proto::CloseReason;
use crate::proto::ServerFrame;
use crate::server::commands::ApiError;
use crate::server::delivery::hub::{Frame, Registration};
use crate::server::delivery::outbox::Outbox;
use crate::server::http::listener::{ConnectionSlot, RequestLog};
use crate::server::metrics::METRICS;
use crate::server::state::with_state;
use crate::server::state::{AppState, CurrentUser};
use crate::server::ws::client_frames::{self, Admission, Caller, admit};
use crate::server::ws::frame_budget::FrameBudget;

/// Largest frame a client may send; larger ones close the connection with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written with one flush at most, and the bytes buffered before a write happens anyway.
const MAX_FRAMES_PER_WRITE: usize = 64;
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Bytes read per system call; client frames are small, and the buffer grows for a large one.
const READ_BUFFER_BYTES: usize = 1024;

/// A WebSocket handshake that the client asked for and we may complete.
struct Upgrade {
    accept: String,
    on_upgrade: OnUpgrade,
    /// The connection's place under the connection caps, kept for as long as the socket lives.
    slot: Option<Arc<ConnectionSlot>>,
    log: Option<RequestLog>,
}

fn websocket_upgrade() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<Arc<ConnectionSlot>>())
        .and(warp::ext::optional::<RequestLog>())
        .and_then(
            |headers: HeaderMap,
             on_upgrade: Option<OnUpgrade>,
             slot: Option<Arc<ConnectionSlot>>,
             log: Option<RequestLog>| async move {
                let wants_websocket = headers
                    .get(header::UPGRADE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
                match (
                    wants_websocket,
                    headers.get(header::SEC_WEBSOCKET_KEY),
                    on_upgrade,
                ) {
                    (true, Some(key), Some(on_upgrade)) => Ok(Upgrade {
                        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
                        on_upgrade,
                        slot,
                        log,
                    }),
                    // Not a WebSocket request: no route here (a plain rejection, so that another
                    // route's reason, such as a missing token on /ws/online-users, wins).
                    _ => Err(warp::reject::not_found()),
                }
            },
        )
}

/// Buffers sized for tens of thousands of connections (tungstenite's defaults are 128 KiB each);
/// they grow for the rare large frame.
fn socket_config() -> protocol::WebSocketConfig {
    protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let in_path = warp::path!("ws" / String)
        .and(websocket_upgrade())
        .and(with_state(state.clone()))
        .and_then(|token: String, ws: Upgrade, state: AppState| async move {
            let user = state
                .authenticate_token(&token)
                .await
                .map_err(warp::reject::custom)?;
            Ok::<_, Rejection>(upgrade(ws, state, Some(user)))
        });
    let bare = warp::path!("ws")
        .and(websocket_upgrade())
        .and(warp::header::headers_cloned())
        .and(with_state(state))
        .and_then(
            |ws: Upgrade, headers: HeaderMap, state: AppState| async move {
                let user = if headers.contains_key(warp::http::header::AUTHORIZATION) {
                    Some(
                        state
                            .authenticate(&headers)
                            .await
                            .map_err(warp::reject::custom)?,
                    )
                } else {
                    None // a browser cannot set headers: it sends an `auth` frame first
                };
                Ok::<_, Rejection>(upgrade(ws, state, user))
            },
        );
    in_path.or(bare).unify().boxed()
}

/// Answers 101 and hands the upgraded connection to its own task.
fn upgrade(ws: Upgrade, state: AppState, user: Option<CurrentUser>) -> Response {
    if let (Some(log), Some(user)) = (&ws.log, &user) {
        log.user(user.id());
    }
    let slot = ws.slot;
    let tasks = state.tasks.clone();
    // A child of the request's span: every line the socket logs names the request that opened
    // it, the user (once known) and the connection (once registered).
    let span = tracing::info_span!(
        "ws",
        user_id = tracing::field::Empty,
        conn = tracing::field::Empty
    );
    if let Some(user) = &user {
        span.record("user_id", user.id());
    }
    let task = async move {
        let _slot = slot;
        match ws.on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    protocol::Role::Server,
                    Some(socket_config()),
                )
                .await;
                connection(socket, state, user).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    };
    tasks.spawn(task.instrument(span));
    let mut response = warp::reply().into_response();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&ws.accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = futures_util::stream::SplitSink<Socket, Message>;
type Stream = futures_util::stream::SplitStream<Socket>;

async fn write(sink: &mut Sink, message: Message) -> Result<(), ()> {
    within_write_timeout(sink.send(message)).await
}

/// A write that fails or takes longer than `WRITE_TIMEOUT` ends the connection.
async fn within_write_timeout(
    write: impl Future<Output = Result<(), tungstenite::Error>>,
) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Writes `first` and whatever else is already queued behind it (up to a limit) with one flush: under
/// load a busy socket takes several frames per system call instead of one each.
async fn write_queued(sink: &mut Sink, first: Message, queued: &Outbox) -> Result<(), ()> {
    let coalesced = async {
        sink.feed(first).await?;
        for _ in 1..MAX_FRAMES_PER_WRITE {
            match queued.pop() {
                Some(message) => sink.feed(message).await?,
                None => break,
            }
        }
        sink.flush().await
    };
    within_write_timeout(coalesced).await
}

async fn write_frame(sink: &mut Sink, frame: &ServerFrame) -> Result<(), ()> {
    write(sink, Frame::new(frame).message()).await
}

/// How long a closing socket keeps reading what the client still sends, waiting for its answer to
/// the close frame.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// Sends the close frame, then reads (and drops) whatever the client still sends until it answers
/// the close or `CLOSE_DRAIN` passes. A socket closed with unread data in it is reset by the
/// kernel, and a reset makes the client lose what it had not read yet: the close frame, and the
/// answers written before it (a flooding client would never learn why it was closed).
async fn close(sink: &mut Sink, stream: &mut Stream, reason: CloseReason) {
    let frame = protocol::CloseFrame {
        code: reason.code.into(),
        reason: reason.reason.into(),
    };
    let sent = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
    // A silent client (no heartbeat) reads nothing either: nothing to wait for.
    if matches!(sent, Ok(Ok(()))) && reason != CloseReason::NO_HEARTBEAT {
        let _ = tokio::time::timeout(CLOSE_DRAIN, async {
            while let Some(Ok(message)) = stream.next().await {
                if message.is_close() {
                    break;
                }
            }
        })
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// Waits for `{"type":"auth","token":"..."}`.
async fn first_frame_auth(
    stream: &mut Stream,
    state: &AppState,
) -> Result<CurrentUser, CloseReason> {
    let deadline = Instant::now() + state.ws_timings.auth_timeout;
    loop {
        let next = tokio::time::timeout_at(deadline.into(), stream.next())
            .await
            .map_err(|_| CloseReason::AUTH_TIMEOUT)?;
        let msg = match next {
            Some(Ok(msg)) => msg,
            _ => return Err(CloseReason::AUTH_FAILED),
        };
        let text = match msg {
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Text(text) => text,
            _ => return Err(CloseReason::AUTH_FAILED),
        };
        let Ok(ClientFrame::Auth { token }) = ClientFrame::parse(&text) else {
            return Err(CloseReason::AUTH_FAILED);
        };
        return state
            .authenticate_token(&token)
            .await
            .map_err(|_| CloseReason::AUTH_FAILED);
    }
}

async fn connection(socket: Socket, state: AppState, user: Option<CurrentUser>) {
    let (mut sink, mut stream) = socket.split();
    let user = match user {
        Some(user) => user,
        None => match Box::pin(first_frame_auth(&mut stream, &state)).await {
            Ok(user) => {
                tracing::Span::current().record("user_id", user.id());
                user
            }
            Err(reason) => return close(&mut sink, &mut stream, reason).await,
        },
    };
    // Read before registering: whatever is delivered from now on comes after it.
    let sync_cursor = state.hub.watermark();
    let mut reg = match state
        .hub
        .register(user.id(), user.session_id, state.max_sockets_per_user)
    {
        Ok(reg) => reg,
        Err(reason) => {
            tracing::info!(target: "rtchat::ws", code = reason.code, reason = reason.reason,
                "websocket refused");
            return close(&mut sink, &mut stream, reason).await;
        }
    };
    let conn = reg.conn;
    tracing::Span::current().record("conn", conn);
    let commands = state.messaging();
    METRICS.ws_opened.inc();
    tracing::info!(target: "rtchat::ws", "websocket opened");
    let connected = ServerFrame::Connected {
        user_id: user.id(),
        username: user.user.username.clone(),
        message: "Connected to chat server".into(),
        sync_cursor,
    };
    let outcome = match Box::pin(ready(&state, &user, &reg)).await {
        Some(reason) => Some(reason),
        None if write_frame(&mut sink, &connected).await.is_err() => None,
        None => {
            let caller = Caller { user: &user, conn };
            serve(&state, caller, &mut reg, &mut sink, &mut stream).await
        }
    };
    match outcome {
        Some(reason) => {
            tracing::info!(target: "rtchat::ws", code = reason.code, reason = reason.reason,
                "websocket closed");
            close(&mut sink, &mut stream, reason).await
        }
        None => {
            tracing::info!(target: "rtchat::ws", "websocket closed by the client");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
    }
    if let Err(e) = commands
        .connection_closed(conn, user.id(), &user.user.username)
        .await
    {
        tracing::warn!(error = %e, "could not record presence");
    }
}

/// A registered connection made ready before the client hears `connected`: its rooms loaded
/// (first socket here), its session still open, its user online everywhere. Returns why it must
/// close instead, if it must.
async fn ready(state: &AppState, user: &CurrentUser, reg: &Registration) -> Option<CloseReason> {
    let commands = state.messaging();
    let ready = async {
        if reg.first {
            commands.load_rooms(user.id(), reg.generation).await?;
        }
        // A logout between authentication and registration would have found no socket to close.
        state
            .store
            .session_user(user.id(), user.session_id)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("session ended".into()))?;
        // Online (on every instance's /ws/online-users) before the client hears it is connected.
        if reg.first {
            commands.came_online(user.id(), &user.user.username).await?;
        }
        Ok::<_, ApiError>(())
    };
    match ready.await {
        Ok(_) => None,
        Err(ApiError::Unauthorized(_)) => Some(CloseReason::SESSION_ENDED),
        Err(e) => {
            tracing::warn!(error = %e, "websocket setup failed");
            Some(CloseReason::GOING_AWAY)
        }
    }
}

/// The connection's life: returns why the server closes it, or None when the client went away.
///
/// One client frame is handled at a time (its reply comes before the next frame is read), but the
/// queue keeps being written meanwhile: a frame waiting on the database never stalls delivery.
async fn serve(
    state: &AppState,
    caller: Caller<'_>,
    reg: &mut crate::server::delivery::hub::Registration,
    sink: &mut Sink,
    stream: &mut Stream,
) -> Option<CloseReason> {
    let mut heartbeat = tokio::time::interval(state.ws_timings.ping_every);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let mut budget = FrameBudget::new(Instant::now(), state.max_frame_rate);
    let commands = state.messaging();
    let mut handling: Option<Pin<Box<dyn Future<Output = Option<ServerFrame>> + Send + '_>>> = None;
    loop {
        tokio::select! {
            biased;
            reason = &mut reg.closed => return Some(reason.unwrap_or(CloseReason::GOING_AWAY)),
            message = reg.outgoing.recv() => {
                if write_queued(sink, message, &reg.outgoing).await.is_err() {
                    return None;
                }
            }
            reply = async { handling.as_mut().expect("guarded by is_some").await },
                if handling.is_some() =>
            {
                handling = None;
                if let Some(reply) = reply
                    && write_frame(sink, &reply).await.is_err()
                {
                    return None;
                }
            }
            inbound = stream.next(), if handling.is_none() => {
                let message = match inbound {
                    None => return None,
                    Some(Err(tungstenite::Error::Capacity(_))) => return Some(CloseReason::TOO_BIG),
                    Some(Err(_)) => return None,
                    Some(Ok(message)) => message,
                };
                last_heard = Instant::now();
                let reply = match message {
                    Message::Close(_) => return None,
                    Message::Text(text) => match admit(&mut budget, &text) {
                        Admission::Handle(frame) => {
                            // Boxed: its database futures are large, and inline they would make
                            // every idle connection's task as big as the busiest moment of any.
                            handling = Some(Box::pin(client_frames::handle_in_time(
                                &commands, caller, frame, state.db_timeout)));
                            None
                        }
                        Admission::Refuse(reply) => reply.map(|frame| *frame),
                        Admission::Close(reason) => return Some(reason),
                    },
                    Message::Binary(_) => {
                        Some(client_frames::error("Binary frames are not supported: send JSON text").into_frame())
                    }
                    // Pings are answered by the protocol layer; pongs only prove liveness.
                    _ => None,
                };
                if let Some(reply) = reply
                    && write_frame(sink, &reply).await.is_err()
                {
                    return None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > state.ws_timings.silence_limit {
                    return Some(CloseReason::NO_HEARTBEAT);
                }
                if write(sink, Message::Ping(Default::default())).await.is_err() {
                    return None;
                }
            }
        }
    }
}
