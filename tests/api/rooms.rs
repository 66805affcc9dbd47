use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn mark_a_group_read_up_to_a_message() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let r = app.group_send(&alice, g, &format!("m{i}")).await;
        ids.push(r.body["data"]["id"].as_i64().unwrap());
    }
    let path = format!("/rooms/{g}/read");
    let r = app
        .post(&path, Some(&bob.access), json!({"message_id": ids[1]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["last_read_message_id"], ids[1]);
    assert_eq!(r.body["unread_count"], 2);
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 2);

    // The pointer never moves back.
    let r = app
        .post(&path, Some(&bob.access), json!({"message_id": ids[0]}))
        .await;
    assert_eq!(r.body["last_read_message_id"], ids[1]);

    // No body: everything.
    let r = app
        .send(app.client.post(app.url(&path)).bearer_auth(&bob.access))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["last_read_message_id"], ids[3]);
    assert_eq!(r.body["unread_count"], 0);
}

#[tokio::test]
async fn mark_read_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let other = app.create_group(&alice, "Other", &[]).await;
    let foreign = app.group_send(&alice, other, "elsewhere").await.body["data"]["id"].clone();
    let dm = i64::from(app.dm(&alice, &bob, "hi").await.chat_room_id);

    let r = app
        .post(
            &format!("/rooms/{g}/read"),
            Some(&bob.access),
            json!({"message_id": foreign}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "Message not found in this room");
    let r = app
        .post(&format!("/rooms/{g}/read"), Some(&eve.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(&format!("/rooms/{dm}/read"), Some(&eve.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post("/rooms/777777/read", Some(&bob.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post("/rooms/abc/read", Some(&bob.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A direct chat can be marked read through the same route.
    let r = app
        .post(&format!("/rooms/{dm}/read"), Some(&bob.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let chats = app.get("/messages/chats", Some(&bob.access)).await;
    assert_eq!(chats.body[0]["unread_count"], 0);
}
