//! Edits and deletions of stored messages. Each takes a position in the message log (from
//! `log_head`, like a message), so that every instance delivers it in order with the messages
//! around it and `sync` brings those made while a client was away.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::proto::{MessageChange, MessageId, ReactionChange, RoomId, ServerFrame, UserId};

/// An edit or a deletion as stored.
#[derive(Debug, Clone)]
pub struct StoredChange {
    pub position: MessageId,
    pub room_id: RoomId,
    pub message_id: MessageId,
    /// None for a deletion (or a reaction).
    pub content: Option<String>,
    pub changed_at: DateTime<Utc>,
    /// A reaction added or taken back.
    pub reaction: Option<ReactionChange>,
}

impl StoredChange {
    /// The live frame: `message_edited`, or `message_deleted`.
    pub fn to_frame(&self) -> ServerFrame {
        let change = self.to_change();
        if change.reaction.is_some() {
            ServerFrame::MessageReaction { change }
        } else if change.deleted {
            ServerFrame::MessageDeleted { change }
        } else {
            ServerFrame::MessageEdited { change }
        }
    }

    pub fn to_change(&self) -> MessageChange {
        MessageChange {
            room_id: self.room_id,
            message_id: self.message_id,
            deleted: self.content.is_none() && self.reaction.is_none(),
            content: self.content.clone(),
            changed_at: self.changed_at.into(),
            sync_cursor: self.position,
            reaction: self.reaction.clone(),
        }
    }
}

/// What became of an edit or a deletion.
#[derive(Debug)]
pub enum ChangeOutcome {
    Changed(StoredChange),
    /// No such message in a room of the user's.
    NotFound,
    /// Only the author edits; the author or the group's admin deletes.
    NotAllowed,
    /// Deleted already: nothing left to change.
    Gone,
    /// A reaction that was (or was not) there already: nothing changed, nothing logged.
    Unchanged,
}

/// Who may change a message: its author always; a group's admin may delete any.
enum Change<'a> {
    Edit {
        content: &'a str,
        /// Names written as @name; members of the room among them are mentioned.
        names: &'a [String],
    },
    Delete,
}

pub(super) const CHANGE_COLUMNS: &str =
    "c.position, c.chat_room_id, c.message_id, c.content, c.changed_at, c.reaction::text";

pub(super) fn change_from_row(r: &tokio_postgres::Row) -> StoredChange {
    StoredChange {
        position: r.get(0),
        room_id: r.get(1),
        message_id: r.get(2),
        content: r.get(3),
        changed_at: r.get(4),
        reaction: r
            .get::<_, Option<&str>>(5)
            .and_then(|json| serde_json::from_str(json).ok()),
    }
}

impl Store {
    /// The author replaces a message's text, and with it the members it names (those of
    /// `names`, written as @name, who are in its room).
    pub async fn edit_message(
        &self,
        user: UserId,
        message: MessageId,
        content: &str,
        names: &[String],
    ) -> Result<ChangeOutcome, StoreError> {
        self.change_message(user, message, Change::Edit { content, names })
            .await
    }

    /// The author, or the group's owner or an admin of it, deletes a message: its text is gone,
    /// from its edits too.
    pub async fn delete_message(
        &self,
        user: UserId,
        message: MessageId,
    ) -> Result<ChangeOutcome, StoreError> {
        self.change_message(user, message, Change::Delete).await
    }

    async fn change_message(
        &self,
        user: UserId,
        message: MessageId,
        change: Change<'_>,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The position first, as the writer takes it (one lock order), then the message, locked
        // against a concurrent change. A refusal rolls back and gives the position back.
        let at: MessageId = Store::take_log_position(&tx).await?;
        let found = tx
            .query_opt(
                "SELECT m.chat_room_id, m.sender_id, m.deleted_at IS NOT NULL,
                        r.room_type = 'group' AND (r.created_by = $2 OR mm.is_admin)
                 FROM messages m
                 JOIN chat_rooms r ON r.id = m.chat_room_id
                 JOIN chat_room_members mm ON mm.chat_room_id = m.chat_room_id AND mm.user_id = $2
                 WHERE m.id = $1
                 FOR UPDATE OF m",
                &[&message, &user],
            )
            .await?;
        let Some(found) = found else {
            return Ok(ChangeOutcome::NotFound);
        };
        let (room, author, deleted, admin): (RoomId, Option<UserId>, bool, bool) =
            (found.get(0), found.get(1), found.get(2), found.get(3));
        let own = author == Some(user);
        let allowed = match change {
            Change::Edit { .. } => own,
            Change::Delete => own || admin,
        };
        if !allowed {
            return Ok(ChangeOutcome::NotAllowed);
        }
        if deleted {
            return Ok(ChangeOutcome::Gone);
        }
        let content = apply_change(&tx, message, change).await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO message_changes AS c
                        (position, message_id, chat_room_id, content, changed_by)
                     VALUES ($1, $2, $3, $4, $5)
                     RETURNING {CHANGE_COLUMNS}"
                ),
                &[&at, &message, &room, &content, &user],
            )
            .await?;
        let stored = change_from_row(&row);
        tx.commit().await?;
        Ok(ChangeOutcome::Changed(stored))
    }

    /// Edits and deletions at positions after `since` in the rooms `user` is in, of messages at
    /// or before `since` (a newer message is read as it is now), in log order, at most `limit`.
    pub async fn changes_since(
        &self,
        user: UserId,
        since: MessageId,
        limit: i64,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS}
                 FROM chat_room_members mm
                 CROSS JOIN LATERAL (
                    SELECT * FROM message_changes x
                    WHERE x.chat_room_id = mm.chat_room_id AND x.position > $2
                      AND x.message_id <= $2
                    ORDER BY x.position LIMIT $3
                 ) c
                 WHERE mm.user_id = $1
                 ORDER BY c.position LIMIT $3"
            ))
            .await?;
        Ok(client
            .query(&stmt, &[&user, &since, &limit])
            .await?
            .iter()
            .map(change_from_row)
            .collect())
    }

    /// The edits and deletions at log positions `from..=to` (a gap the bus left).
    pub async fn changes_between(
        &self,
        from: MessageId,
        to: MessageId,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CHANGE_COLUMNS} FROM message_changes c
                     WHERE c.position BETWEEN $1 AND $2 ORDER BY c.position"
                ),
                &[&from, &to],
            )
            .await?;
        Ok(rows.iter().map(change_from_row).collect())
    }

    /// Of `names` (without the @), the ids of those who are members of `room` and hear mentions
    /// there (not muted with `all`).
    pub async fn members_named(
        &self,
        room: RoomId,
        names: &[String],
    ) -> Result<Vec<UserId>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT u.id FROM users u
                 JOIN chat_room_members mm ON mm.user_id = u.id AND mm.chat_room_id = $1
                 WHERE lower(u.username) = ANY($2)
                   AND NOT (mm.mute_all AND mm.muted_until > now())
                 ORDER BY u.id",
            )
            .await?;
        let lowered: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let rows = client.query(&stmt, &[&room, &lowered]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// The message's row as the change leaves it; the text it now has (None once deleted).
async fn apply_change<'a>(
    tx: &tokio_postgres::Transaction<'_>,
    message: MessageId,
    change: Change<'a>,
) -> Result<Option<&'a str>, StoreError> {
    Ok(match change {
        Change::Edit { content, names } => {
            let lowered: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
            tx.execute(
                "UPDATE messages m SET content = $2, edited_at = now(), mentions = ARRAY(
                    SELECT u.id FROM users u
                    JOIN chat_room_members mm ON mm.user_id = u.id
                    WHERE mm.chat_room_id = m.chat_room_id AND lower(u.username) = ANY($3)
                    ORDER BY u.id)
                 WHERE id = $1",
                &[&message, &content, &lowered],
            )
            .await?;
            Some(content)
        }
        Change::Delete => {
            tx.execute(
                "UPDATE messages SET content = '', mentions = '{}', deleted_at = now(),
                        attachments = NULL, file_names = NULL, reactions = NULL
                 WHERE id = $1",
                &[&message],
            )
            .await?;
            // Its files go with it: nobody can download them from now on, and their bytes go
            // when nothing else refers to them (`Files::sweep`).
            tx.execute("DELETE FROM files WHERE message_id = $1", &[&message])
                .await?;
            tx.execute(
                "DELETE FROM message_reactions WHERE message_id = $1",
                &[&message],
            )
            .await?;
            tx.execute(
                "UPDATE message_changes SET content = NULL WHERE message_id = $1",
                &[&message],
            )
            .await?;
            None
        }
    })
}
