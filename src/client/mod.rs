//! `rtchat`, the command-line client: the clap command line (`cli`), the HTTP API with automatic
//! token refresh (`api`), saved logins (`session`), naming people and groups (`target`), the live
//! connection (`live`), TLS trust (`tls`), human output (`render`), and the interactive `chat` REPL (`repl`, with its
//! line editor in `line_editor`).

pub(crate) mod api;
pub(crate) mod cli;
pub(crate) mod error;
pub(crate) mod line_editor;
pub(crate) mod live;
pub(crate) mod output;
pub(crate) mod password;
pub(crate) mod render;
pub(crate) mod repl;
pub mod session;
pub(crate) mod target;
pub mod tls;

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
