//! The default bus: PostgreSQL LISTEN/NOTIFY on the server's own database, so that several
//! instances need nothing more to run. A notification carries at most 8,000 bytes: a larger
//! envelope is stored in `bus_payloads` and the notification carries its row id (`@123`).
//! Notifications are not durable: one that arrives while the listening connection is down is lost,
//! which the receiver makes good (`Heard::Resync`).

use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::bus::{Bus, BusError, Heard};

const CHANNEL: &str = "rtchat_bus";
/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_NOTIFY_BYTES: usize = 7_900;
/// How long an oversized envelope's row is kept for a listener that is slow to fetch it.
const KEEP_PAYLOADS: &str = "10 minutes";

pub struct PostgresBus {
    /// For the listening connection, which the pool does not lend.
    config: tokio_postgres::Config,
    pool: Pool,
}

impl PostgresBus {
    pub fn new(config: tokio_postgres::Config, pool: Pool) -> PostgresBus {
        PostgresBus { config, pool }
    }

    async fn publish_now(&self, envelope: String) -> Result<(), BusError> {
        let client = self.pool.get().await?;
        if envelope.len() <= MAX_NOTIFY_BYTES {
            let stmt = client.prepare_cached("SELECT pg_notify($1, $2)").await?;
            client.execute(&stmt, &[&CHANNEL, &envelope]).await?;
        } else {
            let stmt = client
                .prepare_cached(
                    "WITH stored AS (INSERT INTO bus_payloads (payload) VALUES ($2) RETURNING id),
                          _old AS (DELETE FROM bus_payloads
                                   WHERE created_at < now() - $3::text::interval)
                     SELECT pg_notify($1, '@' || id) FROM stored",
                )
                .await?;
            client
                .execute(&stmt, &[&CHANNEL, &envelope, &KEEP_PAYLOADS])
                .await?;
        }
        Ok(())
    }
}

impl Bus for PostgresBus {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn publish(&self, envelope: String) -> BoxFuture<'_, Result<(), BusError>> {
        self.publish_now(envelope).boxed()
    }

    fn listen(&self) -> BoxFuture<'_, Result<mpsc::Receiver<Heard>, BusError>> {
        async move {
            let (heard, rx) = mpsc::channel(4096);
            let first = listening_connection(&self.config).await?;
            tokio::spawn(keep_listening(
                self.config.clone(),
                self.pool.clone(),
                first,
                heard,
            ));
            Ok(rx)
        }
        .boxed()
    }
}

type Notifications = mpsc::UnboundedReceiver<Result<String, tokio_postgres::Error>>;

/// A connection that has run LISTEN, and its notifications' payloads. Ends with an Err (or a
/// closed channel) when the connection dies.
async fn listening_connection(
    config: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, Notifications), BusError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let item = match message {
                Ok(AsyncMessage::Notification(n)) => Ok(n.payload().to_string()),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    client
        .batch_execute(&format!(
            "SET application_name = 'rtchat-bus'; LISTEN {CHANNEL}"
        ))
        .await?;
    Ok((client, rx))
}

/// Forwards notifications (fetching stored envelopes), reconnecting when the connection dies and
/// then saying `Resync`. Ends when nobody listens any more.
async fn keep_listening(
    config: tokio_postgres::Config,
    pool: Pool,
    first: (tokio_postgres::Client, Notifications),
    heard: mpsc::Sender<Heard>,
) {
    let mut current = Some(first);
    let mut wait = Duration::from_millis(100);
    loop {
        let (client, mut notifications) = match current.take() {
            Some(listening) => listening,
            None => match listening_connection(&config).await {
                Ok(listening) => {
                    wait = Duration::from_millis(100);
                    if heard.send(Heard::Resync).await.is_err() {
                        return;
                    }
                    listening
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the PostgreSQL bus is not back yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        while let Some(Ok(payload)) = notifications.recv().await {
            let item = match payload.strip_prefix('@') {
                None => Heard::Envelope(payload),
                // Lost like a notification missed while disconnected, and made good the same way.
                Some(id) => stored_envelope(&pool, id)
                    .await
                    .map_or(Heard::Resync, Heard::Envelope),
            };
            if heard.send(item).await.is_err() {
                return;
            }
        }
        drop(client);
        if heard.is_closed() {
            return; // this instance is stopping: the database may go away with it
        }
        tracing::warn!("the PostgreSQL bus connection was lost; reconnecting");
        // Not at once: a database that is restarting refuses for a while anyway.
        tokio::time::sleep(wait).await;
    }
}

async fn stored_envelope(pool: &Pool, id: &str) -> Option<String> {
    let id: i64 = id.parse().ok()?;
    let fetched = async {
        let client = pool.get().await?;
        let row = client
            .query_opt("SELECT payload FROM bus_payloads WHERE id = $1", &[&id])
            .await?;
        Ok::<_, BusError>(row.map(|r| r.get(0)))
    };
    match fetched.await {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(error = %e, "could not read a large bus envelope");
            None
        }
    }
}
