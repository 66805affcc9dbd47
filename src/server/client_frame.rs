//! The frames a WebSocket client sends, parsed from JSON text: ids as numbers or numeric strings
//! (the seed's clients send both, and the seed kept `"6"` and `6` as different rooms), every other
//! field strictly typed, and never a panic whatever the text.

use serde_json::{Map, Value};

use crate::proto::{MessageId, RoomId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Auth {
        token: String,
    },
    JoinRoom {
        room: RoomId,
    },
    LeaveRoom {
        room: RoomId,
    },
    Message {
        room: RoomId,
        content: String,
        client_id: Option<String>,
    },
    Typing {
        room: RoomId,
    },
    Read {
        room: RoomId,
        message_id: Option<MessageId>,
    },
    Sync {
        since: MessageId,
        limit: Option<i64>,
    },
}

impl ClientFrame {
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

pub fn parse(text: &str) -> Result<ClientFrame, Refused> {
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
    fn a_room_id_out_of_range_is_a_room_nobody_is_in() {
        assert_eq!(
            parse(r#"{"type":"typing","room_id":99999999999}"#),
            Ok(ClientFrame::Typing { room: RoomId::MIN })
        );
    }
}
