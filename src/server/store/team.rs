//! A server's administration: the accounts as admins see them, roles, deactivation, password
//! reset codes, invites, and the audit log every admin action is written to (in the same
//! transaction as the action, so that neither exists without the other).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{Store, StoreError, UserRecord};
use crate::proto::team::{AdminUser, AuditEntry, Invite};
use crate::proto::{ServerRole, UserId};

/// One line of the audit log, about to be written.
pub struct Audit<'a> {
    /// None: the server's own command line.
    pub actor: Option<(UserId, &'a str)>,
    pub action: &'static str,
    pub target: Option<&'a str>,
    pub detail: Option<String>,
}

impl<'a> Audit<'a> {
    /// A line written by `actor`, a signed-in account.
    pub fn by(
        actor: &'a UserRecord,
        action: &'static str,
        target: Option<&'a str>,
        detail: Option<String>,
    ) -> Audit<'a> {
        Audit {
            actor: Some((actor.id, &actor.username)),
            action,
            target,
            detail,
        }
    }
}

impl Audit<'_> {
    pub(super) async fn write(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        client
            .execute(
                "INSERT INTO audit_log (actor_id, actor_name, action, target_name, detail)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &self.actor.map(|(id, _)| id),
                    &self.actor.map(|(_, name)| name),
                    &self.action,
                    &self.target,
                    &self.detail,
                ],
            )
            .await?;
        Ok(())
    }
}

/// What a role change did.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleOutcome {
    Changed,
    /// It would leave the server without an active owner.
    LastOwner,
}

fn invite_from_row(row: &Row) -> Invite {
    let expires_at: DateTime<Utc> = row.get("expires_at");
    let (uses, max_uses): (i32, i32) = (row.get("uses"), row.get("max_uses"));
    let status = if row.get::<_, Option<DateTime<Utc>>>("revoked_at").is_some() {
        "revoked"
    } else if uses >= max_uses {
        "used"
    } else if expires_at <= Utc::now() {
        "expired"
    } else {
        "active"
    };
    Invite {
        id: row.get("id"),
        code: None,
        created_by: row.get("created_by_name"),
        created_at: row.get::<_, DateTime<Utc>>("created_at").into(),
        expires_at: expires_at.into(),
        max_uses,
        uses,
        status: status.into(),
    }
}

const INVITE_COLUMNS: &str = "i.id, i.created_at, i.expires_at, i.max_uses, i.uses, i.revoked_at,
    (SELECT username FROM users WHERE id = i.created_by) AS created_by_name";

impl Store {
    /// Every account, in name order, with whether it is online and when it was last seen.
    pub async fn accounts(&self) -> Result<Vec<AdminUser>, StoreError> {
        self.accounts_where(None).await
    }

    /// One account as `accounts` lists it.
    pub async fn account(&self, user: UserId) -> Result<Option<AdminUser>, StoreError> {
        Ok(self.accounts_where(Some(user)).await?.pop())
    }

    async fn accounts_where(&self, only: Option<UserId>) -> Result<Vec<AdminUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT u.id, u.username, u.full_name, u.email, u.role, u.is_active, u.is_bot,
                        u.last_seen_at, u.created_at,
                        EXISTS (SELECT 1 FROM online_presence p
                                JOIN server_instances i ON i.id = p.instance_id
                                WHERE p.user_id = u.id
                                  AND i.heartbeat_at >= now() - make_interval(secs => $1))
                 FROM users u WHERE $2::int IS NULL OR u.id = $2
                 ORDER BY lower(u.username)",
                &[&super::cluster::INSTANCE_EXPIRY_SECONDS, &only],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AdminUser {
                id: r.get(0),
                username: r.get(1),
                full_name: r.get(2),
                email: r.get(3),
                role: ServerRole::parse(r.get(4)).unwrap_or_default(),
                is_active: r.get(5),
                is_bot: r.get(6),
                last_seen_at: r.get::<_, Option<DateTime<Utc>>>(7).map(Into::into),
                created_at: r.get::<_, DateTime<Utc>>(8).into(),
                online: r.get(9),
            })
            .collect())
    }

    /// Deactivates (every session ends with it) or reactivates an account. False: it already was.
    pub async fn set_active(
        &self,
        user: UserId,
        active: bool,
        audit: &Audit<'_>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = tx
            .execute(
                "UPDATE users SET is_active = $2, updated_at = now()
                 WHERE id = $1 AND is_active IS DISTINCT FROM $2",
                &[&user, &active],
            )
            .await?
            == 1;
        if !active {
            end_sessions(&tx, user).await?;
        }
        if changed {
            audit.write(&tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Gives an account a role; never leaves the server without an active owner.
    pub async fn set_role(
        &self,
        user: UserId,
        role: ServerRole,
        audit: &Audit<'_>,
    ) -> Result<RoleOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Two owners demoting each other at once must not both succeed.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rtchat roles'))",
            &[],
        )
        .await?;
        let others: i64 = tx
            .query_one(
                "SELECT count(*) FROM users WHERE role = 'owner' AND is_active AND id <> $1",
                &[&user],
            )
            .await?
            .get(0);
        let current: Option<String> = tx
            .query_opt("SELECT role FROM users WHERE id = $1", &[&user])
            .await?
            .map(|r| r.get(0));
        if current.as_deref() == Some("owner") && role != ServerRole::Owner && others == 0 {
            return Ok(RoleOutcome::LastOwner);
        }
        tx.execute(
            "UPDATE users SET role = $2, updated_at = now() WHERE id = $1",
            &[&user, &role.as_str()],
        )
        .await?;
        audit.write(&tx).await?;
        tx.commit().await?;
        Ok(RoleOutcome::Changed)
    }

    /// A one-time password reset code for `user`, valid until `expires_at`. Codes made before
    /// stop working: only the newest counts.
    pub async fn create_reset_code(
        &self,
        user: UserId,
        digest: &[u8],
        expires_at: DateTime<Utc>,
        audit: &Audit<'_>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
            &[&user],
        )
        .await?;
        tx.execute(
            "INSERT INTO password_resets (code_hash, user_id, created_by, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&digest, &user, &audit.actor.map(|(id, _)| id), &expires_at],
        )
        .await?;
        audit.write(&tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends a reset code: the password becomes `new_hash` and every session of the account
    /// ends. None: no such code, or used, or expired (not said which).
    pub async fn use_reset_code(
        &self,
        digest: &[u8],
        new_hash: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE password_resets SET used_at = now()
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
                 RETURNING user_id",
                &[&digest],
            )
            .await?
        else {
            return Ok(None);
        };
        let user: UserId = row.get(0);
        tx.execute(
            "UPDATE users SET hashed_password = $2, updated_at = now() WHERE id = $1",
            &[&user, &new_hash],
        )
        .await?;
        end_sessions(&tx, user).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    /// Whether a reset code would be accepted now (without spending it).
    pub async fn reset_code_usable(&self, digest: &[u8]) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM password_resets
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now())",
                &[&digest],
            )
            .await?
            .get(0))
    }

    /// Whether an invite code would admit someone now (without spending a use).
    pub async fn invite_usable(&self, digest: &[u8]) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM invites
                 WHERE code_hash = $1 AND uses < max_uses AND expires_at > now()
                   AND revoked_at IS NULL)",
                &[&digest],
            )
            .await?
            .get(0))
    }

    pub async fn create_invite(
        &self,
        digest: &[u8],
        max_uses: i32,
        expires_at: DateTime<Utc>,
        audit: &Audit<'_>,
    ) -> Result<Invite, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "WITH i AS (
                        INSERT INTO invites (code_hash, created_by, expires_at, max_uses)
                        VALUES ($1, $2, $3, $4) RETURNING *
                     )
                     SELECT {INVITE_COLUMNS} FROM i"
                ),
                &[
                    &digest,
                    &audit.actor.map(|(id, _)| id),
                    &expires_at,
                    &max_uses,
                ],
            )
            .await?;
        audit.write(&tx).await?;
        tx.commit().await?;
        Ok(invite_from_row(&row))
    }

    /// Invites made by `maker` (None: everybody's), newest first.
    pub async fn invites(&self, maker: Option<UserId>) -> Result<Vec<Invite>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {INVITE_COLUMNS} FROM invites i
                     WHERE $1::int IS NULL OR i.created_by = $1
                     ORDER BY i.id DESC LIMIT 500"
                ),
                &[&maker],
            )
            .await?;
        Ok(rows.iter().map(invite_from_row).collect())
    }

    /// Revokes an invite, by id or by its code's digest, if `maker` made it (None: anybody's).
    /// False: no such live invite of theirs.
    pub async fn revoke_invite(
        &self,
        id: Option<i32>,
        digest: Option<&[u8]>,
        maker: Option<UserId>,
        audit: &Audit<'_>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let revoked = tx
            .execute(
                "UPDATE invites SET revoked_at = now()
                 WHERE (id = $1 OR code_hash = $2) AND revoked_at IS NULL
                   AND ($3::int IS NULL OR created_by = $3)",
                &[&id, &digest, &maker],
            )
            .await?
            > 0;
        if revoked {
            audit.write(&tx).await?;
            tx.commit().await?;
        }
        Ok(revoked)
    }

    /// The audit log, newest first: at most `limit` lines older than `before`.
    pub async fn audit_log(
        &self,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, at, actor_name, action, target_name, detail FROM audit_log
                 WHERE $2::bigint IS NULL OR id < $2
                 ORDER BY id DESC LIMIT $1",
                &[&limit, &before],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get::<_, DateTime<Utc>>(1).into(),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }

    /// Writes a line of the audit log on its own (for actions whose change is elsewhere).
    pub async fn audit(&self, audit: &Audit<'_>) -> Result<(), StoreError> {
        let client = self.client().await?;
        audit.write(&client).await
    }
}

/// Ends every session of `user`, personal access tokens included.
pub(super) async fn end_sessions(
    client: &impl GenericClient,
    user: UserId,
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user],
        )
        .await?)
}
