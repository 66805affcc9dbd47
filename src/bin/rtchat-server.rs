//! `rtchat-server`: configuration, logging, and the server's run loop.

use std::io::IsTerminal;
use std::process::ExitCode;

use rtchat::server::{self, Config};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::load();
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

fn run(config: Config) -> anyhow::Result<()> {
    // The cause goes into the message itself: errors are printed without their chain (see main).
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    let outcome = runtime.block_on(server::run(config));
    // A password hash still running on the blocking pool is not worth waiting for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(outcome?)
}
