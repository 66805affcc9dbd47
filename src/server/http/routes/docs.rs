//! The API describing itself: the OpenAPI document at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the wire types of `proto`, and two readers of it built into the
//! binary, Swagger UI at `/docs` and ReDoc at `/redoc` (no CDN: they work offline).

use std::sync::{Arc, LazyLock};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{StatusCode, Uri};
use warp::reply::{Reply, Response};

use super::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, RequestTimeout,
    TooManyRequests, Unauthorized, Unavailable, UnsupportedMediaType,
};
use super::{
    accounts, admin, changes, files, group_settings, groups, invites, messages, meta, rooms,
    search, sync, threads, tokens, users, web_session, webhooks,
};
use crate::proto::ServerFrame;

/// The WebSocket protocol, for the document's `/ws` operation (README "Real time" has it all).
pub const WEBSOCKET: &str = "\
Upgrade to a WebSocket. Authenticate with `Authorization: Bearer TOKEN`, or (for browsers) send \
`{\"type\":\"auth\",\"token\":\"TOKEN\"}` as the first frame within 10 s. The server answers \
`connected`, then sends every event of the user's rooms (the `ServerFrame` schema). Client frames, \
JSON objects tagged by `type`: `auth`, `message` (`room_id`, `content`, optional `client_id`), \
`typing` (`room_id`), `read` (`room_id`, optional `message_id`), `join_room` / `leave_room` \
(`room_id`), `sync` (`since`, optional `limit`), `ping`. Ids may be numbers or strings of digits. \
Close codes: 1001 server shutting down, 1009 frame too large, 4000 no `auth` frame in time, 4001 \
not authenticated, 4002 no heartbeat, 4003 session ended (log in again), 4008 not reading fast \
enough (reconnect and `sync`), 4009 too many sockets for this user, 4029 too many frames.";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rtchat",
        description = "A small real-time chat server: accounts, direct and group chats, history, \
unread counts, and live delivery over WebSocket. Errors are JSON: `{\"detail\": \"...\"}`, or for \
422 a list of field errors. Ids in bodies may be numbers or strings of digits.",
        license(name = "MIT")
    ),
    paths(
        meta::root,
        meta::health,
        meta::metrics,
        openapi_json,
        swagger_ui,
        swagger_ui_file,
        redoc,
        redoc_script,
        accounts::register,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::logout_all,
        accounts::change_password,
        accounts::me,
        accounts::update_profile,
        accounts::reset_password,
        web_session::login,
        web_session::register,
        web_session::refresh,
        web_session::logout,
        users::by_username,
        users::search,
        messages::send,
        messages::history,
        messages::chats,
        changes::edit,
        changes::delete,
        changes::react,
        threads::thread,
        changes::unreact,
        search::search,
        files::upload,
        files::download,
        files::preview,
        groups::create,
        groups::send,
        groups::my_groups,
        groups::history,
        groups::list_members,
        groups::add_members,
        groups::remove_member,
        group_settings::update,
        group_settings::browse,
        group_settings::join,
        group_settings::promote,
        group_settings::demote,
        group_settings::hand_over,
        rooms::mark_read,
        rooms::mute,
        rooms::unmute,
        sync::sync,
        meta::online_users,
        admin::users,
        admin::deactivate,
        admin::reactivate,
        admin::reset_password,
        admin::set_role,
        admin::create_bot,
        admin::log,
        invites::create,
        invites::list,
        invites::revoke,
        tokens::create,
        tokens::list,
        tokens::revoke,
        webhooks::create,
        webhooks::list,
        webhooks::revoke,
        webhooks::post,
        websocket,
        websocket_token_in_path,
    ),
    components(
        schemas(ServerFrame),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            RequestTimeout,
            PayloadTooLarge,
            UnsupportedMediaType,
            Invalid,
            TooManyRequests,
            Unavailable
        )
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "users", description = "Finding people"),
        (name = "messages", description = "Direct messages"),
        (name = "groups", description = "Group chats"),
        (name = "rooms", description = "Read state of any room"),
        (name = "files", description = "Files attached to messages"),
        (name = "realtime", description = "WebSocket and catching up"),
        (name = "admin", description = "A server's administration (admins and owners)"),
        (name = "invites", description = "Invite codes for new accounts"),
        (name = "tokens", description = "Personal access tokens (for scripts and bots)"),
        (name = "webhooks", description = "Incoming webhooks: post into a group from anything"),
        (name = "meta", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// `bearer`: the access token of `/auth/login` or `/auth/register`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document, rendered once. utoipa cannot see through the id aliases (`UserId = i32`,
/// `MessageId = i64`) and refers to components named `i32` and `i64`: they are written in place as
/// the integers they are.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut document = ApiDoc::openapi();
    if let Some(components) = document.components.as_mut() {
        components.schemas.remove("i32");
        components.schemas.remove("i64");
    }
    document
        .to_pretty_json()
        .expect("the document serializes")
        .replace(
            r##""$ref": "#/components/schemas/i32""##,
            r#""type": "integer", "format": "int32""#,
        )
        .replace(
            r##""$ref": "#/components/schemas/i64""##,
            r#""type": "integer", "format": "int64""#,
        )
});

static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")));

const REDOC_SCRIPT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/redoc/redoc.standalone.js"
));

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html>
  <head>
    <title>rtchat API</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
"#;

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub(super) fn openapi_json() -> Response {
    warp::reply::with_header(DOCUMENT.as_str(), "content-type", "application/json").into_response()
}

/// Swagger UI (its page; `/docs` redirects to `/docs/`).
#[utoipa::path(get, path = "/docs", tag = "meta",
    responses((status = 303, description = "To `/docs/`, where the page is")))]
pub(super) fn swagger_ui() -> Response {
    warp::redirect::see_other(Uri::from_static("/docs/")).into_response()
}

/// Swagger UI's page and its files, built into the server.
#[utoipa::path(get, path = "/docs/{file}", tag = "meta",
    params(("file" = String, Path, description = "A file of Swagger UI; empty for its page")),
    responses(
        (status = 200, description = "The file", content_type = "text/html"),
        (status = 404, response = NotFound)))]
pub(super) fn swagger_ui_file(file: &str) -> Option<Response> {
    let found = utoipa_swagger_ui::serve(file, SWAGGER_CONFIG.clone()).ok()??;
    let mut reply = warp::reply::Response::new(found.bytes.into_owned().into());
    if let Ok(kind) = warp::http::HeaderValue::from_str(&found.content_type) {
        reply.headers_mut().insert("content-type", kind);
    }
    Some(reply)
}

/// ReDoc's page.
#[utoipa::path(get, path = "/redoc", tag = "meta",
    responses((status = 200, description = "The page", content_type = "text/html")))]
pub(super) fn redoc() -> Response {
    warp::reply::html(REDOC_PAGE).into_response()
}

/// ReDoc itself (its standalone bundle, built into the server).
#[utoipa::path(get, path = "/redoc/redoc.standalone.js", tag = "meta",
    responses((status = 200, description = "The script", content_type = "text/javascript")))]
pub(super) fn redoc_script() -> Response {
    warp::reply::with_header(REDOC_SCRIPT, "content-type", "text/javascript").into_response()
}

/// The real-time connection, authenticated by header or by a first `auth` frame.
#[utoipa::path(get, path = "/ws", tag = "realtime", description = WEBSOCKET,
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; frames are `ServerFrame`s"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Not a WebSocket upgrade request")))]
#[allow(dead_code)]
fn websocket() {}

/// The seed's form: the access token in the path (kept for its clients; it ends up in proxies'
/// logs, so prefer `/ws`).
#[utoipa::path(get, path = "/ws/{token}", tag = "realtime",
    params(("token" = String, Path, description = "An access token")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol, as `/ws`"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Not a WebSocket upgrade request")))]
#[allow(dead_code)]
fn websocket_token_in_path() {}

/// `/openapi.json`, `/docs` (Swagger UI) and `/redoc`.
pub fn routes() -> BoxedFilter<(Response,)> {
    let document = warp::path!("openapi.json")
        .and(warp::get())
        .map(openapi_json);
    // warp's `path!("docs")` also takes `/docs/`, the page itself: redirect only the bare form.
    let swagger = warp::path!("docs")
        .and(warp::get())
        .and(warp::path::full())
        .and_then(|full: warp::path::FullPath| async move {
            if full.as_str() == "/docs" {
                Ok(swagger_ui())
            } else {
                Err(warp::reject::not_found())
            }
        });
    let swagger_files = warp::path("docs")
        .and(warp::get())
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            swagger_ui_file(tail.as_str()).ok_or_else(warp::reject::not_found)
        });
    let redoc_page = warp::path!("redoc").and(warp::get()).map(redoc);
    let redoc_js = warp::path!("redoc" / "redoc.standalone.js")
        .and(warp::get())
        .map(redoc_script);
    document
        .or(swagger)
        .unify()
        .or(swagger_files)
        .unify()
        .or(redoc_page)
        .unify()
        .or(redoc_js)
        .unify()
        .map(|r: Response| {
            // Static for a given build: let browsers keep them for a while.
            let mut r = r;
            if r.status() == StatusCode::OK {
                r.headers_mut().insert(
                    "cache-control",
                    warp::http::HeaderValue::from_static("public, max-age=3600"),
                );
            }
            r
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::route_of;

    #[test]
    fn every_documented_path_is_its_own_metrics_label() {
        for path in ApiDoc::openapi().paths.paths.keys() {
            let concrete = path
                .replace("{id}", "7")
                .replace("{username}", "alice")
                .replace("{token}", "eyJ.token")
                .replace("{name}", "ci")
                .replace("{secret}", "rtch_0")
                .replace("{file}", "index.html");
            assert_eq!(route_of(&concrete), path, "{concrete}");
        }
    }
}
