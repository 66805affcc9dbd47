use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, spawn_app};

#[tokio::test]
async fn register_returns_the_user_and_tokens() {
    let app = spawn_app().await;
    let r = app.try_register("alice").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["message"], "User registered successfully");
    let user = &r.body["user"];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["full_name"], "alice Tester");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["is_verified"], false);
    assert!(user["id"].is_i64());
    let created = user["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "UTC with Z: {created}");
    assert_eq!(r.body["tokens"]["token_type"], "bearer");

    let me = app
        .get("/auth/me", r.body["tokens"]["access_token"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, *user);
}

#[tokio::test]
async fn names_and_emails_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    let r = app.try_register("ALICE").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.detail(), "Username already taken");
    let r = app
        .post(
            "/auth/register",
            None,
            json!({"username": "alice2", "email": "Alice@EXAMPLE.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.detail(), "Email already registered");
}

#[tokio::test]
async fn registration_input_is_validated_with_field_errors() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "al", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "      ", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "alice", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"username": "alice", "email": "a@example.com", "password": "short"}),
            "password",
        ),
        // 80 bytes in 40 characters: bcrypt would silently ignore the tail (S13).
        (
            json!({"username": "alice", "email": "a@example.com", "password": "é".repeat(40)}),
            "password",
        ),
        (
            json!({"username": "alice", "email": "a@example.com"}),
            "password",
        ),
        (
            json!({"username": 42, "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/auth/register", None, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let errors = r.body["detail"].as_array().expect("a list of errors");
        assert!(
            errors.iter().any(|e| e["loc"] == json!(["body", field])),
            "{body} -> {}",
            r.body
        );
    }
    let r = app.post_raw("/auth/register", None, "{not json").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["type"], "json_invalid");
}

#[tokio::test]
async fn login_by_username_or_email_in_any_case() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for login in ["alice", "ALICE", "alice@example.com", "Alice@Example.com"] {
        let r = app.login(login, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{login}");
        assert_eq!(r.body["message"], "Login successful");
        assert_eq!(r.body["user"]["id"], alice.id);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = spawn_app().await;
    app.register("alice").await;
    let wrong = app.login("alice", "wrong password").await;
    let unknown = app.login("nobody", PASSWORD).await;
    for r in [wrong, unknown] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.detail(), "Invalid username or password");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn tokens_issued_in_the_same_second_are_distinct() {
    // W1: the seed returned 500 for register followed by login within a second.
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let a = app.login("alice", PASSWORD).await;
    let b = app.login("alice", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(b.status, StatusCode::OK);
    let tokens = [
        alice.access.clone(),
        a.body["tokens"]["access_token"].as_str().unwrap().into(),
        b.body["tokens"]["access_token"].as_str().unwrap().into(),
    ];
    assert_ne!(tokens[0], tokens[1]);
    assert_ne!(tokens[1], tokens[2]);
    let claims = app.claims_of(&tokens[1]);
    assert_eq!(claims.sub, alice.id.to_string());
    assert_eq!(claims.kind, rtchat::server::auth::TokenKind::Access);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_ends_the_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;

    let r = app.refresh(&alice.refresh).await;
    assert_eq!(r.status, StatusCode::OK);
    let new_access = r.body["access_token"].as_str().unwrap().to_string();
    let new_refresh = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, alice.refresh, "refresh tokens rotate");
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(
        app.get("/auth/me", Some(&new_access)).await.status,
        StatusCode::OK
    );

    // Somebody replays the old token: the whole session is revoked.
    let r = app.refresh(&alice.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.refresh(&new_refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/auth/me", Some(&new_access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/auth/me", Some(&alice.access)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Other sessions are untouched.
    let other = app.login("alice", PASSWORD).await;
    let token = other.body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/auth/me", Some(token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_rejects_garbage_and_access_tokens() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for token in ["garbage", alice.access.as_str()] {
        let r = app.refresh(token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.detail(), "Invalid refresh token");
    }
}

#[tokio::test]
async fn refresh_tokens_are_stored_hashed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let db = app.sql().await;
    let rows = db
        .query("SELECT token_hash FROM refresh_tokens", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].get(0);
    assert_ne!(stored, alice.refresh);
    assert_eq!(
        stored,
        rtchat::server::auth::hash_refresh_token(&alice.refresh)
    );
}

#[tokio::test]
async fn logout_ends_that_session_and_its_access_token() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let second = app.login("alice", PASSWORD).await;
    let second_access = second.body["tokens"]["access_token"].as_str().unwrap();

    let r = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Logout successful");
    assert_eq!(
        app.get("/auth/me", Some(&alice.access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/auth/me", Some(second_access)).await.status,
        StatusCode::OK
    );

    let again = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.detail(), "Invalid refresh token");
    let r = app.refresh(&alice.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let other = app.login("alice", PASSWORD).await;
    let other_access = other.body["tokens"]["access_token"].as_str().unwrap();
    let r = app
        .post("/auth/logout-all", Some(&alice.access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["message"], "Logged out from all devices");
    assert_eq!(r.body["sessions_terminated"], 2);
    for token in [alice.access.as_str(), other_access] {
        assert_eq!(
            app.get("/auth/me", Some(token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn change_password_checks_the_old_one_and_ends_sessions() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let r = app
        .post(
            "/auth/change-password",
            Some(&alice.access),
            json!({"old_password": "not it at all", "new_password": "a new password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "Current password is incorrect");

    let r = app
        .post(
            "/auth/change-password",
            Some(&alice.access),
            json!({"old_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = app
        .post(
            "/auth/change-password",
            Some(&alice.access),
            json!({"old_password": PASSWORD, "new_password": "a new password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["message"],
        "Password changed successfully. Please login again."
    );
    assert_eq!(
        app.get("/auth/me", Some(&alice.access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("alice", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("alice", "a new password").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_profile_changes_its_name_at_once_and_its_email_only_with_the_password() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let change = |body: Value| app.patch("/auth/me", Some(&alice.access), body);

    let r = change(json!({"full_name": "  Alice Liddell "})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["full_name"], "Alice Liddell");
    assert_eq!(r.body["email"], "alice@example.com");
    // At once, for others too: bob finds her by her new name, and her next message carries it.
    let found = app.get("/users/search?q=al", Some(&bob.access)).await;
    assert_eq!(
        found.body[0]["full_name"], "Alice Liddell",
        "{}",
        found.body
    );
    let sent = app.dm(&alice, &bob, "hello").await;
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.body[0]["id"], sent.id);
    assert_eq!(page.body[0]["sender_full_name"], "Alice Liddell");

    // The email: not without the password, not with a wrong one, not one that is taken.
    let r = change(json!({"email": "alice@new.example.com"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "Changing the email needs the current password");
    let r =
        change(json!({"email": "alice@new.example.com", "current_password": "wrong one"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "Current password is incorrect");
    let r = change(json!({"email": "bob@example.com", "current_password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.detail(), "Email already registered");
    let r = change(json!({"email": "not an address", "current_password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let me = app.get("/auth/me", Some(&alice.access)).await;
    assert_eq!(me.body["email"], "alice@example.com", "nothing changed");

    let r = change(json!({"email": "Alice@New.Example.com", "current_password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email"], "Alice@new.example.com");
    // Logging in by the new address works; the full name stayed.
    let login = app.login("Alice@new.example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["full_name"], "Alice Liddell");
    // An empty name clears it; without a token nothing changes.
    let r = change(json!({"full_name": ""})).await;
    assert_eq!(r.body["full_name"], Value::Null);
    let r = app.patch("/auth/me", None, json!({"full_name": "x"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
