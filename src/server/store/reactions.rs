//! Reactions: one of each emoji per person on a message. Each one added or taken back takes a
//! position in the message log, like an edit (`changes`), and the message's row keeps who reacted
//! with what, so that reading a message needs no other query.

use serde::{Deserialize, Serialize};

use super::changes::{CHANGE_COLUMNS, change_from_row};
use super::{ChangeOutcome, Store, StoreError};
use crate::proto::{MessageId, Reaction, ReactionChange, UserId};

/// One emoji on a message and who gave it, in order (as `messages.reactions` keeps them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reacted {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A message's reactions as `reader` sees them.
pub fn as_seen_by(reacted: &[Reacted], reader: UserId) -> Vec<Reaction> {
    reacted
        .iter()
        .map(|r| Reaction {
            emoji: r.emoji.clone(),
            count: r.users.len() as i64,
            me: r.users.contains(&reader),
        })
        .collect()
}

impl Store {
    /// `user` adds (or takes back) `emoji` on `message`, in a room of theirs. `Unchanged` when
    /// they had (or had not) reacted so already: nothing is logged.
    pub async fn react(
        &self,
        (user, username): (UserId, &str),
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The position first, as every change takes it (one lock order); a rollback gives it back.
        let at: MessageId = Store::take_log_position(&tx).await?;
        let found = tx
            .query_opt(
                "SELECT m.chat_room_id, m.deleted_at IS NOT NULL
                 FROM messages m
                 JOIN chat_room_members mm ON mm.chat_room_id = m.chat_room_id AND mm.user_id = $2
                 WHERE m.id = $1
                 FOR UPDATE OF m",
                &[&message, &user],
            )
            .await?;
        let Some(found) = found else {
            return Ok(ChangeOutcome::NotFound);
        };
        let (room, deleted): (i32, bool) = (found.get(0), found.get(1));
        if deleted {
            return Ok(ChangeOutcome::Gone);
        }
        let changed = if add {
            tx.execute(
                "INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&message, &emoji, &user],
            )
            .await?
        } else {
            tx.execute(
                "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                &[&message, &emoji, &user],
            )
            .await?
        };
        if changed == 0 {
            return Ok(ChangeOutcome::Unchanged);
        }
        let count = keep_on_message(&tx, message, emoji).await?;
        let reaction = ReactionChange {
            emoji: emoji.to_string(),
            user_id: user,
            username: Some(username.to_string()),
            added: add,
            count,
        };
        let json = serde_json::to_string(&reaction).expect("a reaction serializes");
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO message_changes AS c
                        (position, message_id, chat_room_id, content, changed_by, reaction)
                     VALUES ($1, $2, $3, NULL, $4, $5::text::jsonb)
                     RETURNING {CHANGE_COLUMNS}"
                ),
                &[&at, &message, &room, &user, &json],
            )
            .await?;
        let stored = change_from_row(&row);
        tx.commit().await?;
        Ok(ChangeOutcome::Changed(stored))
    }
}

/// Writes the message's reactions anew from `message_reactions` (each emoji with who gave it, in
/// the order first given); how many now have `emoji`.
async fn keep_on_message(
    tx: &deadpool_postgres::Transaction<'_>,
    message: MessageId,
    emoji: &str,
) -> Result<i64, StoreError> {
    Ok(tx
        .query_one(
            "UPDATE messages SET reactions = (
                SELECT jsonb_agg(jsonb_build_object('emoji', emoji, 'users', users) ORDER BY first)
                FROM (SELECT emoji, jsonb_agg(user_id ORDER BY created_at, user_id) AS users,
                             min(created_at) AS first
                      FROM message_reactions WHERE message_id = $1 GROUP BY emoji) x)
             WHERE id = $1
             RETURNING (SELECT count(*) FROM message_reactions
                        WHERE message_id = $1 AND emoji = $2)",
            &[&message, &emoji],
        )
        .await?
        .get(0))
}
