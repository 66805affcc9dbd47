//! Asking for passwords: at the terminal without echo, or from standard input for scripts. Ctrl-C
//! at a prompt gives the terminal back as it was (echo on) before the program ends, and a new
//! password that breaks the server's rule, or is repeated differently, is asked for again.

use std::io::BufRead;

use super::error::CliError;

/// The server's rule for passwords, said before asking for one.
pub const RULE: &str = "A password has 8 to 72 bytes (8 to 72 letters of plain ASCII).";

/// How many times a new password is asked for before giving up.
const ATTEMPTS: usize = 3;

/// Why `password` breaks the rule, if it does.
fn breaks_the_rule(password: &str) -> Option<String> {
    match password.len() {
        8..=72 => None,
        n => Some(format!(
            "that password has {n} bytes; {}",
            RULE.to_lowercase()
        )),
    }
}

/// One password typed at the terminal, without echo.
pub async fn prompt(label: &str) -> Result<String, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminal = TerminalModes::save();
    // Ctrl-C (or a SIGTERM) while echo is off would leave the shell without echo: this process
    // takes the signal (from before the prompt shows), puts the terminal back, and ends as an
    // interrupted program does.
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => (int, term),
        _ => return Err(CliError::Local("cannot handle Ctrl-C".into())),
    };
    let interrupted = || -> ! {
        if let Some(modes) = &terminal {
            modes.restore();
        }
        eprintln!();
        std::process::exit(130);
    };
    let label = label.to_string();
    let reading = tokio::task::spawn_blocking(move || rpassword::prompt_password(label));
    tokio::select! {
        read = reading => match read {
            Ok(Ok(password)) => Ok(password),
            // The signal interrupted the read itself.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => interrupted(),
            Ok(Err(e)) => Err(CliError::Usage(format!(
                "cannot read a password from the terminal ({e}); use --password-stdin"
            ))),
            Err(e) => Err(CliError::Local(format!("reading the password failed: {e}"))),
        },
        _ = int.recv() => interrupted(),
        _ = term.recv() => interrupted(),
    }
}

/// A new password, asked twice at the terminal (the rule said first); asked again, up to three
/// times, when it breaks the rule or the two differ.
pub async fn new_password(label: &str) -> Result<String, CliError> {
    eprintln!("{RULE}");
    let mut why = String::new();
    for _ in 0..ATTEMPTS {
        let password = prompt(&format!("{label}: ")).await?;
        if let Some(reason) = breaks_the_rule(&password) {
            eprintln!("{reason}");
            why = reason;
            continue;
        }
        if prompt(&format!("Repeat {}: ", label.to_lowercase())).await? == password {
            return Ok(password);
        }
        why = "the passwords differ".into();
        eprintln!("{why}; try again");
    }
    Err(CliError::Usage(format!("{why} ({ATTEMPTS} tries)")))
}

/// The first line of standard input, without its line ending.
pub fn stdin_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(CliError::Usage("no password on standard input".into()));
    }
    Ok(line)
}

/// A new password from standard input: refused here if it breaks the rule.
pub fn new_from_stdin() -> Result<String, CliError> {
    let password = stdin_line()?;
    match breaks_the_rule(&password) {
        Some(reason) => Err(CliError::Usage(reason)),
        None => Ok(password),
    }
}

/// The controlling terminal's modes, as they were before a prompt changed them.
struct TerminalModes {
    tty: std::fs::File,
    modes: libc::termios,
}

impl TerminalModes {
    fn save() -> Option<TerminalModes> {
        use std::os::fd::AsRawFd;
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        // SAFETY: tcgetattr fills a plain struct for an open descriptor.
        unsafe {
            let mut modes: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(tty.as_raw_fd(), &mut modes) == 0)
                .then_some(TerminalModes { tty, modes })
        }
    }

    fn restore(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: tcsetattr with modes read from the same terminal.
        unsafe {
            libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSANOW, &self.modes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_counts_bytes() {
        assert!(breaks_the_rule("12345678").is_none());
        assert!(breaks_the_rule("1234567").unwrap().contains("7 bytes"));
        assert!(breaks_the_rule(&"x".repeat(73)).is_some());
    }
}
