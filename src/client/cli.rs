//! The `rtchat` command line: clap definitions and what each subcommand does, in human form or as
//! JSON for scripts.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Value, json};

use super::api::{Api, Draft, Page, fits_in_a_message, to_line};
use super::error::CliError;
use super::live::{self, Event};
use super::output::{Out, out, outln};
use super::password;
use super::render::{
    self, RoomNames, Shown, Style, changed_line, group, message_line, person, removed_line, table,
    when,
};
use super::session::SessionStore;
use super::target::{self, Target};
use super::transfer;
use crate::proto::{LiveMessage, MessageId, MessageWithSender, RoomId, ServerFrame};

const EXAMPLES: &str = "\
Examples:
  rtchat register alice --email alice@example.com
  rtchat login alice
  rtchat send @bob 'lunch at noon?'
  rtchat groups create team --members @bob,@carol
  rtchat send '#team' stand-up in 5
  rtchat history '#team' --limit 50
  rtchat chats
  rtchat listen --json | jq .content

Environment:
  RTCHAT_SERVER      the server, as --server (default: the server of your last login, else
                     http://127.0.0.1:8000)
  RTCHAT_CA_CERT     extra certificate authorities (PEM), as --ca-cert
  RTCHAT_CONFIG_DIR  where logins are kept (default: ~/.config/rtchat)
  RTCHAT_TOKEN       a personal access token (`rtchat tokens create`) to use instead of a login
  NO_COLOR           plain output, no colours

Exit codes: 0 ok, 1 refused by the server (not allowed, taken, invalid, too fast), 2 usage,
3 not logged in or session ended, 4 not found, 5 server unreachable or failing.";

/// The server when none is named and nobody has logged in yet.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";

#[derive(Debug, Parser)]
#[command(
    name = "rtchat",
    version,
    about = "Chat from the terminal: one-shot commands for people and scripts",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Server to talk to, e.g. https://chat.example.com [default: the server of your last
    /// login, else http://127.0.0.1:8000]
    #[arg(long, env = "RTCHAT_SERVER", global = true)]
    pub server: Option<String>,

    /// A PEM file of certificate authorities to trust besides the system's, for a server with a
    /// private CA; kept with the login for that server.
    #[arg(long, env = "RTCHAT_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account and log in.
    #[command(
        after_help = "Examples:\n  rtchat register alice --email alice@example.com --full-name 'Alice Liddell'\n  \
        printf '%s\\n' \"$PASS\" | rtchat register bot --email bot@example.com --password-stdin"
    )]
    Register {
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        full_name: Option<String>,
        /// An invite code from someone on the server (`rtchat invite`), which most servers need.
        #[arg(long, value_name = "CODE")]
        invite: Option<String>,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password with a one-time code from an admin (every session ends).
    #[command(
        after_help = "Examples:\n  rtchat reset-password --code rtcr_...\n  printf '%s\\n' \"$NEW\" | rtchat reset-password --code rtcr_... --password-stdin"
    )]
    ResetPassword {
        /// The code an admin gave you (`rtchat admin reset-password @you`).
        #[arg(long)]
        code: String,
        /// Read the new password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Invite someone to the server: prints a code and the line they run to register.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  rtchat invite                      # one account, valid 7 days\n  rtchat invite --uses 5 --expires 2d\n  rtchat invite list\n  rtchat invite revoke 12"
    )]
    Invite(super::team::InviteArgs),
    /// Administer the server (its admins and owners).
    #[command(
        subcommand,
        after_help = "Examples:\n  rtchat admin users\n  rtchat admin deactivate @mallory\n  rtchat admin reset-password @bob\n  rtchat admin promote @carol\n  rtchat admin log"
    )]
    Admin(super::team::AdminCommand),
    /// Personal access tokens, for scripts: `Authorization: Bearer TOKEN`, no refresh.
    #[command(
        subcommand,
        after_help = "Examples:\n  rtchat tokens create ci --expires 90d\n  rtchat tokens list\n  rtchat tokens revoke ci"
    )]
    Tokens(super::team::TokensCommand),
    /// Incoming webhooks: anything that can POST JSON posts into a group.
    #[command(
        subcommand,
        after_help = "Examples:\n  rtchat webhooks create '#ops' --name deploy-bot\n  rtchat webhooks list\n  rtchat webhooks revoke 3"
    )]
    Webhooks(super::team::WebhooksCommand),
    /// Log in with a username or email; the login is kept for this server.
    #[command(
        after_help = "Examples:\n  rtchat login alice\n  rtchat --server http://chat.local:8000 login alice@example.com"
    )]
    Login {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log out here (or everywhere with --all).
    #[command(after_help = "Examples:\n  rtchat logout\n  rtchat logout --all    # every device")]
    Logout {
        /// End every session of the account, on every device.
        #[arg(long)]
        all: bool,
    },
    /// List your saved logins, one per server, and whether each still works.
    #[command(
        after_help = "The default server (used when no --server is given) is marked.\n\nExamples:\n  rtchat status\n  rtchat --json status"
    )]
    Status,
    /// Show who you are logged in as.
    #[command(
        after_help = "Examples:\n  rtchat whoami\n  rtchat --json whoami | jq -r .user.username"
    )]
    Whoami,
    /// Show your profile, or change your full name or email (the email asks for your password).
    #[command(
        after_help = "Examples:\n  rtchat profile\n  rtchat profile --full-name 'Carol Danvers'\n  rtchat profile --email carol@new.example.com\n  printf '%s\\n' \"$PASS\" | rtchat profile --email carol@new.example.com --password-stdin"
    )]
    Profile {
        /// The name shown beside your username ('' clears it).
        #[arg(long)]
        full_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password (needed for --email) from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change your password (every session ends; log in again).
    #[command(
        after_help = "With --password-stdin: the current password on the first line, the new one on the second.\n\nExamples:\n  rtchat passwd\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | rtchat passwd --password-stdin"
    )]
    Passwd {
        #[arg(long)]
        password_stdin: bool,
    },
    /// Find people by the start of their username (without QUERY: the people you have chats with).
    #[command(after_help = "Examples:\n  rtchat users al      # alice, alan, ...\n  rtchat users")]
    Users {
        /// The start of a username (`al` finds alice and alan).
        query: Option<String>,
        /// How many at most.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Send a message to @user or #group. TEXT `-` reads the message from standard input.
    #[command(
        after_help = "Examples:\n  rtchat send @bob hello there\n  rtchat send '#team' 'build is green'\n  \
        git log -1 --format=%s | rtchat send '#team' -\n  \
        rtchat send @bob --file report.pdf 'the numbers'\n  \
        rtchat send '#team' -f build.log -f screenshot.png"
    )]
    Send {
        /// Who: @user (a person) or #group (a group you are in; #ID works too).
        target: String,
        #[command(flatten)]
        message: Outgoing,
    },
    /// Save a file sent in a chat (ID as shown in `history`: `[file 17]`). Never overwrites: a
    /// name that is taken gets ` (1)`.
    #[command(
        after_help = "Examples:\n  rtchat download 17\n  rtchat download 17 -o ~/Downloads\n  rtchat download 17 -o build.tar"
    )]
    Download {
        /// The file's id.
        id: crate::proto::FileId,
        /// A directory to save it in (under its own name), or a file name. Default: here.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Change the text of a message of yours (ID as shown in `history`, [ID]).
    #[command(after_help = "Examples:\n  rtchat edit 42 'the build is green now'")]
    Edit {
        /// The message's id.
        id: MessageId,
        /// The new text: the remaining words, joined by spaces.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Mute a chat or group for yourself, on every client: no ring, no notification, not in
    /// totals (its own unread count stays); mentions of you still come through unless --all.
    #[command(
        after_help = "Examples:\n  rtchat mute '#random'\n  rtchat mute '#ops' --for 2h\n  rtchat mute @bob --all"
    )]
    Mute {
        /// @user or #group.
        target: String,
        /// For this long (30m, 2h, 1d); default: until unmuted.
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
        /// Silence mentions of you there too.
        #[arg(long)]
        all: bool,
    },
    /// Unmute a chat or group.
    Unmute {
        /// @user or #group.
        target: String,
    },
    /// A thread: the message ID is in (its first message, or any reply) and every reply in
    /// order. Reply into it with `send --reply-to ID`.
    #[command(
        after_help = "Examples:\n  rtchat thread 42\n  rtchat send '#team' --reply-to 42 'agreed'"
    )]
    Thread {
        /// Any message of the thread.
        id: MessageId,
    },
    /// React to a message (ID as shown in `history`), or take a reaction back with --remove. A
    /// reaction is no message: it raises nobody's unread count.
    #[command(after_help = "Examples:\n  rtchat react 42 👍\n  rtchat react 42 👍 --remove")]
    React {
        /// The message's id.
        id: MessageId,
        /// One emoji.
        emoji: String,
        /// Take your reaction back.
        #[arg(long)]
        remove: bool,
    },
    /// Delete a message of yours (or, as a group's admin, any message of the group).
    #[command(after_help = "Examples:\n  rtchat delete 42")]
    Delete {
        /// The message's id.
        id: MessageId,
    },
    /// Find messages of your rooms by their words, newest first.
    #[command(
        after_help = "Words must all appear; \"a phrase\" matches in order; -word leaves out.\n\nExamples:\n  rtchat search deploy friday\n  rtchat search '\"build is green\"' --in '#team'\n  rtchat search deploy --before 120    # older results"
    )]
    Search {
        /// What to look for.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// Only in this @user or #group.
        #[arg(long = "in", value_name = "TARGET")]
        within: Option<String>,
        /// How many results at most.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u32,
        /// Only messages older than this id (the next page: the last id shown).
        #[arg(long, value_name = "ID")]
        before: Option<MessageId>,
    },
    /// Show recent messages with @user or #group (and mark them read).
    #[command(
        after_help = "Examples:\n  rtchat history @bob\n  rtchat history '#team' -n 100\n  rtchat history '#team' --follow"
    )]
    History {
        /// Who: @user (a person) or #group (a group you are in; #ID works too).
        target: String,
        /// How many of the newest messages to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u32,
        /// Only messages older than this id (scroll back).
        #[arg(long)]
        before: Option<i64>,
        /// Keep printing new messages as they arrive.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Your direct chats and groups, newest activity first, with unread counts.
    #[command(
        after_help = "Examples:\n  rtchat chats\n  rtchat --json chats | jq 'select(.unread_count > 0) | .name'"
    )]
    Chats,
    /// Mark everything with @user or #group read.
    #[command(after_help = "Examples:\n  rtchat read @bob\n  rtchat read '#team'")]
    Read {
        /// Who: @user (a person) or #group (a group you are in; #ID works too).
        target: String,
    },
    /// Groups: list, create, add, remove, leave, members; browse and join public ones; topic,
    /// rename, admins and handing over.
    #[command(
        subcommand,
        after_help = "Examples:\n  rtchat groups create team --members @bob,@carol\n  rtchat groups members '#team'"
    )]
    Groups(GroupsCommand),
    /// Print incoming messages as they arrive (all rooms, or one), reconnecting as needed.
    #[command(after_help = "Examples:\n  rtchat listen\n  rtchat listen '#team' --json")]
    Listen {
        /// Only this @user or #group (all your rooms when left out).
        target: Option<String>,
        /// Only messages that name you (@you).
        #[arg(long)]
        mentions: bool,
        /// Also raise a desktop notification for direct messages and mentions of you (not for
        /// muted rooms but their mentions; at most one every 5 s per room).
        #[arg(long)]
        notify: bool,
    },
    /// Chat interactively: a prompt in one room, live messages above it, /commands.
    #[command(
        after_help = "Examples:\n  rtchat chat '#team'\n  rtchat chat @bob\n\nInside, /help lists the commands."
    )]
    Chat {
        /// The room to start in: @user or #group.
        target: Option<String>,
        /// Raise desktop notifications for direct messages and mentions, as `listen --notify`.
        #[arg(long)]
        notify: bool,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  rtchat completions bash > ~/.local/share/bash-completion/completions/rtchat\n  \
        rtchat completions zsh > ~/.zfunc/_rtchat\n  rtchat completions fish > ~/.config/fish/completions/rtchat.fish"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Your groups.
    #[command(after_help = "Example:\n  rtchat groups list")]
    List,
    /// Create a group (you own it).
    #[command(
        after_help = "Examples:\n  rtchat groups create team --members @bob,@carol\n  rtchat groups create general --public"
    )]
    Create {
        /// The group's name.
        name: String,
        /// People to add besides you, comma-separated: @bob,@carol.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        /// Anyone on the server may find it (`groups browse`) and join it.
        #[arg(long)]
        public: bool,
    },
    /// Add people to a group (its admin only).
    #[command(after_help = "Example:\n  rtchat groups add '#team' @carol @dave")]
    Add {
        group: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove someone from a group (its admin only).
    #[command(after_help = "Example:\n  rtchat groups remove '#team' @carol")]
    Remove { group: String, user: String },
    /// Leave a group.
    #[command(after_help = "Example:\n  rtchat groups leave '#team'")]
    Leave { group: String },
    /// Who is in a group.
    #[command(
        after_help = "Examples:\n  rtchat groups members '#team'\n  rtchat groups members '#3' --json"
    )]
    Members { group: String },
    #[command(flatten)]
    Settings(super::group_settings::GroupSettingsCommand),
}

/// The server to talk to: the one named (flag or environment), else the last one logged in to,
/// else the local default. A named one must be an http(s) URL.
fn server(named: Option<&str>, store: &SessionStore) -> Result<String, CliError> {
    let Some(named) = named else {
        return Ok(store
            .default_server()?
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()));
    };
    let named = named.trim();
    if !named.contains("://") {
        return Err(CliError::Usage(format!(
            "--server {named}: give the scheme, e.g. https://{named} (or http:// for a server without TLS)"
        )));
    }
    match reqwest::Url::parse(named) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(named.trim_end_matches('/').to_string())
        }
        _ => Err(CliError::Usage(format!(
            "--server {named}: expected a URL such as https://chat.example.com or http://127.0.0.1:8000"
        ))),
    }
}

/// The client for this run: signed in with `RTCHAT_TOKEN` when it is set, else with the saved
/// login of the server.
async fn client(cli: &Cli, store: &SessionStore) -> Result<Api, CliError> {
    let base = server(cli.server.as_deref(), store)?;
    match std::env::var("RTCHAT_TOKEN") {
        Ok(token) if !token.trim().is_empty() => {
            Api::with_token(&base, &token, cli.ca_cert.clone()).await
        }
        _ => Api::new(&base, store.clone(), cli.ca_cert.clone()),
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let store = SessionStore::default_location();
    let api = client(&cli, &store).await?;
    let out = Out {
        json: cli.json,
        style: Style::detect(),
    };
    match cli.command {
        Command::Register {
            username,
            email,
            full_name,
            invite,
            password_stdin,
        } => {
            let account = (username.as_str(), email.as_str(), full_name.as_deref());
            register(&api, &out, account, invite.as_deref(), password_stdin).await?
        }
        Command::ResetPassword {
            code,
            password_stdin,
        } => super::team::reset_password(&api, &out, &code, password_stdin).await?,
        Command::Invite(args) => super::team::invite(&api, &out, args).await?,
        Command::Admin(cmd) => super::team::admin(&api, &out, cmd).await?,
        Command::Tokens(cmd) => super::team::tokens(&api, &out, cmd).await?,
        Command::Webhooks(cmd) => super::team::webhooks(&api, &out, cmd).await?,
        Command::Login {
            login,
            password_stdin,
        } => sign_in(&api, &out, &login, password_stdin).await?,
        Command::Logout { all } => {
            let reply = api.logout(all).await?;
            out.done(&reply, format_args!("Logged out of {}", api.base()));
        }
        Command::Status => status(&store, &api, &out).await?,
        Command::Whoami => whoami(&api, &out).await?,
        Command::Profile {
            full_name,
            email,
            password_stdin,
        } => profile(&api, &out, full_name, email, password_stdin).await?,
        Command::Passwd { password_stdin } => passwd(&api, &out, password_stdin).await?,
        Command::Users { query, limit } => users(&api, &out, query, limit).await?,
        Command::Send { target, message } => send(&api, &out, &target, message).await?,
        Command::Download { id, output } => download(&api, &out, id, output).await?,
        Command::Edit { id, text } => edit(&api, &out, id, &text.join(" ")).await?,
        Command::Thread { id } => thread(&api, &out, id).await?,
        cmd @ (Command::Mute { .. } | Command::Unmute { .. }) => mute(&api, &out, cmd).await?,
        Command::React { id, emoji, remove } => react(&api, &out, id, &emoji, !remove).await?,
        Command::Delete { id } => {
            let change = api.delete(id).await?;
            out.done(&change, format_args!("deleted (message {id})"));
        }
        Command::Search {
            query,
            within,
            limit,
            before,
        } => search(&api, &out, &query.join(" "), within, limit, before).await?,
        Command::History {
            target,
            limit,
            before,
            follow,
        } => history(&api, &out, &target, limit, before, follow).await?,
        Command::Chats => chats(&api, &out).await?,
        Command::Read { target } => mark_read(&api, &out, &target).await?,
        Command::Groups(cmd) => groups(&api, &out, cmd).await?,
        Command::Listen {
            target,
            mentions,
            notify,
        } => listen(&api, &out, target, (mentions, notify)).await?,
        Command::Chat { target, notify } => super::repl::run(api, target, notify).await?,
        Command::Completions { shell } => completions(shell),
    }
    Ok(())
}

fn completions(shell: clap_complete::Shell) {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "rtchat", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
}

/// `(username, email, full name)`, with a password asked twice (or read from stdin).
async fn register(
    api: &Api,
    out: &Out,
    (username, email, full_name): (&str, &str, Option<&str>),
    invite: Option<&str>,
    password_stdin: bool,
) -> Result<(), CliError> {
    let password = if password_stdin {
        password::new_from_stdin()?
    } else {
        password::new_password("Password").await?
    };
    let reply = api
        .register_with_invite(username, email, &password, full_name, invite)
        .await?;
    out.signed_in(api, &reply.user, "Registered and logged in");
    Ok(())
}

async fn sign_in(api: &Api, out: &Out, login: &str, password_stdin: bool) -> Result<(), CliError> {
    let password = if password_stdin {
        password::stdin_line()?
    } else {
        password::prompt("Password: ").await?
    };
    let reply = api.login(login, &password).await?;
    out.signed_in(api, &reply.user, "Logged in");
    Ok(())
}

async fn listen(
    api: &Api,
    out: &Out,
    target: Option<String>,
    (mentions, notify): (bool, bool),
) -> Result<(), CliError> {
    let room = match target {
        Some(t) => Some(existing_room(api, &t).await?),
        None => None,
    };
    let only = if mentions { Only::Mentions } else { Only::All };
    let notifier = if notify {
        Some(super::notify::notifier(api).await?)
    } else {
        None
    };
    follow_live(api, out, room, only, notifier).await
}

async fn whoami(api: &Api, out: &Out) -> Result<(), CliError> {
    let me = api.me().await?;
    if out.json {
        out.line(&json!({"server": api.base(), "user": me}));
    } else {
        let name = me
            .full_name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        outln!("@{}{name} <{}> on {}", me.username, me.email, api.base());
    }
    Ok(())
}

async fn edit(api: &Api, out: &Out, id: MessageId, text: &str) -> Result<(), CliError> {
    fits_in_a_message(text)?;
    let change = api.edit(id, text).await?;
    out.done(&change, format_args!("edited (message {id})"));
    Ok(())
}

async fn mark_read(api: &Api, out: &Out, target: &str) -> Result<(), CliError> {
    let room = existing_room(api, target).await?;
    let state = api.mark_read(room).await?;
    out.done(&state, format_args!("{target} marked read"));
    Ok(())
}

/// Shows the profile (as whoami), after changing what was given.
async fn profile(
    api: &Api,
    out: &Out,
    full_name: Option<String>,
    email: Option<String>,
    password_stdin: bool,
) -> Result<(), CliError> {
    if full_name.is_none() && email.is_none() {
        return whoami(api, out).await;
    }
    let current_password = match &email {
        Some(_) if password_stdin => Some(password::stdin_line()?),
        Some(_) => Some(password::prompt("Password: ").await?),
        None => None,
    };
    let change = crate::proto::UpdateProfileRequest {
        full_name,
        email,
        current_password,
    };
    api.update_profile(&change).await?;
    eprintln!("profile changed");
    whoami(api, out).await
}

/// The current password and a new one: two lines of stdin, or prompted (the new one twice).
async fn passwd(api: &Api, out: &Out, from_stdin: bool) -> Result<(), CliError> {
    let (old, new) = if from_stdin {
        let mut lines = std::io::stdin().lock().lines();
        let mut next = || -> Result<String, CliError> {
            lines.next().transpose()?.ok_or_else(|| {
                CliError::Usage("expected two lines on stdin: current and new password".into())
            })
        };
        (next()?, next()?)
    } else {
        let old = password::prompt("Current password: ").await?;
        let new = password::new_password("New password").await?;
        (old, new)
    };
    let reply = api.change_password(&old, &new).await?;
    out.done(
        &reply,
        format_args!("Password changed; every session has ended. Run `rtchat login` again."),
    );
    Ok(())
}

/// Saves file `id`; says where (or, with --json, a line with its id, path and size).
async fn download(
    api: &Api,
    out: &Out,
    id: crate::proto::FileId,
    output: Option<PathBuf>,
) -> Result<(), CliError> {
    let (path, size) = transfer::download(api, id, output.as_deref()).await?;
    if out.json {
        out.line(&json!({"id": id, "path": path, "size": size}));
    } else {
        eprintln!("{}", transfer::saved_line(&path, size));
    }
    Ok(())
}

/// `mute TARGET [--for D] [--all]`, or `unmute TARGET`.
async fn mute(api: &Api, out: &Out, command: Command) -> Result<(), CliError> {
    let (target, duration, all) = match command {
        Command::Mute {
            target,
            duration,
            all,
        } => (target, Some(duration), all),
        Command::Unmute { target } => (target, None, false),
        _ => return Ok(()),
    };
    let target = target.as_str();
    let room = existing_room(api, target).await?;
    let Some(duration) = duration else {
        let state = api.mute(room, None, false, false).await?;
        out.done(&state, format_args!("{target} unmuted"));
        return Ok(());
    };
    let state = api.mute(room, duration, all, true).await?;
    let until = match &state.muted_until {
        Some(t) => format!(" until {}", when(t)),
        None => " until you unmute it".into(),
    };
    let mentions = if all {
        ", mentions of you too"
    } else {
        "; mentions of you still come through"
    };
    out.done(&state, format_args!("{target} muted{until}{mentions}"));
    Ok(())
}

/// `thread ID`: the first message, then each reply (JSON lines: the same order).
async fn thread(api: &Api, out: &Out, id: MessageId) -> Result<(), CliError> {
    let thread = api.thread(id).await?;
    for m in std::iter::once(&thread.root).chain(&thread.replies) {
        if out.json {
            out.line(m);
        } else {
            outln!("{}", message_line(&out.style, None, &Shown::stored(m)));
        }
    }
    Ok(())
}

/// `react ID EMOJI [--remove]`: says what changed (or that nothing did).
async fn react(
    api: &Api,
    out: &Out,
    id: MessageId,
    emoji: &str,
    add: bool,
) -> Result<(), CliError> {
    let change = api.react(id, emoji, add).await?;
    if out.json {
        out.line(&json!({"message_id": id, "emoji": emoji, "change": change}));
        return Ok(());
    }
    let count = change
        .as_ref()
        .and_then(|c| c.reaction.as_ref())
        .map(|r| r.count);
    match (add, count) {
        (true, Some(n)) => eprintln!("reacted {emoji} to message {id} ({n} in all)"),
        (false, Some(n)) => eprintln!("took back {emoji} from message {id} ({n} left)"),
        (true, None) => eprintln!("you had reacted {emoji} to message {id} already"),
        (false, None) => eprintln!("you had not reacted {emoji} to message {id}"),
    }
    Ok(())
}

/// What `send` sends.
#[derive(Debug, clap::Args)]
pub(crate) struct Outgoing {
    /// The message: the remaining words, joined by spaces; `-` reads standard input. May be
    /// left out when sending files.
    #[arg(required_unless_present = "file", num_args = 0..)]
    text: Vec<String>,
    /// Attach this file (again for more, up to 10); a progress bar shows on a terminal.
    #[arg(id = "file", long = "file", short = 'f', value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Retry key: the same id never stores a second message (random by default).
    #[arg(long)]
    client_id: Option<String>,
    /// Answer this message (its id, shown in `history` as [ID]).
    #[arg(long, value_name = "ID")]
    reply_to: Option<MessageId>,
}

/// Sends TEXT (or, for `-`, standard input) and any files to a person or group; quiet on success.
async fn send(api: &Api, out: &Out, target: &str, message: Outgoing) -> Result<(), CliError> {
    let text = &message.text;
    let content = if text.len() == 1 && text[0] == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        text.join(" ")
    };
    if message.files.is_empty() || !content.is_empty() {
        fits_in_a_message(&content)?;
    }
    // Who it goes to is checked before any file is sent.
    let to = target::resolve(api, target).await?;
    let attachments = transfer::upload_all(api, &message.files).await?;
    let client_id = message
        .client_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let draft = Draft {
        content: &content,
        client_id: &client_id,
        reply_to: message.reply_to,
        attachments: &attachments,
    };
    let reply = match to {
        Target::User(u) => api.send_direct(u.id, &draft).await?,
        Target::Group { id, .. } => api.send_group(id, &draft).await?,
    };
    if out.json {
        out.line(&reply.data);
    } else {
        // The id is what `edit`, `delete` and `--reply-to` take.
        eprintln!("sent (message {})", reply.data.id);
    }
    Ok(())
}

/// The room of a person or group one already has a chat with.
async fn existing_room(api: &Api, target: &str) -> Result<RoomId, CliError> {
    let t = target::resolve(api, target).await?;
    target::room_of(api, &t)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no chat with {} yet", t.label())))
}

/// Like `gh auth status`: each saved login, whether the server still takes it, and which one is the
/// default.
async fn status(store: &SessionStore, current: &Api, out: &Out) -> Result<(), CliError> {
    let logins = store.all()?;
    let default = store.default_server()?;
    if logins.is_empty() && !out.json {
        eprintln!("Not logged in anywhere: run `rtchat --server URL login USERNAME`");
        return Ok(());
    }
    for (server, session) in logins {
        let api = match Api::new(&server, store.clone(), None) {
            Ok(api) => api,
            Err(e) => {
                outln!("{server}\n  logged in as @{} - {e}", session.username);
                continue;
            }
        };
        let state = match api.me().await {
            Ok(_) => "ok",
            Err(CliError::Auth(_)) => "session ended",
            Err(_) => "unreachable",
        };
        let is_default = default.as_deref() == Some(server.as_str());
        if out.json {
            out.line(&json!({"server": server, "username": session.username,
                "state": state, "default": is_default, "current": server == current.base()}));
        } else {
            let mark = if is_default { " (default)" } else { "" };
            outln!(
                "{server}{mark}\n  logged in as @{} - {state}",
                session.username
            );
        }
    }
    Ok(())
}

async fn users(api: &Api, out: &Out, query: Option<String>, limit: u32) -> Result<(), CliError> {
    let people: Vec<Value> = match query {
        Some(q) => api
            .search_users(q.trim_start_matches('@'), limit)
            .await?
            .into_iter()
            .map(|u| json!({"id": u.id, "username": u.username, "full_name": u.full_name, "is_bot": u.is_bot}))
            .collect(),
        None => api
            .chats()
            .await?
            .into_iter()
            .map(|c| json!({"id": c.other_user_id, "username": c.other_user_username, "full_name": c.other_user_full_name}))
            .collect(),
    };
    if out.json {
        people.iter().for_each(|p| out.line(p));
    } else {
        let rows: Vec<Vec<String>> = people
            .iter()
            .map(|p| {
                vec![
                    out.style.bold(&render::listed_person(
                        p["username"].as_str().unwrap_or_default(),
                        p["is_bot"].as_bool().unwrap_or(false),
                    )),
                    p["full_name"].as_str().unwrap_or_default().to_string(),
                ]
            })
            .collect();
        out!("{}", table(&rows));
    }
    Ok(())
}

fn print_history_message(out: &Out, m: &MessageWithSender) {
    if out.json {
        out.line(m);
    } else {
        outln!("{}", message_line(&out.style, None, &Shown::stored(m)));
    }
}

async fn history(
    api: &Api,
    out: &Out,
    target: &str,
    limit: u32,
    before: Option<i64>,
    follow: bool,
) -> Result<(), CliError> {
    let t = target::resolve(api, target).await?;
    let page = Page {
        limit: Some(limit.clamp(1, 100)),
        before,
        after: None,
    };
    let messages = match &t {
        Target::User(u) => api.direct_history(u.id, page).await?,
        Target::Group { id, .. } => api.group_history(*id, page).await?,
    };
    for m in &messages {
        print_history_message(out, m);
    }
    if follow {
        let room = match messages.first() {
            Some(m) => Some(m.message.chat_room_id),
            None => target::room_of(api, &t).await?,
        };
        let Some(room) = room else {
            return Err(CliError::NotFound(format!(
                "no chat with {} yet: send a first message",
                t.label()
            )));
        };
        follow_live(api, out, Some(room), Only::All, None).await?;
    }
    Ok(())
}

async fn chats(api: &Api, out: &Out) -> Result<(), CliError> {
    let (direct, groups) = tokio::try_join!(api.chats(), api.groups())?;
    // One list, newest activity first.
    let mut rows: Vec<(Option<crate::proto::Timestamp>, Value)> = Vec::new();
    for c in direct {
        rows.push((
            c.last_message_time,
            json!({"kind": "direct", "room_id": c.chat_room_id, "name": person(&c.other_user_username),
                   "user_id": c.other_user_id, "last_message": c.last_message,
                   "last_message_sender": c.last_message_sender,
                   "last_message_time": c.last_message_time, "unread_count": c.unread_count,
                   "mention_count": c.mention_count, "muted": c.muted,
                   "muted_until": c.muted_until, "mute_all": c.mute_all}),
        ));
    }
    for g in groups {
        rows.push((
            g.last_message_time.or(Some(g.created_at)),
            json!({"kind": "group", "room_id": g.id, "name": group(&g.name),
                   "topic": g.topic, "is_public": g.is_public,
                   "member_count": g.member_count, "last_message": g.last_message,
                   "last_message_sender": g.last_message_sender,
                   "last_message_time": g.last_message_time, "unread_count": g.unread_count,
                   "mention_count": g.mention_count, "muted": g.muted,
                   "muted_until": g.muted_until, "mute_all": g.mute_all}),
        ));
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    if out.json {
        rows.iter().for_each(|(_, v)| out.line(v));
        return Ok(());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(t, v)| {
            let unread = v["unread_count"].as_i64().unwrap_or(0);
            let mentions = v["mention_count"].as_i64().unwrap_or(0);
            let label = match (v["kind"].as_str(), v["room_id"].as_i64()) {
                (Some("group"), Some(id)) => {
                    let name = v["name"].as_str().unwrap_or_default();
                    let label = render::group_with_id(name.trim_start_matches('#'), id as RoomId);
                    match v["topic"].as_str() {
                        Some(topic) => format!("{label} · {}", render::snippet(topic, 30)),
                        None => label,
                    }
                }
                _ => v["name"].as_str().unwrap_or_default().to_string(),
            };
            let label = if v["muted"].as_bool() == Some(true) {
                format!("{label} {}", out.style.dim("(muted)"))
            } else {
                label
            };
            vec![
                if unread > 0 {
                    out.style.bold(&label)
                } else {
                    label
                },
                render::unread(unread, mentions),
                t.as_ref().map(when).unwrap_or_default(),
                render::last_message(
                    v["last_message_sender"].as_str(),
                    v["last_message"].as_str().unwrap_or_default(),
                    50,
                ),
            ]
        })
        .collect();
    out!("{}", table(&table_rows));
    Ok(())
}

/// Creates a group, with a note when the name now names several of yours.
async fn create_group(
    api: &Api,
    out: &Out,
    name: &str,
    members: &[String],
    public: bool,
) -> Result<(), CliError> {
    let mut ids = Vec::new();
    for m in members.iter().filter(|m| !m.trim().is_empty()) {
        ids.push(target::resolve_user(api, m.trim()).await?.id);
    }
    let namesakes = api
        .groups()
        .await?
        .iter()
        .filter(|g| g.name.eq_ignore_ascii_case(name.trim()))
        .count();
    let reply = api.create_group_with(name, &ids, public).await?;
    let g = &reply.group;
    if out.json {
        out.line(g);
    } else {
        outln!("{}", render::group_with_id(&g.name, g.id));
    }
    if namesakes > 0 {
        // `#name` alone would name several groups now.
        eprintln!(
            "note: you are in {} groups named {}; this one is #{}",
            namesakes + 1,
            group(&g.name),
            g.id
        );
    }
    Ok(())
}

async fn groups(api: &Api, out: &Out, cmd: GroupsCommand) -> Result<(), CliError> {
    match cmd {
        GroupsCommand::List => {
            let groups = api.groups().await?;
            if out.json {
                groups.iter().for_each(|g| out.line(g));
            } else {
                out!("{}", render::groups_table(&out.style, &groups));
            }
        }
        GroupsCommand::Create {
            name,
            members,
            public,
        } => create_group(api, out, &name, &members, public).await?,
        GroupsCommand::Settings(cmd) => super::group_settings::run(api, out, cmd).await?,
        GroupsCommand::Add { group: g, users } => {
            let (id, name) = target::resolve_group(api, &g).await?;
            let mut ids = Vec::new();
            let mut names = Vec::new();
            for u in &users {
                let user = target::resolve_user(api, u).await?;
                ids.push(user.id);
                names.push(person(&user.username));
            }
            let reply = api.add_members(id, &ids).await?;
            if out.json {
                out.line(&reply);
            } else if reply.members_added == 0 {
                eprintln!("already in {}: {}", group(&name), names.join(", "));
            } else {
                eprintln!("added to {}: {}", group(&name), names.join(", "));
            }
        }
        GroupsCommand::Remove { group: g, user } => {
            let (id, name) = target::resolve_group(api, &g).await?;
            let user = target::resolve_user(api, &user).await?;
            let reply = api.remove_member(id, user.id).await?;
            let (who, from) = (person(&user.username), group(&name));
            out.done(&reply, format_args!("removed {who} from {from}"));
        }
        GroupsCommand::Leave { group: g } => {
            let (id, name) = target::resolve_group(api, &g).await?;
            let me = api.session()?;
            let reply = api.remove_member(id, me.user_id).await?;
            out.done(&reply, format_args!("you left {}", group(&name)));
        }
        GroupsCommand::Members { group } => {
            let (id, _) = target::resolve_group(api, &group).await?;
            let members = api.members(id).await?;
            if out.json {
                members.iter().for_each(|m| out.line(m));
            } else {
                let rows: Vec<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        vec![
                            out.style
                                .bold(&render::listed_person(&m.username, m.is_bot)),
                            m.full_name.clone().unwrap_or_default(),
                            match m.role.as_str() {
                                "" if m.is_admin => "admin".into(),
                                "member" => String::new(),
                                role => role.to_string(),
                            },
                        ]
                    })
                    .collect();
                out!("{}", table(&rows));
            }
        }
    }
    Ok(())
}

/// Prints live events (all rooms, or one) until interrupted.
/// What `listen` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    /// Messages that name the listener, nothing else.
    Mentions,
}

/// Messages matching `query`, newest first, with the room of each.
async fn search(
    api: &Api,
    out: &Out,
    query: &str,
    within: Option<String>,
    limit: u32,
    before: Option<MessageId>,
) -> Result<(), CliError> {
    let room = match within {
        Some(t) => Some(existing_room(api, &t).await?),
        None => None,
    };
    let (reply, names) = tokio::try_join!(
        api.search(query, room, before, limit.clamp(1, 100)),
        room_names(api)
    )?;
    if out.json {
        reply.results.iter().for_each(|m| out.line(m));
        return Ok(());
    }
    if reply.results.is_empty() {
        eprintln!("no messages match");
    }
    for m in &reply.results {
        outln!("{}", live_line(&out.style, &names, m, true));
    }
    if let Some(older) = reply.next_before {
        eprintln!("more: rtchat search {query:?} --before {older}");
    }
    Ok(())
}

async fn follow_live(
    api: &Api,
    out: &Out,
    room: Option<RoomId>,
    only: Only,
    mut notifier: Option<super::notify::Notifier>,
) -> Result<(), CliError> {
    let mut names = room_names(api).await?;
    let me = api.session()?.username;
    // The listener hands events over a channel, so that a room never seen before can be looked up
    // (its name) before its first message is printed.
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let listening = live::listen(api, None, move |event| events_tx.send(event).is_ok());
    let printing = async {
        while let Some(event) = events.recv().await {
            if let Event::Frame(frame) = &event {
                names.learn(&me, frame);
                if let ServerFrame::NewMessage { message, .. } = frame
                    && !names.knows(message.room_id)
                {
                    // A new direct chat we started elsewhere, or a group unknown so far.
                    if let Ok(fresh) = room_names(api).await {
                        names = fresh;
                    }
                    // Asked once: a room still unnamed keeps its number.
                    let label = names.label(message.room_id);
                    names.insert(message.room_id, label);
                }
                if let (Some(n), ServerFrame::NewMessage { message, .. }) = (&mut notifier, frame) {
                    let label = names.label(message.room_id);
                    if n.wants(message, label.starts_with('@')) {
                        let from = message.sender_username.clone().unwrap_or_default();
                        let title = if label.starts_with('@') {
                            format!("@{from}")
                        } else {
                            format!("@{from} in {label}")
                        };
                        tokio::spawn(super::notify::raise(title, message.content.clone()));
                    }
                }
            }
            print_live(out, &names, &me, room, only, event);
        }
    };
    tokio::select! {
        listened = listening => listened,
        () = printing => Ok(()),
    }
}

/// One live event as `listen` (or `history --follow`) prints it.
fn print_live(
    out: &Out,
    names: &RoomNames,
    me: &str,
    room: Option<RoomId>,
    only: Only,
    event: Event,
) {
    match event {
        Event::Frame(frame) => {
            if let Some(r) = room
                && frame.room() != Some(r)
            {
                return;
            }
            let named =
                matches!(&frame, ServerFrame::NewMessage { message, .. } if message.mention);
            if only == Only::Mentions && !named {
                return;
            }
            if out.json {
                outln!("{}", to_line(&frame));
            } else if let ServerFrame::NewMessage { message, .. } = &frame {
                outln!("{}", live_line(&out.style, names, message, room.is_none()));
            } else if let Some(text) = notice(names, me, &frame) {
                outln!("{}", out.style.dim(&text));
            }
        }
        Event::Lost {
            retry_in,
            restarting,
        } => {
            let why = if restarting {
                "the server is restarting"
            } else {
                "connection lost"
            };
            eprintln!(
                "{why}; reconnecting (next try in {:.0} s)",
                retry_in.as_secs_f64().ceil()
            );
        }
        Event::Resumed { missed } => eprintln!("reconnected ({missed} missed messages shown)"),
    }
}

/// Room labels for live output.
async fn room_names(api: &Api) -> Result<RoomNames, CliError> {
    let (direct, groups) = tokio::try_join!(api.chats(), api.groups())?;
    Ok(RoomNames::from_lists(&direct, &groups))
}

fn live_line(style: &Style, names: &RoomNames, m: &LiveMessage, show_room: bool) -> String {
    let room = show_room.then(|| names.label(m.room_id));
    message_line(style, room.as_deref(), &Shown::live(m))
}

fn notice(names: &RoomNames, me: &str, frame: &ServerFrame) -> Option<String> {
    let room = |id: &RoomId| names.label(*id);
    match frame {
        ServerFrame::MemberAdded {
            room_id,
            name,
            username,
            ..
        } => Some(format!(
            "@{username} joined {}",
            name.as_ref()
                .map(|n| format!("#{n}"))
                .unwrap_or_else(|| room(room_id))
        )),
        ServerFrame::MemberRemoved {
            room_id,
            username,
            removed_by,
            ..
        } => Some(removed_line(
            &room(room_id),
            me,
            username,
            removed_by.as_deref(),
        )),
        ServerFrame::MessageEdited { change }
        | ServerFrame::MessageDeleted { change }
        | ServerFrame::MessageReaction { change } => Some(changed_line(names, change)),
        ServerFrame::GroupUpdated {
            name,
            topic,
            is_public,
            by,
            ..
        } => Some(render::group_updated_line(
            by,
            name,
            topic.as_deref(),
            *is_public,
        )),
        _ => None,
    }
}
