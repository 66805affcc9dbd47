//! Standard output for commands (and `Out`, what goes to stdout and what to stderr) whose reader may go away: `rtchat chats | head -1` or
//! `rtchat listen | grep -m1 deploy` end quietly (exit 0) when the pipe closes, instead of
//! panicking as `println!` does.

use std::io::Write;

use serde_json::json;

use super::api::{Api, to_line};
use super::render::Style;

/// Writes `text` to standard output. A closed pipe ends the program quietly; any other failure
/// (a full disk) ends it with a one-line error.
pub fn write(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("rtchat: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

/// Like `println!`, through `write`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::client::output::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Like `print!`, through `write`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::client::output::write(&format!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Where a command's output goes: JSON lines or human text on stdout, confirmations on stderr.
pub(crate) struct Out {
    pub(crate) json: bool,
    pub(crate) style: Style,
}

impl Out {
    pub(crate) fn line(&self, value: &impl serde::Serialize) {
        outln!("{}", to_line(value));
    }

    /// What a command changed: the server's answer as JSON, or a confirmation on stderr (so that
    /// a script reading stdout sees only what it asked for).
    pub(crate) fn done(&self, value: &impl serde::Serialize, words: std::fmt::Arguments) {
        if self.json {
            self.line(value);
        } else {
            eprintln!("{words}");
        }
    }

    /// After a login or registration: the user (JSON) or one line on stderr.
    pub(crate) fn signed_in(&self, api: &Api, user: &crate::proto::User, done: &str) {
        if self.json {
            self.line(&json!({"server": api.base(), "user": user}));
        } else {
            eprintln!("{done} as {} on {}", user.username, api.base());
        }
    }
}
