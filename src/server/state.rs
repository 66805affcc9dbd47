//! What every handler shares: the store, the token keys, live presence, and the settings handlers
//! read; `messaging()` lends the command layer its part of it.

use std::sync::Arc;

use uuid::Uuid;
use warp::http::HeaderMap;

use tokio_util::task::TaskTracker;

use crate::server::auth::secrets::{self, SecretKind};
use crate::server::auth::session_cache::SessionCache;
use crate::server::auth::throttle::AuthThrottle;
use crate::server::auth::{AuthError, PasswordHasher, TokenKeys, TokenKind};
use crate::server::commands::ApiError;
use crate::server::commands::messaging::Messaging;
use crate::server::delivery::hub::Hub;
use crate::server::delivery::writer::MessageWriter;
use crate::server::store::{Store, UserRecord};

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub keys: TokenKeys,
    pub hub: Arc<Hub>,
    /// Stores and publishes messages, many per commit under load.
    pub writer: MessageWriter,
    pub sessions: Arc<SessionCache>,
    /// Files: their storage and limits.
    pub files: Arc<crate::server::files::Files>,
    /// This instance's events, published on the bus to every instance.
    pub outgoing: crate::server::cluster::Outgoing,
    /// This instance among the others on the database (presence, its own events).
    pub instance: Uuid,
    /// Per-user send rate; None when unlimited.
    pub send_limiter: Option<crate::server::commands::messaging::SendLimiter>,
    /// Per-user search rate; None when unlimited.
    pub search_limiter: Option<crate::server::commands::messaging::SendLimiter>,
    /// How long one search may run in the database.
    pub search_timeout: std::time::Duration,
    /// bcrypt, off the async workers and behind a bounded queue.
    pub hasher: PasswordHasher,
    /// Login and registration attempts, throttled before any hashing.
    pub auth_throttle: AuthThrottle,
    /// Every connection and WebSocket task, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Frames per second one WebSocket client may send (messages aside); 0: no limit.
    pub max_frame_rate: u32,
    /// The WebSocket's clocks: ping interval, idle limit, first-frame auth limit.
    pub ws_timings: SocketTimings,
    /// WebSocket connections one user may hold at once.
    pub max_sockets_per_user: usize,
    /// How long a WebSocket frame's handler may wait for the database.
    pub db_timeout: std::time::Duration,
    pub app_name: String,
    /// The server speaks TLS itself: cookies it sets are `Secure`.
    pub tls: bool,
    /// Who may create an account (`--registration`).
    pub registration: crate::server::auth::Registration,
    /// A hash to check passwords against when the login names nobody, so that an unknown name takes
    /// as long as a wrong password (no user enumeration by timing).
    pub dummy_hash: String,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A socket's clocks (`--ws-ping-interval`, `--ws-idle-timeout`, `--ws-auth-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct SocketTimings {
    pub ping_every: std::time::Duration,
    /// Nothing at all from the client (not even a pong) for this long: the connection is dead.
    pub silence_limit: std::time::Duration,
    pub auth_timeout: std::time::Duration,
}

/// The signed-in user of a request, and the session its token belongs to.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: UserRecord,
    pub session_id: Uuid,
}

impl CurrentUser {
    pub fn id(&self) -> i32 {
        self.user.id
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }

    /// The shared commands (send, read, sync, membership, session ends) and what they use.
    pub fn messaging(&self) -> Messaging<'_> {
        Messaging {
            store: &self.store,
            writer: &self.writer,
            hub: &self.hub,
            sessions: &self.sessions,
            files: &self.files,
            send_limiter: self.send_limiter.as_ref(),
            search_limiter: self.search_limiter.as_ref(),
            search_timeout: self.search_timeout,
            outgoing: &self.outgoing,
            instance: self.instance,
        }
    }

    /// Checks an `Authorization: Bearer` header: a valid access token of an open session of an
    /// active user.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<CurrentUser, ApiError> {
        let Some(value) = headers.get(warp::http::header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized("Not authenticated".into()));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ApiError::Unauthorized("Invalid authentication credentials".into()))?;
        self.authenticate_token(token).await
    }

    pub async fn authenticate_token(&self, token: &str) -> Result<CurrentUser, ApiError> {
        if SecretKind::AccessToken.marks(token) {
            return self.authenticate_personal_token(token).await;
        }
        let claims = self
            .keys
            .verify(token, TokenKind::Access)
            .map_err(|e| match e {
                AuthError::Expired => ApiError::Unauthorized("Token has expired".into()),
                other => ApiError::from(other),
            })?;
        let user_id = claims.user_id()?;
        if let Some(user) = self.sessions.get(claims.sid, user_id) {
            return Ok(CurrentUser {
                user,
                session_id: claims.sid,
            });
        }
        let read_at = std::time::Instant::now();
        // Bounded here, not only by the request's deadline: a route checks its caller before it
        // reads the body, and the request's database clock starts only once the body is in.
        let found = tokio::time::timeout(
            self.db_timeout,
            self.store.session_user(user_id, claims.sid),
        )
        .await
        .map_err(|_| ApiError::unavailable("checking the session took too long (database)"))?;
        match found? {
            Some(user) => {
                self.sessions.put(claims.sid, user.clone(), read_at);
                Ok(CurrentUser {
                    user,
                    session_id: claims.sid,
                })
            }
            None => Err(ApiError::Unauthorized(
                "Session has ended; log in again".into(),
            )),
        }
    }
}

impl AppState {
    /// A personal access token: its session, as a login's, from the cache or the database.
    async fn authenticate_personal_token(&self, token: &str) -> Result<CurrentUser, ApiError> {
        let digest = secrets::digest(token);
        if let Some((session_id, user_id)) = self.sessions.token(&digest)
            && let Some(user) = self.sessions.get(session_id, user_id)
        {
            return Ok(CurrentUser { user, session_id });
        }
        let read_at = std::time::Instant::now();
        let found = tokio::time::timeout(self.db_timeout, self.store.token_session(&digest))
            .await
            .map_err(|_| ApiError::unavailable("checking the token took too long (database)"))?;
        let Some(found) = found? else {
            return Err(ApiError::Unauthorized(
                "Invalid, expired or revoked access token".into(),
            ));
        };
        self.sessions
            .put_token(digest, found.session_id, found.user.id, found.expires_at);
        self.sessions
            .put(found.session_id, found.user.clone(), read_at);
        Ok(CurrentUser {
            user: found.user,
            session_id: found.session_id,
        })
    }
}

/// The state, for warp filters (the routes and the WebSocket upgrade).
pub fn with_state(
    state: AppState,
) -> impl warp::Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone {
    use warp::Filter;
    warp::any().map(move || state.clone())
}
