use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn simultaneous_first_messages_share_one_room() {
    // W11: the seed's check-then-insert could create two direct rooms for one pair.
    let app = spawn_app().await;
    let mut pairs = Vec::new();
    for i in 0..10 {
        let a = app.register(&format!("left{i}")).await;
        let b = app.register(&format!("right{i}")).await;
        pairs.push((a, b));
    }
    let sends = pairs.iter().flat_map(|(a, b)| {
        [
            app.post(
                "/messages/send",
                Some(&a.access),
                json!({"recipient_id": b.id, "content": "hi from a"}),
            ),
            app.post(
                "/messages/send",
                Some(&b.access),
                json!({"recipient_id": a.id, "content": "hi from b"}),
            ),
        ]
    });
    let replies = join_all(sends).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    for (i, (a, b)) in pairs.iter().enumerate() {
        let room_a = &replies[2 * i].body["data"]["chat_room_id"];
        let room_b = &replies[2 * i + 1].body["data"]["chat_room_id"];
        assert_eq!(room_a, room_b);
        for user in [a, b] {
            let chats = app.get("/messages/chats", Some(&user.access)).await;
            assert_eq!(chats.body.as_array().unwrap().len(), 1);
        }
        let page = app
            .get(&format!("/messages/chat/{}", b.id), Some(&a.access))
            .await;
        assert_eq!(page.body.as_array().unwrap().len(), 2);
    }
    let db = app.sql().await;
    let rooms: i64 = db
        .query_one(
            "SELECT count(*) FROM chat_rooms WHERE room_type = 'direct'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rooms, 10);
}

#[tokio::test]
async fn simultaneous_registrations_of_one_name_make_one_user() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        app.post(
            "/auth/register",
            None,
            json!({
                "username": if i % 2 == 0 { "Popular" } else { "popular" },
                "email": format!("popular{i}@example.com"),
                "password": crate::common::PASSWORD,
            }),
        )
    });
    let replies = join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.detail(), "Username already taken");
    }
    let db = app.sql().await;
    let users: i64 = db
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
}

#[tokio::test]
async fn simultaneous_sends_to_many_rooms_each_store_once() {
    // One writer: every send of the burst goes through the same queue, so they share statements.
    let mut config = crate::common::test_config();
    config.message_writers = 1;
    let app = crate::common::spawn_app_with(config).await;
    let outsider = app.register("outsider").await;
    let mut rooms = Vec::new();
    for i in 0..6 {
        let sender = app.register(&format!("sender{i}")).await;
        let reader = app.register(&format!("reader{i}")).await;
        let group = app
            .create_group(&sender, &format!("room{i}"), &[&reader])
            .await;
        rooms.push((sender, reader, group));
    }
    let app = &app;
    let send = |user: &crate::common::TestUser, group: i64, mut body: serde_json::Value| {
        let token = user.access.clone();
        body["group_id"] = group.into();
        async move { app.post("/groups/send", Some(&token), body).await }
    };
    let burst = rooms.iter().flat_map(|(sender, _, group)| {
        let mut sends: Vec<_> = (0..5)
            .map(|n| {
                send(
                    sender,
                    *group,
                    json!({"content": format!("m{n}"), "client_id": format!("{group}-{n}")}),
                )
            })
            .collect();
        // A retry racing its original: both answers are the one stored message.
        for _ in 0..2 {
            sends.push(send(
                sender,
                *group,
                json!({"content": "retried", "client_id": format!("{group}-r")}),
            ));
        }
        sends.push(send(&outsider, *group, json!({"content": "let me in"})));
        sends
    });
    let replies = join_all(burst).await;
    for (i, (_, reader, group)) in rooms.iter().enumerate() {
        let mine = &replies[i * 8..(i + 1) * 8];
        for r in &mine[..7] {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["data"]["chat_room_id"], *group);
        }
        assert_eq!(mine[5].body["data"]["id"], mine[6].body["data"]["id"]);
        assert_eq!(mine[7].status, StatusCode::FORBIDDEN, "{}", mine[7].body);

        let groups = app.get("/groups/my-groups", Some(&reader.access)).await;
        assert_eq!(groups.body[0]["unread_count"], 6, "{}", groups.body);
        let page = app
            .get(&format!("/groups/{group}/messages"), Some(&reader.access))
            .await;
        let mut texts = crate::common::contents(&page.body);
        texts.sort_unstable();
        assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4", "retried"]);
    }
    // Each sender has read up to their own last message.
    for (sender, _, _) in &rooms {
        let groups = app.get("/groups/my-groups", Some(&sender.access)).await;
        assert_eq!(groups.body[0]["unread_count"], 0, "{}", groups.body);
    }
}
