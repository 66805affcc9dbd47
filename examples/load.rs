//! Load generator for BENCHMARKS.md. It speaks the public API only (the seed's REST paths and
//! `/ws/{token}`), so it runs against rtchat-server and the seed's server alike.
//!
//!   cargo run --release --example load -- --server http://127.0.0.1:8000 SCENARIO ...
//!   cargo run --release --example load -- --servers http://127.0.0.1:8000,http://127.0.0.1:8001 fanout
//!
//! Each scenario prints one JSON line of results on stdout, progress on stderr, and stops by its
//! deadline whatever happens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rtchat::proto::{ClientFrame, RoomId};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    server: String,
    /// Several instances of one deployment (comma-separated): REST goes to the first, and the
    /// fan-out's sockets are spread over all of them in turn. Overrides --server.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// For an https:// server: the CA (PEM) its certificate is checked against.
    #[arg(long)]
    ca_cert: Option<std::path::PathBuf>,
    /// Hard limit for the whole run, in seconds.
    #[arg(long, default_value_t = 300)]
    deadline: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Register users and groups; keep their tokens in a state file.
    Setup {
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 50)]
        group_size: usize,
        #[arg(long, default_value = "load-state.json")]
        state: String,
    },
    /// Messages stored per second by C concurrent clients, each into its own room.
    Send {
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Send over the WebSocket (each client waits for its own new_message) instead of REST.
        #[arg(long)]
        ws: bool,
    },
    /// One group, every member online; senders at a fixed total rate (or `max`).
    Fanout {
        #[arg(long, default_value_t = 50)]
        group_size: usize,
        /// Messages per second in total, or `max`.
        #[arg(long, default_value = "200")]
        rate: String,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 5)]
        senders: usize,
        /// Logins (bcrypt) kept in flight during the run.
        #[arg(long, default_value_t = 0)]
        logins: usize,
        /// With `--rate max`: messages each sender may have sent but not yet seen delivered.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// This share (percent) of all traffic is reactions (added and taken back over REST on
        /// one message, by every member in turn) beside the messages (fixed rates only).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..100))]
        reactions: u32,
    },
    /// The fan-out run while the server is attacked: slowloris connections, password guessing and a
    /// typing flood in the fan-out room; /health latency throughout, and server memory after.
    Attack {
        #[arg(long, default_value_t = 50)]
        group_size: usize,
        #[arg(long, default_value = "200")]
        rate: String,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Connections that send a header line every 2 s and never finish (from 127.0.0.2..).
        #[arg(long, default_value_t = 5000)]
        slowloris: usize,
        /// Clients guessing one account's password in a loop.
        #[arg(long, default_value_t = 16)]
        guessers: usize,
        /// A member floods `typing` frames into the fan-out room as fast as it can.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        typing_flood: bool,
        #[arg(long)]
        server_pid: Option<u32>,
        /// Seconds to wait after the run before the last memory reading.
        #[arg(long, default_value_t = 65)]
        settle: u64,
    },
    /// N idle sockets at once; server memory before and after.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        hold: u64,
        #[arg(long)]
        server_pid: Option<u32>,
        /// Source addresses 127.0.0.2.. to spread over (each gives ~28k ports).
        #[arg(long, default_value_t = 4)]
        sources: u8,
    },
    /// Search latency with M messages stored over R rooms (seeded with COPY), the searcher a
    /// member of a tenth of them: a rare word, a common word, a phrase, and one room.
    Search {
        #[arg(long, default_value_t = 1_000_000)]
        messages: i64,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// The server's database, for seeding.
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 300)]
        samples: usize,
    },
    /// History page latency with M messages stored in one room (seeded with COPY).
    History {
        #[arg(long, default_value_t = 1_000_000)]
        messages: i64,
        /// The server's database, for seeding.
        #[arg(long)]
        database_url: String,
        /// Requests per kind of page, by each reader.
        #[arg(long, default_value_t = 300)]
        samples: usize,
        /// Members reading pages at once, each in a loop (each its own account).
        #[arg(long, default_value_t = 1)]
        readers: usize,
    },
}

struct Client {
    /// The library's client, for accounts and groups (setup); the measured paths use `http`
    /// directly, with frames read as little as they need.
    accounts: rtchat::client::Api,
    ca_cert: Option<std::path::PathBuf>,
    http: reqwest::Client,
    base: String,
    /// Every instance (`--servers`); sockets are spread over them.
    bases: Vec<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct User {
    id: i64,
    name: String,
    token: String,
    #[serde(default)]
    refresh: String,
}

impl Client {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value, String> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req).await
    }

    async fn get(&self, path: &str, token: &str) -> Result<Value, String> {
        Self::reply(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    /// The JSON body of a success, or the status and body of a failure.
    async fn reply(req: reqwest::RequestBuilder) -> Result<Value, String> {
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!("{status}: {v}"))
        }
    }

    async fn register(&self, name: &str) -> Result<User, String> {
        let email = format!("{name}@load.example.com");
        // A busy server (password hashing queue full, or a slow one) answers 503: retry, as a
        // client should.
        let mut attempts = 0;
        let reply = loop {
            let registered = self
                .accounts
                .register(name, &email, "load-test-password", None)
                .await;
            match registered {
                Err(rtchat::client::CliError::Server(_)) if attempts < 10 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => break other.map_err(|e| e.to_string())?,
            }
        };
        Ok(User {
            id: reply.user.id.into(),
            name: name.into(),
            token: reply.tokens.access_token,
            refresh: reply.tokens.refresh_token,
        })
    }

    async fn users(&self, prefix: &str, n: usize) -> Vec<User> {
        eprintln!("registering {n} users...");
        let mut out = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
            let names: Vec<String> = chunk.iter().map(|i| format!("{prefix}{i}")).collect();
            let batch = names.iter().map(|name| self.register(name));
            for r in futures_util::future::join_all(batch).await {
                out.push(r.expect("registration"));
            }
        }
        out
    }

    async fn group(&self, owner: &User, name: &str, members: &[User]) -> RoomId {
        let session = rtchat::client::Session {
            username: owner.name.clone(),
            user_id: owner.id as i32,
            access_token: owner.token.clone(),
            refresh_token: owner.refresh.clone(),
            ca_cert: None,
        };
        let as_owner = rtchat::client::Api::with_session(&self.base, session, self.ca_cert.clone())
            .expect("a client");
        let ids: Vec<i32> = members.iter().map(|u| u.id as i32).collect();
        as_owner
            .create_group(name, &ids)
            .await
            .expect("group")
            .group
            .id
    }

    fn ws_url(&self, token: &str) -> String {
        self.ws_url_on(&self.base, token)
    }

    fn ws_url_on(&self, base: &str, token: &str) -> String {
        let base = base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}/ws/{token}")
    }

    /// A socket with small buffers: tungstenite's default 128 KiB read buffer is zeroed on every
    /// read, which made memset the load generator's top cost and the load generator the bottleneck.
    async fn ws(&self, token: &str) -> Ws {
        self.ws_on(0, token).await
    }

    /// A socket on instance `i` (modulo how many there are).
    async fn ws_on(&self, i: usize, token: &str) -> Ws {
        let url = self.ws_url_on(&self.bases[i % self.bases.len()], token);
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (sock, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector)
                .await
                .expect("ws");
        sock
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The parts of a server frame the load generator reads, without building a JSON tree.
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    fn parse(text: &'a str) -> Option<Frame<'a>> {
        serde_json::from_str(text).ok()
    }

    /// The content of a `new_message` frame.
    fn new_message(text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        Frame::parse(text)
            .filter(|f| f.kind == "new_message")?
            .content
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 0xffffff
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    raise_fd_limit();
    // reqwest's rustls needs a process-wide provider; only ring is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = args
        .ca_cert
        .as_deref()
        .map(|ca| rtchat::client::tls::client_config(Some(ca)).expect("--ca-cert"));
    let mut http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30));
    if let Some(config) = &tls {
        http = http.tls_backend_preconfigured(rustls::ClientConfig::clone(config));
    }
    let bases: Vec<String> = if args.servers.is_empty() {
        vec![args.server.clone()]
    } else {
        args.servers.clone()
    };
    let bases: Vec<String> = bases
        .iter()
        .map(|b| b.trim_end_matches('/').to_string())
        .collect();
    let accounts = rtchat::client::Api::new(
        &bases[0],
        rtchat::client::SessionStore::in_memory(),
        args.ca_cert.clone(),
    )
    .expect("a client");
    let client = Arc::new(Client {
        accounts,
        ca_cert: args.ca_cert.clone(),
        http: http.build().unwrap(),
        base: bases[0].clone(),
        bases,
        tls,
    });
    let deadline = Duration::from_secs(args.deadline);
    let result = tokio::time::timeout(deadline, scenario(client, args.scenario)).await;
    match result {
        Ok(v) => println!("{v}"),
        Err(_) => {
            println!("{}", json!({"error": "deadline reached"}));
            std::process::exit(1);
        }
    }
}

async fn scenario(client: Arc<Client>, s: Scenario) -> Value {
    match s {
        Scenario::Setup {
            users,
            group_size,
            state,
        } => setup(&client, users, group_size, &state).await,
        Scenario::Send {
            duration,
            concurrency,
            ws,
        } => send(client, duration, concurrency, ws).await,
        Scenario::Fanout {
            group_size,
            rate,
            duration,
            senders,
            logins,
            window,
            reactions,
        } => {
            let mix = Mix {
                typing_flood: false,
                reactions,
            };
            fanout(
                client, group_size, &rate, duration, senders, logins, window, mix,
            )
            .await
        }
        Scenario::Attack {
            group_size,
            rate,
            duration,
            slowloris,
            guessers,
            typing_flood,
            server_pid,
            settle,
        } => {
            attack(
                client,
                group_size,
                &rate,
                duration,
                Attackers {
                    slowloris,
                    guessers,
                    typing_flood,
                },
                server_pid,
                settle,
            )
            .await
        }
        Scenario::Idle {
            connections,
            hold,
            server_pid,
            sources,
        } => idle(client, connections, hold, server_pid, sources).await,
        Scenario::History {
            messages,
            database_url,
            samples,
            readers,
        } => history(client, messages, &database_url, samples, readers).await,
        Scenario::Search {
            messages,
            rooms,
            database_url,
            samples,
        } => search(client, messages, rooms, &database_url, samples).await,
    }
}

async fn setup(client: &Client, n: usize, group_size: usize, state: &str) -> Value {
    let users = client.users(&format!("ld{}u", run_id()), n).await;
    let mut groups = Vec::new();
    for chunk in users.chunks(group_size.max(1)) {
        groups.push(client.group(&chunk[0], "load", &chunk[1..]).await);
    }
    std::fs::write(
        state,
        serde_json::to_string(&json!({"users": users, "groups": groups})).unwrap(),
    )
    .unwrap();
    json!({"scenario": "setup", "users": users.len(), "groups": groups.len(), "state": state})
}

async fn send(client: Arc<Client>, duration: u64, concurrency: usize, ws: bool) -> Value {
    let users = client.users(&format!("ls{}u", run_id()), concurrency).await;
    let mut rooms = Vec::new();
    for u in &users {
        rooms.push(client.group(u, "send", &[]).await);
    }
    eprintln!(
        "sending for {duration} s with {concurrency} clients ({})...",
        if ws { "ws" } else { "rest" }
    );
    let hist = Arc::new(Mutex::new(histogram()));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let tasks = users.into_iter().zip(rooms).map(|(u, room)| {
        let client = client.clone();
        let hist = hist.clone();
        let errors = errors.clone();
        tokio::spawn(async move {
            let mut local = histogram();
            if ws {
                let mut sock = client.ws(&u.token).await;
                let mut n = 0u64;
                while Instant::now() < end {
                    let t = Instant::now();
                    n += 1;
                    let cid = format!("{n}");
                    let frame = ClientFrame::Message {
                        room,
                        content: "load".into(),
                        client_id: Some(format!("{}-{cid}", u.id)),
                        reply_to: None,
                        attachments: Vec::new(),
                    };
                    sock.send(Message::text(frame.to_text())).await.unwrap();
                    loop {
                        match sock.next().await {
                            Some(Ok(Message::Text(t2))) => {
                                match Frame::parse(&t2).map(|f| f.kind) {
                                    Some(k) if k == "new_message" => break,
                                    Some(k) if k == "error" => {
                                        errors.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                    _ => {}
                                }
                            }
                            Some(Ok(_)) => continue,
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                return local;
                            }
                        }
                    }
                    local.record(t.elapsed().as_micros().max(1) as u64).ok();
                }
            } else {
                while Instant::now() < end {
                    let t = Instant::now();
                    match client
                        .post(
                            "/groups/send",
                            Some(&u.token),
                            json!({"group_id": room, "content": "load"}),
                        )
                        .await
                    {
                        Ok(_) => {
                            local.record(t.elapsed().as_micros().max(1) as u64).ok();
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            let _ = hist.lock().await.add(&local);
            local
        })
    });
    for t in futures_util::future::join_all(tasks).await {
        let _ = t;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = hist.lock().await;
    json!({"scenario": "send", "transport": if ws { "ws" } else { "rest" }, "concurrency": concurrency,
           "seconds": elapsed, "stored": h.len(), "per_second": h.len() as f64 / elapsed,
           "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "max_ms": h.max() as f64 / 1000.0,
           "errors": errors.load(Ordering::Relaxed)})
}

/// What a fan-out run carries besides its messages.
#[derive(Clone, Copy)]
struct Mix {
    typing_flood: bool,
    /// Percent of all traffic that is reactions.
    reactions: u32,
}

#[allow(clippy::too_many_arguments)]
async fn fanout(
    client: Arc<Client>,
    size: usize,
    rate: &str,
    duration: u64,
    senders: usize,
    logins: usize,
    window: usize,
    mix: Mix,
) -> Value {
    let typing_flood = mix.typing_flood;
    let users = client.users(&format!("lf{}u", run_id()), size).await;
    let room = client.group(&users[0], "fanout", &users[1..]).await;
    let max = rate == "max";
    let rate: f64 = if max {
        0.0
    } else {
        rate.parse().expect("rate: a number or max")
    };
    let origin = Instant::now();
    // Receivers: every member online.
    let hist = Arc::new(Mutex::new(histogram()));
    let seen: Arc<Mutex<HashMap<(u64, u64), u32>>> = Default::default();
    let received = Arc::new(AtomicU64::new(0));
    let reaction_frames = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    // The first `senders` members send on the socket they receive on; seeing their own message
    // come back frees a place in their window (`--rate max`: at most `window` in flight each).
    let senders = senders.min(size);
    let mut sender_ends = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let sock = client.ws_on(i, &u.token).await;
        let (sink, mut stream) = sock.split();
        let delivered = Arc::new(tokio::sync::Semaphore::new(window));
        let own = (i < senders).then(|| (i as u64, delivered.clone()));
        if i < senders {
            sender_ends.push((sink, delivered));
        }
        let (hist, seen, received, stop) =
            (hist.clone(), seen.clone(), received.clone(), stop.clone());
        let reaction_frames = reaction_frames.clone();
        receivers.push(tokio::spawn(async move {
            let mut local = histogram();
            let mut local_seen: Vec<(u64, u64)> = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                let msg = match next {
                    Ok(Some(Ok(m))) => m,
                    Ok(_) => break,
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => continue,
                };
                let Message::Text(text) = msg else { continue };
                if text.contains("\"type\":\"message_reaction\"") {
                    reaction_frames.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(content) = Frame::new_message(&text) else {
                    continue;
                };
                // content: "sender seq sent_micros"
                let parts: Vec<u64> = content.split(' ').filter_map(|p| p.parse().ok()).collect();
                if parts.len() != 3 {
                    continue;
                }
                if let Some((me, delivered)) = &own
                    && parts[0] == *me
                {
                    delivered.add_permits(1);
                }
                let now = origin.elapsed().as_micros() as u64;
                local.record(now.saturating_sub(parts[2]).max(1)).ok();
                local_seen.push((parts[0], parts[1]));
                received.fetch_add(1, Ordering::Relaxed);
            }
            let _ = hist.lock().await.add(&local);
            let mut s = seen.lock().await;
            for k in local_seen {
                *s.entry(k).or_default() += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Logins in flight meanwhile (bcrypt must not stall delivery).
    let login_stop = Arc::new(AtomicBool::new(false));
    let mut login_tasks = Vec::new();
    for i in 0..logins {
        let (client, name, stop) = (
            client.clone(),
            users[i % users.len()].name.clone(),
            login_stop.clone(),
        );
        login_tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if client
                    .post(
                        "/auth/login",
                        None,
                        json!({"username": name, "password": "load-test-password"}),
                    )
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    // A member's second socket floods typing into the room (reconnecting when it is closed).
    let flood_stop = Arc::new(AtomicBool::new(false));
    let flood = typing_flood.then(|| {
        let (client, token, stop) = (
            client.clone(),
            users[size - 1].token.clone(),
            flood_stop.clone(),
        );
        tokio::spawn(async move {
            let (mut frames, mut closed) = (0u64, 0u64);
            let typing = Message::text(ClientFrame::Typing { room }.to_text());
            while !stop.load(Ordering::Relaxed) {
                let (mut sink, mut stream) = client.ws(&token).await.split();
                // Read (and drop) what the server says, so the flooder is not a slow reader.
                let reader = tokio::spawn(async move { while stream.next().await.is_some() {} });
                while !stop.load(Ordering::Relaxed) && sink.send(typing.clone()).await.is_ok() {
                    frames += 1;
                    if frames % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                reader.abort();
                closed += 1;
            }
            (frames, closed.saturating_sub(1))
        })
    });
    eprintln!(
        "fan-out to {size} members for {duration} s at {}...",
        if max {
            "max rate".to_string()
        } else {
            format!("{rate}/s")
        }
    );
    // Sockets connect before the clock starts.
    let start = Instant::now() + Duration::from_millis(500);
    let end = start + Duration::from_secs(duration);
    let sent = Arc::new(AtomicU64::new(0));
    let mut send_tasks = Vec::new();
    let reactions_sent = Arc::new(AtomicU64::new(0));
    if mix.reactions > 0 && !max {
        let target = client
            .post(
                "/groups/send",
                Some(&users[0].token),
                json!({"group_id": room, "content": "react to me"}),
            )
            .await
            .expect("a message to react to")["data"]["id"]
            .as_i64()
            .expect("its id");
        let every = 1.0 / (rate * f64::from(mix.reactions) / f64::from(100 - mix.reactions));
        let (client, tokens, count) = (
            client.clone(),
            users.iter().map(|u| u.token.clone()).collect::<Vec<_>>(),
            reactions_sent.clone(),
        );
        send_tasks.push(tokio::spawn(async move {
            let mut k = 0usize;
            tokio::time::sleep_until(start.into()).await;
            while Instant::now() < end {
                let due = start + Duration::from_secs_f64(k as f64 * every);
                tokio::time::sleep_until(due.into()).await;
                // Each member in turn; each (member, emoji) added, then taken back.
                let round = k / tokens.len();
                let emoji = ["👍", "🎉"][round % 2];
                let method = if (round / 2).is_multiple_of(2) {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::DELETE
                };
                let req = client
                    .http
                    .request(
                        method,
                        format!("{}/messages/{target}/reactions", client.base),
                    )
                    .bearer_auth(&tokens[k % tokens.len()])
                    .json(&json!({ "emoji": emoji }));
                if Client::reply(req).await.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                k += 1;
            }
        }));
    }
    for (s, (mut sink, delivered)) in sender_ends.into_iter().enumerate() {
        let sent = sent.clone();
        let n = senders;
        send_tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            tokio::time::sleep_until(start.into()).await;
            while Instant::now() < end {
                if max {
                    match tokio::time::timeout_at(end.into(), delivered.acquire()).await {
                        Ok(Ok(permit)) => permit.forget(),
                        _ => break,
                    }
                } else {
                    // Senders take turns: one message every 1/rate s in all, not bursts of n.
                    let slot = seq as usize * n + s;
                    let due = start + Duration::from_secs_f64(slot as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                seq += 1;
                let content = format!("{s} {seq} {}", origin.elapsed().as_micros());
                if sink
                    .send(Message::text(
                        ClientFrame::Message {
                            room,
                            content,
                            client_id: None,
                            reply_to: None,
                            attachments: Vec::new(),
                        }
                        .to_text(),
                    ))
                    .await
                    .is_err()
                {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            // The last messages' deliveries arrive before the receivers stop.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }));
    }
    for t in send_tasks {
        let _ = t.await;
    }
    login_stop.store(true, Ordering::Relaxed);
    flood_stop.store(true, Ordering::Relaxed);
    let (typing_frames, typing_closes) = match flood {
        Some(task) => task.await.unwrap_or((0, 0)),
        None => (0, 0),
    };
    let mut logins_done = 0;
    for t in login_tasks {
        logins_done += t.await.unwrap_or(0);
    }
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.await;
    }
    let elapsed = Duration::from_secs(duration).as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let seen = seen.lock().await;
    let expected = sent * size as u64;
    let got = received.load(Ordering::Relaxed);
    let doubled: u64 = seen
        .values()
        .map(|n| n.saturating_sub(size as u32) as u64)
        .sum();
    let h = hist.lock().await;
    json!({"scenario": "fanout", "group_size": size, "rate": if max { json!("max") } else { json!(rate) },
           "seconds": elapsed, "sent": sent, "expected": expected, "received": got,
           "lost": expected.saturating_sub(got - doubled), "doubled": doubled,
           "deliveries_per_second": got as f64 / elapsed,
           "p50_ms": ms(&h, 0.5), "p90_ms": ms(&h, 0.9), "p99_ms": ms(&h, 0.99), "max_ms": h.max() as f64 / 1000.0,
           "logins_in_flight": logins, "logins_done": logins_done,
           "typing_frames_flooded": typing_frames, "flooder_closed": typing_closes,
           "reactions_sent": reactions_sent.load(Ordering::Relaxed),
           "reaction_frames": reaction_frames.load(Ordering::Relaxed)})
}

struct Attackers {
    slowloris: usize,
    guessers: usize,
    typing_flood: bool,
}

/// Counts of what the attackers saw.
#[derive(Default)]
struct AttackCounts {
    slowloris_connected: AtomicU64,
    slowloris_closed_by_server: AtomicU64,
    slowloris_refused: AtomicU64,
    guesses: AtomicU64,
    guesses_throttled: AtomicU64,
    guesses_busy: AtomicU64,
}

async fn attack(
    client: Arc<Client>,
    size: usize,
    rate: &str,
    duration: u64,
    attackers: Attackers,
    pid: Option<u32>,
    settle: u64,
) -> Value {
    let rss_before = pid.and_then(rss_kib);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AttackCounts::default());
    let host: std::net::SocketAddr =
        tokio::net::lookup_host(client.base.trim_start_matches("http://"))
            .await
            .expect("server address")
            .next()
            .expect("server address");
    let mut tasks = Vec::new();
    // Slowloris: a header line every 2 s, never the end of the headers; reconnect when dropped.
    for i in 0..attackers.slowloris {
        let (stop, counts) = (stop.clone(), counts.clone());
        // 2,000 per source address: under the per-address cap, like many attackers.
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i / 2000) as u8);
        tasks.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while !stop.load(Ordering::Relaxed) {
                let Ok(sock) = tokio::net::TcpSocket::new_v4() else {
                    break;
                };
                if sock.bind((source, 0).into()).is_err() {
                    break;
                }
                let Ok(mut stream) = sock.connect(host).await else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                };
                counts.slowloris_connected.fetch_add(1, Ordering::Relaxed);
                let mut alive = stream.write_all(b"GET /health HTTP/1.1\r\n").await.is_ok();
                while alive && !stop.load(Ordering::Relaxed) {
                    let mut byte = [0u8; 256];
                    tokio::select! {
                        read = stream.read(&mut byte) => {
                            if matches!(read, Ok(n) if n > 0 && byte.starts_with(b"HTTP/1.1 503")) {
                                counts.slowloris_refused.fetch_add(1, Ordering::Relaxed);
                            } else {
                                counts.slowloris_closed_by_server.fetch_add(1, Ordering::Relaxed);
                            }
                            alive = false;
                        }
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {
                            alive = stream.write_all(b"X-Slow: 1\r\n").await.is_ok();
                        }
                    }
                }
            }
        }));
    }
    // Password guessing on one account.
    let victim = client
        .register(&format!("lv{}u", run_id()))
        .await
        .expect("victim");
    for g in 0..attackers.guessers {
        let (client, stop, counts, name) = (
            client.clone(),
            stop.clone(),
            counts.clone(),
            victim.name.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let guess = json!({"username": name, "password": format!("guess-{g}-{n}")});
                let outcome = client.post("/auth/login", None, guess).await;
                counts.guesses.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Err(e) if e.starts_with("429") => {
                        counts.guesses_throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.starts_with("503") => {
                        counts.guesses_busy.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }));
    }
    // Ordinary people logging in meanwhile (five accounts in turn, one login a second: each under
    // its account's throttle), timed.
    let bystanders = client.users(&format!("lb{}u", run_id()), 5).await;
    let logins = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut h = histogram();
            let mut failed = 0u64;
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let who = &bystanders[i % bystanders.len()];
                let t = Instant::now();
                let login = json!({"username": who.name, "password": "load-test-password"});
                match client.post("/auth/login", None, login).await {
                    Ok(_) => {
                        h.record(t.elapsed().as_micros().max(1) as u64).ok();
                    }
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (h, failed)
        })
    };
    // /health from an ordinary client throughout.
    let health = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut h = histogram();
            let mut failed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client
                    .http
                    .get(format!("{}/health", client.base))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        h.record(t.elapsed().as_micros().max(1) as u64).ok();
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (h, failed)
        })
    };
    // Let the attackers take their places before the measured run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_attacked = pid.and_then(rss_kib);
    let fan = fanout(
        client.clone(),
        size,
        rate,
        duration,
        5,
        0,
        16,
        Mix {
            typing_flood: attackers.typing_flood,
            reactions: 0,
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let (h, health_failed) = health.await.unwrap_or((histogram(), 0));
    let (lh, logins_failed) = logins.await.unwrap_or((histogram(), 0));
    let rss_peak = pid.and_then(rss_kib);
    eprintln!("attack over; waiting {settle} s for the server to settle...");
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let rss_after = pid.and_then(rss_kib);
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    json!({"scenario": "attack", "fanout": fan,
           "health_p50_ms": ms(&h, 0.5), "health_p99_ms": ms(&h, 0.99), "health_max_ms": h.max() as f64 / 1000.0,
           "health_checks": h.len(), "health_failed": health_failed,
           "bystander_logins": lh.len(), "bystander_logins_failed": logins_failed,
           "bystander_login_p50_ms": ms(&lh, 0.5), "bystander_login_max_ms": lh.max() as f64 / 1000.0,
           "slowloris": attackers.slowloris,
           "slowloris_connections_made": load(&counts.slowloris_connected),
           "slowloris_closed_by_server": load(&counts.slowloris_closed_by_server),
           "slowloris_refused_503": load(&counts.slowloris_refused),
           "guessers": attackers.guessers, "guesses": load(&counts.guesses),
           "guesses_throttled_429": load(&counts.guesses_throttled),
           "guesses_busy_503": load(&counts.guesses_busy),
           "rss_before_kib": rss_before, "rss_under_attack_kib": rss_attacked,
           "rss_at_end_kib": rss_peak, "rss_settled_kib": rss_after})
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn idle(client: Arc<Client>, n: usize, hold: u64, pid: Option<u32>, sources: u8) -> Value {
    let user = client
        .register(&format!("li{}u", run_id()))
        .await
        .expect("user");
    let before = pid.and_then(rss_kib);
    let url = client.ws_url(&user.token);
    let host = client.base.trim_start_matches("http://").to_string();
    eprintln!("opening {n} sockets...");
    let start = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % sources.max(1) as usize) as u8);
        let connect = async {
            let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            sock.bind((source, 0).into()).map_err(|e| e.to_string())?;
            let addr: std::net::SocketAddr = tokio::net::lookup_host(&host)
                .await
                .map_err(|e| e.to_string())?
                .next()
                .ok_or("no address")?;
            let stream = sock.connect(addr).await.map_err(|e| e.to_string())?;
            let (ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(ws)
        };
        match connect.await {
            Ok(ws) => sockets.push(ws),
            Err(e) => {
                failed += 1;
                if failed < 3 {
                    eprintln!("connect failed: {e}");
                }
            }
        }
        if i % 1000 == 999 {
            eprintln!("{} open", i + 1);
        }
    }
    let connect_secs = start.elapsed().as_secs_f64();
    // Let the server finish its per-connection setup before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(rss_kib);
    let mut health = histogram();
    let end = Instant::now() + Duration::from_secs(hold);
    while Instant::now() < end {
        let t = Instant::now();
        if client
            .http
            .get(format!("{}/health", client.base))
            .send()
            .await
            .is_ok()
        {
            health.record(t.elapsed().as_micros().max(1) as u64).ok();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open = sockets.len();
    drop(sockets);
    json!({"scenario": "idle", "connections": open, "failed": failed, "connect_seconds": connect_secs,
           "rss_before_kib": before, "rss_after_kib": after,
           "kib_per_connection": match (before, after) { (Some(b), Some(a)) if open > 0 => json!((a as f64 - b as f64) / open as f64), _ => Value::Null },
           "health_p50_ms": ms(&health, 0.5), "health_p99_ms": ms(&health, 0.99)})
}

/// Unmeasured requests before each measured kind of page (connections open, plans cached).
const WARM_UP_REQUESTS: usize = 10;

/// Stores `m` messages straight into the server's database with COPY, `row(i)` giving the i-th
/// as (room, sender, content), then runs `VACUUM (ANALYZE)` as one does after any bulk load (hint
/// bits and the visibility map set now, so that the first readers do not pay for them, and no
/// autovacuum woken by a million new rows runs during the measurement). Their ids are positions of
/// the message log taken from its head as the server takes them (`log_head`), so that the server's
/// own sends never meet them. The connection, and the seconds it took.
async fn seed_messages(
    database_url: &str,
    m: i64,
    mut row: impl FnMut(i64) -> (RoomId, i64, String),
) -> (tokio_postgres::Client, f64) {
    let cfg: tokio_postgres::Config = database_url.parse().expect("database url");
    let (db, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("database");
    tokio::spawn(conn);
    let t = Instant::now();
    let first_id: i64 = db
        .query_one(
            "UPDATE log_head SET next_position = next_position + $1 RETURNING next_position - $1",
            &[&m],
        )
        .await
        .expect("log positions")
        .get(0);
    let sink = db
        .copy_in("COPY messages (id, chat_room_id, sender_id, content) FROM STDIN")
        .await
        .expect("copy");
    let mut sink = std::pin::pin!(sink);
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..m {
        let (room, sender, content) = row(i);
        buf.push_str(&format!("{}\t{room}\t{sender}\t{content}\n", first_id + i));
        if buf.len() > (1 << 20) - 1024 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut buf)))
                .await
                .expect("copy chunk");
        }
    }
    sink.send(bytes::Bytes::from(buf))
        .await
        .expect("copy chunk");
    sink.as_mut().finish().await.expect("copy finish");
    db.batch_execute("VACUUM (ANALYZE) messages")
        .await
        .expect("vacuum");
    (db, t.elapsed().as_secs_f64())
}

/// A word of the seeded vocabulary, `w0` to `w4998`, Zipf-like: `w0` is one word in 12 (in about
/// half the 8-word messages), `w4000` one in 34,000.
fn seeded_word(rng: &mut impl rand::Rng) -> String {
    // Zipf-like: small indexes far more often.
    let x: f64 = rng.random_range(0.0..1.0);
    format!("w{}", (5000f64.powf(x) as u32).saturating_sub(1))
}

async fn search(
    client: Arc<Client>,
    m: i64,
    rooms: usize,
    database_url: &str,
    samples: usize,
) -> Value {
    let users = client.users(&format!("ls{}u", run_id()), 2).await;
    // The searcher is in one room in ten; the others hold the rest of the messages.
    let mut room_ids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let members = if r % 10 == 0 { &users[1..] } else { &[][..] };
        room_ids.push(client.group(&users[0], &format!("s{r}"), members).await);
    }
    eprintln!("seeding {m} messages over {rooms} rooms with COPY...");
    let mut rng = rand::rng();
    let (_db, seed_secs) = seed_messages(database_url, m, |i| {
        let words: Vec<String> = (0..8).map(|_| seeded_word(&mut rng)).collect();
        let extra = if i % 100_000 == 7 { " needle" } else { "" };
        let content = format!("{}{extra}", words.join(" "));
        (room_ids[i as usize % rooms], users[0].id, content)
    })
    .await;
    let token = &users[1].token;
    let measure = async |query: String| {
        for _ in 0..WARM_UP_REQUESTS {
            client.get(&query, token).await.expect("search");
        }
        let mut h = histogram();
        let mut found = 0;
        for _ in 0..samples {
            let t = Instant::now();
            let reply = client.get(&query, token).await.expect("search");
            h.record(t.elapsed().as_micros().max(1) as u64).ok();
            found = reply["results"].as_array().map_or(0, Vec::len);
        }
        json!({"query": query, "results": found, "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99)})
    };
    let results = vec![
        measure("/search?q=needle".into()).await,
        measure("/search?q=w4000".into()).await,
        measure("/search?q=w0".into()).await,
        measure("/search?q=w1+w2".into()).await,
        measure("/search?q=%22w0+w1%22".into()).await,
        measure(format!("/search?q=w100&room_id={}", room_ids[0])).await,
    ];
    json!({"scenario": "search", "messages": m, "rooms": rooms, "searchers_rooms": rooms.div_ceil(10),
           "seed_seconds": seed_secs, "samples": samples, "queries": results})
}

async fn history(
    client: Arc<Client>,
    m: i64,
    database_url: &str,
    samples: usize,
    readers: usize,
) -> Value {
    let users = client
        .users(&format!("lh{}u", run_id()), readers.max(1) + 1)
        .await;
    let room = client.group(&users[0], "history", &users[1..]).await;
    eprintln!("seeding {m} messages with COPY...");
    let (db, seed_secs) = seed_messages(database_url, m, |i| {
        (
            room,
            users[(i % 2) as usize].id,
            format!("message number {i}"),
        )
    })
    .await;
    let first: i64 = db
        .query_one(
            "SELECT min(id) FROM messages WHERE chat_room_id = $1",
            &[&(room as i32)],
        )
        .await
        .unwrap()
        .get(0);
    let tokens: Vec<String> = users[1..].iter().map(|u| u.token.clone()).collect();
    // Every reader asks for the page `samples` times in a loop, all at once.
    let measure = async |path: String, samples: usize| {
        let pages = tokens.iter().map(|token| {
            let (client, path, token) = (client.clone(), path.clone(), token.clone());
            async move {
                for _ in 0..WARM_UP_REQUESTS {
                    client.get(&path, &token).await.expect("page");
                }
                let mut h = histogram();
                for _ in 0..samples {
                    let t = Instant::now();
                    let page = client.get(&path, &token).await.expect("page");
                    assert_eq!(page.as_array().map(Vec::len), Some(50));
                    h.record(t.elapsed().as_micros().max(1) as u64).ok();
                }
                h
            }
        });
        let mut all = histogram();
        for h in futures_util::future::join_all(pages).await {
            all.add(&h).ok();
        }
        json!({"p50_ms": ms(&all, 0.5), "p99_ms": ms(&all, 0.99)})
    };
    let newest = measure(format!("/groups/{room}/messages?limit=50"), samples).await;
    let deep_cursor = measure(
        format!(
            "/groups/{room}/messages?limit=50&before_id={}",
            first + 1000
        ),
        samples,
    )
    .await;
    // Each costs a walk over the whole room: fewer samples keep the run short.
    let deep_offset = measure(
        format!("/groups/{room}/messages?limit=50&offset={}", m - 1000),
        samples.min(50),
    )
    .await;
    json!({"scenario": "history", "messages": m, "seed_seconds": seed_secs, "samples": samples,
           "readers": readers, "newest_page": newest, "deep_before_id_page": deep_cursor,
           "deep_offset_page": deep_offset})
}

fn raise_fd_limit() {
    // SAFETY: get/setrlimit on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}
