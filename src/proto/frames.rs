//! The WebSocket protocol: the frames a client sends (`ClientFrame`), the frames the server sends
//! (`ServerFrame`), and the codes the server closes a socket with (`CloseReason`). Server, client
//! and load generator all speak it through these types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    FileId, LiveMessage, MessageChange, MessageId, Presence, RoomId, RoomKind, SyncReply, UserId,
};

/// Why the server closes a socket: a WebSocket close code and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseReason {
    pub const GOING_AWAY: CloseReason = CloseReason {
        code: 1001,
        reason: "server shutting down",
    };
    pub const TOO_BIG: CloseReason = CloseReason {
        code: 1009,
        reason: "frame too large",
    };
    pub const AUTH_TIMEOUT: CloseReason = CloseReason {
        code: 4000,
        reason: "no auth frame in time",
    };
    pub const AUTH_FAILED: CloseReason = CloseReason {
        code: 4001,
        reason: "authentication failed",
    };
    pub const NO_HEARTBEAT: CloseReason = CloseReason {
        code: 4002,
        reason: "no heartbeat",
    };
    /// The session was ended (logout, password change, a reused refresh token): log in again.
    pub const SESSION_ENDED: CloseReason = CloseReason {
        code: 4003,
        reason: "session ended",
    };
    /// The socket did not read its frames fast enough: reconnect and `sync`.
    pub const TOO_SLOW: CloseReason = CloseReason {
        code: 4008,
        reason: "too slow: reconnect and sync",
    };
    pub const TOO_MANY_SOCKETS: CloseReason = CloseReason {
        code: 4009,
        reason: "too many connections for this user",
    };
    pub const FLOODING: CloseReason = CloseReason {
        code: 4029,
        reason: "too many frames",
    };
    pub const ALL: [CloseReason; 9] = [
        Self::GOING_AWAY,
        Self::TOO_BIG,
        Self::AUTH_TIMEOUT,
        Self::AUTH_FAILED,
        Self::NO_HEARTBEAT,
        Self::SESSION_ENDED,
        Self::TOO_SLOW,
        Self::TOO_MANY_SOCKETS,
        Self::FLOODING,
    ];
}

/// Frames the server sends on the WebSocket. The seed's types keep their shapes; the others are ours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Connected {
        user_id: UserId,
        username: String,
        message: String,
        /// Resume point for `sync` if this connection drops before any message arrives.
        sync_cursor: MessageId,
    },
    RoomJoined {
        room_id: RoomId,
        message: String,
    },
    RoomLeft {
        room_id: RoomId,
        message: String,
    },
    UserJoined {
        room_id: RoomId,
        user_id: UserId,
        username: String,
    },
    UserLeft {
        room_id: RoomId,
        user_id: UserId,
        username: String,
    },
    NewMessage {
        #[serde(flatten)]
        message: LiveMessage,
        /// Every message up to this id has been delivered: a safe `since` for the next `sync`.
        sync_cursor: MessageId,
    },
    /// A message's author changed its text.
    MessageEdited {
        #[serde(flatten)]
        change: MessageChange,
    },
    /// Someone reacted to a message, or took a reaction back (`reaction.added`).
    MessageReaction {
        #[serde(flatten)]
        change: MessageChange,
    },
    /// A message was deleted (by its author or the group's admin): show a tombstone.
    MessageDeleted {
        #[serde(flatten)]
        change: MessageChange,
    },
    UserTyping {
        room_id: RoomId,
        user_id: UserId,
        username: String,
    },
    Pong,
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A member read a room up to a message. The reader's own connections also get the unread count.
    Read {
        room_id: RoomId,
        user_id: UserId,
        username: String,
        last_read_message_id: MessageId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unread_count: Option<i64>,
    },
    /// Someone who shares a room with you came online (first connection) or went offline (last).
    Presence {
        user_id: UserId,
        username: String,
        status: Presence,
    },
    /// A user joined a room (a new group, or added to one): sent to every member, the new one too.
    MemberAdded {
        room_id: RoomId,
        room_type: RoomKind,
        name: Option<String>,
        user_id: UserId,
        username: String,
    },
    /// A user left or was removed: sent to the remaining members and to that user. `removed_by`
    /// names the admin who removed them; absent when they left.
    MemberRemoved {
        room_id: RoomId,
        user_id: UserId,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removed_by_id: Option<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removed_by: Option<String>,
    },
    /// A group was renamed, given a topic, or made public or private: sent to its members.
    GroupUpdated {
        room_id: RoomId,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        is_public: bool,
        /// Who changed it.
        by: String,
    },
    Sync(SyncReply),
}

impl ServerFrame {
    /// The room a frame is about, for the frames that are about one.
    pub fn room(&self) -> Option<RoomId> {
        match self {
            ServerFrame::NewMessage { message, .. } => Some(message.room_id),
            ServerFrame::MessageEdited { change }
            | ServerFrame::MessageDeleted { change }
            | ServerFrame::MessageReaction { change } => Some(change.room_id),
            ServerFrame::UserTyping { room_id, .. }
            | ServerFrame::Read { room_id, .. }
            | ServerFrame::MemberAdded { room_id, .. }
            | ServerFrame::MemberRemoved { room_id, .. }
            | ServerFrame::GroupUpdated { room_id, .. }
            | ServerFrame::UserJoined { room_id, .. }
            | ServerFrame::UserLeft { room_id, .. }
            | ServerFrame::RoomJoined { room_id, .. }
            | ServerFrame::RoomLeft { room_id, .. } => Some(*room_id),
            _ => None,
        }
    }
}

/// A frame a client sends. Built by the client and the load generator and written with serde;
/// read by the server with `parse`, which takes ids as numbers or numeric strings (the seed's
/// clients send both) and says precisely what is wrong with a frame it refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Ping,
    /// The first frame of a socket opened without credentials (browsers cannot set headers).
    Auth {
        token: String,
    },
    JoinRoom {
        #[serde(rename = "room_id")]
        room: RoomId,
    },
    LeaveRoom {
        #[serde(rename = "room_id")]
        room: RoomId,
    },
    Message {
        #[serde(rename = "room_id")]
        room: RoomId,
        content: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// The message this one answers.
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Files to attach (ids from `POST /files`); with any, `content` may be empty.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<FileId>,
    },
    Typing {
        #[serde(rename = "room_id")]
        room: RoomId,
    },
    /// Read up to `message_id`, or everything.
    Read {
        #[serde(rename = "room_id")]
        room: RoomId,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
    },
    /// Every message of the user's rooms after `since`.
    Sync {
        since: MessageId,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<i64>,
    },
}

impl ClientFrame {
    /// Reads a frame from a socket's text; never panics, whatever the text.
    pub fn parse(text: &str) -> Result<ClientFrame, Refused> {
        parse(text)
    }

    /// The frame as sent on the socket.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a frame serializes")
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Ping => "ping",
            ClientFrame::Auth { .. } => "auth",
            ClientFrame::JoinRoom { .. } => "join_room",
            ClientFrame::LeaveRoom { .. } => "leave_room",
            ClientFrame::Message { .. } => "message",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Sync { .. } => "sync",
        }
    }
}

/// Why a frame could not be parsed, in words for the client's `error` frame.
pub type Refused = String;

fn parse(text: &str) -> Result<ClientFrame, Refused> {
    let value: Value = serde_json::from_str(text).map_err(|_| "Invalid JSON".to_string())?;
    let Some(obj) = value.as_object() else {
        return Err("A frame must be a JSON object with a \"type\"".into());
    };
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err("Invalid type: expected a string".into()),
        None => return Err("Missing field: type".into()),
    };
    Ok(match kind {
        "ping" => ClientFrame::Ping,
        "auth" => ClientFrame::Auth {
            token: string_field(obj, "token")?
                .ok_or("Missing field: token")?
                .to_string(),
        },
        "join_room" => ClientFrame::JoinRoom {
            room: room_field(obj)?,
        },
        "leave_room" => ClientFrame::LeaveRoom {
            room: room_field(obj)?,
        },
        "message" => ClientFrame::Message {
            room: room_field(obj)?,
            content: string_field(obj, "content")?
                .ok_or("Missing field: content")?
                .to_string(),
            client_id: string_field(obj, "client_id")?.map(str::to_string),
            reply_to: int_field(obj, "reply_to")?,
            attachments: ids_field(obj, "attachments")?,
        },
        "typing" => ClientFrame::Typing {
            room: room_field(obj)?,
        },
        "read" => ClientFrame::Read {
            room: room_field(obj)?,
            message_id: int_field(obj, "message_id")?,
        },
        "sync" => ClientFrame::Sync {
            since: required_int(obj, "since")?,
            limit: int_field(obj, "limit")?,
        },
        other => return Err(format!("Unknown message type: {other}")),
    })
}

/// An integer field; numeric strings count.
fn int_field(obj: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refused> {
    let invalid = || format!("Invalid {name}: expected an integer");
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// A list of integer ids (numeric strings count); absent is empty.
fn ids_field(obj: &Map<String, Value>, name: &str) -> Result<Vec<i64>, Refused> {
    let invalid = || format!("Invalid {name}: expected a list of integers");
    match obj.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Number(n) => n.as_i64().ok_or_else(invalid),
                Value::String(s) => s.trim().parse().map_err(|_| invalid()),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn required_int(obj: &Map<String, Value>, name: &str) -> Result<i64, Refused> {
    int_field(obj, name)?.ok_or_else(|| format!("Missing field: {name}"))
}

fn room_field(obj: &Map<String, Value>) -> Result<RoomId, Refused> {
    let id = required_int(obj, "room_id")?;
    // An id no room can have is simply a room the user is not in.
    Ok(RoomId::try_from(id).unwrap_or(RoomId::MIN))
}

fn string_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Refused> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Invalid {name}: expected a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_may_be_numbers_or_numeric_strings() {
        for text in [
            r#"{"type":"join_room","room_id":6}"#,
            r#"{"type":"join_room","room_id":"6"}"#,
            r#"{"type":"join_room","room_id":" 6 "}"#,
        ] {
            assert_eq!(parse(text), Ok(ClientFrame::JoinRoom { room: 6 }), "{text}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let cases = [
            ("nope", "Invalid JSON"),
            ("[1]", "A frame must be a JSON object with a \"type\""),
            ("{}", "Missing field: type"),
            (r#"{"type":5}"#, "Invalid type: expected a string"),
            (r#"{"type":"dance"}"#, "Unknown message type: dance"),
            (r#"{"type":"typing"}"#, "Missing field: room_id"),
            (
                r#"{"type":"typing","room_id":1.5}"#,
                "Invalid room_id: expected an integer",
            ),
            (
                r#"{"type":"message","room_id":1}"#,
                "Missing field: content",
            ),
            (
                r#"{"type":"message","room_id":1,"content":7}"#,
                "Invalid content: expected a string",
            ),
            (r#"{"type":"sync"}"#, "Missing field: since"),
        ];
        for (text, refusal) in cases {
            assert_eq!(parse(text), Err(refusal.to_string()), "{text}");
        }
    }

    #[test]
    fn frames_written_by_clients_read_back_the_same() {
        let frames = [
            ClientFrame::Ping,
            ClientFrame::Auth { token: "t".into() },
            ClientFrame::JoinRoom { room: 6 },
            ClientFrame::Message {
                room: 6,
                content: "hi".into(),
                client_id: Some("c1".into()),
                reply_to: None,
                attachments: vec![4, 5],
            },
            ClientFrame::Message {
                room: 6,
                content: "hi".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            },
            ClientFrame::Read {
                room: 6,
                message_id: None,
            },
            ClientFrame::Sync {
                since: 9,
                limit: Some(5),
            },
        ];
        for frame in frames {
            assert_eq!(
                parse(&frame.to_text()),
                Ok(frame.clone()),
                "{}",
                frame.to_text()
            );
        }
        assert_eq!(
            ClientFrame::Typing { room: 3 }.to_text(),
            r#"{"type":"typing","room_id":3}"#
        );
    }

    #[test]
    fn kinds_and_states_are_written_as_the_seed_wrote_them() {
        let added = ServerFrame::MemberAdded {
            room_id: 1,
            room_type: RoomKind::Group,
            name: Some("ops".into()),
            user_id: 2,
            username: "bob".into(),
        };
        let text = serde_json::to_string(&added).unwrap();
        assert!(text.contains(r#""room_type":"group""#), "{text}");
        let online = ServerFrame::Presence {
            user_id: 2,
            username: "bob".into(),
            status: Presence::Online,
        };
        let text = serde_json::to_string(&online).unwrap();
        assert!(text.contains(r#""status":"online""#), "{text}");
        assert_eq!("direct".parse::<RoomKind>().unwrap(), RoomKind::Direct);
        assert!(
            "channel".parse::<RoomKind>().is_err(),
            "no guessing: unknown is an error"
        );
    }

    #[test]
    fn every_close_code_is_in_the_documented_protocol() {
        for reason in CloseReason::ALL {
            let code = reason.code.to_string();
            assert!(
                crate::server::http::routes::docs::WEBSOCKET.contains(&code),
                "{code} missing from the /ws description"
            );
        }
    }

    #[test]
    fn a_room_id_out_of_range_is_a_room_nobody_is_in() {
        assert_eq!(
            parse(r#"{"type":"typing","room_id":99999999999}"#),
            Ok(ClientFrame::Typing { room: RoomId::MIN })
        );
    }
}
