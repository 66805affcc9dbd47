//! The frames a signed-in client sends over its WebSocket, answered: the socket's door to the
//! command layer (`Messaging`), with refusals in REST's words. One frame at a time per socket.

use std::time::{Duration, Instant};

use crate::proto::frames::Refused;
use crate::proto::{ClientFrame, CloseReason, FieldError, FileId, MessageId, RoomId, ServerFrame};
use crate::server::commands::ApiError;
use crate::server::commands::messaging::{self, Messaging, SyncPage};
use crate::server::commands::validate;
use crate::server::delivery::hub::ConnId;
use crate::server::metrics::{KindLabel, METRICS, Throttle};
use crate::server::state::CurrentUser;
use crate::server::store::{InsertOutcome, NewMessage, RoomKind};
use crate::server::ws::frame_budget::{FrameBudget, Spent, cost_of};

/// Who sent a frame: the signed-in user, on which of their connections.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub user: &'a CurrentUser,
    pub conn: ConnId,
}

impl Caller<'_> {
    fn id(&self) -> i32 {
        self.user.id()
    }

    fn name(&self) -> &str {
        &self.user.user.username
    }
}

/// What becomes of a text frame under the socket's frame budget.
pub enum Admission {
    Handle(Result<ClientFrame, Refused>),
    /// Over the budget: this answer, if the client is due one (boxed: a frame is large, and
    /// refusals are rare).
    Refuse(Option<Box<ServerFrame>>),
    Close(CloseReason),
}

pub fn admit(budget: &mut FrameBudget, text: &str) -> Admission {
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
                .into()
            }))
        }
        Spent::Abusive => Admission::Close(CloseReason::FLOODING),
    }
}

/// A frame's handler, given at most the database deadline.
pub async fn handle_in_time(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
    frame: Result<ClientFrame, Refused>,
    deadline: Duration,
) -> Option<ServerFrame> {
    match tokio::time::timeout(deadline, handle(commands, caller, frame)).await {
        Ok(reply) => reply,
        Err(_) => Some(api_error(ApiError::unavailable("frame handler timed out")).into_frame()),
    }
}

/// Why a client frame was refused: becomes an `error` frame.
pub struct Refusal {
    message: String,
    retry_after_ms: Option<u64>,
}

impl Refusal {
    pub fn into_frame(self) -> ServerFrame {
        ServerFrame::Error {
            message: self.message,
            retry_after_ms: self.retry_after_ms,
        }
    }
}

pub fn error(message: impl Into<String>) -> Refusal {
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
async fn handle(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
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
        ClientFrame::JoinRoom { room } => join_room(commands, caller, room),
        ClientFrame::LeaveRoom { room } => leave_room(commands, caller, room),
        ClientFrame::Message {
            room,
            content,
            client_id,
            reply_to,
            attachments,
        } => {
            send_message(
                commands,
                caller,
                room,
                content,
                client_id,
                reply_to,
                attachments,
            )
            .await
        }
        ClientFrame::Typing { room } => typing(commands, caller, room),
        ClientFrame::Read { room, message_id } => read(commands, caller, room, message_id).await,
        ClientFrame::Sync { since, limit } => sync(commands, caller, since, limit).await,
        ClientFrame::Auth { .. } => Err(error("Already authenticated")),
    };
    result.unwrap_or_else(|refusal| Some(refusal.into_frame()))
}

type Handled = Result<Option<ServerFrame>, Refusal>;

fn require_member(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
    room: RoomId,
    refusal: &str,
) -> Result<RoomKind, Refusal> {
    commands
        .live_membership(caller.id(), room)
        .ok_or_else(|| error(refusal))
}

fn join_room(commands: &Messaging<'_>, caller: Caller<'_>, room: RoomId) -> Handled {
    require_member(commands, caller, room, "You don't have access to this room")?;
    commands.set_viewing(caller.conn, room, caller.id(), caller.name(), true);
    Ok(Some(ServerFrame::RoomJoined {
        room_id: room,
        message: format!("Joined room {room}"),
    }))
}

fn leave_room(commands: &Messaging<'_>, caller: Caller<'_>, room: RoomId) -> Handled {
    // Only a connection that was looking at the room announces leaving it (S3).
    commands.set_viewing(caller.conn, room, caller.id(), caller.name(), false);
    Ok(Some(ServerFrame::RoomLeft {
        room_id: room,
        message: format!("Left room {room}"),
    }))
}

async fn send_message(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
    room: RoomId,
    content: String,
    client_id: Option<String>,
    reply_to: Option<MessageId>,
    attachments: Vec<FileId>,
) -> Handled {
    let mut problems = Vec::new();
    validate::message_body(&mut problems, "content", &content, &attachments);
    validate::client_id(&mut problems, client_id.as_deref());
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let kind = require_member(commands, caller, room, "You are not in this room")?;
    let outcome = commands
        .send(NewMessage {
            room_id: room,
            kind,
            sender_id: caller.id(),
            sender_username: caller.user.user.username.clone(),
            sender_full_name: caller.user.user.full_name.clone(),
            content,
            client_id,
            reply_to,
            mentions: Vec::new(),
            files: attachments,
            attachments: Vec::new(),
            thread_root: None,
        })
        .await
        .map_err(api_error)?;
    match outcome {
        // Delivered to every connection of every member, this one included.
        InsertOutcome::Stored(_) => Ok(None),
        // A retry: tell this connection which message it was; nobody else hears of it again.
        InsertOutcome::Duplicate(m) => Ok(Some(ServerFrame::NewMessage {
            message: m.to_live(),
            sync_cursor: commands.hub.watermark(),
        })),
        InsertOutcome::ClientIdReused => Err(api_error(messaging::client_id_reused())),
        InsertOutcome::NotMember => Err(error("You are not in this room")),
    }
}

fn typing(commands: &Messaging<'_>, caller: Caller<'_>, room: RoomId) -> Handled {
    require_member(commands, caller, room, "You are not in this room")?;
    commands.typing(caller.id(), caller.name(), room);
    Ok(None)
}

async fn read(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
    room: RoomId,
    message_id: Option<MessageId>,
) -> Handled {
    require_member(commands, caller, room, "You are not in this room")?;
    commands
        .read(caller.id(), caller.name(), room, message_id)
        .await
        .map_err(api_error)?;
    // The `read` frame goes to every connection of the reader, this one included.
    Ok(None)
}

async fn sync(
    commands: &Messaging<'_>,
    caller: Caller<'_>,
    since: MessageId,
    limit: Option<i64>,
) -> Handled {
    let page = SyncPage::new(Some(since), limit).map_err(|problems| invalid(&problems))?;
    let reply = commands.sync(caller.id(), page).await.map_err(api_error)?;
    Ok(Some(ServerFrame::Sync(reply)))
}
