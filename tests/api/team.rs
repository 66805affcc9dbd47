//! A server a team controls (issue 22): the first account owns it, registration by invitation,
//! administration with its audit log, password reset codes, roles, personal access tokens, bots
//! and incoming webhooks, each with its refusals.

use std::time::Duration;

use reqwest::StatusCode;
use rtchat::server::auth::Registration;
use serde_json::{Value, json};

use crate::common::{
    PASSWORD, Reply, TestApp, spawn_app, spawn_app_with, spawn_cluster, test_config,
};

async fn invite_only() -> TestApp {
    let mut config = test_config();
    config.registration = Registration::Invite;
    spawn_app_with(config).await
}

/// `POST /auth/register` for `name`, with `invite` when given.
async fn register_with(app: &TestApp, name: &str, invite: Option<&str>) -> Reply {
    let mut body = json!({
        "username": name,
        "email": format!("{name}@example.com"),
        "password": PASSWORD,
    });
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    app.post("/auth/register", None, body).await
}

async fn invite(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/invites", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["code"].as_str().unwrap().to_string()
}

async fn audit_len(app: &TestApp, admin: &str) -> usize {
    let r = app.get("/admin/log?limit=500", Some(admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().unwrap().len()
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    app.send(app.client.put(app.url(path)).bearer_auth(token).json(&body))
        .await
}

#[tokio::test]
async fn the_first_account_owns_an_invite_only_server_and_every_later_one_needs_a_good_invite() {
    let app = invite_only().await;
    let first = register_with(&app, "alice", None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["user"]["role"], "owner");
    let alice = first.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Without an invite: a clear 403, and not even whether the name is taken.
    for name in ["bob", "alice"] {
        let r = register_with(&app, name, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {:?}", r.body);
        assert!(r.detail().contains("invitation"), "{}", r.detail());
    }

    let code = invite(&app, &alice, json!({})).await;
    assert!(code.starts_with("rtci_") && code.len() >= 32, "{code}");
    let bob = register_with(&app, "bob", Some(&code)).await;
    assert_eq!(bob.status, StatusCode::CREATED, "{:?}", bob.body);
    assert_eq!(bob.body["user"]["role"], "member");

    // Used, unknown, expired and revoked codes are refused in the same words.
    let expired = invite(&app, &alice, json!({"max_uses": 5})).await;
    app.sql()
        .await
        .execute(
            "UPDATE invites SET expires_at = now() - interval '1 second' WHERE max_uses = 5",
            &[],
        )
        .await
        .unwrap();
    let revoked = invite(&app, &alice, json!({"max_uses": 3})).await;
    let r = app
        .post("/invites/revoke", Some(&alice), json!({"code": revoked}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let unknown = format!("rtci_{}", "0".repeat(32));
    let mut answers = Vec::new();
    for (name, code) in [
        ("carol", &code),
        ("dave", &unknown),
        ("erin", &expired),
        ("frank", &revoked),
    ] {
        let r = register_with(&app, name, Some(code)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {:?}", r.body);
        answers.push(r.detail().to_string());
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "no oracle: {answers:?}"
    );
    assert!(answers[0].contains("not valid"), "{}", answers[0]);

    // A code for three admits exactly three, even all at once.
    let three = invite(&app, &alice, json!({"max_uses": 3})).await;
    let tries = (0..6).map(|i| {
        let (app, three) = (&app, &three);
        async move {
            register_with(app, &format!("team{i}"), Some(three))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        3,
        "{statuses:?}"
    );

    // The owner sees every invite with its state; a member sees only their own.
    let r = app.get("/invites", Some(&alice)).await;
    let states: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"used") && states.contains(&"expired") && states.contains(&"revoked"),
        "{states:?}"
    );
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("code").is_none()),
        "codes are shown once"
    );
    let bob_token = bob.body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(app.get("/invites", Some(bob_token)).await.body, json!([]));
    // The database keeps digests, never codes.
    let kept: Vec<Vec<u8>> = app
        .sql()
        .await
        .query("SELECT code_hash FROM invites", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        kept.iter()
            .all(|h| h.len() == 32 && !h.starts_with(b"rtci_"))
    );
}

#[tokio::test]
async fn a_closed_server_admits_only_its_first_account() {
    let mut config = test_config();
    config.registration = Registration::Closed;
    let app = spawn_app_with(config).await;
    assert_eq!(
        register_with(&app, "alice", None).await.status,
        StatusCode::CREATED
    );
    let r = register_with(&app, "bob", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.detail().contains("not taking new accounts"),
        "{}",
        r.detail()
    );
}

#[tokio::test]
async fn a_member_on_an_admin_route_gets_403_and_the_log_does_not_change() {
    let app = spawn_app().await;
    let alice = app.register("alice").await; // the first: the owner
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let before = audit_len(&app, &alice.access).await;
    let b = Some(bob.access.as_str());
    for r in [
        app.get("/admin/users", b).await,
        app.get("/admin/log", b).await,
        app.post("/admin/users/carol/deactivate", b, json!({}))
            .await,
        app.post("/admin/users/carol/reactivate", b, json!({}))
            .await,
        app.post("/admin/users/carol/reset-password", b, json!({}))
            .await,
        app.post("/admin/bots", b, json!({"username": "sneaky"}))
            .await,
        put(
            &app,
            "/admin/users/bob/role",
            &bob.access,
            json!({"role": "owner"}),
        )
        .await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    assert_eq!(audit_len(&app, &alice.access).await, before);
    // Carol is untouched: she still signs in.
    assert_eq!(
        app.get("/auth/me", Some(&carol.access)).await.status,
        StatusCode::OK
    );
    // An admin who is not an owner cannot make admins either.
    let r = put(
        &app,
        "/admin/users/bob/role",
        &alice.access,
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["role"], "admin");
    assert_eq!(
        app.get("/admin/users", Some(&bob.access)).await.status,
        StatusCode::OK
    );
    let r = put(
        &app,
        "/admin/users/carol/role",
        &bob.access,
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.detail().contains("owners"), "{}", r.detail());
    // The last owner stays one.
    let r = put(
        &app,
        "/admin/users/alice/role",
        &alice.access,
        json!({"role": "member"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // The log says who did what to whom.
    let log = app.get("/admin/log", Some(&alice.access)).await.body;
    let last = &log[0];
    assert_eq!(last["actor"], "alice");
    assert_eq!(last["action"], "user.role");
    assert_eq!(last["target"], "bob");
    assert_eq!(last["detail"], "member -> admin");
}

#[tokio::test]
async fn deactivation_ends_every_session_on_every_instance_and_keeps_the_messages() {
    let instances = spawn_cluster(2, test_config()).await;
    let (a, b) = (&instances[0], &instances[1]);
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    a.dm(&bob, &alice, "my last words").await;
    let mut bob_ws = b.ws(&bob.access).await;

    let r = a
        .post(
            "/admin/users/bob/deactivate",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        bob_ws.close_code().await,
        Some(4003),
        "his socket on the other instance"
    );
    for app in [a, b] {
        assert_eq!(
            app.get("/auth/me", Some(&bob.access)).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.refresh(&bob.refresh).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = a.login("bob", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.detail().contains("deactivated"), "{}", r.detail());
    let history = a
        .get(&format!("/messages/chat/{}", bob.id), Some(&alice.access))
        .await;
    assert_eq!(history.body[0]["content"], "my last words");
    let users = a.get("/admin/users", Some(&alice.access)).await.body;
    let row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(row["is_active"], false);

    let r = b
        .post(
            "/admin/users/bob/reactivate",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(a.login("bob", PASSWORD).await.status, StatusCode::OK);
    let actions: Vec<Value> = a
        .get("/admin/log", Some(&alice.access))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions[..2],
        [json!("user.reactivate"), json!("user.deactivate")]
    );
    // Nobody deactivates themselves.
    let r = a
        .post(
            "/admin/users/alice/deactivate",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_reset_code_sets_a_password_once_within_its_hour_and_ends_every_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let r = app
        .post(
            "/admin/users/bob/reset-password",
            Some(&alice.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let code = r.body["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("rtcr_"), "{code}");
    let reset = |code: &str| {
        app.post(
            "/auth/reset-password",
            None,
            json!({"code": code, "new_password": "a brand new password"}),
        )
    };
    assert_eq!(reset(&code).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/auth/me", Some(&bob.access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("bob", "a brand new password").await.status,
        StatusCode::OK
    );
    // Once only.
    let again = reset(&code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.detail().contains("not valid"), "{}", again.detail());
    // An hour only.
    let r = app
        .post(
            "/admin/users/bob/reset-password",
            Some(&alice.access),
            json!({}),
        )
        .await;
    let late = r.body["code"].as_str().unwrap().to_string();
    app.sql()
        .await
        .execute(
            "UPDATE password_resets SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(reset(&late).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.login("bob", "a brand new password").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_personal_access_token_works_like_an_access_token_until_it_is_revoked() {
    let instances = spawn_cluster(2, test_config()).await;
    let (app, other) = (&instances[0], &instances[1]);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let r = app
        .post(
            "/tokens",
            Some(&alice.access),
            json!({"name": "ci", "expires_in_seconds": 86400}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("rtcp_") && token.len() > 64);
    let same_name = app
        .post("/tokens", Some(&alice.access), json!({"name": "ci"}))
        .await;
    assert_eq!(same_name.status, StatusCode::CONFLICT);

    // REST and the WebSocket take it as they take an access token.
    let me = app.get("/auth/me", Some(&token)).await;
    assert_eq!(me.body["username"], "alice");
    let mut token_ws = other.ws(&token).await;
    app.dm(&bob, &alice, "to the script").await;
    assert_eq!(token_ws.recv_message().await.content, "to the script");
    let sent = app
        .post(
            "/messages/send",
            Some(&token),
            json!({"recipient_id": bob.id, "content": "from the script"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED);
    let listed = app.get("/tokens", Some(&alice.access)).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "ci");
    assert!(listed[0].get("token").is_none());

    assert_eq!(
        other.get("/auth/me", Some(&token)).await.status,
        StatusCode::OK
    );
    // Revoked: refused on REST at once, on every instance, and its open socket on the other
    // instance closes.
    let r = app
        .delete("/tokens/ci", Some(&alice.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(token_ws.close_code().await, Some(4003));
    for instance in [app, other] {
        assert_eq!(
            instance.get("/auth/me", Some(&token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // The login that made it is untouched.
    assert_eq!(
        app.get("/auth/me", Some(&alice.access)).await.status,
        StatusCode::OK
    );

    // An expired token is refused; so is anything shaped like one.
    let r = app
        .post("/tokens", Some(&alice.access), json!({"name": "old"}))
        .await;
    let old = r.body["token"].as_str().unwrap().to_string();
    app.sql()
        .await
        .execute("UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE token_name = 'old'", &[])
        .await
        .unwrap();
    assert_eq!(
        app.get("/auth/me", Some(&old)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = format!("rtcp_{}", "f".repeat(64));
    assert_eq!(
        app.get("/auth/me", Some(&forged)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_bot_has_tokens_but_no_password_and_is_marked_wherever_users_are_listed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let r = app
        .post(
            "/admin/bots",
            Some(&alice.access),
            json!({"username": "buildbot", "full_name": "Build Bot"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["user"]["is_bot"], true);
    let token = r.body["token"]["token"].as_str().unwrap().to_string();
    let group = app.create_group(&alice, "builds", &[]).await;
    let bot_id = r.body["user"]["id"].as_i64().unwrap();
    let add = app
        .post(
            &format!("/groups/{group}/members"),
            Some(&alice.access),
            json!({"user_ids": [bot_id]}),
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{:?}", add.body);
    let sent = app
        .post(
            "/groups/send",
            Some(&token),
            json!({"group_id": group, "content": "build 41 green"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);

    let login = app.login("buildbot", "anything at all").await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    assert!(login.detail().contains("bot"), "{}", login.detail());
    let members = app
        .get(&format!("/groups/{group}/members"), Some(&alice.access))
        .await
        .body;
    let listed: Vec<(Value, Value)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].clone(), m["is_bot"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("alice"), json!(false)),
            (json!("buildbot"), json!(true))
        ]
    );
    let public = app
        .get("/users/by-username/buildbot", Some(&alice.access))
        .await;
    assert_eq!(public.body["is_bot"], true);
    let users = app.get("/admin/users", Some(&alice.access)).await.body;
    let row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "buildbot")
        .unwrap();
    assert_eq!(row["is_bot"], true);
}

#[tokio::test]
async fn a_webhook_posts_into_its_group_live_and_in_history_until_revoked() {
    let instances = spawn_cluster(2, test_config()).await;
    let (a, b) = (&instances[0], &instances[1]);
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let carol = a.register("carol").await;
    let group = a.create_group(&alice, "ops", &[&bob]).await;

    // Only the group's admin (or the server's) makes one; an outsider cannot see the group.
    let r = a
        .post("/webhooks", Some(&bob.access), json!({"group_id": group}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = a
        .post("/webhooks", Some(&carol.access), json!({"group_id": group}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = a
        .post(
            "/webhooks",
            Some(&alice.access),
            json!({"group_id": group, "name": "deploy-bot"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let path = r.body["path"].as_str().unwrap().to_string();
    let id = r.body["id"].as_i64().unwrap();
    assert!(path.starts_with("/hooks/rtch_"), "{path}");

    let mut bob_ws = b.ws(&bob.access).await;
    // Posted on the other instance, without any login: the address is the key.
    let posted = b
        .send(
            b.client
                .post(b.url(&path))
                .json(&json!({"text": "deploy done"})),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{:?}", posted.body);
    let live = bob_ws.recv_message().await;
    assert_eq!(live.content, "deploy done");
    assert_eq!(live.sender_username.as_deref(), Some("deploy-bot"));
    let history = a
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await
        .body;
    assert_eq!(history[0]["content"], "deploy done");
    assert_eq!(history[0]["sender_username"], "deploy-bot");

    // Bad bodies get the usual answers.
    let empty = a
        .send(a.client.post(a.url(&path)).json(&json!({"text": ""})))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = a
        .send(a.client.post(a.url(&path)).json(&json!({"txt": "x"})))
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Listed to the group's members, never to others; the address is never listed.
    let listed = a.get("/webhooks", Some(&bob.access)).await.body;
    assert_eq!(listed[0]["name"], "deploy-bot");
    assert!(listed[0].get("path").is_none());
    assert_eq!(
        a.get("/webhooks", Some(&carol.access)).await.body,
        json!([])
    );

    let r = a
        .delete(&format!("/webhooks/{id}"), Some(&bob.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = a
        .delete(&format!("/webhooks/{id}"), Some(&alice.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let after = b
        .send(b.client.post(b.url(&path)).json(&json!({"text": "again"})))
        .await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    bob_ws
        .expect_no("new_message", Duration::from_millis(300))
        .await;
    // Its messages stay.
    let history = a
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await
        .body;
    assert_eq!(history[0]["content"], "deploy done");
}

#[tokio::test]
async fn a_group_has_an_owner_and_admins_and_the_owner_may_hand_it_over() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let g = app.create_group(&alice, "crew", &[&bob, &carol]).await;
    let members = format!("/groups/{g}/members");
    let add_dave = |who: String| {
        let (app, members, dave) = (&app, &members, dave.id);
        async move {
            app.post(members, Some(&who), json!({"user_ids": [dave]}))
                .await
        }
    };
    assert_eq!(
        add_dave(bob.access.clone()).await.status,
        StatusCode::FORBIDDEN
    );

    let admins = format!("/groups/{g}/admins");
    let r = app
        .post(&admins, Some(&alice.access), json!({"user_id": bob.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // An admin adds members and deletes anyone's message ...
    assert_eq!(add_dave(bob.access.clone()).await.status, StatusCode::OK);
    let sent = app.group_send(&carol, g, "an unwise message").await;
    let id = sent.body["data"]["id"].as_i64().unwrap();
    let r = app
        .delete(&format!("/messages/{id}"), Some(&bob.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // ... but makes no admins, and removes neither the owner nor another admin.
    let r = app
        .post(&admins, Some(&bob.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let members = format!("/groups/{g}/members");
    let r = app
        .delete(&members, Some(&bob.access), json!({"user_id": alice.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.post(&admins, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    let r = app
        .delete(&members, Some(&bob.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .delete(&admins, Some(&alice.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .delete(&members, Some(&bob.access), json!({"user_id": carol.id}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an admin removes a member");

    let roles = |body: Value| -> Vec<(String, String)> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["username"].as_str().unwrap().into(),
                    m["role"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let listed = app.get(&members, Some(&dave.access)).await.body;
    assert_eq!(
        roles(listed),
        [
            ("alice".into(), "owner".into()),
            ("bob".into(), "admin".into()),
            ("dave".into(), "member".into())
        ]
    );

    // Handing over: bob owns it, alice stays as an admin and can no longer make admins.
    let r = app
        .post(
            &format!("/groups/{g}/owner"),
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let listed = app.get(&members, Some(&dave.access)).await.body;
    assert_eq!(
        roles(listed),
        [
            ("alice".into(), "admin".into()),
            ("bob".into(), "owner".into()),
            ("dave".into(), "member".into())
        ]
    );
    let r = app
        .post(&admins, Some(&alice.access), json!({"user_id": dave.id}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/groups/{g}/owner"),
            Some(&alice.access),
            json!({"user_id": dave.id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn public_groups_are_listed_and_joined_and_private_ones_stay_hidden() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let r = app
        .post(
            "/groups/create",
            Some(&alice.access),
            json!({"name": "general", "member_ids": [bob.id], "is_public": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["group"]["is_public"], true);
    let general = r.body["group"]["id"].as_i64().unwrap();
    let secret = app.create_group(&alice, "secret", &[&bob]).await;

    let listed = app.get("/groups/public", Some(&carol.access)).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "general");
    assert_eq!(listed[0]["member_count"], 2);
    assert_eq!(listed[0]["is_member"], false);

    // Joining: the members hear of it; a private group looks like no group at all.
    let mut alice_ws = app.ws(&alice.access).await;
    let r = app
        .post(
            &format!("/groups/{general}/join"),
            Some(&carol.access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let joined = alice_ws
        .recv_as(|f| match f {
            rtchat::proto::ServerFrame::MemberAdded { username, .. } => Some(username),
            _ => None,
        })
        .await;
    assert_eq!(joined, "carol");
    let hidden = app
        .post(
            &format!("/groups/{secret}/join"),
            Some(&carol.access),
            json!({}),
        )
        .await;
    let unknown = app
        .post("/groups/999999/join", Some(&carol.access), json!({}))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!((hidden.status, hidden.body), (unknown.status, unknown.body));
    app.group_send(&carol, general, "hello all").await;

    // Topic and name, by the owner or an admin; every member hears of it; browse and the group
    // lists show it.
    let r = app
        .patch(
            &format!("/groups/{general}"),
            Some(&carol.access),
            json!({"topic": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .patch(
            &format!("/groups/{general}"),
            Some(&alice.access),
            json!({"topic": "everything and nothing", "name": "town-square"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "town-square");
    let updated = alice_ws
        .recv_as(|f| match f {
            rtchat::proto::ServerFrame::GroupUpdated {
                name, topic, by, ..
            } => Some((name, topic, by)),
            _ => None,
        })
        .await;
    assert_eq!(
        updated,
        (
            "town-square".into(),
            Some("everything and nothing".into()),
            "alice".into()
        )
    );
    let listed = app.get("/groups/public", Some(&carol.access)).await.body;
    assert_eq!(listed[0]["topic"], "everything and nothing");
    assert_eq!(listed[0]["is_member"], true);
    let mine = app.get("/groups/my-groups", Some(&bob.access)).await.body;
    let row = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == general)
        .unwrap();
    assert_eq!(row["topic"], "everything and nothing");
    // Made private, it leaves the list.
    let r = app
        .patch(
            &format!("/groups/{general}"),
            Some(&alice.access),
            json!({"is_public": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get("/groups/public", Some(&carol.access)).await.body,
        json!([])
    );
}
