//! Whoever writes has read what came before: each sender's read pointer is moved past the
//! messages they send. Not in the message log's transaction (which every instance's writer takes
//! in turn): after it commits, coalesced, on a connection of its own. A pointer only ever moves
//! forward, so a move that arrives after the sender's own `read` of something newer changes
//! nothing, and one lost in a crash leaves that room's earlier messages unread for the sender.
//! Measured: in the writer's statement, moving the pointers cost 11% of REST sends (BENCHMARKS.md).

use std::collections::HashMap;

use deadpool_postgres::Object;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::proto::{MessageId, RoomId, UserId};
use crate::server::store::Store;

/// Most batches' moves taken together into one statement.
const MAX_MOVES: usize = 4096;
/// Moves wait this long to be taken together: a sender writing ten messages a second has their
/// pointer moved once, not ten times (each move is a row written in PostgreSQL).
const GATHER_FOR: std::time::Duration = std::time::Duration::from_millis(20);

/// A sender's newest message in a room, to move their read pointer to.
pub type Move = (RoomId, UserId, MessageId);

/// Where the writer hands the moves.
#[derive(Clone)]
pub struct ReadPointers {
    moves: mpsc::UnboundedSender<Vec<Move>>,
}

impl ReadPointers {
    /// Starts the task that applies the moves; it ends once every `ReadPointers` is dropped and
    /// what they handed over is applied.
    pub fn start(store: Store) -> (ReadPointers, JoinHandle<()>) {
        let (moves, waiting) = mpsc::unbounded_channel();
        (ReadPointers { moves }, tokio::spawn(apply(store, waiting)))
    }

    pub fn moved(&self, moves: Vec<Move>) {
        if !moves.is_empty() {
            let _ = self.moves.send(moves);
        }
    }
}

async fn apply(store: Store, mut waiting: mpsc::UnboundedReceiver<Vec<Move>>) {
    let mut taken = Vec::new();
    let mut connection: Option<Object> = None;
    while waiting.recv_many(&mut taken, MAX_MOVES).await > 0 {
        let mut newest: HashMap<(RoomId, UserId), MessageId> = HashMap::new();
        for (room, user, id) in taken.drain(..).flatten() {
            let upto = newest.entry((room, user)).or_insert(id);
            *upto = (*upto).max(id);
        }
        if connection.as_ref().is_none_or(|c| c.is_closed()) {
            connection = store.read_pointer_connection().await.ok();
        }
        let Some(client) = &connection else {
            tracing::debug!(moves = newest.len(), "no connection to move read pointers");
            continue;
        };
        let (mut rooms, mut users, mut upto) = (Vec::new(), Vec::new(), Vec::new());
        for ((room, user), id) in newest {
            rooms.push(room);
            users.push(user);
            upto.push(id);
        }
        if let Err(e) = Store::move_read_pointers(client, &rooms, &users, &upto).await {
            tracing::debug!(error = %e, "moving senders' read pointers failed");
        }
        tokio::time::sleep(GATHER_FOR).await;
    }
}
