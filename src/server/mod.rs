//! `rtchat-server`: `Server` ties the parts together and `run` is the whole program (database,
//! serving, shutdown). The parts: `http` (connections, routes, errors), `realtime` (sockets, the
//! message writer, fan-out), `auth`, `store` (all SQL), `database` (the managed PostgreSQL, pool,
//! migrations), and beside them `messaging` (what REST and WebSocket share), `state` (what handlers
//! depend on), `config`, `validate` and `metrics`.

pub mod auth;
pub(crate) mod cluster;
pub mod commands;
pub mod config;
pub mod console;
pub mod database;
pub(crate) mod delivery;
pub mod files;
pub mod http;
pub(crate) mod metrics;
pub mod state;
pub(crate) mod store;
pub(crate) mod ws;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::net::{TcpListener, TcpSocket};
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub use config::Config;

use crate::proto;
use crate::server::auth::throttle::AuthThrottle;
use crate::server::auth::{PasswordHasher, TokenKeys};
use crate::server::database::postgres::ManagedPostgres;
use crate::server::delivery::hub::Hub;
use crate::server::delivery::writer::MessageWriter;
use crate::server::state::{AppState, Shared};
use crate::server::store::Store;
use database::{db, postgres, supervisor};
use http::{listener, routes, tls};
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Postgres(#[from] postgres::PostgresError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Bus(#[from] cluster::BusError),
    #[error(transparent)]
    Files(#[from] files::StorageError),
}

/// A server bound to its address and connected to its database, ready to run.
pub struct Server {
    listener: TcpListener,
    tls: Option<tls::Tls>,
    /// `--metrics-bind`: /metrics on a listener of its own.
    metrics: Option<(TcpListener, BoxedFilter<(Response,)>)>,
    state: AppState,
    cluster: Cluster,
    routes: BoxedFilter<(Response,)>,
    limits: listener::Limits,
    shutdown_timeout: Duration,
}

/// The tasks that connect this instance to the others.
struct Cluster {
    /// Applies what the bus brings.
    receiving: tokio::task::JoinHandle<()>,
    /// Publishes this instance's events; ends once the last `Outgoing` is dropped.
    publishing: tokio::task::JoinHandle<()>,
}

/// What a server opens and checks before any other work: its listening sockets, its TLS, every
/// setting that can be wrong, and a NATS bus. A mistake in any of them is reported before a data
/// directory, a database or a key is created.
pub struct Doors {
    listener: TcpListener,
    tls: Option<tls::Tls>,
    /// `--metrics-bind`'s listener.
    metrics: Option<TcpListener>,
    /// The NATS connection, for `--bus nats://...` (the PostgreSQL bus needs the database first).
    nats: Option<cluster::nats_bus::NatsBus>,
}

impl Doors {
    /// Binds `config.bind` first (a port in use is the commonest mistake), then reads the TLS
    /// files, checks the settings no flag parser could, binds `--metrics-bind` and connects to NATS.
    pub async fn open(config: &Config) -> Result<Doors, ServerError> {
        let listener = listen_on(config.bind)?;
        let tls = load_tls(config)?;
        routes::check_cors_origins(&config.cors_origins).map_err(ServerError::Config)?;
        let metrics = config.metrics_bind.map(listen_on).transpose()?;
        let nats = match &config.bus {
            cluster::BusKind::Postgres => None,
            cluster::BusKind::Nats(url) => Some(cluster::nats_bus::NatsBus::connect(url).await?),
        };
        Ok(Doors {
            listener,
            tls,
            metrics,
            nats,
        })
    }
}

impl Server {
    /// Opens the doors (`Doors::open`), migrates the database, opens the pool and binds
    /// `config.bind` (port 0 picks a free port).
    pub async fn bind(
        config: &Config,
        database: tokio_postgres::Config,
        secret: &[u8],
    ) -> Result<Server, ServerError> {
        Self::on(Doors::open(config).await?, config, database, || {
            Ok(secret.to_vec())
        })
        .await
    }

    /// As `bind`, with the doors already open (done first, so that a port in use, a bad
    /// certificate or setting, or an unreachable bus is reported before any other work).
    ///
    /// `secret` gives the signing key; it is asked for once the database has answered, so that a
    /// server that cannot reach its database generates no key.
    pub async fn on(
        doors: Doors,
        config: &Config,
        database: tokio_postgres::Config,
        secret: impl FnOnce() -> Result<Vec<u8>, ServerError>,
    ) -> Result<Server, ServerError> {
        let Doors {
            listener,
            tls,
            metrics,
            nats,
        } = doors;
        db::migrate(&database).await?;
        let secret = secret()?;
        let pool =
            db::connect_pool(database.clone(), config.db_pool_size, config.db_timeout).await?;
        let store = Store::new(pool.clone());
        let bus: Arc<dyn cluster::Bus> = match nats {
            Some(nats) => Arc::new(nats),
            None => Arc::new(cluster::postgres_bus::PostgresBus::new(database, pool)),
        };
        // Listening before the log's end is read: whatever commits later arrives on the bus.
        let heard = bus.listen().await?;
        let reading =
            |e: store::StoreError| ServerError::Config(format!("reading the database: {e}"));
        let settled = store.max_message_id().await.map_err(reading)?;
        let instance = uuid::Uuid::new_v4();
        store.instance_heartbeat(instance).await.map_err(reading)?;
        let (state, publishing) =
            shared_parts(config, store, &secret, bus, instance, settled).await?;
        let routes = routes::routes(
            state.clone(),
            &config.cors_origins,
            config.metrics_bind.is_none(),
        );
        let metrics = metrics.map(|listener| (listener, routes::metrics_only(state.clone())));
        tracing::info!(bus = %config.bus, %instance, "listening on the bus");
        let receiving = tokio::spawn(delivery::receiver::run(
            delivery::receiver::Receiver {
                store: state.store.clone(),
                hub: state.hub.clone(),
                sessions: state.sessions.clone(),
            },
            instance,
            heard,
            settled,
        ));
        Ok(Server {
            listener,
            tls,
            metrics,
            cluster: Cluster {
                receiving,
                publishing,
            },
            state,
            routes,
            limits: connection_limits(config),
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where /metrics is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The server's TLS, when it terminates TLS itself.
    pub fn tls(&self) -> Option<&tls::Tls> {
        self.tls.as_ref()
    }

    /// Serves until `shutdown` completes, then shuts down within the shutdown timeout: stops
    /// accepting, sends every WebSocket a 1001 close frame, lets requests in flight finish, and stores
    /// and publishes every message already taken. Whatever is still running after that is dropped.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let chores = Chores::start(&self.state);
        let state = self.state.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let when_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        if let Some((listener, routes)) = self.metrics {
            let limits = self.limits.clone();
            tokio::spawn(listener::serve(
                listener,
                None,
                routes,
                limits,
                state.tasks.clone(),
                when_stopped(),
            ));
        }
        let serving = tokio::spawn(listener::serve(
            self.listener,
            self.tls.map(|t| t.acceptor().clone()),
            self.routes,
            self.limits,
            state.tasks.clone(),
            when_stopped(),
        ));
        shutdown.await;
        stop.send_replace(true);
        drain(&state, serving, self.shutdown_timeout).await;
        chores.stop();
        leave_cluster(&state, self.cluster).await;
    }
}

/// The server's periodic work: purging expired sessions, housekeeping, the presence heartbeat.
struct Chores {
    janitor: tokio::task::JoinHandle<()>,
    housekeeper: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Chores {
    fn start(state: &AppState) -> Chores {
        Chores {
            janitor: tokio::spawn(purge_expired_sessions(state.clone())),
            housekeeper: tokio::spawn(housekeeping(state.clone())),
            sweeper: tokio::spawn(files::sweep::run(state.files.clone(), state.store.clone())),
            heartbeat: tokio::spawn(delivery::presence::heartbeat(
                delivery::presence::Heartbeat {
                    store: state.store.clone(),
                    hub: state.hub.clone(),
                    outgoing: state.outgoing.clone(),
                    instance: state.instance,
                },
            )),
        }
    }

    fn stop(self) {
        self.janitor.abort();
        self.housekeeper.abort();
        self.heartbeat.abort();
        self.sweeper.abort();
    }
}

/// Once the listener has stopped accepting: sends every WebSocket a 1001 close frame, lets
/// requests in flight finish, and stores and publishes every message already taken, within
/// `grace`. Whatever is still running after that is dropped.
async fn drain(
    state: &AppState,
    serving: tokio::task::JoinHandle<Result<(), std::convert::Infallible>>,
    grace: Duration,
) {
    tracing::info!(
        ?grace,
        sockets = state.hub.connection_count(),
        "shutting down"
    );
    // Upgraded sockets are not the HTTP server's to drain: close them ourselves.
    state.hub.close_all(proto::CloseReason::GOING_AWAY);
    state.tasks.close();
    let drained = tokio::time::timeout(grace, async {
        let _ = serving.await;
        // Every HTTP connection and WebSocket task, each finishing what it was doing.
        state.tasks.wait().await;
        state.writer.drain().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?grace,
            connections = state.tasks.len(),
            "shutdown timeout: dropping what is still open"
        );
    }
}

/// The last events (the sockets' goodbyes, the last messages) go out before the instance leaves;
/// then it is removed, and its presence with it.
async fn leave_cluster(state: &AppState, cluster: Cluster) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        state.outgoing.flushed().await;
    })
    .await;
    if let Err(e) = state.store.instance_stopped(state.instance).await {
        tracing::warn!(error = %e, "could not remove this instance from the database");
    }
    cluster.receiving.abort();
    cluster.publishing.abort();
    // Gone before the database stops: the bus's listener then knows nobody listens any more,
    // and a database going away is not news worth a warning.
    let _ = cluster.receiving.await;
    let _ = cluster.publishing.await;
}

/// The configuration made into the parts every handler shares: the hashing queue (and the
/// hash an unknown name is checked against), the fan-out hub, the bus's publisher, the message
/// writer, the token keys, the limits. Returns them with the publisher's task.
async fn shared_parts(
    config: &Config,
    store: Store,
    secret: &[u8],
    bus: Arc<dyn cluster::Bus>,
    instance: uuid::Uuid,
    settled: proto::MessageId,
) -> Result<(AppState, tokio::task::JoinHandle<()>), ServerError> {
    let hasher = PasswordHasher::new(config.bcrypt_cost, config.max_hashing_queue as usize);
    let dummy_hash = hasher
        .hash("not anybody's password".into(), auth::Source::SERVER)
        .await?;
    let hub = Arc::new(Hub::new(delivery::outbox::QUEUE_CAPACITY, settled));
    let storage = files::FileStorage::open(config.file_store.as_deref(), &config.data_dir())?;
    tracing::info!(store = %storage.description, "files are kept here");
    let files = Arc::new(files::Files::new(
        storage,
        files::FileLimits {
            max_upload: config.max_upload_size,
            quota: config.upload_quota,
            unattached_for: config.unattached_upload_ttl,
            sweep_every: config.file_sweep_interval,
        },
    ));
    let (outgoing, publishing) = cluster::Outgoing::start(bus, instance);
    let writer = MessageWriter::start(
        store.clone(),
        outgoing.clone(),
        config.message_writers as usize,
    );
    let state = AppState::new(Shared {
        store,
        writer,
        outgoing,
        instance,
        keys: TokenKeys::new(
            secret,
            config.algorithm,
            config.access_token_expire_minutes,
            config.refresh_token_expire_days,
        ),
        hub,
        sessions: Default::default(),
        files,
        send_limiter: per_user_limiter(config.max_send_rate, 2),
        search_limiter: per_user_limiter(config.max_search_rate, 5),
        search_timeout: config.search_timeout,
        hasher,
        auth_throttle: AuthThrottle::new(config.login_rate_per_account, config.auth_rate_per_ip),
        tasks: TaskTracker::new(),
        db_timeout: config.db_timeout,
        max_sockets_per_user: config.max_sockets_per_user as usize,
        max_frame_rate: config.max_frame_rate,
        ws_timings: state::SocketTimings {
            ping_every: config.ws_ping_interval,
            silence_limit: config.ws_idle_timeout,
            auth_timeout: config.ws_auth_timeout,
        },
        app_name: config.app_name.clone(),
        registration: config.registration,
        tls: config.tls_cert.is_some(),
        dummy_hash,
    });
    Ok((state, publishing))
}

/// What one connection may take: the caps on connections and the deadlines of a request.
fn connection_limits(config: &Config) -> listener::Limits {
    listener::Limits {
        max_connections: listener::connection_cap(config.max_connections),
        max_per_ip: config.max_connections_per_ip,
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        handler_timeout: config.db_timeout,
    }
}

/// `--tls-cert` and `--tls-key`, read.
pub fn load_tls(config: &Config) -> Result<Option<tls::Tls>, ServerError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(tls::Tls::from_files(cert, key)?)),
        (None, None) => Ok(None),
        _ => Err(ServerError::Config(
            "--tls-cert and --tls-key go together".into(),
        )),
    }
}

/// `listen`, with an error that says what to do about the usual causes.
pub fn listen_on(address: SocketAddr) -> Result<TcpListener, ServerError> {
    listen(address).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another server is listening there: stop it, or choose another with --bind)"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                " (no interface of this machine has that address)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            _ => "",
        };
        ServerError::Io {
            action: format!("cannot listen on {address}{hint}"),
            source,
        }
    })
}

/// A listening socket whose connections send small frames at once: accepted sockets inherit
/// TCP_NODELAY, and the server does its own coalescing (Nagle's algorithm held a sender's frames
/// back for up to 40 ms behind delayed acknowledgements, measured with the load generator).
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

/// `per_second` per user, with a burst of `burst` seconds' worth; None when 0 (no limit).
fn per_user_limiter(per_second: u32, burst: u32) -> Option<commands::messaging::SendLimiter> {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(std::num::NonZeroU32::new(burst).expect("a burst of seconds"));
    Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

async fn purge_expired_sessions(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match state.store.purge_expired_sessions().await {
            Ok(n) if n > 0 => tracing::info!(tokens = n, "purged expired refresh tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
    }
}

/// Once a minute: throttles forget keys that are back at a full burst (a guesser naming a new
/// account each time leaves a key each), and freed memory goes back to the system (glibc keeps
/// what tens of thousands of closed connections freed, measured: RSS stayed at its peak).
async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        for limiter in [&state.send_limiter, &state.search_limiter]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
        }
        state.auth_throttle.retain_recent();
        state.hasher.retain_recent();
        give_back_freed_memory();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory() {
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}

/// Everything `rtchat-server` does: find or start the database (and keep a managed one running),
/// serve until Ctrl-C or SIGTERM, then stop the managed database if we started one. A managed
/// database that dies and cannot be restarted ends the server with an error.
pub async fn run(config: Config) -> Result<(), ServerError> {
    raise_open_file_limit();
    // Before any other work: nothing is created or started for a server that cannot run.
    let doors = Doors::open(&config).await?;
    let data_dir = config.data_dir();
    let mut supervisor = None;
    let database = match &config.database_url {
        Some(url) => db::parse_url(url)?,
        None => {
            let pg_dir = data_dir.join("postgres");
            tracing::info!(dir = %pg_dir.display(), "starting the managed PostgreSQL");
            let options = postgres::Options::default();
            let start_options = options.clone();
            let pg = tokio::task::spawn_blocking(move || {
                ManagedPostgres::start(&pg_dir, &start_options)
            })
            .await
            .map_err(|e| ServerError::Config(format!("starting PostgreSQL: {e}")))??;
            let created = db::create_database(&pg.connect_config("postgres"), "rtchat").await;
            let cfg = pg.connect_config("rtchat");
            let watching = supervisor::Supervisor::start(pg, options);
            if let Err(e) = created {
                let _ = watching.stop().await;
                return Err(e.into());
            }
            supervisor = Some(watching);
            cfg
        }
    };
    let served = serve(doors, &config, &data_dir, database, supervisor.as_ref()).await;
    let stopped = match supervisor {
        Some(s) => s.stop().await.map_err(ServerError::from),
        None => Ok(()),
    };
    served.and(stopped)
}

async fn serve(
    doors: Doors,
    config: &Config,
    data_dir: &Path,
    database: tokio_postgres::Config,
    supervisor: Option<&supervisor::Supervisor>,
) -> Result<(), ServerError> {
    let secret = || match &config.secret_key {
        Some(key) => {
            if key.len() < 32 {
                tracing::warn!("SECRET_KEY is shorter than 32 bytes; tokens are easier to forge");
            }
            Ok(key.clone().into_bytes())
        }
        None => load_or_create_secret(data_dir),
    };
    let server = Server::on(doors, config, database, secret).await?;
    tracing::info!(
        address = %server.local_addr(),
        tls = server.tls().is_some(),
        "rtchat-server listening"
    );
    tokio::spawn(reload_on_hangup(server.tls().cloned()));
    let database_lost = supervisor.map(|s| s.gave_up());
    server
        .run_until(async move {
            match database_lost {
                Some(lost) => tokio::select! {
                    () = shutdown_signal() => {}
                    () = lost => {}
                },
                None => shutdown_signal().await,
            }
        })
        .await;
    Ok(())
}

/// SIGHUP rereads the TLS certificate and key (a renewal, e.g. by certbot's deploy hook). Handled
/// without TLS too: a `systemctl reload` must not end the server.
async fn reload_on_hangup(tls: Option<tls::Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        let Some(tls) = tls.clone() else {
            tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
            continue;
        };
        // Reading the files is blocking work: off the async workers.
        let reloaded = tokio::task::spawn_blocking(move || tls.reload().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match reloaded {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded; serving the old one")
            }
        }
    }
}

/// The signing key kept in the data directory: generated once, readable only by its owner.
fn load_or_create_secret(data_dir: &Path) -> Result<Vec<u8>, ServerError> {
    let path = data_dir.join("secret_key");
    let io = |action: &str| {
        let action = format!("{action} {}", path.display());
        move |source| ServerError::Io { action, source }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot read")(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(io("cannot create the directory of"))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io("cannot create"))?;
    file.write_all(key.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("cannot write"))?;
    tracing::info!(path = %path.display(), "generated a new secret key");
    Ok(key.into_bytes())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// Each connection is a file descriptor: take every descriptor the hard limit allows.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
