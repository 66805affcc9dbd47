//! The HTTP side: accepting connections with caps and deadlines (`listener`), TLS (`tls`), reading
//! requests (`extract`), the routes of the REST API and its document (`routes`), the web client
//! served from the binary (`web_app`), and the one error type every route answers with (`error`).

pub mod error;
pub mod extract;
pub mod listener;
pub mod routes;
pub mod streamed_body;
pub mod tls;
pub mod web_app;
