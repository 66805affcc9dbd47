//! The authorisation matrix: every login-only route refuses every kind of bad credential, and every
//! room route refuses people outside the room.

use reqwest::{Method, StatusCode};
use rtchat::server::auth::TokenKeys;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{PASSWORD, TestApp, spawn_app};

struct Route {
    method: Method,
    path: String,
    body: Value,
}

fn route(method: Method, path: impl Into<String>, body: Value) -> Route {
    Route {
        method,
        path: path.into(),
        body,
    }
}

async fn call(app: &TestApp, r: &Route, authorization: Option<&str>) -> crate::common::Reply {
    let mut req = app.client.request(r.method.clone(), app.url(&r.path));
    if r.method != Method::GET {
        req = req.json(&r.body);
    }
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    app.send(req).await
}

#[tokio::test]
async fn every_login_only_route_refuses_bad_credentials() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;

    let routes = [
        route(Method::GET, "/auth/me", json!(null)),
        route(Method::POST, "/auth/logout-all", json!({})),
        route(
            Method::POST,
            "/auth/change-password",
            json!({"old_password": PASSWORD, "new_password": "whatever123"}),
        ),
        route(Method::GET, "/ws/online-users", json!(null)),
        route(Method::GET, "/users/by-username/bob", json!(null)),
        route(Method::GET, "/users/search?q=b", json!(null)),
        route(
            Method::POST,
            "/messages/send",
            json!({"recipient_id": bob.id, "content": "x"}),
        ),
        route(
            Method::GET,
            format!("/messages/chat/{}", bob.id),
            json!(null),
        ),
        route(Method::GET, "/messages/chats", json!(null)),
        route(
            Method::POST,
            "/groups/create",
            json!({"name": "x", "member_ids": []}),
        ),
        route(
            Method::POST,
            "/groups/send",
            json!({"group_id": g, "content": "x"}),
        ),
        route(Method::GET, format!("/groups/{g}/messages"), json!(null)),
        route(Method::GET, "/groups/my-groups", json!(null)),
        route(Method::GET, format!("/groups/{g}/members"), json!(null)),
        route(
            Method::POST,
            format!("/groups/{g}/members"),
            json!({"user_ids": [bob.id]}),
        ),
        route(
            Method::DELETE,
            format!("/groups/{g}/members"),
            json!({"user_id": bob.id}),
        ),
        route(Method::POST, format!("/rooms/{g}/read"), json!({})),
    ];

    // A session that has been logged out.
    let revoked = app.login("alice", PASSWORD).await;
    let revoked_access = revoked.body["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            "/auth/logout",
            None,
            json!({"refresh_token": revoked.body["tokens"]["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let forged = TokenKeys::new(
        b"somebody else's secret key, not ours",
        rtchat::server::auth::JwtAlgorithm::Hs256,
        30,
        7,
    )
    .issue(alice.id as i32, app.claims_of(&alice.access).sid)
    .unwrap()
    .tokens
    .access_token;
    let credentials: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("Bearer not-a-token".into())),
        ("forged", Some(format!("Bearer {forged}"))),
        (
            "alg none",
            Some(
                "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwidHlwZSI6ImFjY2VzcyJ9."
                    .into(),
            ),
        ),
        (
            "expired",
            Some(format!("Bearer {}", app.expired_token(&alice))),
        ),
        (
            "refresh as access",
            Some(format!("Bearer {}", alice.refresh)),
        ),
        ("revoked session", Some(format!("Bearer {revoked_access}"))),
        ("wrong scheme", Some(format!("Basic {}", alice.access))),
    ];
    for r in &routes {
        for (what, auth) in &credentials {
            let reply = call(&app, r, auth.as_deref()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{} {} with {what}: {}",
                r.method,
                r.path,
                reply.body
            );
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
        }
    }
    // Nothing was changed by any of it.
    let members = app
        .get(&format!("/groups/{g}/members"), Some(&alice.access))
        .await;
    assert_eq!(members.body.as_array().unwrap().len(), 2);
    assert_eq!(app.login("alice", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn room_routes_refuse_non_members() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let g = app.create_group(&alice, "Team", &[&bob]).await;
    let dm = i64::from(app.dm(&alice, &bob, "private").await.chat_room_id);

    let group_routes = [
        route(
            Method::POST,
            "/groups/send",
            json!({"group_id": g, "content": "x"}),
        ),
        route(Method::GET, format!("/groups/{g}/messages"), json!(null)),
        route(Method::GET, format!("/groups/{g}/members"), json!(null)),
        route(
            Method::POST,
            format!("/groups/{g}/members"),
            json!({"user_ids": [eve.id]}),
        ),
        route(
            Method::DELETE,
            format!("/groups/{g}/members"),
            json!({"user_id": bob.id}),
        ),
        route(
            Method::DELETE,
            format!("/groups/{g}/members"),
            json!({"user_id": eve.id}),
        ),
        route(Method::POST, format!("/rooms/{g}/read"), json!({})),
    ];
    let eve_auth = format!("Bearer {}", eve.access);
    for r in &group_routes {
        let reply = call(&app, r, Some(&eve_auth)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{} {}: {}",
            r.method,
            r.path,
            reply.body
        );
    }
    // Someone else's direct chat does not exist as far as a third party can tell.
    let dm_routes = [
        route(
            Method::POST,
            "/groups/send",
            json!({"group_id": dm, "content": "x"}),
        ),
        route(Method::GET, format!("/groups/{dm}/messages"), json!(null)),
        route(Method::GET, format!("/groups/{dm}/members"), json!(null)),
        route(
            Method::POST,
            format!("/groups/{dm}/members"),
            json!({"user_ids": [eve.id]}),
        ),
        route(
            Method::DELETE,
            format!("/groups/{dm}/members"),
            json!({"user_id": bob.id}),
        ),
        route(Method::POST, format!("/rooms/{dm}/read"), json!({})),
    ];
    for r in &dm_routes {
        let reply = call(&app, r, Some(&eve_auth)).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{} {}: {}",
            r.method,
            r.path,
            reply.body
        );
    }
    let members = app
        .get(&format!("/groups/{g}/members"), Some(&alice.access))
        .await;
    assert_eq!(members.body.as_array().unwrap().len(), 2, "eve got nowhere");
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&alice.access))
        .await;
    assert_eq!(page.body, json!([]));
    let _ = Uuid::nil();
}
