//! Sessions and their refresh tokens: start, rotate (with reuse detection), revoke, and the check
//! every authenticated request makes.

use uuid::Uuid;

use super::users::{USER_COLUMNS_OF_U, UserRecord};
use super::{NewRefresh, Store, StoreError};
use crate::proto::UserId;

#[derive(Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// No such token: never issued, or purged after it expired.
    NotFound,
    Expired,
    /// The session was ended (logout, logout-all, password change, or an earlier reuse).
    Revoked,
    /// The token had already been exchanged: somebody holds a copy. The session is now revoked.
    Reused,
    UserInactive,
}

impl Store {
    /// The user behind an access token, if its session is still open and the account active.
    pub async fn session_user(
        &self,
        user_id: UserId,
        session_id: Uuid,
    ) -> Result<Option<UserRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS_OF_U}
                 FROM auth_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = $2 AND s.user_id = $1 AND s.revoked_at IS NULL AND u.is_active
                   AND (s.expires_at IS NULL OR s.expires_at > now())"
            ))
            .await?;
        let row = client.query_opt(&stmt, &[&user_id, &session_id]).await?;
        Ok(row.map(|r| UserRecord::from_row(&r)))
    }

    /// A login: a new session with its first refresh token, and `source` (the client's address)
    /// remembered as one the account signs in from.
    pub async fn start_session(
        &self,
        user_id: UserId,
        refresh: &NewRefresh,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH s AS (INSERT INTO auth_sessions (id, user_id) VALUES ($1, $2)),
                      seen AS (UPDATE users SET last_seen_at = now() WHERE id = $2),
                      src AS (
                        INSERT INTO login_sources (user_id, address)
                        SELECT $2, $5 WHERE $5::inet IS NOT NULL
                        ON CONFLICT (user_id, address) DO UPDATE SET last_success_at = now()
                      )
                 INSERT INTO refresh_tokens (user_id, session_id, token_hash, expires_at)
                 VALUES ($2, $1, $3, $4)",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &refresh.session_id,
                    &user_id,
                    &refresh.token_hash,
                    &refresh.expires_at,
                    &source,
                ],
            )
            .await?;
        Ok(())
    }

    /// Exchanges the refresh token `old_hash` for `next` in the same session. Concurrent exchanges of
    /// one token are serialised by a row lock: exactly one succeeds, the other counts as reuse.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        next: &NewRefresh,
    ) -> Result<RotateOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT rt.id, rt.session_id, rt.used_at IS NOT NULL, rt.expires_at < now(),
                        s.revoked_at IS NOT NULL, u.is_active, rt.user_id
                 FROM refresh_tokens rt
                 JOIN auth_sessions s ON s.id = rt.session_id
                 JOIN users u ON u.id = rt.user_id
                 WHERE rt.token_hash = $1
                 FOR UPDATE OF rt",
                &[&old_hash],
            )
            .await?;
        let Some(row) = row else {
            return Ok(RotateOutcome::NotFound);
        };
        let (token_id, session_id): (i32, Uuid) = (row.get(0), row.get(1));
        let (used, expired, revoked, active): (bool, bool, bool, bool) =
            (row.get(2), row.get(3), row.get(4), row.get(5));
        let user_id: UserId = row.get(6);
        let outcome = if revoked {
            RotateOutcome::Revoked
        } else if used {
            tx.execute(
                "UPDATE auth_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                &[&session_id],
            )
            .await?;
            RotateOutcome::Reused
        } else if expired {
            RotateOutcome::Expired
        } else if !active {
            RotateOutcome::UserInactive
        } else if session_id != next.session_id {
            // The new token must continue the old one's session; anything else is a caller bug,
            // and treating it as not found fails closed.
            RotateOutcome::NotFound
        } else {
            tx.execute(
                "UPDATE refresh_tokens SET used_at = now() WHERE id = $1",
                &[&token_id],
            )
            .await?;
            tx.execute(
                "INSERT INTO refresh_tokens (user_id, session_id, token_hash, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&user_id, &session_id, &next.token_hash, &next.expires_at],
            )
            .await?;
            RotateOutcome::Rotated
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Ends the session a refresh token belongs to; None if there was no open session for it.
    pub async fn end_session_by_refresh(
        &self,
        token_hash: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE auth_sessions s SET revoked_at = now()
                 FROM refresh_tokens rt
                 WHERE rt.token_hash = $1 AND s.id = rt.session_id AND s.revoked_at IS NULL
                 RETURNING s.id",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&token_hash])
            .await?
            .map(|r| r.get(0)))
    }

    /// Ends every open session of the user; returns how many there were.
    pub async fn end_all_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .await?;
        Ok(client.execute(&stmt, &[&user_id]).await?)
    }

    /// Forgets refresh tokens past their expiry, and sessions with no live token left.
    pub async fn purge_expired_sessions(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let tokens = client
            .execute("DELETE FROM refresh_tokens WHERE expires_at < now()", &[])
            .await?;
        client
            .execute(
                "DELETE FROM auth_sessions s
                 WHERE s.created_at < now() - interval '1 day'
                   AND CASE WHEN s.token_hash IS NULL
                       THEN NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id)
                       -- A personal access token: a day after it ended.
                       ELSE coalesce(least(s.revoked_at, s.expires_at), 'infinity')
                            < now() - interval '1 day'
                   END",
                &[],
            )
            .await?;
        client
            .execute(
                "DELETE FROM login_sources
                 WHERE last_success_at < now() - make_interval(days => $1)",
                &[&super::users::KNOWN_SOURCE_DAYS],
            )
            .await?;
        Ok(tokens)
    }
}
