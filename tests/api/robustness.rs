//! Bad input of every kind gets a clear 4xx and changes nothing; nothing produces a 5xx. (Every reply
//! goes through `TestApp::send`, which fails the test on a 5xx or a non-JSON body.)

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::spawn_app;

#[tokio::test]
async fn malformed_bodies_on_every_post_route() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let routes = [
        "/auth/register".to_string(),
        "/auth/login".into(),
        "/auth/refresh".into(),
        "/auth/logout".into(),
        "/auth/change-password".into(),
        "/messages/send".into(),
        "/groups/create".into(),
        "/groups/send".into(),
        format!("/groups/{g}/members"),
        format!("/rooms/{g}/read"),
    ];
    let bodies: [&'static str; 10] = [
        "{",
        "[]",
        "null",
        "\"text\"",
        "42",
        "{\"recipient_id\": {}, \"content\": []}",
        "{\"group_id\": 1e400, \"content\": \"x\"}",
        "{\"user_ids\": [1, \"two\", null]}",
        "{\"message_id\": \"soon\"}",
        "\u{0}\u{1}binary",
    ];
    for path in &routes {
        for body in bodies {
            let r = app.post_raw(path, Some(&alice.access), body).await;
            // Unknown fields are ignored (as pydantic does): an object without `message_id` is a
            // valid "mark everything read".
            let valid_read =
                path.ends_with("/read") && body.starts_with('{') && !body.contains("message_id");
            assert!(
                r.status.is_client_error() || valid_read,
                "POST {path} {body:?} -> {} {}",
                r.status,
                r.body
            );
        }
    }
    let r = app
        .send(
            app.client
                .delete(app.url(&format!("/groups/{g}/members")))
                .bearer_auth(&alice.access)
                .header("content-type", "application/json")
                .body("{\"user_id\": \"everyone\"}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let members = app
        .get(&format!("/groups/{g}/members"), Some(&alice.access))
        .await;
    assert_eq!(members.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn huge_bodies_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let content = "x".repeat(2 * 1024 * 1024);
    let r = app
        .post(
            "/messages/send",
            Some(&alice.access),
            json!({"recipient_id": bob.id, "content": content}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Without a Content-Length (chunked), the limit holds too.
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /messages/send HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        alice.access
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "y".repeat(16 * 1024);
    for _ in 0..8 {
        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(frame.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"detail\""), "{text}");

    let chats = app.get("/messages/chats", Some(&alice.access)).await;
    assert_eq!(chats.body, json!([]), "nothing stored");
}

#[tokio::test]
async fn out_of_range_ids_are_unknown_not_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for path in [
        "/groups/99999999999999999/messages",
        "/groups/-1/messages",
        "/groups/2147483648/members",
        "/messages/chat/-7",
    ] {
        let r = app.get(path, Some(&alice.access)).await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.status
        );
    }
    let r = app
        .post(
            "/groups/send",
            Some(&alice.access),
            json!({"group_id": 99999999999i64, "content": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/rooms/1/read",
            Some(&alice.access),
            json!({"message_id": i64::MAX}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Statements a request runs, read from pg_stat_statements (P1-P4: the seed ran one or more per
/// item). Skipped when the database does not have the extension loaded.
async fn statements(db: &tokio_postgres::Client) -> Option<i64> {
    let row = db
        .query_one(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat_statements%'
               -- The instance's own clockwork, not the request's: heartbeat, bus, log tail check,
               -- and the senders' read pointers, moved after their messages are stored (on a
               -- connection of their own, whose settings are SET when it opens, maybe mid-request).
               AND query NOT LIKE '%server_instances%' AND query NOT LIKE '%pg_notify%'
               AND query NOT LIKE '%AS v(room, member, upto)%'
               AND query NOT LIKE 'SET %'
               AND query NOT LIKE '%coalesce(max(id), $1) FROM messages%'",
            &[],
        )
        .await
        .ok()?;
    Some(row.get(0))
}

#[tokio::test]
async fn statements_per_request_do_not_grow_with_the_data() {
    let app = spawn_app().await;
    let db = app.sql().await;
    if db
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .is_err()
        || statements(&db).await.is_none()
    {
        eprintln!("pg_stat_statements is not available here; skipping");
        return;
    }
    let alice = app.register("alice").await;
    let friends = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(app.register(&format!("friend{i}")).await);
        }
        v
    };

    async fn cost(
        app: &crate::common::TestApp,
        db: &tokio_postgres::Client,
        f: impl std::future::Future<Output = crate::common::Reply>,
    ) -> i64 {
        let before = statements(db).await.unwrap();
        let r = f.await;
        assert!(r.status.is_success(), "{}", r.body);
        let _ = app;
        statements(db).await.unwrap() - before
    }

    // One direct chat, one group, one message each...
    app.dm(&friends[0], &alice, "hello").await;
    let small_group = app.create_group(&alice, "small", &[&friends[0]]).await;
    app.group_send(&friends[0], small_group, "one").await;
    let chats_small = cost(&app, &db, app.get("/messages/chats", Some(&alice.access))).await;
    let groups_small = cost(&app, &db, app.get("/groups/my-groups", Some(&alice.access))).await;
    let history_small = cost(
        &app,
        &db,
        app.get(
            &format!("/groups/{small_group}/messages"),
            Some(&alice.access),
        ),
    )
    .await;
    let create_small = cost(
        &app,
        &db,
        app.post(
            "/groups/create",
            Some(&alice.access),
            json!({"name": "c", "member_ids": [friends[0].id]}),
        ),
    )
    .await;

    // ...against ten of each and fifty messages.
    for f in &friends[1..] {
        app.dm(f, &alice, "hello").await;
        app.create_group(&alice, "more", &[f]).await;
    }
    for i in 0..50 {
        app.group_send(&friends[0], small_group, &format!("m{i}"))
            .await;
    }
    let ids: Vec<Value> = friends.iter().map(|f| json!(f.id)).collect();
    let chats_big = cost(&app, &db, app.get("/messages/chats", Some(&alice.access))).await;
    let groups_big = cost(&app, &db, app.get("/groups/my-groups", Some(&alice.access))).await;
    let history_big = cost(
        &app,
        &db,
        app.get(
            &format!("/groups/{small_group}/messages"),
            Some(&alice.access),
        ),
    )
    .await;
    let create_big = cost(
        &app,
        &db,
        app.post(
            "/groups/create",
            Some(&alice.access),
            json!({"name": "c", "member_ids": ids}),
        ),
    )
    .await;

    assert_eq!(chats_small, chats_big, "GET /messages/chats");
    assert_eq!(groups_small, groups_big, "GET /groups/my-groups");
    assert_eq!(history_small, history_big, "GET /groups/{{id}}/messages");
    assert_eq!(create_small, create_big, "POST /groups/create");
    assert!(
        chats_big <= 3 && groups_big <= 3 && history_big <= 5 && create_big <= 5,
        "{chats_big} {groups_big} {history_big} {create_big}"
    );
}

#[tokio::test]
async fn nul_characters_are_refused_everywhere() {
    // PostgreSQL text cannot hold U+0000: the seed answered 500 to each of these.
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "plain", &[&bob]).await;
    let token = Some(alice.access.as_str());
    let posts = [
        (
            "/auth/register",
            None,
            json!({"username": "nul", "email": "nul@example.com", "password": "secret123", "full_name": "a\u{0}b"}),
        ),
        (
            "/auth/login",
            None,
            json!({"username": "ali\u{0}ce", "password": "secret123"}),
        ),
        (
            "/messages/send",
            token,
            json!({"recipient_id": bob.id, "content": "a\u{0}b"}),
        ),
        (
            "/messages/send",
            token,
            json!({"recipient_id": bob.id, "content": "ok", "client_id": "c\u{0}"}),
        ),
        (
            "/groups/send",
            token,
            json!({"group_id": group, "content": "\u{0}"}),
        ),
        (
            "/groups/create",
            token,
            json!({"name": "n\u{0}l", "member_ids": []}),
        ),
    ];
    for (path, token, body) in posts {
        let r = app.post(path, token, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.body
        );
        assert!(r.body.to_string().contains("NUL"), "{path}: {}", r.body);
    }
    for path in ["/users/search?q=a%00b", "/users/by-username/a%00b"] {
        let r = app.get(path, token).await;
        assert!(
            r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }

    let mut ws = app.ws(&alice.access).await;
    ws.send(json!({"type": "message", "room_id": group, "content": "x\u{0}y"}))
        .await;
    assert!(
        ws.recv_type("error").await["message"]
            .as_str()
            .unwrap()
            .contains("NUL")
    );
    // Nothing was stored, and the connection still works.
    ws.send(json!({"type": "message", "room_id": group, "content": "fine"}))
        .await;
    assert_eq!(ws.recv_message().await.content, "fine");
    let page = app.get(&format!("/groups/{group}/messages"), token).await;
    assert_eq!(page.body.as_array().unwrap().len(), 1, "{}", page.body);
}

#[tokio::test]
async fn dropped_database_connections_cost_a_retry_not_a_message() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "sturdy", &[&bob]).await;
    assert_eq!(
        app.group_send(&alice, group, "before").await.status,
        StatusCode::CREATED
    );

    // Every server connection to the database is cut (a restart, a failover, an admin).
    let db = app.sql().await;
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap();

    // A client that retries with its client_id gets its message stored once; no attempt is a 500
    // (the test client refuses any 5xx but 503).
    let mut stored = None;
    for _ in 0..5 {
        let r = app
            .post(
                "/groups/send",
                Some(&alice.access),
                json!({"group_id": group, "content": "after", "client_id": "retry-1"}),
            )
            .await;
        if r.status == StatusCode::CREATED {
            stored = Some(r.body["data"]["id"].clone());
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    }
    assert!(stored.is_some(), "no attempt succeeded");
    let page = app
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await;
    let texts = crate::common::contents(&page.body);
    assert_eq!(texts, ["before", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tests_database_is_dropped_when_the_test_ends() {
    let app = crate::common::spawn_app().await;
    let name = app.db.get_dbname().unwrap().to_string();
    let admin = app.admin();
    drop(app);
    let (client, connection) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let left = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(left.is_none(), "{name} is still there");
}

/// An operator's DELETE of a room or of a user in the database (no route deletes either) does
/// what the foreign keys of `messages` did: a room's messages go with it; a user's messages stay,
/// without their sender. Both deletions wait for the message log's order lock, so no message is
/// stored for a room or a sender being deleted.
#[tokio::test]
async fn deleting_a_room_or_a_user_in_the_database_keeps_messages_consistent() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let doomed = app.create_group(&alice, "doomed", &[&bob]).await;
    let kept = app.create_group(&alice, "kept", &[&carol]).await;
    app.group_send(&bob, doomed, "soon gone").await;
    app.group_send(&carol, kept, "carol was here").await;
    let db = app.sql().await;

    db.execute("DELETE FROM chat_rooms WHERE id = $1", &[&(doomed as i32)])
        .await
        .unwrap();
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM messages WHERE chat_room_id = $1",
            &[&(doomed as i32)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "a room's messages go with it");
    let r = app.group_send(&bob, doomed, "too late").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    db.execute("DELETE FROM users WHERE id = $1", &[&(carol.id as i32)])
        .await
        .unwrap();
    let page = app
        .get(&format!("/groups/{kept}/messages"), Some(&alice.access))
        .await;
    assert_eq!(page.body[0]["content"], "carol was here", "{}", page.body);
    assert!(page.body[0]["sender_id"].is_null(), "{}", page.body);
    // Sending goes on for everyone else.
    assert_eq!(
        app.group_send(&alice, kept, "still here").await.status,
        StatusCode::CREATED
    );
}
