//! Live delivery: every message to every connection of every member, in order, exactly once; typing,
//! presence, read receipts and membership as events; slow readers; many sockets.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use rtchat::proto::ServerFrame;
use serde_json::{Value, json};

use crate::common::{WsClient, spawn_app, spawn_app_with, test_config};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn rest_and_websocket_sends_reach_all_connections_of_members_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut conns = [
        app.ws(&alice.access).await,
        app.ws(&alice.access).await,
        app.ws(&bob.access).await,
        app.ws(&bob.access).await,
    ];
    let mut outsider = app.ws(&eve.access).await;

    // Over REST: nobody needs to have joined anything (the seed delivered REST sends to no one).
    let sent = app.group_send(&bob, g, "via rest").await;
    assert_eq!(sent.status, StatusCode::CREATED);
    for ws in conns.iter_mut() {
        let m = ws.recv_message().await;
        assert_eq!(m.content, "via rest");
        assert_eq!(i64::from(m.room_id), g);
        assert_eq!(m.message_id, sent.body["data"]["id"]);
        assert_eq!(m.sender_username.as_deref(), Some("bob"));
        let created_at = serde_json::to_value(m.created_at).unwrap();
        assert!(created_at.as_str().unwrap().ends_with('Z'), "{created_at}");
    }

    // Over the WebSocket, from one of alice's connections: all four get it, her other one too.
    conns[0]
        .send(json!({"type": "message", "room_id": g, "content": "via ws", "client_id": "w-1"}))
        .await;
    for ws in conns.iter_mut() {
        let m = ws.recv_message().await;
        assert_eq!(m.content, "via ws");
        assert_eq!(m.client_id.as_deref(), Some("w-1"));
        assert_eq!(m.sender_id.map(i64::from), Some(alice.id));
    }

    // A direct message reaches both people's connections, not the group.
    app.dm(&alice, &bob, "just us").await;
    for ws in conns.iter_mut() {
        assert_eq!(ws.recv_message().await.content, "just us");
    }
    outsider.expect_no("new_message", QUIET).await;
}

#[tokio::test]
async fn a_burst_of_1000_from_several_senders_arrives_in_order_once() {
    let mut config = test_config();
    config.max_send_rate = 0;
    let app = spawn_app_with(config).await;
    let owner = app.register("owner").await;
    let mut senders = Vec::new();
    for i in 0..4 {
        senders.push(app.register(&format!("sender{i}")).await);
    }
    let members: Vec<_> = senders.iter().collect();
    let g = app.create_group(&owner, "Burst", &members).await;
    let mut reader = app.ws(&owner.access).await;
    let mut other_reader = app.ws(&senders[0].access).await;

    let mut sockets = Vec::new();
    for s in &senders {
        sockets.push(app.ws(&s.access).await);
    }
    // Each sender's socket sends 250 messages as fast as it can, all four at once.
    let bursts = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| async move {
            for n in 0..250 {
                ws.send(json!({"type": "message", "room_id": g, "content": format!("{i}:{n}")}))
                    .await;
            }
            ws
        });
    let _sockets = join_all(bursts).await;

    for ws in [&mut reader, &mut other_reader] {
        let mut last = 0;
        let mut seen = HashSet::new();
        let mut per_sender = [0usize; 4];
        while seen.len() < 1000 {
            let m = ws.recv_message().await;
            let id = m.message_id;
            assert!(id > last, "ids go up: {id} after {last}");
            last = id;
            assert!(seen.insert(id), "delivered once");
            let content = m.content.as_str();
            let (s, n) = content.split_once(':').unwrap();
            let s: usize = s.parse().unwrap();
            assert_eq!(
                n.parse::<usize>().unwrap(),
                per_sender[s],
                "each sender's own order kept"
            );
            per_sender[s] += 1;
        }
        ws.expect_no("new_message", QUIET).await;
    }
    let page = app
        .get(
            &format!("/groups/{g}/messages?limit=1"),
            Some(&owner.access),
        )
        .await;
    let db = app.sql().await;
    let stored: i64 = db
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1000);
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn typing_reaches_the_others_not_the_sender() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "Team", &[&bob, &carol]).await;
    let mut a = app.ws(&alice.access).await;
    let mut a2 = app.ws(&alice.access).await;
    let mut b = app.ws(&bob.access).await;
    let mut c = app.ws(&carol.access).await;
    a.send(json!({"type": "typing", "room_id": g})).await;
    for ws in [&mut b, &mut c] {
        let t = ws.recv_type("user_typing").await;
        assert_eq!(
            t,
            json!({"type": "user_typing", "room_id": g, "user_id": alice.id, "username": "alice"})
        );
    }
    a.expect_no("user_typing", QUIET).await;
    a2.expect_no("user_typing", QUIET).await;
}

#[tokio::test]
async fn a_removed_member_receives_nothing_after_the_removal() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut b = app.ws(&bob.access).await;
    app.group_send(&alice, g, "before").await;
    assert_eq!(b.recv_message().await.content, "before");

    let r = app
        .delete(
            &format!("/groups/{g}/members"),
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (room, removed) = b
        .recv_as(|f| match f {
            ServerFrame::MemberRemoved {
                room_id, user_id, ..
            } => Some((i64::from(room_id), i64::from(user_id))),
            _ => None,
        })
        .await;
    assert_eq!((room, removed), (g, bob.id));
    app.group_send(&alice, g, "after").await;
    b.expect_no("new_message", QUIET).await;

    // Typing or sending there is refused now.
    b.send(json!({"type": "message", "room_id": g, "content": "hello?"}))
        .await;
    assert_eq!(
        b.recv_type("error").await["message"],
        "You are not in this room"
    );
}

/// A `member_added` frame's room, member, group name and member's username.
fn member_added(frame: ServerFrame) -> Option<(i64, i64, Option<String>, String)> {
    match frame {
        ServerFrame::MemberAdded {
            room_id,
            user_id,
            name,
            username,
            ..
        } => Some((room_id.into(), user_id.into(), name, username)),
        _ => None,
    }
}

#[tokio::test]
async fn an_added_member_receives_at_once_and_is_told() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mut c = app.ws(&carol.access).await;
    let mut a = app.ws(&alice.access).await;

    // Being put into a new group.
    let g = app.create_group(&alice, "Team", &[&bob, &carol]).await;
    let added = c.recv_as(member_added).await;
    assert_eq!(
        added,
        (g, carol.id, Some("Team".to_string()), "carol".into())
    );
    app.group_send(&bob, g, "welcome").await;
    assert_eq!(c.recv_message().await.content, "welcome");

    // Being added to an existing one.
    let g2 = app.create_group(&alice, "Later", &[]).await;
    let r = app
        .post(
            &format!("/groups/{g2}/members"),
            Some(&alice.access),
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.recv_as(member_added).await.0, g2);
    let seen_by_alice = loop {
        let added = a.recv_as(member_added).await;
        if (added.0, added.1) == (g2, carol.id) {
            break added;
        }
    };
    assert_eq!(seen_by_alice.3, "carol");
    app.group_send(&alice, g2, "hi carol").await;
    assert_eq!(c.recv_message().await.content, "hi carol");
}

#[tokio::test]
async fn a_client_id_retry_stores_and_delivers_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut a = app.ws(&alice.access).await;
    let mut b = app.ws(&bob.access).await;
    let frame =
        json!({"type": "message", "room_id": g, "content": "only once", "client_id": "retry-1"});
    a.send(frame.clone()).await;
    let first = a.recv_message().await;
    a.send(frame).await;
    let again = a.recv_message().await;
    assert_eq!(first.message_id, again.message_id);
    assert_eq!(again.client_id.as_deref(), Some("retry-1"));
    // The same over REST returns that message too.
    let r = app
        .post(
            "/groups/send",
            Some(&alice.access),
            json!({"group_id": g, "content": "only once", "client_id": "retry-1"}),
        )
        .await;
    assert_eq!(r.body["data"]["id"], first.message_id);

    assert_eq!(b.recv_message().await.message_id, first.message_id);
    b.expect_no("new_message", QUIET).await;
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&bob.access))
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
}

fn ids(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn reconnect_and_sync_gets_each_missed_message_exactly_once() {
    let mut config = test_config();
    config.max_send_rate = 0;
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;

    let mut b = app.ws(&bob.access).await;
    app.group_send(&alice, g, "seen live").await;
    let live = b.recv_message().await;
    let cursor = live.sync_cursor;
    assert!(cursor >= live.message_id);
    drop(b);

    // While bob is away: group messages and a direct message.
    let mut missed = Vec::new();
    for i in 0..25 {
        let r = app.group_send(&alice, g, &format!("missed {i}")).await;
        missed.push(r.body["data"]["id"].as_i64().unwrap());
    }
    missed.push(app.dm(&alice, &bob, "missed dm").await.id);

    let mut b = app.ws(&bob.access).await;
    let mut got = Vec::new();
    let mut since = cursor;
    loop {
        b.send(json!({"type": "sync", "since": since, "limit": 10}))
            .await;
        let page = b
            .recv_as(|f| match f {
                ServerFrame::Sync(page) => Some(page),
                _ => None,
            })
            .await;
        got.extend(page.messages.iter().map(|m| m.message_id));
        since = page.next_since;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(got, missed, "each missed message once, in order");
    b.expect_no("new_message", QUIET).await;

    // The same over REST.
    let r = app
        .get(
            &format!("/sync?since={cursor}&limit=500"),
            Some(&bob.access),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r.body["messages"]), missed);
    assert_eq!(r.body["has_more"], false);
    let r = app.get("/sync", Some(&bob.access)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn read_receipts_reach_the_room_and_the_readers_other_connections() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let m = app.group_send(&alice, g, "read me").await.body["data"]["id"].clone();
    let mut a = app.ws(&alice.access).await;
    let mut b1 = app.ws(&bob.access).await;
    let mut b2 = app.ws(&bob.access).await;

    b1.send(json!({"type": "read", "room_id": g, "message_id": m}))
        .await;
    for ws in [&mut b1, &mut b2] {
        let r = ws.recv_type("read").await;
        assert_eq!(r["last_read_message_id"], m);
        assert_eq!(r["unread_count"], 0);
    }
    let r = a.recv_type("read").await;
    assert_eq!(r["user_id"], bob.id);
    assert_eq!(r["last_read_message_id"], m);
    assert!(
        r.get("unread_count").is_none(),
        "others do not see bob's count"
    );
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 0);

    // The REST route makes the same event.
    let m2 = app.group_send(&alice, g, "and me").await.body["data"]["id"].clone();
    app.post(&format!("/rooms/{g}/read"), Some(&bob.access), json!({}))
        .await;
    loop {
        let r = a.recv_type("read").await;
        if r["last_read_message_id"] == m2 {
            break;
        }
    }
}

#[tokio::test]
async fn presence_and_joining_rooms() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut a = app.ws(&alice.access).await;
    let mut e = app.ws(&eve.access).await;

    let mut b = app.ws(&bob.access).await;
    let p = a.recv_type("presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "user_id": bob.id, "username": "bob", "status": "online"})
    );
    let online = app.get("/ws/online-users", Some(&alice.access)).await;
    assert_eq!(online.body["count"], 2);
    let online = app.get("/ws/online-users", Some(&eve.access)).await;
    assert_eq!(
        online.body["online_users"],
        json!([eve.id]),
        "eve shares no room"
    );

    // join_room is "looking at this room": the others looking at it hear of it.
    a.send(json!({"type": "join_room", "room_id": g})).await;
    assert_eq!(a.recv_type("room_joined").await["room_id"], g);
    b.send(json!({"type": "join_room", "room_id": g.to_string()}))
        .await;
    assert_eq!(b.recv_type("room_joined").await["room_id"], g);
    let joined = a.recv_type("user_joined").await;
    assert_eq!(joined["user_id"], bob.id);
    b.send(json!({"type": "leave_room", "room_id": g})).await;
    assert_eq!(b.recv_type("room_left").await["room_id"], g);
    assert_eq!(a.recv_type("user_left").await["user_id"], bob.id);

    // A second connection does not announce anything; the last one going does.
    let b2 = app.ws(&bob.access).await;
    drop(b2);
    drop(b);
    let p = a.recv_type("presence").await;
    assert_eq!(p["status"], "offline");
    assert_eq!(p["user_id"], bob.id);
    e.expect_no("presence", QUIET).await;
}

#[tokio::test]
async fn a_slow_reader_is_closed_and_nobody_else_waits() {
    let mut config = test_config();
    config.max_send_rate = 0;
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let slowpoke = app.register("slowpoke").await;
    let g = app.create_group(&alice, "Team", &[&bob, &slowpoke]).await;
    let mut fast = app.ws(&bob.access).await;
    let slow: WsClient = app.ws(&slowpoke.access).await; // connected, then never read again
    assert_eq!(app.state.hub.connection_count(), 2);

    let big = "x".repeat(4000);
    let total = 3000;
    let send_all = async {
        for i in 0..total {
            let r = app.group_send(&alice, g, &format!("{i} {big}")).await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
    };
    let read_all = async {
        for i in 0..total {
            let m = fast.recv_message().await;
            assert!(m.content.starts_with(&format!("{i} ")));
        }
    };
    tokio::join!(send_all, read_all);
    // The slow connection was dropped by the server; the fast one is still there.
    app.wait_for_sockets(1).await;
    fast.ping().await;
    drop(slow);
}

#[tokio::test]
async fn two_hundred_sockets_and_rest_still_answers() {
    // The seed froze at 16 sockets: each one held a database connection.
    let mut config = test_config();
    config.db_pool_size = 4;
    let app = spawn_app_with(config).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(app.register(&format!("user{i}")).await);
    }
    let members: Vec<_> = users[1..].iter().collect();
    let g = app.create_group(&users[0], "Everyone", &members).await;
    let mut sockets = Vec::new();
    for i in 0..200 {
        sockets.push(app.ws(&users[i % 20].access).await);
    }
    assert_eq!(app.state.hub.connection_count(), 200);
    for _ in 0..20 {
        assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
        assert_eq!(
            app.get("/auth/me", Some(&users[3].access)).await.status,
            StatusCode::OK
        );
    }
    app.group_send(&users[0], g, "to all 200").await;
    for ws in sockets.iter_mut() {
        assert_eq!(ws.recv_message().await.content, "to all 200");
    }
}
