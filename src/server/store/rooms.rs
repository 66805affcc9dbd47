//! Rooms and membership: direct rooms (one per pair), groups, members, read pointers, and the chat
//! and group lists with their last message and unread counts.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;

use super::{RoomKind, Store, StoreError, room_kind};
use crate::proto::{MessageId, RoomId, UserId};

/// What one user may do in one room, read in one statement.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub kind: RoomKind,
    /// A group's owner.
    pub created_by: Option<UserId>,
    pub is_member: bool,
    /// The asking member is one of the group's admins (besides its owner).
    pub member_admin: bool,
    /// The asking member's read pointer (0 when not a member).
    pub last_read: MessageId,
    /// The furthest any other member has read: the asker's own messages up to it count as read.
    pub others_last_read: MessageId,
}

impl RoomAccess {
    /// A member who may add and remove others and delete messages: the owner or an admin.
    pub fn is_admin(&self, user_id: UserId) -> bool {
        self.is_owner(user_id) || (self.is_member && self.member_admin)
    }

    /// The group's owner (its creator, or whom it was handed to), while a member.
    pub fn is_owner(&self, user_id: UserId) -> bool {
        self.is_member && self.created_by == Some(user_id)
    }
}

#[derive(Debug)]
pub struct DirectLookup {
    pub room_id: Option<RoomId>,
    pub other_exists: bool,
}

/// A member's read pointer in a room, and what is still unread after it.
#[derive(Debug, Clone, Copy)]
pub struct ReadPointer {
    pub last_read: MessageId,
    pub unread: i64,
    /// Unread messages that name the member.
    pub mentions: i64,
}

/// A member's mute of a room, as chat lists show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mute {
    pub until: Option<DateTime<Utc>>,
    pub all: bool,
}

#[derive(Debug)]
pub struct ChatRow {
    pub room_id: RoomId,
    pub other_id: UserId,
    pub other_username: String,
    pub other_full_name: Option<String>,
    /// The newest message still standing (deleted ones are skipped), its time and its sender.
    pub last_message: Option<String>,
    pub last_message_time: Option<DateTime<Utc>>,
    pub last_sender: Option<String>,
    pub unread_count: i64,
    /// Unread messages that name the user.
    pub mention_count: i64,
    /// Muted (until `muted_until`), and with `mute_all` its mentions too.
    pub mute: Mute,
}

#[derive(Debug)]
pub struct GroupRow {
    pub id: RoomId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub member_count: i64,
    /// The newest message still standing (deleted ones are skipped), its time and its sender.
    pub last_message: Option<String>,
    pub last_message_time: Option<DateTime<Utc>>,
    pub last_sender: Option<String>,
    pub unread_count: i64,
    /// Unread messages that name the user.
    pub mention_count: i64,
    pub topic: Option<String>,
    pub is_public: bool,
    /// Muted (until `muted_until`), and with `mute_all` its mentions too.
    pub mute: Mute,
}

#[derive(Debug)]
pub struct MemberRow {
    pub id: UserId,
    pub username: String,
    pub full_name: Option<String>,
    pub joined_at: DateTime<Utc>,
    pub is_admin: bool,
    pub is_owner: bool,
    pub is_bot: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed: the member's username, and the removal's position in the message log.
    Removed {
        username: String,
        at: MessageId,
    },
    NotAMember,
}

/// A mute from columns `at` (until, when still in force) and `at + 1` (all).
fn mute_of(r: &tokio_postgres::Row, at: usize) -> Mute {
    let until: Option<DateTime<Utc>> = r.get(at);
    Mute {
        until,
        all: until.is_some() && r.get::<_, bool>(at + 1),
    }
}

fn ordered_pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a < b { (a, b) } else { (b, a) }
}

impl Store {
    pub async fn room_access(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT r.room_type, r.created_by, m.user_id IS NOT NULL,
                        coalesce(m.last_read_message_id, 0), coalesce(m.is_admin, false),
                        (SELECT coalesce(max(o.last_read_message_id), 0) FROM chat_room_members o
                         WHERE o.chat_room_id = r.id AND o.user_id <> $2)
                 FROM chat_rooms r
                 LEFT JOIN chat_room_members m ON m.chat_room_id = r.id AND m.user_id = $2
                 WHERE r.id = $1",
            )
            .await?;
        client
            .query_opt(&stmt, &[&room_id, &user_id])
            .await?
            .map(|r| {
                Ok(RoomAccess {
                    kind: room_kind(r.get(0))?,
                    created_by: r.get(1),
                    is_member: r.get(2),
                    last_read: r.get(3),
                    member_admin: r.get(4),
                    others_last_read: r.get(5),
                })
            })
            .transpose()
    }

    /// The direct room of `me` and `other` if it exists, and whether `other` is an active user.
    pub async fn find_direct_room(
        &self,
        me: UserId,
        other: UserId,
    ) -> Result<DirectLookup, StoreError> {
        let (low, high) = ordered_pair(me, other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT (SELECT id FROM chat_rooms WHERE direct_user_low = $1 AND direct_user_high = $2),
                        EXISTS (SELECT 1 FROM users WHERE id = $3 AND is_active)",
            )
            .await?;
        let row = client.query_one(&stmt, &[&low, &high, &other]).await?;
        Ok(DirectLookup {
            room_id: row.get(0),
            other_exists: row.get(1),
        })
    }

    /// The direct room of the pair, created with both members if missing. Race-free: two first
    /// messages at once meet at the pair's unique constraint and both get the one room.
    pub async fn get_or_create_direct_room(
        &self,
        me: UserId,
        other: UserId,
    ) -> Result<RoomId, StoreError> {
        let (low, high) = ordered_pair(me, other);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH r AS (
                    INSERT INTO chat_rooms (room_type, created_by, direct_user_low, direct_user_high)
                    VALUES ('direct', $1, $2, $3)
                    ON CONFLICT ON CONSTRAINT chat_rooms_direct_pair_key
                    DO UPDATE SET direct_user_low = EXCLUDED.direct_user_low
                    RETURNING id
                 ), m AS (
                    INSERT INTO chat_room_members (chat_room_id, user_id)
                    SELECT r.id, u FROM r CROSS JOIN unnest(ARRAY[$2, $3]::int[]) AS u
                    ON CONFLICT (chat_room_id, user_id) DO NOTHING
                 )
                 SELECT id FROM r",
            )
            .await?;
        Ok(client.query_one(&stmt, &[&me, &low, &high]).await?.get(0))
    }

    /// Creates a group whose members are `members` (which includes the creator, no duplicates).
    /// None if a member vanished between validation and insert.
    pub async fn create_group(
        &self,
        creator: UserId,
        name: &str,
        members: &[UserId],
        is_public: bool,
    ) -> Result<Option<GroupRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH r AS (
                    INSERT INTO chat_rooms (name, room_type, created_by, is_public)
                    VALUES ($1, 'group', $2, $4)
                    RETURNING id, name, created_by, created_at
                 ), m AS (
                    INSERT INTO chat_room_members (chat_room_id, user_id)
                    SELECT r.id, u FROM r CROSS JOIN unnest($3::int[]) AS u
                    RETURNING 1
                 )
                 SELECT id, name, created_by, created_at, (SELECT count(*) FROM m) FROM r",
            )
            .await?;
        match client
            .query_one(&stmt, &[&name, &creator, &members, &is_public])
            .await
        {
            Ok(r) => Ok(Some(GroupRow {
                id: r.get(0),
                name: r.get(1),
                created_by: r.get(2),
                created_at: r.get(3),
                member_count: r.get(4),
                last_message: None,
                last_message_time: None,
                unread_count: 0,
                mention_count: 0,
                last_sender: None,
                topic: None,
                is_public,
                mute: Mute::default(),
            })),
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the users not yet in the group; returns those added, with their names. New members
    /// start with everything before their arrival marked read.
    pub async fn add_members(
        &self,
        room_id: RoomId,
        users: &[UserId],
    ) -> Result<Option<Vec<(UserId, String)>>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH ins AS (
                    INSERT INTO chat_room_members (chat_room_id, user_id, last_read_message_id)
                    SELECT $1, u, coalesce((SELECT max(id) FROM messages WHERE chat_room_id = $1), 0)
                    FROM unnest($2::int[]) AS u
                    ON CONFLICT (chat_room_id, user_id) DO NOTHING
                    RETURNING user_id
                 )
                 SELECT ins.user_id, u.username FROM ins JOIN users u ON u.id = ins.user_id",
            )
            .await?;
        match client.query(&stmt, &[&room_id, &users]).await {
            Ok(rows) => Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())),
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a member. When the group's owner leaves, the group passes to its longest-standing
    /// admin, or else member, so the leaver keeps no powers and the group is not left without an
    /// owner.
    pub async fn remove_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<RemoveOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A position in the message log, taken first (its row lock orders the log, and the
        // writer too takes it before touching members): every instance applies the removal after
        // the messages committed before it and before any committed after it.
        let at: MessageId = Store::take_log_position(&tx).await?;
        let removed = tx
            .query_opt(
                "DELETE FROM chat_room_members m USING users u
                 WHERE m.chat_room_id = $1 AND m.user_id = $2 AND u.id = m.user_id
                 RETURNING u.username",
                &[&room_id, &user_id],
            )
            .await?;
        let Some(removed) = removed else {
            return Ok(RemoveOutcome::NotAMember);
        };
        tx.execute(
            "UPDATE chat_rooms SET created_by = (
                SELECT user_id FROM chat_room_members WHERE chat_room_id = $1
                ORDER BY is_admin DESC, joined_at, id LIMIT 1
             ), updated_at = now()
             WHERE id = $1 AND created_by = $2",
            &[&room_id, &user_id],
        )
        .await?;
        tx.commit().await?;
        Ok(RemoveOutcome::Removed {
            username: removed.get(0),
            at,
        })
    }

    pub async fn members(&self, room_id: RoomId) -> Result<Vec<MemberRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.id, u.username, u.full_name, m.joined_at,
                        r.created_by IS NOT DISTINCT FROM u.id OR m.is_admin,
                        r.created_by IS NOT DISTINCT FROM u.id, u.is_bot
                 FROM chat_room_members m
                 JOIN users u ON u.id = m.user_id
                 JOIN chat_rooms r ON r.id = m.chat_room_id
                 WHERE m.chat_room_id = $1
                 ORDER BY m.joined_at, m.id",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&room_id])
            .await?
            .iter()
            .map(|r| MemberRow {
                id: r.get(0),
                username: r.get(1),
                full_name: r.get(2),
                joined_at: r.get(3),
                is_admin: r.get(4),
                is_owner: r.get(5),
                is_bot: r.get(6),
            })
            .collect())
    }

    /// Moves the member's read pointer forward to `upto` (never back). Returns the pointer and the
    /// number of others' messages after it.
    pub async fn mark_read(
        &self,
        room_id: RoomId,
        user_id: UserId,
        upto: MessageId,
    ) -> Result<Option<ReadPointer>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH upd AS (
                    UPDATE chat_room_members
                    SET last_read_message_id = GREATEST(last_read_message_id, $3)
                    WHERE chat_room_id = $1 AND user_id = $2
                    RETURNING last_read_message_id
                 )
                 SELECT upd.last_read_message_id, unread.n, unread.named
                 FROM upd CROSS JOIN LATERAL (
                    SELECT count(*) AS n, count(*) FILTER (WHERE x.mentions @> ARRAY[$2::int]) AS named
                    FROM messages x
                    WHERE x.chat_room_id = $1 AND x.id > upd.last_read_message_id
                      AND x.sender_id IS DISTINCT FROM $2 AND x.deleted_at IS NULL
                 ) unread",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&room_id, &user_id, &upto])
            .await?
            .map(|r| ReadPointer {
                last_read: r.get(0),
                unread: r.get(1),
                mentions: r.get(2),
            }))
    }

    /// The user's direct chats, most recent activity first.
    pub async fn direct_chats(&self, user_id: UserId) -> Result<Vec<ChatRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT r.id, o.id, o.username, o.full_name, lm.content, lm.created_at,
                        unread.n, unread.named, lm.sender, r.topic, r.is_public,
                        CASE WHEN me.muted_until > now() THEN me.muted_until END, me.mute_all
                 FROM chat_room_members me
                 JOIN chat_rooms r ON r.id = me.chat_room_id AND r.room_type = 'direct'
                 JOIN users o ON o.id = CASE WHEN r.direct_user_low = $1
                                             THEN r.direct_user_high ELSE r.direct_user_low END
                 LEFT JOIN LATERAL (
                    SELECT x.content, x.created_at, s.username AS sender
                    FROM messages x LEFT JOIN users s ON s.id = x.sender_id
                    WHERE x.chat_room_id = r.id AND x.deleted_at IS NULL
                    ORDER BY x.id DESC LIMIT 1
                 ) lm ON true
                 CROSS JOIN LATERAL (
                    SELECT count(*) AS n, count(*) FILTER (WHERE x.mentions @> ARRAY[$1::int]) AS named
                    FROM messages x
                    WHERE x.chat_room_id = r.id AND x.id > me.last_read_message_id
                      AND x.sender_id IS DISTINCT FROM $1 AND x.deleted_at IS NULL
                 ) unread
                 WHERE me.user_id = $1
                 ORDER BY coalesce(lm.created_at, r.created_at) DESC, r.id DESC",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&user_id])
            .await?
            .iter()
            .map(|r| ChatRow {
                room_id: r.get(0),
                other_id: r.get(1),
                other_username: r.get(2),
                other_full_name: r.get(3),
                last_message: r.get(4),
                last_message_time: r.get(5),
                unread_count: r.get(6),
                mention_count: r.get(7),
                last_sender: r.get(8),
                mute: mute_of(r, 11),
            })
            .collect())
    }

    /// The user's groups, most recent activity first.
    pub async fn groups_of(&self, user_id: UserId) -> Result<Vec<GroupRow>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT r.id, r.name, r.created_by, r.created_at,
                        (SELECT count(*) FROM chat_room_members c WHERE c.chat_room_id = r.id),
                        lm.content, lm.created_at,
                        unread.n, unread.named, lm.sender, r.topic, r.is_public,
                        CASE WHEN me.muted_until > now() THEN me.muted_until END, me.mute_all
                 FROM chat_room_members me
                 JOIN chat_rooms r ON r.id = me.chat_room_id AND r.room_type = 'group'
                 LEFT JOIN LATERAL (
                    SELECT x.content, x.created_at, s.username AS sender
                    FROM messages x LEFT JOIN users s ON s.id = x.sender_id
                    WHERE x.chat_room_id = r.id AND x.deleted_at IS NULL
                    ORDER BY x.id DESC LIMIT 1
                 ) lm ON true
                 CROSS JOIN LATERAL (
                    SELECT count(*) AS n, count(*) FILTER (WHERE x.mentions @> ARRAY[$1::int]) AS named
                    FROM messages x
                    WHERE x.chat_room_id = r.id AND x.id > me.last_read_message_id
                      AND x.sender_id IS DISTINCT FROM $1 AND x.deleted_at IS NULL
                 ) unread
                 WHERE me.user_id = $1
                 ORDER BY coalesce(lm.created_at, r.created_at) DESC, r.id DESC",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&user_id])
            .await?
            .iter()
            .map(|r| GroupRow {
                id: r.get(0),
                name: r.get::<_, Option<String>>(1).unwrap_or_default(),
                created_by: r.get(2),
                created_at: r.get(3),
                member_count: r.get(4),
                last_message: r.get(5),
                last_message_time: r.get(6),
                unread_count: r.get(7),
                mention_count: r.get(8),
                last_sender: r.get(9),
                topic: r.get(10),
                is_public: r.get(11),
                mute: mute_of(r, 12),
            })
            .collect())
    }

    pub async fn group_name(&self, room_id: RoomId) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT name FROM chat_rooms WHERE id = $1")
            .await?;
        Ok(client
            .query_opt(&stmt, &[&room_id])
            .await?
            .and_then(|r| r.get(0)))
    }

    /// Every room the user is a member of, for the live membership cache.
    pub async fn rooms_of(&self, user_id: UserId) -> Result<Vec<(RoomId, RoomKind)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT r.id, r.room_type FROM chat_room_members m
                 JOIN chat_rooms r ON r.id = m.chat_room_id WHERE m.user_id = $1",
            )
            .await?;
        client
            .query(&stmt, &[&user_id])
            .await?
            .iter()
            .map(|r| Ok((r.get(0), room_kind(r.get(1))?)))
            .collect()
    }

    /// The usernames of `users`, in the order given (unknown ids are skipped).
    pub async fn usernames(&self, users: &[UserId]) -> Result<Vec<(UserId, String)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.id, u.username FROM unnest($1::int[]) WITH ORDINALITY AS want(id, n)
                 JOIN users u ON u.id = want.id ORDER BY want.n",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&users])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// Of `users`, those who share at least one room with `me` (or are `me`).
    pub async fn share_a_room(
        &self,
        me: UserId,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT o.user_id FROM chat_room_members o
                 JOIN chat_room_members mine ON mine.chat_room_id = o.chat_room_id AND mine.user_id = $1
                 WHERE o.user_id = ANY($2)
                 ORDER BY o.user_id",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&me, &users])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}
