//! Muting a room, per member: until a time (or until unmuted), and with `all` its mentions too.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::proto::{RoomId, UserId};

/// How "until unmuted" is kept: a time no mute reaches (chrono cannot read 'infinity').
pub const FOREVER: &str = "9999-12-31T00:00:00Z";

impl Store {
    /// Mutes `room` for `user` until `until` (None: until unmuted); whether they are a member.
    pub async fn mute(
        &self,
        room: RoomId,
        user: UserId,
        until: Option<DateTime<Utc>>,
        all: bool,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let forever: DateTime<Utc> = FOREVER.parse().expect("a valid time");
        let until = until.unwrap_or(forever);
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE chat_room_members SET muted_until = $3, mute_all = $4
                 WHERE chat_room_id = $1 AND user_id = $2 RETURNING muted_until",
                &[&room, &user, &until, &all],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Unmutes `room` for `user`; whether they are a member.
    pub async fn unmute(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE chat_room_members SET muted_until = NULL, mute_all = false
                 WHERE chat_room_id = $1 AND user_id = $2",
                &[&room, &user],
            )
            .await?
            == 1)
    }
}
