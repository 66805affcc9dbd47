//! The server terminating TLS itself (`--tls-cert`, `--tls-key`): REST and WebSocket over real TLS
//! with a certificate made in the test, an untrusted or plain client refused, a renewed certificate
//! served after a reload, and a bad certificate file refused before any other work.

use std::time::Duration;

use reqwest::StatusCode;
use rtchat::server::{Server, ServerError};
use serde_json::json;

use crate::common::{SECRET, TestCa, spawn_tls_app, test_config};

#[tokio::test]
async fn rest_and_websocket_over_tls() {
    let ca = TestCa::new();
    let app = spawn_tls_app(&ca).await;
    assert!(app.address.starts_with("https://127.0.0.1:"));

    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let me = app.get("/auth/me", Some(&alice.access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "alice");

    // Bob listens over wss://; Alice's message sent over https:// reaches him.
    let mut socket = app.ws(&bob.access).await;
    app.dm(&alice, &bob, "over TLS").await;
    let frame = socket.recv_message().await;
    assert_eq!(frame.content, "over TLS", "{frame:?}");

    // And a frame he sends over wss:// is answered.
    socket.send(json!({"type": "ping"})).await;
    socket.recv_type("pong").await;
}

#[tokio::test]
async fn clients_that_do_not_trust_the_certificate_or_speak_plain_http_get_nothing() {
    let ca = TestCa::new();
    let app = spawn_tls_app(&ca).await;

    // Trusting another authority: the handshake fails, no request is made.
    let stranger = TestCa::new();
    let untrusting = crate::common::http()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&stranger.client_config()))
        .build()
        .unwrap();
    let refused = untrusting.get(app.url("/health")).send().await;
    assert!(refused.is_err(), "{refused:?}");

    // Plain HTTP to the TLS port: no HTTP answer at all (and the server carries on).
    let plain = app.address.replacen("https://", "http://", 1);
    let answered = crate::common::http()
        .build()
        .unwrap()
        .get(format!("{plain}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(answered.is_err(), "{answered:?}");

    let health = app.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let failures = text
        .lines()
        .find_map(|l| l.strip_prefix("rtchat_tls_handshake_failures_total "))
        .expect("the handshake failure counter")
        .parse::<f64>()
        .unwrap();
    assert!(failures >= 2.0, "{failures}");
}

#[tokio::test]
async fn a_silent_client_cannot_hold_a_handshake_open() {
    let ca = TestCa::new();
    let mut config = ca.server_config();
    config.header_timeout = Duration::from_millis(500);
    let mut app = crate::common::spawn_app_with(config).await;
    app.trust(&ca);
    let address = app.address.trim_start_matches("https://").to_string();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("the server closes a silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_a_reload_and_a_bad_one_is_not() {
    let first = TestCa::new();
    let app = spawn_tls_app(&first).await;
    let tls = app.server_tls.clone().expect("the server has TLS");

    // The renewal: a certificate of another authority written over the same files.
    let renewed = TestCa::new();
    std::fs::copy(&renewed.cert_file, &first.cert_file).unwrap();
    std::fs::copy(&renewed.key_file, &first.key_file).unwrap();
    let trusting = |ca: &TestCa| {
        crate::common::http()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&ca.client_config()))
            .build()
            .unwrap()
    };
    // Not yet reloaded: still the first certificate.
    let before = trusting(&first).get(app.url("/health")).send().await;
    assert_eq!(before.unwrap().status(), StatusCode::OK);
    tls.reload().expect("the renewed files load");
    let old = trusting(&first).get(app.url("/health")).send().await;
    assert!(old.is_err(), "the old certificate is no longer served");
    let new = trusting(&renewed).get(app.url("/health")).send().await;
    assert_eq!(new.unwrap().status(), StatusCode::OK);

    // A key that does not belong to the certificate: refused, the renewed one stays.
    std::fs::copy(&first.key_file, &renewed.key_file).unwrap();
    std::fs::copy(&TestCa::new().key_file, &first.key_file).unwrap();
    let error = tls.reload().expect_err("a mismatched key is refused");
    assert!(
        error.to_string().contains("not the key of the certificate"),
        "{error}"
    );
    let still = trusting(&renewed).get(app.url("/health")).send().await;
    assert_eq!(still.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_certificate_file_stops_the_server_before_it_starts() {
    let ca = TestCa::new();
    let unusable = |cert: &std::path::Path, key: &std::path::Path| {
        let mut config = test_config();
        config.tls_cert = Some(cert.to_path_buf());
        config.tls_key = Some(key.to_path_buf());
        config
    };
    let missing = ca.dir.join("nope.pem");
    let garbage = ca.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let cases = [
        (unusable(&missing, &ca.key_file), "--tls-cert"),
        (unusable(&garbage, &ca.key_file), "no PEM certificate"),
        (unusable(&ca.cert_file, &missing), "--tls-key"),
        (unusable(&ca.cert_file, &ca.cert_file), "--tls-key"),
    ];
    // No database is reached: the certificate is read first.
    let nowhere = tokio_postgres::Config::new();
    for (config, expected) in cases {
        let error = match Server::bind(&config, nowhere.clone(), SECRET.as_bytes()).await {
            Ok(_) => panic!("a server started with a bad certificate"),
            Err(e) => e,
        };
        assert!(matches!(error, ServerError::Tls(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}
