//! Live delivery: the WebSocket connection (`ws`) and its frame budget (`frame_budget`), the
//! message writer that stores sends in batches and publishes them in order (`writer`), the fan-out
//! to every connection of every member (`hub`), and each connection's queue (`outbox`).

pub mod frame_budget;
pub mod hub;
pub mod outbox;
pub mod writer;
pub mod ws;
