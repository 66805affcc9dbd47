//! Long-lived credentials that are not a login: personal access tokens (sessions without refresh
//! tokens, found by their digest) and incoming webhooks (a bot account of their own, a member of
//! their group, behind a secret address).

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::team::Audit;
use super::users::{USER_COLUMNS_OF_U, UserRecord};
use super::{Store, StoreError};
use crate::proto::team::{AccessToken, Webhook};
use crate::proto::{RoomId, UserId};

/// The session a personal access token opens, as a request's bearer check finds it.
pub struct TokenSession {
    pub session_id: Uuid,
    pub user: UserRecord,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A live webhook, as a post to its address finds it.
pub struct WebhookTarget {
    pub id: i32,
    pub room_id: RoomId,
    pub bot: UserRecord,
}

/// A new webhook's names and secret.
pub struct NewWebhook<'a> {
    pub room_id: RoomId,
    pub name: &'a str,
    pub digest: &'a [u8],
}

impl Store {
    /// A new personal access token of `user`. None: they have a live token of that name.
    pub async fn create_token(
        &self,
        user: UserId,
        name: &str,
        digest: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Uuid>, StoreError> {
        let client = self.client().await?;
        let session = Uuid::new_v4();
        let result = client
            .execute(
                "INSERT INTO auth_sessions (id, user_id, token_hash, token_name, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&session, &user, &digest, &name, &expires_at],
            )
            .await;
        match result {
            Ok(_) => Ok(Some(session)),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The live personal access tokens of `user`, oldest first.
    pub async fn tokens(&self, user: UserId) -> Result<Vec<AccessToken>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT token_name, created_at, expires_at FROM auth_sessions
                 WHERE user_id = $1 AND token_hash IS NOT NULL AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())
                 ORDER BY created_at",
                &[&user],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AccessToken {
                name: r.get(0),
                created_at: r.get::<_, DateTime<Utc>>(1).into(),
                expires_at: r.get::<_, Option<DateTime<Utc>>>(2).map(Into::into),
            })
            .collect())
    }

    /// Ends `user`'s token named `name` (any case); its session id, to close its sockets.
    pub async fn revoke_token(&self, user: UserId, name: &str) -> Result<Option<Uuid>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "UPDATE auth_sessions SET revoked_at = now()
                 WHERE user_id = $1 AND lower(token_name) = lower($2)
                   AND token_hash IS NOT NULL AND revoked_at IS NULL
                 RETURNING id",
                &[&user, &name],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// The open session of a personal access token, of an active account.
    pub async fn token_session(&self, digest: &[u8]) -> Result<Option<TokenSession>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT s.id AS session_id, s.expires_at AS token_expires_at, {USER_COLUMNS_OF_U}
                 FROM auth_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.is_active
                   AND (s.expires_at IS NULL OR s.expires_at > now())"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&digest])
            .await?
            .map(|r| TokenSession {
                session_id: r.get("session_id"),
                expires_at: r.get("token_expires_at"),
                user: UserRecord::from_row(&r),
            }))
    }

    /// A webhook: its bot account (named `name`), made a member of the group, and its secret.
    /// None: the name is taken.
    pub async fn create_webhook(
        &self,
        hook: &NewWebhook<'_>,
        audit: &Audit<'_>,
    ) -> Result<Option<Webhook>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let email = format!("{}@webhooks.invalid", hook.name.to_lowercase());
        let bot = tx
            .query_one(
                "INSERT INTO users (username, email, hashed_password, is_bot)
                 VALUES ($1, $2, '!', true) ON CONFLICT DO NOTHING RETURNING id",
                &[&hook.name, &email],
            )
            .await;
        let bot: UserId = match bot {
            Ok(row) => row.get(0),
            // No row: ON CONFLICT met a taken name (or email).
            Err(e) if e.code().is_none() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        tx.execute(
            "INSERT INTO chat_room_members (chat_room_id, user_id, last_read_message_id)
             VALUES ($1, $2, coalesce((SELECT max(id) FROM messages WHERE chat_room_id = $1), 0))",
            &[&hook.room_id, &bot],
        )
        .await?;
        let row = tx
            .query_one(
                "INSERT INTO webhooks (room_id, bot_id, secret_hash, created_by)
                 VALUES ($1, $2, $3, $4)
                 RETURNING id, created_at, (SELECT name FROM chat_rooms WHERE id = $1)",
                &[
                    &hook.room_id,
                    &bot,
                    &hook.digest,
                    &audit.actor.map(|(id, _)| id),
                ],
            )
            .await?;
        audit.write(&tx).await?;
        tx.commit().await?;
        Ok(Some(Webhook {
            id: row.get(0),
            name: hook.name.to_string(),
            group_id: hook.room_id,
            group_name: row.get(2),
            created_by: audit.actor.map(|(_, name)| name.to_string()),
            created_at: row.get::<_, DateTime<Utc>>(1).into(),
            path: None,
        }))
    }

    /// The live webhooks of the groups `user` is in (every group's, for None).
    pub async fn webhooks(&self, user: Option<UserId>) -> Result<Vec<Webhook>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT w.id, b.username, w.room_id, r.name, c.username, w.created_at
                 FROM webhooks w
                 JOIN users b ON b.id = w.bot_id
                 JOIN chat_rooms r ON r.id = w.room_id
                 LEFT JOIN users c ON c.id = w.created_by
                 WHERE w.revoked_at IS NULL
                   AND ($1::int IS NULL OR EXISTS (SELECT 1 FROM chat_room_members m
                        WHERE m.chat_room_id = w.room_id AND m.user_id = $1))
                 ORDER BY w.id",
                &[&user],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Webhook {
                id: r.get(0),
                name: r.get(1),
                group_id: r.get(2),
                group_name: r.get(3),
                created_by: r.get(4),
                created_at: r.get::<_, DateTime<Utc>>(5).into(),
                path: None,
            })
            .collect())
    }

    /// The live webhook `id`, with its group and bot (to check who may revoke it).
    pub async fn webhook(&self, id: i32) -> Result<Option<(RoomId, UserId, String)>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT w.room_id, w.bot_id, b.username FROM webhooks w
                 JOIN users b ON b.id = w.bot_id
                 WHERE w.id = $1 AND w.revoked_at IS NULL",
                &[&id],
            )
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// Ends a webhook: its address stops working and its bot is deactivated (its messages stay).
    pub async fn revoke_webhook(&self, id: i32, audit: &Audit<'_>) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE webhooks SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
                 RETURNING bot_id",
                &[&id],
            )
            .await?
        else {
            return Ok(false);
        };
        let bot: UserId = row.get(0);
        tx.execute("UPDATE users SET is_active = false WHERE id = $1", &[&bot])
            .await?;
        audit.write(&tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The webhook behind a secret address: live, its bot active and still in its group.
    pub async fn webhook_by_secret(
        &self,
        digest: &[u8],
    ) -> Result<Option<WebhookTarget>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT w.id AS webhook_id, w.room_id, {USER_COLUMNS_OF_U}
                 FROM webhooks w JOIN users u ON u.id = w.bot_id
                 WHERE w.secret_hash = $1 AND w.revoked_at IS NULL AND u.is_active"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&digest])
            .await?
            .map(|r| WebhookTarget {
                id: r.get("webhook_id"),
                room_id: r.get("room_id"),
                bot: UserRecord::from_row(&r),
            }))
    }
}
