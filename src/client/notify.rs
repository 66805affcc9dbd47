//! Notifications outside the terminal, for `listen --notify` and `chat --notify`: a direct
//! message or a mention of you raises a freedesktop notification on the session D-Bus
//! (notify-rust); without one, the terminal's own notification escape (OSC 9), and without a
//! terminal, the bell. Never for your own messages or a muted room (but its mentions), and at
//! most one every few seconds per room.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::api::Api;
use super::error::CliError;
use crate::proto::{LiveMessage, RoomId, UserId};

/// At most one notification per room this often.
pub const EVERY: Duration = Duration::from_secs(5);

/// Decides which messages notify.
pub(crate) struct Notifier {
    me: UserId,
    muted: HashSet<RoomId>,
    last: HashMap<RoomId, Instant>,
}

impl Notifier {
    pub(crate) fn new(me: UserId, muted: HashSet<RoomId>) -> Notifier {
        Notifier {
            me,
            muted,
            last: HashMap::new(),
        }
    }

    /// Whether `m` (in a direct chat when `direct`) is worth a notification now.
    pub(crate) fn wants(&mut self, m: &LiveMessage, direct: bool) -> bool {
        let mine = m.sender_id == Some(self.me);
        let muted = self.muted.contains(&m.room_id);
        // The server does not mark mentions in a room muted with `all`.
        let worth = m.mention || (direct && !muted);
        if mine || m.deleted || !worth {
            return false;
        }
        let now = Instant::now();
        if self
            .last
            .get(&m.room_id)
            .is_some_and(|at| now.duration_since(*at) < EVERY)
        {
            return false;
        }
        self.last.insert(m.room_id, now);
        true
    }
}

/// What `--notify` needs: who you are and which rooms you muted.
pub(crate) async fn notifier(api: &Api) -> Result<Notifier, CliError> {
    let me = api.session()?.user_id;
    let (direct, groups) = tokio::try_join!(api.chats(), api.groups())?;
    let muted_chats = direct.iter().filter(|c| c.muted).map(|c| c.chat_room_id);
    let muted_groups = groups.iter().filter(|g| g.muted).map(|g| g.id);
    Ok(Notifier::new(me, muted_chats.chain(muted_groups).collect()))
}

/// Shows `title` and `body` as a desktop notification, or the terminal's, or rings the bell.
pub(crate) async fn raise(title: String, body: String) {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        let shown = tokio::time::timeout(
            Duration::from_secs(2),
            notify_rust::Notification::new()
                .appname("rtchat")
                .summary(&title)
                .body(&body)
                .show_async(),
        )
        .await;
        if matches!(shown, Ok(Ok(_))) {
            return;
        }
    }
    let terminal =
        std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    if terminal {
        eprint!("\x1b]9;{}: {}\x07", plain(&title), plain(&body));
    } else {
        eprint!("\x07");
    }
}

/// One line without control characters: it travels inside an escape sequence.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: RoomId, from: UserId, mention: bool) -> LiveMessage {
        LiveMessage {
            room_id: room,
            message_id: 1,
            sender_id: Some(from),
            sender_username: Some("bob".into()),
            sender_full_name: None,
            content: "hi".into(),
            created_at: crate::proto::Timestamp(chrono::Utc::now()),
            client_id: None,
            reply_to: None,
            edited_at: None,
            deleted: false,
            mention,
            attachments: Vec::new(),
            reactions: Vec::new(),
            thread_root: None,
            thread: None,
        }
    }

    #[test]
    fn direct_messages_and_mentions_notify_once_a_while_per_room() {
        let mut n = Notifier::new(1, HashSet::from([7]));
        assert!(n.wants(&message(3, 2, false), true), "a direct message");
        assert!(
            !n.wants(&message(3, 2, false), true),
            "the same room again at once"
        );
        assert!(
            !n.wants(&message(4, 2, false), false),
            "a group message that names nobody"
        );
        assert!(n.wants(&message(4, 2, true), false), "a mention in a group");
        assert!(!n.wants(&message(5, 1, true), true), "your own");
        assert!(!n.wants(&message(7, 2, false), true), "a muted direct chat");
        assert!(
            n.wants(&message(7, 2, true), true),
            "a mention in a muted room"
        );
    }

    #[test]
    fn escapes_carry_no_control_characters() {
        assert_eq!(plain("a\x07b\x1b]c\nd"), "a b ]c d");
    }
}
