//! The WebSocket door: a socket's life from upgrade to close (`connection`), the frames its client
//! sends, each answered through the commands (`client_frames`), and how many it may send
//! (`frame_budget`). What a socket receives is queued for it by `delivery`.

pub(crate) mod client_frames;
pub mod connection;
pub mod frame_budget;
