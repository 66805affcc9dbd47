//! What a hostile or broken client cannot take from the others: connections (slow headers, half
//! bodies, idle keep-alive, too many per address), password guesses, JSON sent as something else,
//! WebSocket floods, and a socket's delivery while its own frame waits on the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{PASSWORD, TestApp, eventually, spawn_app, spawn_app_with, test_config};

fn addr(app: &TestApp) -> SocketAddr {
    app.address.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to the server from `source` (any 127.x.y.z address is this machine).
async fn connect_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr(app)).await.unwrap()
}

/// Everything the server sends until it closes the connection (panics if it stays open `within`).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let mut config = test_config();
    config.header_timeout = Duration::from_millis(500);
    let app = spawn_app_with(config).await;

    // A header byte now and then never finishes a request.
    let mut slowloris = connect_from(&app, "127.0.0.1").await;
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\n")
        .await
        .unwrap();
    let dripping = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slowloris.write_all(b"X-a: b\r\n").await.is_err() {
                break;
            }
        }
    };
    dripping.await;
    let _ = read_until_closed(&mut slowloris, Duration::from_secs(5)).await;

    // A connection that says nothing, and a keep-alive connection after its request, are closed.
    let mut silent = connect_from(&app, "127.0.0.1").await;
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(5)).await,
        ""
    );
    let mut kept = connect_from(&app, "127.0.0.1").await;
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

#[tokio::test]
async fn a_body_that_never_ends_gets_408() {
    let mut config = test_config();
    config.body_timeout = Duration::from_millis(500);
    let app = spawn_app_with(config).await;
    let mut half = connect_from(&app, "127.0.0.1").await;
    half.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    let reply = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("Request body not received in time"),
        "{reply}"
    );
    // Nobody else noticed.
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_all() {
    let mut config = test_config();
    config.max_connections_per_ip = 3;
    config.max_connections = Some(6);
    let app = spawn_app_with(config).await;

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&app, "127.0.0.1").await);
    }
    let reply = refused_from(&app, "127.0.0.1").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("Too many connections"), "{reply}");

    // Another address is not affected by the first one's cap ...
    let mut other = connect_from(&app, "127.0.0.2").await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until_closed(&mut other, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // ... until the process-wide cap is reached.
    for source in ["127.0.0.3", "127.0.0.3", "127.0.0.4"] {
        held.push(connect_from(&app, source).await);
    }
    let reply = refused_from(&app, "127.0.0.5").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");

    // A place given back can be taken again (once the server has seen the connections close).
    drop(held);
    let healthy = || async { app.get("/health", None).await.status == StatusCode::OK };
    assert!(eventually(healthy).await);
}

/// Asks for /health from `source` until the answer is a refusal, and returns the last answer: the
/// server counts a connection once it has accepted it, a moment after the client's connect
/// returns.
async fn refused_from(app: &TestApp, source: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = connect_from(app, source).await;
        let _ = probe
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let reply = read_until_closed(&mut probe, Duration::from_secs(5)).await;
        if reply.starts_with("HTTP/1.1 503") || tokio::time::Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn json_bodies_must_say_they_are_json() {
    let app = spawn_app().await;
    let body = json!({"username": "mallory", "email": "m@example.com", "password": PASSWORD});
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .post(app.url("/auth/register"))
            .body(body.to_string());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let r = app.send(request).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(r.detail(), "Content-Type must be application/json");
    }
    let users = app.sql().await;
    let n: i64 = users
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing was registered");
    // JSON with parameters, as browsers and Python's requests send it, is JSON.
    let r = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn password_guessing_is_throttled_before_hashing() {
    let mut config = test_config();
    config.login_rate_per_account = 5;
    config.auth_rate_per_ip = 0;
    let app = spawn_app_with(config).await;
    app.register("victim").await;
    app.register("bystander").await;

    let wrong: Vec<String> = (0..12).map(|i| format!("guess {i}")).collect();
    let guesses = join_all(wrong.iter().map(|w| app.login("victim", w))).await;
    let throttled: Vec<_> = guesses
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(throttled.len(), 7, "5 attempts a minute, then 429");
    for r in &throttled {
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert!(
            r.detail()
                .starts_with("Too many login attempts for this account")
        );
    }
    // The right password is throttled too (that is the point), by any spelling of the name ...
    assert_eq!(
        app.login("VICTIM", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ... but another account is not.
    assert_eq!(
        app.login("bystander", PASSWORD).await.status,
        StatusCode::OK
    );
}

/// An HTTP client whose connections come from `source` (any 127.x.y.z address is this machine).
fn client_from(source: &str) -> reqwest::Client {
    crate::common::http()
        .local_address(Some(source.parse().unwrap()))
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    password: &str,
) -> StatusCode {
    app.send(
        client
            .post(app.url("/auth/login"))
            .json(&json!({"username": name, "password": password})),
    )
    .await
    .status
}

/// A stranger guessing an account's password from elsewhere spends the account's shared budget,
/// not the owner's: the owner keeps signing in from where they signed in before.
#[tokio::test]
async fn a_stranger_guessing_cannot_lock_the_owner_out() {
    let mut config = test_config();
    config.login_rate_per_account = 5;
    config.auth_rate_per_ip = 0;
    let app = spawn_app_with(config).await;
    app.register("victim").await; // from 127.0.0.1: a known address of the account
    let owner = client_from("127.0.0.1");
    let stranger = client_from("127.0.0.2");

    let mut refused = 0;
    for i in 0..10 {
        let status = login_from(&app, &stranger, "victim", &format!("guess {i}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(refused, 5, "the shared budget: 5 a minute");
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, &owner, "VICTIM", PASSWORD).await,
            StatusCode::OK,
            "the owner, from an address they signed in from"
        );
    }
    // A third address the account never signed in from shares the spent budget.
    let elsewhere = client_from("127.0.0.3");
    assert_eq!(
        login_from(&app, &elsewhere, "victim", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Eight addresses each sending a login a second for names that do not exist, within their
/// limits, fill the hashing queue; a person signing in from an address of their own still gets
/// in every time, because the queue goes to the least demanding address first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_many_addresses_cannot_keep_a_person_out() {
    let mut config = test_config();
    config.max_hashing_queue = 8;
    config.bcrypt_cost = 12;
    config.auth_rate_per_ip = 60;
    let app = Arc::new(spawn_app_with(config).await);
    app.register("someone").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let queue_full = Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    for n in 0..8 {
        let (app, stop, queue_full) = (app.clone(), stop.clone(), queue_full.clone());
        flooders.push(tokio::spawn(async move {
            let client = client_from(&format!("127.0.1.{}", n + 1));
            let mut every = tokio::time::interval(Duration::from_millis(250));
            let mut attempts = Vec::new();
            while !stop.is_cancelled() {
                every.tick().await;
                let (app, client) = (app.clone(), client.clone());
                let queue_full = queue_full.clone();
                // Not waiting for the answer: a login a quarter second, each a new name.
                attempts.push(tokio::spawn(async move {
                    let name = format!("nobody{}", uuid::Uuid::new_v4().simple());
                    let status = login_from(&app, &client, &name, "guess").await;
                    if status == StatusCode::SERVICE_UNAVAILABLE {
                        queue_full.store(true, Ordering::SeqCst);
                    }
                    status
                }));
            }
            let mut busy = 0;
            for a in attempts {
                if a.await.unwrap() == StatusCode::SERVICE_UNAVAILABLE {
                    busy += 1;
                }
            }
            busy
        }));
    }
    // Once the flood has filled the queue (a flooder was refused with 503), the person signs in.
    assert!(eventually(|| async { queue_full.load(Ordering::SeqCst) }).await);
    let person = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login_from(&app, &person, "someone", PASSWORD).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    let mut refused = 0;
    for f in flooders {
        refused += f.await.unwrap();
    }
    assert!(refused > 0, "the flood filled the queue");
    assert_eq!(statuses, [StatusCode::OK; 6], "the person's logins");
}

#[tokio::test]
async fn registrations_and_logins_are_throttled_per_address() {
    let mut config = test_config();
    config.auth_rate_per_ip = 4;
    let app = spawn_app_with(config).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(app.try_register(&format!("user{i}")).await.status);
    }
    assert_eq!(&statuses[..4], &[StatusCode::CREATED; 4]);
    assert_eq!(&statuses[4..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    assert_eq!(
        app.login("user0", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_full_hashing_queue_refuses_at_once() {
    let mut config = test_config();
    config.max_hashing_queue = 2;
    config.bcrypt_cost = 10;
    let app = spawn_app_with(config).await;
    app.register("someone").await;
    let replies = join_all((0..12).map(|_| app.login("someone", PASSWORD))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let busy: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(ok >= 2, "the queue's places are served");
    assert!(!busy.is_empty(), "12 at once do not fit in a queue of 2");
    assert_eq!(ok + busy.len(), 12);
    for r in busy {
        assert_eq!(r.headers["retry-after"], "1");
        assert_eq!(
            r.detail(),
            "Too many sign-ins at once; try again in a moment"
        );
    }
}

#[tokio::test]
async fn a_typing_flood_reaches_nobody_and_closes_nobody_else() {
    let app = spawn_app().await;
    let flooder = app.register("flooder").await;
    let names = ["member0", "member1", "member2"];
    let others: Vec<_> = join_all(names.iter().map(|n| app.register(n))).await;
    let g = app
        .create_group(&flooder, "Flooded", &others.iter().collect::<Vec<_>>())
        .await;
    let mut watchers = Vec::new();
    for o in &others {
        watchers.push(app.ws(&o.access).await);
    }
    let mut ws = app.ws(&flooder.access).await;
    for _ in 0..3000 {
        let typing = format!(r#"{{"type":"typing","room_id":{g}}}"#);
        if !ws.try_send_text(&typing).await {
            break; // closed for flooding
        }
    }
    // The flooder hears that he is sending too much, then is closed for it with 4029: the close
    // frame and the answers before it reach him (not a reset that loses them) ...
    let (frames, code) = ws.frames_until_close().await;
    let mut told = false;
    for frame in frames.iter().filter(|f| f["type"] == "error") {
        assert!(
            frame["message"]
                .as_str()
                .unwrap()
                .starts_with("Too many frames")
        );
        assert!(frame["retry_after_ms"].as_u64().unwrap() > 0);
        told = true;
    }
    assert!(told, "{frames:?}");
    assert_eq!(code, Some(4029));
    // ... while each member heard of his typing once, and still gets messages.
    app.group_send(&others[0], g, "still here").await;
    for w in &mut watchers {
        let mut typing = 0;
        loop {
            let frame = w.recv().await;
            match frame["type"].as_str().unwrap() {
                "user_typing" => typing += 1,
                "new_message" => break,
                _ => {}
            }
        }
        assert_eq!(typing, 1, "typing is forwarded at most every few seconds");
    }
}

/// A flooding client that reads slowly is still told why it is closed: the server sends 4029 and
/// then reads (and drops) what the client keeps sending until the client answers the close. A
/// socket closed with unread data in it is reset, and a reset throws away whatever the server had
/// not yet delivered: the close frame, and the messages and answers queued before it.
#[tokio::test]
async fn a_flooder_that_reads_slowly_still_gets_its_close_frame() {
    let mut config = test_config();
    config.max_send_rate = 0;
    let app = spawn_app_with(config).await;
    let flooder = app.register("flooder").await;
    let other = app.register("other").await;
    let g = app.create_group(&other, "busy", &[&flooder]).await;
    // A connection with a small receive window, which reads nothing for a while.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr(&app)).await.unwrap();
    let (stream, _) = tokio_tungstenite::client_async(
        app.ws_url(&format!("/ws/{}", flooder.access)),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    let mut ws = crate::common::WsClient::from_stream(stream);
    app.wait_for_sockets(1).await;
    // Messages pile up for it, more than its window holds.
    let mut last = 0;
    for i in 0..40 {
        let text = format!("{i} {}", "x".repeat(2000));
        let sent = app.group_send(&other, g, &text).await;
        assert_eq!(sent.status, StatusCode::CREATED);
        last = sent.body["data"]["id"].as_i64().unwrap();
    }
    // Every one queued on its socket (the bus brings them) before the flood starts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.hub.watermark() < last {
        assert!(tokio::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let typing = format!(r#"{{"type":"typing","room_id":{g}}}"#);
    for _ in 0..3000 {
        if !ws.try_send_text(&typing).await {
            break;
        }
    }
    // Only now it reads: every message, the refusals, then the close frame.
    let (frames, code) = ws.frames_until_close().await;
    let messages = frames.iter().filter(|f| f["type"] == "new_message").count();
    assert_eq!(messages, 40);
    assert!(frames.iter().any(|f| f["type"] == "error"));
    assert_eq!(code, Some(4029));
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_sockets() {
    let mut config = test_config();
    config.max_sockets_per_user = 3;
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(app.ws(&alice.access).await);
    }
    let mut fourth = app.ws_raw(&format!("/ws/{}", alice.access)).await;
    assert_eq!(fourth.close_code().await, Some(4009));
    // The ones held still work, and a freed place can be taken.
    held[0].ping().await;
    drop(held.pop());
    app.wait_for_sockets(2).await;
    app.ws(&alice.access).await.ping().await;
}

#[tokio::test]
async fn a_socket_keeps_receiving_while_its_own_frame_waits_on_the_database() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Busy", &[&bob]).await;
    let mut ws = app.ws(&alice.access).await;

    // Hold alice's membership row: her `read` frame's update waits for it.
    let mut db = app.sql().await;
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM chat_room_members WHERE chat_room_id = $1 AND user_id = $2 FOR UPDATE",
        &[&(g as i32), &(alice.id as i32)],
    )
    .await
    .unwrap();
    let sent = app.group_send(&bob, g, "before").await;
    assert_eq!(sent.status, StatusCode::CREATED);
    let message_id = sent.body["data"]["id"].as_i64().unwrap();
    ws.recv_message().await;
    ws.send(json!({"type": "read", "room_id": g, "message_id": message_id}))
        .await;
    let waiting = || async {
        let db = app.sql().await;
        let row = db
            .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0) > 0
    };
    assert!(
        eventually(waiting).await,
        "the read frame waits on the lock"
    );

    // While that frame waits, bob's messages still reach her.
    app.group_send(&bob, g, "while you wait").await;
    let m = ws.recv_message().await;
    assert_eq!(m.content, "while you wait");

    tx.rollback().await.unwrap();
    let receipt = ws.recv_type("read").await;
    assert_eq!(receipt["last_read_message_id"], message_id);
}
