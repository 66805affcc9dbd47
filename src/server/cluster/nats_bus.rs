//! The bus on NATS (`--bus nats://host:4222`), for deployments that outgrow LISTEN/NOTIFY: every
//! instance publishes to and subscribes to one subject. NATS delivers at most once and drops
//! messages for a subscriber that falls too far behind; both a reconnection and such a drop are
//! reported as `Heard::Resync`, which the receiver makes good.

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::bus::{Bus, BusError, Heard};

const SUBJECT: &str = "rtchat.bus";

pub struct NatsBus {
    url: String,
    client: async_nats::Client,
    /// The connection's own news: a reconnection or dropped messages mean something was lost.
    interruptions: std::sync::Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

impl NatsBus {
    pub async fn connect(url: &str) -> Result<NatsBus, BusError> {
        let (interrupted, interruptions) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name("rtchat-server")
            .max_reconnects(None)
            .event_callback(move |event| {
                let interrupted = interrupted.clone();
                async move {
                    match event {
                        async_nats::Event::Disconnected => {
                            tracing::warn!("the NATS bus connection was lost; reconnecting")
                        }
                        async_nats::Event::Connected | async_nats::Event::SlowConsumer(_) => {
                            let _ = interrupted.send(());
                        }
                        other => tracing::info!(event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| nats_error(url, e))?;
        // The first `Connected` is this connection, not a reconnection.
        client.flush().await.map_err(|e| nats_error(url, e))?;
        Ok(NatsBus {
            url: url.to_string(),
            client,
            interruptions: std::sync::Mutex::new(Some(interruptions)),
        })
    }
}

fn nats_error(url: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Nats {
        url: url.to_string(),
        message: e.to_string(),
    }
}

impl Bus for NatsBus {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn publish(&self, envelope: String) -> BoxFuture<'_, Result<(), BusError>> {
        async move {
            self.client
                .publish(SUBJECT, envelope.into())
                .await
                .map_err(|e| nats_error(&self.url, e))
        }
        .boxed()
    }

    fn listen(&self) -> BoxFuture<'_, Result<mpsc::Receiver<Heard>, BusError>> {
        async move {
            let mut subscriber = self
                .client
                .subscribe(SUBJECT)
                .await
                .map_err(|e| nats_error(&self.url, e))?;
            // Subscribed once the server has it: what is published from now on reaches us.
            self.client
                .flush()
                .await
                .map_err(|e| nats_error(&self.url, e))?;
            let mut interruptions = self
                .interruptions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or_else(|| nats_error(&self.url, "listened to twice"))?;
            // Connected events from before the subscription are the first connection.
            while interruptions.try_recv().is_ok() {}
            let (heard, rx) = mpsc::channel(4096);
            tokio::spawn(async move {
                loop {
                    let item = tokio::select! {
                        message = subscriber.next() => match message {
                            Some(m) => match String::from_utf8(m.payload.to_vec()) {
                                Ok(text) => Heard::Envelope(text),
                                Err(_) => continue,
                            },
                            None => return,
                        },
                        Some(()) = interruptions.recv() => Heard::Resync,
                    };
                    if heard.send(item).await.is_err() {
                        return;
                    }
                }
            });
            Ok(rx)
        }
        .boxed()
    }
}
