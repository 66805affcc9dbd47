//! One connection's queue of frames waiting to be written: bounded, and holding memory only while
//! frames wait. A channel would pre-allocate a block of slots per connection (about 1.8 KiB each,
//! measured with heaptrack), which is most of what an idle socket costs once the rest is small.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Frames waiting for one connection; a reader this far behind is closed and catches up with `sync`.
/// Room for several full batches (256 messages each): after a gap in the log, everything that
/// waited behind it is delivered at once. Memory is taken only while frames wait.
pub const QUEUE_CAPACITY: usize = 1024;

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Capacity kept after the queue empties; a burst's larger buffer is given back.
const KEPT_CAPACITY: usize = 8;

pub struct Outbox {
    frames: Mutex<VecDeque<Message>>,
    ready: Notify,
    capacity: usize,
}

/// The queue already holds `capacity` frames: its reader is not keeping up.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            frames: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            capacity,
        }
    }

    fn frames(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, frame: Message) -> Result<(), Full> {
        {
            let mut frames = self.frames();
            if frames.len() >= self.capacity {
                return Err(Full);
            }
            frames.push_back(frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Queues several frames at once, in order, waking the reader once: it then writes them with
    /// one system call instead of racing the pushes one frame at a time.
    pub fn push_all(&self, frames: Vec<Message>) -> Result<(), Full> {
        {
            let mut queued = self.frames();
            if queued.len() + frames.len() > self.capacity {
                return Err(Full);
            }
            queued.extend(frames);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next frame, if one waits.
    pub fn pop(&self) -> Option<Message> {
        let mut frames = self.frames();
        let frame = frames.pop_front();
        if frames.is_empty() && frames.capacity() > KEPT_CAPACITY {
            *frames = VecDeque::new();
        }
        frame
    }

    /// Waits for the next frame. Only one task may wait (the connection's writer).
    pub async fn recv(&self) -> Message {
        loop {
            if let Some(frame) = self.pop() {
                return frame;
            }
            // A push between the pop and this wait leaves a permit: the wait returns at once.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_up_to_the_capacity() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.push(Message::text("a")), Ok(()));
        assert_eq!(outbox.push(Message::text("b")), Ok(()));
        assert_eq!(outbox.push(Message::text("c")), Err(Full));
        assert_eq!(outbox.recv().await, Message::text("a"));
        assert_eq!(outbox.pop(), Some(Message::text("b")));
        assert_eq!(outbox.pop(), None);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(4));
        let reader = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.recv().await }
        });
        tokio::task::yield_now().await;
        outbox.push(Message::text("x")).unwrap();
        assert_eq!(reader.await.unwrap(), Message::text("x"));
    }

    #[test]
    fn an_emptied_queue_gives_its_memory_back() {
        let outbox = Outbox::new(256);
        for _ in 0..100 {
            outbox.push(Message::text("m")).unwrap();
        }
        while outbox.pop().is_some() {}
        assert_eq!(outbox.frames().capacity(), 0);
    }
}
