//! The data layer: every SQL statement the server runs, grouped by what it is about. Handlers call
//! these methods; no SQL lives anywhere else. Each method runs a fixed number of statements, whatever
//! the size of the page or list (the seed's P1-P4).

mod changes;
mod cluster;
mod files;
mod group_settings;
mod messages;
mod mute;
mod reactions;
mod rooms;
mod search;
mod sessions;
mod team;
mod tokens;
mod users;

pub use changes::{ChangeOutcome, StoredChange};
pub use files::{AttachRefusal, NewFile, RecordOutcome, StoredFile};
pub use group_settings::JoinOutcome;
pub use messages::{HistoryPage, InsertOutcome, NewMessage, StoredMessage};
pub use mute::FOREVER;
pub use reactions::{Reacted, as_seen_by};
pub use rooms::{GroupRow, Mute, ReadPointer, RemoveOutcome, RoomAccess};
pub use search::MessageSearch;
pub use sessions::RotateOutcome;
pub use team::{Audit, RoleOutcome};
pub use tokens::NewWebhook;
pub use users::{Admission, CreateUserOutcome, NewUser, ProfileOutcome, UserRecord};

use deadpool_postgres::{Object, Pool};

pub use crate::proto::RoomKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// A statement ran past its own deadline and was stopped.
    #[error("the statement took too long and was cancelled")]
    Cancelled,
    /// The file storage failed during a statement's transaction (which was rolled back).
    #[error("file storage: {0}")]
    Objects(#[from] object_store::Error),
    /// A value the schema allows but this code does not know (a newer server's data?).
    #[error("unexpected data: {0}")]
    Unexpected(String),
}

/// A `room_type` read from the database.
fn room_kind(text: &str) -> Result<RoomKind, StoreError> {
    text.parse()
        .map_err(|e: crate::proto::UnknownRoomKind| StoreError::Unexpected(e.to_string()))
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Store { pool }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// A connection to keep, for the message writer, which sends one statement many times on it.
    /// That statement takes arrays, and PostgreSQL, seeing their lengths, would plan it afresh on
    /// every execution (a profile showed planning as half of PostgreSQL's time at max-rate
    /// fan-out): its one generic plan is as good for any batch.
    pub async fn writer_connection(&self) -> Result<Object, StoreError> {
        let client = self.client().await?;
        // Named, so that an operator (or a fault test) can find its backend in pg_stat_activity.
        client
            .batch_execute(
                "SET plan_cache_mode = force_generic_plan; SET application_name = 'rtchat-writer'",
            )
            .await?;
        Ok(client)
    }

    /// The pool's connections now: open, idle, and requests waiting for one.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// For /health: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

/// A refresh token about to be stored (only its hash is kept): made by `sessions` and, for an
/// account's first session, by `users`.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub session_id: uuid::Uuid,
    pub token_hash: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
