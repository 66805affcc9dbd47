//! Reactions: added and taken back live on every instance and brought by `sync`, one of each
//! emoji per person, shown per message with counts and the reader's own, never an unread message.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn react(app: &TestApp, who: &TestUser, message: i64, emoji: &str, add: bool) -> Reply {
    let path = format!("/messages/{message}/reactions");
    let body = json!({ "emoji": emoji });
    if add {
        app.post(&path, Some(&who.access), body).await
    } else {
        app.delete(&path, Some(&who.access), body).await
    }
}

fn reactions_of(page: &Value, message: i64) -> Value {
    page.as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == message)
        .map(|m| m["reactions"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn reactions_reach_every_instance_live_and_after_a_sync() {
    let apps = spawn_cluster(2, test_config()).await;
    let (one, two) = (&apps[0], &apps[1]);
    let alice = one.register("alice").await;
    let bob = one.register("bob").await;
    let carol = one.register("carol").await;
    let group = one.create_group(&alice, "crew", &[&bob, &carol]).await;
    let sent = one.group_send(&alice, group, "ship it?").await;
    let message = sent.body["data"]["id"].as_i64().unwrap();
    let cursor = message;
    let mut bobs = two.ws(&bob.access).await;

    let r = react(one, &carol, message, "👍", true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["reaction"]["count"], 1);
    let live = bobs.recv_type("message_reaction").await;
    assert_eq!(live["message_id"], message, "{live}");
    assert_eq!(live["reaction"]["emoji"], "👍");
    assert_eq!(live["reaction"]["username"], "carol");
    assert_eq!(live["reaction"]["added"], true);
    // One of each per person: again changes nothing and tells nobody.
    let again = react(one, &carol, message, "👍", true).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body["data"].is_null(), "{}", again.body);
    react(two, &bob, message, "👍", true).await;
    react(two, &bob, message, "🎉", true).await;
    let live = bobs.recv_type("message_reaction").await;
    assert_eq!(live["reaction"]["count"], 2, "{live}");

    // History: counts in the order first given, and which are the reader's.
    let page = one
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await;
    assert_eq!(
        reactions_of(&page.body, message),
        json!([{"emoji": "👍", "count": 2, "me": true}, {"emoji": "🎉", "count": 1, "me": true}])
    );
    let page = two
        .get(&format!("/groups/{group}/messages"), Some(&alice.access))
        .await;
    assert_eq!(
        reactions_of(&page.body, message),
        json!([{"emoji": "👍", "count": 2, "me": false}, {"emoji": "🎉", "count": 1, "me": false}])
    );

    // Taken back; alice, away meanwhile, gets every change once from her cursor, in order.
    let r = react(two, &bob, message, "🎉", false).await;
    assert_eq!(r.body["data"]["reaction"]["count"], 0, "{}", r.body);
    let synced = two
        .get(&format!("/sync?since={cursor}"), Some(&alice.access))
        .await;
    let changes: Vec<(String, bool, i64)> = synced.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let r = &c["reaction"];
            (
                r["emoji"].as_str().unwrap().to_string(),
                r["added"].as_bool().unwrap(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("👍".to_string(), true, 1),
            ("👍".to_string(), true, 2),
            ("🎉".to_string(), true, 1),
            ("🎉".to_string(), false, 0)
        ]
    );

    // A reaction is not a message: alice's unread count stays 0 and bob's 1 (her message).
    let groups = one.get("/groups/my-groups", Some(&alice.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 0, "{}", groups.body);
}

#[tokio::test]
async fn only_members_react_with_one_short_emoji_and_a_deleted_message_has_none() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let m = app.dm(&alice, &bob, "hello").await;
    assert_eq!(
        react(&app, &eve, m.id, "👍", true).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        react(&app, &bob, 999_999, "👍", true).await.status,
        StatusCode::NOT_FOUND
    );
    for bad in ["", "a b", &"x".repeat(17)] {
        let r = react(&app, &bob, m.id, bad, true).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            r.body
        );
    }
    assert_eq!(
        react(&app, &bob, m.id, "👍🏽", true).await.status,
        StatusCode::OK
    );
    let r = app
        .delete(
            &format!("/messages/{}", m.id),
            Some(&alice.access),
            json!(null),
        )
        .await;
    assert!(r.status.is_success());
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert!(page.body[0].get("reactions").is_none(), "{}", page.body);
    assert_eq!(
        react(&app, &bob, m.id, "👍", true).await.status,
        StatusCode::CONFLICT
    );
}
