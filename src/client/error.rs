//! The client's one error type, and the exit code each kind of failure gives.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (exit 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    /// Not logged in, session over, wrong password (exit 3).
    #[error("{0}")]
    Auth(String),
    /// No such user, group, room or message (exit 4).
    #[error("{0}")]
    NotFound(String),
    /// The server refused the request: not allowed, taken, invalid, too fast (exit 1).
    #[error("{0}")]
    Refused(String),
    /// The server could not be reached or failed (exit 5).
    #[error("{0}")]
    Server(String),
    /// Local trouble: the credentials file, the terminal (exit 1).
    #[error("{0}")]
    Local(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Refused(_) | CliError::Local(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Auth(_) => 3,
            CliError::NotFound(_) => 4,
            CliError::Server(_) => 5,
        })
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Local(e.to_string())
    }
}
