//! What instances tell each other, as it travels on the bus (JSON).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::proto::{LiveMessage, MessageId, Presence, RoomId, RoomKind, ServerFrame, UserId};

use crate::server::store::{StoredChange, StoredMessage};

/// A WebSocket connection of this instance, as the hub and the events that must skip it name it.
pub type ConnId = u64;

/// One publication: the events one instance had queued, in the order it queued them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The instance that sent it.
    pub from: Uuid,
    /// When it was sent (Unix milliseconds), for the bus-lag metric.
    pub sent_at_ms: u64,
    pub events: Vec<Event>,
}

/// A frame already serialised by its sender, forwarded as is.
pub type FrameJson = String;

/// `frame` as it travels: serialised once, by the instance that produced it.
pub fn frame_json(frame: &ServerFrame) -> FrameJson {
    serde_json::to_string(frame).expect("frames always serialise")
}

/// The members a message names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mention {
    pub message: MessageId,
    pub users: Vec<UserId>,
}

impl Mention {
    /// Who each of `messages` names, for those that name anyone.
    pub fn of<'a>(messages: impl IntoIterator<Item = &'a StoredMessage>) -> Vec<Mention> {
        messages
            .into_iter()
            .filter(|m| !m.mentions.is_empty())
            .map(|m| Mention {
                message: m.id,
                users: m.mentions.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Event {
    /// Log positions `first..=last` are settled: these messages were stored there (any other
    /// position in the range stored nothing: a retry, a non-member, a failed batch).
    Messages {
        first: MessageId,
        last: MessageId,
        messages: Vec<LiveMessage>,
        /// Who each message names: they get it marked `mention`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
    },
    /// A message was edited or deleted at log position `at`: its room hears `frame`.
    MessageChanged {
        at: MessageId,
        room: RoomId,
        frame: FrameJson,
    },
    /// `user` left or was removed from `room` at log position `at`: the room hears `frame`, then
    /// nothing more of the room reaches the user.
    MemberRemoved {
        at: MessageId,
        room: RoomId,
        user: UserId,
        frame: FrameJson,
    },
    /// Users joined a room: they receive its messages from now on.
    MembersAdded {
        room: RoomId,
        kind: RoomKind,
        users: Vec<UserId>,
    },
    /// To every connection of the room's members but `except_user`'s.
    ToRoom {
        room: RoomId,
        frame: FrameJson,
        except_user: Option<UserId>,
    },
    /// To every connection of `user`.
    ToUser { user: UserId, frame: FrameJson },
    /// To the connections looking at `room`, but the sender's own connection `except`.
    ToViewers {
        room: RoomId,
        frame: FrameJson,
        except: Option<ConnId>,
    },
    /// `user` came online or went offline (everywhere): their peers in `rooms` hear `frame`.
    Presence {
        user: UserId,
        rooms: Vec<RoomId>,
        frame: FrameJson,
    },
    /// A session ended: its sockets close and no instance trusts its cached authentication.
    SessionEnded { session: Uuid },
    /// Every session of a user ended (logout-all, password change).
    UserSessionsEnded { user: UserId },
    /// A user's profile changed: no instance keeps the old one in its session cache.
    ProfileChanged { user: UserId },
}

impl Event {
    /// `user`'s peers in `rooms`, on every instance, hear their new status.
    pub fn presence(user: UserId, username: &str, rooms: Vec<RoomId>, status: Presence) -> Event {
        let frame = frame_json(&ServerFrame::Presence {
            user_id: user,
            username: username.to_string(),
            status,
        });
        Event::Presence { user, rooms, frame }
    }
}

impl Event {
    /// An edit or a deletion, at its place in the log.
    pub fn message_changed(change: &StoredChange) -> Event {
        Event::MessageChanged {
            at: change.position,
            room: change.room_id,
            frame: frame_json(&change.to_frame()),
        }
    }

    /// The log positions this event settles, for the events that are part of the ordered log.
    pub fn log_range(&self) -> Option<(MessageId, MessageId)> {
        match self {
            Event::Messages { first, last, .. } => Some((*first, *last)),
            Event::MemberRemoved { at, .. } | Event::MessageChanged { at, .. } => Some((*at, *at)),
            _ => None,
        }
    }
}
