//! rtchat: a small real-time chat system.
//!
//! - [`proto`]: the wire types both sides speak (the seed system's REST shapes, extended).
//! - [`server`]: `rtchat-server`, a warp HTTP server over PostgreSQL.

pub mod proto;
pub mod server;
