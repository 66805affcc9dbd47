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
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::proto::ClientFrame;
use crate::proto::frames::Refused;
use crate::proto::{CloseReason, FieldError, Presence};
use crate::proto::{MessageId, RoomId, ServerFrame};
use crate::server::http::error::ApiError;
use crate::server::http::listener::{ConnectionSlot, RequestLog};
use crate::server::messaging::{self, SyncPage};
use crate::server::metrics::{KindLabel, METRICS, Throttle};
use crate::server::realtime::frame_budget::{FrameBudget, Spent, cost_of};
use crate::server::realtime::hub::{ConnId, Frame};
use crate::server::realtime::outbox::Outbox;
use crate::server::state::with_state;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{InsertOutcome, NewMessage};
use crate::server::validate;

/// Frames waiting for one connection; a reader this far behind is closed and catches up with `sync`.
pub const QUEUE_CAPACITY: usize = 256;
/// Largest frame a client may send; larger ones close the connection with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// A socket's clocks (`--ws-ping-interval`, `--ws-idle-timeout`, `--ws-auth-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub ping_every: Duration,
    /// Nothing at all from the client (not even a pong) for this long: the connection is dead.
    pub silence_limit: Duration,
    pub auth_timeout: Duration,
}
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written with one flush at most, and the bytes buffered before a write happens anyway.
const MAX_FRAMES_PER_WRITE: usize = 64;
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Bytes read per system call; client frames are small, and the buffer grows for a large one.
const READ_BUFFER_BYTES: usize = 1024;
/// A user's typing in a room is forwarded at most this often (the REPL sends one per 3 s).
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

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
    state.tasks.clone().spawn(async move {
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
    });
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

async fn close(sink: &mut Sink, reason: CloseReason) {
    let frame = protocol::CloseFrame {
        code: reason.code.into(),
        reason: reason.reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
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

/// Fills the hub's membership cache for a user who just came online, retrying if membership
/// changed while the list was being read.
async fn load_rooms(state: &AppState, user: i32, mut generation: u64) -> Result<(), ApiError> {
    for _ in 0..5 {
        let rooms = state.store.rooms_of(user).await?;
        if state.hub.set_rooms(user, &rooms, generation) {
            return Ok(());
        }
        generation = state.hub.generation(user);
    }
    Err(ApiError::unavailable("membership kept changing"))
}

fn presence(state: &AppState, peers: &[i32], user: &CurrentUser, status: Presence) {
    if peers.is_empty() {
        return;
    }
    let frame = Frame::new(&ServerFrame::Presence {
        user_id: user.id(),
        username: user.user.username.clone(),
        status,
    });
    state.hub.to_users(peers, &frame);
}

async fn connection(socket: Socket, state: AppState, user: Option<CurrentUser>) {
    let (mut sink, mut stream) = socket.split();
    let user = match user {
        Some(user) => user,
        None => match Box::pin(first_frame_auth(&mut stream, &state)).await {
            Ok(user) => user,
            Err(reason) => return close(&mut sink, reason).await,
        },
    };
    let mut reg = match state
        .hub
        .register(user.id(), user.session_id, state.max_sockets_per_user)
    {
        Ok(reg) => reg,
        Err(reason) => {
            tracing::info!(target: "rtchat::ws", user_id = user.id(), code = reason.code,
                reason = reason.reason, "websocket refused");
            return close(&mut sink, reason).await;
        }
    };
    let conn = reg.conn;
    METRICS.ws_opened.inc();
    tracing::info!(target: "rtchat::ws", conn, user_id = user.id(), "websocket opened");
    let ready = async {
        if reg.first {
            load_rooms(&state, user.id(), reg.generation).await?;
        }
        // A logout between authentication and registration would have found no socket to close.
        state
            .store
            .session_user(user.id(), user.session_id)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("session ended".into()))
    };
    let outcome = match Box::pin(ready).await {
        Ok(_) => None,
        Err(ApiError::Unauthorized(_)) => Some(CloseReason::SESSION_ENDED),
        Err(e) => {
            tracing::warn!(error = %e, "websocket setup failed");
            Some(CloseReason::GOING_AWAY)
        }
    };
    let connected = ServerFrame::Connected {
        user_id: user.id(),
        username: user.user.username.clone(),
        message: "Connected to chat server".into(),
        sync_cursor: state.hub.watermark(),
    };
    let outcome = match outcome {
        Some(reason) => Some(reason),
        None if write_frame(&mut sink, &connected).await.is_err() => None,
        None => {
            if reg.first {
                presence(&state, &state.hub.peers(user.id()), &user, Presence::Online);
            }
            serve(&state, &user, conn, &mut reg, &mut sink, &mut stream).await
        }
    };
    match outcome {
        Some(reason) => {
            tracing::info!(target: "rtchat::ws", conn, user_id = user.id(), code = reason.code,
                reason = reason.reason, "websocket closed");
            close(&mut sink, reason).await
        }
        None => {
            tracing::info!(target: "rtchat::ws", conn, user_id = user.id(), "websocket closed by the client");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        }
    }

    let peers = state.hub.peers(user.id());
    let (viewing, last) = state.hub.unregister(conn);
    for room in viewing {
        tell_viewers(&state, conn, room, &user, false);
    }
    if last {
        presence(&state, &peers, &user, Presence::Offline);
    }
}

/// The connection's life: returns why the server closes it, or None when the client went away.
///
/// One client frame is handled at a time (its reply comes before the next frame is read), but the
/// queue keeps being written meanwhile: a frame waiting on the database never stalls delivery.
async fn serve(
    state: &AppState,
    user: &CurrentUser,
    conn: ConnId,
    reg: &mut crate::server::realtime::hub::Registration,
    sink: &mut Sink,
    stream: &mut Stream,
) -> Option<CloseReason> {
    let mut heartbeat = tokio::time::interval(state.ws_timings.ping_every);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let mut budget = FrameBudget::new(Instant::now(), state.max_frame_rate);
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
                            handling = Some(Box::pin(handle_frame_in_time(state, user, conn, frame)));
                            None
                        }
                        Admission::Refuse(reply) => reply,
                        Admission::Close(reason) => return Some(reason),
                    },
                    Message::Binary(_) => {
                        Some(error("Binary frames are not supported: send JSON text").into_frame())
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

/// What becomes of a text frame under the socket's frame budget.
enum Admission {
    Handle(Result<ClientFrame, Refused>),
    /// Over the budget: this answer, if the client is due one.
    Refuse(Option<ServerFrame>),
    Close(CloseReason),
}

fn admit(budget: &mut FrameBudget, text: &str) -> Admission {
    let frame = ClientFrame::parse(text);
    match budget.spend(Instant::now(), cost_of(frame.as_ref())) {
        Spent::Ok => Admission::Handle(frame),
        Spent::Refused {
            retry_after_ms,
            tell,
        } => {
            METRICS.throttled(Throttle::Frames);
            Admission::Refuse(tell.then(|| {
                Refusal {
                    message: format!("Too many frames; slow down (retry in {retry_after_ms} ms)"),
                    retry_after_ms: Some(retry_after_ms),
                }
                .into_frame()
            }))
        }
        Spent::Abusive => Admission::Close(CloseReason::FLOODING),
    }
}

/// A frame's handler, given at most the database deadline.
async fn handle_frame_in_time(
    state: &AppState,
    user: &CurrentUser,
    conn: ConnId,
    frame: Result<ClientFrame, Refused>,
) -> Option<ServerFrame> {
    match tokio::time::timeout(state.db_timeout, handle_frame(state, user, conn, frame)).await {
        Ok(reply) => reply,
        Err(_) => Some(api_error(ApiError::unavailable("frame handler timed out")).into_frame()),
    }
}

/// Why a client frame was refused: becomes an `error` frame.
struct Refusal {
    message: String,
    retry_after_ms: Option<u64>,
}

impl Refusal {
    fn into_frame(self) -> ServerFrame {
        ServerFrame::Error {
            message: self.message,
            retry_after_ms: self.retry_after_ms,
        }
    }
}

fn error(message: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        retry_after_ms: None,
    }
}

/// The first of a frame's field problems, named: the same rules as REST's 422, in one line.
fn invalid(problems: &[FieldError]) -> Refusal {
    match problems.first() {
        Some(p) => match p.loc.last().and_then(|l| l.as_str()) {
            Some(field) if field != "content" => error(format!("Invalid {field}: {}", p.msg)),
            _ => error(p.msg.clone()),
        },
        None => error("Invalid frame"),
    }
}

fn api_error(e: ApiError) -> Refusal {
    if let Some(cause) = e.cause() {
        tracing::warn!(target: "rtchat::ws", error = %cause, "frame failed");
    }
    match e {
        ApiError::TooManyRequests {
            what,
            retry_after_ms,
        } => Refusal {
            message: format!("{what}; retry in {retry_after_ms} ms"),
            retry_after_ms: Some(retry_after_ms),
        },
        other => error(other.public_message()),
    }
}

/// Answers one client frame: the reply to send back on this connection, if any. Nothing here keeps
/// state for a frame that failed.
async fn handle_frame(
    state: &AppState,
    user: &CurrentUser,
    conn: ConnId,
    frame: Result<ClientFrame, Refused>,
) -> Option<ServerFrame> {
    let frame = match frame {
        Ok(frame) => frame,
        Err(refused) => {
            METRICS
                .ws_frames_received
                .get_or_create(&KindLabel { kind: "invalid" })
                .inc();
            return Some(error(refused).into_frame());
        }
    };
    METRICS
        .ws_frames_received
        .get_or_create(&KindLabel { kind: frame.kind() })
        .inc();
    let result = match frame {
        ClientFrame::Ping => Ok(Some(ServerFrame::Pong)),
        ClientFrame::JoinRoom { room } => join_room(state, user, conn, room),
        ClientFrame::LeaveRoom { room } => leave_room(state, user, conn, room),
        ClientFrame::Message {
            room,
            content,
            client_id,
        } => send_message(state, user, room, content, client_id).await,
        ClientFrame::Typing { room } => typing(state, user, room),
        ClientFrame::Read { room, message_id } => read(state, user, room, message_id).await,
        ClientFrame::Sync { since, limit } => sync(state, user, since, limit).await,
        ClientFrame::Auth { .. } => Err(error("Already authenticated")),
    };
    result.unwrap_or_else(|refusal| Some(refusal.into_frame()))
}

type Handled = Result<Option<ServerFrame>, Refusal>;

fn require_member(
    state: &AppState,
    user: &CurrentUser,
    room: RoomId,
    refusal: &str,
) -> Result<crate::server::store::RoomKind, Refusal> {
    state
        .hub
        .membership(user.id(), room)
        .ok_or_else(|| error(refusal))
}

fn join_room(state: &AppState, user: &CurrentUser, conn: ConnId, room: RoomId) -> Handled {
    require_member(state, user, room, "You don't have access to this room")?;
    if state.hub.start_viewing(conn, room) {
        tell_viewers(state, conn, room, user, true);
    }
    Ok(Some(ServerFrame::RoomJoined {
        room_id: room,
        message: format!("Joined room {room}"),
    }))
}

/// Tells the other connections looking at `room` that this one started or stopped looking.
fn tell_viewers(state: &AppState, conn: ConnId, room: RoomId, user: &CurrentUser, joined: bool) {
    let (room_id, user_id, username) = (room, user.id(), user.user.username.clone());
    let frame = if joined {
        ServerFrame::UserJoined {
            room_id,
            user_id,
            username,
        }
    } else {
        ServerFrame::UserLeft {
            room_id,
            user_id,
            username,
        }
    };
    state.hub.to_viewers(room, &Frame::new(&frame), conn);
}

fn leave_room(state: &AppState, user: &CurrentUser, conn: ConnId, room: RoomId) -> Handled {
    // Only a connection that was looking at the room announces leaving it (S3).
    if state.hub.stop_viewing(conn, room) {
        tell_viewers(state, conn, room, user, false);
    }
    Ok(Some(ServerFrame::RoomLeft {
        room_id: room,
        message: format!("Left room {room}"),
    }))
}

async fn send_message(
    state: &AppState,
    user: &CurrentUser,
    room: RoomId,
    content: String,
    client_id: Option<String>,
) -> Handled {
    let mut problems = Vec::new();
    validate::content(&mut problems, "content", &content);
    validate::client_id(&mut problems, client_id.as_deref());
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let kind = require_member(state, user, room, "You are not in this room")?;
    let outcome = state
        .messaging()
        .send(NewMessage {
            room_id: room,
            kind,
            sender_id: user.id(),
            content,
            client_id,
        })
        .await
        .map_err(api_error)?;
    match outcome {
        // Delivered to every connection of every member, this one included.
        InsertOutcome::Stored(_) => Ok(None),
        // A retry: tell this connection which message it was; nobody else hears of it again.
        InsertOutcome::Duplicate(m) => Ok(Some(ServerFrame::NewMessage {
            message: m.to_live(),
            sync_cursor: state.hub.watermark(),
        })),
        InsertOutcome::ClientIdReused => Err(api_error(messaging::client_id_reused())),
        InsertOutcome::NotMember => Err(error("You are not in this room")),
    }
}

fn typing(state: &AppState, user: &CurrentUser, room: RoomId) -> Handled {
    require_member(state, user, room, "You are not in this room")?;
    // Clients send one per keystroke; the room hears it at most once per TYPING_EVERY.
    if !state.hub.typing_due(user.id(), room, TYPING_EVERY) {
        return Ok(None);
    }
    let frame = Frame::new(&ServerFrame::UserTyping {
        room_id: room,
        user_id: user.id(),
        username: user.user.username.clone(),
    });
    state.hub.to_room(room, &frame, Some(user.id()));
    Ok(None)
}

async fn read(
    state: &AppState,
    user: &CurrentUser,
    room: RoomId,
    message_id: Option<MessageId>,
) -> Handled {
    require_member(state, user, room, "You are not in this room")?;
    state
        .messaging()
        .read(user.id(), &user.user.username, room, message_id)
        .await
        .map_err(api_error)?;
    // The `read` frame goes to every connection of the reader, this one included.
    Ok(None)
}

async fn sync(
    state: &AppState,
    user: &CurrentUser,
    since: MessageId,
    limit: Option<i64>,
) -> Handled {
    let page = SyncPage::new(Some(since), limit).map_err(|problems| invalid(&problems))?;
    let reply = state
        .messaging()
        .sync(user.id(), page)
        .await
        .map_err(api_error)?;
    Ok(Some(ServerFrame::Sync(reply)))
}
