//! `rtchat chat` driven in a pseudo-terminal: two people converse, typing shows on the other side
//! only, the slash commands work, and a server restart mid-conversation loses and doubles nothing.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use expectrl::{Expect, Session};
use rtchat::client::session::{Session as Login, SessionStore};

use crate::common::{TestApp, TestUser, spawn_app};

/// One person at a terminal running `rtchat chat`.
struct Terminal {
    pty: expectrl::session::OsSession,
    config: PathBuf,
    /// Everything the terminal has shown so far.
    screen: String,
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self
            .pty
            .get_process_mut()
            .kill(expectrl::process::unix::Signal::SIGKILL);
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

/// What `rtchat login` would have saved for `user` in the config directory `config`.
fn save_login(config: &std::path::Path, app: &TestApp, user: &TestUser, name: &str) {
    SessionStore::at(config.to_path_buf())
        .put(
            &app.address,
            Some(&Login {
                username: name.into(),
                user_id: user.id as i32,
                access_token: user.access.clone(),
                refresh_token: user.refresh.clone(),
                ca_cert: None,
            }),
        )
        .unwrap();
}

impl Terminal {
    fn open(app: &TestApp, user: &TestUser, name: &str, target: &str) -> Terminal {
        let config =
            std::env::temp_dir().join(format!("rtchat-repl-{}", uuid::Uuid::new_v4().simple()));
        save_login(&config, app, user, name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtchat"));
        cmd.args(["chat", target])
            .env("RTCHAT_SERVER", &app.address)
            .env("RTCHAT_CONFIG_DIR", &config)
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        let mut pty = Session::spawn(cmd).expect("a pty");
        pty.set_expect_timeout(Some(Duration::from_secs(20)));
        let mut t = Terminal {
            pty,
            config,
            screen: String::new(),
        };
        t.expect(&format!("{target}> "));
        t
    }

    /// Waits until `text` shows (off the async workers: the pty read blocks, and the server under
    /// test runs on the same runtime).
    fn expect(&mut self, text: &str) {
        match tokio::task::block_in_place(|| self.pty.expect(text)) {
            Ok(found) => {
                self.screen
                    .push_str(&String::from_utf8_lossy(found.before()));
                self.screen.push_str(text);
            }
            Err(e) => {
                // What did show instead, for the failure message.
                let rest = self
                    .pty
                    .check(expectrl::Regex("(?s).+"))
                    .map(|f| String::from_utf8_lossy(f.as_bytes()).into_owned())
                    .unwrap_or_default();
                panic!(
                    "{text:?} never showed ({e}); the screen so far:\n{}\n-- then:\n{rest:?}",
                    self.screen
                )
            }
        }
    }

    /// Types a line and presses Enter.
    fn type_line(&mut self, text: &str) {
        self.pty.send(text).unwrap();
        self.pty.send("\r").unwrap();
    }

    fn count(&self, text: &str) -> usize {
        self.screen.matches(text).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_converse_and_typing_shows_on_the_other_side() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    app.group_send(&alice, g, "welcome").await;

    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    assert!(
        a.screen.contains("alice: welcome"),
        "history on entering: {}",
        a.screen
    );
    app.wait_for_sockets(2).await;

    // Typing without Enter: bob sees it, alice does not see her own.
    a.pty.send("hello b").unwrap();
    b.expect("alice is typing…");
    a.pty.send("ob\r").unwrap();
    b.expect("alice: hello bob");
    a.expect("alice: hello bob");
    b.pty.send("hi al").unwrap();
    a.expect("bob is typing…");
    b.pty.send("ice\r").unwrap();
    a.expect("bob: hi alice");
    assert_eq!(a.count("alice is typing"), 0, "{}", a.screen);
    assert_eq!(b.count("bob is typing"), 0, "{}", b.screen);

    // A message elsewhere is a one-line notice with the unread count.
    let dm_from = app.register("carol").await;
    app.dm(&dm_from, &bob, "psst").await;
    b.expect("[@carol] carol: psst  (1 unread)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.register("carol").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    for i in 1..=5 {
        app.group_send(&bob, g, &format!("old {i}")).await;
    }
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    // /who asks the server who is online: wait until it counts the REPL's socket.
    let mut online = false;
    for _ in 0..100 {
        let r = app.get("/ws/online-users", Some(&bob.access)).await;
        if r.body["online_users"]
            .as_array()
            .is_some_and(|ids| ids.contains(&alice.id.into()))
        {
            online = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(online, "alice's REPL came online");

    a.type_line("/history 2");
    a.expect("bob: old 4");
    a.expect("bob: old 5");
    a.type_line("/who");
    a.expect("@alice  owner  online");
    a.expect("@bob");
    a.type_line("/join @bob");
    a.expect("@bob> ");
    a.type_line("just us");
    a.expect("alice: just us");
    a.type_line("/create crew @bob @carol");
    a.expect("#crew> ");
    a.type_line("/who");
    a.expect("@carol");
    a.type_line("/leave");
    a.expect("you left #crew");
    a.type_line("/nonsense");
    a.expect("/help lists commands");
    a.type_line("/help");
    a.expect("/join @user|#group");
    a.type_line("/quit");
    a.pty
        .expect(expectrl::Eof)
        .expect("the REPL exits on /quit");
    let history = std::fs::read_to_string(a.config.join("chat_history")).unwrap();
    assert!(
        history.contains("/join @bob"),
        "line history is kept: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_loses_and_doubles_nothing() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_group(&alice, "team", &[&bob]).await;
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    app.wait_for_sockets(2).await;

    a.type_line("m1 before");
    b.expect("alice: m1 before");
    b.type_line("m2 before");
    a.expect("bob: m2 before");

    app.stop_server().await;
    // Closed with 1001: the REPL says why, and tries again every second or so.
    a.expect("the server is restarting");
    b.expect("the server is restarting");
    // Typed while the server is down: kept and sent again with the same client id.
    a.type_line("m3 during");
    a.expect("will resend");
    b.type_line("m4 during");
    b.expect("will resend");
    app.start_server().await;

    a.expect("reconnected");
    b.expect("reconnected");
    a.type_line("m5 after");
    b.expect("alice: m5 after");
    b.type_line("m6 end");
    // Messages show in id order per room: once m6 shows, everything before it has.
    a.expect("bob: m6 end");
    b.expect("bob: m6 end");

    for (who, t) in [("alice", &a), ("bob", &b)] {
        for line in [
            "alice: m1 before",
            "bob: m2 before",
            "alice: m3 during",
            "bob: m4 during",
            "alice: m5 after",
            "bob: m6 end",
        ] {
            assert_eq!(t.count(line), 1, "{who} shows {line:?} once:\n{}", t.screen);
        }
    }
    let db = app.sql().await;
    let stored: Vec<String> = db
        .query("SELECT content FROM messages ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 6, "{stored:?}");
    for m in ["m1 before", "m2 before", "m5 after", "m6 end"] {
        assert_eq!(stored.iter().filter(|s| *s == m).count(), 1);
    }
    assert!(
        stored.iter().position(|s| s == "m1 before") < stored.iter().position(|s| s == "m5 after")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_clears_the_line_and_ctrl_d_leaves() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let g = app.create_group(&alice, "team", &[&bob]).await;
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    app.wait_for_sockets(1).await;
    // Each key once the terminal has shown the last one's effect.
    a.pty.send("never sent").unwrap();
    a.expect("never sent");
    a.pty.send("\x03").unwrap(); // Ctrl-C: the line is dropped, the prompt stays
    a.expect("#team> ");
    a.type_line("sent");
    a.expect("alice: sent");
    a.expect("#team> ");
    // Ctrl-D on an empty line: leave. The prompt can be redrawn (after the echo) a moment before
    // the line editor reads keys again, and a key pressed in between is taken by the terminal's
    // cooked mode; a person would press it again, and so does the test.
    a.pty.set_expect_timeout(Some(Duration::from_secs(2)));
    let left = (0..10).any(|_| {
        a.pty.send("\x04").unwrap();
        tokio::task::block_in_place(|| a.pty.expect(expectrl::Eof)).is_ok()
    });
    assert!(left, "the REPL exits on Ctrl-D");
    let page = app
        .get(&format!("/groups/{g}/messages"), Some(&bob.access))
        .await;
    let contents = crate::common::contents(&page.body);
    assert_eq!(contents, ["sent"]);
}

/// `rtchat ARGS` at a terminal of its own, with its own config directory (and a login for `app`
/// as `as_user`, when given), inside `sh` so that the terminal can be looked at after it ends.
fn at_a_terminal(
    app: &TestApp,
    as_user: Option<(&TestUser, &str)>,
    args: &str,
    then: &str,
) -> (expectrl::session::OsSession, PathBuf) {
    let config = std::env::temp_dir().join(format!("rtchat-tty-{}", uuid::Uuid::new_v4().simple()));
    if let Some((user, name)) = as_user {
        save_login(&config, app, user, name);
    }
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        // A terminal as a person has it: echo on (the test's pseudo-terminal starts without),
        // and a shell that outlives a Ctrl-C meant for the program (as an interactive one does;
        // `sh -c` would otherwise die of the SIGINT sent to the whole foreground group when the
        // signal reaches it first). The trap is reset to the default in the program itself.
        &format!(
            "trap : INT; stty echo; {} {args}; {then}",
            env!("CARGO_BIN_EXE_rtchat")
        ),
    ])
    .env("RTCHAT_SERVER", &app.address)
    .env("RTCHAT_CONFIG_DIR", &config)
    .env("NO_COLOR", "1");
    let mut pty = Session::spawn(cmd).expect("a pty");
    pty.set_expect_timeout(Some(Duration::from_secs(20)));
    (pty, config)
}

/// `rtchat register` at a terminal says the password rule first, and asks again (up to three
/// times) for a password that is too short or repeated differently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_asks_again_for_a_short_or_mistyped_password() {
    let app = spawn_app().await;
    let (mut pty, config) = at_a_terminal(
        &app,
        None,
        "register newbie --email newbie@example.com",
        "echo \"exit=$?\"",
    );
    tokio::task::block_in_place(|| {
        pty.expect("A password has 8 to 72 bytes").unwrap();
        pty.expect("Password: ").unwrap();
        pty.send("short\r").unwrap();
        pty.expect("that password has 5 bytes").unwrap();
        pty.expect("Password: ").unwrap();
        pty.send("a fine password\r").unwrap();
        pty.expect("Repeat password: ").unwrap();
        pty.send("a fine passwrod\r").unwrap();
        pty.expect("the passwords differ; try again").unwrap();
        pty.expect("Password: ").unwrap();
        pty.send("a fine password\r").unwrap();
        pty.expect("Repeat password: ").unwrap();
        pty.send("a fine password\r").unwrap();
        pty.expect("Registered and logged in as newbie").unwrap();
        pty.expect("exit=0").unwrap();
    });
    let _ = std::fs::remove_dir_all(config);
}

/// Ctrl-C at any password prompt ends the command (130, as an interrupted program does) and
/// leaves the terminal echoing what is typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_a_password_prompt_gives_the_terminal_back() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (args, prompt, login) in [
        ("login alice", "Password: ", None),
        ("register bob --email bob@example.com", "Password: ", None),
        ("passwd", "Current password: ", Some((&alice, "alice"))),
    ] {
        let (mut pty, config) = at_a_terminal(
            &app,
            login,
            args,
            "echo \"exit=$?\"; stty -a; echo 'modes shown'",
        );
        let shown = tokio::task::block_in_place(|| {
            pty.expect(prompt).unwrap();
            pty.send("half a pass").unwrap();
            pty.send("\x03").unwrap();
            pty.expect("exit=130").unwrap();
            let rest = pty.expect("modes shown").unwrap();
            String::from_utf8_lossy(rest.before()).into_owned()
        });
        let modes = format!(
            " {} ",
            shown.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        assert!(
            modes.contains(" echo ") && !modes.contains(" -echo "),
            "{args}: the terminal after Ctrl-C: {shown}"
        );
        let _ = std::fs::remove_dir_all(config);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_edit_delete_search_and_mentions_in_the_repl() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_group(&alice, "team", &[&bob]).await;
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    app.wait_for_sockets(2).await;

    // A message naming alice rings her terminal's bell; it shows with its [ID].
    b.type_line("@alice the deploy is stuck");
    a.expect("bob: @alice the deploy is stuck");
    assert!(a.screen.contains('\x07'), "a bell: {:?}", a.screen);
    let before = a.screen.rfind("] bob: @alice the deploy").unwrap();
    let open = a.screen[..before].rfind('[').unwrap();
    let id = a.screen[open + 1..before].to_string();
    assert!(id.parse::<i64>().is_ok(), "{id}");

    // /reply quotes what it answers, on both sides; it answers bob's thread, so it rings his bell.
    a.type_line(&format!("/reply {id} looking at it"));
    b.expect(&format!("↪ [{id}] bob: @alice the deploy is stuck"));
    b.expect("alice: looking at it");
    assert!(
        b.screen.contains('\x07'),
        "a reply in his thread: {:?}",
        b.screen
    );
    let rang_before = b.count("\x07");

    // /edit and /delete change the last message sent by default.
    a.type_line("/edit looking at it now");
    b.expect("edited: looking at it now");
    a.type_line("/delete");
    b.expect("deleted");

    a.type_line("/search deploy");
    a.expect("#team bob: @alice the deploy is stuck");

    // Mistakes say what is wrong; a message elsewhere says it went.
    a.type_line("/msg @bob");
    a.expect("/msg needs <TEXT>...");
    a.type_line("/frobnicate");
    a.expect("unknown command /frobnicate");
    a.type_line("/msg @bob psst");
    a.expect("sent to @bob");

    // Named in another room than the one he is in: bob's terminal rings too.
    assert_eq!(b.count("\x07"), rang_before, "no other bell for bob yet");
    a.type_line("/msg @bob @bob look at #team");
    b.expect("alice: @bob look at #team");
    assert!(b.count("\x07") > rang_before, "a bell: {:?}", b.screen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_of_one_name_show_their_ids_in_the_prompt() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_group(&alice, "team", &[&bob]).await;
    let first = app.create_group(&alice, "ops", &[&bob]).await;
    let second = app.create_group(&bob, "ops", &[&alice]).await;
    app.group_send(&bob, second, "in the second ops").await;
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    a.type_line(&format!("/join #{first}"));
    a.expect(&format!("#ops (#{first})> "));
    a.type_line(&format!("/join #{second}"));
    a.expect("bob: in the second ops");
    a.expect(&format!("#ops (#{second})> "));
    // /chats lists both, each with its id; the one with a message has its time. (The prompt
    // already shows the second's id: the first's is the table's.)
    // Rows come newest activity first.
    a.type_line("/chats");
    let row = format!(r"#ops \(#{second}\) +[^\r\n]*\d\d:\d\d +bob: in the second ops");
    tokio::task::block_in_place(|| a.pty.expect(expectrl::Regex(row.as_str())))
        .expect("a row with the time of the last message");
    a.expect(&format!("#ops (#{first})"));
}

/// `/edit TEXT` and `/delete` without an id change your last message in the room you are in,
/// never one elsewhere; `/edit ID` without text is a usage error, not an edit to "ID".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_delete_act_on_your_last_message_here() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let crew = app.create_group(&alice, "crew", &[&carol]).await;
    app.create_group(&alice, "ops", &[&carol]).await;
    app.dm(&carol, &alice, "hello alice").await;
    let mut a = Terminal::open(&app, &alice, "alice", "#crew");
    a.type_line("crew words");
    a.expect("alice: crew words");

    a.type_line("/join #ops");
    a.expect("#ops> ");
    a.type_line("/edit fixed");
    a.expect("you have no recent message in #ops to edit: /edit ID");
    a.type_line("/edit 1");
    a.expect("/edit 1 needs the new text: /edit [ID] TEXT");

    a.type_line("/join @carol");
    a.expect("@carol> ");
    a.type_line("carol words");
    a.expect("alice: carol words");
    a.type_line("/edit carol words, edited");
    a.expect("edited: carol words, edited");
    a.type_line("/delete");
    a.expect("deleted");

    let crew_page = app
        .get(&format!("/groups/{crew}/messages"), Some(&alice.access))
        .await;
    assert_eq!(
        crew_page.body[0]["content"], "crew words",
        "{}",
        crew_page.body
    );
    assert!(crew_page.body[0]["edited_at"].is_null());
    let direct = app
        .get(&format!("/messages/chat/{}", carol.id), Some(&alice.access))
        .await;
    let mine: Vec<&serde_json::Value> = direct
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender_id"] == alice.id)
        .collect();
    assert_eq!(mine.len(), 1, "{}", direct.body);
    assert_eq!(mine[0]["deleted"], true, "{}", direct.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_sent_and_saved_in_the_repl() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_group(&alice, "team", &[&bob]).await;
    let dir = std::env::temp_dir().join(format!(
        "rtchat-repl-files-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("trace.log"), "panic at line 7\n").unwrap();
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    app.wait_for_sockets(2).await;

    a.type_line(&format!(
        "/upload {} the stack trace",
        dir.join("trace.log").display()
    ));
    b.expect("alice: the stack trace");
    b.expect("📎 trace.log (16 B) [file ");
    let at = b.screen.rfind("[file ").unwrap();
    b.expect("]");
    let id: String = b.screen[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let saved = dir.join("saved.log");
    b.type_line(&format!("/download {id} {}", saved.display()));
    b.expect("saved ");
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap(),
        "panic at line 7\n"
    );
    a.type_line("/upload /no/such/file");
    a.expect("/no/such/file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_in_the_repl() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.create_group(&alice, "team", &[&bob]).await;
    let mut a = Terminal::open(&app, &alice, "alice", "#team");
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    app.wait_for_sockets(2).await;
    a.type_line("lunch?");
    b.expect("alice: lunch?");
    // The newest message here by default.
    b.type_line("/react 🍕");
    a.expect("@bob reacted 🍕");
    b.type_line("/history 1");
    b.expect("🍕 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_a_place_in_the_repl() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let group = app.create_group(&alice, "team", &[&bob]).await;
    let root = app
        .group_send(&alice, group, "release on friday?")
        .await
        .body["data"]["id"]
        .as_i64()
        .unwrap();
    let mut b = Terminal::open(&app, &bob, "bob", "#team");
    app.wait_for_sockets(1).await;
    b.type_line(&format!("/thread {root}"));
    b.expect(&format!("#team thread {root}> "));
    b.type_line("fine by me");
    b.expect(&format!("↪ [{root}] alice: release on friday?"));
    b.type_line("/back");
    b.expect("#team> ");
    let thread = app
        .get(&format!("/messages/{root}/thread"), Some(&alice.access))
        .await;
    assert_eq!(
        thread.body["replies"][0]["content"], "fine by me",
        "{}",
        thread.body
    );
}
