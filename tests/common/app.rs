//! A running server for one test (`TestApp`), on a database of its own, and the HTTP helpers tests
//! share: one per repeated action (register, login, refresh, send, create a group, ...).

use std::sync::Arc;

use reqwest::StatusCode;
use rtchat::proto::Message;
use rtchat::server::auth::{Claims, TokenKeys};
use rtchat::server::{Config, Server};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

use rtchat::server::database::db;

use super::database::admin_config;
use super::ws::WS_WAIT;
use super::{PASSWORD, SECRET};

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
    /// The CA file behind `tls`, for the library's client.
    pub ca_file: Option<std::path::PathBuf>,
    /// Where this test's database was made, to drop it when the test ends.
    admin: tokio_postgres::Config,
    /// The server's own TLS, when it has one (to reload its certificate).
    pub server_tls: Option<rtchat::server::http::tls::Tls>,
    pub config: Config,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// The first instance on a database drops it at the end; other instances leave it.
    owns_database: bool,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub name: String,
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
    // Most tests register their people freely; tests/api/team.rs starts invite-only servers.
    config.registration = rtchat::server::auth::Registration::Open;
    // Each server its own file store, removed with the run's directory.
    let files = std::env::temp_dir()
        .join(format!("rtchat-test-{}", std::process::id()))
        .join(format!("files-{}", Uuid::new_v4().simple()));
    config.file_store = Some(files.display().to_string());
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
        ca_file: None,
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
        let req = self.client.get(self.url(path));
        self.send(bearer(req, token)).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let req = self.client.post(self.url(path)).json(&body);
        self.send(bearer(req, token)).await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: &'static str) -> Reply {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.send(bearer(req, token)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let req = self.client.patch(self.url(path)).json(&body);
        self.send(bearer(req, token)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let req = self.client.delete(self.url(path)).json(&body);
        self.send(bearer(req, token)).await
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

    /// A new account, registered through the library's client.
    pub async fn register(&self, username: &str) -> TestUser {
        let accounts = rtchat::client::Api::new(
            &self.address,
            rtchat::client::SessionStore::in_memory(),
            self.ca_file.clone(),
        )
        .expect("a client");
        let full_name = format!("{username} Tester");
        let email = format!("{username}@example.com");
        let reply = accounts
            .register(username, &email, PASSWORD, Some(&full_name))
            .await
            .unwrap_or_else(|e| panic!("registering {username}: {e}"));
        TestUser {
            id: reply.user.id.into(),
            name: username.into(),
            access: reply.tokens.access_token,
            refresh: reply.tokens.refresh_token,
        }
    }

    /// The library's typed client, signed in as `user` (its login kept in memory).
    pub fn api(&self, user: &TestUser) -> rtchat::client::Api {
        let session = rtchat::client::Session {
            username: user.name.clone(),
            user_id: user.id as i32,
            access_token: user.access.clone(),
            refresh_token: user.refresh.clone(),
            ca_cert: None,
        };
        rtchat::client::Api::with_session(&self.address, session, self.ca_file.clone())
            .expect("a client")
    }

    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post(
            "/auth/login",
            None,
            json!({"username": login, "password": password}),
        )
        .await
    }

    /// `POST /auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post(
            "/auth/refresh",
            None,
            json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Sends a direct message and returns the stored message.
    /// Sends a direct message through the library's client; the stored message.
    pub async fn dm(&self, from: &TestUser, to: &TestUser, content: &str) -> Message {
        let client_id = Uuid::new_v4().to_string();
        let draft = rtchat::client::Draft {
            content,
            client_id: &client_id,
            reply_to: None,
            attachments: &[],
        };
        self.api(from)
            .send_direct(to.id as i32, &draft)
            .await
            .unwrap_or_else(|e| panic!("a direct message: {e}"))
            .data
    }

    /// Creates a group through the library's client; its id.
    pub async fn create_group(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> i64 {
        let ids: Vec<i32> = members.iter().map(|m| m.id as i32).collect();
        let reply = self
            .api(owner)
            .create_group(name, &ids)
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        reply.group.id.into()
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

/// `request` with `token` as its bearer, if there is one.
fn bearer(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
}

/// Polls `check` every 10 ms until it holds, for at most `WS_WAIT`; whether it came to hold. For
/// waiting on something the server does a moment after the test's call returns, instead of a
/// fixed sleep.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WS_WAIT;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// An HTTP client builder. reqwest's rustls needs a process-wide crypto provider, and only ring is
/// built: installed here, before any client is made.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
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
