//! The harness every test binary shares (zero-to-production style): `spawn_app()` starts the real
//! server on port 0 against a fresh database on a real PostgreSQL (`database`), and gives the test
//! an HTTP client with one helper per repeated action (`app`), WebSocket clients that read frames
//! as the protocol's types (`ws`), a certificate authority for TLS tests (`tls`), and a NATS
//! server for the cluster tests (`nats`).
//!
//! To add a helper: put it beside the ones of its kind, and use it wherever a test repeats the
//! action by hand.

pub mod app;
pub mod browser;
pub mod database;
pub mod nats;
pub mod process;
pub mod s3;
pub mod tls;
pub mod ws;

pub use app::*;
pub use nats::nats_url;
pub use s3::{new_bucket, s3_endpoint};
pub use tls::*;
pub use ws::*;

pub const SECRET: &str = "test-secret-key-of-a-reasonable-length-0123456789";
pub const PASSWORD: &str = "correct horse battery";
