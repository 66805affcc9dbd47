//! Integration tests: the real server over real sockets against a real PostgreSQL.

mod common;

/// The tests, one file per area in `tests/api/`.
mod api {
    mod accounts;
    mod authz;
    mod cli;
    mod client_library;
    mod cluster;
    mod concurrency;
    mod conversation;
    mod files;
    mod groups;
    mod limits;
    mod messages;
    mod meta;
    mod metrics;
    mod mute;
    mod openapi;
    mod reactions;
    mod repl;
    mod robustness;
    mod rooms;
    mod team;
    mod threads;
    mod tls;
    mod users;
    mod web;
    mod ws;
    mod ws_delivery;
}
