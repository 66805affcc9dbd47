//! What instances share in the database besides the chat: which instances are alive, who is
//! online on which, the bus's log gaps filled from `messages`, and the memberships and sessions
//! checked again after the bus was interrupted.

use uuid::Uuid;

use super::messages::{MESSAGE_COLUMNS, MESSAGE_JOINS, from_row};
use super::{Store, StoreError, StoredMessage, room_kind};
use crate::proto::{MessageId, RoomId, RoomKind, UserId};

/// An instance whose heartbeat is older than this is gone (its users are offline, unless online
/// on another instance).
pub const INSTANCE_EXPIRY_SECONDS: f64 = 15.0;

/// A user whom nobody holds a socket of any more, because their instance stopped.
pub struct Abandoned {
    pub user: UserId,
    pub username: String,
    pub rooms: Vec<RoomId>,
}

impl Store {
    /// Records a heartbeat of `instance` (registering it on the first). Returns false if the row
    /// was missing: the others took this instance for dead, and its presence must be written again.
    pub async fn instance_heartbeat(&self, instance: Uuid) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO server_instances (id) VALUES ($1)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
                 RETURNING (xmax <> 0) AS existed",
                &[&instance],
            )
            .await?;
        Ok(row.get(0))
    }

    /// This instance is stopping: its presence goes with it.
    pub async fn instance_stopped(&self, instance: Uuid) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM server_instances WHERE id = $1", &[&instance])
            .await?;
        Ok(())
    }

    /// Removes instances whose heartbeat stopped; the users they held who are online nowhere else.
    pub async fn reap_instances(&self) -> Result<Vec<Abandoned>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH dead AS (
                    DELETE FROM server_instances
                    WHERE heartbeat_at < now() - make_interval(secs => $1)
                    RETURNING id
                 ), gone AS (
                    DELETE FROM online_presence WHERE instance_id IN (SELECT id FROM dead)
                    RETURNING user_id
                 )
                 SELECT u.id, u.username,
                        coalesce(array_agg(m.chat_room_id) FILTER (WHERE m.chat_room_id IS NOT NULL), '{}')
                 FROM (SELECT DISTINCT user_id FROM gone) g
                 JOIN users u ON u.id = g.user_id
                 LEFT JOIN chat_room_members m ON m.user_id = u.id
                 WHERE NOT EXISTS (
                    SELECT 1 FROM online_presence p
                    WHERE p.user_id = g.user_id AND p.instance_id NOT IN (SELECT id FROM dead)
                 )
                 GROUP BY u.id, u.username",
                &[&INSTANCE_EXPIRY_SECONDS],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Abandoned {
                user: r.get(0),
                username: r.get(1),
                rooms: r.get(2),
            })
            .collect())
    }

    /// `user` has a socket on `instance` now. True if on no other live instance (they just came
    /// online). Serialised per user, so that two instances never both miss each other.
    pub async fn presence_added(&self, user: UserId, instance: Uuid) -> Result<bool, StoreError> {
        self.presence_change(user, instance, true).await
    }

    /// `user` has no socket on `instance` any more. True if on no other live instance (they just
    /// went offline).
    pub async fn presence_removed(&self, user: UserId, instance: Uuid) -> Result<bool, StoreError> {
        self.presence_change(user, instance, false).await
    }

    async fn presence_change(
        &self,
        user: UserId,
        instance: Uuid,
        added: bool,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rtchat presence'), $1)",
            &[&user],
        )
        .await?;
        let change = if added {
            "INSERT INTO online_presence (user_id, instance_id)
             SELECT $1, id FROM server_instances WHERE id = $2
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM online_presence WHERE user_id = $1 AND instance_id = $2"
        };
        tx.execute(change, &[&user, &instance]).await?;
        tx.execute(
            "UPDATE users SET last_seen_at = now() WHERE id = $1",
            &[&user],
        )
        .await?;
        let elsewhere: bool = tx
            .query_one(
                "SELECT EXISTS (
                    SELECT 1 FROM online_presence p JOIN server_instances i ON i.id = p.instance_id
                    WHERE p.user_id = $1 AND p.instance_id <> $2
                      AND i.heartbeat_at >= now() - make_interval(secs => $3)
                 )",
                &[&user, &instance, &INSTANCE_EXPIRY_SECONDS],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(!elsewhere)
    }

    /// Writes again the presence of an instance the others had taken for dead. Returns those of
    /// `users` online on no other live instance, with their names: the others announced them
    /// offline when they took this instance for dead.
    pub async fn presence_restore(
        &self,
        users: &[UserId],
        instance: Uuid,
    ) -> Result<Vec<(UserId, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH restored AS (
                    INSERT INTO online_presence (user_id, instance_id)
                    SELECT u, $2 FROM unnest($1::int[]) u
                    ON CONFLICT DO NOTHING
                    RETURNING user_id
                 )
                 SELECT r.user_id, u.username FROM restored r JOIN users u ON u.id = r.user_id
                 WHERE NOT EXISTS (
                    SELECT 1 FROM online_presence p JOIN server_instances i ON i.id = p.instance_id
                    WHERE p.user_id = r.user_id AND p.instance_id <> $2
                      AND i.heartbeat_at >= now() - make_interval(secs => $3)
                 )",
                &[&users, &instance, &INSTANCE_EXPIRY_SECONDS],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Everyone with a socket on a live instance.
    pub async fn online_users(&self) -> Result<Vec<UserId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT p.user_id FROM online_presence p
                 JOIN server_instances i ON i.id = p.instance_id
                 WHERE i.heartbeat_at >= now() - make_interval(secs => $1)
                 ORDER BY 1",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&INSTANCE_EXPIRY_SECONDS])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// The messages stored at log positions `from..=to`, in order (a gap the bus left).
    pub async fn messages_between(
        &self,
        from: MessageId,
        to: MessageId,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                 WHERE m.id BETWEEN $1 AND $2 ORDER BY m.id"
            ))
            .await?;
        Ok(client
            .query(&stmt, &[&from, &to])
            .await?
            .iter()
            .map(from_row)
            .collect())
    }

    /// The rooms of each of `users`, for refilling the membership cache in one statement.
    pub async fn rooms_of_users(
        &self,
        users: &[UserId],
    ) -> Result<Vec<(UserId, RoomId, RoomKind)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT m.user_id, r.id, r.room_type FROM chat_room_members m
                 JOIN chat_rooms r ON r.id = m.chat_room_id
                 WHERE m.user_id = ANY($1)",
                &[&users],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.get(0), r.get(1), room_kind(r.get(2))?)))
            .collect()
    }

    /// Those of `sessions` that are still open.
    pub async fn open_sessions(&self, sessions: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT id FROM auth_sessions WHERE id = ANY($1) AND revoked_at IS NULL",
                &[&sessions],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }
}
