//! Keeps the managed PostgreSQL running: when it dies it is restarted with backoff (each step in the
//! log); when it cannot be restarted the server is told to exit non-zero, for a service manager to
//! act on.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::server::database::postgres::{ManagedPostgres, Options, PostgresError};

/// Restart attempts before giving up (the waits between them add up to about half a minute).
const MAX_ATTEMPTS: u32 = 8;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(8);
/// How often the postmaster is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(250);

pub struct Supervisor {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), PostgresError>>,
    gave_up: watch::Receiver<bool>,
}

impl Supervisor {
    /// Watches over `pg`, started with `options`.
    pub fn start(pg: ManagedPostgres, options: Options) -> Supervisor {
        let (stop, stopped) = oneshot::channel();
        let (gave_up_tx, gave_up) = watch::channel(false);
        let task = tokio::spawn(watch_over(pg, options, stopped, gave_up_tx));
        Supervisor {
            stop,
            task,
            gave_up,
        }
    }

    /// Resolves when PostgreSQL died and could not be restarted.
    pub fn gave_up(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut gave_up = self.gave_up.clone();
        async move {
            let _ = gave_up.wait_for(|g| *g).await;
        }
    }

    /// Stops PostgreSQL (fast shutdown). Err if supervision had given up.
    pub async fn stop(self) -> Result<(), PostgresError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(outcome) => outcome,
            Err(e) => Err(PostgresError::Io {
                action: "supervising PostgreSQL".into(),
                source: std::io::Error::other(e),
            }),
        }
    }
}

async fn watch_over(
    mut pg: ManagedPostgres,
    options: Options,
    mut stop: oneshot::Receiver<()>,
    gave_up: watch::Sender<bool>,
) -> Result<(), PostgresError> {
    let dir: PathBuf = pg.data_dir().to_path_buf();
    let mut every = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => {
                let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
                return Ok(());
            }
            _ = every.tick() => {}
        }
        if !pg.has_exited() {
            continue;
        }
        tracing::error!(dir = %dir.display(), "the managed PostgreSQL exited unexpectedly; restarting it");
        // A cluster whose files are gone must not come back as a new, empty one.
        if !dir.join("PG_VERSION").exists() {
            let e = PostgresError::Io {
                action: format!("restarting PostgreSQL in {}", dir.display()),
                source: std::io::Error::other(
                    "its cluster is gone (no PG_VERSION); not creating an empty one",
                ),
            };
            tracing::error!(error = %e, "cannot restart the managed PostgreSQL; giving up");
            gave_up.send_replace(true);
            return Err(e);
        }
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        pg = loop {
            let (d, o) = (dir.clone(), options.clone());
            let started = tokio::task::spawn_blocking(move || ManagedPostgres::start(&d, &o))
                .await
                .unwrap_or_else(|e| {
                    Err(PostgresError::Io {
                        action: "restarting PostgreSQL".into(),
                        source: std::io::Error::other(e),
                    })
                });
            match started {
                Ok(restarted) => {
                    tracing::info!(attempt, "the managed PostgreSQL is running again");
                    break restarted;
                }
                Err(e) if attempt >= MAX_ATTEMPTS => {
                    tracing::error!(error = %e, attempt, "cannot restart the managed PostgreSQL; giving up");
                    gave_up.send_replace(true);
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, retry_in = ?wait, "restarting PostgreSQL failed");
                    tokio::select! {
                        _ = &mut stop => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(LONGEST_WAIT);
                    attempt += 1;
                }
            }
        };
    }
}
