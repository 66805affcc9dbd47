//! rtchat: a small real-time chat system.
//!
//! - [`proto`]: the wire types both sides speak (the seed system's REST shapes, extended).
//! - [`server`]: `rtchat-server`, a warp HTTP and WebSocket server over PostgreSQL.
//! - [`client`]: `rtchat`, the command-line client.

pub mod client;
pub mod proto;
pub mod server;
