//! WebSocket clients for tests, with a timeout on every wait.

use rtchat::proto::{LiveMessage, MessageId, ServerFrame};
use serde_json::{Value, json};

use super::app::{TestApp, http};
use super::tls::TestCa;

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking JSON frames, with a timeout on every wait.
pub struct WsClient {
    stream: WsStream,
}

pub const WS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl TestApp {
    pub fn ws_url(&self, path: &str) -> String {
        let base = self
            .address
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}{path}")
    }

    /// Makes the test's HTTP and WebSocket clients trust `ca` (for a server with TLS).
    pub fn trust(&mut self, ca: &TestCa) {
        let config = ca.client_config();
        self.client = http()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
            .build()
            .unwrap();
        self.tls = Some(config);
        self.ca_file = Some(ca.ca_file.clone());
    }

    /// Connects at `/ws/{token}` and reads the `connected` frame.
    pub async fn ws(&self, token: &str) -> WsClient {
        let mut client = self.ws_raw(&format!("/ws/{token}")).await;
        let hello = client.recv().await;
        assert_eq!(hello["type"], "connected", "{hello}");
        client
    }

    /// Connects without reading anything.
    pub async fn ws_raw(&self, path: &str) -> WsClient {
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.ws_url(path),
            None,
            false,
            connector,
        )
        .await
        .expect("websocket connects");
        WsClient { stream }
    }
}

impl WsClient {
    pub fn from_stream(stream: WsStream) -> Self {
        WsClient { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        assert!(self.try_send_text(text).await, "frame sent");
    }

    /// Sends a frame; false if the connection is gone.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .is_ok()
    }

    /// The next JSON frame (pings skipped). Panics on close or after `WS_WAIT`.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(WS_WAIT).await {
            Some(v) => v,
            None => panic!("no frame within {WS_WAIT:?}"),
        }
    }

    /// The next JSON frame within `wait`, or None (on silence or close).
    pub async fn next_frame(&mut self, wait: std::time::Duration) -> Option<Value> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match next.ok()? {
                Message::Text(t) => return Some(serde_json::from_str(&t).expect("JSON frame")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next frame, read as the protocol's type (pings skipped). Panics on close, after
    /// `WS_WAIT`, or on a frame the protocol does not have.
    pub async fn recv_frame(&mut self) -> ServerFrame {
        let json = self.recv().await;
        serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("not a server frame ({e}): {json}"))
    }

    /// The next frame within `wait` as the protocol's type, or None (on silence or close).
    pub async fn next_server_frame(&mut self, wait: std::time::Duration) -> Option<ServerFrame> {
        let json = self.next_frame(wait).await?;
        Some(
            serde_json::from_value(json.clone())
                .unwrap_or_else(|e| panic!("not a server frame ({e}): {json}")),
        )
    }

    /// The first frame `pick` takes (returns Some for), read as the protocol's type; the frames
    /// before it are skipped.
    pub async fn recv_as<T>(&mut self, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> T {
        loop {
            if let Some(picked) = pick(self.recv_frame().await) {
                return picked;
            }
        }
    }

    /// The next `new_message`, skipping other frames (an `error` frame fails the test).
    pub async fn recv_message(&mut self) -> Delivered {
        loop {
            match self.recv_frame().await {
                ServerFrame::NewMessage {
                    message,
                    sync_cursor,
                } => {
                    return Delivered {
                        message,
                        sync_cursor,
                    };
                }
                ServerFrame::Error { message, .. } => {
                    panic!("error while waiting for a message: {message}")
                }
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind` as JSON, skipping presence and other unrelated events: for
    /// the tests that pin the wire format itself.
    /// The next `new_message` for which `keep` holds (others are skipped).
    pub async fn recv_message_where(
        &mut self,
        keep: impl Fn(&rtchat::proto::LiveMessage) -> bool,
    ) -> rtchat::proto::LiveMessage {
        self.recv_as(|f| match f {
            ServerFrame::NewMessage { message, .. } if keep(&message) => Some(message),
            _ => None,
        })
        .await
    }

    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
            assert!(
                !(kind == "new_message" && frame["type"] == "error"),
                "error while waiting for a message: {frame}"
            );
        }
    }

    /// Asserts that no frame of type `kind` arrives within `wait`.
    pub async fn expect_no(&mut self, kind: &str, wait: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(frame) = self
            .next_frame(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            assert_ne!(frame["type"], kind, "unexpected {frame}");
        }
    }

    /// Reads until the server closes; returns the close code (None: closed without a code).
    pub async fn close_code(&mut self) -> Option<u16> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Err(_) => panic!("not closed within {WS_WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Every JSON frame until the server closes, and the close code (None: closed without a
    /// close frame, or reset).
    pub async fn frames_until_close(&mut self) -> (Vec<Value>, Option<u16>) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(WS_WAIT, self.stream.next()).await {
                Err(_) => panic!("not closed within {WS_WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return (frames, None),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return (frames, frame.map(|f| u16::from(f.code)));
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    frames.push(serde_json::from_str(&t).expect("JSON frame"))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// A round trip: proves the socket is open and answering.
    pub async fn ping(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let pong = self.recv_type("pong").await;
        assert_eq!(pong, json!({"type": "pong"}));
    }
}

/// A `new_message` frame: the message, and the cursor the server says is safe to sync from.
#[derive(Debug)]
pub struct Delivered {
    pub message: LiveMessage,
    pub sync_cursor: MessageId,
}

impl std::ops::Deref for Delivered {
    type Target = LiveMessage;
    fn deref(&self) -> &LiveMessage {
        &self.message
    }
}
