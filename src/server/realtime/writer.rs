//! Group commit for messages: sends wait in a queue per shard of rooms, and each shard stores
//! everything waiting with one statement (one commit), then publishes it in id order.
//!
//! Under light load a batch is one message and costs what a lone insert did; under heavy load the
//! commits per message fall instead of capping throughput. A shard keeps two batches in flight on
//! one connection (PostgreSQL runs them in turn; the next is already there when the last commits).
//! Each batch holds the locks of its rooms from before its insert until after its publish, taken
//! in queue order, so each room's messages reach its members in id order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::sync::{OwnedMutexGuard, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::proto::{MessageId, ServerFrame};
use crate::server::http::error::ApiError;
use crate::server::metrics::METRICS;
use crate::server::realtime::hub::Hub;
use crate::server::store::{InsertOutcome, NewMessage, Store, StoreError, StoredMessage};

/// The most messages one statement stores.
const MAX_BATCH: usize = 256;
/// Batches of one shard being stored at once (of different rooms, or one after another in a room).
const PIPELINE_DEPTH: usize = 2;
/// Sends waiting per shard before senders wait for room in the queue.
const QUEUE_DEPTH: usize = 4096;

type RoomLock = Arc<tokio::sync::Mutex<()>>;

struct Pending {
    message: NewMessage,
    done: oneshot::Sender<Result<InsertOutcome, ApiError>>,
}

pub struct MessageWriter {
    shards: Vec<mpsc::Sender<Pending>>,
    stopping: watch::Sender<bool>,
    running: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl MessageWriter {
    /// Starts `shards` writer tasks (at least one). They end when the writer is dropped or drained.
    pub fn start(store: Store, hub: Arc<Hub>, shards: usize) -> MessageWriter {
        let (stopping, _) = watch::channel(false);
        let (shards, running) = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                let task = tokio::spawn(run_shard(
                    rx,
                    store.clone(),
                    hub.clone(),
                    stopping.subscribe(),
                ));
                (tx, task)
            })
            .unzip();
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

    /// Stores `message` and delivers it live; resolves once it is committed and queued to every
    /// online member. A repeated `client_id` resolves to the first message and delivers nothing.
    pub async fn send(&self, message: NewMessage) -> Result<InsertOutcome, ApiError> {
        let shard = &self.shards[message.room_id.unsigned_abs() as usize % self.shards.len()];
        let (done, outcome) = oneshot::channel();
        shard
            .send(Pending { message, done })
            .await
            .map_err(|_| ApiError::unavailable("the message writer has stopped"))?;
        outcome
            .await
            .map_err(|_| ApiError::unavailable("the message writer has stopped"))?
    }
}

async fn run_shard(
    mut queue: mpsc::Receiver<Pending>,
    store: Store,
    hub: Arc<Hub>,
    mut stopping: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(PIPELINE_DEPTH));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut connection: Option<Arc<Object>> = None;
    let mut draining = false;
    // The slot first: while every slot is busy, sends pile up into the next batch.
    while let Ok(slot) = slots.clone().acquire_owned().await {
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
        // Locks are taken here, batch after batch, so a batch never overtakes an earlier one in a
        // room they share. While an earlier batch holds one, this one keeps growing.
        let in_order = loop {
            let busy = match try_lock_rooms(&hub, &batch) {
                Ok(guards) => break guards,
                Err(busy) => busy,
            };
            let room_left = MAX_BATCH - batch.len();
            tokio::select! {
                _ = busy.lock() => {}
                _ = queue.recv_many(&mut batch, room_left), if room_left > 0 => {}
            }
        };
        // One connection: PostgreSQL runs the batches one after another, but the next one is
        // already sent while the last one's results travel back and are published.
        let batch = std::mem::take(&mut batch);
        if connection.as_ref().is_none_or(|c| c.is_closed()) {
            match store.writer_connection().await {
                Ok(fresh) => connection = Some(Arc::new(fresh)),
                Err(e) => {
                    connection = None;
                    fail_all(batch, e.into());
                    continue;
                }
            }
        }
        let Some(client) = connection.clone() else {
            continue;
        };
        let hub = hub.clone();
        let store = store.clone();
        tokio::spawn(async move {
            write_batch(&client, &store, &hub, batch).await;
            drop((in_order, slot));
        });
    }
    // The batches in flight hold the other slots until they are published.
    let _ = slots.acquire_many(PIPELINE_DEPTH as u32).await;
}

fn fail_all(batch: Vec<Pending>, error: ApiError) {
    for pending in batch {
        let _ = pending.done.send(Err(error.clone()));
    }
}

/// Every room of the batch locked (membership changes take the same locks: no message reaches
/// someone after their removal), or the lock of a room that is busy.
fn try_lock_rooms(hub: &Hub, batch: &[Pending]) -> Result<Vec<OwnedMutexGuard<()>>, RoomLock> {
    let rooms: BTreeSet<_> = batch.iter().map(|p| p.message.room_id).collect();
    let mut guards = Vec::with_capacity(rooms.len());
    for room in rooms {
        let lock = hub.room_lock(room);
        match lock.clone().try_lock_owned() {
            Ok(guard) => guards.push(guard),
            Err(_) => return Err(lock),
        }
    }
    Ok(guards)
}

async fn write_batch(client: &Object, store: &Store, hub: &Hub, batch: Vec<Pending>) {
    // A sender that stopped waiting (timed out, hung up) was told its message failed: keep it so.
    let batch: Vec<Pending> = batch.into_iter().filter(|p| !p.done.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let (messages, waiters): (Vec<NewMessage>, Vec<_>) =
        batch.into_iter().map(|p| (p.message, p.done)).unzip();
    // The ticket holds the sync watermark below this batch's ids until they are published, however
    // long finding out what committed takes.
    let ticket = hub.begin_send();
    let t0 = std::time::Instant::now();
    let outcomes = store_all(client, store, &messages).await;
    tracing::trace!(messages = messages.len(), took = ?t0.elapsed(), "batch stored");
    let mut stored: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(InsertOutcome::Stored(m)) => Some(m),
            _ => None,
        })
        .collect();
    stored.sort_unstable_by_key(|m| m.id);
    METRICS.writer_batch_messages.observe(messages.len() as f64);
    METRICS.messages_stored.inc_by(stored.len() as u64);
    hub.publish(
        ticket,
        stored.iter().map(|m| {
            let message = m.to_live();
            (m.room_id, m.id, move |sync_cursor| {
                ServerFrame::NewMessage {
                    message,
                    sync_cursor,
                }
            })
        }),
    );
    METRICS
        .store_to_queue_seconds
        .observe(t0.elapsed().as_secs_f64());
    for (done, outcome) in waiters.into_iter().zip(outcomes) {
        // A sender that stopped waiting meanwhile still had its message stored.
        let _ = done.send(outcome);
    }
}

/// One statement for the whole batch; if the database refuses it, one per message, so that a message
/// it refuses fails alone instead of taking the others with it.
async fn store_all(
    client: &Object,
    store: &Store,
    messages: &[NewMessage],
) -> Vec<Result<InsertOutcome, ApiError>> {
    let ids = match Store::reserve_message_ids(client, messages.len()).await {
        Ok(ids) if ids.len() == messages.len() => ids,
        Ok(_) => return fail_each(messages, ApiError::internal("too few message ids")),
        Err(e) => return fail_each(messages, e.into()),
    };
    match store_with_ids(client, store, messages, &ids).await {
        Err(StoreError::Query(e)) if e.as_db_error().is_some() && messages.len() > 1 => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for (message, id) in messages.iter().zip(&ids) {
                let one =
                    store_with_ids(client, store, std::slice::from_ref(message), &[*id]).await;
                outcomes.push(match one {
                    Ok(mut one) if one.len() == 1 => one.remove(0),
                    Ok(_) => Err(ApiError::internal("one outcome per message expected")),
                    Err(e) => Err(e.into()),
                });
            }
            outcomes
        }
        Ok(outcomes) => outcomes,
        Err(e) => fail_each(messages, e.into()),
    }
}

fn fail_each(messages: &[NewMessage], error: ApiError) -> Vec<Result<InsertOutcome, ApiError>> {
    messages.iter().map(|_| Err(error.clone())).collect()
}

/// Inserts with the given ids. When the connection dies before the answer arrives, the statement
/// may or may not have committed: the ids say which, asked on another connection.
async fn store_with_ids(
    client: &Object,
    store: &Store,
    messages: &[NewMessage],
    ids: &[MessageId],
) -> Result<Vec<Result<InsertOutcome, ApiError>>, StoreError> {
    match Store::insert_messages(client, messages, ids).await {
        Ok(outcomes) => Ok(outcomes.into_iter().map(Ok).collect()),
        // PostgreSQL answered with an error: the statement (its own transaction) did not commit.
        Err(StoreError::Query(e)) if e.as_db_error().is_some() => Err(StoreError::Query(e)),
        Err(e) => {
            tracing::warn!(error = %e, messages = messages.len(),
                "lost the database connection during an insert; asking which messages committed");
            Ok(committed(store, messages, ids).await)
        }
    }
}

/// What committed of a batch whose answer was lost, asked until the database answers. A message
/// found is stored (and will be published); one not found never will be: the statement is gone
/// with its connection, so nothing can commit it later.
async fn committed(
    store: &Store,
    messages: &[NewMessage],
    ids: &[MessageId],
) -> Vec<Result<InsertOutcome, ApiError>> {
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
    tracing::info!(
        committed = found.len(),
        of = messages.len(),
        "resolved a batch whose answer was lost"
    );
    ids.iter()
        .map(|id| match found.remove(id) {
            Some(m) => Ok(InsertOutcome::Stored(m)),
            // Not stored (or a retry or a non-member's, which a retry will tell): safe to send again.
            None => Err(ApiError::unavailable(
                "the database connection was lost before the message was stored",
            )),
        })
        .collect()
}
