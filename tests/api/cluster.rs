//! Several rtchat-server instances on one database, as behind a load balancer: on the PostgreSQL
//! bus and on NATS, every message, event and revocation crosses instances exactly once and in
//! order; sync stays exact with two instances writing one room; an instance that stops loses and
//! doubles nothing for its clients, who resume on another.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use rtchat::proto::{Presence, ServerFrame};
use rtchat::server::Config;
use rtchat::server::config::BusKind;
use serde_json::json;

use crate::common::{TestApp, nats_url, spawn_cluster, test_config};

fn on_postgres() -> Config {
    test_config()
}

fn on_nats() -> Option<Config> {
    let mut config = test_config();
    config.bus = BusKind::Nats(nats_url()?);
    Some(config)
}

/// The status in the next presence frame about `user`.
async fn presence_of(ws: &mut crate::common::WsClient, user: i64) -> Presence {
    ws.recv_as(|frame| match frame {
        ServerFrame::Presence {
            user_id, status, ..
        } if i64::from(user_id) == user => Some(status),
        _ => None,
    })
    .await
}

async fn everything_crosses_instances(config: Config) {
    let apps = spawn_cluster(3, config).await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let carol = c.register("carol").await;
    let g = b.create_group(&alice, "team", &[&bob, &carol]).await;
    let mut alice_ws = a.ws(&alice.access).await;
    let mut bob_ws = b.ws(&bob.access).await;

    // Presence: carol comes online on C; alice on A hears it, and every instance lists her.
    let mut carol_ws = c.ws(&carol.access).await;
    assert_eq!(presence_of(&mut alice_ws, carol.id).await, Presence::Online);
    let online = a.get("/ws/online-users", Some(&alice.access)).await;
    assert_eq!(
        online.body["online_users"],
        json!([alice.id, bob.id, carol.id])
    );

    // A message sent over REST on C reaches the members on A, B and C, once each.
    let sent = c.group_send(&carol, g, "hello from C").await.body["data"]["id"].clone();
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let m = ws.recv_message().await;
        assert_eq!(m.message_id, sent);
        assert_eq!(m.content, "hello from C");
    }
    // One over the WebSocket on B, after it in every room view.
    bob_ws
        .send(json!({"type": "message", "room_id": g, "content": "from B"}))
        .await;
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        assert_eq!(ws.recv_message().await.content, "from B");
    }

    // Typing on A reaches B; a read receipt on B reaches A.
    alice_ws.send(json!({"type": "typing", "room_id": g})).await;
    let typist = bob_ws
        .recv_as(|f| match f {
            ServerFrame::UserTyping { user_id, .. } => Some(i64::from(user_id)),
            _ => None,
        })
        .await;
    assert_eq!(typist, alice.id);
    bob_ws.send(json!({"type": "read", "room_id": g})).await;
    let reader = alice_ws
        .recv_as(|f| match f {
            ServerFrame::Read { user_id, .. } => Some(i64::from(user_id)),
            _ => None,
        })
        .await;
    assert_eq!(reader, bob.id);

    // A removal on A: carol on C hears it, and nothing sent after it reaches her.
    let r = a
        .delete(
            &format!("/groups/{g}/members"),
            Some(&alice.access),
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let removed = carol_ws
        .recv_as(|f| match f {
            ServerFrame::MemberRemoved { user_id, .. } => Some(i64::from(user_id)),
            _ => None,
        })
        .await;
    assert_eq!(removed, carol.id);
    b.group_send(&bob, g, "after carol left").await;
    assert_eq!(alice_ws.recv_message().await.content, "after carol left");
    carol_ws
        .expect_no("new_message", Duration::from_millis(500))
        .await;

    // Logout on C closes bob's socket on B at once, and his token is refused everywhere.
    let r = c
        .post("/auth/logout", None, json!({"refresh_token": bob.refresh}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(bob_ws.close_code().await, Some(4003));
    for app in [a, b, c] {
        let me = app.get("/auth/me", Some(&bob.access)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    }
    // His last socket is gone: alice hears he is offline.
    assert_eq!(presence_of(&mut alice_ws, bob.id).await, Presence::Offline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_crosses_instances_on_postgres() {
    everything_crosses_instances(on_postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_crosses_instances_on_nats() {
    if let Some(config) = on_nats() {
        everything_crosses_instances(config).await;
    }
}

/// Two instances insert into one room as fast as they can while a third syncs in a loop from the
/// cursor each page gives: every message is seen exactly once, none skipped by a late commit.
async fn sync_is_exact_with_two_writers(config: Config) {
    let mut config = config;
    config.max_send_rate = 0;
    let apps = spawn_cluster(3, config).await;
    let alice = apps[0].register("alice").await;
    let bob = apps[1].register("bob").await;
    let reader = apps[2].register("reader").await;
    let g = apps[0].create_group(&alice, "race", &[&bob, &reader]).await;

    const PER_WRITER: usize = 300;
    const IN_FLIGHT: usize = 12;
    let write = |app: &TestApp, who: crate::common::TestUser, tag: &'static str| {
        let (client, url) = (app.client.clone(), app.url("/groups/send"));
        async move {
            use futures_util::StreamExt;
            futures_util::stream::iter(0..PER_WRITER)
                .for_each_concurrent(IN_FLIGHT, |i| {
                    let (client, url, token) = (client.clone(), url.clone(), who.access.clone());
                    async move {
                        let r = client
                            .post(url)
                            .bearer_auth(token)
                            .json(&json!({"group_id": g, "content": format!("{tag} {i}")}))
                            .send()
                            .await
                            .expect("send");
                        assert!(r.status().is_success(), "{}", r.status());
                    }
                })
                .await;
        }
    };
    let writers = futures_util::future::join(
        write(&apps[0], alice.clone(), "a"),
        write(&apps[1], bob.clone(), "b"),
    );
    let sync = async {
        let mut since = 0;
        let mut seen: HashMap<i64, String> = HashMap::new();
        let mut pages = 0;
        while seen.len() < 2 * PER_WRITER {
            let page = apps[2]
                .get(
                    &format!("/sync?since={since}&limit=50"),
                    Some(&reader.access),
                )
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            for m in page.body["messages"].as_array().unwrap() {
                let id = m["message_id"].as_i64().unwrap();
                let content = m["content"].as_str().unwrap().to_string();
                assert!(
                    seen.insert(id, content).is_none(),
                    "message {id} seen twice (since={since})"
                );
            }
            since = page.body["next_since"].as_i64().unwrap();
            pages += 1;
            assert!(pages < 100_000, "sync never caught up: {} seen", seen.len());
        }
        (seen, pages)
    };
    let (_, (seen, pages)) = tokio::join!(writers, sync);
    let contents: HashSet<&String> = seen.values().collect();
    assert_eq!(contents.len(), 2 * PER_WRITER, "each message once");
    assert!(pages > 2, "the reader synced while the writers wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_exact_with_two_writers_on_postgres() {
    sync_is_exact_with_two_writers(on_postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_exact_with_two_writers_on_nats() {
    if let Some(config) = on_nats() {
        sync_is_exact_with_two_writers(config).await;
    }
}

/// A live listener on A while bob sends on B; A stops in the middle (a rolling restart). The
/// listener resumes on B from the last cursor it saw: every message exactly once, in order.
async fn a_stopped_instance_loses_and_doubles_nothing(config: Config) {
    let mut config = config;
    config.max_send_rate = 0;
    let mut apps = spawn_cluster(2, config).await;
    let alice = apps[0].register("alice").await;
    let bob = apps[1].register("bob").await;
    let g = apps[1].create_group(&bob, "ops", &[&alice]).await;
    let mut live = apps[0].ws(&alice.access).await;

    const TOTAL: usize = 200;
    let sender = {
        let (client, url, token) = (
            apps[1].client.clone(),
            apps[1].url("/groups/send"),
            bob.access.clone(),
        );
        tokio::spawn(async move {
            for i in 0..TOTAL {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"group_id": g, "content": format!("m{i}")}))
                    .send()
                    .await
                    .expect("send");
                assert!(r.status().is_success());
            }
        })
    };
    let mut received: Vec<String> = Vec::new();
    let mut cursor = 0;
    while received.len() < TOTAL / 4 {
        let m = live.recv_message().await;
        received.push(m.content.clone());
        cursor = m.sync_cursor;
    }
    apps[0].stop_server().await;
    // Whatever A still delivered before closing counts, as a client would keep it.
    while let Some(frame) = live.next_server_frame(Duration::from_secs(2)).await {
        if let ServerFrame::NewMessage {
            message,
            sync_cursor,
        } = frame
        {
            received.push(message.content);
            cursor = sync_cursor;
        }
    }
    sender.await.unwrap();
    // On B: sync from the cursor, then live.
    let b = &apps[1];
    let mut since = cursor;
    loop {
        let page = b
            .get(&format!("/sync?since={since}"), Some(&alice.access))
            .await;
        for m in page.body["messages"].as_array().unwrap() {
            received.push(m["content"].as_str().unwrap().into());
        }
        since = page.body["next_since"].as_i64().unwrap();
        if !page.body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("m{i}")).collect();
    assert_eq!(received, expected, "every message once, in order");
    apps.truncate(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_loses_and_doubles_nothing_on_postgres() {
    a_stopped_instance_loses_and_doubles_nothing(on_postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_loses_and_doubles_nothing_on_nats() {
    if let Some(config) = on_nats() {
        a_stopped_instance_loses_and_doubles_nothing(config).await;
    }
}

/// An instance that dies without a word (no shutdown) leaves its users online only until the
/// others see its heartbeat stop; then their peers hear they are offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instance_does_not_keep_its_users_online() {
    let app = crate::common::spawn_app().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    app.create_group(&alice, "team", &[&carol]).await;
    let mut alice_ws = app.ws(&alice.access).await;
    // Carol's socket is on an instance that then dies: its rows, as it left them.
    let db = app.sql().await;
    let dead = uuid::Uuid::new_v4();
    db.execute("INSERT INTO server_instances (id) VALUES ($1)", &[&dead])
        .await
        .unwrap();
    db.execute(
        "INSERT INTO online_presence (user_id, instance_id) VALUES ($1, $2)",
        &[&(carol.id as i32), &dead],
    )
    .await
    .unwrap();
    let online = app.get("/ws/online-users", Some(&alice.access)).await;
    assert_eq!(online.body["online_users"], json!([alice.id, carol.id]));
    // Its heartbeat stops.
    db.execute(
        "UPDATE server_instances SET heartbeat_at = now() - interval '1 minute' WHERE id = $1",
        &[&dead],
    )
    .await
    .unwrap();
    let online = app.get("/ws/online-users", Some(&alice.access)).await;
    assert_eq!(
        online.body["online_users"],
        json!([alice.id]),
        "not online at once"
    );
    // Within a heartbeat, the live instance removes it and tells carol's peers.
    assert_eq!(
        presence_of(&mut alice_ws, carol.id).await,
        Presence::Offline
    );
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM server_instances WHERE id = $1",
            &[&dead],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// An instance paused long enough to be taken for dead (another instance removed it, and its
/// users' presence with it, telling their peers they went offline) comes back: its next
/// heartbeat writes its users' presence again and announces them online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_taken_for_dead_announces_its_users_online_again() {
    let apps = spawn_cluster(2, on_postgres()).await;
    let (a, b) = (&apps[0], &apps[1]);
    let alice = a.register("alice").await;
    let carol = a.register("carol").await;
    a.create_group(&alice, "team", &[&carol]).await;
    let mut carol_ws = b.ws(&carol.access).await;
    let _alice_ws = a.ws(&alice.access).await;
    assert_eq!(presence_of(&mut carol_ws, alice.id).await, Presence::Online);
    // What another instance's reaper does to an instance whose heartbeat stopped.
    let db = a.sql().await;
    db.execute(
        "DELETE FROM server_instances WHERE id = $1",
        &[&a.state.instance],
    )
    .await
    .unwrap();
    let online = b.get("/ws/online-users", Some(&carol.access)).await;
    assert_eq!(online.body["online_users"], json!([carol.id]));
    // Within a heartbeat, the paused instance is back, and so is alice.
    assert_eq!(presence_of(&mut carol_ws, alice.id).await, Presence::Online);
    let online = b.get("/ws/online-users", Some(&carol.access)).await;
    assert_eq!(online.body["online_users"], json!([alice.id, carol.id]));
}

/// Every instance's LISTEN connection is cut (as a PostgreSQL restart or a network fault would)
/// while messages are sent: what the bus lost is read from the database, each message once, in
/// order, and the instances say they resynchronised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_bus_connection_loses_nothing() {
    let mut config = on_postgres();
    config.max_send_rate = 0;
    let apps = spawn_cluster(2, config).await;
    let alice = apps[0].register("alice").await;
    let bob = apps[1].register("bob").await;
    let g = apps[1].create_group(&bob, "ops", &[&alice]).await;
    let mut alice_ws = apps[0].ws(&alice.access).await;
    apps[1].group_send(&bob, g, "before").await;
    assert_eq!(alice_ws.recv_message().await.content, "before");

    let db = apps[0].sql().await;
    let cut: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'rtchat-bus' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cut, 2, "one listening connection per instance");
    for i in 0..20 {
        apps[1].group_send(&bob, g, &format!("m{i}")).await;
    }
    for i in 0..20 {
        assert_eq!(alice_ws.recv_message().await.content, format!("m{i}"));
    }
    alice_ws
        .expect_no("new_message", Duration::from_millis(1500))
        .await;
    let metrics = apps[0]
        .client
        .get(apps[0].url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    let resyncs: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rtchat_bus_resyncs_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("rtchat_bus_resyncs_total");
    assert!(resyncs >= 1.0, "{resyncs}");
}

/// A profile changed on one instance is what every other instance shows at once, not after its
/// session cache's 10 s: a message sent there next carries the new name.
async fn a_profile_change_reaches_every_instance(config: Config) {
    let apps = spawn_cluster(2, config).await;
    let (a, b) = (&apps[0], &apps[1]);
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    // B has alice's session cached (as it would after any request of hers there).
    let before = b.get("/auth/me", Some(&alice.access)).await;
    assert_eq!(before.body["full_name"], "alice Tester");
    let r = a
        .patch(
            "/auth/me",
            Some(&alice.access),
            json!({"full_name": "Alice Liddell"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let me = b.get("/auth/me", Some(&alice.access)).await;
        if me.body["full_name"] == "Alice Liddell" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B still shows {}",
            me.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = b.dm(&alice, &bob, "hello").await;
    let page = b
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.body[0]["id"], sent.id);
    assert_eq!(page.body[0]["sender_full_name"], "Alice Liddell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_change_reaches_every_instance_on_postgres() {
    a_profile_change_reaches_every_instance(on_postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_change_reaches_every_instance_on_nats() {
    if let Some(config) = on_nats() {
        a_profile_change_reaches_every_instance(config).await;
    }
}
