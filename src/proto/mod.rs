//! Wire types shared by the server, the client and the load generator: REST request and response
//! bodies (the seed's shapes, extended where noted), the timestamp format, and (in `frames`) the
//! WebSocket protocol.

pub mod files;
pub mod frames;
pub mod team;

pub use files::{Attachment, FileId, Uploaded};
pub use frames::{ClientFrame, CloseReason, ServerFrame};
pub use team::ServerRole;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

pub type UserId = i32;
pub type RoomId = i32;
pub type MessageId = i64;

/// The longest message, in characters (Unicode scalar values), that the server stores.
pub const MAX_MESSAGE_CHARS: usize = 5000;

/// An instant in UTC, written as ISO-8601 with microseconds and a `Z` (the seed wrote naive times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

/// In the API document: an RFC 3339 date-time string.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "UTC, with microseconds, e.g. 2026-11-26T10:27:40.389392Z",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

/// Integers that may arrive as JSON numbers or as strings of digits: the seed (pydantic, lax mode)
/// accepted both, and clients that read ids from text fields send strings.
pub mod lenient {
    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    struct IntVisitor<T>(PhantomData<T>);

    impl<T> Visitor<'_> for IntVisitor<T>
    where
        T: TryFrom<i64> + TryFrom<u64> + FromStr,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a valid integer")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom("integer out of range"))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom("integer out of range"))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom("Input should be a valid integer"))
        }
    }

    pub fn int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64> + FromStr,
    {
        deserializer.deserialize_any(IntVisitor(PhantomData))
    }

    pub fn opt_int<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64> + FromStr,
    {
        struct OptVisitor<T>(PhantomData<T>);
        impl<'de, T> Visitor<'de> for OptVisitor<T>
        where
            T: TryFrom<i64> + TryFrom<u64> + FromStr,
        {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a valid integer or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                int(d).map(Some)
            }
        }
        deserializer.deserialize_option(OptVisitor(PhantomData))
    }

    pub fn int_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64> + FromStr,
    {
        struct Item<T>(T);
        impl<'de, T> de::Deserialize<'de> for Item<T>
        where
            T: TryFrom<i64> + TryFrom<u64> + FromStr,
        {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                int(d).map(Item)
            }
        }
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T> Visitor<'de> for ListVisitor<T>
        where
            T: TryFrom<i64> + TryFrom<u64> + FromStr,
        {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of integers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(Item(v)) = seq.next_element::<Item<T>>()? {
                    out.push(v);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// What a room is: a conversation of two people, or a named group (`room_type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Direct,
    Group,
}

impl RoomKind {
    /// As the database and the wire write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Direct => "direct",
            RoomKind::Group => "group",
        }
    }
}

/// A `room_type` that is neither `direct` nor `group`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown room type {0:?}")]
pub struct UnknownRoomKind(pub String);

impl std::str::FromStr for RoomKind {
    type Err = UnknownRoomKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(RoomKind::Direct),
            "group" => Ok(RoomKind::Group),
            other => Err(UnknownRoomKind(other.to_string())),
        }
    }
}

/// Whether a person has a live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Offline,
}

impl std::fmt::Display for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
        })
    }
}

// ----- errors -----

/// Every error body: `{"detail": "..."}`, or a list of field errors for validation (422).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub detail: serde_json::Value,
}

/// One entry of a 422 `detail` list, shaped like pydantic's so the seed's clients can read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[serde(default)]
    pub input: serde_json::Value,
}

/// A success reply that only says what happened.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageReply {
    pub message: String,
}

// ----- meta -----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RootInfo {
    pub message: String,
    pub status: String,
    pub docs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OnlineUsers {
    pub online_users: Vec<UserId>,
    pub count: usize,
}

// ----- accounts -----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub full_name: Option<String>,
    /// An invite code: needed when the server admits by invitation (its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// A username or an email address.
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub old_password: String,
    pub new_password: String,
}

/// `PATCH /auth/me`: what to change of one's own profile; a field left out stays as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// The name shown beside the username; empty clears it.
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Needed to change the email (whoever holds a stolen token must not take the account's
    /// address).
    #[serde(default)]
    pub current_password: Option<String>,
}

/// The account as its owner sees it (`/auth/me`, register, login).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub id: UserId,
    pub is_active: bool,
    pub is_verified: bool,
    pub created_at: Timestamp,
    /// What the account may do on the server.
    #[serde(default)]
    pub role: ServerRole,
    /// A bot: signs in with tokens only.
    #[serde(default)]
    pub is_bot: bool,
}

/// Another user as anyone signed in may see them: no email.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicUser {
    pub id: UserId,
    pub username: String,
    pub full_name: Option<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub is_bot: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthReply {
    pub message: String,
    pub user: User,
    pub tokens: Tokens,
}

/// The web client's session (`/auth/web/*`): the access token in the body, the refresh token in
/// an HttpOnly cookie that no script can read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebSession {
    pub user: User,
    pub access_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogoutAllReply {
    pub message: String,
    pub sessions_terminated: u64,
}

// ----- messages -----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendDirectRequest {
    #[serde(deserialize_with = "lenient::int")]
    pub recipient_id: UserId,
    pub content: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The id of a message in the same room that this one answers.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub reply_to: Option<MessageId>,
    /// Files attached (ids from `POST /files`, yours and not yet sent); with any, `content` may
    /// be empty.
    #[serde(default)]
    pub attachments: Vec<FileId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendGroupRequest {
    #[serde(deserialize_with = "lenient::int")]
    pub group_id: RoomId,
    pub content: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The id of a message in the same room that this one answers.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub reply_to: Option<MessageId>,
    /// Files attached (ids from `POST /files`, yours and not yet sent); with any, `content` may
    /// be empty.
    #[serde(default)]
    pub attachments: Vec<FileId>,
}

/// A stored message. `is_read` is seen from the reader's side: for others' messages, whether the
/// reader has read it; for the reader's own, whether another member has. The fields after
/// `client_id` are left out when they do not apply, so the seed's clients see the shapes they
/// know. (They are fields of their own, not a flattened struct: serde reads a flattened struct
/// through a buffer, and every instance reads every message.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub chat_room_id: RoomId,
    pub sender_id: Option<UserId>,
    pub content: String,
    pub is_read: bool,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyPreview>,
    /// When its author last changed its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// Deleted: a tombstone, its text gone (`content` is empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// It names the reader (`@username`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mention: bool,
    /// Files attached (none once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Reactions, in the order each emoji was first given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// A reply: the first message of its thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<MessageId>,
    /// A thread's first message: how many replies it has and when the last came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
}

/// The message a reply answers, as much of it as a quote needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ReplyPreview {
    pub message_id: MessageId,
    pub sender_username: Option<String>,
    /// The start of its text (empty once deleted).
    pub excerpt: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `PATCH /messages/{id}`: the new text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EditRequest {
    pub content: String,
}

/// An edit or a deletion, live (`message_edited`, `message_deleted`) and in `sync`'s `changes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct MessageChange {
    pub room_id: RoomId,
    pub message_id: MessageId,
    /// The new text; absent for a deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    pub changed_at: Timestamp,
    /// The change's place in the message log: a safe `since` for the next `sync`, like a
    /// message's id.
    pub sync_cursor: MessageId,
    /// A reaction added or taken back (then `content` is absent and `deleted` false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionChange>,
}

/// Someone added or took back a reaction; `count` is how many now have that one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ReactionChange {
    pub emoji: String,
    pub user_id: UserId,
    #[serde(default)]
    pub username: Option<String>,
    pub added: bool,
    pub count: i64,
}

/// A message's reactions as a reader sees them: each emoji, how many, and whether one is theirs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    #[serde(default)]
    pub me: bool,
}

/// `PUT /rooms/{id}/mute`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MuteRequest {
    /// For this many seconds (absent: until unmuted).
    #[serde(default)]
    pub seconds: Option<i64>,
    /// Mentions of you too.
    #[serde(default)]
    pub all: bool,
}

/// A room's mute as it now is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MuteState {
    pub room_id: RoomId,
    pub muted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Timestamp>,
    #[serde(default)]
    pub all: bool,
}

/// A thread as its first message shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ThreadSummary {
    pub replies: i32,
    pub last_reply_at: Option<Timestamp>,
}

/// `GET /messages/{id}/thread`: the thread's first message and every reply, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadReply {
    pub root: MessageWithSender,
    pub replies: Vec<MessageWithSender>,
}

/// The reply to a reaction: the change, or none when it was so already.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReactReply {
    pub message: String,
    pub data: Option<MessageChange>,
}

/// `POST` and `DELETE /messages/{id}/reactions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReactRequest {
    /// One emoji (at most 16 characters, no spaces), e.g. "👍".
    pub emoji: String,
}

/// The reply to an edit or a deletion.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeReply {
    pub message: String,
    pub data: MessageChange,
}

/// `GET /search`: matching messages of your rooms, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SearchReply {
    pub results: Vec<LiveMessage>,
    /// More, older ones: ask again with `before = next_before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<MessageId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct MessageWithSender {
    #[serde(flatten)]
    pub message: Message,
    pub sender_username: Option<String>,
    pub sender_full_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendReply {
    pub message: String,
    pub data: Message,
}

/// One direct chat in `/messages/chats`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatSummary {
    pub chat_room_id: RoomId,
    pub other_user_id: UserId,
    pub other_user_username: String,
    pub other_user_full_name: Option<String>,
    /// Always a string (empty for a room without messages): the seed's web client slices it.
    pub last_message: String,
    pub last_message_time: Option<Timestamp>,
    /// Who wrote `last_message` (absent when there is none, or its author's account is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_sender: Option<String>,
    pub unread_count: i64,
    /// Unread messages that name you (@you).
    #[serde(default)]
    pub mention_count: i64,
    /// Muted by you: no ring, no notification, not in totals (its own count stays).
    #[serde(default)]
    pub muted: bool,
    /// Until when (absent: until you unmute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Timestamp>,
    /// Muted with mentions too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_all: bool,
}

// ----- groups -----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGroupRequest {
    pub name: String,
    #[serde(deserialize_with = "lenient::int_list")]
    pub member_ids: Vec<UserId>,
    /// Anyone on the server may find (`/groups/public`) and join it.
    #[serde(default)]
    pub is_public: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: RoomId,
    pub name: String,
    pub room_type: RoomKind,
    pub created_by: Option<UserId>,
    pub member_count: i64,
    pub created_at: Timestamp,
    #[serde(default)]
    pub is_public: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGroupReply {
    pub message: String,
    pub group: Group,
}

/// One group in `/groups/my-groups`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupSummary {
    pub id: RoomId,
    pub name: String,
    pub room_type: RoomKind,
    pub created_by: Option<UserId>,
    pub member_count: i64,
    pub last_message: Option<String>,
    pub last_message_time: Option<Timestamp>,
    /// Who wrote `last_message` (absent when there is none, or its author's account is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_sender: Option<String>,
    pub created_at: Timestamp,
    pub unread_count: i64,
    /// Unread messages that name you (@you).
    #[serde(default)]
    pub mention_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default)]
    pub is_public: bool,
    /// Muted by you (see `ChatSummary`).
    #[serde(default)]
    pub muted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mute_all: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddMembersRequest {
    #[serde(deserialize_with = "lenient::int_list")]
    pub user_ids: Vec<UserId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddMembersReply {
    pub message: String,
    pub members_added: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoveMemberRequest {
    #[serde(deserialize_with = "lenient::int")]
    pub user_id: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub id: UserId,
    pub username: String,
    pub full_name: Option<String>,
    pub joined_at: Timestamp,
    /// May add and remove members and delete messages: the owner and the group's admins.
    pub is_admin: bool,
    /// `owner` (the creator, or whom the group passed to), `admin` or `member`.
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub is_bot: bool,
}

// ----- read state -----

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// The last message the reader has seen; omitted means the room's newest message.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub message_id: Option<MessageId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadState {
    pub message: String,
    pub room_id: RoomId,
    pub last_read_message_id: MessageId,
    pub unread_count: i64,
    /// Unread messages that name you (@you).
    #[serde(default)]
    pub mention_count: i64,
}

// ----- real time -----

/// A message as live clients receive it (`new_message`) and as `sync` returns it; its last four
/// fields as in `Message`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct LiveMessage {
    pub room_id: RoomId,
    pub message_id: MessageId,
    pub sender_id: Option<UserId>,
    pub sender_username: Option<String>,
    pub sender_full_name: Option<String>,
    pub content: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyPreview>,
    /// When its author last changed its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// Deleted: a tombstone, its text gone (`content` is empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// It names the reader (`@username`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mention: bool,
    /// Files attached (none once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Reactions, in the order each emoji was first given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// A reply: the first message of its thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<MessageId>,
    /// A thread's first message: how many replies it has and when the last came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
}

/// `GET /sync?since=` and the WebSocket `sync` frame's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SyncReply {
    /// Messages of the caller's rooms after `since`, in id order.
    pub messages: Vec<LiveMessage>,
    /// Edits and deletions after `since` of messages at or before it (newer messages come as
    /// they are now), in log order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<MessageChange>,
    /// More are waiting: ask again with `since = next_since`.
    pub has_more: bool,
    /// Where to resume: the last message returned, or (with nothing more waiting) the newest
    /// message id this server has delivered live. Ids are handed out in commit order, so resuming
    /// here never skips a message; it may repeat one that arrives live meanwhile.
    pub next_since: MessageId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_z() {
        let t: Timestamp = serde_json::from_str("\"2026-11-26T11:27:40.389392+01:00\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-26T10:27:40.389392Z\""
        );
    }

    #[test]
    fn ids_may_be_numbers_or_digit_strings() {
        let r: SendDirectRequest =
            serde_json::from_str(r#"{"recipient_id":"7","content":"hi"}"#).unwrap();
        assert_eq!(r.recipient_id, 7);
        let g: CreateGroupRequest =
            serde_json::from_str(r#"{"name":"g","member_ids":[1,"2"]}"#).unwrap();
        assert_eq!(g.member_ids, vec![1, 2]);
        assert!(
            serde_json::from_str::<SendDirectRequest>(r#"{"recipient_id":"x","content":""}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<SendDirectRequest>(
                r#"{"recipient_id":99999999999,"content":""}"#
            )
            .is_err()
        );
    }
}
