//! Database plumbing: where the database is (a URL or the managed PostgreSQL), the connection pool, and
//! the migrations in `sql/` applied at start under an advisory lock.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

refinery::embed_migrations!("sql");

/// Any number of servers may start at once against one database; one migrates, the others wait.
const MIGRATION_LOCK: i64 = 0x7274_6368_6174; // "rtchat"

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(#[source] tokio_postgres::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("cannot get a database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("cannot build the connection pool: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("migration failed: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("database error: {0}")]
    Query(#[from] tokio_postgres::Error),
}

/// Parses a DATABASE_URL. The seed's SQLAlchemy form `postgresql+psycopg2://` is accepted too.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, DbError> {
    let url = match url.split_once("://") {
        Some((scheme, rest))
            if scheme.starts_with("postgresql+") || scheme.starts_with("postgres+") =>
        {
            format!("postgresql://{rest}")
        }
        _ => url.to_string(),
    };
    tokio_postgres::Config::from_str(&url).map_err(DbError::BadUrl)
}

/// A pool of at most `size` connections, where a request waits at most `timeout` for a connection
/// (and for a new one to open). One connection is opened now so that a wrong address fails at
/// start, not at the first request.
///
/// Its statements are planned once per connection (`plan_cache_mode = force_generic_plan`): a
/// history page, with the message it quotes and both senders, took three times as long to plan as
/// to run, and PostgreSQL planned it again for every request (the cost it gives a plan for an
/// unknown LIMIT is always above the one for LIMIT 50). Measured: history p50 1.46 ms -> 0.95 ms
/// with 4 readers (BENCHMARKS.md). A statement whose best plan depends on its values (search)
/// asks for its own plan in its transaction.
///
/// And no statement is run in parallel (`max_parallel_workers_per_gather = 0`): a plan made for
/// an unknown LIMIT expects a tenth of a large room and runs in parallel workers, whose start
/// alone took longer than the page (history p50 14 ms over 1,000,000 messages, measured).
pub async fn connect_pool(
    mut config: tokio_postgres::Config,
    size: u32,
    timeout: Duration,
) -> Result<Pool, DbError> {
    let planned_once = "-c plan_cache_mode=force_generic_plan -c max_parallel_workers_per_gather=0";
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {planned_once}"),
        _ => planned_once.to_string(),
    };
    config.options(options);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()?;
    drop(pool.get().await?);
    Ok(pool)
}

/// Applies the migrations from `sql/` that this database has not seen, in order.
pub async fn migrate(config: &tokio_postgres::Config) -> Result<(), DbError> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(DbError::Connect)?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "migration connection ended");
        }
    });
    // A session-level lock: held across refinery's transactions, released when we unlock or the
    // connection ends (so a crashed migrator never leaves it held).
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = migrations::runner().run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    drop(client);
    let _ = conn_task.await;
    for m in report?.applied_migrations() {
        tracing::info!(migration = %m, "applied");
    }
    Ok(())
}

/// Creates database `name` through `admin` unless it exists.
pub async fn create_database(admin: &tokio_postgres::Config, name: &str) -> Result<(), DbError> {
    let (client, connection) = admin.connect(NoTls).await.map_err(DbError::Connect)?;
    let conn_task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        // Identifiers cannot be bound as parameters; quote it.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => {}
            // Another server created it between our check and our CREATE.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = conn_task.await;
    Ok(())
}
