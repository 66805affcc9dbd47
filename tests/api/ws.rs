//! WebSocket connections: the three ways to authenticate, bad input, limits, and revocation.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{PASSWORD, spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn connect_with_the_token_in_the_path() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws_raw(&format!("/ws/{}", alice.access)).await;
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "connected");
    assert_eq!(hello["user_id"], alice.id);
    assert_eq!(hello["username"], "alice");
    assert_eq!(hello["message"], "Connected to chat server");
    ws.ping().await;
}

#[tokio::test]
async fn connect_with_an_authorization_header() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", alice.access).parse().unwrap(),
    );
    let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut ws = crate::common::WsClient::from_stream(stream);
    assert_eq!(ws.recv().await["type"], "connected");
}

#[tokio::test]
async fn connect_with_a_first_auth_frame() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws_raw("/ws").await;
    ws.send(json!({"type": "auth", "token": alice.access}))
        .await;
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "connected");
    assert_eq!(hello["user_id"], alice.id);

    let mut bad = app.ws_raw("/ws").await;
    bad.send(json!({"type": "auth", "token": "forged"})).await;
    assert_eq!(bad.close_code().await, Some(4001));

    let mut not_auth = app.ws_raw("/ws").await;
    not_auth.send(json!({"type": "ping"})).await;
    assert_eq!(not_auth.close_code().await, Some(4001));
}

#[tokio::test]
async fn silence_instead_of_an_auth_frame_is_closed() {
    let mut config = crate::common::test_config();
    config.ws_auth_timeout = Duration::from_millis(300);
    let app = crate::common::spawn_app_with(config).await;
    let mut ws = app.ws_raw("/ws").await;
    assert_eq!(ws.close_code().await, Some(4000));
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_closed_and_one_that_answers_is_kept() {
    let mut config = crate::common::test_config();
    config.ws_ping_interval = Duration::from_millis(100);
    config.ws_idle_timeout = Duration::from_millis(400);
    let app = crate::common::spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut gone_quiet = app.ws(&alice.access).await;
    let mut listening = app.ws(&bob.access).await;

    // Bob reads (and so answers every ping) for three idle limits; Alice reads nothing.
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    while tokio::time::Instant::now() < until {
        let frame = listening.next_frame(Duration::from_millis(50)).await;
        assert!(
            frame.as_ref().is_none_or(|f| f["type"] != "error"),
            "{frame:?}"
        );
    }
    // The server gave up on Alice (its close frame, 4002, may be lost behind the pongs her client
    // then tries to send on the dead connection) and kept Bob.
    assert_eq!(app.state.hub.connection_count(), 1);
    let code = gone_quiet.close_code().await;
    assert!(matches!(code, Some(4002) | None), "{code:?}");
    listening.ping().await;
}

#[tokio::test]
async fn bad_tokens_never_get_connected() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let expired = app.expired_token(&alice);
    for token in ["garbage", alice.refresh.as_str(), expired.as_str()] {
        let err = tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{token}")))
            .await
            .expect_err("refused");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
            other => panic!("expected an HTTP 401, got {other:?}"),
        }
    }
    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let mut ws = app.ws(&eve.access).await;
    let frames = [
        "not json".to_string(),
        "[]".into(),
        "42".into(),
        json!({"no": "type"}).to_string(),
        json!({"type": 7}).to_string(),
        json!({"type": "dance"}).to_string(),
        json!({"type": "join_room"}).to_string(),
        json!({"type": "join_room", "room_id": "abc"}).to_string(),
        json!({"type": "join_room", "room_id": g}).to_string(),
        json!({"type": "message", "room_id": g, "content": "let me in"}).to_string(),
        json!({"type": "message", "room_id": g}).to_string(),
        json!({"type": "message", "room_id": g, "content": 5}).to_string(),
        json!({"type": "typing", "room_id": g}).to_string(),
        json!({"type": "read", "room_id": g}).to_string(),
        json!({"type": "sync"}).to_string(),
        json!({"type": "sync", "since": -1}).to_string(),
        json!({"type": "message", "room_id": 99999999999i64, "content": "x"}).to_string(),
        json!({"type": "auth", "token": "x"}).to_string(),
    ];
    for frame in &frames {
        ws.send_text(frame).await;
        let reply = ws.recv().await;
        assert_eq!(reply["type"], "error", "{frame} -> {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    ws.ping().await;

    // Content rules are the REST ones.
    let mut member = app.ws(&bob.access).await;
    for content in [json!(""), json!("   "), json!("x".repeat(5001))] {
        member
            .send(json!({"type": "message", "room_id": g, "content": content}))
            .await;
        assert_eq!(member.recv_type("error").await["type"], "error");
    }
    // So are client_id's and sync's, in REST's words with the field named.
    member
        .send(json!({"type": "message", "room_id": g, "content": "hi", "client_id": ""}))
        .await;
    let refused = member.recv_type("error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid client_id: "),
        "{refused}"
    );
    member
        .send(json!({"type": "sync", "since": 0, "limit": 501}))
        .await;
    let refused = member.recv_type("error").await;
    assert_eq!(
        refused["message"], "Invalid limit: Input should be between 1 and 500",
        "{refused}"
    );
    let rest = app.get("/sync?since=0&limit=501", Some(&bob.access)).await;
    assert_eq!(rest.status, 422);
    assert_eq!(
        rest.body["detail"][0]["msg"],
        "Input should be between 1 and 500"
    );
    member.ping().await;
    // None of it was stored, and eve's typing reached nobody.
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&alice.access))
        .await;
    assert_eq!(page.body, json!([]));
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice.access).await;
    ws.send_text(&"x".repeat(100 * 1024)).await;
    assert_eq!(ws.close_code().await, Some(1009));
}

#[tokio::test]
async fn logout_closes_that_session_and_logout_all_closes_every_socket() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let second = app.login("alice", PASSWORD).await;
    let second_access = second.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut first_ws = app.ws(&alice.access).await;
    let mut second_ws = app.ws(&second_access).await;

    let r = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(first_ws.close_code().await, Some(4003));
    second_ws.ping().await;

    let r = app
        .post("/auth/logout-all", Some(&second_access), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(second_ws.close_code().await, Some(4003));
}

#[tokio::test]
async fn a_reused_refresh_token_closes_the_sessions_sockets() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice.access).await;
    let r = app.refresh(&alice.refresh).await;
    assert_eq!(r.status, StatusCode::OK);
    ws.ping().await;
    let r = app.refresh(&alice.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ws.close_code().await, Some(4003));
}

#[tokio::test]
async fn a_password_change_closes_every_socket() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice.access).await;
    let r = app
        .post(
            "/auth/change-password",
            Some(&alice.access),
            json!({"old_password": PASSWORD, "new_password": "another password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ws.close_code().await, Some(4003));
}

#[tokio::test]
async fn send_rate_is_bounded_for_rest_and_websocket_alike() {
    let mut config = test_config();
    config.max_send_rate = 1; // burst of 2
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    assert_eq!(
        app.group_send(&alice, g, "one").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.group_send(&alice, g, "two").await.status,
        StatusCode::CREATED
    );
    let r = app.group_send(&alice, g, "three").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());

    let mut ws = app.ws(&alice.access).await;
    ws.send(json!({"type": "message", "room_id": g, "content": "four"}))
        .await;
    let e = ws.recv_type("error").await;
    assert!(e["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{e}");
    ws.ping().await;

    // Other people are not slowed by alice.
    assert_eq!(
        app.group_send(&bob, g, "bob's turn").await.status,
        StatusCode::CREATED
    );
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&bob.access))
        .await;
    let contents = crate::common::contents(&page.body);
    assert_eq!(contents, ["one", "two", "bob's turn"]);
    // Once the wait the server names has passed, alice may send again.
    let refused = app.group_send(&alice, g, "too soon").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        app.group_send(&alice, g, "later").await.status,
        StatusCode::CREATED
    );
}
