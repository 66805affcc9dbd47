//! The test harness (zero-to-production style): `spawn_app()` starts the real server on port 0 against
//! a fresh database on a real PostgreSQL, and gives the test an HTTP client and helpers.
//!
//! PostgreSQL comes from TEST_DATABASE_URL when it is set (an admin URL: each test creates its own
//! database there). Otherwise one private PostgreSQL is started for the whole test binary from the
//! binaries on the machine, with the server's own code, and stopped when the binary exits: by an
//! atexit hook on a normal or failed run, and by the parent-death signal if the process is killed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use rtchat::server::auth::{Claims, TokenKeys};
use rtchat::server::database::db;
use rtchat::server::database::postgres::{ManagedPostgres, Options};
use rtchat::server::{Config, Server};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const SECRET: &str = "test-secret-key-of-a-reasonable-length-0123456789";
pub const PASSWORD: &str = "correct horse battery";

enum TestDatabase {
    Managed {
        pg: Mutex<Option<ManagedPostgres>>,
        dir: PathBuf,
    },
    External(tokio_postgres::Config),
}

static DATABASE: OnceLock<TestDatabase> = OnceLock::new();

extern "C" fn stop_test_postgres() {
    if let Some(TestDatabase::Managed { pg, dir }) = DATABASE.get() {
        if let Some(mut pg) = pg.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Directories of earlier runs whose process is gone (killed before its atexit hook ran).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("rtchat-test-")) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn database() -> &'static TestDatabase {
    DATABASE.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return TestDatabase::External(db::parse_url(&url).expect("TEST_DATABASE_URL"));
        }
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!("rtchat-test-{}", std::process::id()));
        let options = Options {
            fsync: false,
            max_connections: 400,
            settings: vec!["shared_preload_libraries=pg_stat_statements".into()],
        };
        let pg = ManagedPostgres::start(&dir.join("pg"), &options)
            .unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e}"));
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_postgres);
        }
        TestDatabase::Managed {
            pg: Mutex::new(Some(pg)),
            dir,
        }
    })
}

/// A connection configuration for the admin database (where test databases are created).
fn admin_config() -> tokio_postgres::Config {
    match database() {
        TestDatabase::External(cfg) => cfg.clone(),
        TestDatabase::Managed { pg, .. } => pg
            .lock()
            .unwrap()
            .as_ref()
            .expect("test PostgreSQL is running")
            .connect_config("postgres"),
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`, or `https://` when the server terminates TLS.
    pub address: String,
    /// Where /metrics is served when the config gives it a listener of its own.
    pub metrics_address: Option<String>,
    /// The server's shared state, for checks a client cannot make (open connections).
    pub state: rtchat::server::state::AppState,
    pub client: reqwest::Client,
    pub db: tokio_postgres::Config,
    pub keys: TokenKeys,
    /// What the test's clients trust when the server speaks TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Where this test's database was made, to drop it when the test ends.
    admin: tokio_postgres::Config,
    /// The server's own TLS, when it has one (to reload its certificate).
    pub server_tls: Option<rtchat::server::http::tls::Tls>,
    config: Config,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// The first instance on a database drops it at the end; other instances leave it.
    owns_database: bool,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub access: String,
    pub refresh: String,
}

/// The texts of a history page, oldest first.
pub fn contents(page: &Value) -> Vec<String> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.bcrypt_cost = 4;
    config.db_pool_size = 4;
    // Tests register and log in many users at once from one address.
    config.max_hashing_queue = 256;
    config.auth_rate_per_ip = 0;
    config.login_rate_per_account = 0;
    config.secret_key = Some(SECRET.into());
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    spawn_app_on(admin_config(), config).await
}

/// A server on a fresh database of the PostgreSQL that `admin` reaches.
pub async fn spawn_app_on(admin: tokio_postgres::Config, config: Config) -> TestApp {
    // TEST_LOG=1 shows the server's log (with --nocapture): what it did before a test failed.
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("rtchat=debug")
            .with_test_writer()
            .try_init();
    }
    let name = format!("rtchat_test_{}", Uuid::new_v4().simple());
    db::create_database(&admin, &name)
        .await
        .expect("create test database");
    let mut database = admin.clone();
    database.dbname(&name);
    spawn_on_database(admin, database, config).await
}

/// A server on an existing database.
async fn spawn_on_database(
    admin: tokio_postgres::Config,
    database: tokio_postgres::Config,
    config: Config,
) -> TestApp {
    let server = Server::bind(&config, database.clone(), SECRET.as_bytes())
        .await
        .expect("server starts");
    let scheme = if server.tls().is_some() {
        "https"
    } else {
        "http"
    };
    let address = format!("{scheme}://{}", server.local_addr());
    let metrics_address = server.metrics_addr().map(|a| format!("http://{a}"));
    let state = server.state().clone();
    let server_tls = server.tls().cloned();
    let mut config = config;
    config.bind = server.local_addr();
    let running = Some(run(server));
    TestApp {
        address,
        metrics_address,
        state,
        client: http().build().unwrap(),
        tls: None,
        admin: admin.clone(),
        server_tls,
        db: database,
        keys: TokenKeys::new(
            SECRET.as_bytes(),
            config.algorithm,
            config.access_token_expire_minutes,
            config.refresh_token_expire_days,
        ),
        config,
        running,
        owns_database: true,
    }
}

fn run(server: Server) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    (tx, task)
}

/// A test's database is dropped when it ends, so that runs against a shared PostgreSQL
/// (`TEST_DATABASE_URL`) leave nothing behind. From a thread of its own: a drop cannot await, and
/// the test's runtime may be going away.
impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.owns_database {
            return;
        }
        let mut admin = self.admin.clone();
        admin.connect_timeout(std::time::Duration::from_secs(2));
        let Some(name) = self.db.get_dbname().map(str::to_string) else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = admin.connect(tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                let quoted = name.replace('"', "\"\"");
                client
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"
                    ))
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A response as a user sees it: status and JSON body (every body must be JSON, errors included).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would: sockets are closed, the port is freed.
    pub async fn stop_server(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Starts the server again on the same address and database.
    pub async fn start_server(&mut self) {
        let server = Server::bind(&self.config, self.db.clone(), SECRET.as_bytes())
            .await
            .expect("server restarts");
        self.state = server.state().clone();
        self.running = Some(run(server));
    }

    /// Another rtchat-server on this one's database and bus, as a second process would be.
    pub async fn another_instance(&self) -> TestApp {
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        let mut other = spawn_on_database(self.admin.clone(), self.db.clone(), config).await;
        other.owns_database = false;
        other
    }

    /// The admin connection of this test's PostgreSQL.
    pub fn admin(&self) -> tokio_postgres::Config {
        self.admin.clone()
    }

    /// Waits until exactly `n` WebSockets are registered with the server (clients connect in
    /// their own time; tests wait for the state, not for a clock).
    pub async fn wait_for_sockets(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WS_WAIT;
        while self.state.hub.connection_count() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} sockets, not {n}",
                self.state.hub.connection_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            status.as_u16() < 500 || status == StatusCode::SERVICE_UNAVAILABLE,
            "server error {status}: {body}"
        );
        if !status.is_success() {
            assert!(body.get("detail").is_some(), "error without detail: {body}");
            assert!(
                body.get("message").is_none(),
                "error with a message key: {body}"
            );
        }
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: &'static str) -> Reply {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut req = self.client.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut req = self.client.delete(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn try_register(&self, username: &str) -> Reply {
        self.post(
            "/auth/register",
            None,
            json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
                "full_name": format!("{username} Tester"),
            }),
        )
        .await
    }

    pub async fn register(&self, username: &str) -> TestUser {
        let r = self.try_register(username).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        TestUser {
            id: r.body["user"]["id"].as_i64().unwrap(),
            access: r.body["tokens"]["access_token"].as_str().unwrap().into(),
            refresh: r.body["tokens"]["refresh_token"].as_str().unwrap().into(),
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post(
            "/auth/login",
            None,
            json!({"username": login, "password": password}),
        )
        .await
    }

    /// Sends a direct message and returns the stored message.
    pub async fn dm(&self, from: &TestUser, to: &TestUser, content: &str) -> Value {
        let r = self
            .post(
                "/messages/send",
                Some(&from.access),
                json!({"recipient_id": to.id, "content": content}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["data"].clone()
    }

    pub async fn create_group(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> i64 {
        let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
        let r = self
            .post(
                "/groups/create",
                Some(&owner.access),
                json!({"name": name, "member_ids": ids}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["group"]["id"].as_i64().unwrap()
    }

    pub async fn group_send(&self, from: &TestUser, group: i64, content: &str) -> Reply {
        self.post(
            "/groups/send",
            Some(&from.access),
            json!({"group_id": group, "content": content}),
        )
        .await
    }

    /// An access token for `user` that expired an hour ago, signed with the server's key.
    pub fn expired_token(&self, user: &TestUser) -> String {
        let claims = self.claims_of(&user.access);
        let now = chrono::Utc::now().timestamp();
        self.keys
            .sign_claims(&Claims {
                exp: now - 3600,
                iat: now - 7200,
                ..claims
            })
            .unwrap()
    }

    /// The claims of a token we issued.
    pub fn claims_of(&self, token: &str) -> Claims {
        self.keys
            .verify_ignoring_expiry(token, rtchat::server::auth::TokenKind::Access)
            .or_else(|_| {
                self.keys
                    .verify_ignoring_expiry(token, rtchat::server::auth::TokenKind::Refresh)
            })
            .expect("a token of ours")
    }

    /// A direct connection to this test's database, for checks no API exposes.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = self.db.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }
}

// ----- WebSocket -----

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking JSON frames, with a timeout on every wait.
pub struct WsClient {
    stream: WsStream,
}

pub const WS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl TestApp {
    pub fn ws_url(&self, path: &str) -> String {
        let base = self
            .address
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}{path}")
    }

    /// Makes the test's HTTP and WebSocket clients trust `ca` (for a server with TLS).
    pub fn trust(&mut self, ca: &TestCa) {
        let config = ca.client_config();
        self.client = http()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
            .build()
            .unwrap();
        self.tls = Some(config);
    }

    /// Connects at `/ws/{token}` and reads the `connected` frame.
    pub async fn ws(&self, token: &str) -> WsClient {
        let mut client = self.ws_raw(&format!("/ws/{token}")).await;
        let hello = client.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        client
    }

    /// Connects without reading anything.
    pub async fn ws_raw(&self, path: &str) -> WsClient {
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.ws_url(path),
            None,
            false,
            connector,
        )
        .await
        .expect("websocket connects");
        WsClient { stream }
    }
}

impl WsClient {
    pub fn from_stream(stream: WsStream) -> Self {
        WsClient { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        assert!(self.try_send_text(text).await, "frame sent");
    }

    /// Sends a frame; false if the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .is_ok()
    }

    /// The next JSON frame (pings skipped). Panics on close or after `WS_WAIT`.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(WS_WAIT).await {
            Some(v) => v,
            None => panic!("no frame within {WS_WAIT:?}"),
        }
    }

    /// The next JSON frame within `wait`, or None (on silence or close).
    pub async fn next_frame(&mut self, wait: std::time::Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match next.ok()? {
                Message::Text(t) => return Some(serde_json::from_str(&t).expect("JSON frame")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping presence and other unrelated events.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
            assert!(
                !(kind == "new_message" && frame["type"] == "error"),
                "error while waiting for a message: {frame}"
            );
        }
    }

    /// Asserts that no frame of type `kind` arrives within `wait`.
    pub async fn expect_no(&mut self, kind: &str, wait: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(frame) = self
            .next_frame(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            assert_ne!(frame["type"], kind, "unexpected {frame}");
        }
    }

    /// Reads until the server closes; returns the close code (None: closed without a code).
    pub async fn close_code(&mut self) -> Option<u16> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Err(_) => panic!("not closed within {WS_WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Every JSON frame until the server closes, and the close code (None: closed without a
    /// close frame, or reset).
    pub async fn frames_until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Err(_) => panic!("not closed within {WS_WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return (frames, None),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return (frames, frame.map(|f| u16::from(f.code)));
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    frames.push(serde_json::from_str(&t).expect("JSON frame"))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// A round trip: proves the socket is open and answering.
    pub async fn ping(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let pong = self.recv_type("pong").await;
        assert_eq!(pong, json!({"type": "pong"}));
    }
}

/// An HTTP client builder. reqwest's rustls needs a process-wide crypto provider, and only ring is
/// built: installed here, before any client is made.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A certificate authority made for one test, and a server certificate it signed for 127.0.0.1 and
/// localhost, as PEM files in a directory of their own.
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(format!("rtchat-ca-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rtchat test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca = TestCa {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            ca_der: ca_cert.der().to_vec(),
            dir,
        };
        std::fs::write(&ca.ca_file, ca_cert.pem()).unwrap();
        std::fs::write(&ca.cert_file, cert.pem()).unwrap();
        std::fs::write(&ca.key_file, key.serialize_pem()).unwrap();
        ca
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        rtchat::client::tls::trusting(roots).unwrap()
    }

    /// The server configuration that serves this CA's certificate.
    pub fn server_config(&self) -> Config {
        let mut config = test_config();
        config.tls_cert = Some(self.cert_file.clone());
        config.tls_key = Some(self.key_file.clone());
        config
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server that terminates TLS with a certificate of `ca`, and clients that trust it.
pub async fn spawn_tls_app(ca: &TestCa) -> TestApp {
    let mut app = spawn_app_with(ca.server_config()).await;
    app.trust(ca);
    app
}

/// `n` instances of rtchat-server on one fresh database, on `config`'s bus.
pub async fn spawn_cluster(n: usize, config: Config) -> Vec<TestApp> {
    let first = spawn_app_with(config).await;
    let mut instances = Vec::with_capacity(n);
    for _ in 1..n {
        instances.push(first.another_instance().await);
    }
    instances.insert(0, first);
    instances
}

static NATS: OnceLock<Option<(String, u32)>> = OnceLock::new();

extern "C" fn stop_test_nats() {
    if let Some(Some((_, pid))) = NATS.get() {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
}

/// A NATS server for this test binary (`nats-server` from the machine, on a free loopback port),
/// or None when it is not installed (CI installs it and sets RTCHAT_REQUIRE_NATS=1).
pub fn nats_url() -> Option<String> {
    NATS.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Started from a thread that lives as long as the process: the parent-death signal follows
        // the thread that spawned the child, and a test's thread ends with its test.
        let (started, child) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command = std::process::Command::new("nats-server");
            command
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: prctl only asks for a signal when this thread's process dies.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let spawned = command.spawn();
            let ok = spawned.is_ok();
            let _ = started.send(spawned);
            if ok {
                loop {
                    std::thread::park();
                }
            }
        });
        let child = match child.recv().expect("the NATS thread answers") {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("RTCHAT_REQUIRE_NATS").is_none(),
                    "nats-server is required here but cannot start: {e}"
                );
                eprintln!("nats-server is not installed; skipping the NATS tests");
                return None;
            }
        };
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_nats);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some((format!("nats://127.0.0.1:{port}"), child.id()))
    })
    .as_ref()
    .map(|(url, _)| url.clone())
}
