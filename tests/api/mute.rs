//! Muting: kept on the server for every client; a muted room keeps its own unread count, and
//! mentions still come through unless it was muted with `all`.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_muted_room_keeps_its_count_and_mentions_unless_muted_with_all() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let group = app.create_group(&alice, "random", &[&bob]).await;
    let mute = format!("/rooms/{group}/mute");
    let r = app
        .client
        .put(app.url(&mute))
        .bearer_auth(&bob.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let state: serde_json::Value = r.json().await.unwrap();
    assert_eq!(state["muted"], true);
    assert!(state.get("muted_until").is_none(), "until unmuted: {state}");

    let mut bobs = app.ws(&bob.access).await;
    app.group_send(&alice, group, "lunch, @bob?").await;
    let live = bobs.recv_type("new_message").await;
    assert_eq!(
        live["mention"], true,
        "a plain mute still lets mentions through: {live}"
    );
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["muted"], true);
    assert_eq!(groups.body[0]["unread_count"], 1);
    assert_eq!(groups.body[0]["mention_count"], 1);

    // Muted with all, for an hour: mentions of bob are not marked any more.
    let r = app
        .client
        .put(app.url(&mute))
        .bearer_auth(&bob.access)
        .json(&json!({"seconds": 3600, "all": true}))
        .send()
        .await
        .unwrap();
    let state: serde_json::Value = r.json().await.unwrap();
    assert!(state["muted_until"].is_string(), "{state}");
    app.group_send(&alice, group, "@bob again").await;
    let live = bobs.recv_type("new_message").await;
    assert!(
        live.get("mention").is_none() || live["mention"] == false,
        "{live}"
    );
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 2, "its own count stays");
    assert_eq!(groups.body[0]["mention_count"], 1);
    assert_eq!(groups.body[0]["mute_all"], true);
    // Alice's view is her own.
    let hers = app.get("/groups/my-groups", Some(&alice.access)).await;
    assert_eq!(hers.body[0]["muted"], false);

    let r = app.delete(&mute, Some(&bob.access), json!(null)).await;
    assert_eq!(r.body["muted"], false);
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["muted"], false);

    // Someone else's room, or nonsense.
    let r = app
        .client
        .put(app.url(&mute))
        .bearer_auth(&eve.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .put(app.url(&mute))
        .bearer_auth(&bob.access)
        .json(&json!({"seconds": -5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .client
        .put(app.url(&mute))
        .bearer_auth(&bob.access)
        .json(&json!({"seconds": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
