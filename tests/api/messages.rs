use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{contents, spawn_app};

#[tokio::test]
async fn send_a_direct_message() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let r = app
        .post(
            "/messages/send",
            Some(&alice.access),
            json!({"recipient_id": bob.id, "content": "Hello Bob"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["message"], "Message sent successfully");
    let m = &r.body["data"];
    assert_eq!(m["sender_id"], alice.id);
    assert_eq!(m["content"], "Hello Bob");
    assert_eq!(m["is_read"], false);
    assert!(m["id"].is_i64() && m["chat_room_id"].is_i64());
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));

    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body[0]["content"], "Hello Bob");
    assert_eq!(page.body[0]["sender_username"], "alice");
    assert_eq!(page.body[0]["sender_full_name"], "alice Tester");
}

#[tokio::test]
async fn send_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let send = |to: Value, content: Value| {
        app.post(
            "/messages/send",
            Some(&alice.access),
            json!({"recipient_id": to, "content": content}),
        )
    };
    let r = send(json!(alice.id), json!("me")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "Cannot send message to yourself");
    let r = send(json!(999_999), json!("hi")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "Recipient user not found");
    for bad in [
        json!(""),
        json!("   \n "),
        json!("x".repeat(5001)),
        json!(5),
    ] {
        let r = send(json!(bob.id), bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", "content"]));
    }
    let r = send(json!("not a number"), json!("hi")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A numeric string is accepted, as the seed did.
    let r = send(json!(bob.id.to_string()), json!("hi")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Exactly 5,000 characters is allowed, counted in characters not bytes.
    let r = send(json!(bob.id), json!("é".repeat(5000))).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn history_pages_newest_first_each_oldest_to_newest() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for i in 1..=7 {
        app.dm(&alice, &bob, &format!("m{i}")).await;
    }
    let path = format!("/messages/chat/{}", bob.id);
    let page = app
        .get(&format!("{path}?limit=3"), Some(&alice.access))
        .await;
    assert_eq!(contents(&page.body), ["m5", "m6", "m7"]);
    let page = app
        .get(&format!("{path}?limit=3&offset=3"), Some(&alice.access))
        .await;
    assert_eq!(contents(&page.body), ["m2", "m3", "m4"]);
    let all = app.get(&path, Some(&alice.access)).await;
    assert_eq!(all.body.as_array().unwrap().len(), 7);

    // Cursors: stable while new messages arrive.
    let m5 = all.body[4]["id"].as_i64().unwrap();
    app.dm(&bob, &alice, "m8").await;
    let page = app
        .get(
            &format!("{path}?limit=3&before_id={m5}"),
            Some(&alice.access),
        )
        .await;
    assert_eq!(contents(&page.body), ["m2", "m3", "m4"]);
    let page = app
        .get(&format!("{path}?after_id={m5}"), Some(&alice.access))
        .await;
    assert_eq!(contents(&page.body), ["m6", "m7", "m8"]);
    let page = app
        .get(
            &format!("{path}?after_id={m5}&limit=2"),
            Some(&alice.access),
        )
        .await;
    assert_eq!(contents(&page.body), ["m6", "m7"]);
}

#[tokio::test]
async fn history_query_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let path = format!("/messages/chat/{}", bob.id);
    for q in [
        "limit=0",
        "limit=101",
        "offset=-1",
        "limit=abc",
        "before_id=-5",
        "offset=2&before_id=9",
    ] {
        let r = app.get(&format!("{path}?{q}"), Some(&alice.access)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(r.body["detail"][0]["loc"][0], "query", "{q}");
    }
    let r = app.get("/messages/chat/abc", Some(&alice.access)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in ["/messages/chat/999999", "/messages/chat/99999999999999"] {
        let r = app.get(path, Some(&alice.access)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.detail(), "User not found");
    }
    let r = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&alice.access))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reading_history_creates_nothing() {
    // W9: the seed created an empty room on GET, which then showed in the other user's chat list.
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let r = app
        .get(&format!("/messages/chat/{}", bob.id), Some(&alice.access))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!([]));
    for user in [&alice, &bob] {
        let chats = app.get("/messages/chats", Some(&user.access)).await;
        assert_eq!(chats.body, json!([]));
    }
}

#[tokio::test]
async fn reading_a_direct_chat_marks_it_read_for_the_reader_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.dm(&alice, &bob, "one").await;
    app.dm(&alice, &bob, "two").await;

    let chats = app.get("/messages/chats", Some(&bob.access)).await;
    assert_eq!(chats.body[0]["unread_count"], 2);
    assert_eq!(chats.body[0]["other_user_username"], "alice");
    assert_eq!(chats.body[0]["last_message"], "two");
    let alice_view = app.get("/messages/chats", Some(&alice.access)).await;
    assert_eq!(
        alice_view.body[0]["unread_count"], 0,
        "own messages are not unread"
    );

    // Alice's own messages are unread until Bob reads them.
    let page = app
        .get(&format!("/messages/chat/{}", bob.id), Some(&alice.access))
        .await;
    assert_eq!(page.body[1]["is_read"], false);

    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.body[0]["is_read"], true);
    assert_eq!(page.body[1]["is_read"], true);
    let chats = app.get("/messages/chats", Some(&bob.access)).await;
    assert_eq!(chats.body[0]["unread_count"], 0);

    let page = app
        .get(&format!("/messages/chat/{}", bob.id), Some(&alice.access))
        .await;
    assert_eq!(page.body[1]["is_read"], true, "bob has read it now");
}

#[tokio::test]
async fn chat_list_is_newest_activity_first() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    app.dm(&bob, &alice, "from bob").await;
    app.dm(&carol, &alice, "from carol").await;
    app.dm(&dave, &alice, "from dave").await;
    app.dm(&bob, &alice, "bob again").await;
    let chats = app.get("/messages/chats", Some(&alice.access)).await;
    let order: Vec<&str> = chats
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["other_user_username"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["bob", "dave", "carol"]);
    assert_eq!(chats.body[0]["last_message"], "bob again");
    assert!(
        chats.body[0]["last_message_time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[tokio::test]
async fn a_retried_send_with_the_same_client_id_stores_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let body = json!({"recipient_id": bob.id, "content": "once", "client_id": "c-1"});
    let first = app
        .post("/messages/send", Some(&alice.access), body.clone())
        .await;
    let second = app.post("/messages/send", Some(&alice.access), body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body["data"]["id"], second.body["data"]["id"]);
    assert_eq!(first.body["data"]["client_id"], "c-1");
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(contents(&page.body), ["once"]);
    assert_eq!(page.body[0]["client_id"], "c-1");

    // The same client_id from another sender is a different message.
    let r = app
        .post(
            "/messages/send",
            Some(&bob.access),
            json!({"recipient_id": alice.id, "content": "mine", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.body["data"]["id"], first.body["data"]["id"]);

    // Reusing it for another room is a conflict, not a silent success.
    let carol = app.register("carol").await;
    let r = app
        .post(
            "/messages/send",
            Some(&alice.access),
            json!({"recipient_id": carol.id, "content": "other", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}
