//! Faults injected for real: a killed PostgreSQL backend, a frozen PostgreSQL, a killed postmaster,
//! a killed server restarted at once, and SIGTERM with a half-sent request. A killed backend makes
//! PostgreSQL restart every session of its cluster, so each test here runs its own PostgreSQL (and
//! this is a test binary of its own, apart from the shared one of `tests/api`).

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod binary;
mod database;
