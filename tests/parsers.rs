//! Property tests of every parser a client's bytes reach: WebSocket frames, JSON request bodies and
//! query strings. Whatever the input, each answers a value or a client error, and never panics; and
//! what a well-behaved client sends is read back exactly.

use proptest::prelude::*;
use rtchat::proto::ClientFrame;
use rtchat::proto::{
    AddMembersRequest, ChangePasswordRequest, CreateGroupRequest, LoginRequest, MarkReadRequest,
    RefreshRequest, RegisterRequest, RemoveMemberRequest, SendDirectRequest, SendGroupRequest,
};
use rtchat::server::commands::ApiError;
use rtchat::server::commands::validate::Validate;
use rtchat::server::commands::validate::{HistoryQuery, SearchQuery};
use rtchat::server::http::extract::{parse_json, parse_query};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep, with the field names the parsers look for among others.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("type".to_string()),
        Just("room_id".to_string()),
        Just("content".to_string()),
        Just("since".to_string()),
        Just("limit".to_string()),
        Just("username".to_string()),
        Just("password".to_string()),
        Just("user_ids".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("message"),
            Just("typing"),
            Just("sync"),
            Just("read"),
            Just("join_room"),
            Just("auth"),
            Just("ping")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A parse that failed failed as the client's fault.
fn client_error(e: &ApiError) -> bool {
    e.status().is_client_error()
}

fn body_is_handled<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = parse_json::<T>(bytes) {
        prop_assert!(client_error(&e), "{e:?}");
    }
    Ok(())
}

fn every_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    body_is_handled::<RegisterRequest>(bytes)?;
    body_is_handled::<LoginRequest>(bytes)?;
    body_is_handled::<RefreshRequest>(bytes)?;
    body_is_handled::<ChangePasswordRequest>(bytes)?;
    body_is_handled::<SendDirectRequest>(bytes)?;
    body_is_handled::<SendGroupRequest>(bytes)?;
    body_is_handled::<CreateGroupRequest>(bytes)?;
    body_is_handled::<AddMembersRequest>(bytes)?;
    body_is_handled::<RemoveMemberRequest>(bytes)?;
    body_is_handled::<MarkReadRequest>(bytes)
}

/// An id as the seed's clients send it: a number, or the number in a string.
fn lenient_id(id: i32, as_string: bool) -> Value {
    if as_string {
        Value::from(id.to_string())
    } else {
        Value::from(id)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frames_of_any_text_are_parsed_or_refused(text in ".{0,64}") {
        let _ = ClientFrame::parse(&text);
    }

    #[test]
    fn frames_of_any_json_are_parsed_or_refused(value in any_json()) {
        if let Err(refused) = ClientFrame::parse(&value.to_string()) {
            prop_assert!(!refused.is_empty());
        }
    }

    #[test]
    fn well_formed_frames_read_back_exactly(
        room in 1..i32::MAX,
        as_string in any::<bool>(),
        content in ".{1,40}",
        client_id in proptest::option::of("[a-z0-9-]{1,20}"),
        since in 0..i64::MAX,
    ) {
        let id = lenient_id(room, as_string);
        let mut message = json!({"type": "message", "room_id": id, "content": content});
        if let Some(c) = &client_id {
            message["client_id"] = json!(c);
        }
        prop_assert_eq!(
            ClientFrame::parse(&message.to_string()),
            Ok(ClientFrame::Message { room, content: content.clone(), client_id: client_id.clone(), reply_to: None, attachments: Vec::new() })
        );
        prop_assert_eq!(
            ClientFrame::parse(&json!({"type": "typing", "room_id": id}).to_string()),
            Ok(ClientFrame::Typing { room })
        );
        prop_assert_eq!(
            ClientFrame::parse(&json!({"type": "sync", "since": since}).to_string()),
            Ok(ClientFrame::Sync { since, limit: None })
        );
    }

    #[test]
    fn bodies_of_any_bytes_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        every_body(&bytes)?;
    }

    #[test]
    fn bodies_of_any_json_are_parsed_or_refused(value in any_json()) {
        every_body(value.to_string().as_bytes())?;
    }

    #[test]
    fn query_strings_are_parsed_or_refused(raw in "[a-z_=&%0-9.+-]{0,48}") {
        if let Err(e) = parse_query::<HistoryQuery>(&raw) {
            prop_assert!(client_error(&e), "{e:?}");
        }
        if let Err(e) = parse_query::<SearchQuery>(&raw) {
            prop_assert!(client_error(&e), "{e:?}");
        }
    }
}
