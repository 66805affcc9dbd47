//! `rtchat chat`: the interactive REPL. One room at a time in the prompt (`#team>` / `@bob>`), live
//! messages and events printed above the line being typed, `/commands` parsed by clap, and no message
//! lost or doubled across a dropped connection: sends carry a `client_id` and are retried with it
//! until the server has them; missed messages come back through `sync`, each shown once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::sync::mpsc;

use super::api::{Api, Draft, Page};
use super::error::CliError;
use super::line_editor::{Completions, Input, LineEditor};
use super::live::{self, Event};
use super::render::{
    RoomNames, Shown, Style, changed_line, group, group_updated_line, group_with_id, groups_table,
    last_message, listed_person, message_line, person, removed_line, table, unread, when,
};
use super::session::Session;
use super::target::{self, Target};
use crate::proto::{
    ClientFrame, FileId, LiveMessage, MessageId, RoomId, ServerFrame, Timestamp, UserId,
};

const TYPING_EVERY: Duration = Duration::from_secs(3);
const TYPING_SHOWN_FOR: Duration = Duration::from_secs(5);
const HISTORY_PAGE: u32 = 20;
/// How soon a message the server did not confirm is sent again while the connection is up (a
/// reconnect sends it at once).
const RESEND_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Parser)]
#[command(multicall = true, disable_help_subcommand = true)]
struct Slash {
    #[command(subcommand)]
    command: SlashCommand,
}

#[derive(Debug, Subcommand)]
#[command(disable_help_flag = true)]
enum SlashCommand {
    /// Talk in @user or #group.
    Join { target: String },
    /// Send one message elsewhere without leaving this room.
    Msg {
        target: String,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Answer message ID (shown as [ID]) here.
    Reply {
        id: MessageId,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Change the text of your last message in this room, or of message ID.
    Edit {
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Delete your last message in this room, or message ID.
    Delete { id: Option<MessageId> },
    /// Go into the thread of message ID: see it, and what you type answers in it.
    Thread { id: MessageId },
    /// Leave the thread, back to the room.
    Back,
    /// React to the last message here (or message ID) with EMOJI.
    React {
        #[arg(required = true, num_args = 1..=2)]
        words: Vec<String>,
    },
    /// Find messages of your rooms by their words.
    Search {
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Show the last N messages here.
    History { n: Option<u32> },
    /// Who is here, and who is online.
    Who,
    /// Your chats and groups with unread counts.
    Chats,
    /// Your groups.
    Groups,
    /// Create a group with these people and join it.
    Create { name: String, members: Vec<String> },
    /// Add people to this group.
    Add {
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Leave this group.
    Leave,
    /// Mark this room read.
    Read,
    /// Send a file here, with words if you like.
    Upload {
        path: std::path::PathBuf,
        text: Vec<String>,
    },
    /// Save file ID (shown as [file ID]) here, or at PATH.
    Download {
        id: FileId,
        path: Option<std::path::PathBuf>,
    },
    /// This list.
    Help,
    /// Leave the chat (or Ctrl-D).
    Quit,
}

const HELP: &str = "\
/join @user|#group    talk there          /msg TARGET TEXT   send elsewhere
/reply ID TEXT        answer message ID   /search WORDS      find messages
/edit [ID] TEXT       edit your last here /delete [ID]       delete your last here
/history [N]          last N messages     /who               members, who is online
/chats                chats and unread    /groups            your groups
/create NAME @a @b    new group           /add @c            add to this group
/leave                leave this group    /read              mark this room read
/upload PATH [TEXT]   send a file here    /download ID [PATH] save [file ID]
/react [ID] EMOJI     react (last message here by default)
/thread ID            go into a thread    /back              back to the room
/help                 this list           /quit              leave (or Ctrl-D)
A line without / is sent to the current room; [ID] before a message is its id.
Tab completes commands, @people and #groups.";

/// No progress bar under the prompt: it would fight the line editor for the terminal.
fn quiet() -> super::files::Progress {
    Arc::new(|_, _| {})
}

/// Where the next plain line goes.
struct Current {
    target: Target,
    room: Option<RoomId>,
    /// In a thread (`/thread ID`): its first message, which plain lines answer.
    thread: Option<MessageId>,
}

/// A message not yet confirmed by the server, retried with the same `client_id`.
#[derive(Clone)]
struct Pending {
    client_id: String,
    to: Target,
    content: String,
    reply_to: Option<MessageId>,
    /// Files already uploaded for it.
    attachments: Vec<FileId>,
}

impl Pending {
    fn draft(&self) -> Draft<'_> {
        Draft {
            content: &self.content,
            client_id: &self.client_id,
            reply_to: self.reply_to,
            attachments: &self.attachments,
        }
    }
}

struct Repl {
    api: Arc<Api>,
    me: Session,
    style: Style,
    printer: Box<dyn rustyline::ExternalPrinter + Send>,
    current: Option<Current>,
    names: RoomNames,
    unread: HashMap<RoomId, i64>,
    /// `--notify`: which messages raise a desktop notification.
    notifier: Option<super::notify::Notifier>,
    /// Rooms you muted (from the chat lists): their messages elsewhere are counted, not told.
    muted: std::collections::HashSet<RoomId>,
    pending: Vec<Pending>,
    /// When to send the pending messages again.
    resend_at: Option<Instant>,
    /// Your newest message in each room, as far as seen here: what `/edit` and `/delete` change
    /// when given no id.
    last_mine: HashMap<RoomId, MessageId>,
    /// The live connection is up (false from a loss until it is back).
    connected: bool,
    to_server: mpsc::UnboundedSender<ClientFrame>,
    typing_sent: Option<Instant>,
    typing_shown: HashMap<(RoomId, UserId), Instant>,
    words: Completions,
}

pub async fn run(api: Api, target: Option<String>, notify: bool) -> Result<(), CliError> {
    let api = Arc::new(api);
    api.me().await?; // logged in, token fresh, server up
    let notifier = if notify {
        Some(super::notify::notifier(&api).await?)
    } else {
        None
    };
    // In the editor Ctrl-C is a key that clears the line; between two reads the terminal is briefly
    // in cooked mode, where it would be a SIGINT that ends the chat. Catching the signal keeps it a
    // no-op there (Ctrl-D and /quit leave).
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| CliError::Local(format!("cannot handle Ctrl-C: {e}")))?;
    let me = api.session()?;
    let words: Completions = Default::default();
    let (input_tx, mut input) = mpsc::unbounded_channel();
    let (editor, printer) = LineEditor::start(words.clone(), history_file(), input_tx)?;
    let (to_server, outgoing) = mpsc::unbounded_channel();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let live_api = api.clone();
    let mut live_task = tokio::spawn(async move {
        live::listen(&live_api, Some(outgoing), move |e| {
            events_tx.send(e).is_ok()
        })
        .await
    });

    let mut repl = Repl::new(api, me, printer, to_server, words);
    repl.notifier = notifier;
    repl.greet(target).await?;
    editor.read(repl.prompt());
    let mut between_lines = false;
    let outcome = loop {
        tokio::select! {
            got = input.recv() => match got {
                Some(Input::Line(line)) => {
                    if !repl.line(&line).await {
                        between_lines = true;
                        break Ok(());
                    }
                    editor.read(repl.prompt());
                }
                Some(Input::Typing) => {
                    repl.wake_connection();
                    repl.typing();
                }
                Some(Input::Eof) | None => {
                    between_lines = true;
                    break Ok(());
                }
            },
            _ = resend_due(repl.resend_at) => {
                repl.resend_at = None;
                repl.resend_pending().await;
            }
            event = events.recv() => match event {
                Some(event) => repl.event(event).await,
                None => break match (&mut live_task).await {
                    Ok(Err(e)) => Err(e),
                    _ => Ok(()),
                },
            },
        }
    };
    if !repl.pending.is_empty() {
        eprintln!(
            "rtchat: {} message(s) were not delivered: the server did not confirm them",
            repl.pending.len()
        );
    }
    drop(repl);
    live_task.abort();
    editor.finish(between_lines);
    outcome
}

impl Repl {
    fn new(
        api: Arc<Api>,
        me: Session,
        printer: Box<dyn rustyline::ExternalPrinter + Send>,
        to_server: mpsc::UnboundedSender<ClientFrame>,
        words: Completions,
    ) -> Repl {
        Repl {
            api,
            me,
            style: Style::detect(),
            printer,
            current: None,
            names: RoomNames::default(),
            unread: HashMap::new(),
            muted: Default::default(),
            notifier: None,
            pending: Vec::new(),
            resend_at: None,
            last_mine: HashMap::new(),
            connected: true,
            to_server,
            typing_sent: None,
            typing_shown: HashMap::new(),
            words,
        }
    }

    /// Learns the room names, says who and where you are, and opens `target` if one was given.
    async fn greet(&mut self, target: Option<String>) -> Result<(), CliError> {
        self.refresh_names().await?;
        self.say(&format!(
            "Connected as @{} to {}. /help lists commands.",
            self.me.username,
            self.api.base()
        ));
        if let Some(t) = target {
            let joined = self.join(&t).await;
            self.command_result(joined);
        }
        Ok(())
    }
}

/// What a mistyped /command gets: which command is unknown, or which argument is missing and
/// how the command is used.
fn slash_error(typed: &str, e: &clap::Error) -> String {
    let name = typed.split_whitespace().next().unwrap_or_default();
    let text = e.render().to_string();
    match e.kind() {
        clap::error::ErrorKind::InvalidSubcommand | clap::error::ErrorKind::UnknownArgument
            if !HELP.contains(&format!("/{name} ")) =>
        {
            format!("unknown command /{name} (/help lists commands)")
        }
        clap::error::ErrorKind::MissingRequiredArgument => {
            let missing: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with('<'))
                .collect();
            let usage = text
                .lines()
                .find_map(|l| l.strip_prefix("Usage: "))
                .unwrap_or(name);
            format!("/{name} needs {}: /{usage}", missing.join(" "))
        }
        _ => {
            let first = text.lines().next().unwrap_or("unknown command");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            format!("/{name}: {first} (/help lists commands)")
        }
    }
}

/// Resolves at `at`; never without it.
async fn resend_due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn history_file() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("RTCHAT_CONFIG_DIR") {
        return Some(std::path::PathBuf::from(dir).join("chat_history"));
    }
    directories::ProjectDirs::from("", "", "rtchat").map(|d| d.data_dir().join("chat_history"))
}

impl Repl {
    /// Prints above the prompt. Lines end in CR LF: the terminal may be in raw mode.
    fn say(&mut self, text: &str) {
        let mut out = text.replace("\r\n", "\n").replace('\n', "\r\n");
        out.push_str("\r\n");
        let _ = self.printer.print(out);
    }

    /// A line that names the user: the terminal's bell, and the line stands out.
    fn ring(&mut self, text: &str) {
        let line = format!("\x07{}", self.style.mention(text));
        self.say(&line);
    }

    fn notice(&mut self, text: &str) {
        let line = self.style.dim(text);
        self.say(&line);
    }

    fn command_result(&mut self, result: Result<(), CliError>) {
        if let Err(e) = result {
            self.say(&format!("error: {e}"));
        }
    }

    fn prompt(&self) -> String {
        match &self.current {
            // Two groups of one name: the id tells them apart.
            Some(Current {
                target: Target::Group { id, name },
                ..
            }) if self.names.rooms_labelled(&group(name)) > 1 => {
                format!("{}> ", group_with_id(name, *id))
            }
            Some(Current {
                target,
                thread: Some(root),
                ..
            }) => format!("{} thread {root}> ", target.label()),
            Some(c) => format!("{}> ", c.target.label()),
            None => "> ".to_string(),
        }
    }

    fn current_room(&self) -> Option<RoomId> {
        self.current.as_ref().and_then(|c| c.room)
    }

    async fn refresh_names(&mut self) -> Result<(), CliError> {
        let (chats, groups) = tokio::try_join!(self.api.chats(), self.api.groups())?;
        let mut words: Vec<String> = [
            "/join", "/msg", "/history", "/who", "/chats", "/groups", "/create", "/add", "/leave",
            "/read", "/help", "/quit",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.names = RoomNames::from_lists(&chats, &groups);
        for c in &chats {
            words.push(person(&c.other_user_username));
        }
        for g in &groups {
            words.push(group(&g.name));
            self.unread.insert(g.id, g.unread_count);
        }
        for c in &chats {
            self.unread.insert(c.chat_room_id, c.unread_count);
        }
        let muted_groups = groups.iter().filter(|g| g.muted).map(|g| g.id);
        let muted_chats = chats.iter().filter(|c| c.muted).map(|c| c.chat_room_id);
        self.muted = muted_groups.chain(muted_chats).collect();
        words.sort();
        words.dedup();
        *self.words.lock().unwrap_or_else(|e| e.into_inner()) = words;
        Ok(())
    }

    fn remember_word(&self, word: String) {
        let mut words = self.words.lock().unwrap_or_else(|e| e.into_inner());
        if !words.contains(&word) {
            words.push(word);
        }
    }

    /// One line typed: a command or a message. False when the user quits.
    async fn line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if line.is_empty() {
            return true;
        }
        if let Some(command) = line.strip_prefix('/') {
            let words: Vec<&str> = command.split_whitespace().collect();
            match Slash::try_parse_from(words) {
                Ok(Slash {
                    command: SlashCommand::Quit,
                }) => return false,
                Ok(slash) => {
                    let result = self.command(slash.command).await;
                    self.command_result(result);
                }
                Err(e) => self.say(&slash_error(command, &e)),
            }
            return true;
        }
        match &self.current {
            Some(c) => {
                let (to, thread) = (c.target.clone(), c.thread);
                self.send_reply(to, line.to_string(), thread).await;
            }
            None => self.say("join a room first: /join @user or /join #group"),
        }
        true
    }

    async fn command(&mut self, command: SlashCommand) -> Result<(), CliError> {
        match command {
            SlashCommand::Join { target } => self.join(&target).await?,
            SlashCommand::Msg { target, text } => {
                let to = target::resolve(&self.api, &target).await?;
                let label = to.label();
                let here = self.current.as_ref().map(|c| c.target.label());
                // Its echo shows only in its own room: elsewhere, say that it went.
                if self.send(to, text.join(" ")).await && here.as_ref() != Some(&label) {
                    self.notice(&format!("sent to {label}"));
                }
            }
            SlashCommand::Reply { id, text } => {
                let Some(c) = &self.current else {
                    return Err(CliError::Usage("join a room first".into()));
                };
                let to = c.target.clone();
                self.send_reply(to, text.join(" "), Some(id)).await;
            }
            SlashCommand::Edit { words } => self.edit(&words).await?,
            SlashCommand::Delete { id } => {
                let id = match id {
                    Some(id) => id,
                    None => self.my_last_here("delete").await?,
                };
                self.api.delete(id).await?;
                self.last_mine.retain(|_, mine| *mine != id);
            }
            SlashCommand::Search { words } => self.search(&words.join(" ")).await?,
            SlashCommand::History { n } => {
                let Some(c) = &self.current else {
                    return Err(CliError::Usage("join a room first".into()));
                };
                let target = c.target.clone();
                self.show_history(&target, n.unwrap_or(HISTORY_PAGE))
                    .await?;
            }
            SlashCommand::Who => self.who().await?,
            SlashCommand::Chats => self.chats().await?,
            SlashCommand::Groups => self.groups().await?,
            SlashCommand::Create { name, members } => self.create(&name, &members).await?,
            SlashCommand::Add { users } => self.add(&users).await?,
            SlashCommand::Leave => self.leave().await?,
            SlashCommand::Read => {
                if let Some(room) = self.current_room() {
                    self.api.mark_read(room).await?;
                    self.unread.insert(room, 0);
                }
            }
            SlashCommand::React { words } => self.react(&words).await?,
            SlashCommand::Thread { id } => self.enter_thread(id).await?,
            SlashCommand::Back => {
                if let Some(c) = &mut self.current {
                    c.thread = None;
                }
            }
            SlashCommand::Upload { path, text } => self.upload(&path, text.join(" ")).await?,
            SlashCommand::Download { id, path } => {
                let to = path.unwrap_or_else(|| ".".into());
                let (saved, size) = self.api.download(id, &to, quiet()).await?;
                self.notice(&super::transfer::saved_line(&saved, size));
            }
            SlashCommand::Help => self.say(HELP),
            SlashCommand::Quit => {}
        }
        Ok(())
    }

    /// `/edit 42 new text`, or `/edit new text` for your last message here.
    async fn edit(&mut self, words: &[String]) -> Result<(), CliError> {
        let (id, text) = match words.split_first() {
            Some((first, rest)) if first.parse::<MessageId>().is_ok() => {
                if rest.is_empty() {
                    return Err(CliError::Usage(format!(
                        "/edit {first} needs the new text: /edit [ID] TEXT"
                    )));
                }
                (first.parse().ok(), rest.join(" "))
            }
            _ => (None, words.join(" ")),
        };
        super::api::fits_in_a_message(&text)?;
        let id = match id {
            Some(id) => id,
            None => self.my_last_here("edit").await?,
        };
        self.api.edit(id, &text).await?;
        Ok(())
    }

    /// `/thread ID`: shows the thread and makes it where plain lines go (in its room).
    async fn enter_thread(&mut self, id: MessageId) -> Result<(), CliError> {
        let thread = self.api.thread(id).await?;
        let room = thread.root.message.chat_room_id;
        if self.current_room() != Some(room) {
            return Err(CliError::Usage(format!(
                "message {id} is in {}: /join it first",
                self.names.label(room)
            )));
        }
        for m in std::iter::once(&thread.root).chain(&thread.replies) {
            let line = message_line(&self.style, None, &Shown::stored(m));
            self.say(&line);
        }
        if let Some(c) = &mut self.current {
            c.thread = Some(thread.root.message.id);
        }
        Ok(())
    }

    /// `/react 42 👍`, or `/react 👍` for the newest message here.
    async fn react(&mut self, words: &[String]) -> Result<(), CliError> {
        let (id, emoji) = match words {
            [id, emoji] => (
                id.parse::<MessageId>()
                    .map_err(|_| CliError::Usage(format!("/react {id}: ID is a message's id")))?,
                emoji,
            ),
            [emoji] => (self.newest_here().await?, emoji),
            _ => return Err(CliError::Usage("/react [ID] EMOJI".into())),
        };
        self.api.react(id, emoji, true).await?;
        Ok(())
    }

    /// The newest message of the room you are in.
    async fn newest_here(&mut self) -> Result<MessageId, CliError> {
        let Some(c) = &self.current else {
            return Err(CliError::Usage(
                "join a room first, or give the id: /react ID EMOJI".into(),
            ));
        };
        let page = Page {
            limit: Some(1),
            ..Page::default()
        };
        let newest = match (&c.target, c.room) {
            (_, None) => Vec::new(),
            (Target::User(u), Some(_)) => self.api.direct_history(u.id, page).await?,
            (Target::Group { id, .. }, Some(_)) => self.api.group_history(*id, page).await?,
        };
        newest
            .last()
            .map(|m| m.message.id)
            .ok_or_else(|| CliError::Usage("no message here to react to".into()))
    }

    /// `/upload PATH TEXT`: the file, then a message here carrying it.
    async fn upload(&mut self, path: &std::path::Path, text: String) -> Result<(), CliError> {
        let Some(c) = &self.current else {
            return Err(CliError::Usage("join a room first".into()));
        };
        let to = c.target.clone();
        self.notice(&format!("uploading {}", path.display()));
        let uploaded = self.api.upload(path, quiet()).await?;
        self.send_with_files(to, text, None, vec![uploaded.file.id])
            .await;
        Ok(())
    }

    /// Your newest message in the room you are in, for `/edit` and `/delete` without an id: the
    /// one seen here, else the newest of yours in the room's recent history.
    async fn my_last_here(&mut self, action: &str) -> Result<MessageId, CliError> {
        let Some(c) = &self.current else {
            return Err(CliError::Usage(format!(
                "join a room first, or give the id: /{action} ID"
            )));
        };
        let (target, room) = (c.target.clone(), c.room);
        if let Some(id) = room.and_then(|r| self.last_mine.get(&r)) {
            return Ok(*id);
        }
        let page = Page {
            limit: Some(100),
            ..Page::default()
        };
        let recent = match (&target, room) {
            (_, None) => Vec::new(),
            (Target::User(u), Some(_)) => self.api.direct_history(u.id, page).await?,
            (Target::Group { id, .. }, Some(_)) => self.api.group_history(*id, page).await?,
        };
        recent
            .iter()
            .rev()
            .find(|m| m.message.sender_id == Some(self.me.user_id) && !m.message.deleted)
            .map(|m| m.message.id)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "you have no recent message in {} to {action}: /{action} ID",
                    target.label()
                ))
            })
    }

    /// `id` is a message of yours in `room`; the newest one counts.
    fn note_mine(&mut self, room: RoomId, id: MessageId) {
        let newest = self.last_mine.entry(room).or_insert(id);
        *newest = (*newest).max(id);
    }

    /// `/search WORDS`: the newest matches of all rooms, with their room.
    async fn search(&mut self, query: &str) -> Result<(), CliError> {
        let found = self.api.search(query, None, None, HISTORY_PAGE).await?;
        if found.results.is_empty() {
            self.notice("no messages match");
        }
        for m in found.results.iter().rev() {
            let room = self.label(m.room_id);
            let line = message_line(&self.style, Some(&room), &Shown::live(m));
            self.say(&line);
        }
        Ok(())
    }

    /// `/chats`: groups and direct chats with unread counts and their last message.
    async fn chats(&mut self) -> Result<(), CliError> {
        let (chats, groups) = tokio::try_join!(self.api.chats(), self.api.groups())?;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let at = |t: Option<&Timestamp>| t.map(when).unwrap_or_default();
        for g in groups {
            rows.push(vec![
                group_with_id(&g.name, g.id),
                unread(g.unread_count, g.mention_count),
                at(g.last_message_time.as_ref()),
                last_message(
                    g.last_message_sender.as_deref(),
                    g.last_message.as_deref().unwrap_or_default(),
                    50,
                ),
            ]);
        }
        for c in chats {
            rows.push(vec![
                person(&c.other_user_username),
                unread(c.unread_count, c.mention_count),
                at(c.last_message_time.as_ref()),
                last_message(c.last_message_sender.as_deref(), &c.last_message, 50),
            ]);
        }
        let text = table(&rows);
        self.say(text.trim_end());
        Ok(())
    }

    /// `/groups`: each with its number, size and unread count.
    async fn groups(&mut self) -> Result<(), CliError> {
        let groups = self.api.groups().await?;
        let text = groups_table(&self.style, &groups);
        self.say(if text.is_empty() {
            "no groups"
        } else {
            text.trim_end()
        });
        Ok(())
    }

    /// `/create NAME @a @b`: the group, then into it.
    async fn create(&mut self, name: &str, members: &[String]) -> Result<(), CliError> {
        let mut ids = Vec::new();
        for m in members {
            ids.push(target::resolve_user(&self.api, m).await?.id);
        }
        let reply = self.api.create_group(name, &ids).await?;
        self.names.insert(reply.group.id, group(&reply.group.name));
        self.remember_word(group(&reply.group.name));
        self.join(&format!("#{}", reply.group.id)).await
    }

    /// `/add @a @b` to the group one is in.
    async fn add(&mut self, users: &[String]) -> Result<(), CliError> {
        let Some(Target::Group { id, .. }) = self.current.as_ref().map(|c| &c.target) else {
            return Err(CliError::Usage("/add works in a group".into()));
        };
        let id = *id;
        let mut ids = Vec::new();
        for u in users {
            ids.push(target::resolve_user(&self.api, u).await?.id);
        }
        self.api.add_members(id, &ids).await?;
        Ok(())
    }

    /// `/leave` the group one is in.
    async fn leave(&mut self) -> Result<(), CliError> {
        let Some(Target::Group { id, name }) = self.current.as_ref().map(|c| c.target.clone())
        else {
            return Err(CliError::Usage("/leave works in a group".into()));
        };
        self.api.remove_member(id, self.me.user_id).await?;
        self.current = None;
        self.notice(&format!("you left #{name}"));
        Ok(())
    }

    async fn join(&mut self, text: &str) -> Result<(), CliError> {
        let t = target::resolve(&self.api, text).await?;
        let room = target::room_of(&self.api, &t).await?;
        if let Some(old) = self.current_room() {
            let _ = self.to_server.send(ClientFrame::LeaveRoom { room: old });
        }
        if let Some(room) = room {
            self.names.insert(room, t.label());
            let _ = self.to_server.send(ClientFrame::JoinRoom { room });
        }
        self.remember_word(t.label());
        self.current = Some(Current {
            target: t.clone(),
            room,
            thread: None,
        });
        self.show_history(&t, HISTORY_PAGE).await?;
        if let Some(room) = room {
            self.unread.insert(room, 0);
        }
        Ok(())
    }

    /// The last `n` messages of a room (reading them marks it read).
    async fn show_history(&mut self, t: &Target, n: u32) -> Result<(), CliError> {
        let page = Page {
            limit: Some(n.clamp(1, 100)),
            ..Page::default()
        };
        let messages = match t {
            Target::User(u) => self.api.direct_history(u.id, page).await?,
            Target::Group { id, .. } => self.api.group_history(*id, page).await?,
        };
        if messages.is_empty() {
            self.notice(&format!("no messages with {} yet", t.label()));
        }
        for m in messages {
            if m.message.sender_id == Some(self.me.user_id) && !m.message.deleted {
                self.note_mine(m.message.chat_room_id, m.message.id);
            }
            let line = message_line(&self.style, None, &Shown::stored(&m));
            self.say(&line);
        }
        Ok(())
    }

    async fn who(&mut self) -> Result<(), CliError> {
        let Some(c) = &self.current else {
            return Err(CliError::Usage("join a room first".into()));
        };
        let online: Vec<UserId> = self.api.online_users().await.unwrap_or_default();
        let topic = match &c.target {
            Target::Group { id, .. } => self
                .api
                .groups()
                .await?
                .into_iter()
                .find(|g| g.id == *id)
                .and_then(|g| g.topic),
            Target::User(_) => None,
        };
        let rows: Vec<Vec<String>> = match &c.target {
            Target::Group { id, .. } => self
                .api
                .members(*id)
                .await?
                .into_iter()
                .map(|m| {
                    vec![
                        listed_person(&m.username, m.is_bot),
                        match m.role.as_str() {
                            "" if m.is_admin => "admin".into(),
                            "member" => String::new(),
                            role => role.to_string(),
                        },
                        if online.contains(&m.id) {
                            "online".into()
                        } else {
                            "offline".into()
                        },
                    ]
                })
                .collect(),
            Target::User(u) => vec![
                vec![person(&self.me.username), String::new(), "online".into()],
                vec![
                    person(&u.username),
                    String::new(),
                    if online.contains(&u.id) {
                        "online".into()
                    } else {
                        "offline".into()
                    },
                ],
            ],
        };
        if let Some(topic) = topic {
            self.say(&format!("topic: {topic}"));
        }
        let text = table(&rows);
        self.say(text.trim_end());
        Ok(())
    }

    /// Sends a message; kept as pending until the server confirms it, and retried with the same
    /// `client_id` after a reconnect if it could not be delivered now.
    /// Whether the server took it now.
    async fn send(&mut self, to: Target, content: String) -> bool {
        self.send_reply(to, content, None).await
    }

    async fn send_reply(
        &mut self,
        to: Target,
        content: String,
        reply_to: Option<MessageId>,
    ) -> bool {
        self.send_with_files(to, content, reply_to, Vec::new())
            .await
    }

    async fn send_with_files(
        &mut self,
        to: Target,
        content: String,
        reply_to: Option<MessageId>,
        attachments: Vec<FileId>,
    ) -> bool {
        if (attachments.is_empty() || !content.is_empty())
            && let Err(e) = super::api::fits_in_a_message(&content)
        {
            self.say(&format!("error: {e}"));
            return false;
        }
        let pending = Pending {
            client_id: uuid::Uuid::new_v4().to_string(),
            to,
            content,
            reply_to,
            attachments,
        };
        self.pending.push(pending.clone());
        self.deliver(pending, true).await
    }

    /// One attempt, and whether the server took it; a failure is told on the first (`first`),
    /// then retried quietly.
    async fn deliver(&mut self, p: Pending, first: bool) -> bool {
        let result = match &p.to {
            Target::User(u) => self.api.send_direct(u.id, &p.draft()).await,
            Target::Group { id, .. } => self.api.send_group(*id, &p.draft()).await,
        };
        match result {
            Ok(reply) => {
                self.pending.retain(|q| q.client_id != p.client_id);
                let room = reply.data.chat_room_id;
                self.note_mine(room, reply.data.id);
                if !self.names.knows(room) {
                    self.names.insert(room, p.to.label());
                }
                if let Some(c) = &mut self.current
                    && c.room.is_none()
                    && c.target.label() == p.to.label()
                {
                    c.room = Some(room);
                }
                true
            }
            Err(CliError::Server(_)) => {
                if first {
                    self.notice("not delivered yet: will resend until the server takes it");
                }
                self.resend_at
                    .get_or_insert_with(|| Instant::now() + RESEND_AFTER);
                self.wake_connection();
                false
            }
            Err(e) => {
                self.pending.retain(|q| q.client_id != p.client_id);
                self.say(&format!("error: {e}"));
                false
            }
        }
    }

    /// While the connection is down, the person at the keyboard is not kept waiting for the
    /// backoff: any frame wakes the listener, which tries again at once.
    fn wake_connection(&mut self) {
        if !self.connected {
            let _ = self.to_server.send(ClientFrame::Ping);
        }
    }

    async fn resend_pending(&mut self) {
        for p in self.pending.clone() {
            self.deliver(p, false).await;
        }
    }

    fn typing(&mut self) {
        let Some(room) = self.current_room() else {
            return;
        };
        if self.typing_sent.is_some_and(|t| t.elapsed() < TYPING_EVERY) {
            return;
        }
        self.typing_sent = Some(Instant::now());
        let _ = self.to_server.send(ClientFrame::Typing { room });
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Frame(frame) => self.frame(frame).await,
            Event::Lost {
                retry_in,
                restarting: true,
            } => {
                self.connected = false;
                self.notice(&format!(
                    "the server is restarting; reconnecting (trying every {:.0} s)",
                    retry_in.as_secs_f64().ceil()
                ));
            }
            Event::Lost { retry_in, .. } => {
                self.connected = false;
                self.notice(&format!(
                    "connection lost; reconnecting in {:.0} s (or as soon as you type)",
                    retry_in.as_secs_f64().ceil()
                ));
            }
            Event::Resumed { missed } => {
                self.connected = true;
                self.notice(&format!("reconnected ({missed} missed)"));
                if let Some(room) = self.current_room() {
                    let _ = self.to_server.send(ClientFrame::JoinRoom { room });
                }
                self.resend_pending().await;
            }
        }
    }

    async fn frame(&mut self, frame: ServerFrame) {
        if let ServerFrame::NewMessage { message, .. } = &frame
            && !self.names.knows(message.room_id)
        {
            // A new direct chat (perhaps one we started elsewhere) or a group just joined: its
            // name, before its first line is shown.
            if let Err(e) = self.refresh_names().await {
                self.notice(&format!("cannot read your chats: {e}"));
            }
            // The lists just read count this message already; `incoming` counts it again.
            if message.sender_id != Some(self.me.user_id)
                && let Some(n) = self.unread.get_mut(&message.room_id)
            {
                *n = (*n - 1).max(0);
            }
        }
        if let Some(label) = self.names.learn(&self.me.username, &frame) {
            self.remember_word(label);
        }
        match frame {
            ServerFrame::NewMessage { message, .. } => self.incoming(message),
            ServerFrame::MessageDeleted { change } => {
                self.last_mine.retain(|_, mine| *mine != change.message_id);
                let line = changed_line(&self.names, &change);
                self.notice(&line);
            }
            ServerFrame::MessageEdited { change } | ServerFrame::MessageReaction { change } => {
                let line = changed_line(&self.names, &change);
                self.notice(&line);
            }
            ServerFrame::UserTyping {
                room_id,
                user_id,
                username,
            } => self.someone_typing(room_id, user_id, &username),
            ServerFrame::Presence {
                username, status, ..
            } => self.notice(&format!("@{username} is {status}")),
            ServerFrame::MemberAdded {
                room_id,
                username,
                user_id,
                ..
            } => self.member_added(room_id, user_id, &username),
            ServerFrame::GroupUpdated {
                name,
                topic,
                is_public,
                by,
                ..
            } => {
                let line = group_updated_line(&by, &name, topic.as_deref(), is_public);
                self.notice(&line);
            }
            ServerFrame::MemberRemoved {
                room_id,
                username,
                user_id,
                removed_by,
                ..
            } => {
                let label = self.label(room_id);
                if user_id == self.me.user_id && self.current_room() == Some(room_id) {
                    self.current = None;
                }
                let line =
                    removed_line(&label, &self.me.username, &username, removed_by.as_deref());
                self.notice(&line);
            }
            ServerFrame::Read {
                room_id,
                user_id,
                unread_count: Some(n),
                ..
            } if user_id == self.me.user_id => {
                self.unread.insert(room_id, n);
            }
            _ => {}
        }
    }

    fn label(&self, room: RoomId) -> String {
        self.names.label(room)
    }

    /// Someone typing in the room you are in, shown once every few seconds.
    fn someone_typing(&mut self, room_id: RoomId, user_id: UserId, username: &str) {
        if Some(room_id) != self.current_room() || user_id == self.me.user_id {
            return;
        }
        let shown = self.typing_shown.get(&(room_id, user_id));
        if shown.is_none_or(|t| t.elapsed() > TYPING_SHOWN_FOR) {
            self.typing_shown.insert((room_id, user_id), Instant::now());
            self.notice(&format!("{username} is typing…"));
        }
    }

    fn member_added(&mut self, room_id: RoomId, user_id: UserId, username: &str) {
        let label = self.names.label(room_id);
        self.remember_word(person(username));
        if user_id == self.me.user_id {
            let here = self.current.as_ref().map(|c| c.target.label());
            if here.as_ref() != Some(&label) {
                self.notice(&format!(
                    "you were added to {label}: /join {label} to talk there"
                ));
            }
        } else {
            self.notice(&format!("@{username} joined {label}"));
        }
    }

    fn incoming(&mut self, m: LiveMessage) {
        let label = self.label(m.room_id);
        if let Some(n) = &mut self.notifier
            && n.wants(&m, label.starts_with('@'))
        {
            let from = m.sender_username.clone().unwrap_or_default();
            let title = if label.starts_with('@') {
                format!("@{from}")
            } else {
                format!("@{from} in {label}")
            };
            tokio::spawn(super::notify::raise(title, m.content.clone()));
        }
        let mine = m.sender_id == Some(self.me.user_id);
        if mine && !m.deleted {
            self.note_mine(m.room_id, m.message_id);
        }
        if mine {
            // Delivered: whatever was pending with this client id is done.
            if let Some(cid) = &m.client_id {
                self.pending.retain(|p| &p.client_id != cid);
            }
        }
        let here = self.current_room() == Some(m.room_id)
            || (self.current_room().is_none()
                && self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.target.label() == self.label(m.room_id)));
        if here {
            if let Some(c) = &mut self.current {
                c.room = Some(m.room_id);
            }
            let line = message_line(&self.style, None, &Shown::live(&m));
            if m.mention {
                // Named: the terminal's bell, and the line stands out.
                self.ring(&line);
            } else {
                self.say(&line);
            }
            if !mine {
                let _ = self.to_server.send(ClientFrame::Read {
                    room: m.room_id,
                    message_id: Some(m.message_id),
                });
            }
        } else if !mine {
            let n = self.unread.entry(m.room_id).or_default();
            *n += 1;
            let n = *n;
            let label = self.label(m.room_id);
            let sender = m.sender_username.clone().unwrap_or_default();
            let line = format!(
                "[{label}] {sender}: {}  ({n} unread)",
                super::render::snippet(&m.content, 60)
            );
            if m.mention {
                // Named elsewhere: that is when a bell matters most (the server does not mark
                // mentions in a room muted with --all).
                self.ring(&line);
            } else if !self.muted.contains(&m.room_id) {
                self.notice(&line);
            }
        }
    }
}
