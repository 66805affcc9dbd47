//! Live delivery: the WebSocket connection (`ws`), the frames its client sends (`client_frames`)
//! and their budget (`frame_budget`), the
//! message writer that stores sends in batches and publishes them in order (`writer`) and moves
//! the senders' read pointers after (`read_pointers`), the fan-out to every connection of every
//! member (`hub`), and each connection's queue (`outbox`).

mod client_frames;
pub mod frame_budget;
pub mod hub;
pub mod outbox;
pub mod read_pointers;
pub mod writer;
pub mod ws;
