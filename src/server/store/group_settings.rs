//! A group's settings and roles: its admins, handing it to another owner, its name, topic and
//! whether it is public, and the public groups anyone on the server may find and join.

use super::{Store, StoreError};
use crate::proto::team::PublicGroup;
use crate::proto::{RoomId, UserId};

/// A group's settings as they are after a change.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub name: String,
    pub topic: Option<String>,
    pub is_public: bool,
}

/// What `join_public` did.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Joined; the new member's username.
    Joined(String),
    AlreadyMember,
    /// No such public group (a private one looks the same).
    NotFound,
}

impl Store {
    /// Makes a member an admin of the group, or not. False: not a member.
    pub async fn set_group_admin(
        &self,
        room: RoomId,
        user: UserId,
        admin: bool,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE chat_room_members SET is_admin = $3
                 WHERE chat_room_id = $1 AND user_id = $2",
                &[&room, &user, &admin],
            )
            .await?
            == 1)
    }

    /// Hands the group from its owner `from` to the member `to`; `from` stays as an admin.
    /// False: `to` is not a member, or `from` no longer owns it.
    pub async fn transfer_group(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let moved = tx
            .execute(
                "UPDATE chat_rooms SET created_by = $3, updated_at = now()
                 WHERE id = $1 AND created_by = $2 AND EXISTS (
                    SELECT 1 FROM chat_room_members WHERE chat_room_id = $1 AND user_id = $3)",
                &[&room, &from, &to],
            )
            .await?
            == 1;
        if moved {
            tx.execute(
                "UPDATE chat_room_members SET is_admin = (user_id = $2)
                 WHERE chat_room_id = $1 AND user_id IN ($2, $3)",
                &[&room, &from, &to],
            )
            .await?;
            tx.commit().await?;
        }
        Ok(moved)
    }

    /// Changes a group's name, topic (`Some(None)` clears it) and publicity, each when given.
    pub async fn update_group(
        &self,
        room: RoomId,
        name: Option<&str>,
        topic: Option<Option<&str>>,
        is_public: Option<bool>,
    ) -> Result<Option<GroupSettings>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE chat_rooms SET
                    name = coalesce($2, name),
                    topic = CASE WHEN $3 THEN $4 ELSE topic END,
                    is_public = coalesce($5, is_public),
                    updated_at = now()
                 WHERE id = $1 AND room_type = 'group'
                 RETURNING name, topic, is_public",
                &[&room, &name, &topic.is_some(), &topic.flatten(), &is_public],
            )
            .await?;
        Ok(row.map(|r| GroupSettings {
            name: r.get::<_, Option<String>>(0).unwrap_or_default(),
            topic: r.get(1),
            is_public: r.get(2),
        }))
    }

    /// Every public group, in name order, with its member count and whether `user` is in it.
    pub async fn public_groups(&self, user: UserId) -> Result<Vec<PublicGroup>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT r.id, r.name, r.topic,
                        (SELECT count(*) FROM chat_room_members c WHERE c.chat_room_id = r.id),
                        EXISTS (SELECT 1 FROM chat_room_members m
                                WHERE m.chat_room_id = r.id AND m.user_id = $1)
                 FROM chat_rooms r
                 WHERE r.is_public AND r.room_type = 'group'
                 ORDER BY lower(r.name), r.id
                 LIMIT 1000",
                &[&user],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PublicGroup {
                id: r.get(0),
                name: r.get::<_, Option<String>>(1).unwrap_or_default(),
                topic: r.get(2),
                member_count: r.get(3),
                is_member: r.get(4),
            })
            .collect())
    }

    /// `user` joins a public group, with everything before their arrival marked read.
    pub async fn join_public(&self, room: RoomId, user: UserId) -> Result<JoinOutcome, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "WITH g AS (
                    SELECT id FROM chat_rooms WHERE id = $1 AND is_public AND room_type = 'group'
                 ), ins AS (
                    INSERT INTO chat_room_members (chat_room_id, user_id, last_read_message_id)
                    SELECT g.id, $2, coalesce((SELECT max(id) FROM messages WHERE chat_room_id = $1), 0)
                    FROM g
                    ON CONFLICT (chat_room_id, user_id) DO NOTHING
                    RETURNING user_id
                 )
                 SELECT EXISTS (SELECT 1 FROM g), EXISTS (SELECT 1 FROM ins),
                        (SELECT username FROM users WHERE id = $2)",
                &[&room, &user],
            )
            .await?;
        let (exists, joined): (bool, bool) = (row.get(0), row.get(1));
        Ok(match (exists, joined) {
            (false, _) => JoinOutcome::NotFound,
            (true, false) => JoinOutcome::AlreadyMember,
            (true, true) => JoinOutcome::Joined(row.get(2)),
        })
    }
}
