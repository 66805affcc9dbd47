//! What this instance hears on the bus, applied to its own connections. Events outside the log
//! (typing, receipts, presence, membership added, sessions ended) take effect on arrival. The log
//! (messages and removals, at their ids) is delivered strictly in id order: an envelope that
//! arrives ahead of an earlier position waits for it, and a position the bus lost is read from the
//! database, so every message reaches every connection once, in order, whatever the bus dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::proto::{LiveMessage, MessageId};
use crate::server::auth::session_cache::SessionCache;
use crate::server::cluster::bus::{Heard, unix_ms};
use crate::server::cluster::event::{Envelope, Event, Mention};
use crate::server::delivery::hub::Frame;
use crate::server::delivery::hub::Hub;
use crate::server::metrics::METRICS;
use crate::server::store::Store;
use crate::server::store::StoreError;

/// How long a later log position waits for an earlier one before the earlier one is read from
/// the database (envelopes of two publishers may arrive in either order, usually well within a
/// millisecond). Short: everything behind the gap waits too, and is then delivered in one burst
/// that a member's queue (256 frames) must hold.
const GAP_WAIT: Duration = Duration::from_millis(20);
/// The most log positions read from the database at once when filling a gap.
const FILL_CHUNK: MessageId = 5_000;
/// How often the database is asked whether the log moved on without the bus saying so.
const TAIL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the receiver works on: the database it fills gaps from, this instance's connections, and
/// the session cache that ended sessions are taken out of.
#[derive(Clone)]
pub struct Receiver {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub sessions: Arc<SessionCache>,
}

/// Applies what the bus brings until the bus is gone. `settled` is the newest log position
/// already in the database when this instance started listening.
pub async fn run(
    state: Receiver,
    instance: Uuid,
    mut heard: mpsc::Receiver<Heard>,
    settled: MessageId,
) {
    let mut log = Log::new(settled + 1);
    let mut tick = tokio::time::interval(GAP_WAIT / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tail_check = Instant::now();
    // The newest position the database showed at the last check: anything up to it that the bus
    // has not brought by the next check is read from the database.
    let mut tail_seen = settled;
    loop {
        tokio::select! {
            item = heard.recv() => match item {
                None => return,
                Some(Heard::Envelope(json)) => {
                    let ready = receive(&state, instance, &json, &mut log);
                    apply_log(&state, ready);
                }
                Some(Heard::Resync) => {
                    tracing::warn!("the bus was interrupted: checking sessions and memberships again");
                    METRICS.bus_resyncs.inc();
                    resync(&state).await;
                    tail_seen = MessageId::MAX; // read the tail at once
                }
            },
            _ = tick.tick() => {
                if log.gap_overdue() {
                    fill_gap(&state, &mut log).await;
                }
                if last_tail_check.elapsed() >= TAIL_CHECK_EVERY || tail_seen == MessageId::MAX {
                    last_tail_check = Instant::now();
                    match state.store.max_message_id().await {
                        Ok(newest) => {
                            let upto = tail_seen.min(newest);
                            if log.next <= upto {
                                fill_upto(&state, &mut log, upto).await;
                            }
                            tail_seen = newest;
                        }
                        Err(e) => tracing::debug!(error = %e, "tail check failed"),
                    }
                }
            }
        }
    }
}

/// Applies an envelope's events outside the log at once; returns the log events now in order.
fn receive(state: &Receiver, instance: Uuid, json: &str, log: &mut Log) -> Vec<Event> {
    let envelope: Envelope = match serde_json::from_str(json) {
        Ok(envelope) => envelope,
        Err(e) => {
            tracing::warn!(error = %e, "an envelope on the bus could not be read");
            return Vec::new();
        }
    };
    METRICS
        .bus_lag_seconds
        .observe(unix_ms().saturating_sub(envelope.sent_at_ms) as f64 / 1000.0);
    let mine = envelope.from == instance;
    let mut ready = Vec::new();
    for event in envelope.events {
        match event.log_range() {
            Some((first, last)) => ready.extend(log.offer(first, last, event)),
            None => apply(state, mine, event),
        }
    }
    ready
}

fn apply(state: &Receiver, mine: bool, event: Event) {
    let hub = &state.hub;
    match event {
        Event::MembersAdded { room, kind, users } => hub.members_added(room, kind, &users),
        Event::ToRoom {
            room,
            frame,
            except_user,
        } => {
            hub.to_room(room, &Frame::from_json(frame), except_user);
        }
        Event::ToUser { user, frame } => {
            hub.to_user(user, &Frame::from_json(frame));
        }
        Event::ToViewers {
            room,
            frame,
            except,
        } => {
            // Connection ids are this instance's own: the exception is only the sender's.
            hub.to_viewers(room, &Frame::from_json(frame), except.filter(|_| mine));
        }
        Event::Presence { user, rooms, frame } => {
            let peers = hub.online_in_rooms(&rooms, user);
            hub.to_users(&peers, &Frame::from_json(frame));
        }
        Event::SessionEnded { session } => {
            state.sessions.forget_session(session);
            hub.close_session(session);
        }
        Event::UserSessionsEnded { user } => {
            state.sessions.forget_user(user);
            hub.close_user(user);
        }
        Event::ProfileChanged { user } => state.sessions.forget_user(user),
        Event::Messages { .. } | Event::MemberRemoved { .. } | Event::MessageChanged { .. } => {
            tracing::error!("a log event reached apply: ignored")
        }
    }
}

/// Applies log events given in order.
fn apply_log(state: &Receiver, events: Vec<Event>) {
    for event in events {
        match event {
            Event::Messages {
                last,
                messages,
                mentions,
                ..
            } => {
                state.hub.deliver_messages(messages, &mentions, last);
            }
            Event::MessageChanged { at, room, frame } => {
                state.hub.to_room(room, &Frame::from_json(frame), None);
                state.hub.deliver_messages(Vec::new(), &[], at);
            }
            Event::MemberRemoved {
                at,
                room,
                user,
                frame,
            } => {
                state.hub.to_room(room, &Frame::from_json(frame), None);
                state.hub.member_removed(room, user);
                state.hub.deliver_messages(Vec::new(), &[], at);
            }
            other => apply(state, false, other),
        }
    }
}

/// Reads the missing positions before the first waiting envelope from the database.
async fn fill_gap(state: &Receiver, log: &mut Log) {
    if let Some(upto) = log.first_waiting().map(|first| first - 1) {
        fill_upto(state, log, upto).await;
    }
}

/// Delivers the stored messages of positions `log.next..=upto` from the database, then whatever
/// was waiting behind them.
async fn fill_upto(state: &Receiver, log: &mut Log, upto: MessageId) {
    // A chunk at a time: a long gap (a bulk import, a long bus outage) never sits in memory whole.
    while log.next <= upto {
        let from = log.next;
        let to = upto.min(from + FILL_CHUNK - 1);
        let read = async {
            let messages = state.store.messages_between(from, to).await?;
            let changes = state.store.changes_between(from, to).await?;
            Ok::<_, StoreError>((messages, changes))
        };
        let (found, changes) = match read.await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "could not read missing log positions; will retry");
                break;
            }
        };
        METRICS.bus_positions_filled.inc_by((to - from + 1) as u64);
        tracing::info!(
            from,
            upto = to,
            messages = found.len(),
            changes = changes.len(),
            "log positions read from the database"
        );
        if ((found.len() + changes.len()) as i64) < to - from + 1 {
            // Positions without a message: failed batches, or a removal whose event was lost.
            // The membership cache is read again so that a lost removal cannot linger.
            reload_memberships(state).await;
        }
        let mentions = Mention::of(&found);
        let messages: Vec<LiveMessage> = found.iter().map(|m| m.to_live()).collect();
        let changes = changes.iter().map(Event::message_changed).collect();
        let ready = log.filled(to, messages, mentions, changes);
        apply_log(state, ready);
    }
}

/// After the bus lost events: no cached session is trusted, the sockets of sessions ended
/// meanwhile close, and the membership cache is read again.
async fn resync(state: &Receiver) {
    state.sessions.clear();
    let result = async {
        let sessions = state.hub.sessions();
        let open = state.store.open_sessions(&sessions).await?;
        for ended in sessions.iter().filter(|s| !open.contains(s)) {
            state.hub.close_session(*ended);
        }
        Ok::<_, StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not check sessions after a bus interruption");
    }
    reload_memberships(state).await;
}

async fn reload_memberships(state: &Receiver) {
    let users = state.hub.online_users();
    match state.store.rooms_of_users(&users).await {
        Ok(memberships) => state.hub.replace_rooms(&users, &memberships),
        Err(e) => tracing::warn!(error = %e, "could not read memberships again"),
    }
}

/// The log as this instance has applied it: the next position due, and what arrived early.
struct Log {
    next: MessageId,
    waiting: BTreeMap<MessageId, (MessageId, Event)>,
    /// Since when something has been waiting for an earlier position.
    gap_since: Option<Instant>,
}

impl Log {
    fn new(next: MessageId) -> Log {
        Log {
            next,
            waiting: BTreeMap::new(),
            gap_since: None,
        }
    }

    /// An event settling positions `first..=last`: the events now in order (this one, and any
    /// waiting behind it), or none if it must wait. Positions already applied are dropped.
    fn offer(&mut self, first: MessageId, last: MessageId, event: Event) -> Vec<Event> {
        if last < self.next {
            return Vec::new(); // already read from the database
        }
        self.waiting.insert(first, (last, event));
        self.drain()
    }

    /// Positions up to `upto` were read from the database: these are their messages and their
    /// changes (`Event::MessageChanged`, in position order), delivered in log order.
    fn filled(
        &mut self,
        upto: MessageId,
        messages: Vec<LiveMessage>,
        mentions: Vec<Mention>,
        changes: Vec<Event>,
    ) -> Vec<Event> {
        let mut ready = Vec::new();
        let mut messages = messages.into_iter().peekable();
        for change in changes {
            let Some((at, _)) = change.log_range() else {
                continue;
            };
            if at < self.next {
                continue;
            }
            let before: Vec<LiveMessage> =
                std::iter::from_fn(|| messages.next_if(|m| m.message_id < at)).collect();
            ready.push(Event::Messages {
                first: self.next,
                last: at - 1,
                messages: before,
                mentions: mentions.clone(),
            });
            ready.push(change);
            self.next = at + 1;
        }
        let rest: Vec<LiveMessage> = messages.collect();
        if !rest.is_empty() || upto >= self.next {
            ready.push(Event::Messages {
                first: self.next,
                last: upto,
                messages: rest,
                mentions,
            });
        }
        self.next = self.next.max(upto + 1);
        ready.extend(self.drain());
        ready
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut ready = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (_, (last, event)) = entry.remove_entry();
            if last < self.next {
                continue;
            }
            ready.push(without_before(event, self.next));
            self.next = last + 1;
        }
        self.gap_since = match (self.waiting.is_empty(), self.gap_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        ready
    }

    fn first_waiting(&self) -> Option<MessageId> {
        self.waiting.keys().next().copied()
    }

    fn gap_overdue(&self) -> bool {
        self.gap_since
            .is_some_and(|since| since.elapsed() >= GAP_WAIT)
    }
}

/// An event's messages from `next` on (those before were read from the database already).
fn without_before(event: Event, next: MessageId) -> Event {
    match event {
        Event::Messages {
            first,
            last,
            mut messages,
            mentions,
        } => {
            messages.retain(|m| m.message_id >= next);
            Event::Messages {
                first: first.max(next),
                last,
                messages,
                mentions,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(first: MessageId, last: MessageId) -> Event {
        Event::Messages {
            first,
            last,
            messages: (first..=last).map(live).collect(),
            mentions: Vec::new(),
        }
    }

    fn live(id: MessageId) -> LiveMessage {
        LiveMessage {
            room_id: 1,
            message_id: id,
            sender_id: Some(1),
            sender_username: None,
            sender_full_name: None,
            content: format!("m{id}"),
            created_at: chrono::Utc::now().into(),
            client_id: None,
            reply_to: None,
            edited_at: None,
            deleted: false,
            mention: false,
            attachments: Vec::new(),
            reactions: Vec::new(),
            thread_root: None,
            thread: None,
        }
    }

    fn ids(events: &[Event]) -> Vec<MessageId> {
        events
            .iter()
            .flat_map(|e| match e {
                Event::Messages { messages, .. } => messages.iter().map(|m| m.message_id).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_later_envelope_waits_for_the_earlier_one() {
        let mut log = Log::new(1);
        assert!(log.offer(4, 5, messages(4, 5)).is_empty());
        assert_eq!(log.first_waiting(), Some(4));
        let ready = log.offer(1, 3, messages(1, 3));
        assert_eq!(ids(&ready), [1, 2, 3, 4, 5]);
        assert_eq!(log.next, 6);
        assert!(!log.gap_overdue());
    }

    #[test]
    fn positions_read_from_the_database_are_not_delivered_again() {
        let mut log = Log::new(1);
        assert!(log.offer(6, 6, messages(6, 6)).is_empty());
        // 1..=5 were lost on the bus and read from the database.
        let ready = log.filled(5, (1..=5).map(live).collect(), Vec::new(), Vec::new());
        assert_eq!(ids(&ready), [1, 2, 3, 4, 5, 6]);
        // The lost envelope turns up late: nothing of it is delivered twice.
        assert!(log.offer(1, 5, messages(1, 5)).is_empty());
        // The tail check read part of a batch whose envelope then arrives: only the rest.
        let ready = log.filled(8, (7..=8).map(live).collect(), Vec::new(), Vec::new());
        assert_eq!(ids(&ready), [7, 8]);
        assert_eq!(ids(&log.offer(7, 10, messages(7, 10))), [9, 10]);
        assert_eq!(log.next, 11);
    }

    #[test]
    fn edits_read_from_the_database_keep_their_place_among_the_messages() {
        let mut log = Log::new(1);
        let edit = Event::MessageChanged {
            at: 3,
            room: 1,
            frame: "{}".into(),
        };
        let ready = log.filled(
            5,
            vec![live(1), live(2), live(4), live(5)],
            Vec::new(),
            vec![edit],
        );
        let order: Vec<String> = ready
            .iter()
            .map(|e| match e {
                Event::Messages { messages, .. } => format!(
                    "m{:?}",
                    messages.iter().map(|m| m.message_id).collect::<Vec<_>>()
                ),
                Event::MessageChanged { at, .. } => format!("c{at}"),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(order, ["m[1, 2]", "c3", "m[4, 5]"]);
        assert_eq!(log.next, 6);
    }
}
