//! The `rtchat-server` binary with its own managed PostgreSQL, as an operator runs it: its
//! postmaster killed, the server killed and started again at once, and SIGTERM while a client has
//! sent half a request and others hold WebSockets.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rtchat::proto::{LiveMessage, ServerFrame};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::{PASSWORD, TestCa, WsClient};

/// A data directory of the test's own, removed (with any PostgreSQL left in it stopped) at the end.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        crate::remove_stale("rtchat-bin-");
        let dir = std::env::temp_dir().join(format!("rtchat-bin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(logs) = std::fs::read_dir(std::env::temp_dir()) {
            let prefix = self.0.file_name().unwrap().to_string_lossy().into_owned();
            for log in logs.flatten() {
                if log
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{prefix}."))
                {
                    let _ = std::fs::remove_file(log.path());
                }
            }
        }
        for pid in postgres_processes(&self.0) {
            // SAFETY: kill(2) on a leftover PostgreSQL of this test's directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SIGSTOP to a data directory's postmaster and each of its children; SIGCONT when dropped.
struct Frozen(Vec<i32>);

fn frozen_postgres(dir: &DataDir) -> Frozen {
    let postmaster = postmaster_pid(dir).expect("a running PostgreSQL");
    let pids = crate::postmaster_and_children(postmaster);
    crate::signal_all(&pids, libc::SIGSTOP);
    Frozen(pids)
}

impl Drop for Frozen {
    fn drop(&mut self) {
        crate::signal_all(&self.0, libc::SIGCONT);
    }
}

/// PostgreSQL processes whose command line names `dir`.
fn postgres_processes(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && cmdline.contains("postgres") && cmdline.contains(&needle)
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    base: String,
    log: PathBuf,
}

fn start(dir: &DataDir, port: u16, extra: &[&str]) -> Running {
    let log = dir.0.with_extension(format!("{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rtchat-server"))
        .args(["--data-dir", dir.0.to_str().unwrap()])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--bcrypt-cost", "4"])
        .args(["--registration", "open"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("SECRET_KEY")
        .env("RUST_LOG", "rtchat=info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("rtchat-server starts");
    Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

/// `start`, and wait until it answers /health (initdb on first start takes a while).
async fn start_healthy(dir: &DataDir, port: u16, extra: &[&str]) -> Running {
    let server = start(dir, port, extra);
    assert!(
        server.healthy_within(Duration::from_secs(120)).await,
        "{}",
        server.log()
    );
    server
}

impl Running {
    async fn healthy_within(&self, limit: Duration) -> bool {
        let client = crate::common::http()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/health", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = crate::common::http()
            .build()
            .unwrap()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or_default())
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the child we spawned.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the process to exit; its status, or None if it is still running after `limit`.
    async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Registers `name`; the reply (with its tokens).
    async fn register(&self, name: &str) -> Value {
        let (status, reply) = self
            .post(
                "/auth/register",
                json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        reply
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log shows `text` (a line is written just after what it reports happened).
    async fn log_shows(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log().contains(text) {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid in the data directory's lock file, if there is one.
fn postmaster_pid(dir: &DataDir) -> Option<i32> {
    std::fs::read_to_string(dir.0.join("postgres/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_postmaster_is_restarted_and_nothing_is_lost() {
    let dir = DataDir::new("postmaster");
    let mut server = start_healthy(&dir, free_port(), &[]).await;
    server.register("keeper").await;

    let old = postmaster_pid(&dir).unwrap();
    // SAFETY: kill(2) on the server's PostgreSQL.
    unsafe { libc::kill(old, libc::SIGKILL) };
    // Its backends answer for a moment after it is gone: wait for the new one first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while postmaster_pid(&dir).is_none_or(|pid| pid == old) {
        assert!(
            Instant::now() < deadline,
            "no new postmaster: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        server.healthy_within(Duration::from_secs(60)).await,
        "healthy again: {}",
        server.log()
    );
    let (status, _) = server
        .post(
            "/auth/login",
            json!({"username": "keeper", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the account outlived the crash");
    // The supervisor says so once its own readiness check passes, which may be just after the
    // pool's first new connection.
    assert!(
        server.log_shows("is running again").await,
        "{}",
        server.log()
    );
    assert!(server.log().contains("exited unexpectedly; restarting it"));

    server.signal(libc::SIGTERM);
    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{:?} {}",
        status,
        server.log()
    );
    assert!(
        postgres_processes(&dir.0).is_empty(),
        "PostgreSQL stopped too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_started_at_once_waits_for_its_old_postgres() {
    let dir = DataDir::new("restart");
    let port = free_port();
    for round in 0..3 {
        let mut server = start(&dir, port, &[]);
        assert!(
            server.healthy_within(Duration::from_secs(120)).await,
            "round {round}: {}",
            server.log()
        );
        server.signal(libc::SIGKILL);
        assert!(server.exited_within(Duration::from_secs(5)).await.is_some());
    }
    let mut last = start_healthy(&dir, port, &[]).await;
    last.signal(libc::SIGTERM);
    assert!(
        last.exited_within(Duration::from_secs(30))
            .await
            .is_some_and(|s| s.success())
    );
    assert!(postgres_processes(&dir.0).is_empty());
}

/// `kill -9` of the server and its postmaster at once, then a start half a second later: the
/// old postmaster is a zombie until whoever adopted it collects it, and its backends linger a
/// moment. The new server waits for them and starts; its data is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_and_its_postgres_killed_together_start_again() {
    let dir = DataDir::new("killboth");
    let port = free_port();
    let mut server = start_healthy(&dir, port, &[]).await;
    server.register("keeper").await;
    for round in 0..3 {
        let postmaster = postmaster_pid(&dir).expect("a postmaster");
        server.signal(libc::SIGKILL);
        // SAFETY: kill(2) on the server's own PostgreSQL.
        unsafe { libc::kill(postmaster, libc::SIGKILL) };
        assert!(server.exited_within(Duration::from_secs(5)).await.is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
        server = start(&dir, port, &[]);
        assert!(
            server.healthy_within(Duration::from_secs(60)).await,
            "round {round}: {}",
            server.log()
        );
    }
    let (status, _) = server
        .post(
            "/auth/login",
            json!({"username": "keeper", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.signal(libc::SIGTERM);
    assert!(
        server
            .exited_within(Duration::from_secs(30))
            .await
            .is_some_and(|s| s.success())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_in_bounded_time_whatever_clients_do() {
    let dir = DataDir::new("sigterm");
    let port = free_port();
    // From nothing: an empty data directory gets its PostgreSQL and a signing key only its owner
    // can read.
    assert!(!dir.0.exists());
    let mut server = start_healthy(&dir, port, &["--shutdown-timeout", "3s"]).await;
    assert!(dir.0.join("postgres/PG_VERSION").exists());
    let key = std::fs::metadata(dir.0.join("secret_key")).expect("a generated secret key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    let registered = server.register("busy").await;
    let token = registered["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let mut sockets = Vec::new();
    for _ in 0..5 {
        let url = format!("ws://127.0.0.1:{port}/ws/{token}");
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut ws = WsClient::from_stream(stream);
        assert_eq!(ws.recv().await["type"], "connected");
        sockets.push(ws);
    }
    // Half a request: headers promise a body that never comes.
    let mut half = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    half.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    // And a client busy sending on one socket.
    sockets[0].send(json!({"type": "ping"})).await;

    let t0 = Instant::now();
    server.signal(libc::SIGTERM);
    for ws in &mut sockets {
        assert_eq!(
            ws.close_code().await,
            Some(1001),
            "a close frame, not a reset"
        );
    }
    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        server.log()
    );
    // The shutdown timeout and PostgreSQL's own fast shutdown, not the half request, bound it.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(
        postgres_processes(&dir.0).is_empty(),
        "PostgreSQL stopped too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_cannot_be_restarted_ends_the_server_non_zero() {
    let dir = DataDir::new("unrecoverable");
    let mut server = start_healthy(&dir, free_port(), &["--shutdown-timeout", "2s"]).await;
    // A setting PostgreSQL refuses: every restart fails.
    let conf = dir.0.join("postgres/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nmax_connections = 'none at all'\n");
    std::fs::write(&conf, text).unwrap();
    // SAFETY: kill(2) on the server's PostgreSQL.
    unsafe { libc::kill(postmaster_pid(&dir).unwrap(), libc::SIGKILL) };
    // The backoff adds up to about 30 s before the server gives up.
    let status = server.exited_within(Duration::from_secs(90)).await;
    let log = server.log();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {log}");
    assert!(log.contains("restarting PostgreSQL failed"), "{log}");
    assert!(
        log.contains("cannot restart the managed PostgreSQL; giving up"),
        "{log}"
    );
    assert!(postgres_processes(&dir.0).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_a_line_per_request_with_its_id_and_never_a_secret() {
    let dir = DataDir::new("logs");
    let port = free_port();
    let mut server =
        start_healthy(&dir, port, &["--log-format", "json", "--db-timeout", "1s"]).await;
    let registered = server.register("logged").await;
    let token = registered["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = crate::common::http()
        .build()
        .unwrap()
        .get(format!("{}/auth/me", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(me.headers()["x-request-id"], "trace-me-42", "echoed");
    let anonymous = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["x-request-id"].len(),
        32,
        "one made up when none is sent"
    );
    let (stream, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/{token}"))
        .await
        .unwrap();
    let mut ws = WsClient::from_stream(stream);
    ws.recv().await;
    drop(ws);
    // A base URL ending in `/` doubles the slash: still the WebSocket.
    let (stream, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}//ws/{token}"))
            .await
            .unwrap();
    let mut ws = WsClient::from_stream(stream);
    assert_eq!(ws.recv().await["type"], "connected");
    drop(ws);
    // Mistyped and hostile paths that carry the token anywhere: 404s, logged without it.
    for path in [
        format!("/./ws/{token}"),
        format!("/WS/{token}"),
        format!("/%77s/{token}"),
        format!("/ws%2f{token}"),
        format!("/x/../ws/{token}"),
    ] {
        // Sent as written (a URL parser would resolve the dots).
        let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        raw.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut reply = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut reply)
            .await
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 404"), "{path}: {reply}");
    }

    // A request that fails inside: PostgreSQL frozen, the handler's deadline passes.
    let frozen = frozen_postgres(&dir);
    let failed = crate::common::http()
        .build()
        .unwrap()
        .get(format!("{}/groups/my-groups", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "fails-inside")
        .send()
        .await
        .unwrap();
    drop(frozen);
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);

    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal(libc::SIGTERM);
    server.exited_within(Duration::from_secs(30)).await;

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let me_line = lines
        .iter()
        .find(|l| l["fields"]["request_id"] == "trace-me-42")
        .expect("the request's line");
    let fields = &me_line["fields"];
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["path"], "/auth/me");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["user_id"], registered["user"]["id"]);
    assert!(fields["micros"].is_u64());
    assert!(fields["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    // A socket's lines carry its span: the request that opened it, the user, the connection.
    let opened = lines
        .iter()
        .find(|l| l["fields"]["message"] == "websocket opened")
        .expect("the socket's opening line");
    assert_eq!(opened["span"]["name"], "ws", "{opened}");
    assert_eq!(
        opened["span"]["user_id"], registered["user"]["id"],
        "{opened}"
    );
    assert!(opened["span"]["conn"].is_u64(), "{opened}");
    let request = &opened["spans"][0];
    assert_eq!(request["name"], "request", "{opened}");
    // The request is the upgrade whose access line says /ws/<token>.
    let upgrade = lines
        .iter()
        .find(|l| l["fields"]["path"] == "/ws/<token>")
        .expect("the upgrade's access line");
    assert_eq!(
        request["request_id"], upgrade["fields"]["request_id"],
        "{opened}"
    );
    assert_eq!(request["user_id"], registered["user"]["id"], "{opened}");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "websocket closed by the client")
    );
    // The failed request's one line says why, at warning level; the client was told nothing of it.
    let failed_line = lines
        .iter()
        .find(|l| l["fields"]["request_id"] == "fails-inside")
        .expect("the failed request's line");
    assert_eq!(failed_line["level"], "WARN", "{failed_line}");
    assert_eq!(failed_line["fields"]["status"], 503);
    assert!(
        failed_line["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("database")),
        "{failed_line}"
    );
    assert!(!log.contains(&token), "no token, ever");
    assert!(!log.contains(PASSWORD), "no password, ever");
    assert!(!log.contains('\u{1b}'), "no colour codes in a file");
}

/// Runs the binary to its end; its exit code and stderr.
async fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rtchat-server"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_mistakes_get_one_clear_line_before_any_work() {
    let dir = DataDir::new("mistakes");
    let port = free_port();
    let mut first = start_healthy(&dir, port, &[]).await;

    // The port is taken: said at once, and nothing is created.
    let other = DataDir::new("mistakes-other");
    let taken = format!("127.0.0.1:{port}");
    let (code, err) = run_to_end(
        &["--bind", &taken, "--data-dir", other.0.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot listen on {taken}")), "{err}");
    assert_eq!(
        err.matches("Address already in use").count(),
        1,
        "said once: {err}"
    );
    assert!(
        !other.0.exists(),
        "no work done before the port was checked"
    );

    // The data directory belongs to a running server.
    let free = format!("127.0.0.1:{}", free_port());
    let (code, err) = run_to_end(
        &["--bind", &free, "--data-dir", dir.0.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("is in use by another rtchat-server"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A bad value in the environment names its variable.
    let (code, err) = run_to_end(&["--bind", &free], &[("RTCHAT_DB_POOL_SIZE", "lots")]).await;
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("rtchat-server: RTCHAT_DB_POOL_SIZE: invalid value 'lots'"),
        "{err}"
    );

    // As root, a data directory the postgres user cannot reach is named before initdb runs.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let locked = DataDir::new("mistakes-locked");
        std::fs::create_dir_all(&locked.0).unwrap();
        std::fs::set_permissions(
            &locked.0,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let inside = locked.0.join("data");
        let (code, err) = run_to_end(
            &["--bind", &free, "--data-dir", inside.to_str().unwrap()],
            &[],
        )
        .await;
        assert_eq!(code, Some(1));
        assert!(err.contains("cannot enter"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // An unusable certificate: named, before any work.
    let missing = other.0.join("cert.pem");
    let (code, err) = run_to_end(
        &[
            "--bind",
            &free,
            "--data-dir",
            other.0.to_str().unwrap(),
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            missing.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("--tls-cert"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !other.0.exists(),
        "no work done before the certificate was read"
    );

    // A bad CORS origin and an unreachable NATS bus: named before PostgreSQL, initdb or a key.
    let unreachable_nats = format!("nats://127.0.0.1:{}", free_port());
    for (flag, value, says) in [
        ("--cors-origins", "chat.example.com", "invalid CORS origin"),
        ("--bus", unreachable_nats.as_str(), "the NATS bus at"),
        ("--metrics-bind", taken.as_str(), "cannot listen on"),
    ] {
        let (code, err) = run_to_end(
            &[
                "--bind",
                &free,
                "--data-dir",
                other.0.to_str().unwrap(),
                flag,
                value,
            ],
            &[],
        )
        .await;
        assert_eq!(code, Some(1), "{flag}: {err}");
        assert!(err.contains(says), "{flag}: {err}");
        assert_eq!(err.lines().count(), 1, "{flag}: {err}");
        assert!(
            !other.0.exists(),
            "{flag}: no data directory, database or key made for a server that cannot run"
        );
    }

    // SIGHUP (`systemctl reload`) without TLS: nothing to reload, and the server carries on.
    first.signal(libc::SIGHUP);
    assert!(
        first.log_shows("nothing to reload").await,
        "{}",
        first.log()
    );
    assert!(first.healthy_within(Duration::from_secs(5)).await);

    // A clean stop is not news: no warning in its log.
    first.signal(libc::SIGTERM);
    first.exited_within(Duration::from_secs(30)).await;
    let log = first.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(warnings.is_empty(), "a clean stop warns: {warnings:?}");
}

/// A client of the binary's https:// port that trusts `ca` only.
fn trusting(ca: &TestCa) -> reqwest::Client {
    crate::common::http()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&ca.client_config()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn answers_within(client: &reqwest::Client, url: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await
            && r.status() == StatusCode::OK
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_renewed_certificate_without_a_restart() {
    let dir = DataDir::new("tls");
    let port = free_port();
    let first = TestCa::new();
    let (cert, key) = (
        first.cert_file.to_str().unwrap(),
        first.key_file.to_str().unwrap(),
    );
    let mut server = start(&dir, port, &["--tls-cert", cert, "--tls-key", key]);
    let health = format!("https://127.0.0.1:{port}/health");
    assert!(
        answers_within(&trusting(&first), &health, Duration::from_secs(120)).await,
        "{}",
        server.log()
    );

    let renewed = TestCa::new();
    std::fs::copy(&renewed.cert_file, &first.cert_file).unwrap();
    std::fs::copy(&renewed.key_file, &first.key_file).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        answers_within(&trusting(&renewed), &health, Duration::from_secs(10)).await,
        "{}",
        server.log()
    );
    assert!(trusting(&first).get(&health).send().await.is_err());
    assert!(
        server.log_shows("TLS certificate reloaded").await,
        "{}",
        server.log()
    );

    server.signal(libc::SIGTERM);
    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// Three `rtchat-server` processes on one database (the first one's managed PostgreSQL). alice
/// listens on B while bob sends through A; B is killed (SIGKILL: no goodbye, whatever it had in
/// flight). alice reconnects to C and syncs from the last cursor she saw: every message once, in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_fan_out_loses_and_doubles_nothing() {
    let (dir_a, dir_b, dir_c) = (
        DataDir::new("cluster-a"),
        DataDir::new("cluster-b"),
        DataDir::new("cluster-c"),
    );
    let a = start_healthy(&dir_a, free_port(), &["--max-send-rate", "0"]).await;
    let secret = std::fs::read_to_string(dir_a.0.join("secret_key")).expect("the generated key");
    let database = format!(
        "host={} user=rtchat dbname=rtchat",
        dir_a.0.join("postgres").display()
    );
    let joined = [
        "--database-url",
        &database,
        "--secret-key",
        secret.trim(),
        "--max-send-rate",
        "0",
    ];
    let (port_b, port_c) = (free_port(), free_port());
    let mut b = start_healthy(&dir_b, port_b, &joined).await;
    let c = start_healthy(&dir_c, port_c, &joined).await;

    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let token = |user: &Value| user["tokens"]["access_token"].as_str().unwrap().to_string();
    let (alice_token, bob_token) = (token(&alice), token(&bob));
    let http = crate::common::http().build().unwrap();
    let created: Value = http
        .post(format!("{}/groups/create", a.base))
        .bearer_auth(&bob_token)
        .json(&json!({"name": "ops", "member_ids": [alice["user"]["id"]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = created["group"]["id"].clone();

    let connect = |port: u16| {
        let url = format!("ws://127.0.0.1:{port}/ws/{alice_token}");
        async move {
            let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let mut ws = WsClient::from_stream(stream);
            assert_eq!(ws.recv().await["type"], "connected");
            ws
        }
    };
    let mut live = connect(port_b).await;

    const TOTAL: usize = 300;
    let sender = {
        let (http, url) = (http.clone(), format!("{}/groups/send", a.base));
        tokio::spawn(async move {
            for i in 0..TOTAL {
                let r = http
                    .post(&url)
                    .bearer_auth(&bob_token)
                    .json(&json!({"group_id": group, "content": format!("m{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        })
    };
    // message id -> text, as alice's client keeps them.
    let mut received = std::collections::BTreeMap::<i64, String>::new();
    let keep_once = |m: &LiveMessage, received: &mut std::collections::BTreeMap<i64, String>| {
        let id = m.message_id;
        assert!(
            received.insert(id, m.content.clone()).is_none(),
            "message {id} twice"
        );
    };
    let mut cursor = 0;
    while received.len() < TOTAL / 4 {
        let m = live.recv_message().await;
        keep_once(&m, &mut received);
        cursor = m.sync_cursor;
    }
    b.signal(libc::SIGKILL);
    assert!(b.exited_within(Duration::from_secs(5)).await.is_some());
    // What reached alice before the connection broke counts, as a client keeps it.
    while let Some(frame) = live.next_server_frame(Duration::from_secs(2)).await {
        if let ServerFrame::NewMessage {
            message,
            sync_cursor,
        } = frame
        {
            keep_once(&message, &mut received);
            cursor = sync_cursor;
        }
    }
    // On C, as `rtchat listen` does after a reconnect: sync from the cursor (each page once, never
    // what she had), and live frames meanwhile (which may repeat a page's message: skipped by id,
    // as README says a client does).
    let mut resumed = connect(port_c).await;
    resumed.send(json!({"type": "sync", "since": cursor})).await;
    let mut synced = false;
    let mut live_on_c = std::collections::HashSet::new();
    while !synced || received.len() < TOTAL {
        match resumed.recv_frame().await {
            ServerFrame::Sync(page) => {
                for m in &page.messages {
                    if !live_on_c.contains(&m.message_id) {
                        keep_once(m, &mut received);
                    }
                }
                if page.has_more {
                    let since = page.next_since;
                    resumed.send(json!({"type": "sync", "since": since})).await;
                } else {
                    synced = true;
                }
            }
            ServerFrame::NewMessage { message, .. } => {
                live_on_c.insert(message.message_id);
                received
                    .entry(message.message_id)
                    .or_insert(message.content);
            }
            _ => {}
        }
    }
    sender.await.unwrap();
    resumed
        .expect_no("new_message", Duration::from_millis(500))
        .await;
    let texts: Vec<&String> = received.values().collect();
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("m{i}")).collect();
    assert_eq!(
        texts,
        expected.iter().collect::<Vec<_>>(),
        "every message once, in order"
    );
    drop((c, a));
}

/// `rtchat-server ARGS` run to its end: exit code, stdout, stderr.
async fn console(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rtchat-server"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_console_is_the_way_back_in_whether_the_server_runs_or_not() {
    let dir = DataDir::new("console");
    let data = dir.0.to_str().unwrap().to_string();
    let port = free_port();
    let mut server = start_healthy(&dir, port, &[]).await;
    server.register("alice").await;
    let bob = server.register("bob").await;
    let bob_token = bob["tokens"]["access_token"].as_str().unwrap().to_string();

    // While the server runs: bob becomes an admin, and the server lets him administer.
    let (code, out, err) = console(&["--data-dir", &data, "admin", "promote", "bob"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("@bob is now an admin"), "{out}");
    let client = crate::common::http().build().unwrap();
    let admin_users = client
        .get(format!("{}/admin/users", server.base))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_users.status(), StatusCode::OK);

    // While it is stopped: a reset code for alice (the flags may follow the command too).
    server.signal(libc::SIGTERM);
    assert!(
        server
            .exited_within(Duration::from_secs(30))
            .await
            .is_some()
    );
    let (code, out, err) =
        console(&["admin", "reset-password", "alice", "--data-dir", &data]).await;
    assert_eq!(code, Some(0), "{err}");
    let reset = out
        .lines()
        .find(|l| l.starts_with("rtcr_"))
        .unwrap_or_else(|| panic!("a code in {out}"))
        .to_string();
    assert!(
        postgres_processes(&dir.0).is_empty(),
        "the PostgreSQL it started is stopped again"
    );
    let (code, _, err) = console(&["--data-dir", &data, "admin", "demote", "nobody"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no user named nobody"), "{err}");

    let server = start_healthy(&dir, port, &[]).await;
    let (status, reply) = server
        .post(
            "/auth/reset-password",
            json!({"code": reset, "new_password": "back in at last"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, _) = server
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "back in at last"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
