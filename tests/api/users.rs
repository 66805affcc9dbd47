use reqwest::StatusCode;
use serde_json::json;

use crate::common::spawn_app;

#[tokio::test]
async fn find_people_by_name() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("Bob_Smith").await;
    for name in ["Bob_Smith", "bob_smith", "@bob_smith"] {
        let r = app
            .get(&format!("/users/by-username/{name}"), Some(&alice.access))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.body["id"], bob.id);
        assert_eq!(r.body["username"], "Bob_Smith");
        assert!(r.body.get("email").is_none(), "no one else's email");
    }
    let r = app
        .get("/users/by-username/nobody", Some(&alice.access))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.detail(), "User not found");
}

#[tokio::test]
async fn prefix_search_is_bounded_and_literal() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for name in ["sam", "samantha", "samuel", "sa_m", "tom"] {
        app.register(name).await;
    }
    let r = app.get("/users/search?q=SAM", Some(&alice.access)).await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sam", "samantha", "samuel"]);

    // `_` and `%` are letters here, not patterns.
    let r = app.get("/users/search?q=sa_", Some(&alice.access)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get("/users/search?q=%25", Some(&alice.access)).await;
    assert_eq!(r.body, json!([]));

    let r = app
        .get("/users/search?q=sam&limit=2", Some(&alice.access))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    for q in ["q=", "q=sam&limit=0", "q=sam&limit=51", ""] {
        let r = app
            .get(&format!("/users/search?{q}"), Some(&alice.access))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    }
}
