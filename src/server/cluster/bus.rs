//! The bus between instances: one trait, two engines (PostgreSQL LISTEN/NOTIFY by default, NATS
//! for larger deployments), and `Outgoing`, which publishes this instance's events in order.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::event::{Envelope, Event};
use crate::server::metrics::METRICS;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the PostgreSQL bus: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the PostgreSQL bus: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("the NATS bus at {url}: {message}")]
    Nats { url: String, message: String },
}

/// What a listening instance hears.
#[derive(Debug)]
pub enum Heard {
    /// An envelope (JSON), published by any instance, this one included.
    Envelope(String),
    /// The bus was interrupted and is back: whatever was published meanwhile is lost.
    Resync,
}

/// An engine that carries envelopes to every instance.
pub trait Bus: Send + Sync + 'static {
    /// `postgres` or `nats`, for logs and metrics.
    fn name(&self) -> &'static str;

    /// Sends an envelope to every listening instance, after the ones this instance sent before.
    fn publish(&self, envelope: String) -> BoxFuture<'_, Result<(), BusError>>;

    /// Starts listening: everything published once this returns arrives on the channel, and
    /// `Heard::Resync` follows any interruption. Reconnects by itself until the channel is dropped.
    fn listen(&self) -> BoxFuture<'_, Result<mpsc::Receiver<Heard>, BusError>>;
}

/// `--bus`: which engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    /// LISTEN/NOTIFY on the server's own database: nothing more to run.
    Postgres,
    /// A NATS server (or cluster) at this URL.
    Nats(String),
}

impl std::str::FromStr for BusKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "postgres" | "postgresql" => Ok(BusKind::Postgres),
            url if url.starts_with("nats://") || url.starts_with("tls://") => {
                Ok(BusKind::Nats(url.to_string()))
            }
            other => Err(format!(
                "{other:?} is not a bus: use `postgres` or a NATS URL such as nats://127.0.0.1:4222"
            )),
        }
    }
}

impl std::fmt::Display for BusKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusKind::Postgres => f.write_str("postgres"),
            BusKind::Nats(url) => f.write_str(url),
        }
    }
}

/// Events waiting to be published; beyond this (a bus down for long) new ones are dropped and
/// counted. Messages are never lost that way: receivers fill the log from the database.
const QUEUE_DEPTH: usize = 65_536;
/// Events per envelope at most.
const MAX_EVENTS_PER_ENVELOPE: usize = 256;

/// This instance's events, published in the order they were queued, many per envelope under load.
#[derive(Clone)]
pub struct Outgoing {
    queue: mpsc::Sender<Queued>,
}

enum Queued {
    Event(Event),
    /// Answered once everything queued before it is published.
    Flush(oneshot::Sender<()>),
}

impl Outgoing {
    /// Starts the publishing task; it ends once every `Outgoing` is dropped and the queue is
    /// published.
    pub fn start(bus: Arc<dyn Bus>, instance: Uuid) -> (Outgoing, JoinHandle<()>) {
        let (queue, waiting) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(publish_in_order(bus, instance, waiting));
        (Outgoing { queue }, task)
    }

    /// Queues `event` for every instance, this one included.
    pub fn send(&self, event: Event) {
        if self.queue.try_send(Queued::Event(event)).is_err() {
            METRICS.bus_events_dropped.inc();
            tracing::warn!("the bus is behind by {QUEUE_DEPTH} events: dropping one");
        }
    }

    /// Returns once every event queued before is published (shutdown).
    pub async fn flushed(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn publish_in_order(bus: Arc<dyn Bus>, instance: Uuid, mut waiting: mpsc::Receiver<Queued>) {
    let mut queued = Vec::with_capacity(MAX_EVENTS_PER_ENVELOPE);
    while waiting
        .recv_many(&mut queued, MAX_EVENTS_PER_ENVELOPE)
        .await
        > 0
    {
        let mut events = Vec::with_capacity(queued.len());
        let mut flushes = Vec::new();
        for item in queued.drain(..) {
            match item {
                Queued::Event(event) => events.push(event),
                Queued::Flush(done) => flushes.push(done),
            }
        }
        if !events.is_empty() {
            publish(bus.as_ref(), instance, events).await;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Publishes one envelope, retrying until the bus takes it: the next one waits, so that order holds.
async fn publish(bus: &dyn Bus, instance: Uuid, events: Vec<Event>) {
    let envelope = Envelope {
        from: instance,
        sent_at_ms: unix_ms(),
        events,
    };
    let json = serde_json::to_string(&envelope).expect("events always serialise");
    let mut wait = Duration::from_millis(50);
    while let Err(e) = bus.publish(json.clone()).await {
        METRICS.bus_publish_failures.inc();
        tracing::warn!(error = %e, bus = bus.name(), "publishing on the bus failed; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    METRICS.bus_envelopes_published.inc();
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
