//! The HTTP side of the client: one method per server route, the bearer token added and refreshed
//! transparently (the rotated refresh token saved), and every failure turned into a `CliError`.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use std::path::PathBuf;
use std::sync::Arc;

use super::error::CliError;
use super::session::{Session, SessionStore};
use super::tls;
use crate::proto::{
    AddMembersReply, AddMembersRequest, AuthReply, ChangePasswordRequest, ChatSummary,
    CreateGroupReply, CreateGroupRequest, GroupSummary, LoginRequest, MarkReadRequest, Member,
    MessageWithSender, PublicUser, ReadState, RefreshRequest, RegisterRequest, RemoveMemberRequest,
    RoomId, SendDirectRequest, SendGroupRequest, SendReply, SyncReply, Tokens,
    UpdateProfileRequest, User, UserId,
};
use crate::proto::{ChangeReply, EditRequest, FileId, MessageChange, MessageId, SearchReply};

/// The body of a request that has none.
pub(super) const NO_BODY: Option<&()> = None;

pub struct Api {
    http: reqwest::Client,
    base: String,
    store: SessionStore,
    /// For `https://` servers: what the client trusts, shared with the WebSocket.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The private CA given for this server, kept with its login.
    ca_cert: Option<PathBuf>,
    /// One refresh at a time in this process (concurrent requests may all find the token expired).
    refreshing: tokio::sync::Mutex<()>,
    /// Signed in with a personal access token (`RTCHAT_TOKEN`): nothing to refresh.
    token_only: bool,
}

/// A message to send.
pub struct Draft<'a> {
    pub content: &'a str,
    /// Retry key: the server stores one message per key.
    pub client_id: &'a str,
    /// The message it answers.
    pub reply_to: Option<MessageId>,
    /// Files uploaded for it (`Api::upload`).
    pub attachments: &'a [FileId],
}

/// Which page of history to ask for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub limit: Option<u32>,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

impl Api {
    /// A client of `base`. For an `https://` server it trusts the system's CAs and `ca_cert`, else
    /// the CA saved with this server's login.
    pub fn new(base: &str, store: SessionStore, ca_cert: Option<PathBuf>) -> Result<Api, CliError> {
        let base = base.trim_end_matches('/').to_string();
        tls::install_provider();
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("rtchat/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30));
        let ca_cert = match ca_cert {
            Some(path) => Some(tls::absolute(&path)),
            // A damaged credentials file is reported where a login is needed (a new login
            // replaces it).
            None => store.get(&base).ok().flatten().and_then(|s| s.ca_cert),
        };
        let tls = if base.starts_with("https://") {
            let config = tls::client_config(ca_cert.as_deref())?;
            http = http.tls_backend_preconfigured(rustls::ClientConfig::clone(&config));
            Some(config)
        } else {
            None
        };
        let http = http
            .build()
            .map_err(|e| CliError::Local(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Api {
            http,
            base,
            store,
            tls,
            ca_cert,
            refreshing: tokio::sync::Mutex::new(()),
            token_only: false,
        })
    }

    /// A client of `base` that speaks with a personal access token (`rtchat tokens create`, or a
    /// bot's), kept in memory only; asks the server whose it is.
    pub async fn with_token(
        base: &str,
        token: &str,
        ca_cert: Option<PathBuf>,
    ) -> Result<Api, CliError> {
        let base = base.trim_end_matches('/');
        let store = SessionStore::in_memory();
        let mut api = Api::new(base, store.clone(), ca_cert)?;
        api.token_only = true;
        let mut session = Session {
            username: String::new(),
            user_id: 0,
            access_token: token.trim().to_string(),
            refresh_token: String::new(),
            ca_cert: None,
        };
        store.put(base, Some(&session))?;
        let me = api.me().await?;
        session.username = me.username;
        session.user_id = me.id;
        store.put(base, Some(&session))?;
        Ok(api)
    }

    /// A client of `base` signed in as `session`, kept in memory only: for a program or a test
    /// that speaks as users it registered itself (no credentials file is read or written).
    pub fn with_session(
        base: &str,
        session: Session,
        ca_cert: Option<PathBuf>,
    ) -> Result<Api, CliError> {
        let store = SessionStore::in_memory();
        store.put(base.trim_end_matches('/'), Some(&session))?;
        Api::new(base, store, ca_cert)
    }

    /// The HTTP client, for requests that stream their bodies (`files`).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How the live connection reaches the server: TLS with the same trust as the HTTP client.
    pub fn ws_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.tls
            .as_ref()
            .map(|config| tokio_tungstenite::Connector::Rustls(config.clone()))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The saved session for this server, or the error that tells the user to log in.
    pub fn session(&self) -> Result<Session, CliError> {
        self.store.get(&self.base)?.ok_or_else(|| {
            CliError::Auth(format!(
                "not logged in to {}: run `rtchat login USERNAME` (or `rtchat register`)",
                self.base
            ))
        })
    }

    /// The WebSocket address of the server.
    pub fn ws_url(&self) -> String {
        let base = self
            .base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}/ws")
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
        token: Option<&str>,
    ) -> Result<(StatusCode, Value), CliError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .query(query);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let response = match req.send().await {
            Ok(response) => response,
            Err(e) => return Err(self.unreachable(e).await),
        };
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::Server(format!("reading the reply failed: {e}")))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Why a request did not reach the server, in the user's terms, with what to check.
    pub(super) async fn unreachable(&self, e: reqwest::Error) -> CliError {
        let why = if let Some(tls) = tls::explain(&e) {
            tls
        } else if e.is_connect() {
            "connection refused (is rtchat-server running there? check the address: --server \
             or RTCHAT_SERVER)"
                .to_string()
        } else if e.is_timeout() {
            "timed out".to_string()
        } else if self.base.starts_with("http://") && tls::speaks_tls(&self.base).await {
            let https = self.base.replacen("http://", "https://", 1);
            format!("it speaks HTTPS: use --server {https}")
        } else {
            e.without_url().to_string()
        };
        CliError::Server(format!("cannot reach the server at {}: {why}", self.base))
    }

    /// One request; with `auth`, an expired access token is refreshed once and the request retried.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
        auth: bool,
    ) -> Result<T, CliError> {
        let mut session = if auth { Some(self.session()?) } else { None };
        let token = session.as_ref().map(|s| s.access_token.clone());
        let (mut status, mut reply) = self
            .send_once(&method, path, query, body, token.as_deref())
            .await?;
        if status == StatusCode::UNAUTHORIZED && self.token_only && session.is_some() {
            return Err(CliError::Auth(format!(
                "the access token was refused ({}): it may be revoked or expired",
                detail(&reply)
            )));
        }
        if status == StatusCode::UNAUTHORIZED
            && let Some(s) = session.take()
        {
            let fresh = self.refresh(&s).await?;
            (status, reply) = self
                .send_once(&method, path, query, body, Some(&fresh.access_token))
                .await?;
            if status == StatusCode::UNAUTHORIZED {
                return Err(session_over());
            }
        }
        if status.is_success() {
            return serde_json::from_value(reply)
                .map_err(|e| CliError::Server(format!("unexpected reply from the server: {e}")));
        }
        Err(http_error(status, &reply))
    }

    /// Exchanges the refresh token for new tokens and saves them. Under the store's lock: if another
    /// `rtchat` refreshed meanwhile, its tokens are used instead of spending ours twice.
    pub(super) async fn refresh(&self, stale: &Session) -> Result<Session, CliError> {
        let _one_at_a_time = self.refreshing.lock().await;
        // The file lock may wait for another process: not on the async thread.
        let store = self.store.clone();
        let _lock = tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| CliError::Local(format!("locking the credentials failed: {e}")))??;
        if let Some(current) = self.store.get(&self.base)?
            && current.access_token != stale.access_token
        {
            return Ok(current);
        }
        let (status, reply) = self
            .send_once(
                &Method::POST,
                "/auth/refresh",
                &[],
                Some(&RefreshRequest {
                    refresh_token: stale.refresh_token.clone(),
                }),
                None,
            )
            .await?;
        if !status.is_success() {
            if status == StatusCode::UNAUTHORIZED {
                self.store.put(&self.base, None)?;
                return Err(session_over());
            }
            return Err(http_error(status, &reply));
        }
        let tokens: Tokens = serde_json::from_value(reply)
            .map_err(|e| CliError::Server(format!("unexpected reply from the server: {e}")))?;
        let fresh = Session {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            ..stale.clone()
        };
        self.store.put(&self.base, Some(&fresh))?;
        Ok(fresh)
    }

    /// Keeps the login, for this server, which becomes the one used when none is named.
    fn save_login(&self, reply: &AuthReply) -> Result<(), CliError> {
        let _lock = self.store.lock()?;
        self.store.put_default(
            &self.base,
            &Session {
                username: reply.user.username.clone(),
                user_id: reply.user.id,
                access_token: reply.tokens.access_token.clone(),
                refresh_token: reply.tokens.refresh_token.clone(),
                ca_cert: self.ca_cert.clone(),
            },
        )
    }

    fn forget_login(&self) -> Result<(), CliError> {
        let _lock = self.store.lock()?;
        self.store.put(&self.base, None)
    }

    // ----- accounts -----

    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
        full_name: Option<&str>,
    ) -> Result<AuthReply, CliError> {
        self.register_with_invite(username, email, password, full_name, None)
            .await
    }

    /// `register`, with the invite code a server that admits by invitation needs.
    pub async fn register_with_invite(
        &self,
        username: &str,
        email: &str,
        password: &str,
        full_name: Option<&str>,
        invite: Option<&str>,
    ) -> Result<AuthReply, CliError> {
        let body = RegisterRequest {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            full_name: full_name.map(str::to_string),
            invite: invite.map(str::to_string),
        };
        let reply: AuthReply = self
            .call(Method::POST, "/auth/register", &[], Some(&body), false)
            .await?;
        self.save_login(&reply)?;
        Ok(reply)
    }

    pub async fn login(&self, login: &str, password: &str) -> Result<AuthReply, CliError> {
        let body = LoginRequest {
            username: login.into(),
            password: password.into(),
        };
        let reply: AuthReply = self
            .call(Method::POST, "/auth/login", &[], Some(&body), false)
            .await
            .map_err(|e| match e {
                // A deactivated account or a bot is told why; a wrong password is not told more.
                CliError::Auth(why) if why.contains("Invalid username or password") => {
                    CliError::Auth("wrong username or password".into())
                }
                CliError::Auth(why) => {
                    CliError::Auth(why.trim_end_matches(": run `rtchat login USERNAME`").into())
                }
                other => other,
            })?;
        self.save_login(&reply)?;
        Ok(reply)
    }

    /// Ends this session (or, with `all`, every session of the account) and forgets it locally.
    pub async fn logout(&self, all: bool) -> Result<Value, CliError> {
        let session = self.session()?;
        let result = if all {
            self.call(Method::POST, "/auth/logout-all", &[], NO_BODY, true)
                .await
        } else {
            let body = RefreshRequest {
                refresh_token: session.refresh_token.clone(),
            };
            self.call(Method::POST, "/auth/logout", &[], Some(&body), false)
                .await
        };
        // Gone on the server or not, the local login is over.
        self.forget_login()?;
        match result {
            Ok(v) => Ok(v),
            Err(CliError::Auth(_)) | Err(CliError::Refused(_)) => {
                Ok(json!({"message": "Logged out (the session had already ended)"}))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn me(&self) -> Result<User, CliError> {
        self.call(Method::GET, "/auth/me", &[], NO_BODY, true).await
    }

    pub async fn change_password(&self, old: &str, new: &str) -> Result<Value, CliError> {
        let body = ChangePasswordRequest {
            old_password: old.into(),
            new_password: new.into(),
        };
        let reply = self
            .call(
                Method::POST,
                "/auth/change-password",
                &[],
                Some(&body),
                true,
            )
            .await?;
        self.forget_login()?;
        Ok(reply)
    }

    /// Changes the full name and the email, each when given; the email needs the password.
    pub async fn update_profile(&self, change: &UpdateProfileRequest) -> Result<User, CliError> {
        self.call(Method::PATCH, "/auth/me", &[], Some(change), true)
            .await
    }

    // ----- people -----

    pub async fn user(&self, username: &str) -> Result<PublicUser, CliError> {
        let path = format!("/users/by-username/{}", encode_segment(username));
        self.call(Method::GET, &path, &[], NO_BODY, true)
            .await
            .map_err(|e| match e {
                CliError::NotFound(_) => CliError::NotFound(format!("no user @{username}")),
                other => other,
            })
    }

    pub async fn search_users(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<PublicUser>, CliError> {
        let q = [("q", prefix.to_string()), ("limit", limit.to_string())];
        self.call(Method::GET, "/users/search", &q, NO_BODY, true)
            .await
    }

    // ----- messages -----

    pub async fn send_direct(&self, to: UserId, draft: &Draft<'_>) -> Result<SendReply, CliError> {
        let body = SendDirectRequest {
            recipient_id: to,
            content: draft.content.into(),
            client_id: Some(draft.client_id.into()),
            reply_to: draft.reply_to,
            attachments: draft.attachments.to_vec(),
        };
        self.call(Method::POST, "/messages/send", &[], Some(&body), true)
            .await
    }

    pub async fn send_group(
        &self,
        group: RoomId,
        draft: &Draft<'_>,
    ) -> Result<SendReply, CliError> {
        let body = SendGroupRequest {
            group_id: group,
            content: draft.content.into(),
            client_id: Some(draft.client_id.into()),
            reply_to: draft.reply_to,
            attachments: draft.attachments.to_vec(),
        };
        self.call(Method::POST, "/groups/send", &[], Some(&body), true)
            .await
    }

    /// Replaces the text of a message of yours.
    pub async fn edit(&self, message: MessageId, content: &str) -> Result<MessageChange, CliError> {
        let body = EditRequest {
            content: content.into(),
        };
        let reply: ChangeReply = self
            .call(
                Method::PATCH,
                &format!("/messages/{message}"),
                &[],
                Some(&body),
                true,
            )
            .await?;
        Ok(reply.data)
    }

    /// Deletes a message of yours (or, as a group's admin, any of the group's).
    /// Adds (or, `add` false, takes back) a reaction; the change, or None when it was so already.
    pub async fn react(
        &self,
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<Option<MessageChange>, CliError> {
        let body = crate::proto::ReactRequest {
            emoji: emoji.to_string(),
        };
        let method = if add { Method::POST } else { Method::DELETE };
        let reply: crate::proto::ReactReply = self
            .call(
                method,
                &format!("/messages/{message}/reactions"),
                &[],
                Some(&body),
                true,
            )
            .await?;
        Ok(reply.data)
    }

    /// The thread message `id` is in: its first message and every reply, oldest first.
    pub async fn thread(&self, id: MessageId) -> Result<crate::proto::ThreadReply, CliError> {
        self.call(
            Method::GET,
            &format!("/messages/{id}/thread"),
            &[],
            NO_BODY,
            true,
        )
        .await
    }

    pub async fn delete(&self, message: MessageId) -> Result<MessageChange, CliError> {
        let reply: ChangeReply = self
            .call(
                Method::DELETE,
                &format!("/messages/{message}"),
                &[],
                NO_BODY,
                true,
            )
            .await?;
        Ok(reply.data)
    }

    /// Messages of your rooms (or of `room`) matching `query`, newest first.
    pub async fn search(
        &self,
        query: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> Result<SearchReply, CliError> {
        let mut q = vec![("q", query.to_string()), ("limit", limit.to_string())];
        if let Some(room) = room {
            q.push(("room_id", room.to_string()));
        }
        if let Some(before) = before {
            q.push(("before", before.to_string()));
        }
        self.call(Method::GET, "/search", &q, NO_BODY, true).await
    }

    pub async fn direct_history(
        &self,
        other: UserId,
        page: Page,
    ) -> Result<Vec<MessageWithSender>, CliError> {
        self.call(
            Method::GET,
            &format!("/messages/chat/{other}"),
            &page.query(),
            NO_BODY,
            true,
        )
        .await
    }

    pub async fn group_history(
        &self,
        group: RoomId,
        page: Page,
    ) -> Result<Vec<MessageWithSender>, CliError> {
        self.call(
            Method::GET,
            &format!("/groups/{group}/messages"),
            &page.query(),
            NO_BODY,
            true,
        )
        .await
    }

    pub async fn chats(&self) -> Result<Vec<ChatSummary>, CliError> {
        self.call(Method::GET, "/messages/chats", &[], NO_BODY, true)
            .await
    }

    /// Mutes `room` for `duration` (None: until unmuted), with mentions too when `all`; or, `on`
    /// false, unmutes it.
    pub async fn mute(
        &self,
        room: RoomId,
        duration: Option<std::time::Duration>,
        all: bool,
        on: bool,
    ) -> Result<crate::proto::MuteState, CliError> {
        let path = format!("/rooms/{room}/mute");
        if !on {
            return self.call(Method::DELETE, &path, &[], NO_BODY, true).await;
        }
        let body = crate::proto::MuteRequest {
            seconds: duration.map(|d| d.as_secs().max(1) as i64),
            all,
        };
        self.call(Method::PUT, &path, &[], Some(&body), true).await
    }

    pub async fn mark_read(&self, room: RoomId) -> Result<ReadState, CliError> {
        self.call(
            Method::POST,
            &format!("/rooms/{room}/read"),
            &[],
            Some(&MarkReadRequest::default()),
            true,
        )
        .await
    }

    pub async fn sync(&self, since: i64, limit: u32) -> Result<SyncReply, CliError> {
        let q = [("since", since.to_string()), ("limit", limit.to_string())];
        self.call(Method::GET, "/sync", &q, NO_BODY, true).await
    }

    /// Online people you share a room with.
    pub async fn online_users(&self) -> Result<Vec<UserId>, CliError> {
        let reply: crate::proto::OnlineUsers = self
            .call(Method::GET, "/ws/online-users", &[], NO_BODY, true)
            .await?;
        Ok(reply.online_users)
    }

    // ----- groups -----

    pub async fn groups(&self) -> Result<Vec<GroupSummary>, CliError> {
        self.call(Method::GET, "/groups/my-groups", &[], NO_BODY, true)
            .await
    }

    pub async fn create_group(
        &self,
        name: &str,
        members: &[UserId],
    ) -> Result<CreateGroupReply, CliError> {
        self.create_group_with(name, members, false).await
    }

    /// `create_group`; a public one is listed to everyone on the server, who may join it.
    pub async fn create_group_with(
        &self,
        name: &str,
        members: &[UserId],
        is_public: bool,
    ) -> Result<CreateGroupReply, CliError> {
        let body = CreateGroupRequest {
            is_public,
            name: name.into(),
            member_ids: members.to_vec(),
        };
        self.call(Method::POST, "/groups/create", &[], Some(&body), true)
            .await
    }

    pub async fn add_members(
        &self,
        group: RoomId,
        users: &[UserId],
    ) -> Result<AddMembersReply, CliError> {
        let body = AddMembersRequest {
            user_ids: users.to_vec(),
        };
        self.call(
            Method::POST,
            &format!("/groups/{group}/members"),
            &[],
            Some(&body),
            true,
        )
        .await
        .map_err(|e| match e {
            // The seed's words, kept on the wire for its clients; its owner and admins may.
            CliError::Refused(why) if why.contains("creator") => CliError::Refused(
                "only the group's owner and admins can add people (`rtchat groups members` shows who)"
                    .into(),
            ),
            other => other,
        })
    }

    pub async fn remove_member(&self, group: RoomId, user: UserId) -> Result<Value, CliError> {
        let body = RemoveMemberRequest { user_id: user };
        self.call(
            Method::DELETE,
            &format!("/groups/{group}/members"),
            &[],
            Some(&body),
            true,
        )
        .await
    }

    pub async fn members(&self, group: RoomId) -> Result<Vec<Member>, CliError> {
        self.call(
            Method::GET,
            &format!("/groups/{group}/members"),
            &[],
            NO_BODY,
            true,
        )
        .await
    }
}

impl Page {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(b) = self.before {
            q.push(("before_id", b.to_string()));
        }
        if let Some(a) = self.after {
            q.push(("after_id", a.to_string()));
        }
        q
    }
}

pub(super) fn session_over() -> CliError {
    CliError::Auth("your session has ended: run `rtchat login USERNAME`".into())
}

/// The server's `detail`, whether a string or a list of field errors.
fn detail(reply: &Value) -> String {
    match &reply["detail"] {
        Value::String(s) => s.clone(),
        Value::Array(errors) => errors
            .iter()
            .map(|e| {
                let field = e["loc"]
                    .as_array()
                    .and_then(|l| l.last())
                    .map(|f| f.to_string().trim_matches('"').to_string())
                    .unwrap_or_default();
                format!("{field}: {}", e["msg"].as_str().unwrap_or("invalid"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no details".into(),
    }
}

pub(super) fn http_error(status: StatusCode, reply: &Value) -> CliError {
    let what = detail(reply);
    match status.as_u16() {
        401 => CliError::Auth(format!("{what}: run `rtchat login USERNAME`")),
        404 => CliError::NotFound(what),
        500..=599 => CliError::Server(format!("server error ({status}): {what}")),
        _ => CliError::Refused(what),
    }
}

pub(super) fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Output for `--json`: one object, one line.
pub fn to_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A message the server would refuse for its length, refused here before anything is sent.
pub fn fits_in_a_message(text: &str) -> Result<(), CliError> {
    let n = text.chars().count();
    if n > crate::proto::MAX_MESSAGE_CHARS {
        return Err(CliError::Usage(format!(
            "a message has at most {} characters; this one has {n}",
            crate::proto::MAX_MESSAGE_CHARS
        )));
    }
    Ok(())
}
