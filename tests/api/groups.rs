use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn create_a_group() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let r = app
        .post(
            "/groups/create",
            Some(&alice.access),
            // Duplicates and the creator in the list are fine (W7: the seed gave 500).
            json!({"name": "Team", "member_ids": [bob.id, bob.id, alice.id]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["message"], "Group created successfully");
    let g = &r.body["group"];
    assert_eq!(g["name"], "Team");
    assert_eq!(g["room_type"], "group");
    assert_eq!(g["created_by"], alice.id);
    assert_eq!(g["member_count"], 2);
    assert!(g["created_at"].as_str().unwrap().ends_with('Z'));

    // A group of one is allowed (the seed's own tests wanted it).
    let r = app
        .post(
            "/groups/create",
            Some(&alice.access),
            json!({"name": "Notes", "member_ids": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["group"]["member_count"], 1);
}

#[tokio::test]
async fn create_group_errors() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let r = app
        .post(
            "/groups/create",
            Some(&alice.access),
            json!({"name": "T", "member_ids": [424242]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "User with ID 424242 not found");
    for body in [
        json!({"name": "", "member_ids": []}),
        json!({"name": "   ", "member_ids": []}),
        json!({"name": "x".repeat(101), "member_ids": []}),
        json!({"name": "T", "member_ids": "nope"}),
        json!({"name": "T"}),
    ] {
        let r = app
            .post("/groups/create", Some(&alice.access), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let groups = app.get("/groups/my-groups", Some(&alice.access)).await;
    assert_eq!(groups.body, json!([]), "nothing half-created");
}

#[tokio::test]
async fn members_talk_and_outsiders_cannot() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;

    let r = app.group_send(&bob, g, "hi team").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["data"]["chat_room_id"], g);

    let r = app.group_send(&eve, g, "let me in").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.detail(), "You are not a member of this group");
    let r = app
        .get(&format!("/groups/{g}/messages"), Some(&eve.access))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app.group_send(&alice, 987654, "void").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "Group not found");
    let r = app
        .get("/groups/987654/messages", Some(&alice.access))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&alice.access))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body[0]["content"], "hi team");
    assert_eq!(page.body[0]["sender_username"], "bob");
}

#[tokio::test]
async fn direct_rooms_are_not_groups() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let dm = i64::from(app.dm(&alice, &bob, "private").await.chat_room_id);

    // Members are told it is not a group; others learn nothing.
    let r = app.group_send(&alice, dm, "x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "This is not a group chat");
    let r = app
        .get(&format!("/groups/{dm}/messages"), Some(&eve.access))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // S2: nobody can be added to a direct room, not even by the one who started it.
    let r = app
        .post(
            &format!("/groups/{dm}/members"),
            Some(&alice.access),
            json!({"user_ids": [eve.id]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .delete(
            &format!("/groups/{dm}/members"),
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.body[0]["content"], "private");
}

#[tokio::test]
async fn my_groups_with_last_message_and_unread_counts() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let quiet = app.create_group(&alice, "Quiet", &[&bob]).await;
    let busy = app.create_group(&alice, "Busy", &[&bob]).await;
    app.group_send(&alice, busy, "one").await;
    app.group_send(&alice, busy, "two").await;

    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.status, StatusCode::OK);
    let list = groups.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], busy);
    assert_eq!(list[0]["last_message"], "two");
    assert_eq!(list[0]["unread_count"], 2);
    assert_eq!(list[0]["member_count"], 2);
    assert_eq!(list[1]["id"], quiet);
    assert_eq!(list[1]["last_message"], serde_json::Value::Null);
    assert_eq!(list[1]["unread_count"], 0);

    let alice_view = app.get("/groups/my-groups", Some(&alice.access)).await;
    assert_eq!(alice_view.body[0]["unread_count"], 0);

    // Reading the group marks it read for the reader.
    app.get(&format!("/groups/{busy}/messages"), Some(&bob.access))
        .await;
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 0);
}

#[tokio::test]
async fn only_the_admin_adds_members() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    app.group_send(&alice, g, "before carol").await;

    let path = format!("/groups/{g}/members");
    let r = app
        .post(&path, Some(&bob.access), json!({"user_ids": [carol.id]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.detail(), "Only group creator can add members");

    let r = app
        .post(
            &path,
            Some(&alice.access),
            json!({"user_ids": [carol.id, carol.id, bob.id, dave.id]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["members_added"], 2);
    assert_eq!(r.body["message"], "Successfully added 2 members");

    let r = app
        .post(&path, Some(&alice.access), json!({"user_ids": [31337]}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(&path, Some(&alice.access), json!({"user_ids": []}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let members = app.get(&path, Some(&carol.access)).await;
    assert_eq!(members.status, StatusCode::OK);
    let names: Vec<&str> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);
    assert_eq!(members.body[0]["is_admin"], true);
    assert_eq!(members.body[1]["is_admin"], false);

    // New members can read the history, which starts out read for them.
    let groups = app.get("/groups/my-groups", Some(&carol.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 0);
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&carol.access))
        .await;
    assert_eq!(page.body[0]["content"], "before carol");
}

#[tokio::test]
async fn removing_and_leaving() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "Team", &[&bob, &carol]).await;
    let path = format!("/groups/{g}/members");

    let r = app
        .delete(&path, Some(&bob.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.detail(), "Not authorized to remove this member");

    let r = app
        .delete(&path, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Member removed successfully");
    let r = app
        .delete(&path, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "Member not found in group");

    // A removed member can neither read nor write.
    assert_eq!(
        app.group_send(&carol, g, "still here?").await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .get(&format!("/groups/{g}/messages"), Some(&carol.access))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Leaving is removing yourself.
    let r = app
        .delete(&path, Some(&bob.access), json!({"user_id": bob.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body, json!([]));
}

#[tokio::test]
async fn a_creator_who_leaves_loses_the_group() {
    // S5: the seed's creator kept admin rights after leaving and could re-add themselves.
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let path = format!("/groups/{g}/members");

    let r = app
        .delete(&path, Some(&alice.access), json!({"user_id": alice.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(&path, Some(&alice.access), json!({"user_ids": [alice.id]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .delete(&path, Some(&alice.access), json!({"user_id": bob.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The group passes to the longest-standing member.
    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["created_by"], bob.id);
    let r = app
        .post(&path, Some(&bob.access), json!({"user_ids": [carol.id]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
