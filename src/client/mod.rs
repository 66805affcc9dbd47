//! rtchat's client library, and `rtchat`, the command-line client built on it.
//!
//! The library: the typed REST client with automatic token refresh (`api::Api`), the live
//! connection that reconnects and resumes with `sync`, handing each message over once
//! (`live::listen`), saved logins on disk or in memory (`session`), TLS trust (`tls`), and the one
//! error type (`error::CliError`). It speaks the types of `crate::proto`, as the server does.
//!
//! ```no_run
//! use rtchat::client::{Api, Draft, SessionStore};
//! use rtchat::client::live::{self, Event};
//! use rtchat::proto::ServerFrame;
//!
//! # async fn demo() -> Result<(), rtchat::client::CliError> {
//! let api = Api::new("http://127.0.0.1:8000", SessionStore::in_memory(), None)?;
//! api.login("alice", "correct horse battery").await?;
//! let bob = api.user("bob").await?;
//! let draft = Draft { content: "hello", client_id: "greeting-1", reply_to: None, attachments: &[] };
//! let sent = api.send_direct(bob.id, &draft).await?;
//! println!("stored as message {}", sent.data.id);
//! // Every new message of alice's rooms, once each, across reconnects, until the closure says stop.
//! live::listen(&api, None, |event| match event {
//!     Event::Frame(ServerFrame::NewMessage { message, .. }) => {
//!         println!("{}: {}", message.sender_username.unwrap_or_default(), message.content);
//!         true
//!     }
//!     _ => true,
//! })
//! .await
//! # }
//! ```
//!
//! The command line: the clap commands (`cli`), human output (`render`, `output`), naming people
//! and groups (`target`), password prompts (`password`), and the interactive `chat` REPL (`repl`,
//! with its line editor in `line_editor`).

pub mod api;
pub(crate) mod cli;
pub mod error;
pub mod files;
pub(crate) mod group_settings;
pub(crate) mod line_editor;
pub mod live;
pub(crate) mod markdown;
pub(crate) mod notify;
pub(crate) mod output;
pub(crate) mod password;
pub(crate) mod render;
pub(crate) mod repl;
pub mod session;
pub(crate) mod target;
pub(crate) mod team;
mod team_api;
pub mod tls;
pub(crate) mod transfer;

pub use api::{Api, Draft, Page};
pub use error::CliError;
pub use session::{Session, SessionStore};

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, runs the command, and turns any failure into one line on stderr and
/// the exit code for its kind.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtchat: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtchat: {e}");
            e.exit_code()
        }
    }
}
