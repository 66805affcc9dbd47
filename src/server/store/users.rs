//! Accounts: registration, lookup by id, name, login and prefix.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{Store, StoreError};
use crate::proto::{self, ServerRole, UserId};
use crate::server::store::NewRefresh;

const USER_COLUMNS: &str =
    "id, username, email, full_name, is_active, is_verified, created_at, role, is_bot";
/// The same columns, of `users u` in a join.
pub(super) const USER_COLUMNS_OF_U: &str = "u.id, u.username, u.email, u.full_name, u.is_active, \
     u.is_verified, u.created_at, u.role, u.is_bot";

/// How long an address an account signed in from stays known to it.
pub const KNOWN_SOURCE_DAYS: i32 = 90;

/// An account as a login attempt finds it.
pub struct LoginRecord {
    pub user: UserRecord,
    pub password_hash: String,
    /// The account signed in from the attempt's address lately.
    pub known_source: bool,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub created_at: DateTime<Utc>,
    pub role: ServerRole,
    pub is_bot: bool,
}

impl UserRecord {
    pub(super) fn from_row(row: &Row) -> Self {
        UserRecord {
            id: row.get("id"),
            username: row.get("username"),
            email: row.get("email"),
            full_name: row.get("full_name"),
            is_active: row.get("is_active"),
            is_verified: row.get("is_verified"),
            created_at: row.get("created_at"),
            role: ServerRole::parse(row.get("role")).unwrap_or_default(),
            is_bot: row.get("is_bot"),
        }
    }

    pub fn to_proto(&self) -> proto::User {
        proto::User {
            username: self.username.clone(),
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            id: self.id,
            is_active: self.is_active,
            is_verified: self.is_verified,
            created_at: self.created_at.into(),
            role: self.role,
            is_bot: self.is_bot,
        }
    }

    pub fn to_public(&self) -> proto::PublicUser {
        proto::PublicUser {
            id: self.id,
            username: self.username.clone(),
            full_name: self.full_name.clone(),
            created_at: self.created_at.into(),
            is_bot: self.is_bot,
        }
    }
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: Option<&'a str>,
    /// Where the registration came from: a known address for the new account's logins.
    pub source: Option<IpAddr>,
}

/// A unique index said no: which name was taken.
fn taken_or(e: tokio_postgres::Error) -> Result<CreateUserOutcome, StoreError> {
    if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
        return Err(e.into());
    }
    let constraint = e
        .as_db_error()
        .and_then(|d| d.constraint())
        .unwrap_or_default();
    if constraint.contains("email") {
        Ok(CreateUserOutcome::EmailTaken)
    } else {
        Ok(CreateUserOutcome::UsernameTaken)
    }
}

/// What a profile change did.
pub enum ProfileOutcome {
    Updated(UserRecord),
    EmailTaken,
}

#[derive(Debug)]
pub enum CreateUserOutcome {
    Created(UserRecord),
    UsernameTaken,
    EmailTaken,
    /// The server admits by invitation and the code was unknown, used up, expired or revoked (or
    /// admits nobody new at all).
    NotAdmitted,
}

/// Who a registration may create, besides a server's first account (always admitted, as owner).
#[derive(Debug, Clone, Copy)]
pub enum Admission<'a> {
    Open,
    /// With the digest of the invite code given, if any: one use of it is taken.
    Invite(Option<&'a [u8]>),
    Closed,
}

impl Store {
    /// Which of the two names is already taken, regardless of case.
    pub async fn name_taken(
        &self,
        username: &str,
        email: &str,
    ) -> Result<Option<CreateUserOutcome>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT bool_or(lower(username) = lower($1)), bool_or(lower(email) = lower($2))
                 FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($2)",
            )
            .await?;
        let row = client.query_one(&stmt, &[&username, &email]).await?;
        Ok(
            match (row.get::<_, Option<bool>>(0), row.get::<_, Option<bool>>(1)) {
                (Some(true), _) => Some(CreateUserOutcome::UsernameTaken),
                (_, Some(true)) => Some(CreateUserOutcome::EmailTaken),
                _ => None,
            },
        )
    }

    /// Takes the next user id, so that tokens naming it can be made before the row exists and the
    /// user, its first session and its refresh token are written in one statement.
    pub async fn reserve_user_id(&self) -> Result<UserId, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT nextval(pg_get_serial_sequence('users', 'id'))::int")
            .await?;
        Ok(client.query_one(&stmt, &[]).await?.get(0))
    }

    /// Whether any account exists: a server's first account needs no invite.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")
            .await?;
        Ok(client.query_one(&stmt, &[]).await?.get(0))
    }

    /// Creates the user with its first session, if `admission` lets them in: the first account
    /// of a server always (it becomes the owner), others by the server's rule, an invite's use
    /// taken in the same statement. Registrations take turns (a lock held to the commit), so that
    /// two first accounts or two uses of a last invite cannot both pass. A name taken meanwhile
    /// is reported, not raised: the unique indexes decide.
    pub async fn create_user(
        &self,
        user: &NewUser<'_>,
        session: &NewRefresh,
        admission: Admission<'_>,
    ) -> Result<CreateUserOutcome, StoreError> {
        let (open, invite) = match admission {
            Admission::Open => (true, None),
            Admission::Invite(code) => (false, code),
            Admission::Closed => (false, None),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rtchat registration'))",
            &[],
        )
        .await?;
        let stmt = tx
            .prepare_cached(&format!(
                "WITH first AS (SELECT NOT EXISTS (SELECT 1 FROM users) AS yes),
                 invite AS (
                    UPDATE invites SET uses = uses + 1
                    WHERE code_hash = $10 AND uses < max_uses AND expires_at > now()
                      AND revoked_at IS NULL AND NOT (SELECT yes FROM first)
                    RETURNING id
                 ), u AS (
                    INSERT INTO users (id, username, email, hashed_password, full_name, role,
                                       last_seen_at)
                    SELECT $1, $2, $3, $4, $5,
                           CASE WHEN (SELECT yes FROM first) THEN 'owner' ELSE 'member' END, now()
                    WHERE (SELECT yes FROM first) OR $11 OR EXISTS (SELECT 1 FROM invite)
                    RETURNING {USER_COLUMNS}
                 ), s AS (
                    INSERT INTO auth_sessions (id, user_id) SELECT $6, id FROM u
                 ), t AS (
                    INSERT INTO refresh_tokens (user_id, session_id, token_hash, expires_at)
                    SELECT id, $6, $7, $8 FROM u
                 ), src AS (
                    INSERT INTO login_sources (user_id, address)
                    SELECT id, $9 FROM u WHERE $9::inet IS NOT NULL
                 )
                 SELECT {USER_COLUMNS} FROM u"
            ))
            .await?;
        let result = tx
            .query_opt(
                &stmt,
                &[
                    &user.id,
                    &user.username,
                    &user.email,
                    &user.password_hash,
                    &user.full_name,
                    &session.session_id,
                    &session.token_hash,
                    &session.expires_at,
                    &user.source,
                    &invite,
                    &open,
                ],
            )
            .await;
        let outcome = match result {
            Ok(Some(row)) => CreateUserOutcome::Created(UserRecord::from_row(&row)),
            Ok(None) => CreateUserOutcome::NotAdmitted,
            Err(e) => return taken_or(e),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Creates a bot account: no password (it signs in with tokens only), no session yet.
    pub async fn create_bot(
        &self,
        username: &str,
        full_name: Option<&str>,
    ) -> Result<CreateUserOutcome, StoreError> {
        let client = self.client().await?;
        // The email column is unique and required; a bot's is a name nobody can receive mail at.
        let email = format!("{}@bots.invalid", username.to_lowercase());
        let result = client
            .query_one(
                &format!(
                    "INSERT INTO users (username, email, hashed_password, full_name, is_bot)
                     VALUES ($1, $2, '!', $3, true) RETURNING {USER_COLUMNS}"
                ),
                &[&username, &email, &full_name],
            )
            .await;
        match result {
            Ok(row) => Ok(CreateUserOutcome::Created(UserRecord::from_row(&row))),
            Err(e) => taken_or(e),
        }
    }

    /// The account a login names (username or email, any case), its password hash, and whether
    /// it has signed in from `source` lately (`KNOWN_SOURCE_DAYS`).
    pub async fn find_login(
        &self,
        login: &str,
        source: Option<IpAddr>,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, hashed_password,
                        EXISTS (SELECT 1 FROM login_sources s
                                WHERE s.user_id = users.id AND s.address = $2
                                  AND s.last_success_at > now() - make_interval(days => $3))
                            AS known_source
                 FROM users
                 WHERE lower(username) = lower($1) OR lower(email) = lower($1)
                 LIMIT 1"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&login, &source, &KNOWN_SOURCE_DAYS])
            .await?
            .map(|row| LoginRecord {
                user: UserRecord::from_row(&row),
                password_hash: row.get("hashed_password"),
                known_source: row.get("known_source"),
            }))
    }

    pub async fn password_hash(&self, user_id: UserId) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT hashed_password FROM users WHERE id = $1")
            .await?;
        Ok(client
            .query_opt(&stmt, &[&user_id])
            .await?
            .map(|r| r.get(0)))
    }

    pub async fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1) AND is_active"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&username])
            .await?
            .map(|r| UserRecord::from_row(&r)))
    }

    /// Any account by name, active or not (for its admins).
    pub async fn find_any_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&username])
            .await?
            .map(|r| UserRecord::from_row(&r)))
    }

    /// Active users whose name starts with `prefix` (any case), in name order.
    pub async fn search_users(
        &self,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users
                 WHERE lower(username) LIKE $1 AND is_active
                 ORDER BY lower(username) LIMIT $2"
            ))
            .await?;
        // Planned for this prefix: only a plan that knows it walks just the names that start
        // with it (`users_username_prefix_idx`).
        let tx = client.transaction().await?;
        tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
        let found = tx
            .query(&stmt, &[&pattern, &limit])
            .await?
            .iter()
            .map(UserRecord::from_row)
            .collect();
        tx.commit().await?;
        Ok(found)
    }

    /// Of `ids`, those that name no active user, in the order given.
    pub async fn missing_users(&self, ids: &[UserId]) -> Result<Vec<UserId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT want.id FROM unnest($1::int[]) WITH ORDINALITY AS want(id, n)
                 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = want.id AND u.is_active)
                 ORDER BY want.n",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Changes the full name (`Some(None)` clears it) and the email of `user_id`, each when given.
    pub async fn update_profile(
        &self,
        user_id: UserId,
        full_name: Option<Option<&str>>,
        email: Option<&str>,
    ) -> Result<ProfileOutcome, StoreError> {
        let client = self.client().await?;
        let result = client
            .query_one(
                &format!(
                    "UPDATE users SET
                        full_name = CASE WHEN $2 THEN $3 ELSE full_name END,
                        email = coalesce($4, email),
                        updated_at = now()
                     WHERE id = $1
                     RETURNING {USER_COLUMNS}"
                ),
                &[&user_id, &full_name.is_some(), &full_name.flatten(), &email],
            )
            .await;
        match result {
            Ok(row) => Ok(ProfileOutcome::Updated(UserRecord::from_row(&row))),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Ok(ProfileOutcome::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the password and ends every session of the user, in one transaction.
    pub async fn change_password(&self, user_id: UserId, new_hash: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE users SET hashed_password = $2, updated_at = now() WHERE id = $1",
            &[&user_id, &new_hash],
        )
        .await?;
        tx.execute(
            "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            &[&user_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
