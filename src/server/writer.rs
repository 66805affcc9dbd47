//! Group commit for messages: sends wait in a queue per shard of rooms, and one task per shard stores
//! everything waiting with one statement (one commit), then publishes it in id order.
//!
//! Under light load a batch is one message and costs what a lone insert did; under heavy load the
//! commits per message fall instead of capping throughput. A room always maps to the same shard, and
//! a shard has one batch in flight at a time, so each room's messages reach its members in id order.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::proto::ServerFrame;
use crate::server::error::ApiError;
use crate::server::hub::Hub;
use crate::server::messaging::live;
use crate::server::store::{InsertOutcome, NewMessage, Store, StoreError};

/// The most messages one statement stores.
const MAX_BATCH: usize = 256;
/// Sends waiting per shard before senders wait for room in the queue.
const QUEUE_DEPTH: usize = 4096;

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
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write_batch(&store, &hub, std::mem::take(&mut batch)).await;
    }
}

async fn write_batch(store: &Store, hub: &Hub, batch: Vec<Pending>) {
    // Membership changes take the same room locks: no message reaches someone after their removal.
    let rooms: BTreeSet<_> = batch.iter().map(|p| p.message.room_id).collect();
    let locks: Vec<_> = rooms.iter().map(|room| hub.room_lock(*room)).collect();
    let mut _in_order = Vec::with_capacity(locks.len());
    for lock in &locks {
        _in_order.push(lock.lock().await);
    }

    let (messages, waiters): (Vec<NewMessage>, Vec<_>) =
        batch.into_iter().map(|p| (p.message, p.done)).unzip();
    let ticket = hub.begin_send();
    let t0 = std::time::Instant::now();
    let outcomes = store_all(store, &messages).await;
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
async fn store_all(store: &Store, messages: &[NewMessage]) -> Vec<Result<InsertOutcome, ApiError>> {
    match store.insert_messages(messages).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(StoreError::Query(_)) if messages.len() > 1 => {
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                let outcome = store.insert_messages(std::slice::from_ref(message)).await;
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
