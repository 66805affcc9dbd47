use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

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
                "password": crate::helpers::PASSWORD,
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
