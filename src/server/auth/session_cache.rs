//! A short-lived memory of valid sessions, so that a request's bearer check does not cost a database
//! round trip each time. Revocation (logout, logout-all, password change, refresh-token reuse) goes
//! through this process, which forgets the session at once; an entry read from the database before
//! a revocation can never be trusted after it.
//!
//! With several server processes, another process's revocation arrives on the bus within
//! milliseconds; if the bus was interrupted, everything here is forgotten (`clear`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::proto::UserId;
use crate::server::store::UserRecord;

const TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Entries {
    /// session -> (user, when the database said it was valid)
    valid: HashMap<Uuid, (UserRecord, Instant)>,
    revoked_sessions: HashMap<Uuid, Instant>,
    revoked_users: HashMap<UserId, Instant>,
    /// A personal access token's digest -> its session. Never changes for a token; whether its
    /// session is still good is `valid`'s to say.
    tokens: HashMap<Vec<u8>, TokenEntry>,
}

/// The session a personal access token opens, and until when the token works.
struct TokenEntry {
    session: Uuid,
    user: UserId,
    expires: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<Entries>,
}

impl SessionCache {
    /// The user of a session the database confirmed less than `TTL` ago, and not revoked since.
    pub fn get(&self, session: Uuid, user: UserId) -> Option<UserRecord> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (record, read_at) = e.valid.get(&session)?;
        let revoked_after = |at: Option<&Instant>| at.is_some_and(|at| at >= read_at);
        if record.id != user
            || read_at.elapsed() > TTL
            || revoked_after(e.revoked_sessions.get(&session))
            || revoked_after(e.revoked_users.get(&user))
        {
            return None;
        }
        Some(record.clone())
    }

    /// Remembers what the database said at `read_at` (taken before the query was sent).
    pub fn put(&self, session: Uuid, record: UserRecord, read_at: Instant) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.valid.len() > 100_000 {
            e.valid.retain(|_, (_, at)| at.elapsed() <= TTL);
        }
        e.valid.insert(session, (record, read_at));
    }

    /// The session and user of a personal access token seen before, unless it has expired.
    pub fn token(&self, digest: &[u8]) -> Option<(Uuid, UserId)> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = e.tokens.get(digest)?;
        if entry.expires.is_some_and(|at| at <= Utc::now()) {
            return None;
        }
        Some((entry.session, entry.user))
    }

    pub fn put_token(
        &self,
        digest: Vec<u8>,
        session: Uuid,
        user: UserId,
        expires: Option<DateTime<Utc>>,
    ) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.tokens.len() > 100_000 {
            e.tokens.clear();
        }
        e.tokens.insert(
            digest,
            TokenEntry {
                session,
                user,
                expires,
            },
        );
    }

    pub fn forget_session(&self, session: Uuid) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.valid.remove(&session);
        Self::tombstone(&mut e.revoked_sessions, session);
    }

    pub fn forget_user(&self, user: UserId) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.valid.retain(|_, (r, _)| r.id != user);
        Self::tombstone(&mut e.revoked_users, user);
    }

    /// Forgets every session (the bus was interrupted: a revocation may have been missed).
    pub fn clear(&self) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.valid.clear();
    }

    fn tombstone<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Instant>, key: K) {
        if map.len() > 10_000 {
            map.retain(|_, at| at.elapsed() <= TTL);
        }
        map.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserRecord {
        UserRecord {
            id: 1,
            username: "alice".into(),
            email: "alice@example.com".into(),
            full_name: None,
            is_active: true,
            is_verified: false,
            created_at: chrono::Utc::now(),
            role: crate::proto::ServerRole::Member,
            is_bot: false,
        }
    }

    #[test]
    fn a_read_from_before_a_revocation_is_never_trusted() {
        let cache = SessionCache::default();
        let sid = Uuid::new_v4();
        let read_at = Instant::now();
        cache.forget_session(sid); // revoked while the read was in flight
        cache.put(sid, alice(), read_at);
        assert!(cache.get(sid, 1).is_none());

        let other = Uuid::new_v4();
        cache.put(other, alice(), Instant::now());
        assert!(cache.get(other, 1).is_some());
        assert!(
            cache.get(other, 2).is_none(),
            "a session belongs to one user"
        );
        cache.forget_user(1);
        assert!(cache.get(other, 1).is_none());
    }
}
