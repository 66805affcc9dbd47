use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn root_and_health_answer() {
    let app = spawn_app().await;
    let r = app.get("/", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "running");
    let r = app.get("/health", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "healthy"}));
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let r = app.get("/no/such/thing", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "Not Found");
    let r = app.send(app.client.put(app.url("/auth/login"))).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.detail(), "Method Not Allowed");
}

#[tokio::test]
async fn online_users_needs_a_login_and_lists_nobody_without_sockets() {
    let app = spawn_app().await;
    let r = app.get("/ws/online-users", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let alice = app.register("alice").await;
    let r = app.get("/ws/online-users", Some(&alice.access)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"online_users": [], "count": 0}));
}

#[tokio::test]
async fn cors_headers_only_for_configured_origins() {
    let mut config = crate::common::test_config();
    config.cors_origins = vec!["https://chat.example.com".into()];
    let app = crate::common::spawn_app_with(config).await;
    let allowed = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://chat.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let r = app
        .send(
            app.client
                .get(app.url("/health"))
                .header("origin", "https://evil.example.net"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // Without configured origins no CORS headers are sent at all.
    let plain = spawn_app().await;
    let r = plain
        .client
        .get(plain.url("/health"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
