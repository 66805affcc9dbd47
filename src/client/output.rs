//! Standard output for commands whose reader may go away: `rtchat chats | head -1` or
//! `rtchat listen | grep -m1 deploy` end quietly (exit 0) when the pipe closes, instead of
//! panicking as `println!` does.

use std::io::Write;

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
