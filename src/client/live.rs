//! The live side of the client: a WebSocket that stays up. It reconnects with backoff and jitter
//! after a drop, catches up with `sync` from the last safe cursor, and hands each message to the
//! caller exactly once (ids already seen are skipped).

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::api::Api;
use super::error::CliError;
use crate::proto::{ClientFrame, CloseReason, MessageId, ServerFrame};

/// Messages already handed over, above the cursor: a resume may repeat them, they are skipped.
#[derive(Default)]
pub struct Seen {
    cursor: Option<MessageId>,
    ids: BTreeSet<MessageId>,
}

impl Seen {
    /// True the first time `id` is offered.
    pub fn first_time(&mut self, id: MessageId) -> bool {
        if self.cursor.is_some_and(|c| id <= c) {
            return false; // everything up to the cursor was delivered before
        }
        self.ids.insert(id)
    }

    /// Everything up to `cursor` has been delivered: forget the ids at or below it.
    pub fn advance(&mut self, cursor: MessageId) {
        if self.cursor.is_some_and(|c| c >= cursor) {
            return;
        }
        self.cursor = Some(cursor);
        self.ids = self.ids.split_off(&(cursor + 1));
    }

    /// Takes a live frame's cursor; whether the frame is news (a message not seen before, or any
    /// other event). `connected` only sets the first cursor.
    pub fn filter(&mut self, frame: &ServerFrame) -> bool {
        match frame {
            ServerFrame::Connected { sync_cursor, .. } => {
                if self.cursor().is_none() {
                    self.advance(*sync_cursor);
                }
                false
            }
            ServerFrame::NewMessage {
                message,
                sync_cursor,
            } => {
                let fresh = self.first_time(message.message_id);
                self.advance(*sync_cursor);
                fresh
            }
            _ => true,
        }
    }

    pub fn cursor(&self) -> Option<MessageId> {
        self.cursor
    }
}

/// What the listener tells its caller.
// One event at a time is handed over and matched at once: boxing the frame would cost an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Frame(ServerFrame),
    /// The connection dropped (or the first attempt failed); the listener tries again after
    /// `retry_in`, then quietly with backoff until it is `Resumed`. `restarting`: the server said
    /// it was shutting down (close code 1001), so it is tried again every second or so.
    Lost {
        retry_in: Duration,
        restarting: bool,
    },
    /// Connected again and caught up with `missed` messages.
    Resumed {
        missed: usize,
    },
}

const SYNC_PAGE: u32 = 500;

/// Runs until the session ends, `on_event` returns false, or `outgoing` closes. New messages are
/// de-duplicated; other frames pass through as they come. Frames sent on `outgoing` go out on the
/// socket (they wait while it is down).
pub async fn listen(
    api: &Api,
    mut outgoing: Option<mpsc::UnboundedReceiver<ClientFrame>>,
    mut on_event: impl FnMut(Event) -> bool,
) -> Result<(), CliError> {
    let mut seen = Seen::default();
    let mut failures: u32 = 0;
    // Since when the server has been restarting (it closed with 1001): retried quickly, so that
    // its return is noticed within a second or two.
    let mut restarting: Option<std::time::Instant> = None;
    // Frames given while the connection was down, sent once it is back.
    let mut held: Vec<ClientFrame> = Vec::new();
    loop {
        let flow = session(
            api,
            &mut seen,
            &mut outgoing,
            &mut held,
            &mut on_event,
            failures > 0,
        )
        .await;
        match flow {
            Ok(Flow::Stop) => return Ok(()),
            Ok(Flow::Reconnect { server_restarting }) => {
                failures = 1;
                restarting = server_restarting.then(std::time::Instant::now);
            }
            Err(e @ CliError::Auth(_)) => return Err(e),
            Err(_) => failures += 1,
        }
        let quick = restarting.is_some_and(|since| since.elapsed() < RESTART_PATIENCE);
        let retry_in = if quick {
            restart_backoff()
        } else {
            backoff(failures)
        };
        // Told once per loss (the first failed attempt), not at every attempt after it.
        if failures == 1
            && !on_event(Event::Lost {
                retry_in,
                restarting: quick,
            })
        {
            return Ok(());
        }
        // A frame to send (someone typing) means someone is waiting: try again at once.
        tokio::select! {
            _ = tokio::time::sleep(retry_in) => {}
            frame = next_outgoing(&mut outgoing) => match frame {
                Some(ClientFrame::Ping | ClientFrame::Typing { .. }) => {}
                Some(frame) => held.push(frame),
                None => return Ok(()),
            },
        }
    }
}

/// How long a restarting server is tried every second or so before the usual backoff resumes.
const RESTART_PATIENCE: Duration = Duration::from_secs(120);

/// 0.5 s, 1 s, 2 s ... up to 5 s, each with up to 50% random jitter so clients do not reconnect in
/// lockstep after a server restart.
pub fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(failures.saturating_sub(1).min(6));
    let base = base.min(Duration::from_secs(5));
    let jitter = rand::rng().random_range(0.0..0.5);
    base.mul_f64(1.0 + jitter)
}

/// While a server restarts: 0.5 to 1 s (a refused connection costs it nothing).
pub fn restart_backoff() -> Duration {
    Duration::from_millis(500).mul_f64(1.0 + rand::rng().random_range(0.0..1.0))
}

enum Flow {
    Stop,
    /// The connection ended; `server_restarting` when the server said it was shutting down.
    Reconnect {
        server_restarting: bool,
    },
}

const RECONNECT: Flow = Flow::Reconnect {
    server_restarting: false,
};

/// The next frame to send, or never when there is no outgoing channel.
async fn next_outgoing(
    outgoing: &mut Option<mpsc::UnboundedReceiver<ClientFrame>>,
) -> Option<ClientFrame> {
    match outgoing {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn session(
    api: &Api,
    seen: &mut Seen,
    outgoing: &mut Option<mpsc::UnboundedReceiver<ClientFrame>>,
    held: &mut Vec<ClientFrame>,
    on_event: &mut impl FnMut(Event) -> bool,
    resumed: bool,
) -> Result<Flow, CliError> {
    let (mut sink, mut stream) = connect(api).await?.split();
    // The server sends `connected` once this socket receives everything of its rooms: a catch-up
    // begun earlier could miss a message stored in between, which would then arrive neither way.
    loop {
        let Some(message) = stream.next().await else {
            return Ok(RECONNECT);
        };
        match incoming(message)? {
            Incoming::Frame(frame) if matches!(*frame, ServerFrame::Connected { .. }) => {
                seen.filter(&frame);
                break;
            }
            Incoming::Frame(_) | Incoming::Nothing => {}
            Incoming::Gone { server_restarting } => {
                return Ok(Flow::Reconnect { server_restarting });
            }
        }
    }
    let Some(missed) = catch_up(api, seen, on_event).await? else {
        return Ok(Flow::Stop);
    };
    if resumed && !on_event(Event::Resumed { missed }) {
        return Ok(Flow::Stop);
    }
    for frame in std::mem::take(held) {
        if send_frame(&mut sink, &frame).await.is_err() {
            return Ok(RECONNECT);
        }
    }
    loop {
        let message = tokio::select! {
            message = stream.next() => match message {
                Some(message) => message,
                None => return Ok(RECONNECT),
            },
            frame = next_outgoing(outgoing) => match frame {
                Some(frame) => {
                    if send_frame(&mut sink, &frame).await.is_err() {
                        return Ok(RECONNECT);
                    }
                    continue;
                }
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ok(Flow::Stop);
                }
            },
        };
        let frame = match incoming(message)? {
            Incoming::Frame(frame) => *frame,
            Incoming::Nothing => continue,
            Incoming::Gone { server_restarting } => {
                return Ok(Flow::Reconnect { server_restarting });
            }
        };
        if seen.filter(&frame) && !on_event(Event::Frame(frame)) {
            let _ = sink.send(Message::Close(None)).await;
            return Ok(Flow::Stop);
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the live connection, authenticated by header.
async fn connect(api: &Api) -> Result<Socket, CliError> {
    // A cheap authenticated call first: it refreshes an expired token and proves the server is up.
    api.me().await?;
    let token = api.session()?.access_token;
    let mut request = api
        .ws_url()
        .into_client_request()
        .map_err(|e| CliError::Usage(format!("bad server address: {e}")))?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::Local("the saved token is not valid text".into()))?,
    );
    let (socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, api.ws_connector())
            .await
            .map_err(|e| CliError::Server(format!("cannot open the live connection: {e}")))?;
    Ok(socket)
}

/// Everything missed since the last connection's cursor, through `sync` (live frames that arrive
/// meanwhile are de-duplicated against it). How many were missed; None if `on_event` said stop.
async fn catch_up(
    api: &Api,
    seen: &mut Seen,
    on_event: &mut impl FnMut(Event) -> bool,
) -> Result<Option<usize>, CliError> {
    let mut missed = 0;
    let Some(mut since) = seen.cursor() else {
        return Ok(Some(0));
    };
    loop {
        let page = api.sync(since, SYNC_PAGE).await?;
        for m in page.messages {
            if seen.first_time(m.message_id) {
                missed += 1;
                let frame = ServerFrame::NewMessage {
                    message: m,
                    sync_cursor: page.next_since,
                };
                if !on_event(Event::Frame(frame)) {
                    return Ok(None);
                }
            }
        }
        since = page.next_since;
        seen.advance(since);
        if !page.has_more {
            return Ok(Some(missed));
        }
    }
}

/// What a message from the server amounts to.
enum Incoming {
    Frame(Box<ServerFrame>),
    /// A ping, or a frame type newer than this client.
    Nothing,
    /// Closed or broken: reconnect (soon, if the server is restarting).
    Gone {
        server_restarting: bool,
    },
}

fn incoming(message: Result<Message, tungstenite::Error>) -> Result<Incoming, CliError> {
    let text = match message {
        Ok(Message::Text(text)) => text,
        Ok(Message::Close(frame)) => {
            let code = frame.map(|f| u16::from(f.code));
            if code == Some(CloseReason::SESSION_ENDED.code) {
                return Err(CliError::Auth(
                    "your session has ended: run `rtchat login USERNAME`".into(),
                ));
            }
            return Ok(Incoming::Gone {
                server_restarting: code == Some(CloseReason::GOING_AWAY.code),
            });
        }
        Ok(_) => return Ok(Incoming::Nothing),
        Err(_) => {
            return Ok(Incoming::Gone {
                server_restarting: false,
            });
        }
    };
    Ok(serde_json::from_str::<ServerFrame>(&text)
        .map_or(Incoming::Nothing, |frame| Incoming::Frame(Box::new(frame))))
}

async fn send_frame<S>(sink: &mut S, frame: &ClientFrame) -> Result<(), CliError>
where
    S: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    sink.send(Message::text(frame.to_text()))
        .await
        .map_err(|e| CliError::Server(format!("live connection failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_handed_over_once_across_resumes() {
        let mut seen = Seen::default();
        seen.advance(10);
        assert!(!seen.first_time(9), "below the starting cursor");
        assert!(seen.first_time(12));
        assert!(seen.first_time(11));
        assert!(!seen.first_time(12));
        seen.advance(11);
        // A resume from 11 repeats 12: skipped.
        assert!(!seen.first_time(12));
        assert!(seen.first_time(13));
    }

    #[test]
    fn backoff_grows_to_a_cap_with_jitter() {
        assert!(
            backoff(1) >= Duration::from_millis(500) && backoff(1) < Duration::from_millis(750)
        );
        assert!(backoff(20) <= Duration::from_millis(7500));
        assert!(restart_backoff() <= Duration::from_secs(1));
    }
}
