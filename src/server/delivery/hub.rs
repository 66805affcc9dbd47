//! Live fan-out: who is connected, which rooms each online user belongs to (a cache kept current by
//! every membership change, so no message re-reads membership), who is looking at which room, and
//! the delivery of one serialised frame to many bounded per-connection queues.
//!
//! What it delivers comes from the bus (`cluster::receiver`), whichever instance produced it; the
//! watermark is the message log position up to which this instance has delivered everything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::proto::CloseReason;
use crate::proto::{LiveMessage, MessageId, RoomId, ServerFrame, UserId};
use crate::server::cluster::event::Mention;
use crate::server::delivery::outbox::{Full, Outbox};
use crate::server::metrics::METRICS;
use crate::server::store::RoomKind;

pub use crate::server::cluster::event::ConnId;

/// A frame serialised once, shared by every recipient (cloning only bumps a reference count).
#[derive(Clone)]
pub struct Frame(Message);

impl Frame {
    pub fn new(frame: &ServerFrame) -> Frame {
        Frame(Message::text(
            serde_json::to_string(frame).expect("frames always serialise"),
        ))
    }

    /// A frame another instance serialised.
    pub fn from_json(json: String) -> Frame {
        Frame(Message::text(json))
    }

    pub fn message(&self) -> Message {
        self.0.clone()
    }
}

struct Conn {
    user: UserId,
    session: Uuid,
    outbox: Arc<Outbox>,
    kill: Option<oneshot::Sender<CloseReason>>,
    viewing: HashSet<RoomId>,
}

impl Conn {
    /// Whether a push reached the queue. A full queue means a reader that cannot keep up: it is
    /// closed (it recovers with `sync`), and nobody else waits for it.
    fn queued(&mut self, pushed: Result<(), Full>) -> bool {
        if pushed.is_err()
            && let Some(kill) = self.kill.take()
        {
            METRICS.slow_reader_closes.inc();
            let _ = kill.send(CloseReason::TOO_SLOW);
        }
        pushed.is_ok()
    }
}

struct OnlineUser {
    conns: Vec<ConnId>,
    rooms: HashMap<RoomId, RoomKind>,
    /// When this user's typing was last forwarded, per room.
    typing: HashMap<RoomId, std::time::Instant>,
    /// Bumped on every membership change, so a room list loaded concurrently can be detected stale.
    generation: u64,
}

#[derive(Default)]
struct RoomEntry {
    online: HashSet<UserId>,
    viewers: HashMap<ConnId, UserId>,
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, Conn>,
    users: HashMap<UserId, OnlineUser>,
    rooms: HashMap<RoomId, RoomEntry>,
}

/// A new connection's ends: its outgoing queue and the signal that the hub has closed it.
pub struct Registration {
    pub conn: ConnId,
    pub outgoing: Arc<Outbox>,
    pub closed: oneshot::Receiver<CloseReason>,
    /// This is the user's first live connection: they just came online.
    pub first: bool,
    pub generation: u64,
}

pub struct Hub {
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Every message up to this log position has been delivered (see `deliver_messages`).
    delivered_upto: AtomicI64,
    /// Told each time `delivered_upto` moves, for `delivered`.
    advanced: tokio::sync::Notify,
    queue_capacity: usize,
}

impl Hub {
    pub fn new(queue_capacity: usize, delivered_upto: MessageId) -> Hub {
        Hub {
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            delivered_upto: AtomicI64::new(delivered_upto),
            advanced: tokio::sync::Notify::new(),
            queue_capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- connections -----

    /// A new connection of `user`, unless they hold `max_sockets` already.
    pub fn register(
        &self,
        user: UserId,
        session: Uuid,
        max_sockets: usize,
    ) -> Result<Registration, CloseReason> {
        let mut st = self.lock();
        if st
            .users
            .get(&user)
            .is_some_and(|u| u.conns.len() >= max_sockets)
        {
            return Err(CloseReason::TOO_MANY_SOCKETS);
        }
        let conn = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outgoing = Arc::new(Outbox::new(self.queue_capacity));
        let (kill, closed) = oneshot::channel();
        st.conns.insert(
            conn,
            Conn {
                user,
                session,
                outbox: outgoing.clone(),
                kill: Some(kill),
                viewing: HashSet::new(),
            },
        );
        let entry = st.users.entry(user).or_insert_with(|| OnlineUser {
            conns: Vec::new(),
            rooms: HashMap::new(),
            typing: HashMap::new(),
            generation: 0,
        });
        entry.conns.push(conn);
        let first = entry.conns.len() == 1;
        let generation = entry.generation;
        Ok(Registration {
            conn,
            outgoing,
            closed,
            first,
            generation,
        })
    }

    /// Whether `user`'s typing in `room` should be forwarded now: at most once per `every`, however
    /// many frames they send (and from however many sockets).
    pub fn typing_due(&self, user: UserId, room: RoomId, every: std::time::Duration) -> bool {
        let mut st = self.lock();
        let Some(u) = st.users.get_mut(&user) else {
            return false;
        };
        let now = std::time::Instant::now();
        match u.typing.get(&room) {
            Some(last) if now.duration_since(*last) < every => false,
            _ => {
                u.typing.insert(room, now);
                true
            }
        }
    }

    /// Installs the user's rooms as loaded from the database, unless membership changed meanwhile
    /// (then the caller loads again). True when installed.
    pub fn set_rooms(&self, user: UserId, rooms: &[(RoomId, RoomKind)], generation: u64) -> bool {
        let mut st = self.lock();
        let Some(u) = st.users.get_mut(&user) else {
            return true; // went offline meanwhile: nothing to keep current
        };
        if u.generation != generation {
            return false;
        }
        u.rooms = rooms.iter().copied().collect();
        for (room, _) in rooms {
            st.rooms.entry(*room).or_default().online.insert(user);
        }
        true
    }

    /// The user's membership generation (see `set_rooms`).
    pub fn generation(&self, user: UserId) -> u64 {
        self.lock().users.get(&user).map_or(0, |u| u.generation)
    }

    /// Removes a connection; returns the rooms it was viewing and whether it was the user's last.
    pub fn unregister(&self, conn: ConnId) -> (Vec<RoomId>, bool) {
        let mut st = self.lock();
        let Some(c) = st.conns.remove(&conn) else {
            return (Vec::new(), false);
        };
        let viewing: Vec<RoomId> = c.viewing.into_iter().collect();
        for room in &viewing {
            if let Some(r) = st.rooms.get_mut(room) {
                r.viewers.remove(&conn);
            }
        }
        let mut last = false;
        if let Some(u) = st.users.get_mut(&c.user) {
            u.conns.retain(|id| *id != conn);
            if u.conns.is_empty() {
                last = true;
                let rooms: Vec<RoomId> = u.rooms.keys().copied().collect();
                st.users.remove(&c.user);
                for room in rooms {
                    if let Some(r) = st.rooms.get_mut(&room) {
                        r.online.remove(&c.user);
                        if r.online.is_empty() && r.viewers.is_empty() {
                            st.rooms.remove(&room);
                        }
                    }
                }
            }
        }
        (viewing, last)
    }

    fn close_where(&self, reason: CloseReason, pred: impl Fn(&Conn) -> bool) -> usize {
        let mut st = self.lock();
        let mut n = 0;
        for c in st.conns.values_mut().filter(|c| pred(c)) {
            if let Some(kill) = c.kill.take() {
                let _ = kill.send(reason);
                n += 1;
            }
        }
        n
    }

    /// Closes the sockets of one session (logout). Returns how many.
    pub fn close_session(&self, session: Uuid) -> usize {
        self.close_where(CloseReason::SESSION_ENDED, |c| c.session == session)
    }

    /// Closes every socket of a user (logout-all, password change).
    pub fn close_user(&self, user: UserId) -> usize {
        self.close_where(CloseReason::SESSION_ENDED, |c| c.user == user)
    }

    pub fn close_all(&self, reason: CloseReason) -> usize {
        self.close_where(reason, |_| true)
    }

    pub fn online_users(&self) -> Vec<UserId> {
        let mut users: Vec<UserId> = self.lock().users.keys().copied().collect();
        users.sort_unstable();
        users
    }

    /// Whether `user` holds a connection here.
    pub fn is_online(&self, user: UserId) -> bool {
        self.lock().users.contains_key(&user)
    }

    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }

    // ----- membership cache -----

    /// The kind of `room` if `user` (online) is a member of it.
    pub fn membership(&self, user: UserId, room: RoomId) -> Option<RoomKind> {
        self.lock().users.get(&user)?.rooms.get(&room).copied()
    }

    /// Records that `users` are now members of `room`.
    pub fn members_added(&self, room: RoomId, kind: RoomKind, users: &[UserId]) {
        let mut st = self.lock();
        for user in users {
            if let Some(u) = st.users.get_mut(user)
                && u.rooms.insert(room, kind).is_none()
            {
                u.generation += 1;
                st.rooms.entry(room).or_default().online.insert(*user);
            }
        }
    }

    /// Records that `user` left `room`: from now on nothing of that room reaches them.
    pub fn member_removed(&self, room: RoomId, user: UserId) {
        let mut st = self.lock();
        let Some(u) = st.users.get_mut(&user) else {
            return;
        };
        u.generation += 1;
        u.rooms.remove(&room);
        u.typing.remove(&room);
        let conns = u.conns.clone();
        for conn in &conns {
            if let Some(c) = st.conns.get_mut(conn) {
                c.viewing.remove(&room);
            }
        }
        if let Some(r) = st.rooms.get_mut(&room) {
            r.online.remove(&user);
            for conn in &conns {
                r.viewers.remove(conn);
            }
        }
    }

    // ----- viewing (join_room / leave_room) -----

    /// Marks `conn` as looking at `room`; false if it already was.
    pub fn start_viewing(&self, conn: ConnId, room: RoomId) -> bool {
        let mut st = self.lock();
        let Some(c) = st.conns.get_mut(&conn) else {
            return false;
        };
        let user = c.user;
        if !c.viewing.insert(room) {
            return false;
        }
        st.rooms.entry(room).or_default().viewers.insert(conn, user);
        true
    }

    /// Stops `conn` looking at `room`; false if it was not.
    pub fn stop_viewing(&self, conn: ConnId, room: RoomId) -> bool {
        let mut st = self.lock();
        let Some(c) = st.conns.get_mut(&conn) else {
            return false;
        };
        if !c.viewing.remove(&room) {
            return false;
        }
        if let Some(r) = st.rooms.get_mut(&room) {
            r.viewers.remove(&conn);
        }
        true
    }

    // ----- delivery -----

    /// Queues `frame` on each listed connection.
    fn deliver(st: &mut State, conns: impl IntoIterator<Item = ConnId>, frame: &Frame) -> usize {
        let mut delivered = 0;
        for id in conns {
            let Some(c) = st.conns.get_mut(&id) else {
                continue;
            };
            if c.queued(c.outbox.push(frame.message())) {
                delivered += 1;
            }
        }
        delivered
    }

    fn conns_of_users<'a>(
        st: &'a State,
        users: impl IntoIterator<Item = &'a UserId> + 'a,
    ) -> Vec<ConnId> {
        users
            .into_iter()
            .filter_map(|u| st.users.get(u))
            .flat_map(|u| u.conns.iter().copied())
            .collect()
    }

    /// To every connection of every online member of `room`, optionally but one user.
    pub fn to_room(&self, room: RoomId, frame: &Frame, except_user: Option<UserId>) -> usize {
        let mut st = self.lock();
        let Some(r) = st.rooms.get(&room) else {
            return 0;
        };
        let users = r.online.iter().filter(|u| Some(**u) != except_user);
        let conns = Self::conns_of_users(&st, users);
        Self::deliver(&mut st, conns, frame)
    }

    /// To the connections looking at `room`, but `except_conn` (the one that changed).
    pub fn to_viewers(&self, room: RoomId, frame: &Frame, except_conn: Option<ConnId>) -> usize {
        let mut st = self.lock();
        let conns: Vec<ConnId> = match st.rooms.get(&room) {
            Some(r) => r
                .viewers
                .keys()
                .copied()
                .filter(|c| Some(*c) != except_conn)
                .collect(),
            None => return 0,
        };
        Self::deliver(&mut st, conns, frame)
    }

    pub fn to_user(&self, user: UserId, frame: &Frame) -> usize {
        let mut st = self.lock();
        let conns = Self::conns_of_users(&st, [user].iter());
        Self::deliver(&mut st, conns, frame)
    }

    pub fn to_users(&self, users: &[UserId], frame: &Frame) -> usize {
        let mut st = self.lock();
        let conns = Self::conns_of_users(&st, users.iter());
        Self::deliver(&mut st, conns, frame)
    }

    /// The rooms of an online user (for their presence to reach their peers on every instance).
    pub fn rooms_of(&self, user: UserId) -> Vec<RoomId> {
        self.lock()
            .users
            .get(&user)
            .map(|u| u.rooms.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Online users here who are members of any of `rooms`, but `user`.
    pub fn online_in_rooms(&self, rooms: &[RoomId], user: UserId) -> Vec<UserId> {
        let st = self.lock();
        let mut found: HashSet<UserId> = HashSet::new();
        for room in rooms {
            if let Some(r) = st.rooms.get(room) {
                found.extend(r.online.iter().copied().filter(|u| *u != user));
            }
        }
        found.into_iter().collect()
    }

    /// The session of every connection here.
    pub fn sessions(&self) -> Vec<Uuid> {
        let st = self.lock();
        let sessions: HashSet<Uuid> = st.conns.values().map(|c| c.session).collect();
        sessions.into_iter().collect()
    }

    /// Replaces the cached rooms of `users` with what the database says now (after the bus lost
    /// membership changes). A user not among them (online since the list was taken) keeps the
    /// rooms their own connection loaded.
    pub fn replace_rooms(&self, users: &[UserId], memberships: &[(UserId, RoomId, RoomKind)]) {
        let mut fresh: HashMap<UserId, HashMap<RoomId, RoomKind>> =
            users.iter().map(|u| (*u, HashMap::new())).collect();
        for (user, room, kind) in memberships {
            if let Some(rooms) = fresh.get_mut(user) {
                rooms.insert(*room, *kind);
            }
        }
        let mut st = self.lock();
        for (user, rooms) in fresh {
            let Some(u) = st.users.get_mut(&user) else {
                continue; // went offline meanwhile
            };
            let old = std::mem::replace(&mut u.rooms, rooms);
            u.generation += 1;
            let now: Vec<RoomId> = u.rooms.keys().copied().collect();
            for room in old.keys() {
                if let Some(r) = st.rooms.get_mut(room) {
                    r.online.remove(&user);
                }
            }
            for room in now {
                st.rooms.entry(room).or_default().online.insert(user);
            }
        }
    }

    // ----- the message log -----

    /// Delivers messages of the log, given in id order with nothing before them undelivered, each
    /// to its room's online members. Each frame's cursor is its own id: a client that has seen it
    /// has seen everything of its rooms up to it.
    /// A member a message names gets it marked `mention`.
    pub fn deliver_messages(
        &self,
        messages: Vec<LiveMessage>,
        mentions: &[Mention],
        delivered_upto: MessageId,
    ) -> usize {
        let mut st = self.lock();
        // Each connection's frames of the whole batch, queued together.
        let mut outgoing: HashMap<ConnId, Vec<Message>> = HashMap::new();
        for message in messages {
            let room = message.room_id;
            let sync_cursor = message.message_id;
            let named: &[UserId] = mentions
                .iter()
                .find(|m| m.message == sync_cursor)
                .map_or(&[], |m| &m.users);
            // Only a message that names someone costs a second frame.
            let marked = (!named.is_empty()).then(|| {
                let mut marked = message.clone();
                marked.mention = true;
                Frame::new(&ServerFrame::NewMessage {
                    message: marked,
                    sync_cursor,
                })
            });
            let frame = Frame::new(&ServerFrame::NewMessage {
                message,
                sync_cursor,
            });
            let Some(r) = st.rooms.get(&room) else {
                continue;
            };
            for user in &r.online {
                let frame = match &marked {
                    Some(marked) if named.contains(user) => marked,
                    _ => &frame,
                };
                for conn in st.users.get(user).into_iter().flat_map(|u| &u.conns) {
                    outgoing.entry(*conn).or_default().push(frame.message());
                }
            }
        }
        let mut delivered = 0;
        for (id, frames) in outgoing {
            let Some(c) = st.conns.get_mut(&id) else {
                continue;
            };
            let n = frames.len();
            if c.queued(c.outbox.push_all(frames)) {
                delivered += n;
            }
        }
        if self
            .delivered_upto
            .fetch_max(delivered_upto, Ordering::Relaxed)
            < delivered_upto
        {
            self.advanced.notify_waiters();
        }
        METRICS.messages_delivered.inc_by(delivered as u64);
        delivered
    }

    /// Every message up to here has been delivered to the connections online when it arrived: a
    /// client that has seen every live message up to now may resume from here with `sync`.
    pub fn watermark(&self) -> MessageId {
        self.delivered_upto.load(Ordering::Relaxed)
    }

    /// Waits until everything up to `position` has been delivered here, for at most `patience`;
    /// whether it has.
    pub async fn delivered(&self, position: MessageId, patience: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before the check, so that an advance between the two is not missed.
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            if self.watermark() >= position {
                return true;
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return self.watermark() >= position;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::new(&ServerFrame::Error {
            message: text.into(),
            retry_after_ms: None,
        })
    }

    #[tokio::test]
    async fn delivers_to_every_connection_of_online_members_only() {
        let hub = Hub::new(8, 0);
        let a1 = hub.register(1, Uuid::new_v4(), 8).unwrap();
        let a2 = hub.register(1, Uuid::new_v4(), 8).unwrap();
        let b = hub.register(2, Uuid::new_v4(), 8).unwrap();
        assert!(a1.first && !a2.first);
        assert!(hub.set_rooms(1, &[(10, RoomKind::Group)], a1.generation));
        assert!(hub.set_rooms(2, &[(11, RoomKind::Group)], b.generation));
        assert_eq!(hub.to_room(10, &frame("x"), None), 2);
        assert!(a1.outgoing.pop().is_some());
        assert!(a2.outgoing.pop().is_some());
        assert!(b.outgoing.pop().is_none());

        hub.members_added(10, RoomKind::Group, &[2]);
        assert_eq!(hub.to_room(10, &frame("y"), Some(1)), 1);
        hub.member_removed(10, 2);
        assert_eq!(hub.to_room(10, &frame("z"), Some(1)), 0);
    }

    #[tokio::test]
    async fn a_full_queue_closes_that_connection_only() {
        let hub = Hub::new(2, 0);
        let mut slow = hub.register(1, Uuid::new_v4(), 8).unwrap();
        let mut fast = hub.register(2, Uuid::new_v4(), 8).unwrap();
        hub.set_rooms(1, &[(5, RoomKind::Group)], 0);
        hub.set_rooms(2, &[(5, RoomKind::Group)], 0);
        for _ in 0..3 {
            hub.to_room(5, &frame("m"), None);
            assert!(fast.outgoing.pop().is_some());
        }
        assert_eq!(slow.closed.try_recv().unwrap(), CloseReason::TOO_SLOW);
        assert!(fast.closed.try_recv().is_err());
    }

    #[test]
    fn a_user_holds_at_most_the_socket_cap() {
        let hub = Hub::new(8, 0);
        let first = hub.register(1, Uuid::new_v4(), 2).unwrap();
        let _second = hub.register(1, Uuid::new_v4(), 2).unwrap();
        assert_eq!(
            hub.register(1, Uuid::new_v4(), 2).err(),
            Some(CloseReason::TOO_MANY_SOCKETS)
        );
        assert!(
            hub.register(2, Uuid::new_v4(), 2).is_ok(),
            "others are not affected"
        );
        hub.unregister(first.conn);
        assert!(
            hub.register(1, Uuid::new_v4(), 2).is_ok(),
            "a freed place can be taken"
        );
    }

    #[test]
    fn typing_is_forwarded_once_per_interval() {
        let hub = Hub::new(8, 0);
        let _c = hub.register(1, Uuid::new_v4(), 8).unwrap();
        let every = std::time::Duration::from_secs(60);
        assert!(hub.typing_due(1, 5, every));
        assert!(!hub.typing_due(1, 5, every));
        assert!(hub.typing_due(1, 6, every), "per room");
        assert!(
            !hub.typing_due(2, 5, every),
            "not online: nothing to forward"
        );
    }

    #[test]
    fn memberships_read_again_replace_only_the_users_read() {
        let hub = Hub::new(8, 0);
        let alice = hub.register(1, Uuid::new_v4(), 8).unwrap();
        hub.set_rooms(1, &[(10, RoomKind::Group)], alice.generation);
        // Carol comes online after the list of users to read was taken.
        let carol = hub.register(3, Uuid::new_v4(), 8).unwrap();
        hub.set_rooms(3, &[(10, RoomKind::Group)], carol.generation);
        // The database says alice left room 10 and is in 11.
        hub.replace_rooms(&[1], &[(1, 11, RoomKind::Group)]);
        assert_eq!(hub.membership(1, 10), None);
        assert_eq!(hub.membership(1, 11), Some(RoomKind::Group));
        assert_eq!(
            hub.membership(3, 10),
            Some(RoomKind::Group),
            "carol keeps hers"
        );
        assert_eq!(hub.to_room(10, &frame("x"), None), 1);
        assert_eq!(hub.to_room(11, &frame("y"), None), 1);
    }
}
