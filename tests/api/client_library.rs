//! The crate's client library (`rtchat::client`), as a program would use it: typed calls over REST,
//! the live connection through a server restart, and a token refreshed without the caller noticing.

use std::time::Duration;

use rtchat::client::live::{self, Event};
use rtchat::client::{CliError, Draft, Page};
use rtchat::proto::{LiveMessage, ServerFrame};
use tokio::sync::mpsc;

use crate::common::{TestUser, spawn_app};

fn draft<'a>(content: &'a str, client_id: &'a str) -> Draft<'a> {
    Draft {
        content,
        client_id,
        reply_to: None,
        attachments: &[],
    }
}

fn user_id(user: &TestUser) -> i32 {
    user.id as i32
}

#[tokio::test]
async fn a_conversation_through_the_typed_client() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );
    let (as_alice, as_bob) = (app.api(&alice), app.api(&bob));

    let sent = as_alice
        .send_direct(user_id(&bob), &draft("lunch at noon?", "c-1"))
        .await
        .unwrap();
    let chats = as_bob.chats().await.unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].other_user_username, "alice");
    assert_eq!(chats[0].unread_count, 1);
    // Reading the page reads the chat.
    let page = as_bob
        .direct_history(user_id(&alice), Page::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].message.id, sent.data.id);
    assert_eq!(page[0].message.content, "lunch at noon?");
    assert_eq!(page[0].sender_username.as_deref(), Some("alice"));

    let edited = as_alice.edit(sent.data.id, "lunch at one?").await.unwrap();
    assert_eq!(edited.content.as_deref(), Some("lunch at one?"));
    let found = as_bob.search("lunch", None, None, 10).await.unwrap();
    assert_eq!(found.results.len(), 1);
    assert_eq!(found.results[0].content, "lunch at one?");
    let read = as_bob.mark_read(sent.data.chat_room_id).await.unwrap();
    assert_eq!(read.unread_count, 0);
    assert_eq!(as_bob.chats().await.unwrap()[0].unread_count, 0);

    // A group: made, joined, talked in, read back through sync.
    let crew = as_alice
        .create_group("crew", &[user_id(&bob)])
        .await
        .unwrap()
        .group;
    as_alice
        .add_members(crew.id, &[user_id(&carol)])
        .await
        .unwrap();
    let members = as_bob.members(crew.id).await.unwrap();
    let mut names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    as_bob
        .send_group(crew.id, &draft("deploy done", "c-2"))
        .await
        .unwrap();
    let synced = app.api(&carol).sync(0, 100).await.unwrap();
    let texts: Vec<&str> = synced.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["deploy done"]);

    // A refusal is a typed error, not a status to decode.
    let outsider = app.api(&carol);
    match outsider.delete(sent.data.id).await {
        Err(CliError::NotFound(_)) => {}
        other => panic!("carol deleting alice's direct message: {other:?}"),
    }
}

#[tokio::test]
async fn the_live_connection_hands_over_every_message_once_across_a_restart() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let listener = app.api(&bob);
    let (heard, mut messages) = mpsc::unbounded_channel::<LiveMessage>();
    let (losses, mut lost) = mpsc::unbounded_channel::<()>();
    let listening = tokio::spawn(async move {
        live::listen(&listener, None, move |event| match event {
            Event::Frame(ServerFrame::NewMessage { message, .. }) => heard.send(message).is_ok(),
            Event::Lost { .. } => losses.send(()).is_ok(),
            _ => true,
        })
        .await
    });
    app.wait_for_sockets(1).await;
    let as_alice = app.api(&alice);
    as_alice
        .send_direct(user_id(&bob), &draft("before", "l-1"))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), messages.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.content, "before");

    // The server goes away; what is sent once it is back, and while the listener is away, arrives
    // once each, in order.
    app.stop_server().await;
    tokio::time::timeout(Duration::from_secs(10), lost.recv())
        .await
        .expect("the listener says the connection was lost");
    app.start_server().await;
    let as_alice = app.api(&alice);
    for text in ["after 1", "after 2", "after 3"] {
        as_alice
            .send_direct(user_id(&bob), &draft(text, text))
            .await
            .unwrap();
    }
    let mut after = Vec::new();
    while after.len() < 3 {
        let m = tokio::time::timeout(Duration::from_secs(20), messages.recv())
            .await
            .expect("every message arrives after the restart")
            .unwrap();
        after.push(m.content);
    }
    assert_eq!(after, ["after 1", "after 2", "after 3"]);
    let extra = tokio::time::timeout(Duration::from_millis(500), messages.recv()).await;
    assert!(extra.is_err(), "nothing twice: {extra:?}");
    listening.abort();
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_without_the_caller_noticing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let expired = TestUser {
        access: app.expired_token(&alice),
        ..alice.clone()
    };
    let as_alice = app.api(&expired);
    let me = as_alice.me().await.unwrap();
    assert_eq!(me.username, "alice");
    let kept = as_alice.session().unwrap();
    assert_ne!(
        kept.access_token, expired.access,
        "a new access token is kept"
    );
    assert_ne!(
        kept.refresh_token, alice.refresh,
        "and the rotated refresh token"
    );
    // The old refresh token was used once; the kept one goes on working.
    assert_eq!(as_alice.me().await.unwrap().id, me.id);
}
