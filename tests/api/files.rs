//! Files: upload and download byte for byte, who may read them, ranges, hostile names and types,
//! images, the limits, the sweep, and the S3 store shared by two instances.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// Uploads `bytes` as `name`; the reply.
async fn upload(app: &TestApp, who: &TestUser, name: &str, bytes: Vec<u8>) -> Reply {
    let req = app
        .client
        .post(app.url("/files"))
        .query(&[("name", name)])
        .bearer_auth(&who.access)
        .body(bytes);
    app.send(req).await
}

async fn uploaded(app: &TestApp, who: &TestUser, name: &str, bytes: Vec<u8>) -> i64 {
    let r = upload(app, who, name, bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Downloads file `id` (with `headers`): status, headers, bytes.
async fn download(
    app: &TestApp,
    who: &TestUser,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(app.url(path)).bearer_auth(&who.access);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    assert!(status.as_u16() < 500, "{status}");
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

async fn send_files(
    app: &TestApp,
    from: &TestUser,
    to: &TestUser,
    text: &str,
    ids: &[i64],
) -> Reply {
    app.post(
        "/messages/send",
        Some(&from.access),
        json!({"recipient_id": to.id, "content": text, "attachments": ids}),
    )
    .await
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn files_dir(app: &TestApp) -> std::path::PathBuf {
    app.config.file_store.clone().unwrap().into()
}

/// Regular files under `dir`, recursively.
fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(stored_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

const LIMIT: u64 = 256 * 1024;

fn small_limits() -> rtchat::server::Config {
    let mut config = test_config();
    config.max_upload_size = LIMIT;
    config
}

#[tokio::test]
async fn files_go_up_and_come_back_byte_for_byte_up_to_the_limit() {
    let app = spawn_app_with(small_limits()).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    for size in [1usize, 5_000, LIMIT as usize] {
        let bytes = pattern(size);
        let r = upload(&app, &alice, "data.bin", bytes.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["size"], size);
        let sha = sha256_hex(&bytes);
        assert_eq!(r.body["sha256"], sha);
        let id = r.body["id"].as_i64().unwrap();
        // No text at all: a message may be only its files.
        let sent = send_files(&app, &alice, &bob, "", &[id]).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
        assert_eq!(sent.body["data"]["attachments"][0]["id"], id);
        let (status, headers, got) = download(&app, &bob, &format!("/files/{id}"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, bytes, "{size} bytes back exactly");
        assert_eq!(headers["etag"], format!("\"{sha}\""));
        assert_eq!(headers["content-length"], size.to_string());
    }
    // One byte over: refused from its Content-Length, and, without one, as soon as it passes.
    let over = upload(&app, &alice, "big.bin", pattern(LIMIT as usize + 1)).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    assert!(over.detail().contains("256 KiB"), "{}", over.detail());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(pattern(16 * 1024))).collect();
    let streamed = app
        .client
        .post(app.url("/files?name=stream.bin"))
        .bearer_auth(&alice.access)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )));
    let r = app.send(streamed).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    let empty = upload(&app, &alice, "empty", Vec::new()).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    // History carries them, with name, size and type.
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    let files: Vec<&Value> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["attachments"][0])
        .collect();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["name"], "data.bin");
    assert_eq!(files[0]["size"], 1);
    assert_eq!(files[2]["content_type"], "application/octet-stream");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn only_members_of_its_room_can_download_a_file() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let id = uploaded(&app, &alice, "plan.txt", b"the plan".to_vec()).await;
    // Before it is sent, only its uploader sees it.
    assert_eq!(
        download(&app, &alice, &format!("/files/{id}"), &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        download(&app, &bob, &format!("/files/{id}"), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let group = app.create_group(&alice, "ops", &[&bob]).await;
    let sent = app
        .post(
            "/groups/send",
            Some(&alice.access),
            json!({"group_id": group, "content": "read this", "attachments": [id]}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(
        download(&app, &bob, &format!("/files/{id}"), &[]).await.0,
        StatusCode::OK
    );
    // Someone else, an unknown id and a garbage id: the same 404.
    for (who, path) in [
        (&eve, format!("/files/{id}")),
        (&bob, "/files/999999".to_string()),
    ] {
        let (status, _, body) = download(&app, who, &path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["detail"], "File not found");
    }
    // A member removed loses it.
    let removed = app
        .delete(
            &format!("/groups/{group}/members"),
            Some(&alice.access),
            json!({"user_id": bob.id}),
        )
        .await;
    assert!(removed.status.is_success(), "{}", removed.body);
    assert_eq!(
        download(&app, &bob, &format!("/files/{id}"), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // Without a token: 401.
    let anonymous = app
        .client
        .get(app.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Nobody attaches another's upload, nor one file twice.
    let mine = uploaded(&app, &eve, "x.txt", b"x".to_vec()).await;
    let r = send_files(&app, &alice, &bob, "take", &[mine]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = send_files(&app, &alice, &bob, "again", &[id]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let many: Vec<i64> = (0..11).collect();
    let r = send_files(&app, &alice, &bob, "", &many).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn ranges_and_etags_work_as_http_says() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bytes = pattern(1000);
    let id = uploaded(&app, &alice, "data.bin", bytes.clone()).await;
    let path = format!("/files/{id}");
    let (status, headers, got) = download(&app, &alice, &path, &[("range", "bytes=10-19")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers["content-range"], "bytes 10-19/1000");
    assert_eq!(got, bytes[10..20]);
    let (status, _, got) = download(&app, &alice, &path, &[("range", "bytes=-5")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got, bytes[995..]);
    let (status, _, got) = download(&app, &alice, &path, &[("range", "bytes=990-")]).await;
    assert_eq!((status, got.len()), (StatusCode::PARTIAL_CONTENT, 10));
    let (status, headers, _) = download(&app, &alice, &path, &[("range", "bytes=5000-")]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], "bytes */1000");
    let (_, headers, _) = download(&app, &alice, &path, &[]).await;
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(headers["accept-ranges"], "bytes");
    let (status, _, got) = download(&app, &alice, &path, &[("if-none-match", &etag)]).await;
    assert_eq!((status, got.len()), (StatusCode::NOT_MODIFIED, 0));
    // A range for another version gets the whole file.
    let (status, _, got) = download(
        &app,
        &alice,
        &path,
        &[("range", "bytes=0-1"), ("if-range", "\"old\"")],
    )
    .await;
    assert_eq!((status, got.len()), (StatusCode::OK, 1000));
}

#[tokio::test]
async fn hostile_files_are_always_downloads_that_cannot_run() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let html = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec();
    for (name, bytes, stored_type) in [
        ("page.html", html, "text/html"),
        ("logo.svg", svg, "image/svg+xml"),
    ] {
        let r = upload(&app, &alice, name, bytes.clone()).await;
        assert_eq!(r.body["content_type"], stored_type, "{}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let (status, headers, got) = download(&app, &alice, &format!("/files/{id}"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, bytes);
        assert_eq!(
            headers["content-type"], "application/octet-stream",
            "{name}"
        );
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );
    }
    // A name is never a path, nor a header injection.
    let r = upload(&app, &alice, "../../etc/passwd", b"root:x:0:0".to_vec()).await;
    assert_eq!(r.body["name"], "passwd");
    let r = upload(&app, &alice, "a\"\r\nSet-Cookie: x=1;.txt", b"hi".to_vec()).await;
    let id = r.body["id"].as_i64().unwrap();
    let (_, headers, _) = download(&app, &alice, &format!("/files/{id}"), &[]).await;
    assert!(headers.get("set-cookie").is_none());
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        !disposition.contains("\"\r") && disposition.contains("filename*=UTF-8''"),
        "{disposition}"
    );
}

#[tokio::test]
async fn images_get_their_size_and_a_small_preview() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // Named .txt: the bytes say what it is.
    let r = upload(&app, &alice, "screenshot.txt", png(1000, 400)).await;
    assert_eq!(r.body["content_type"], "image/png", "{}", r.body);
    assert_eq!(
        (r.body["width"].as_i64(), r.body["height"].as_i64()),
        (Some(1000), Some(400))
    );
    assert_eq!(r.body["preview"], true);
    let id = r.body["id"].as_i64().unwrap();
    send_files(&app, &alice, &bob, "look", &[id]).await;
    let (status, headers, preview) =
        download(&app, &bob, &format!("/files/{id}/preview"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/jpeg");
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&preview))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap();
    assert_eq!((w, h), (320, 128));
    let (_, headers, _) = download(&app, &bob, &format!("/files/{id}"), &[]).await;
    assert_eq!(headers["content-type"], "image/png");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    // Not an image: no preview.
    let other = uploaded(&app, &alice, "notes.txt", b"words".to_vec()).await;
    assert_eq!(
        download(&app, &alice, &format!("/files/{other}/preview"), &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_upload_cut_off_halfway_leaves_nothing_behind() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /files?name=half.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 12000000\r\n\r\n",
        alice.access
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // Past the first 5 MiB part: something is written to storage.
    socket.write_all(&pattern(6_000_000)).await.unwrap();
    socket.flush().await.unwrap();
    let dir = files_dir(&app);
    assert!(
        eventually(|| async { !stored_files(&dir).is_empty() }).await,
        "the upload started"
    );
    drop(socket);
    assert!(
        eventually(|| async { stored_files(&dir).is_empty() }).await,
        "left behind: {:?}",
        stored_files(&dir)
    );
    let rows = app
        .sql()
        .await
        .query("SELECT id FROM files", &[])
        .await
        .unwrap();
    assert!(rows.is_empty());
    // A stalled upload is cut off by the body deadline (408), and leaves nothing either.
    let mut config = test_config();
    config.body_timeout = Duration::from_millis(300);
    let slow = spawn_app_with(config).await;
    let alice = slow.register("alice").await;
    let mut socket = tokio::net::TcpStream::connect(slow.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /files?name=slow.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\nabc",
        alice.access
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let dir = files_dir(&slow);
    assert!(eventually(|| async { stored_files(&dir).is_empty() }).await);
}

#[tokio::test]
async fn the_quota_counts_each_users_files() {
    let mut config = test_config();
    config.upload_quota = 100_000;
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    uploaded(&app, &alice, "a.bin", pattern(60_000)).await;
    let r = upload(&app, &alice, "b.bin", pattern(60_000)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(r.detail().contains("quota"), "{}", r.detail());
    // Bob's space is his own.
    uploaded(&app, &bob, "b.bin", pattern(60_000)).await;
}

#[tokio::test]
async fn unattached_uploads_and_deleted_messages_files_are_swept() {
    let mut config = test_config();
    config.unattached_upload_ttl = Duration::from_millis(500);
    config.file_sweep_interval = Duration::from_millis(200);
    let app = spawn_app_with(config).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dir = files_dir(&app);
    // The same bytes twice are stored once.
    let kept = uploaded(&app, &alice, "one.bin", pattern(3000)).await;
    let twin = uploaded(&app, &alice, "two.bin", pattern(3000)).await;
    send_files(&app, &alice, &bob, "both", &[kept, twin]).await;
    assert_eq!(stored_files(&dir).len(), 1, "{:?}", stored_files(&dir));
    let forgotten = uploaded(&app, &alice, "never-sent.bin", pattern(10)).await;
    assert!(
        eventually(|| async {
            download(&app, &alice, &format!("/files/{forgotten}"), &[])
                .await
                .0
                == StatusCode::NOT_FOUND
        })
        .await
    );
    assert!(eventually(|| async { stored_files(&dir).len() == 1 }).await);
    // Deleting the message takes its files' access at once and their bytes soon after.
    let gone = uploaded(&app, &alice, "secret.bin", pattern(500)).await;
    let sent = send_files(&app, &alice, &bob, "oops", &[gone]).await;
    let message = sent.body["data"]["id"].as_i64().unwrap();
    assert_eq!(stored_files(&dir).len(), 2);
    let r = app
        .delete(
            &format!("/messages/{message}"),
            Some(&alice.access),
            json!(null),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        download(&app, &bob, &format!("/files/{gone}"), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(eventually(|| async { stored_files(&dir).len() == 1 }).await);
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    let deleted = page.body.as_array().unwrap().last().unwrap().clone();
    assert!(deleted.get("attachments").is_none(), "{deleted}");
    assert_eq!(
        download(&app, &bob, &format!("/files/{kept}"), &[]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn attachments_reach_every_door_live_sync_search_and_edits() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "ops", &[&bob]).await;
    let mut bobs = app.ws(&bob.access).await;
    let mut alices = app.ws(&alice.access).await;
    let id = uploaded(
        &app,
        &alice,
        "quarterly-report.pdf",
        b"%PDF-1.7\n...".to_vec(),
    )
    .await;
    alices
        .send(json!({"type": "message", "room_id": group, "content": "", "attachments": [id]}))
        .await;
    let live = bobs.recv_type("new_message").await;
    assert_eq!(
        live["attachments"][0]["name"], "quarterly-report.pdf",
        "{live}"
    );
    assert_eq!(live["attachments"][0]["content_type"], "application/pdf");
    let message = live["message_id"].as_i64().unwrap();
    let synced = app.get("/sync?since=0", Some(&bob.access)).await;
    assert!(
        synced.body.to_string().contains("quarterly-report.pdf"),
        "{}",
        synced.body
    );
    for words in ["quarterly", "report", "quarterly-report.pdf"] {
        let found = app
            .get(&format!("/search?q={words}"), Some(&bob.access))
            .await;
        assert_eq!(
            found.body["results"][0]["message_id"], message,
            "{words}: {}",
            found.body
        );
    }
    let edited = app
        .patch(
            &format!("/messages/{message}"),
            Some(&alice.access),
            json!({"content": "the report"}),
        )
        .await;
    assert!(edited.status.is_success(), "{}", edited.body);
    let page = app
        .get(&format!("/groups/{group}/messages"), Some(&bob.access))
        .await;
    let last = page.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["content"], "the report");
    assert_eq!(last["attachments"][0]["id"], id, "{last}");
    // A bad list is refused with words, and the socket stays.
    alices
        .send(json!({"type": "message", "room_id": group, "content": "x", "attachments": "7"}))
        .await;
    let refused = alices.recv_type("error").await;
    assert!(refused.to_string().contains("attachments"), "{refused}");
}

#[tokio::test]
async fn two_instances_share_files_through_s3() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = new_bucket(&endpoint).await;
    let mut config = test_config();
    config.file_store = Some(format!("s3://{bucket}/team-files"));
    let apps = spawn_cluster(2, config).await;
    let alice = apps[0].register("alice").await;
    let bob = apps[0].register("bob").await;
    let bytes = pattern(6 * 1024 * 1024 + 17);
    let id = uploaded(&apps[0], &alice, "build.tar", bytes.clone()).await;
    let r = send_files(&apps[0], &alice, &bob, "the build", &[id]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (status, _, got) = download(&apps[1], &bob, &format!("/files/{id}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == bytes, "{} bytes back", got.len());
    let (status, _, part) = download(
        &apps[1],
        &bob,
        &format!("/files/{id}"),
        &[("range", "bytes=6291456-")],
    )
    .await;
    assert_eq!(
        (status, part.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &bytes[6291456..])
    );
    let listing = |bucket: String| {
        let endpoint = endpoint.clone();
        async move {
            http()
                .build()
                .unwrap()
                .get(format!("{endpoint}/{bucket}?list-type=2"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let sha = sha256_hex(&bytes);
    let listed = listing(bucket.clone()).await;
    assert!(
        listed.contains(&format!("team-files/blobs/{}/{sha}", &sha[..2])),
        "{listed}"
    );
    // Deleted on one instance: gone from the bucket.
    let message = r.body["data"]["id"].as_i64().unwrap();
    apps[1]
        .delete(
            &format!("/messages/{message}"),
            Some(&alice.access),
            json!(null),
        )
        .await;
    assert!(eventually(|| async { !listing(bucket.clone()).await.contains(&sha) }).await);
}

#[tokio::test]
async fn a_retried_send_with_files_stores_one_message_that_keeps_them() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let id = uploaded(&app, &alice, "once.txt", b"once".to_vec()).await;
    let body =
        json!({"recipient_id": bob.id, "content": "", "attachments": [id], "client_id": "c-1"});
    let first = app
        .post("/messages/send", Some(&alice.access), body.clone())
        .await;
    let again = app.post("/messages/send", Some(&alice.access), body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(first.body["data"]["id"], again.body["data"]["id"]);
    assert_eq!(again.body["data"]["attachments"][0]["id"], id);
    let page = app
        .get(&format!("/messages/chat/{}", alice.id), Some(&bob.access))
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    let message = first.body["data"]["id"].as_i64().unwrap();
    let rows = app
        .sql()
        .await
        .query("SELECT message_id FROM files WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, Option<i64>>(0), Some(message));
    assert_eq!(
        download(&app, &bob, &format!("/files/{id}"), &[]).await.2,
        b"once"
    );
}
