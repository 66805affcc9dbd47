//! `/metrics` scraped as Prometheus would, before and after people use the server.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, spawn_app_with, test_config};

/// Every sample of a scrape: `name{labels}` -> value. (The counters are the process's, shared by
/// every test server in this binary: assertions compare before and after, or look for at least.)
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_what_happens() {
    let mut config = test_config();
    config.login_rate_per_account = 1;
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "Counted", &[&bob]).await;
    let mut bob_ws = app.ws(&bob.access).await;
    let before = scrape(&app).await;

    assert_eq!(
        app.group_send(&alice, g, "one").await.status,
        StatusCode::CREATED
    );
    bob_ws.recv_message().await;
    bob_ws.send(json!({"type": "ping"})).await;
    bob_ws.recv_type("pong").await;
    assert_eq!(app.login("alice", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        app.login("alice", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get("/no/such/place", None).await.status,
        StatusCode::NOT_FOUND
    );
    let after = scrape(&app).await;

    let grew = |name: &str| value(&after, name) - value(&before, name);
    assert!(grew("rtchat_messages_stored_total") >= 1.0);

    assert!(grew("rtchat_writer_batch_messages_count") >= 1.0);
    assert!(grew("rtchat_store_to_queue_seconds_count") >= 1.0);
    assert!(
        grew(r#"rtchat_http_requests_total{method="POST",route="/groups/send",status="201"}"#)
            >= 1.0
    );
    assert!(
        grew(r#"rtchat_http_requests_total{method="POST",route="/auth/login",status="429"}"#)
            >= 1.0
    );
    assert!(grew(r#"rtchat_http_requests_total{method="GET",route="other",status="404"}"#) >= 1.0);
    assert!(grew(r#"rtchat_throttled_total{reason="login_account"}"#) >= 1.0);
    assert!(grew(r#"rtchat_ws_frames_received_total{kind="ping"}"#) >= 1.0);
    assert!(grew(r#"rtchat_http_request_duration_seconds_count{route="/groups/send"}"#) >= 1.0);
    assert!(value(&after, "rtchat_ws_connections") >= 1.0);
    assert!(value(&after, "rtchat_db_pool_size") >= 1.0);
    // No label is ever something a client wrote.
    assert!(!after.keys().any(|k| k.contains("no/such")));
    assert!(!after.keys().any(|k| k.contains(&bob.access)));
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let mut config = test_config();
    config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_app_with(config).await;
    let own = app.metrics_address.clone().expect("a metrics listener");
    assert_ne!(own, app.address);
    let r = reqwest::get(format!("{own}/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("rtchat_messages_stored_total")
    );
    // Not on the public listener, and nothing else on the metrics one.
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
    let other = reqwest::get(format!("{own}/health")).await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
