//! The API document: served at `/openapi.json`, with Swagger UI at `/docs` and ReDoc at `/redoc`
//! from files in the binary; every route the code defines is in the document and every operation of
//! the document is served, answering only with statuses the document lists.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{PASSWORD, spawn_app};

/// `(METHOD, /path/{})` for every route defined in the server's code: each `warp::path!(...)` with the
/// method filter of its chain (or `websocket_upgrade()`, a GET), `warp::path::end()` for `/`, and
/// `warp::path("x")` followed by `path::tail()` for `/x/{}`.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/server");
    let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/http/routes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(format!("{dir}/ws/connection.rs").into());
    let mut routes = BTreeSet::new();
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        let code = code.split("#[cfg(test)]").next().unwrap();
        for (start, _) in code.match_indices("warp::path") {
            let rest = &code[start..];
            let (path, after) = if let Some(args) = rest.strip_prefix("warp::path!(") {
                let end = args.find(')').unwrap();
                let segments: Vec<String> = args[..end]
                    .split('/')
                    .map(str::trim)
                    .map(|s| match s.strip_prefix('"') {
                        Some(literal) => literal.trim_end_matches('"').to_string(),
                        None => "{}".to_string(),
                    })
                    .collect();
                (format!("/{}", segments.join("/")), &args[end..])
            } else if let Some(after) = rest.strip_prefix("warp::path::end()") {
                ("/".to_string(), after)
            } else if let Some(args) = rest.strip_prefix("warp::path(\"") {
                let end = args.find('"').unwrap();
                let chain = &args[end..args.find(';').unwrap()];
                assert!(chain.contains("path::tail()"), "{chain}");
                (format!("/{}/{{}}", &args[..end]), &args[end..])
            } else {
                continue;
            };
            // The method: the first method filter of this chain (it ends at the `;`).
            let chain = &after[..after.find(';').unwrap_or(after.len())];
            let method = ["get", "post", "delete", "put", "patch"]
                .into_iter()
                .filter_map(|m| chain.find(&format!("warp::{m}()")).map(|at| (at, m)))
                .chain(chain.find("websocket_upgrade()").map(|at| (at, "get")))
                .min()
                .map(|(_, m)| m.to_uppercase())
                .unwrap_or_else(|| panic!("no method for {path} in {}", file.display()));
            routes.insert((method, path));
        }
    }
    routes
}

fn templated(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_document_and_the_routes_are_the_same_set() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, templated(&path)))
        .collect();
    let in_code = routes_in_code();
    assert!(in_code.len() > 25, "{in_code:?}");
    let undocumented: Vec<_> = in_code.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&in_code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not in the code: {unserved:?}"
    );

    // Every reference points at a component that exists, and ids are plain integers.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(!schemas.contains_key("i32") && !schemas.contains_key("i64"));
    // A message's own fields sit beside its flattened marks (allOf).
    let message = &schemas["Message"];
    let chat_room_id = std::iter::once(message)
        .chain(message["allOf"].as_array().into_iter().flatten())
        .map(|part| &part["properties"]["chat_room_id"])
        .find(|p| !p.is_null())
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(chat_room_id["type"], "integer");
    let text = document.to_string();
    for (at, _) in text.match_indices("\"$ref\":\"#/components/") {
        let reference = &text[at + 21..];
        let reference = &reference[..reference.find('"').unwrap()];
        let mut node = &document["components"];
        for part in reference.split('/') {
            node = &node[part];
        }
        assert!(
            !node.is_null(),
            "dangling reference #/components/{reference}"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_with_a_documented_status() {
    let app = spawn_app().await;
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "team", &[&bob]).await;
    // A redirect is an answer of its own.
    let client = crate::common::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    for (method, path, operation) in operations(&document) {
        // A session of its own for each: logout-all and change-password end the earlier ones.
        let login = app.login("alice", PASSWORD).await;
        let token = login.body["tokens"]["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let concrete = path
            .replace("{id}", &group.to_string())
            .replace("{username}", "bob")
            .replace("{token}", &token)
            .replace("{file}", "index.html");
        let status = if path.starts_with("/ws") && path != "/ws/online-users" {
            let mut request = app.ws_url(&concrete).into_client_request().unwrap();
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            let (_, reply) = tokio_tungstenite::connect_async(request)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            reply.status().as_u16()
        } else {
            let mut request = client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete),
                )
                .bearer_auth(&token);
            if method != "GET" {
                request = request.json(&json!({}));
            }
            let reply = request.send().await.unwrap();
            let status = reply.status();
            let body = reply.text().await.unwrap();
            assert!(
                !(status == StatusCode::NOT_FOUND && body.contains("\"Not Found\""))
                    && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: no such route ({status} {body})"
            );
            status.as_u16()
        };
        assert!(
            operation["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which the document does not list"
        );
    }
}

#[tokio::test]
async fn swagger_ui_and_redoc_are_served_from_the_binary() {
    let app = spawn_app().await;
    let no_redirects = crate::common::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let docs = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::SEE_OTHER);
    assert_eq!(docs.headers()["location"], "/docs/");

    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    let config = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("/openapi.json"), "{config}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let reply = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{asset}");
        assert!(reply.bytes().await.unwrap().len() > 10_000, "{asset}");
    }

    let redoc = app.client.get(app.url("/redoc")).send().await.unwrap();
    assert_eq!(redoc.status(), StatusCode::OK);
    let redoc = redoc.text().await.unwrap();
    assert!(redoc.contains(r#"spec-url="/openapi.json""#), "{redoc}");
    assert!(
        redoc.contains(r#"src="/redoc/redoc.standalone.js""#),
        "{redoc}"
    );
    let script = app
        .client
        .get(app.url("/redoc/redoc.standalone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.bytes().await.unwrap().len() > 500_000);

    // Nothing loaded from elsewhere: the pages name no other host.
    for text in [&page, &redoc] {
        assert!(!text.contains("src=\"http"), "{text}");
        assert!(!text.contains("href=\"http"), "{text}");
    }
    let missing = app
        .client
        .get(app.url("/docs/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
