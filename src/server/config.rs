//! Server configuration: flags with environment fallbacks (the seed's variable names keep working),
//! read after a `.env` file if one is present.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::server::auth::{JwtAlgorithm, Registration};
pub use crate::server::cluster::BusKind;
use clap::builder::BoolishValueParser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "rtchat-server",
    version,
    about = "rtchat server: accounts, direct and group chats, history and live delivery over HTTP and WebSocket",
    long_about = None,
    // `--db-pool-size -5` is a bad value to name, not an unknown flag.
    allow_negative_numbers = true,
    after_help = "With no DATABASE_URL the server runs its own PostgreSQL (initdb and postgres must be installed) \
in DATA_DIR/postgres, on a unix socket only, and stops it when it stops.\n\
Every flag can also come from the environment variable shown, or from a .env file in the working directory."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "RTCHAT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Serve HTTPS and WSS with this certificate chain (PEM, the server's certificate first).
    /// Reread, with the key, on SIGHUP. Without it the server speaks plain HTTP (behind a proxy
    /// that terminates TLS, or on loopback).
    #[arg(
        long,
        env = "RTCHAT_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "RTCHAT_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// PostgreSQL to use, e.g. postgresql://user:password@localhost:5432/chatapp. Without it the server
    /// runs a private PostgreSQL in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Where the managed PostgreSQL and the generated secret key live. Default: the user's data
    /// directory (~/.local/share/rtchat), or /var/lib/rtchat when started as root (the `postgres` user
    /// that runs the database cannot enter root's home).
    #[arg(long, env = "RTCHAT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Key that signs tokens. Without it a random key is generated once and kept in DATA_DIR/secret_key.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Token signing algorithm.
    #[arg(
        long,
        env = "ALGORITHM",
        value_enum,
        ignore_case = true,
        default_value = "HS256"
    )]
    pub algorithm: JwtAlgorithm,

    /// Lifetime of access tokens, in minutes.
    #[arg(long, env = "ACCESS_TOKEN_EXPIRE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub access_token_expire_minutes: u32,

    /// Lifetime of refresh tokens (and so of a login), in days.
    #[arg(long, env = "REFRESH_TOKEN_EXPIRE_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub refresh_token_expire_days: u32,

    /// Serve /metrics on this address only (e.g. 127.0.0.1:9100), not on --bind. Default: /metrics
    /// is on --bind.
    #[arg(long, env = "RTCHAT_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Log lines as plain text (coloured only on a terminal) or as JSON objects, one a line.
    #[arg(long, env = "RTCHAT_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Verbose logging. Never changes what clients see.
    #[arg(long, env = "DEBUG", default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub debug: bool,

    /// Who may create an account: `invite` (with a code from someone on the server; the first
    /// account needs none and becomes the owner), `open` (anyone who can reach the server: the
    /// seed's behaviour, for a laptop or a private network) or `closed` (nobody new).
    #[arg(
        long,
        env = "RTCHAT_REGISTRATION",
        value_enum,
        default_value = "invite"
    )]
    pub registration: Registration,

    /// Name reported by GET /.
    #[arg(long, env = "APP_NAME", default_value = "Real-time Chat API")]
    pub app_name: String,

    /// Browser origins allowed to call the API (comma-separated). None by default: no CORS headers.
    #[arg(long, env = "RTCHAT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// bcrypt cost for new password hashes (each step doubles the work).
    #[arg(long, env = "RTCHAT_BCRYPT_COST", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Messages a user may send per second, over REST and WebSocket together (with a burst of twice
    /// that). 0: no limit.
    #[arg(long, env = "RTCHAT_MAX_SEND_RATE", default_value_t = 10)]
    pub max_send_rate: u32,

    /// Searches a user may run per second (with a burst of five times that). 0: no limit.
    #[arg(long, env = "RTCHAT_MAX_SEARCH_RATE", default_value_t = 2)]
    pub max_search_rate: u32,

    /// Longest one search may run in the database before it is stopped (then 503: search fewer
    /// rooms or rarer words).
    #[arg(long, env = "RTCHAT_SEARCH_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub search_timeout: Duration,

    /// Largest number of database connections the server holds.
    #[arg(long, env = "RTCHAT_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool_size: u32,

    /// Tasks that store messages, each for its share of the rooms, on a connection of its own. Each
    /// stores every message waiting for its rooms in one transaction (one commit for many
    /// messages). They take turns at the log's order lock: one gives the most messages per second
    /// (10,181/s against 4,046/s with four, BENCHMARKS.md).
    #[arg(long, env = "RTCHAT_MESSAGE_WRITERS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub message_writers: u32,

    /// How instances of rtchat-server on one database hear each other: `postgres` (LISTEN/NOTIFY on
    /// that database; nothing more to run) or a NATS URL such as nats://127.0.0.1:4222. One
    /// instance alone uses it too.
    #[arg(long, env = "RTCHAT_BUS", default_value = "postgres")]
    pub bus: BusKind,

    /// Time a client has to send a request's headers; also how long an idle keep-alive connection
    /// is kept between two requests. Durations take a unit: 500ms, 10s, 2m.
    #[arg(long, env = "RTCHAT_HEADER_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_timeout: Duration,

    /// Time a client has to send a request's body, from the end of its headers (then 408).
    #[arg(long, env = "RTCHAT_BODY_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub body_timeout: Duration,

    /// Longest a request or WebSocket frame waits for the database (a free connection, then its
    /// statements) before it is answered 503.
    #[arg(long, env = "RTCHAT_DB_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub db_timeout: Duration,

    /// Most connections open at once (HTTP and WebSocket). Default: the process's descriptor limit
    /// less 256 kept for the database, logs and files.
    #[arg(long, env = "RTCHAT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one IP address (generous: many users can share one
    /// address behind NAT). 0: no per-address limit.
    #[arg(long, env = "RTCHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 4096)]
    pub max_connections_per_ip: usize,

    /// Most WebSocket connections one user may hold at once; one more is refused with close code
    /// 4009.
    #[arg(long, env = "RTCHAT_MAX_SOCKETS_PER_USER", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sockets_per_user: u32,

    /// Frames per second one WebSocket client may send, with a burst of three seconds' worth; every
    /// kind counts (a `sync` as five) but `message`, which has --max-send-rate. 0: no limit.
    #[arg(long, env = "RTCHAT_MAX_FRAME_RATE", default_value_t = 20)]
    pub max_frame_rate: u32,

    /// Login attempts per minute for one account (before any password is checked), with a burst of
    /// as many. 0: no limit.
    #[arg(long, env = "RTCHAT_LOGIN_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub login_rate_per_account: u32,

    /// Login, registration and password-change attempts per minute from one IP address, with a
    /// burst of as many. 0: no limit.
    #[arg(long, env = "RTCHAT_AUTH_RATE_PER_IP", default_value_t = 60)]
    pub auth_rate_per_ip: u32,

    /// Password hashes waiting or running at once; one more is refused at once with 503 and
    /// Retry-After instead of queueing behind the others.
    #[arg(long, env = "RTCHAT_MAX_HASHING_QUEUE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_hashing_queue: u32,

    /// On SIGTERM or Ctrl-C: longest the server waits for requests, sockets and the message writer to
    /// finish before it stops PostgreSQL and exits anyway.
    #[arg(long, env = "RTCHAT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    /// How often the server pings each WebSocket (keep it below a proxy's idle timeout).
    #[arg(long, env = "RTCHAT_WS_PING_INTERVAL", default_value = "25s", value_parser = duration)]
    pub ws_ping_interval: Duration,

    /// A WebSocket that sends nothing, not even a pong, for this long is dead and is closed (4002).
    #[arg(long, env = "RTCHAT_WS_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub ws_idle_timeout: Duration,

    /// A WebSocket opened without credentials must send its `auth` frame within this (4000).
    #[arg(long, env = "RTCHAT_WS_AUTH_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub ws_auth_timeout: Duration,

    /// Where files' bytes are kept: a directory, or S3-compatible storage as s3://BUCKET/PREFIX
    /// (endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true for plain HTTP). Several instances need one
    /// they all reach. Default: DATA_DIR/files.
    #[arg(long, env = "RTCHAT_FILE_STORE", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub file_store: Option<String>,

    /// Largest file one upload may be (larger is refused with 413). Units: kB, MB, KiB, MiB, GiB.
    #[arg(long, env = "RTCHAT_MAX_UPLOAD_SIZE", default_value = "50MiB", value_parser = size)]
    pub max_upload_size: u64,

    /// Bytes one user's files may take in all (then 413 until some are deleted). 0: no quota.
    #[arg(long, env = "RTCHAT_UPLOAD_QUOTA", default_value = "1GiB", value_parser = size)]
    pub upload_quota: u64,

    /// An upload never attached to a message is removed after this long.
    #[arg(long, env = "RTCHAT_UNATTACHED_UPLOAD_TTL", default_value = "24h", value_parser = duration)]
    pub unattached_upload_ttl: Duration,

    /// How often unattached uploads and files no message refers to any more are removed (also
    /// soon after a message with files is deleted).
    #[arg(long, env = "RTCHAT_FILE_SWEEP_INTERVAL", default_value = "10m", value_parser = duration)]
    pub file_sweep_interval: Duration,

    #[command(subcommand)]
    pub command: Option<ServerCommand>,
}

/// What `rtchat-server` does besides serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServerCommand {
    /// Administer the server from its own machine (the way back in when no admin can log in):
    /// uses the server's --data-dir or --database-url, whether the server is running or not.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Make USERNAME an admin (or, with --owner, an owner).
    #[command(after_help = "Examples:\n  rtchat-server admin promote alice\n  \
        rtchat-server --data-dir /var/lib/rtchat admin promote alice --owner")]
    Promote {
        username: String,
        /// Make them an owner, not an admin.
        #[arg(long)]
        owner: bool,
    },
    /// Make USERNAME a member again (the last owner stays one).
    Demote { username: String },
    /// Print a one-time code (valid an hour) with which USERNAME sets a new password
    /// (`rtchat reset-password --code CODE`).
    ResetPassword { username: String },
}

impl Config {
    /// Reads `.env` (if present) and then the command line and environment.
    pub fn load() -> Self {
        // A missing .env is the normal case; a malformed one is worth a word but not a refusal.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            eprintln!("rtchat-server: ignoring .env: {err}");
        }
        Config::try_parse().unwrap_or_else(|e| {
            // clap names the flag; a value from the environment is easier to find by its variable.
            if let Some(variable) = environment_behind(&e) {
                let reason = e.to_string();
                let reason = reason.lines().next().unwrap_or_default();
                eprintln!(
                    "rtchat-server: {variable}: {}",
                    reason.trim_start_matches("error: ")
                );
                std::process::exit(2);
            }
            e.exit()
        })
    }

    /// A configuration with every default, as if started with no flags and an empty environment.
    pub fn defaults() -> Self {
        Config {
            bind: "127.0.0.1:8000".parse().expect("valid default address"),
            database_url: None,
            data_dir: None,
            secret_key: None,
            algorithm: JwtAlgorithm::Hs256,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: 7,
            debug: false,
            log_format: "text".into(),
            metrics_bind: None,
            tls_cert: None,
            tls_key: None,
            app_name: "Real-time Chat API".into(),
            registration: Registration::Invite,
            cors_origins: Vec::new(),
            bcrypt_cost: 12,
            max_send_rate: 10,
            max_search_rate: 2,
            search_timeout: Duration::from_secs(2),
            db_pool_size: 16,
            message_writers: 1,
            bus: BusKind::Postgres,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            db_timeout: Duration::from_secs(5),
            max_connections: None,
            max_connections_per_ip: 4096,
            max_sockets_per_user: 32,
            max_frame_rate: 20,
            login_rate_per_account: 10,
            auth_rate_per_ip: 60,
            max_hashing_queue: 8,
            shutdown_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(25),
            ws_idle_timeout: Duration::from_secs(60),
            ws_auth_timeout: Duration::from_secs(5),
            file_store: None,
            max_upload_size: 50 * 1024 * 1024,
            upload_quota: 1024 * 1024 * 1024,
            unattached_upload_ttl: Duration::from_secs(24 * 3600),
            file_sweep_interval: Duration::from_secs(600),
            command: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

/// The environment variable whose value a parse error is about, when the flag was not given.
fn environment_behind(e: &clap::Error) -> Option<String> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let given =
        std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    if given {
        return None;
    }
    let command = Config::command();
    let variable = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_string_lossy()
        .into_owned();
    std::env::var_os(&variable).map(|_| variable)
}

/// A duration with its unit ("500ms", "10s", "2m"), as humantime reads it.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 10s, 2m)"))
}

/// A size with its unit ("50MiB", "1GiB", "500kB"; bare numbers are bytes), as bytesize reads it.
fn size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|e| format!("{e} (examples: 50MiB, 1GiB, 500kB)"))
}

fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/rtchat");
    }
    directories::ProjectDirs::from("", "", "rtchat")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("rtchat-data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_an_empty_command_line() {
        let parsed = Config::try_parse_from(["rtchat-server"]).unwrap();
        let defaults = Config::defaults();
        // The environment of whoever runs the tests may set these; the rest must agree.
        assert_eq!(parsed.algorithm, defaults.algorithm);
        assert_eq!(parsed.bcrypt_cost, defaults.bcrypt_cost);
        assert_eq!(parsed.shutdown_timeout, defaults.shutdown_timeout);
        assert_eq!(parsed.ws_ping_interval, defaults.ws_ping_interval);
        assert_eq!(parsed.ws_idle_timeout, defaults.ws_idle_timeout);
        assert_eq!(parsed.ws_auth_timeout, defaults.ws_auth_timeout);
        assert_eq!(parsed.max_sockets_per_user, defaults.max_sockets_per_user);
        assert_eq!(parsed.max_upload_size, defaults.max_upload_size);
        assert_eq!(parsed.upload_quota, defaults.upload_quota);
        assert_eq!(parsed.unattached_upload_ttl, defaults.unattached_upload_ttl);
    }

    #[test]
    fn an_unknown_signing_algorithm_is_refused_not_replaced() {
        let c = Config::try_parse_from(["rtchat-server", "--algorithm", "hs512"]).unwrap();
        assert_eq!(c.algorithm, JwtAlgorithm::Hs512);
        for unknown in ["RS256", "none", ""] {
            let e = Config::try_parse_from(["rtchat-server", "--algorithm", unknown]).unwrap_err();
            assert!(e.to_string().contains("HS256, HS384, HS512"), "{e}");
        }
    }

    #[test]
    fn a_negative_number_is_a_bad_value_not_an_unknown_flag() {
        let e = Config::try_parse_from(["rtchat-server", "--access-token-expire-minutes", "-5"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
        assert!(e.to_string().contains("-5"), "{e}");
    }

    #[test]
    fn seed_style_debug_values_parse() {
        for (value, expected) in [("True", true), ("False", false), ("1", true), ("no", false)] {
            let c = Config::try_parse_from(["rtchat-server", "--debug", value]).unwrap();
            assert_eq!(c.debug, expected, "{value}");
        }
    }
}
