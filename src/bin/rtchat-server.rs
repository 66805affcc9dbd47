//! `rtchat-server`: configuration, logging, and the server's run loop.

use std::io::IsTerminal;
use std::process::ExitCode;

use rtchat::server::config::{AdminCommand, ServerCommand};
use rtchat::server::{self, Config};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut config = Config::load();
    if let Some(ServerCommand::Admin(command)) = config.command.take() {
        return admin(&config, &command);
    }
    let default_filter = if config.debug {
        "rtchat=debug,warp=info"
    } else {
        "rtchat=info,warp=warn"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if config.log_format == "json" {
        logs.json().init();
    } else {
        // Colour codes only where someone reads them, never into a file or a journal.
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error names its cause in its own text: the alternate form would say it twice.
            eprintln!("rtchat-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rtchat-server admin ...`: one command against the server's database, then exit.
fn admin(config: &Config, command: &AdminCommand) -> ExitCode {
    // Only what goes wrong: the command's own output is what the operator reads.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::new("rtchat=warn"))
        .init();
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))
        .and_then(|rt| Ok(rt.block_on(server::console::run(config, command))?));
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rtchat-server admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    // The cause goes into the message itself: errors are printed without their chain (see main).
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    let outcome = runtime.block_on(server::run(config));
    // A password hash still running on the blocking pool is not worth waiting for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(outcome?)
}
