//! Group commit for messages: sends wait in a queue per shard, and each shard stores everything
//! waiting in one transaction, then publishes it on the bus (and hands the senders' read pointer
//! moves to `read_pointers`).
//!
//! Under light load a batch is one message and costs what a lone insert did; under heavy load the
//! commits per message fall instead of capping throughput. Each batch takes its ids under the
//! log's head (`Store::begin_log_batch`), so ids are handed out in commit order across every
//! instance; that lock, not this process, is what orders a room's messages for its members (the
//! receiver delivers the log in id order). Only a committed transaction's positions are
//! published: an aborted one's are handed out again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::proto::MessageId;
use crate::server::cluster::event::Mention;
use crate::server::cluster::{Event, Outgoing};
use crate::server::delivery::read_pointers::ReadPointers;
use crate::server::metrics::METRICS;
use crate::server::store::{InsertOutcome, NewMessage, Store, StoreError, StoredMessage};
use tokio_postgres::error::Severity;

/// Why a message was not stored; the commands turn it into their answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The server is shutting down.
    #[error("the message writer has stopped")]
    Stopped,
    /// The batch's answer was lost with its connection, and the message was not found stored.
    #[error("the database connection was lost while the message was stored")]
    Lost,
    #[error("one outcome per message expected")]
    Inconsistent,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl WriteError {
    fn store(e: StoreError) -> WriteError {
        METRICS.db_errors.inc();
        WriteError::Store(Arc::new(e))
    }
}

/// The most messages one statement stores.
const MAX_BATCH: usize = 256;
/// Sends waiting per shard before senders wait for room in the queue.
const QUEUE_DEPTH: usize = 4096;

struct Pending {
    message: NewMessage,
    done: oneshot::Sender<Result<InsertOutcome, WriteError>>,
}

pub struct MessageWriter {
    shards: Vec<mpsc::Sender<Pending>>,
    stopping: watch::Sender<bool>,
    running: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl MessageWriter {
    /// Starts `shards` writer tasks (at least one). They end when the writer is dropped or drained.
    pub fn start(store: Store, outgoing: Outgoing, shards: usize) -> MessageWriter {
        let (stopping, _) = watch::channel(false);
        let (read_pointers, moving) = ReadPointers::start(store.clone());
        let (shards, mut running): (Vec<_>, Vec<_>) = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                let task = tokio::spawn(run_shard(
                    rx,
                    store.clone(),
                    outgoing.clone(),
                    read_pointers.clone(),
                    stopping.subscribe(),
                ));
                (tx, task)
            })
            .unzip();
        // Last: it ends once every shard has, with their last moves applied.
        running.push(moving);
        MessageWriter {
            shards,
            stopping,
            running: std::sync::Mutex::new(running),
        }
    }

    /// Stops taking sends, stores and publishes every one already taken, and returns when all
    /// are done (shutdown).
    pub async fn drain(&self) {
        self.stopping.send_replace(true);
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|e| e.into_inner()));
        for task in running {
            let _ = task.await;
        }
    }

    /// Stores `message` and publishes it; resolves once it is committed and on its way to every
    /// instance. A repeated `client_id` resolves to the first message and delivers nothing.
    pub async fn send(&self, message: NewMessage) -> Result<InsertOutcome, WriteError> {
        let shard = &self.shards[message.room_id.unsigned_abs() as usize % self.shards.len()];
        let (done, outcome) = oneshot::channel();
        shard
            .send(Pending { message, done })
            .await
            .map_err(|_| WriteError::Stopped)?;
        outcome.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run_shard(
    mut queue: mpsc::Receiver<Pending>,
    store: Store,
    outgoing: Outgoing,
    read_pointers: ReadPointers,
    mut stopping: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut connection: Option<Object> = None;
    let mut draining = false;
    loop {
        let received = tokio::select! {
            n = queue.recv_many(&mut batch, MAX_BATCH) => n,
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                // No new sends; what is queued is still stored, then recv_many returns 0.
                queue.close();
                draining = true;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        // While this batch is stored, the next one gathers in the queue.
        let batch = std::mem::take(&mut batch);
        if connection.as_ref().is_none_or(|c| c.is_closed()) {
            match store.writer_connection().await {
                Ok(fresh) => connection = Some(fresh),
                Err(e) => {
                    connection = None;
                    fail_all(batch, WriteError::store(e));
                    continue;
                }
            }
        }
        if let Some(client) = &connection {
            let writer = Writer {
                client,
                store: &store,
                outgoing: &outgoing,
                read_pointers: &read_pointers,
            };
            write_batch(&writer, batch).await;
        }
    }
}

fn fail_all(batch: Vec<Pending>, error: WriteError) {
    for pending in batch {
        let _ = pending.done.send(Err(error.clone()));
    }
}

/// A shard's connection, with what a batch needs beside it.
struct Writer<'a> {
    client: &'a Object,
    store: &'a Store,
    outgoing: &'a Outgoing,
    read_pointers: &'a ReadPointers,
}

async fn write_batch(w: &Writer<'_>, batch: Vec<Pending>) {
    // A sender that stopped waiting (timed out, hung up) was told its message failed: keep it so.
    let batch: Vec<Pending> = batch.into_iter().filter(|p| !p.done.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let (messages, waiters): (Vec<NewMessage>, Vec<_>) =
        batch.into_iter().map(|p| (p.message, p.done)).unzip();
    let t0 = std::time::Instant::now();
    let outcomes = store_all(w, &messages).await;
    tracing::trace!(messages = messages.len(), took = ?t0.elapsed(), "batch stored");
    METRICS.writer_batch_messages.observe(messages.len() as f64);
    METRICS
        .store_to_queue_seconds
        .observe(t0.elapsed().as_secs_f64());
    for (done, outcome) in waiters.into_iter().zip(outcomes) {
        // A sender that stopped waiting meanwhile still had its message stored.
        let _ = done.send(outcome);
    }
}

/// One statement for the whole batch; if the database refuses it, one transaction per message, so
/// that a message it refuses fails alone instead of taking the others with it. Each committed
/// transaction's log positions are published, with whatever they stored.
async fn store_all(
    w: &Writer<'_>,
    messages: &[NewMessage],
) -> Vec<Result<InsertOutcome, WriteError>> {
    match store_in_order(w, messages).await {
        Err(StoreError::Query(e)) if e.as_db_error().is_some() && messages.len() > 1 => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                let one = store_in_order(w, std::slice::from_ref(message)).await;
                outcomes.push(match one {
                    Ok(mut one) if one.len() == 1 => one.remove(0),
                    Ok(_) => Err(WriteError::Inconsistent),
                    Err(e) => Err(WriteError::store(e)),
                });
            }
            outcomes
        }
        Ok(outcomes) => outcomes,
        Err(e) => fail_each(messages, WriteError::store(e)),
    }
}

fn fail_each(messages: &[NewMessage], error: WriteError) -> Vec<Result<InsertOutcome, WriteError>> {
    messages.iter().map(|_| Err(error.clone())).collect()
}

/// One transaction: log positions from the log's head, the insert, the commit; then what it
/// stored is published. A batch is published only when its COMMIT was answered: a batch whose
/// answer was lost with its connection may have committed or not, and after a crash PostgreSQL may
/// even give its positions (and its transaction id) to another, so nothing about it can be
/// published safely. The receivers read committed positions the bus did not bring from the
/// database; its senders are told what is found stored as they sent it.
async fn store_in_order(
    w: &Writer<'_>,
    messages: &[NewMessage],
) -> Result<Vec<Result<InsertOutcome, WriteError>>, StoreError> {
    let ids = Store::begin_log_batch(w.client, messages.len()).await?;
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return Err(StoreError::Unexpected("no log positions".into()));
    };
    let mut stored = match Store::insert_messages(w.client, messages, &ids).await {
        Ok(stored) => stored,
        Err(e) if rolled_back(w.client, &e) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, messages = messages.len(),
                "a batch's answer was lost with its connection; looking for what it stored");
            return Ok(stored_as_sent(w.store, messages, &ids).await);
        }
    };
    let mut replies: Vec<&mut StoredMessage> = stored
        .iter_mut()
        .flatten()
        .filter(|m| m.reply_to.is_some())
        .collect();
    if !replies.is_empty()
        && let Err(e) = w.store.quote_replies(&mut replies).await
    {
        // Stored all the same: the quote is only what the reply shows of the message it answers.
        tracing::warn!(error = %e, "could not quote the messages replies answer");
    }
    let published: Vec<&StoredMessage> = stored.iter().flatten().collect();
    publish(w.outgoing, first, last, &published);
    w.read_pointers.moved(
        published
            .iter()
            .filter_map(|m| Some((m.room_id, m.sender_id?, m.id)))
            .collect(),
    );
    // Committed and published: what remains is telling each sender why a message was not stored.
    Ok(match Store::not_stored(w.client, messages, stored).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not tell why messages were not stored");
            stored_as_sent(w.store, messages, &ids).await
        }
    })
}

/// Whether a failed batch certainly did not commit: PostgreSQL refused a statement (the COMMIT
/// sent behind it then only rolls back) and the connection is still open to say so.
fn rolled_back(client: &Object, e: &StoreError) -> bool {
    let StoreError::Query(e) = e else {
        return false;
    };
    !client.is_closed()
        && !e.is_closed()
        && e.as_db_error().is_some_and(|db| {
            !matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            )
        })
}

/// Log positions `first..=last` are settled, with these messages stored among them.
fn publish(outgoing: &Outgoing, first: MessageId, last: MessageId, stored: &[&StoredMessage]) {
    let mut stored = stored.to_vec();
    stored.sort_unstable_by_key(|m| m.id);
    METRICS.messages_stored.inc_by(stored.len() as u64);
    outgoing.send(Event::Messages {
        first,
        last,
        messages: stored.iter().map(|m| m.to_live()).collect(),
        mentions: Mention::of(stored.iter().copied()),
    });
}

/// What of a batch whose answer was lost is stored: a message found at its position as it was
/// sent (whichever transaction stored it) is stored; any other is reported as not stored, and
/// the sender's retry with the same client_id finds it if it was. Asked until the database
/// answers.
async fn stored_as_sent(
    store: &Store,
    messages: &[NewMessage],
    ids: &[MessageId],
) -> Vec<Result<InsertOutcome, WriteError>> {
    let mut wait = Duration::from_millis(50);
    let found = loop {
        match store.messages_by_id(ids).await {
            Ok(found) => break found,
            Err(e) => {
                tracing::debug!(error = %e, "database not back yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    };
    let mut found: HashMap<MessageId, StoredMessage> =
        found.into_iter().map(|m| (m.id, m)).collect();
    let outcomes: Vec<_> = messages
        .iter()
        .zip(ids)
        .map(|(sent, id)| match found.remove(id) {
            Some(m) if m.is(sent) => Ok(InsertOutcome::Stored(m)),
            _ => Err(WriteError::Lost),
        })
        .collect();
    tracing::info!(
        stored = outcomes.iter().filter(|o| o.is_ok()).count(),
        of = messages.len(),
        "resolved a batch whose answer was lost"
    );
    outcomes
}
