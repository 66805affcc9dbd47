//! Edit, delete, reply, search and mentions (issue 14), over real sockets.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Reply, TestApp, TestUser, spawn_app};

async fn say(app: &TestApp, who: &TestUser, group: i64, text: &str) -> i64 {
    let r = app
        .post(
            "/groups/send",
            Some(&who.access),
            json!({"group_id": group, "content": text}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"]["id"].as_i64().unwrap()
}

/// `PATCH /messages/{id}` with new text, as `who`.
async fn edit(app: &TestApp, who: &TestUser, id: i64, text: &str) -> Reply {
    app.patch(
        &format!("/messages/{id}"),
        Some(&who.access),
        json!({"content": text}),
    )
    .await
}

/// `DELETE /messages/{id}`, as `who`.
async fn delete(app: &TestApp, who: &TestUser, id: i64) -> Reply {
    app.delete(&format!("/messages/{id}"), Some(&who.access), json!(null))
        .await
}

async fn history(app: &TestApp, who: &TestUser, group: i64) -> Vec<Value> {
    let r = app
        .get(&format!("/groups/{group}/messages"), Some(&who.access))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

async fn search(app: &TestApp, who: &TestUser, query: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/search?q={}", urlencode(query)),
            Some(&who.access),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["results"].as_array().unwrap().clone()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_author_edits_and_deletes_and_every_member_sees_it_live() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "team", &[&bob, &carol]).await;
    let mut bob_ws = app.ws(&bob.access).await;
    let typo = say(&app, &bob, g, "the biuld is green").await;
    bob_ws.recv_message().await;

    let edited = edit(&app, &bob, typo, "the build is green").await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let live = bob_ws.recv_type("message_edited").await;
    assert_eq!(live["message_id"], typo);
    assert_eq!(live["content"], "the build is green");
    let page = history(&app, &carol, g).await;
    assert_eq!(page[0]["content"], "the build is green");
    assert!(page[0]["edited_at"].is_string(), "{}", page[0]);

    // Only the author edits; nobody outside the room even learns it exists.
    for (who, status) in [
        (&alice, StatusCode::FORBIDDEN),
        (&carol, StatusCode::FORBIDDEN),
    ] {
        let r = edit(&app, who, typo, "x").await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let stranger = app.register("mallory").await;
    let r = edit(&app, &stranger, typo, "x").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .delete("/messages/999999", Some(&bob.access), json!(null))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = edit(&app, &bob, typo, "  ").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A member deletes only their own; the group's admin (alice) may delete anyone's.
    let r = delete(&app, &carol, typo).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = delete(&app, &alice, typo).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let live = bob_ws.recv_type("message_deleted").await;
    assert_eq!(live["message_id"], typo);
    let page = history(&app, &carol, g).await;
    assert_eq!(page[0]["deleted"], true);
    assert_eq!(page[0]["content"], "", "no text kept");
    let r = edit(&app, &bob, typo, "back").await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Nothing of its text remains anywhere: not in the database, nor in search, nor in sync.
    let db = app.sql().await;
    let texts: Vec<Option<String>> = db
        .query(
            "SELECT content FROM messages WHERE id = $1
             UNION ALL SELECT content FROM message_changes WHERE message_id = $1",
            &[&typo],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        texts.iter().all(|t| t.as_deref().unwrap_or("").is_empty()),
        "{texts:?}"
    );
    assert!(search(&app, &carol, "build").await.is_empty());
    let synced = app.get("/sync?since=0", Some(&carol.access)).await;
    assert!(
        !synced.body.to_string().contains("build"),
        "{}",
        synced.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_while_away_reaches_a_member_once_after_sync() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    let mut bob_ws = app.ws(&bob.access).await;
    let id = say(&app, &alice, g, "meet at 10").await;
    let seen = bob_ws.recv_message().await;
    let cursor = seen.sync_cursor;
    drop(bob_ws);

    edit(&app, &alice, id, "meet at 11").await;
    let later = say(&app, &alice, g, "see you").await;
    let r = delete(&app, &alice, later).await;
    assert_eq!(r.status, StatusCode::OK);

    let mut bob_ws = app.ws(&bob.access).await;
    bob_ws.send(json!({"type": "sync", "since": cursor})).await;
    let reply = bob_ws.recv_type("sync").await;
    let changes = reply["changes"].as_array().unwrap();
    let edits: Vec<&Value> = changes.iter().filter(|c| c["message_id"] == id).collect();
    assert_eq!(edits.len(), 1, "the edit once: {reply}");
    assert_eq!(edits[0]["content"], "meet at 11");
    // The message sent and deleted while away comes as it is now: a tombstone, once.
    let messages = reply["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{reply}");
    assert_eq!(messages[0]["message_id"], later);
    assert_eq!(messages[0]["deleted"], true);
    // Resuming from where that sync ended brings nothing again.
    let next = reply["next_since"].as_i64().unwrap();
    bob_ws.send(json!({"type": "sync", "since": next})).await;
    let again = bob_ws.recv_type("sync").await;
    assert!(again.get("changes").is_none(), "{again}");
    assert_eq!(again["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_carries_a_quote_of_what_it_answers() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    let other = app.create_group(&alice, "other", &[]).await;
    let mut alice_ws = app.ws(&alice.access).await;
    let question = say(&app, &alice, g, "who takes the release on friday?").await;
    let asked = alice_ws.recv_type("new_message").await;
    assert!(asked.get("reply_to").is_none(), "{asked}");
    let r = app
        .post(
            "/groups/send",
            Some(&bob.access),
            json!({"group_id": g, "content": "I do", "reply_to": question}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let live = alice_ws.recv_type("new_message").await;
    assert_eq!(live["reply_to"]["message_id"], question);
    assert_eq!(live["reply_to"]["sender_username"], "alice");
    assert_eq!(
        live["reply_to"]["excerpt"],
        "who takes the release on friday?"
    );
    let page = history(&app, &alice, g).await;
    assert_eq!(page[1]["reply_to"]["message_id"], question);

    // Only a message of the same room can be answered.
    let elsewhere = say(&app, &alice, other, "private").await;
    for bad in [elsewhere, 999_999] {
        let r = app
            .post(
                "/groups/send",
                Some(&alice.access),
                json!({"group_id": g, "content": "re", "reply_to": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_your_rooms_only_newest_first() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    let secret = app.create_group(&carol, "secret", &[]).await;
    let first = say(&app, &alice, g, "Deploy on Friday").await;
    say(&app, &bob, g, "lunch?").await;
    let second = say(&app, &bob, g, "the deploy went fine").await;
    say(&app, &carol, secret, "deploy the secret thing").await;

    let found = search(&app, &bob, "deploy").await;
    let ids: Vec<i64> = found
        .iter()
        .map(|m| m["message_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [second, first],
        "newest first, case-insensitive, not carol's room"
    );
    assert!(
        search(&app, &bob, "\"friday deploy\"").await.is_empty(),
        "a phrase is in order"
    );

    // Paging: one at a time, then the next older one.
    let r = app.get("/search?q=deploy&limit=1", Some(&bob.access)).await;
    assert_eq!(r.body["results"][0]["message_id"], second);
    let older = r.body["next_before"].as_i64().unwrap();
    let r = app
        .get(
            &format!("/search?q=deploy&limit=1&before={older}"),
            Some(&bob.access),
        )
        .await;
    assert_eq!(r.body["results"][0]["message_id"], first);

    // Someone else's room: not found; bad input: 422.
    let r = app
        .get(
            &format!("/search?q=deploy&room_id={secret}"),
            Some(&bob.access),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for q in ["/search?q=", "/search?q=x&limit=0", "/search"] {
        let r = app.get(q, Some(&bob.access)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.body
        );
    }

    // A member removed from the group finds nothing of it any more.
    let r = app
        .delete(
            &format!("/groups/{g}/members"),
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(search(&app, &bob, "deploy").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_flagged_for_the_named_member_and_counted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let g = app.create_group(&alice, "team", &[&bob, &carol]).await;
    let mut bob_ws = app.ws(&bob.access).await;
    let mut carol_ws = app.ws(&carol.access).await;

    let plain = say(&app, &alice, g, "no names here").await;
    bob_ws.recv_message().await;
    carol_ws.recv_message().await;
    let text = "@bob can you look at this? (mail bob@example.com)";
    say(&app, &alice, g, text).await;
    let to_bob = bob_ws.recv_type("new_message").await;
    let to_carol = carol_ws.recv_type("new_message").await;
    assert_eq!(to_bob["mention"], true);
    assert!(to_carol.get("mention").is_none(), "{to_carol}");

    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    assert_eq!(groups.body[0]["unread_count"], 2);
    assert_eq!(groups.body[0]["mention_count"], 1);
    let groups = app.get("/groups/my-groups", Some(&carol.access)).await;
    assert_eq!(groups.body[0]["mention_count"], 0);
    // Reading the first leaves the mention unread, and says so.
    let r = app
        .post(
            &format!("/rooms/{g}/read"),
            Some(&bob.access),
            json!({"message_id": plain}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["unread_count"], 1);
    assert_eq!(r.body["mention_count"], 1);
    // History marks it for the named reader only.
    let page = history(&app, &bob, g).await;
    assert_eq!(page[1]["mention"], true);
    let page = history(&app, &carol, g).await;
    assert!(page[1].get("mention").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_edit_delete_reply_and_search_is_a_clear_4xx() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    let id = say(&app, &alice, g, "original").await;
    let bodies = [
        "{",
        "[]",
        "null",
        "42",
        "{\"content\": []}",
        "{\"content\": null}",
        "{}",
        "\u{0}\u{1}binary",
    ];
    for body in bodies {
        let r = app
            .send(
                app.client
                    .patch(app.url(&format!("/messages/{id}")))
                    .bearer_auth(&alice.access)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "PATCH {body:?} -> {} {}",
            r.status,
            r.body
        );
    }
    for path in [
        "/messages/abc",
        "/messages/99999999999999999999999",
        "/messages/-1",
    ] {
        let r = app
            .patch(path, Some(&alice.access), json!({"content": "x"}))
            .await;
        assert!(r.status.is_client_error(), "PATCH {path} -> {}", r.status);
        let r = app.delete(path, Some(&alice.access), json!(null)).await;
        assert!(r.status.is_client_error(), "DELETE {path} -> {}", r.status);
    }
    let r = app
        .patch(&format!("/messages/{id}"), None, json!({"content": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for reply_to in [json!("soon"), json!(1.5), json!(-3), json!([1])] {
        let r = app
            .post(
                "/groups/send",
                Some(&alice.access),
                json!({"group_id": g, "content": "re", "reply_to": reply_to}),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "reply_to {reply_to} -> {} {}",
            r.status,
            r.body
        );
    }
    let long = "x".repeat(201);
    for q in [
        "/search?q=x&room_id=abc".to_string(),
        "/search?q=x&before=soon".into(),
        "/search?q=x&limit=1000".into(),
        format!("/search?q={long}"),
    ] {
        let r = app.get(&q, Some(&alice.access)).await;
        assert!(r.status.is_client_error(), "{q} -> {} {}", r.status, r.body);
    }
    // Any text is a query, never a syntax error (33 `-` in a row were a 500 once).
    let dashes = "-".repeat(40);
    let spaced = "-%20".repeat(66);
    for q in [
        "%22%22%22",
        "-",
        "%26%7C%21%28",
        "a%20OR%20-b",
        &dashes,
        &spaced,
        "or%20or%20or",
    ] {
        let r = app
            .get(&format!("/search?q={q}"), Some(&alice.access))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
    }
    // Nothing was changed by any of it.
    let page = history(&app, &alice, g).await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["content"], "original");
}

/// A deleted message counts for nothing: neither unread nor mentions, and the chat lists show
/// the newest message still standing, with who wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_is_neither_unread_nor_the_last_message() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "crew", &[&bob]).await;
    say(&app, &alice, g, "first").await;
    let second = say(&app, &alice, g, "@bob second").await;
    assert_eq!(delete(&app, &alice, second).await.status, StatusCode::OK);
    let first_dm = app.dm(&alice, &bob, "one").await;
    let second_dm = app.dm(&alice, &bob, "two").await.id;
    assert_eq!(delete(&app, &alice, second_dm).await.status, StatusCode::OK);

    let groups = app.get("/groups/my-groups", Some(&bob.access)).await;
    let crew = &groups.body[0];
    assert_eq!(crew["unread_count"], 1, "{crew}");
    assert_eq!(crew["mention_count"], 0, "{crew}");
    assert_eq!(crew["last_message"], "first", "{crew}");
    assert_eq!(crew["last_message_sender"], "alice", "{crew}");
    let chats = app.get("/messages/chats", Some(&bob.access)).await;
    let with_alice = &chats.body[0];
    assert_eq!(with_alice["unread_count"], 1, "{with_alice}");
    assert_eq!(with_alice["last_message"], "one", "{with_alice}");
    assert_eq!(with_alice["last_message_sender"], "alice", "{with_alice}");
    assert_eq!(
        with_alice["last_message_time"],
        serde_json::to_value(first_dm.created_at).unwrap(),
        "{with_alice}"
    );
    // Reading up to the first leaves nothing unread.
    let read = app
        .post(&format!("/rooms/{g}/read"), Some(&bob.access), json!({}))
        .await;
    assert_eq!(read.body["unread_count"], 0, "{}", read.body);
}

/// Edits and deletions are delivered to every member like messages, and count against the same
/// per-user rate: a loop of edits is refused, and the members hear only those that were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_count_against_the_send_rate() {
    let mut config = crate::common::test_config();
    config.max_send_rate = 2; // a burst of 4
    let app = crate::common::spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "crew", &[&bob]).await;
    let mut bob_ws = app.ws(&bob.access).await;
    let id = say(&app, &alice, g, "draft").await;
    let mut made = 0;
    let mut refused = 0;
    for i in 0..20 {
        let r = edit(&app, &alice, id, &format!("draft {i}")).await;
        match r.status {
            StatusCode::OK => made += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(r.detail().starts_with("Too many messages"), "{}", r.body);
                assert!(r.headers.contains_key("retry-after"));
            }
            other => panic!("{other}: {}", r.body),
        }
    }
    assert!(made <= 3, "{made} edits in a burst of 4 with one send");
    assert!(refused >= 17);
    assert_eq!(
        delete(&app, &alice, id).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut heard = 0;
    while let Some(frame) = bob_ws
        .next_frame(std::time::Duration::from_millis(500))
        .await
    {
        if frame["type"] == "message_edited" {
            heard += 1;
        }
    }
    assert_eq!(heard, made);
    let db = app.sql().await;
    let changes: i64 = db
        .query_one("SELECT count(*) FROM message_changes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changes, made as i64);
}

/// Search has a per-user budget (2 a second, a burst of 10) and a deadline of its own in the
/// database: past it, the search is stopped and the user is told how to narrow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_has_a_budget_and_a_deadline() {
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    // Bob's budget: 10 at once, then 429.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.get("/search?q=zebra", Some(&bob.access)).await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.detail().starts_with("Too many searches"), "{}", r.body);
        }
    }
    assert_eq!(statuses[..10], [StatusCode::OK; 10]);
    assert_eq!(statuses[10..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    // A search the database cannot finish within the deadline (1 ms here, over 50,000
    // messages) is stopped: 503, and what to do about it.
    let mut config = crate::common::test_config();
    config.search_timeout = std::time::Duration::from_millis(1);
    let app = crate::common::spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let g = app.create_group(&alice, "crew", &[]).await;
    let db = app.sql().await;
    db.execute(
        "INSERT INTO messages (chat_room_id, sender_id, content)
         SELECT $1, $2, 'needle ' || i FROM generate_series(1, 50000) i",
        &[&(g as i32), &(alice.id as i32)],
    )
    .await
    .unwrap();
    db.batch_execute("ANALYZE messages").await.unwrap();
    let r = app
        .get("/search?q=needle%20-needle", Some(&alice.access))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.detail().contains("took too long"), "{}", r.body);
}
