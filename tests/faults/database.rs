//! The server in this process against a PostgreSQL of the test's own, whose backends are killed or
//! frozen under it.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use rtchat::server::database::postgres::{ManagedPostgres, Options};
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, spawn_app_on, test_config};

/// A PostgreSQL for one test, removed with its directory when dropped.
pub struct OwnPostgres {
    pg: Option<ManagedPostgres>,
    dir: PathBuf,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            crate::remove_stale("rtchat-fault-");
        }
        let dir = std::env::temp_dir().join(format!("rtchat-fault-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pg_dir = dir.join("pg");
        // Durable, as in production: without fsync and synchronous commit, a crash (which a
        // killed backend is, to PostgreSQL) forgets commits it acknowledged.
        let options = Options {
            fsync: true,
            max_connections: 50,
            settings: Vec::new(),
        };
        let pg = tokio::task::spawn_blocking(move || ManagedPostgres::start(&pg_dir, &options))
            .await
            .unwrap()
            .expect("a test PostgreSQL starts");
        OwnPostgres { pg: Some(pg), dir }
    }

    pub fn admin(&self) -> tokio_postgres::Config {
        self.pg.as_ref().unwrap().connect_config("postgres")
    }

    fn processes(&self) -> Vec<i32> {
        self.pg
            .as_ref()
            .map(|pg| crate::postmaster_and_children(pg.pid()))
            .unwrap_or_default()
    }

    /// SIGSTOP to PostgreSQL and every backend: connections stay open and nothing answers.
    pub fn freeze(&self) {
        crate::signal_all(&self.processes(), libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        crate::signal_all(&self.processes(), libc::SIGCONT);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.thaw();
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects to the cluster's admin database with a plain client.
async fn admin_client(admin: &tokio_postgres::Config) -> Option<tokio_postgres::Client> {
    let (client, conn) = admin.connect(tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// `kill -9` of the backend that serves the message writer; true if there was one to kill.
async fn kill_writer_backend(admin: &tokio_postgres::Config) -> bool {
    let Some(client) = admin_client(admin).await else {
        return false;
    };
    let Ok(rows) = client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'rtchat-writer'",
            &[],
        )
        .await
    else {
        return false;
    };
    for row in &rows {
        let pid: i32 = row.get(0);
        // SAFETY: kill(2) on a backend of our own PostgreSQL.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    !rows.is_empty()
}

/// Sends until the server says it is stored (201) or a retry found it stored (200), retrying with
/// the same client_id on anything else, as the README tells clients to.
async fn send_surely(app: &TestApp, token: &str, group: i64, content: &str) -> i64 {
    let client_id = format!("cid-{content}");
    for _ in 0..200 {
        let r = app
            .client
            .post(app.url("/groups/send"))
            .bearer_auth(token)
            .json(&json!({"group_id": group, "content": content, "client_id": client_id}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status().is_success()
        {
            let body: Value = r.json().await.unwrap();
            return body["data"]["id"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{content} was never stored");
}

/// Every message id a member's socket receives live, and the cursor of the last one.
async fn drain_live(ws: &mut WsClient, quiet: Duration) -> (Vec<i64>, i64) {
    let mut ids = Vec::new();
    let mut cursor = 0;
    while let Some(frame) = ws.next_frame(quiet).await {
        if frame["type"] == "new_message" {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("LIVE {frame}");
            }
            ids.push(frame["message_id"].as_i64().unwrap());
            cursor = frame["sync_cursor"].as_i64().unwrap();
        }
    }
    (ids, cursor)
}

/// Everything after `since`, by `sync` frames, as the README's resume rule says.
async fn sync_from(ws: &mut WsClient, mut since: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        ws.send(json!({"type": "sync", "since": since, "limit": 500}))
            .await;
        let reply = ws.recv_type("sync").await;
        for m in reply["messages"].as_array().unwrap() {
            ids.push(m["message_id"].as_i64().unwrap());
        }
        since = reply["next_since"].as_i64().unwrap();
        if reply["has_more"] == false {
            return ids;
        }
    }
}

async fn stored_ids(app: &TestApp, group: i64) -> BTreeSet<i64> {
    app.sql()
        .await
        .query(
            "SELECT id FROM messages WHERE chat_room_id = $1",
            &[&(group as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_writers_backend_loses_no_delivery() {
    let pg = OwnPostgres::start().await;
    let mut config = test_config();
    config.max_send_rate = 0;
    let app = spawn_app_on(pg.admin(), config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Faults", &[&bob]).await;
    let mut bob_ws = app.ws(&bob.access).await;

    // Four senders keep sending until the writer's backend has been killed five times.
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = pg.admin();
    let done = killed.clone();
    let killer = tokio::spawn(async move {
        let mut kills = 0;
        while kills < 5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if kill_writer_backend(&admin).await {
                kills += 1;
            }
        }
        done.store(true, Ordering::Release);
    });
    let senders = (0..4).map(|s| {
        let (app, token, killed) = (&app, alice.access.clone(), killed.clone());
        async move {
            let mut sent = 0;
            while sent < 100 || !killed.load(Ordering::Acquire) {
                send_surely(app, &token, g, &format!("{s}-{sent}")).await;
                sent += 1;
            }
            sent
        }
    });
    let sent: usize = join_all(senders).await.into_iter().sum();
    killer.await.unwrap();

    let (live, cursor) = drain_live(&mut bob_ws, Duration::from_secs(2)).await;
    let unique: HashSet<i64> = live.iter().copied().collect();
    let mut counted = std::collections::HashMap::new();
    for id in &live {
        *counted.entry(*id).or_insert(0) += 1;
    }
    let twice: Vec<_> = counted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    let mut seen: BTreeSet<i64> = unique.into_iter().collect();
    seen.extend(sync_from(&mut bob_ws, cursor).await);
    let stored = stored_ids(&app, g).await;
    assert_eq!(stored.len(), sent, "every message stored once");
    let missed: Vec<_> = stored.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "never reached bob, live or by sync: {missed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_answers_503_in_seconds_and_recovers() {
    let pg = OwnPostgres::start().await;
    let mut config = test_config();
    config.db_timeout = Duration::from_secs(1);
    let app = spawn_app_on(pg.admin(), config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Frozen", &[&bob]).await;
    // Carol's token has never been checked: her request's first step is a database lookup, made
    // before the body is read.
    let carol = app.register("carol").await;
    let mut bob_ws = app.ws(&bob.access).await;
    let mut alice_ws = app.ws(&alice.access).await;

    pg.freeze();
    // Every kind of request gets an answer, not a hang (reqwest gives up after 20 s).
    let client = crate::common::http()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let health = client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let send = client
        .post(app.url("/groups/send"))
        .bearer_auth(&alice.access)
        .json(&json!({"group_id": g, "content": "into the ice", "client_id": "ice-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(send.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(send.headers()["retry-after"], "1");
    // Its body sent in full, a send whose token is not known yet waits at most the database
    // deadline too: 503, not 408 once the body deadline has passed as well.
    let unchecked = client
        .post(app.url("/messages/send"))
        .bearer_auth(&carol.access)
        .json(&json!({"recipient_id": bob.id, "content": "cold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unchecked.status(), StatusCode::SERVICE_UNAVAILABLE);
    let history = client
        .get(app.url(&format!("/groups/{g}/messages")))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), StatusCode::SERVICE_UNAVAILABLE);
    alice_ws.send(json!({"type": "sync", "since": 0})).await;
    let refused = alice_ws.recv_type("error").await;
    assert_eq!(
        refused["message"],
        "Service temporarily unavailable, try again"
    );
    // Sockets stay open and live: a ping needs no database.
    alice_ws.ping().await;

    pg.thaw();
    let mut healthy = false;
    for _ in 0..100 {
        if app.get("/health", None).await.status == StatusCode::OK {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "healthy again after the thaw");
    // The retry of the refused send stores it once, and bob hears of every stored message.
    let id = send_surely(&app, &alice.access, g, "ice-1-retry").await;
    let (live, cursor) = drain_live(&mut bob_ws, Duration::from_secs(1)).await;
    assert!(live.contains(&id));
    let mut seen: BTreeSet<i64> = live.into_iter().collect();
    seen.extend(sync_from(&mut bob_ws, cursor).await);
    let stored = stored_ids(&app, g).await;
    assert!(stored.is_subset(&seen), "stored {stored:?}, seen {seen:?}");
}
