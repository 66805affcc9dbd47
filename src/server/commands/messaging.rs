//! The commands of messaging: what happens when someone sends, edits, deletes, searches, reads,
//! syncs, types, comes online or changes a room's membership, whichever door it came through (REST
//! or WebSocket): the database first, then live events for every instance on the bus (`cluster`).
//! Stored messages themselves are published by the message writer (`delivery::writer`), in log
//! order; `Messaging` holds exactly what these commands use.

use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use uuid::Uuid;

use crate::proto::{
    Attachment, FieldError, MessageId, Presence, RoomId, SearchReply, ServerFrame, SyncReply,
    UserId,
};
use crate::server::auth::session_cache::SessionCache;
use crate::server::cluster::event::frame_json;
use crate::server::cluster::{Event, Outgoing};
use crate::server::commands::ApiError;
use crate::server::commands::mentions::mentioned_names;
use crate::server::delivery::hub::{ConnId, Hub};
use crate::server::delivery::writer::MessageWriter;
use crate::server::metrics::{METRICS, Throttle};
use crate::server::store::{
    AttachRefusal, ChangeOutcome, InsertOutcome, MessageSearch, NewMessage, ReadPointer, RoomKind,
    Store, StoreError, StoredChange,
};

/// A user's typing in a room is forwarded at most this often (the REPL sends one per 3 s).
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// The largest page `sync` returns.
pub const MAX_SYNC_PAGE: i64 = 500;
/// How long a sync waits for this instance's deliveries to catch up with the database.
const SYNC_PATIENCE: Duration = Duration::from_millis(250);

/// The commands REST and WebSocket share, with exactly what they depend on (`AppState::messaging`
/// lends them): the store, the message writer, live fan-out, the session cache and the send rate.
pub struct Messaging<'a> {
    pub store: &'a Store,
    pub writer: &'a MessageWriter,
    pub hub: &'a Hub,
    pub sessions: &'a SessionCache,
    pub files: &'a crate::server::files::Files,
    pub send_limiter: Option<&'a SendLimiter>,
    /// Per-user search rate.
    pub search_limiter: Option<&'a SendLimiter>,
    /// How long one search may run in the database.
    pub search_timeout: Duration,
    /// This instance's events, to every instance.
    pub outgoing: &'a Outgoing,
    /// This instance, for presence.
    pub instance: Uuid,
}

/// Per-user send (or search) rate: a token bucket per user.
pub type SendLimiter = governor::DefaultKeyedRateLimiter<UserId>;

/// One more of `what` for `user` under `limiter` (none: no limit). Err carries how long to wait.
fn within_rate(
    limiter: Option<&SendLimiter>,
    user: UserId,
    throttle: Throttle,
    what: &'static str,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(&user).map_err(|not_until| {
        METRICS.throttled(throttle);
        let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::TooManyRequests {
            what,
            retry_after_ms: wait.as_millis().max(1) as u64,
        }
    })
}

impl Messaging<'_> {
    /// Per-user send rate (REST and WebSocket alike), for messages, edits and deletions together.
    /// Err carries how long to wait.
    pub fn check_send_rate(&self, user: UserId) -> Result<(), ApiError> {
        within_rate(
            self.send_limiter,
            user,
            Throttle::Messages,
            "Too many messages",
        )
    }

    /// Stores a message and delivers it to every connection of every online member of the room
    /// on every instance, in id order per room. A repeated `client_id` returns the first message and delivers nothing.
    /// A reply must answer a message of the same room; the members it names (`@name`) are
    /// looked up here, one query and only when it names anyone.
    pub async fn send(&self, mut msg: NewMessage) -> Result<InsertOutcome, ApiError> {
        self.check_send_rate(msg.sender_id)?;
        if let Some(answered) = msg.reply_to {
            // A reply joins the thread of what it answers.
            msg.thread_root = self.store.thread_of(msg.room_id, answered).await?;
            if msg.thread_root.is_none() {
                return Err(ApiError::NotFound(
                    "The message you reply to is not in this room".into(),
                ));
            }
        }
        msg.mentions = self.named_members(msg.room_id, &msg.content).await?;
        if let Some(root) = msg.thread_root {
            // A reply reaches those who follow its thread (who wrote in it) as a mention does.
            let following = self
                .store
                .thread_followers(msg.room_id, root, msg.sender_id)
                .await?;
            msg.mentions.extend(following);
            msg.mentions.sort_unstable();
            msg.mentions.dedup();
        }
        if !msg.files.is_empty() {
            msg.attachments = self.attachable(&msg).await?;
        }
        Ok(self.writer.send(msg).await?)
    }

    /// The files a message names, as it will carry them: the sender's own uploads, not sent yet.
    async fn attachable(&self, msg: &NewMessage) -> Result<Vec<Attachment>, ApiError> {
        match self
            .store
            .files_to_attach(msg.sender_id, &msg.files, msg.client_id.as_deref())
            .await?
        {
            Ok(found) => Ok(found),
            Err(AttachRefusal::NotFound(id)) => Err(ApiError::NotFound(format!(
                "File {id} not found (upload it first: POST /files)"
            ))),
            Err(AttachRefusal::Attached(id)) => Err(ApiError::Conflict(format!(
                "File {id} was sent already; upload it again to send it again"
            ))),
        }
    }

    async fn named_members(&self, room: RoomId, content: &str) -> Result<Vec<UserId>, ApiError> {
        let names = mentioned_names(content);
        Ok(self.store.members_named(room, &names).await?)
    }

    /// The author changes a message's text: every member connection hears it, on every instance,
    /// in log order with the messages around it.
    pub async fn edit(
        &self,
        user: UserId,
        message: MessageId,
        content: &str,
    ) -> Result<StoredChange, ApiError> {
        // A change is delivered to every member like a message, and costs like one.
        self.check_send_rate(user)?;
        let names = mentioned_names(content);
        let outcome = self
            .store
            .edit_message(user, message, content, &names)
            .await?;
        self.changed(outcome, "Only its author can edit a message")
    }

    /// The author, or the group's admin, deletes a message: it becomes a tombstone everywhere.
    pub async fn delete(&self, user: UserId, message: MessageId) -> Result<StoredChange, ApiError> {
        self.check_send_rate(user)?;
        let outcome = self.store.delete_message(user, message).await?;
        // Its files are gone from the database; their bytes go now, not at the next round.
        self.files.sweep_soon();
        self.changed(
            outcome,
            "Only its author or the group's admin can delete a message",
        )
    }

    /// A member adds (or takes back) a reaction: every member connection hears it, on every
    /// instance, in log order. None when it was so already (nothing is logged or sent). It costs
    /// like a message but is none: it raises no unread count.
    pub async fn react(
        &self,
        (user, username): (UserId, &str),
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<Option<StoredChange>, ApiError> {
        self.check_send_rate(user)?;
        let outcome = self
            .store
            .react((user, username), message, emoji, add)
            .await?;
        if matches!(outcome, ChangeOutcome::Unchanged) {
            return Ok(None);
        }
        self.changed(outcome, "Only members react").map(Some)
    }

    fn changed(&self, outcome: ChangeOutcome, not_allowed: &str) -> Result<StoredChange, ApiError> {
        let change = match outcome {
            ChangeOutcome::Changed(change) => change,
            ChangeOutcome::Unchanged => {
                return Err(ApiError::Conflict("Nothing to change".into()));
            }
            ChangeOutcome::NotFound => return Err(ApiError::NotFound("Message not found".into())),
            ChangeOutcome::NotAllowed => return Err(ApiError::Forbidden(not_allowed.into())),
            ChangeOutcome::Gone => {
                return Err(ApiError::Conflict("The message was deleted".into()));
            }
        };
        self.outgoing.send(Event::message_changed(&change));
        Ok(change)
    }

    /// Messages of `user`'s rooms that match, newest first.
    pub async fn search(
        &self,
        user: UserId,
        query: &MessageSearch,
    ) -> Result<SearchReply, ApiError> {
        within_rate(
            self.search_limiter,
            user,
            Throttle::Searches,
            "Too many searches",
        )?;
        let found = self
            .store
            .search(user, query, self.search_timeout)
            .await
            .map_err(|e| match e {
                StoreError::Cancelled => {
                    ApiError::Busy("The search took too long: add words, or search one room (--in)")
                }
                other => other.into(),
            })?;
        let next_before = (found.len() as i64 >= query.limit)
            .then(|| found.last().map(|m| m.id))
            .flatten();
        Ok(SearchReply {
            results: found.iter().map(|m| m.to_live_for(user)).collect(),
            next_before,
        })
    }

    /// Makes sure both people of a (possibly new) direct room receive its messages live.
    pub fn direct_room_ready(&self, room: RoomId, a: UserId, b: UserId) {
        self.hub.members_added(room, RoomKind::Direct, &[a, b]);
        self.outgoing.send(Event::MembersAdded {
            room,
            kind: RoomKind::Direct,
            users: vec![a, b],
        });
    }

    /// A member read `room` up to `message_id` (None: its newest message), over REST or a `read`
    /// frame; the membership check is the caller's. The pointer and the reader's unread counts,
    /// or None if the reader is no longer a member.
    pub async fn read(
        &self,
        reader: UserId,
        reader_name: &str,
        room: RoomId,
        message_id: Option<MessageId>,
    ) -> Result<Option<ReadPointer>, ApiError> {
        let upto = self
            .store
            .message_in_room(room, message_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("Message not found in this room".into()))?;
        self.mark_read(reader, reader_name, room, upto).await
    }

    /// Moves `reader`'s read pointer in `room` forward to `upto` and tells the room. Returns the
    /// pointer and the reader's unread count.
    pub async fn mark_read(
        &self,
        reader: UserId,
        reader_name: &str,
        room: RoomId,
        upto: MessageId,
    ) -> Result<Option<ReadPointer>, ApiError> {
        let Some(read) = self.store.mark_read(room, reader, upto).await? else {
            return Ok(None);
        };
        let (pointer, unread) = (read.last_read, read.unread);
        let receipt = |unread_count| ServerFrame::Read {
            room_id: room,
            user_id: reader,
            username: reader_name.to_string(),
            last_read_message_id: pointer,
            unread_count,
        };
        self.outgoing.send(Event::ToRoom {
            room,
            frame: frame_json(&receipt(None)),
            except_user: Some(reader),
        });
        self.outgoing.send(Event::ToUser {
            user: reader,
            frame: frame_json(&receipt(Some(unread))),
        });
        Ok(Some(read))
    }

    /// Messages of the user's rooms after the page's `since`, in id order, at most its `limit`.
    pub async fn sync(&self, user: UserId, page: SyncPage) -> Result<SyncReply, ApiError> {
        let SyncPage { since, limit } = page;
        // Ids are handed out in commit order (`Store::begin_log_batch`): every id up to the newest
        // visible one is settled, so the query, run after, sees all of them that are stored.
        let settled = self.store.max_message_id().await?;
        // What the page shows "as it is now" (a message deleted since) must be behind its cursor,
        // or the change comes again: the cursor stops at what this instance has delivered, so
        // wait for that to catch up (the bus brings a change within a millisecond or two; a gap
        // is filled from the database after 20 ms).
        self.hub.delivered(settled, SYNC_PATIENCE).await;
        let (messages, changes) = tokio::try_join!(
            self.store.messages_since(user, since, limit + 1),
            self.store.changes_since(user, since, limit + 1),
        )?;
        // One log: messages and changes by position, the first `limit` of them.
        let (mut messages, mut changes) = (
            messages.into_iter().peekable(),
            changes.into_iter().peekable(),
        );
        let (mut page, mut changed) = (Vec::new(), Vec::new());
        let mut last = since;
        while page.len() + changed.len() < limit as usize {
            let message_first = match (messages.peek(), changes.peek()) {
                (None, None) => break,
                (Some(m), Some(c)) => m.id < c.position,
                (m, _) => m.is_some(),
            };
            if message_first {
                let m = messages.next().expect("peeked");
                last = m.id;
                page.push(m.to_live_for(user));
            } else {
                let c = changes.next().expect("peeked");
                last = c.position;
                changed.push(c.to_change());
            }
        }
        // Each list was read one past the page: anything left is more.
        let has_more = messages.peek().is_some() || changes.peek().is_some();
        // Not beyond what this instance has delivered live: a client's live frames still to come
        // must stay above its cursor (a client skips ids at or below it as seen).
        let next_since = if has_more {
            last
        } else {
            last.max(settled.min(self.hub.watermark())).max(since)
        };
        Ok(SyncReply {
            messages: page,
            changes: changed,
            has_more,
            next_since,
        })
    }

    /// Users joined a group (created with them, or added): they start receiving at once, and are
    /// told.
    pub fn members_added(
        &self,
        room: RoomId,
        name: &str,
        added: &[(UserId, String)],
        announce: Announce,
    ) {
        let users: Vec<UserId> = added.iter().map(|(id, _)| *id).collect();
        // Here at once (a frame right after the reply must find the room), everywhere soon.
        self.hub.members_added(room, RoomKind::Group, &users);
        self.outgoing.send(Event::MembersAdded {
            room,
            kind: RoomKind::Group,
            users,
        });
        for (id, username) in added {
            let frame = frame_json(&ServerFrame::MemberAdded {
                room_id: room,
                room_type: RoomKind::Group,
                name: Some(name.to_string()),
                user_id: *id,
                username: username.clone(),
            });
            self.outgoing.send(match announce {
                Announce::EachNewMember => Event::ToUser { user: *id, frame },
                Announce::WholeRoom => Event::ToRoom {
                    room,
                    frame,
                    except_user: None,
                },
            });
        }
    }

    /// A frame for every member of a room, on every instance.
    pub fn to_room(&self, room: RoomId, frame: &ServerFrame) {
        self.outgoing.send(Event::ToRoom {
            room,
            frame: frame_json(frame),
            except_user: None,
        });
    }

    /// A member left (`by` None) or was removed by `by` at log position `at`: the room and the
    /// member hear of it, then nothing more of the room reaches the member, on any instance.
    /// Messages committed before the removal still reach them; none committed after it does.
    pub fn member_removed(
        &self,
        room: RoomId,
        (user, username): (UserId, &str),
        by: Option<(UserId, &str)>,
        at: MessageId,
    ) {
        let frame = frame_json(&ServerFrame::MemberRemoved {
            room_id: room,
            user_id: user,
            username: username.to_string(),
            removed_by_id: by.map(|(id, _)| id),
            removed_by: by.map(|(_, name)| name.to_string()),
        });
        self.outgoing.send(Event::MemberRemoved {
            at,
            room,
            user,
            frame,
        });
    }

    /// The room's kind if `user` (online here) is a member of it: the hub's cache of an online
    /// user's rooms, which every membership change updates, so live frames cost no query.
    pub fn live_membership(&self, user: UserId, room: RoomId) -> Option<RoomKind> {
        self.hub.membership(user, room)
    }

    /// Fills the membership cache for a user who just came online, retrying if membership changed
    /// while the list was being read.
    pub async fn load_rooms(&self, user: UserId, mut generation: u64) -> Result<(), ApiError> {
        for _ in 0..5 {
            let rooms = self.store.rooms_of(user).await?;
            if self.hub.set_rooms(user, &rooms, generation) {
                return Ok(());
            }
            generation = self.hub.generation(user);
        }
        Err(ApiError::unavailable("membership kept changing"))
    }

    /// A user's connection is ready here. If no instance held a socket of theirs, the people who
    /// share a room with them hear they are online.
    pub async fn came_online(&self, user: UserId, username: &str) -> Result<(), ApiError> {
        if self.store.presence_added(user, self.instance).await? {
            self.tell_presence(user, username, self.hub.rooms_of(user), Presence::Online);
        }
        Ok(())
    }

    /// A connection ended: the rooms it was looking at hear it left, and if no instance holds a
    /// socket of the user any more, their peers hear they are offline.
    pub async fn connection_closed(
        &self,
        conn: ConnId,
        user: UserId,
        username: &str,
    ) -> Result<(), ApiError> {
        let rooms = self.hub.rooms_of(user);
        let (viewing, last) = self.hub.unregister(conn);
        for room in viewing {
            self.tell_viewers(conn, room, user, username, false);
        }
        if last && self.store.presence_removed(user, self.instance).await? {
            if self.hub.is_online(user) {
                // A new socket of theirs opened here meanwhile and may have been recorded before
                // this removal: record it again rather than show them offline.
                self.store.presence_added(user, self.instance).await?;
                return Ok(());
            }
            self.tell_presence(user, username, rooms, Presence::Offline);
        }
        Ok(())
    }

    /// `user`'s peers in `rooms`, on every instance, hear their new status.
    pub fn tell_presence(
        &self,
        user: UserId,
        username: &str,
        rooms: Vec<RoomId>,
        status: Presence,
    ) {
        self.outgoing
            .send(Event::presence(user, username, rooms, status));
    }

    /// A connection started (`looking`) or stopped looking at a room; the room's other viewers
    /// hear of it only when that changed something.
    pub fn set_viewing(
        &self,
        conn: ConnId,
        room: RoomId,
        user: UserId,
        username: &str,
        looking: bool,
    ) {
        let changed = if looking {
            self.hub.start_viewing(conn, room)
        } else {
            self.hub.stop_viewing(conn, room)
        };
        if changed {
            self.tell_viewers(conn, room, user, username, looking);
        }
    }

    fn tell_viewers(&self, conn: ConnId, room: RoomId, user: UserId, username: &str, joined: bool) {
        let (room_id, user_id, username) = (room, user, username.to_string());
        let frame = if joined {
            ServerFrame::UserJoined {
                room_id,
                user_id,
                username,
            }
        } else {
            ServerFrame::UserLeft {
                room_id,
                user_id,
                username,
            }
        };
        self.outgoing.send(Event::ToViewers {
            room,
            frame: frame_json(&frame),
            except: Some(conn),
        });
    }

    /// A member is typing in a room: the other members hear it, at most once per `TYPING_EVERY`
    /// however many frames the client sends (one per keystroke, from any number of sockets).
    pub fn typing(&self, user: UserId, username: &str, room: RoomId) {
        if !self.hub.typing_due(user, room, TYPING_EVERY) {
            return;
        }
        let frame = frame_json(&ServerFrame::UserTyping {
            room_id: room,
            user_id: user,
            username: username.to_string(),
        });
        self.outgoing.send(Event::ToRoom {
            room,
            frame,
            except_user: Some(user),
        });
    }

    /// A session ended (logout): this instance stops trusting it at once, and its sockets close
    /// on every instance.
    pub fn session_ended(&self, session: Uuid) {
        self.sessions.forget_session(session);
        self.outgoing.send(Event::SessionEnded { session });
    }

    /// Every session of a user ended (logout-all, password change): all their sockets close, on
    /// every instance.
    pub fn user_sessions_ended(&self, user: UserId) {
        self.sessions.forget_user(user);
        self.outgoing.send(Event::UserSessionsEnded { user });
    }

    /// A user's profile changed: every instance reads it again (a message's sender name comes
    /// from the cached session).
    pub fn profile_changed(&self, user: UserId) {
        self.sessions.forget_user(user);
        self.outgoing.send(Event::ProfileChanged { user });
    }
}

/// A page of `sync` as asked for over REST (`?since=&limit=`) or WebSocket (a `sync` frame): the
/// same rules and default for both.
#[derive(Debug, Clone, Copy)]
pub struct SyncPage {
    since: MessageId,
    limit: i64,
}

/// Messages in a sync page when the client does not say.
pub const DEFAULT_SYNC_PAGE: i64 = 100;

impl SyncPage {
    /// `since` 0 or more (required), `limit` 1 to `MAX_SYNC_PAGE`.
    pub fn new(since: Option<MessageId>, limit: Option<i64>) -> Result<SyncPage, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, msg: String| {
            errors.push(FieldError {
                kind: "value_error".into(),
                loc: vec!["query".into(), field.into()],
                msg,
                input: serde_json::Value::Null,
            })
        };
        match since {
            None => bad("since", "Field required".into()),
            Some(s) if s < 0 => bad("since", "Input should be greater than or equal to 0".into()),
            _ => {}
        }
        if limit.is_some_and(|l| !(1..=MAX_SYNC_PAGE).contains(&l)) {
            bad(
                "limit",
                format!("Input should be between 1 and {MAX_SYNC_PAGE}"),
            );
        }
        match (since, errors.is_empty()) {
            (Some(since), true) => Ok(SyncPage {
                since,
                limit: limit.unwrap_or(DEFAULT_SYNC_PAGE),
            }),
            _ => Err(errors),
        }
    }
}

/// A send whose `client_id` its sender already used in another room (a retry goes to the same
/// room).
pub fn client_id_reused() -> ApiError {
    ApiError::Conflict("client_id was already used for a message in another room".into())
}

/// Who hears that users joined a group.
pub enum Announce {
    /// Each new member only (a new group: everybody in it is new).
    EachNewMember,
    /// Every member (people added to an existing group).
    WholeRoom,
}
