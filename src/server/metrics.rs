//! Prometheus metrics, served as text at `/metrics`: requests by route and status with latency,
//! WebSocket connections and frames, messages stored and delivered, the writer's batches and its
//! store-to-queue latency, slow readers closed, the database pool, the hashing queue, throttling.
//!
//! One set per process (like Prometheus' default registry): counters and histograms are atomics
//! updated where things happen; the gauges of current state are read when scraped.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Throttle {
    Messages,
    Searches,
    Frames,
    LoginAccount,
    AuthAddress,
    HashingQueue,
    Connections,
}

impl Throttle {
    fn label(self) -> &'static str {
        match self {
            Throttle::Messages => "messages",
            Throttle::Searches => "searches",
            Throttle::Frames => "frames",
            Throttle::LoginAccount => "login_account",
            Throttle::AuthAddress => "auth_address",
            Throttle::HashingQueue => "hashing_queue",
            Throttle::Connections => "connections",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabel {
    pub reason: &'static str,
}

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabel, Histogram, fn() -> Histogram>,
    pub ws_frames_received: Family<KindLabel, Counter>,
    pub ws_opened: Counter,
    pub messages_stored: Counter,
    /// `new_message` frames queued to sockets.
    pub messages_delivered: Counter,
    pub writer_batch_messages: Histogram,
    /// From a batch's start (before its insert) to its commit and hand-over to the bus.
    pub store_to_queue_seconds: Histogram,
    /// From an envelope's publication to its arrival here.
    pub bus_lag_seconds: Histogram,
    pub bus_envelopes_published: Counter,
    pub bus_publish_failures: Counter,
    pub bus_events_dropped: Counter,
    pub bus_resyncs: Counter,
    /// Log positions read from the database because the bus did not bring them in time.
    pub bus_positions_filled: Counter,
    pub slow_reader_closes: Counter,
    pub db_errors: Counter,
    pub tls_handshake_failures: Counter,
    pub throttled: Family<ThrottleLabel, Counter>,
    // Current state, set when scraped.
    pub ws_connections: Gauge,
    pub http_connections: Gauge,
    pub db_pool_size: Gauge,
    pub db_pool_available: Gauge,
    pub db_pool_waiting: Gauge,
    pub hashing_queued: Gauge,
    registry: Registry,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Registers each field of `$metrics` under its name and help text: one line a metric.
macro_rules! register {
    ($registry:ident, $metrics:ident, $( $field:ident: $name:literal, $help:literal; )*) => {
        $( $registry.register($name, $help, $metrics.$field.clone()); )*
    };
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rtchat");
        let m = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            ws_frames_received: Family::default(),
            ws_opened: Counter::default(),
            messages_stored: Counter::default(),
            messages_delivered: Counter::default(),
            writer_batch_messages: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            store_to_queue_seconds: latency_histogram(),
            bus_lag_seconds: latency_histogram(),
            bus_envelopes_published: Counter::default(),
            bus_publish_failures: Counter::default(),
            bus_events_dropped: Counter::default(),
            bus_resyncs: Counter::default(),
            bus_positions_filled: Counter::default(),
            slow_reader_closes: Counter::default(),
            db_errors: Counter::default(),
            tls_handshake_failures: Counter::default(),
            throttled: Family::default(),
            ws_connections: Gauge::default(),
            http_connections: Gauge::default(),
            db_pool_size: Gauge::default(),
            db_pool_available: Gauge::default(),
            db_pool_waiting: Gauge::default(),
            hashing_queued: Gauge::default(),
            registry: Registry::default(),
        };
        register! { registry, m,
            requests: "http_requests", "HTTP requests answered, by route and status";
            request_seconds: "http_request_duration_seconds", "Time to answer an HTTP request, by route";
            http_connections: "http_connections", "HTTP connections open (WebSockets included)";
            ws_connections: "ws_connections", "WebSocket connections registered";
            ws_opened: "ws_opened", "WebSocket connections opened";
            ws_frames_received: "ws_frames_received", "Frames received from WebSocket clients, by type";
            messages_stored: "messages_stored", "Messages stored";
            messages_delivered: "messages_delivered", "new_message frames queued to sockets";
            writer_batch_messages: "writer_batch_messages", "Messages stored per writer statement";
            store_to_queue_seconds: "store_to_queue_seconds", "From a batch's insert to its commit and hand-over to the bus";
            bus_lag_seconds: "bus_lag_seconds", "From an envelope's publication by any instance to its arrival here";
            bus_envelopes_published: "bus_envelopes_published", "Envelopes this instance published on the bus";
            bus_publish_failures: "bus_publish_failures", "Failed attempts to publish on the bus (each retried)";
            bus_events_dropped: "bus_events_dropped", "Events dropped because the bus was too far behind";
            bus_resyncs: "bus_resyncs", "Bus interruptions after which sessions and memberships were checked again";
            bus_positions_filled: "bus_positions_filled", "Message log positions read from the database because the bus had not brought them";
            slow_reader_closes: "slow_reader_closes", "Sockets closed for not reading (4008)";
            db_errors: "db_errors", "Requests that failed on the database (503 or 500)";
            tls_handshake_failures: "tls_handshake_failures", "TLS connections that failed or timed out in their handshake";
            db_pool_size: "db_pool_size", "Database connections open";
            db_pool_available: "db_pool_available", "Database connections idle in the pool";
            db_pool_waiting: "db_pool_waiting", "Requests waiting for a database connection";
            hashing_queued: "hashing_queued", "Password hashes running or waiting";
            throttled: "throttled", "Requests and frames refused by a limit, by reason";
        }
        Metrics { registry, ..m }
    }

    pub fn throttled(&self, reason: Throttle) {
        self.throttled
            .get_or_create(&ThrottleLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The route template of a request path, for labels: a fixed set, so that no client can make
/// labels up (an unknown path is "other").
pub fn route_of(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["health"] => "/health",
        ["metrics"] => "/metrics",
        ["docs"] => "/docs",
        ["docs", ..] => "/docs/{file}",
        ["openapi.json"] => "/openapi.json",
        ["redoc"] => "/redoc",
        ["redoc", "redoc.standalone.js"] => "/redoc/redoc.standalone.js",
        ["auth", "register"] => "/auth/register",
        ["auth", "login"] => "/auth/login",
        ["auth", "refresh"] => "/auth/refresh",
        ["auth", "logout"] => "/auth/logout",
        ["auth", "logout-all"] => "/auth/logout-all",
        ["auth", "change-password"] => "/auth/change-password",
        ["auth", "me"] => "/auth/me",
        ["auth", "reset-password"] => "/auth/reset-password",
        ["auth", "web", "login"] => "/auth/web/login",
        ["auth", "web", "register"] => "/auth/web/register",
        ["auth", "web", "refresh"] => "/auth/web/refresh",
        ["auth", "web", "logout"] => "/auth/web/logout",
        ["app", ..] => "/app",
        ["admin", "users"] => "/admin/users",
        ["admin", "users", _, "deactivate"] => "/admin/users/{username}/deactivate",
        ["admin", "users", _, "reactivate"] => "/admin/users/{username}/reactivate",
        ["admin", "users", _, "reset-password"] => "/admin/users/{username}/reset-password",
        ["admin", "users", _, "role"] => "/admin/users/{username}/role",
        ["admin", "bots"] => "/admin/bots",
        ["admin", "log"] => "/admin/log",
        ["messages", _, "reactions"] => "/messages/{id}/reactions",
        ["messages", _, "thread"] => "/messages/{id}/thread",
        ["rooms", _, "mute"] => "/rooms/{id}/mute",
        ["files"] => "/files",
        ["files", _] => "/files/{id}",
        ["files", _, "preview"] => "/files/{id}/preview",
        ["invites"] => "/invites",
        ["invites", "revoke"] => "/invites/revoke",
        ["tokens"] => "/tokens",
        ["tokens", _] => "/tokens/{name}",
        ["webhooks"] => "/webhooks",
        ["webhooks", _] => "/webhooks/{id}",
        ["hooks", _] => "/hooks/{secret}",
        ["users", "by-username", _] => "/users/by-username/{username}",
        ["users", "search"] => "/users/search",
        ["messages", "send"] => "/messages/send",
        ["messages", "chat", _] => "/messages/chat/{id}",
        ["messages", "chats"] => "/messages/chats",
        ["messages", _] => "/messages/{id}",
        ["search"] => "/search",
        ["groups", "create"] => "/groups/create",
        ["groups", "send"] => "/groups/send",
        ["groups", "my-groups"] => "/groups/my-groups",
        ["groups", _, "messages"] => "/groups/{id}/messages",
        ["groups", _, "members"] => "/groups/{id}/members",
        ["groups", "public"] => "/groups/public",
        ["groups", _] => "/groups/{id}",
        ["groups", _, "join"] => "/groups/{id}/join",
        ["groups", _, "admins"] => "/groups/{id}/admins",
        ["groups", _, "owner"] => "/groups/{id}/owner",
        ["rooms", _, "read"] => "/rooms/{id}/read",
        ["sync"] => "/sync",
        ["ws", "online-users"] => "/ws/online-users",
        ["ws"] => "/ws",
        ["ws", _] => "/ws/{token}",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_never_what_the_client_wrote() {
        assert_eq!(route_of("/groups/17/messages"), "/groups/{id}/messages");
        assert_eq!(route_of("/ws/eyJhbGciOi.secret.token"), "/ws/{token}");
        assert_eq!(route_of("/"), "/");
        assert_eq!(route_of("/made/up/path/1"), "other");
    }
}
