//! The database's life: the managed PostgreSQL run from the machine's binaries (`postgres`), kept
//! running by the `supervisor`, and the connection pool and migrations (`db`). The SQL itself is in
//! `store`.

pub mod db;
pub mod postgres;
pub mod supervisor;
