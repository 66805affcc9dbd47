//! Presence across instances: this instance's heartbeat, and the removal of instances whose
//! heartbeat stopped (their users go offline unless another instance holds a socket of theirs).
//! An instance taken for dead that beats again (it was paused) writes its users' presence again
//! and announces them online.
//! Who is online where lives in the database (`online_presence`), written when a user's first
//! socket here opens and their last one closes.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::proto::Presence;
use crate::server::cluster::{Event, Outgoing};
use crate::server::delivery::hub::Hub;
use crate::server::store::Store;

/// What the heartbeat works on: the database, this instance's connections, and the bus that tells
/// the other instances.
#[derive(Clone)]
pub struct Heartbeat {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub outgoing: Outgoing,
    pub instance: Uuid,
}

/// How often this instance says it is alive, and looks for instances that stopped.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Beats until aborted. After a beat that finds this instance's row gone (the others took it for
/// dead while it could not reach the database), its users' presence is written again.
pub async fn heartbeat(state: Heartbeat) {
    let instance = state.instance;
    let mut every = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        every.tick().await;
        match state.store.instance_heartbeat(instance).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("this instance had been taken for dead; writing its presence again");
                let users = state.hub.online_users();
                match state.store.presence_restore(&users, instance).await {
                    // They were announced offline meanwhile: they are online again.
                    Ok(back) => {
                        for (user, username) in back {
                            let rooms = state.hub.rooms_of(user);
                            let online = Event::presence(user, &username, rooms, Presence::Online);
                            state.outgoing.send(online);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not write presence again"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        reap(&state).await;
    }
}

/// Removes instances that stopped beating; their users' peers hear they are offline.
async fn reap(state: &Heartbeat) {
    match state.store.reap_instances().await {
        Ok(abandoned) => {
            for user in abandoned {
                tracing::info!(user_id = user.user, "offline: their instance stopped");
                let offline =
                    Event::presence(user.user, &user.username, user.rooms, Presence::Offline);
                state.outgoing.send(offline);
            }
        }
        Err(e) => tracing::debug!(error = %e, "reaping stopped instances failed"),
    }
}
