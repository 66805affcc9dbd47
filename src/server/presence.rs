//! Who is online in this process: a count of live connections per user. A user is online from their
//! first connection until their last one closes.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::proto::UserId;

#[derive(Default)]
pub struct Presence {
    connections: Mutex<HashMap<UserId, usize>>,
}

impl Presence {
    /// Records a new connection; true if it is the user's first (they just came online).
    pub fn connect(&self, user: UserId) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(user).or_default();
        *n += 1;
        *n == 1
    }

    /// Records a closed connection; true if it was the user's last (they just went offline).
    pub fn disconnect(&self, user: UserId) -> bool {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                map.remove(&user);
                true
            }
            None => false,
        }
    }

    pub fn online_users(&self) -> Vec<UserId> {
        let map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let mut users: Vec<UserId> = map.keys().copied().collect();
        users.sort_unstable();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_from_first_connection_to_last() {
        let p = Presence::default();
        assert!(p.connect(1));
        assert!(!p.connect(1));
        assert_eq!(p.online_users(), vec![1]);
        assert!(!p.disconnect(1));
        assert!(p.disconnect(1));
        assert!(p.online_users().is_empty());
        assert!(!p.disconnect(1));
    }
}
