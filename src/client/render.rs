//! Human output, the same in one-shot commands and the REPL: message lines, room names, compact
//! aligned tables, local times, colour only on a terminal without NO_COLOR.

use std::collections::HashMap;
use std::io::IsTerminal;

use chrono::{DateTime, Local, Utc};

use crate::proto::files::{human_size, safe_file_name};
use crate::proto::{
    Attachment, ChatSummary, GroupSummary, LiveMessage, MessageChange, MessageId,
    MessageWithSender, Reaction, ReplyPreview, RoomId, ServerFrame, ThreadSummary, Timestamp,
};

/// What a message whose sender's account is gone shows as its sender.
const DELETED_USER: &str = "(deleted user)";

/// A message as a line shows it, whichever list it came from.
pub struct Shown<'a> {
    pub id: MessageId,
    pub sender: Option<&'a str>,
    pub at: &'a Timestamp,
    pub content: &'a str,
    pub reply_to: Option<&'a ReplyPreview>,
    pub edited: bool,
    pub deleted: bool,
    pub attachments: &'a [Attachment],
    pub reactions: &'a [Reaction],
    /// A thread's first message: its replies.
    pub thread: Option<&'a ThreadSummary>,
}

impl<'a> Shown<'a> {
    pub fn live(m: &'a LiveMessage) -> Shown<'a> {
        Shown {
            id: m.message_id,
            sender: m.sender_username.as_deref(),
            at: &m.created_at,
            content: &m.content,
            reply_to: m.reply_to.as_ref(),
            edited: m.edited_at.is_some(),
            deleted: m.deleted,
            attachments: &m.attachments,
            reactions: &m.reactions,
            thread: m.thread.as_ref(),
        }
    }

    pub fn stored(m: &'a MessageWithSender) -> Shown<'a> {
        let message = &m.message;
        Shown {
            id: message.id,
            sender: m.sender_username.as_deref(),
            at: &message.created_at,
            content: &message.content,
            reply_to: message.reply_to.as_ref(),
            edited: message.edited_at.is_some(),
            deleted: message.deleted,
            attachments: &message.attachments,
            reactions: &message.reactions,
            thread: message.thread.as_ref(),
        }
    }
}

/// One message: `14:05 [42] #room alice: text (edited)`, further lines of the text indented under
/// it; a reply has the start of what it answers above it, a deleted message a tombstone. The id is
/// what `edit`, `delete`, `--reply-to` and `--before` take.
pub fn message_line(style: &Style, room: Option<&str>, m: &Shown<'_>) -> String {
    let mut text = String::new();
    if let Some(quoted) = m.reply_to {
        let what = if quoted.deleted {
            "(deleted)".to_string()
        } else {
            snippet(&quoted.excerpt, 60)
        };
        let who = quoted.sender_username.as_deref().unwrap_or(DELETED_USER);
        text.push_str(&style.dim(&format!("  ↪ [{}] {who}: {what}", quoted.message_id)));
        text.push('\n');
    }
    let mut prefix = format!(
        "{} {} ",
        style.dim(&when(m.at)),
        style.dim(&format!("[{}]", m.id))
    );
    if let Some(room) = room {
        prefix.push_str(&style.accent(room));
        prefix.push(' ');
    }
    let sender = m.sender.unwrap_or(DELETED_USER);
    if m.deleted {
        text.push_str(&format!(
            "{prefix}{}: {}",
            style.bold(sender),
            style.dim("(message deleted)")
        ));
        return text;
    }
    let files: Vec<String> = m.attachments.iter().map(attachment).collect();
    let content = style.rich(m.content);
    let mut lines = content.lines().chain(files.iter().map(String::as_str));
    let first = lines.next().unwrap_or_default();
    text.push_str(&format!("{prefix}{}: {first}", style.bold(sender)));
    for more in lines {
        text.push_str("\n    ");
        text.push_str(more);
    }
    if m.edited {
        text.push(' ');
        text.push_str(&style.dim("(edited)"));
    }
    if !m.reactions.is_empty() {
        text.push_str("\n    ");
        text.push_str(&reactions_line(style, m.reactions));
    }
    if let Some(thread) = m.thread {
        text.push_str("\n    ");
        text.push_str(&style.dim(&thread_line(m.id, thread)));
    }
    text
}

/// `💬 3 replies, last 14:05 (rtchat thread 42)`.
pub fn thread_line(id: MessageId, thread: &ThreadSummary) -> String {
    let last = thread
        .last_reply_at
        .as_ref()
        .map(|t| format!(", last {}", when(t)))
        .unwrap_or_default();
    format!(
        "💬 {}{last} (thread {id})",
        count(i64::from(thread.replies), "reply", "replies")
    )
}

/// `👍 2  🎉 1`, the reader's own in bold.
pub fn reactions_line(style: &Style, reactions: &[Reaction]) -> String {
    let each: Vec<String> = reactions
        .iter()
        .map(|r| {
            let shown = format!("{} {}", r.emoji, r.count);
            if r.me { style.bold(&shown) } else { shown }
        })
        .collect();
    each.join("  ")
}

/// A file as a message line shows it: `📎 report.pdf (1.2 MB) [file 17]` (the id is what
/// `rtchat download` takes).
pub fn attachment(file: &Attachment) -> String {
    let size = human_size(file.size);
    let shape = match (file.width, file.height) {
        (Some(w), Some(h)) => format!(", {w}×{h}"),
        _ => String::new(),
    };
    format!(
        "📎 {} ({size}{shape}) [file {}]",
        safe_file_name(&file.name),
        file.id
    )
}

/// Unread counts as a chat list shows them: `2 unread, 1 mention`, or nothing.
pub fn unread(count: i64, mentions: i64) -> String {
    match (count, mentions) {
        (0, _) => String::new(),
        (n, 0) => format!("{n} unread"),
        (n, m) => format!("{n} unread, {}", self::count(m, "mention", "mentions")),
    }
}

/// An edit or a deletion as a line: `#ops [42] edited: new text`, `#ops [42] deleted`.
pub fn changed_line(names: &RoomNames, change: &MessageChange) -> String {
    let room = names.label(change.room_id);
    if let Some(r) = &change.reaction {
        let who = r
            .username
            .as_deref()
            .map_or_else(|| "someone".to_string(), |n| format!("@{n}"));
        let did = if r.added { "reacted" } else { "took back" };
        return format!("{room} [{}] {who} {did} {}", change.message_id, r.emoji);
    }
    match &change.content {
        Some(text) => format!(
            "{room} [{}] edited: {}",
            change.message_id,
            snippet(text, 60)
        ),
        None => format!("{room} [{}] deleted", change.message_id),
    }
}

/// A member leaving a group, or removed from it: `@carol left #crew`, `@bob removed @carol from
/// #crew`; `you` when it is the reader (`me`).
/// A group renamed, given a topic, or made public or private: `@alice updated #ops (topic:
/// deploys)`.
pub fn group_updated_line(by: &str, name: &str, topic: Option<&str>, is_public: bool) -> String {
    let topic = topic
        .map(|t| format!("topic: {t}"))
        .unwrap_or("no topic".into());
    let public = if is_public { ", public" } else { "" };
    format!("{} updated {} ({topic}{public})", person(by), group(name))
}

pub fn removed_line(room: &str, me: &str, member: &str, removed_by: Option<&str>) -> String {
    let who = |name: &str| {
        if name == me {
            "you".to_string()
        } else {
            person(name)
        }
    };
    match removed_by {
        Some(admin) => format!("{} removed {} from {room}", who(admin), who(member)),
        None => format!("{} left {room}", who(member)),
    }
}

/// A group with its number, as lists show it: `#crew (#2)` (either is typed to name it).
pub fn group_with_id(name: &str, id: RoomId) -> String {
    format!("#{name} (#{id})")
}

/// A chat's last message in a list: `alice: text`, cut to `max` characters.
pub fn last_message(sender: Option<&str>, text: &str, max: usize) -> String {
    match sender {
        Some(sender) if !text.is_empty() => snippet(&format!("{sender}: {text}"), max),
        _ => snippet(text, max),
    }
}

/// `groups list` and the REPL's `/groups`: each group with its number, size and unread count.
pub fn groups_table(style: &Style, groups: &[GroupSummary]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                style.bold(&group_with_id(&g.name, g.id)),
                count(g.member_count, "member", "members"),
                unread(g.unread_count, g.mention_count),
            ]
        })
        .collect();
    table(&rows)
}

/// A person as shown and typed: `@alice`.
pub fn person(username: &str) -> String {
    format!("@{username}")
}

/// A person in a list: `@alice`, or `@buildbot [bot]` for a bot.
pub fn listed_person(username: &str, is_bot: bool) -> String {
    if is_bot {
        format!("{} [bot]", person(username))
    } else {
        person(username)
    }
}

/// A group as shown and typed: `#ops`.
pub fn group(name: &str) -> String {
    format!("#{name}")
}

/// How rooms are named on screen: `@other` for a direct chat, `#name` for a group, `#id` for one
/// not known yet.
#[derive(Debug, Default)]
pub struct RoomNames(HashMap<RoomId, String>);

impl RoomNames {
    pub fn from_lists(chats: &[ChatSummary], groups: &[GroupSummary]) -> RoomNames {
        let mut names = RoomNames::default();
        for c in chats {
            names.insert(c.chat_room_id, person(&c.other_user_username));
        }
        for g in groups {
            names.insert(g.id, group(&g.name));
        }
        names
    }

    pub fn insert(&mut self, room: RoomId, label: String) {
        self.0.insert(room, label);
    }

    pub fn knows(&self, room: RoomId) -> bool {
        self.0.contains_key(&room)
    }

    /// How many known rooms show as `label` (two groups may share a name).
    pub fn rooms_labelled(&self, label: &str) -> usize {
        self.0.values().filter(|l| l.as_str() == label).count()
    }

    pub fn label(&self, room: RoomId) -> String {
        self.0
            .get(&room)
            .cloned()
            .unwrap_or_else(|| format!("#{room}"))
    }

    /// Rooms that appear while connected: a group one is added to is announced with its name; a
    /// room never seen whose message is from someone else (not `me`) is a new direct chat with
    /// them. The label learnt, if any.
    pub fn learn(&mut self, me: &str, frame: &ServerFrame) -> Option<String> {
        let (room, label) = match frame {
            ServerFrame::MemberAdded {
                room_id,
                name: Some(name),
                ..
            } => (*room_id, group(name)),
            // A renamed group is known by its new name at once.
            ServerFrame::GroupUpdated { room_id, name, .. } => {
                self.insert(*room_id, group(name));
                return None;
            }
            ServerFrame::NewMessage { message, .. } => {
                let sender = message.sender_username.as_deref().filter(|s| *s != me)?;
                (message.room_id, person(sender))
            }
            _ => return None,
        };
        if self.knows(room) {
            return None;
        }
        self.insert(room, label.clone());
        Some(label)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

/// "1 member", "3 members".
pub fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Style {
    pub fn detect() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    #[cfg(test)]
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn accent(&self, text: &str) -> String {
        self.paint("36", text)
    }

    /// A message's text: its Markdown as styles where there is colour, else as typed.
    pub fn rich(&self, text: &str) -> String {
        if self.color {
            super::markdown::render(text)
        } else {
            text.to_string()
        }
    }

    /// A line that names the reader: reversed, so it stands out among the others.
    pub fn mention(&self, text: &str) -> String {
        self.paint("7", text)
    }
}

/// "14:05" today, "2026-11-25 14:05" before, in local time.
pub fn when(t: &Timestamp) -> String {
    when_at(t.0, Utc::now())
}

fn when_at(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    if local.date_naive() == now.with_timezone(&Local).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// One line of text, shortened to `max` characters with an ellipsis.
pub fn snippet(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    let more = line.chars().count() > max || text.lines().nth(1).is_some();
    let mut out: String = line.chars().take(max).collect();
    if more {
        out.push('…');
    }
    out
}

/// Rows padded into columns.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible_len(cell));
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - visible_len(cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Characters a cell shows, not counting colour escapes.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{LiveMessage, RoomKind};

    fn at() -> Timestamp {
        Timestamp("2020-01-02T03:04:05Z".parse().unwrap())
    }

    #[test]
    fn a_message_is_one_line_per_line_of_text() {
        let t = at();
        let shown = |sender, content| Shown {
            id: 42,
            sender,
            at: &t,
            content,
            reply_to: None,
            edited: false,
            deleted: false,
            attachments: &[],
            reactions: &[],
            thread: None,
        };
        let line = message_line(&Style::plain(), Some("#ops"), &shown(Some("alice"), "a\nb"));
        assert!(line.ends_with(" [42] #ops alice: a\n    b"), "{line}");
        let gone = message_line(&Style::plain(), None, &shown(None, "hi"));
        assert!(gone.ends_with(" (deleted user): hi"), "{gone}");
        let files = [Attachment {
            id: 17,
            name: "report.pdf".into(),
            size: 1_200_000,
            content_type: "application/pdf".into(),
            width: None,
            height: None,
            preview: false,
        }];
        let only_a_file = Shown {
            content: "",
            attachments: &files,
            ..shown(Some("bob"), "")
        };
        let line = message_line(&Style::plain(), None, &only_a_file);
        assert!(
            line.ends_with(" bob: 📎 report.pdf (1.2 MB) [file 17]"),
            "{line}"
        );
    }

    #[test]
    fn rooms_are_learnt_from_what_arrives() {
        let mut names = RoomNames::default();
        assert_eq!(names.label(7), "#7");
        let added = ServerFrame::MemberAdded {
            room_id: 7,
            room_type: RoomKind::Group,
            name: Some("ops".into()),
            user_id: 1,
            username: "me".into(),
        };
        assert_eq!(names.learn("me", &added).as_deref(), Some("#ops"));
        let message = |from: &str| ServerFrame::NewMessage {
            message: LiveMessage {
                room_id: 9,
                message_id: 1,
                sender_id: Some(2),
                sender_username: Some(from.into()),
                sender_full_name: None,
                content: "hi".into(),
                created_at: at(),
                client_id: None,
                reply_to: None,
                edited_at: None,
                deleted: false,
                mention: false,
                attachments: Vec::new(),
                reactions: Vec::new(),
                thread_root: None,
                thread: None,
            },
            sync_cursor: 1,
        };
        assert_eq!(
            names.learn("me", &message("me")),
            None,
            "my own: not a name"
        );
        assert_eq!(names.learn("me", &message("bob")).as_deref(), Some("@bob"));
        assert_eq!(names.label(9), "@bob");
    }

    #[test]
    fn tables_align_ignoring_colour() {
        let s = Style { color: true };
        let out = table(&[
            vec![s.bold("@al"), "1".into(), "x".into()],
            vec!["@bobby".into(), "22".into(), "y".into()],
        ]);
        let plain: Vec<String> = out
            .lines()
            .map(|l| l.replace("\x1b[1m", "").replace("\x1b[0m", ""))
            .collect();
        assert_eq!(plain, ["@al     1   x", "@bobby  22  y"]);
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet("hello", 10), "hello");
        assert_eq!(snippet("hello world", 5), "hello…");
        assert_eq!(snippet("one\ntwo", 10), "one…");
    }
}
