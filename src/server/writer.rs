//! Group commit for messages: sends wait in a queue per shard of rooms, and each shard stores
//! everything waiting with one statement (one commit), then publishes it in id order.
//!
//! Under light load a batch is one message and costs what a lone insert did; under heavy load the
//! commits per message fall instead of capping throughput. A shard keeps two batches in flight on
//! one connection (PostgreSQL runs them in turn; the next is already there when the last commits).
//! Each batch holds the locks of its rooms from before its insert until after its publish, taken
//! in queue order, so each room's messages reach its members in id order.

use std::collections::BTreeSet;
use std::sync::Arc;

use deadpool_postgres::Object;
use tokio::sync::{OwnedMutexGuard, Semaphore, mpsc, oneshot};

use crate::proto::ServerFrame;
use crate::server::error::ApiError;
use crate::server::hub::Hub;
use crate::server::messaging::live;
use crate::server::store::{InsertOutcome, NewMessage, Store, StoreError};

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
}

impl MessageWriter {
    /// Starts `shards` writer tasks (at least one). They end when the writer is dropped.
    pub fn start(store: Store, hub: Arc<Hub>, shards: usize) -> MessageWriter {
        let shards = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(run_shard(rx, store.clone(), hub.clone()));
                tx
            })
            .collect();
        MessageWriter { shards }
    }

    /// Stores `message` and delivers it live; resolves once it is committed and queued to every
    /// online member. A repeated `client_id` resolves to the first message and delivers nothing.
    pub async fn send(&self, message: NewMessage) -> Result<InsertOutcome, ApiError> {
        let shard = &self.shards[message.room_id.unsigned_abs() as usize % self.shards.len()];
        let (done, outcome) = oneshot::channel();
        shard
            .send(Pending { message, done })
            .await
            .map_err(|_| ApiError::Unavailable("the message writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| ApiError::Unavailable("the message writer has stopped".into()))?
    }
}

async fn run_shard(mut queue: mpsc::Receiver<Pending>, store: Store, hub: Arc<Hub>) {
    let slots = Arc::new(Semaphore::new(PIPELINE_DEPTH));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut connection: Option<Arc<Object>> = None;
    // The slot first: while every slot is busy, sends pile up into the next batch.
    while let Ok(slot) = slots.clone().acquire_owned().await {
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
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
        if connection.as_ref().is_none_or(|c| c.is_closed()) {
            connection = store.writer_connection().await.ok().map(Arc::new);
        }
        let batch = std::mem::take(&mut batch);
        let Some(client) = connection.clone() else {
            fail_all(
                batch,
                ApiError::Unavailable("no database connection".into()),
            );
            continue;
        };
        let hub = hub.clone();
        tokio::spawn(async move {
            write_batch(&client, &hub, batch).await;
            drop((in_order, slot));
        });
    }
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

async fn write_batch(client: &Object, hub: &Hub, batch: Vec<Pending>) {
    let (messages, waiters): (Vec<NewMessage>, Vec<_>) =
        batch.into_iter().map(|p| (p.message, p.done)).unzip();
    let ticket = hub.begin_send();
    let t0 = std::time::Instant::now();
    let outcomes = store_all(client, &messages).await;
    tracing::trace!(messages = messages.len(), took = ?t0.elapsed(), "batch stored");
    let mut stored: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(InsertOutcome::Stored(m)) => Some(m),
            _ => None,
        })
        .collect();
    stored.sort_unstable_by_key(|m| m.id);
    hub.publish(
        ticket,
        stored.iter().map(|m| {
            let message = live(m);
            (m.room_id, m.id, move |sync_cursor| {
                ServerFrame::NewMessage {
                    message,
                    sync_cursor,
                }
            })
        }),
    );
    for (done, outcome) in waiters.into_iter().zip(outcomes) {
        // A sender that stopped waiting (its request was dropped) still had its message stored.
        let _ = done.send(outcome);
    }
}

/// One statement for the whole batch; if it fails, one per message, so that a message the database
/// refuses fails alone instead of taking the others with it.
async fn store_all(
    client: &Object,
    messages: &[NewMessage],
) -> Vec<Result<InsertOutcome, ApiError>> {
    match Store::insert_messages(client, messages).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(StoreError::Query(_)) if messages.len() > 1 => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                let outcome = Store::insert_messages(client, std::slice::from_ref(message)).await;
                outcomes.push(match outcome {
                    Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
                    Ok(_) => Err(ApiError::Internal(
                        "one outcome per message expected".into(),
                    )),
                    Err(e) => Err(e.into()),
                });
            }
            outcomes
        }
        Err(e) => {
            let error = ApiError::from(e);
            messages.iter().map(|_| Err(error.clone())).collect()
        }
    }
}
