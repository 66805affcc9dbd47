//! Threads: a reply joins the thread of what it answers; the first message counts its replies;
//! the thread reads whole, in order, for members only; replies count as unread like any message.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

async fn reply(app: &TestApp, who: &TestUser, group: i64, to: i64, text: &str) -> i64 {
    let r = app
        .post(
            "/groups/send",
            Some(&who.access),
            json!({"group_id": group, "content": text, "reply_to": to}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_reply_to_a_reply_joins_the_thread_and_the_root_counts_them() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let group = app.create_group(&alice, "crew", &[&bob]).await;
    let root = app
        .group_send(&alice, group, "release on friday?")
        .await
        .body["data"]["id"]
        .as_i64()
        .unwrap();
    app.group_send(&alice, group, "unrelated").await;
    let first = reply(&app, &bob, group, root, "fine by me").await;
    let second = reply(&app, &alice, group, first, "@bob great").await;
    // Thread replies count as unread and as mentions, like any message.
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert!(
        groups.body[0]["unread_count"].as_i64().unwrap() >= 1,
        "{}",
        groups.body
    );
    assert_eq!(groups.body[0]["mention_count"], 1, "{}", groups.body);

    let page = app
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await;
    let messages = page.body.as_array().unwrap();
    let shown_root = messages.iter().find(|m| m["id"] == root).unwrap();
    assert_eq!(shown_root["thread"]["replies"], 2, "{shown_root}");
    assert!(shown_root["thread"]["last_reply_at"].is_string());
    let shown_second = messages.iter().find(|m| m["id"] == second).unwrap();
    assert_eq!(
        shown_second["thread_root"], root,
        "a reply to a reply is in the root's thread"
    );

    for any in [root, first, second] {
        let thread = app
            .get(&format!("/messages/{any}/thread"), Some(&bob.access))
            .await;
        assert_eq!(thread.status, StatusCode::OK, "{}", thread.body);
        assert_eq!(thread.body["root"]["id"], root);
        let replies: Vec<i64> = thread.body["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(replies, [first, second]);
    }
    // Bob wrote in the thread: a later reply that does not name him still reaches him as one.
    let mut bobs = app.ws(&bob.access).await;
    reply(&app, &alice, group, root, "one more thing").await;
    let live = bobs.recv_type("new_message").await;
    assert_eq!(live["content"], "one more thing");
    assert_eq!(live["mention"], true, "he follows the thread: {live}");
    app.group_send(&alice, group, "not in the thread").await;
    let live = bobs.recv_type("new_message").await;
    assert!(live.get("mention").is_none(), "{live}");

    let outsider = app
        .get(&format!("/messages/{root}/thread"), Some(&eve.access))
        .await;
    assert_eq!(outsider.status, StatusCode::NOT_FOUND);
    let unknown = app.get("/messages/999999/thread", Some(&bob.access)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}
