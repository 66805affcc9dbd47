//! The real `rtchat` binary against the real server: every subcommand, human and `--json`, and every
//! class of error with its exit code.

use std::process::Stdio;
use std::time::Duration;

use rtchat::client::session::{Session, SessionStore};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{TestApp, TestCa, spawn_app, spawn_tls_app};

/// One person's `rtchat`: its own config directory, pointed at the test server.
struct Cli {
    server: String,
    config: std::path::PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }

    /// A failure is one line on stderr and nothing on stdout.
    fn failed_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line: {:?}",
            self.stderr
        );
        assert!(self.stderr.starts_with("rtchat: "), "{}", self.stderr);
        assert!(self.stdout.is_empty());
        self
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.config);
    }
}

impl Cli {
    fn new(server: &str) -> Cli {
        let config =
            std::env::temp_dir().join(format!("rtchat-cli-{}", uuid::Uuid::new_v4().simple()));
        Cli {
            server: server.to_string(),
            config,
        }
    }

    fn for_app(app: &TestApp) -> Cli {
        Cli::new(&app.address)
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rtchat"));
        cmd.args(args)
            .env("RTCHAT_SERVER", &self.server)
            .env("RTCHAT_CONFIG_DIR", &self.config)
            .env_remove("NO_COLOR")
            .kill_on_drop(true);
        cmd
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rtchat runs");
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        drop(pipe);
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("rtchat {args:?} did not finish"))
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// As a person would after logging in once: no --server, no RTCHAT_SERVER.
    async fn run_unaddressed(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .env_remove("RTCHAT_SERVER")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn register(&self, name: &str) {
        self.try_register(name).await.ok();
    }

    /// `rtchat register NAME` with a password on stdin, whatever comes of it.
    async fn try_register(&self, name: &str) -> Run {
        self.run_with_stdin(
            &[
                "register",
                name,
                "--email",
                &format!("{name}@example.com"),
                "--password-stdin",
            ],
            Some("a fine password\n"),
        )
        .await
    }

    fn session(&self) -> Session {
        SessionStore::at(self.config.clone())
            .get(&self.server)
            .unwrap()
            .expect("logged in")
    }
}

/// A running `rtchat listen`, read a line at a time (killed when dropped).
struct Listening {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Listening {
    /// Starts `rtchat listen ARGS` as `cli` and waits until the server holds its socket.
    async fn start(cli: &Cli, app: &TestApp, args: &[&str]) -> Listening {
        let mut command = vec!["listen"];
        command.extend_from_slice(args);
        let mut child = cli
            .command(&command)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        app.wait_for_sockets(1).await;
        Listening {
            _child: child,
            lines,
        }
    }

    async fn next_line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("a line, not the end")
    }
}

#[tokio::test]
async fn accounts_from_the_command_line() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    let r = alice
        .run_with_stdin(
            &[
                "register",
                "alice",
                "--email",
                "alice@example.com",
                "--full-name",
                "Alice Liddell",
                "--password-stdin",
            ],
            Some("a fine password\n"),
        )
        .await;
    r.ok();
    assert!(r.stderr.contains("logged in as alice"), "{}", r.stderr);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(alice.config.join("credentials.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let r = alice.run(&["whoami"]).await;
    r.ok();
    assert!(
        r.stdout
            .starts_with("@alice (Alice Liddell) <alice@example.com>"),
        "{}",
        r.stdout
    );
    let r = alice.run(&["--json", "whoami"]).await;
    assert_eq!(r.ok().json_lines()[0]["user"]["username"], "alice");

    alice.run(&["logout"]).await.ok();
    alice.run(&["whoami"]).await.failed_with(3);

    // Log in by email; a wrong password is an auth error.
    alice
        .run_with_stdin(
            &["login", "ALICE@example.com", "--password-stdin"],
            Some("wrong password\n"),
        )
        .await
        .failed_with(3);
    let r = alice
        .run_with_stdin(
            &["--json", "login", "alice@example.com", "--password-stdin"],
            Some("a fine password\n"),
        )
        .await;
    assert_eq!(r.ok().json_lines()[0]["user"]["username"], "alice");
    assert!(!r.stdout.contains("token"), "tokens are never printed");

    // passwd: every session ends, the new password works.
    alice
        .run_with_stdin(
            &["passwd", "--password-stdin"],
            Some("a fine password\nan even finer one\n"),
        )
        .await
        .ok();
    alice.run(&["whoami"]).await.failed_with(3);
    alice
        .run_with_stdin(
            &["login", "alice", "--password-stdin"],
            Some("an even finer one\n"),
        )
        .await
        .ok();
    let second = Cli::new(&app.address);
    second
        .run_with_stdin(
            &["login", "alice", "--password-stdin"],
            Some("an even finer one\n"),
        )
        .await
        .ok();
    alice.run(&["logout", "--all"]).await.ok();
    second.run(&["whoami"]).await.failed_with(3);
}

#[tokio::test]
async fn messages_from_the_command_line() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    let bob = Cli::for_app(&app);
    alice.register("alice").await;
    bob.register("bob").await;

    let r = alice.run(&["send", "@bob", "hello", "bob"]).await;
    r.ok();
    assert!(r.stdout.is_empty(), "quiet on success");
    let r = alice.run(&["--json", "send", "bob", "second"]).await;
    assert_eq!(r.ok().json_lines()[0]["content"], "second");
    // From stdin, one message however many lines.
    alice
        .run_with_stdin(&["send", "@bob", "-"], Some("line one\nline two\n"))
        .await
        .ok();

    let r = bob.run(&["chats"]).await;
    r.ok();
    assert!(
        r.stdout.contains("@alice") && r.stdout.contains("3 unread"),
        "{}",
        r.stdout
    );
    let r = bob.run(&["--json", "chats"]).await;
    let chats = r.ok().json_lines();
    assert_eq!(chats[0]["name"], "@alice");
    assert_eq!(chats[0]["unread_count"], 3);

    let r = bob.run(&["history", "@alice"]).await;
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].ends_with("alice: hello bob"), "{lines:?}");
    assert!(
        lines[2].ends_with("alice: line one") && lines[3].trim() == "line two",
        "{lines:?}"
    );
    let r = bob
        .run(&["--json", "history", "@alice", "--limit", "2"])
        .await;
    let page = r.ok().json_lines();
    assert_eq!(page.len(), 2);
    assert_eq!(page[1]["content"], "line one\nline two");
    let older = bob
        .run(&[
            "--json",
            "history",
            "@alice",
            "--before",
            &page[0]["id"].to_string(),
        ])
        .await;
    assert_eq!(older.ok().json_lines()[0]["content"], "hello bob");

    // Reading the history marked it read; `read` does it explicitly.
    alice.run(&["send", "@bob", "one more"]).await.ok();
    let r = bob.run(&["--json", "read", "@alice"]).await;
    assert_eq!(r.ok().json_lines()[0]["unread_count"], 0);
    let chats = bob.run(&["--json", "chats"]).await;
    assert_eq!(chats.ok().json_lines()[0]["unread_count"], 0);
}

#[tokio::test]
async fn a_repeated_client_id_stores_nothing_new() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    let bob = Cli::for_app(&app);
    alice.register("alice").await;
    bob.register("bob").await;
    for _ in 0..2 {
        alice
            .run(&["send", "@bob", "exactly once", "--client-id", "retry-42"])
            .await
            .ok();
    }
    let page = bob.run(&["--json", "history", "@alice"]).await;
    assert_eq!(page.ok().json_lines().len(), 1);
}

#[tokio::test]
async fn groups_from_the_command_line() {
    let app = spawn_app().await;
    let [alice, bob, carol] = [Cli::for_app(&app), Cli::for_app(&app), Cli::for_app(&app)];
    alice.register("alice").await;
    bob.register("bob").await;
    carol.register("carol").await;

    let r = alice
        .run(&["groups", "create", "team", "--members", "@bob"])
        .await;
    r.ok();
    // One notation everywhere: `#team (#ID)`.
    let id = r
        .stdout
        .trim()
        .strip_prefix("#team (#")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{:?}", r.stdout))
        .to_string();
    alice.run(&["send", "#team", "hello", "team"]).await.ok();
    let by_id = format!("#{id}");
    let r = bob.run(&["history", &by_id]).await;
    assert!(r.ok().stdout.contains("alice: hello team"));

    alice.run(&["groups", "add", "#team", "@carol"]).await.ok();
    let r = carol.run(&["--json", "groups", "members", "#team"]).await;
    let names: Vec<String> = r
        .ok()
        .json_lines()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let r = carol.run(&["groups", "list"]).await;
    assert!(
        r.ok().stdout.contains("team") && r.stdout.contains("3 members"),
        "{}",
        r.stdout
    );
    carol.run(&["groups", "create", "solo"]).await.ok();
    let r = carol.run(&["groups", "list"]).await;
    assert!(
        r.ok().stdout.contains("1 member\n") || r.stdout.contains("1 member "),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("1 members"), "{}", r.stdout);

    // Only the admin removes others; anyone leaves.
    bob.run(&["groups", "remove", "#team", "@carol"])
        .await
        .failed_with(1);
    alice
        .run(&["groups", "remove", "#team", "@carol"])
        .await
        .ok();
    carol
        .run(&["send", "#team", "still here?"])
        .await
        .failed_with(4);
    bob.run(&["groups", "leave", "#team"]).await.ok();
    let r = bob.run(&["--json", "groups", "list"]).await;
    assert!(r.ok().json_lines().is_empty());

    // A name shared by two groups must be disambiguated.
    alice.run(&["groups", "create", "team"]).await.ok();
    let r = alice.run(&["send", "#team", "which one?"]).await;
    r.failed_with(2);
    assert!(r.stderr.contains(&format!("#{id} (team)")), "{}", r.stderr);
    alice.run(&["send", &by_id, "this one"]).await.ok();
}

#[tokio::test]
async fn find_people() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    alice.register("alice").await;
    for name in ["sam", "samantha", "tom"] {
        Cli::for_app(&app).register(name).await;
    }
    let r = alice.run(&["users", "sa"]).await;
    let lines: Vec<&str> = r.ok().stdout.lines().collect();
    assert_eq!(lines, ["@sam", "@samantha"]);
    let r = alice.run(&["--json", "users", "@tom"]).await;
    assert_eq!(r.ok().json_lines()[0]["username"], "tom");
}

#[tokio::test]
async fn each_kind_of_error_has_its_exit_code() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    alice.register("alice").await;
    alice.run(&["send", "@nobody", "hi"]).await.failed_with(4);
    alice
        .run(&["send", "@alice", "talking to myself"])
        .await
        .failed_with(1);
    alice.run(&["history", "#nothing"]).await.failed_with(4);
    // Usage: clap's own and ours.
    let r = alice.run(&["send", "@bob"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = alice.run(&["frobnicate"]).await;
    assert_eq!(r.code, 2);
    alice
        .run(&["groups", "add", "@notagroup", "@alice"])
        .await
        .failed_with(2);
    // Not logged in.
    Cli::for_app(&app).run(&["chats"]).await.failed_with(3);
    // Taken name.
    let r = Cli::for_app(&app)
        .run_with_stdin(
            &[
                "register",
                "ALICE",
                "--email",
                "x@example.com",
                "--password-stdin",
            ],
            Some("a fine password\n"),
        )
        .await;
    r.failed_with(1);
    assert!(r.stderr.contains("Username already taken"));
}

#[tokio::test]
async fn a_server_that_is_down_is_one_line_and_exit_5() {
    let down = Cli::new("http://127.0.0.1:9");
    let store = SessionStore::at(down.config.clone());
    let _lock = store.lock().unwrap();
    store
        .put(
            &down.server,
            Some(&Session {
                username: "alice".into(),
                user_id: 1,
                access_token: "a".into(),
                refresh_token: "r".into(),
                ca_cert: None,
            }),
        )
        .unwrap();
    drop(_lock);
    let r = down.run(&["chats"]).await;
    r.failed_with(5);
    assert!(r.stderr.contains("cannot reach the server"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("is rtchat-server running there? check the address"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_new_tokens_kept() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    alice.register("alice").await;
    let before = alice.session();
    // Age the saved access token past its expiry, as an hour's wait would.
    let user = crate::common::TestUser {
        id: before.user_id.into(),
        name: before.username.clone(),
        access: before.access_token.clone(),
        refresh: before.refresh_token.clone(),
    };
    let expired = Session {
        access_token: app.expired_token(&user),
        ..before.clone()
    };
    let store = SessionStore::at(alice.config.clone());
    store.put(&alice.server, Some(&expired)).unwrap();

    let r = alice.run(&["whoami"]).await;
    r.ok();
    let after = alice.session();
    assert_ne!(after.access_token, expired.access_token);
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token was saved"
    );
    alice.run(&["whoami"]).await.ok();

    // When the refresh token is no good either, the user is told to log in.
    let dead = Session {
        access_token: app.expired_token(&user),
        refresh_token: "garbage".into(),
        ..after
    };
    store.put(&alice.server, Some(&dead)).unwrap();
    let r = alice.run(&["chats"]).await;
    r.failed_with(3);
    assert!(r.stderr.contains("rtchat login"), "{}", r.stderr);
}

#[tokio::test]
async fn listen_prints_messages_as_they_arrive() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    let bob = Cli::for_app(&app);
    alice.register("alice").await;
    bob.register("bob").await;
    alice.run(&["send", "@bob", "first"]).await.ok();

    let mut listening = Listening::start(&bob, &app, &["--json"]).await;
    alice.run(&["send", "@bob", "are you there?"]).await.ok();
    let event: Value = serde_json::from_str(&listening.next_line().await).unwrap();
    assert_eq!(event["type"], "new_message");
    assert_eq!(event["content"], "are you there?");
    assert_eq!(event["sender_username"], "alice");
}

#[tokio::test]
async fn help_and_completions() {
    let cli = Cli::new("http://127.0.0.1:9");
    let commands: [&[&str]; 20] = [
        &["register"],
        &["login"],
        &["logout"],
        &["whoami"],
        &["passwd"],
        &["users"],
        &["send"],
        &["history"],
        &["chats"],
        &["read"],
        &["groups"],
        &["groups", "list"],
        &["groups", "create"],
        &["groups", "add"],
        &["groups", "remove"],
        &["groups", "leave"],
        &["groups", "members"],
        &["listen"],
        &["chat"],
        &["completions"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let r = cli.run(&args).await;
        r.ok();
        assert!(r.stdout.contains("Example"), "{cmd:?} --help has examples");
    }
    for shell in ["bash", "zsh", "fish"] {
        let r = cli.run(&["completions", shell]).await;
        assert!(r.ok().stdout.contains("rtchat"));
    }
}

#[tokio::test]
async fn the_cli_remembers_its_server_and_lists_its_logins() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    // Before any login: the local default, which is not this test's server.
    alice.run_unaddressed(&["whoami"]).await.failed_with(3);
    alice.register("alice").await;

    let me = alice.run_unaddressed(&["whoami"]).await;
    me.ok();
    assert!(me.stdout.starts_with("@alice"), "{}", me.stdout);
    assert!(me.stdout.contains(&app.address), "{}", me.stdout);

    let status = alice.run_unaddressed(&["status"]).await;
    status.ok();
    assert!(
        status
            .stdout
            .contains(&format!("{} (default)", app.address)),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("logged in as @alice - ok"),
        "{}",
        status.stdout
    );
    let lines = alice
        .run_unaddressed(&["--json", "status"])
        .await
        .json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["username"], "alice");
    assert_eq!(lines[0]["state"], "ok");
    assert_eq!(lines[0]["default"], true);

    // Logging out forgets the login; the server stays the default one.
    alice.run_unaddressed(&["logout"]).await.ok();
    let after = alice.run_unaddressed(&["status"]).await;
    after.ok();
    assert!(after.stdout.is_empty(), "{}", after.stdout);
    assert!(
        after.stderr.contains("Not logged in anywhere"),
        "{}",
        after.stderr
    );
    let whoami = alice.run_unaddressed(&["whoami"]).await;
    whoami.failed_with(3);
    assert!(whoami.stderr.contains(&app.address), "{}", whoami.stderr);
}

#[tokio::test]
async fn a_server_without_a_scheme_is_a_clear_usage_error() {
    let cli = Cli::new("chat.example.com:8000");
    let r = cli.run(&["whoami"]).await;
    r.failed_with(2);
    assert!(
        r.stderr
            .contains("give the scheme, e.g. https://chat.example.com:8000"),
        "{}",
        r.stderr
    );
    let help = cli.run(&["--help"]).await;
    help.ok();
    for variable in [
        "RTCHAT_SERVER",
        "RTCHAT_CA_CERT",
        "RTCHAT_CONFIG_DIR",
        "NO_COLOR",
    ] {
        assert!(help.stdout.contains(variable), "{variable} in --help");
    }
}

#[tokio::test]
async fn the_cli_over_tls_with_a_private_ca_remembered_per_server() {
    let ca = TestCa::new();
    let app = spawn_tls_app(&ca).await;
    let ca_file = ca.ca_file.to_str().unwrap();

    // Without the team's CA the server is not trusted: one line that says what to do.
    let stranger = Cli::for_app(&app);
    let r = stranger.try_register("eve").await;
    r.failed_with(5);
    assert!(r.stderr.contains("--ca-cert"), "{}", r.stderr);

    // With it (flag for one, environment for the other) everything works, and the login keeps it.
    let alice = Cli::for_app(&app);
    alice
        .run_with_stdin(
            &[
                "--ca-cert",
                ca_file,
                "register",
                "alice",
                "--email",
                "alice@example.com",
                "--password-stdin",
            ],
            Some("a fine password\n"),
        )
        .await
        .ok();
    alice.run_unaddressed(&["whoami"]).await.ok();
    let bob = Cli::for_app(&app);
    let mut register = bob.command(&[
        "register",
        "bob",
        "--email",
        "bob@example.com",
        "--password-stdin",
    ]);
    register
        .env("RTCHAT_CA_CERT", ca_file)
        .stdin(Stdio::piped());
    let mut child = register.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a fine password\n").await.unwrap();
    drop(stdin);
    assert!(child.wait().await.unwrap().success());

    // Live over wss://.
    let mut listening = Listening::start(&bob, &app, &["--json"]).await;
    alice.run(&["send", "@bob", "over TLS"]).await.ok();
    let event: Value = serde_json::from_str(&listening.next_line().await).unwrap();
    assert_eq!(event["content"], "over TLS");
    drop(listening);

    let history = alice.run(&["--json", "history", "@bob"]).await;
    assert_eq!(history.ok().json_lines()[0]["content"], "over TLS");

    // Plain http:// to the TLS port: said so, with the address to use.
    let plain = Cli::new(&app.address.replacen("https://", "http://", 1));
    let r = plain.try_register("eve").await;
    r.failed_with(5);
    assert!(
        r.stderr
            .contains(&format!("it speaks HTTPS: use --server {}", app.address)),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn listen_names_a_chat_that_starts_while_listening() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    let bob = Cli::for_app(&app);
    alice.register("alice").await;
    bob.register("bob").await;

    let mut listening = Listening::start(&bob, &app, &[]).await;
    alice.run(&["send", "@bob", "first words"]).await.ok();
    let line = listening.next_line().await;
    assert!(line.contains("@alice alice: first words"), "{line}");
}

/// alice and bob, registered from the command line, in alice's group #team.
async fn team_of_two(app: &TestApp) -> (Cli, Cli) {
    let alice = Cli::for_app(app);
    let bob = Cli::for_app(app);
    alice.register("alice").await;
    bob.register("bob").await;
    alice
        .run(&["groups", "create", "team", "--members", "@bob"])
        .await
        .ok();
    (alice, bob)
}

#[tokio::test]
async fn edit_delete_reply_and_search_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;

    // `send` says the id that edit, delete and --reply-to take.
    let r = alice.run(&["send", "#team", "deploy on friday"]).await;
    let said = r.ok().stderr.clone();
    let id: String = said
        .trim()
        .strip_prefix("sent (message ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{said}"))
        .to_string();
    bob.run(&["send", "#team", "--reply-to", &id, "fine by me @alice"])
        .await
        .ok();
    let chats = alice.run(&["--json", "chats"]).await;
    assert_eq!(chats.ok().json_lines()[0]["mention_count"], 1);

    alice.run(&["edit", &id, "deploy on monday"]).await.ok();
    let page = bob.run(&["history", "#team"]).await;
    let out = page.ok().stdout.clone();
    assert!(
        out.contains(&format!("[{id}] alice: deploy on monday (edited)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("↪ [{id}] alice: deploy on monday")),
        "the reply quotes what it answers: {out}"
    );

    let found = bob.run(&["search", "monday"]).await;
    let out = found.ok().stdout.clone();
    assert!(out.contains("#team alice: deploy on monday"), "{out}");
    let r = bob.run(&["edit", &id, "mine now"]).await;
    assert_eq!(r.code, 1, "only the author edits: {}", r.stderr);

    alice.run(&["delete", &id]).await.ok();
    let page = bob.run(&["history", "#team"]).await;
    let out = page.ok().stdout.clone();
    assert!(out.contains("alice: (message deleted)"), "{out}");
    assert!(!out.contains("monday"), "{out}");
    let found = bob.run(&["search", "monday"]).await;
    assert!(found.ok().stdout.is_empty());
}

#[tokio::test]
async fn listen_mentions_prints_only_messages_that_name_you() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;

    let mut listening = Listening::start(&bob, &app, &["--mentions"]).await;
    alice.run(&["send", "#team", "lunch?"]).await.ok();
    alice.run(&["send", "#team", "@bob the deploy"]).await.ok();
    let line = listening.next_line().await;
    assert!(line.ends_with("alice: @bob the deploy"), "{line}");

    // A member who is not an admin is told so in the README's words.
    let r = bob.run(&["groups", "add", "#team", "@alice"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("only the group's owner and admins"),
        "{}",
        r.stderr
    );
}

/// A reader that goes away (`| head -0`, `| true`) ends a command quietly: no panic, exit 0.
#[tokio::test]
async fn a_closed_pipe_ends_a_command_quietly() {
    let app = spawn_app().await;
    let (alice, _bob) = team_of_two(&app).await;
    for _ in 0..3 {
        alice
            .run(&["send", "#team", "something to list"])
            .await
            .ok();
    }
    for args in [
        &["chats"][..],
        &["history", "#team"],
        &["--json", "history", "#team"],
        &["completions", "zsh"],
        &["groups", "list"],
    ] {
        let mut child = alice
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// `listen` names a direct chat that starts while it listens by the other person, also when the
/// listener started it from elsewhere; removals say who removed whom.
#[tokio::test]
async fn listen_names_new_chats_and_says_who_removed_whom() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let carol = Cli::for_app(&app);
    carol.register("carol").await;
    alice.run(&["groups", "add", "#team", "@carol"]).await.ok();

    let mut listening = Listening::start(&alice, &app, &[]).await;
    // Alice writes to carol from another terminal: a new chat, carol's.
    alice
        .run(&["send", "@carol", "a word in private"])
        .await
        .ok();
    let line = listening.next_line().await;
    assert!(line.contains("@carol alice: a word in private"), "{line}");

    let mut bobs = Listening::start(&bob, &app, &[]).await;
    alice
        .run(&["groups", "remove", "#team", "@carol"])
        .await
        .ok();
    let line = bobs.next_line().await;
    assert!(line.contains("@alice removed @carol from #team"), "{line}");
    let line = listening.next_line().await;
    assert!(line.contains("you removed @carol from #team"), "{line}");
    bob.run(&["groups", "leave", "#team"]).await.ok();
    let line = listening.next_line().await;
    assert!(line.contains("@bob left #team"), "{line}");
}

/// What a person does is confirmed in a line (on stderr, as `send` does), groups are written one
/// way everywhere, a second group of one name is pointed out, and `chats` says who wrote last.
#[tokio::test]
async fn every_change_is_confirmed_and_groups_are_named_one_way() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let carol = Cli::for_app(&app);
    carol.register("carol").await;

    let r = alice.run(&["send", "#team", "first"]).await;
    let id = r
        .ok()
        .stderr
        .trim()
        .strip_prefix("sent (message ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap()
        .to_string();
    let r = alice.run(&["edit", &id, "first, edited"]).await;
    assert_eq!(r.ok().stderr.trim(), format!("edited (message {id})"));
    let r = alice.run(&["groups", "add", "#team", "@carol"]).await;
    assert_eq!(r.ok().stderr.trim(), "added to #team: @carol");
    let r = alice.run(&["groups", "remove", "#team", "@carol"]).await;
    assert_eq!(r.ok().stderr.trim(), "removed @carol from #team");
    let r = bob.run(&["read", "#team"]).await;
    assert_eq!(r.ok().stderr.trim(), "#team marked read");

    // `chats` shows who wrote the last message, and the group as `groups list` does.
    let chats = bob.run(&["chats"]).await;
    let list = bob.run(&["groups", "list"]).await;
    let team = format!("#team (#{})", group_id(&alice, "team").await);
    assert!(chats.ok().stdout.contains(&team), "{}", chats.stdout);
    assert!(
        chats.stdout.contains("alice: first, edited"),
        "{}",
        chats.stdout
    );
    assert!(list.ok().stdout.contains(&team), "{}", list.stdout);

    let r = alice.run(&["delete", &id]).await;
    assert_eq!(r.ok().stderr.trim(), format!("deleted (message {id})"));

    // A second group of the same name: created, with a note saying how to tell them apart.
    let r = alice.run(&["groups", "create", "team"]).await;
    let second = r.ok().stdout.trim().to_string();
    assert!(second.starts_with("#team (#") && second != team, "{second}");
    assert!(
        r.stderr
            .contains("you are in 2 groups named #team; this one is #"),
        "{}",
        r.stderr
    );
    // A message too long is refused before it is sent, with the limit.
    let long = "x".repeat(5001);
    let r = alice.run(&["send", "@bob", &long]).await;
    r.failed_with(2);
    assert!(r.stderr.contains("at most 5000 characters"), "{}", r.stderr);
}

async fn group_id(cli: &Cli, name: &str) -> i64 {
    let r = cli.run(&["--json", "groups", "list"]).await;
    r.ok()
        .json_lines()
        .iter()
        .find(|g| g["name"] == name)
        .and_then(|g| g["id"].as_i64())
        .unwrap()
}

/// A damaged credentials file is named with what to do, and does not stand in the way of the
/// login that replaces it.
#[tokio::test]
async fn a_damaged_credentials_file_is_named_and_replaced_by_a_login() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    alice.register("alice").await;
    let file = alice.config.join("credentials.json");
    std::fs::write(&file, "{ not json").unwrap();
    let r = alice.run(&["chats"]).await;
    r.failed_with(1);
    assert!(
        r.stderr.contains(&format!("{} is damaged", file.display()))
            && r.stderr.contains("remove it and log in again"),
        "{}",
        r.stderr
    );
    let r = alice
        .run_with_stdin(
            &["login", "alice", "--password-stdin"],
            Some("a fine password\n"),
        )
        .await;
    assert!(
        r.ok().stderr.contains("was damaged; kept as"),
        "{}",
        r.stderr
    );
    alice.run(&["chats"]).await.ok();
    assert!(alice.config.join("credentials.json.damaged").exists());
}

#[tokio::test]
async fn a_profile_is_shown_and_changed_from_the_command_line() {
    let app = spawn_app().await;
    let carol = Cli::for_app(&app);
    carol.register("carol").await;
    let r = carol.run(&["profile"]).await;
    assert!(
        r.ok().stdout.starts_with("@carol <carol@example.com>"),
        "{}",
        r.stdout
    );

    let r = carol
        .run(&["profile", "--full-name", "Carol Danvers"])
        .await;
    r.ok();
    assert!(r.stderr.contains("profile changed"), "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("@carol (Carol Danvers) <carol@example.com>"),
        "{}",
        r.stdout
    );

    // The email asks for the password: a wrong one changes nothing.
    let change_email = |password: &'static str| {
        carol.run_with_stdin(
            &[
                "profile",
                "--email",
                "carol@new.example.com",
                "--password-stdin",
            ],
            Some(password),
        )
    };
    let r = change_email("not my password\n").await;
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Current password is incorrect"),
        "{}",
        r.stderr
    );
    let r = carol.run(&["profile"]).await;
    assert!(
        r.ok().stdout.contains("<carol@example.com>"),
        "{}",
        r.stdout
    );
    let r = change_email("a fine password\n").await;
    assert!(
        r.ok().stdout.contains("<carol@new.example.com>"),
        "{}",
        r.stdout
    );
    // The name clears with ''.
    let r = carol.run(&["profile", "--full-name", ""]).await;
    assert!(r.ok().stdout.starts_with("@carol <"), "{}", r.stdout);
}

/// `rtchat register NAME --invite CODE` with a password on stdin.
async fn register_invited(cli: &Cli, name: &str, code: &str) -> Run {
    let email = format!("{name}@example.com");
    cli.run_with_stdin(
        &[
            "register",
            name,
            "--email",
            &email,
            "--invite",
            code,
            "--password-stdin",
        ],
        Some("a fine password\n"),
    )
    .await
}

#[tokio::test]
async fn a_team_server_is_run_from_the_command_line() {
    let mut config = crate::common::test_config();
    config.registration = rtchat::server::auth::Registration::Invite;
    let app = crate::common::spawn_app_with(config).await;
    let (alice, bob, carol) = (Cli::for_app(&app), Cli::for_app(&app), Cli::for_app(&app));
    alice.try_register("alice").await.ok();

    // A teammate needs an invite; the inviter is told the exact line to pass on.
    let r = carol.try_register("carol").await;
    r.failed_with(1);
    assert!(r.stderr.contains("invitation"), "{}", r.stderr);
    let r = alice.run(&["invite"]).await;
    let code = r.ok().stdout.trim().to_string();
    assert!(code.starts_with("rtci_"), "{}", r.stdout);
    let line = format!(
        "rtchat register NAME --email EMAIL --invite {code} --server {}",
        app.address
    );
    assert!(r.stderr.contains(&line), "{}", r.stderr);
    register_invited(&bob, "bob", &code).await.ok();
    register_invited(&carol, "carol", &code)
        .await
        .failed_with(1);
    let r = alice.run(&["--json", "invite", "list"]).await;
    assert_eq!(r.ok().json_lines()[0]["status"], "used");
    let spare = alice
        .run(&["invite", "--uses", "3", "--expires", "1h"])
        .await;
    let spare = spare.ok().stdout.trim().to_string();
    alice.run(&["invite", "revoke", &spare]).await.ok();
    register_invited(&carol, "carol", &spare)
        .await
        .failed_with(1);
    alice
        .run(&["invite", "revoke", &spare])
        .await
        .failed_with(4);

    // Administration: users, deactivate (the session is over, login says why), reactivate.
    let r = alice.run(&["admin", "users"]).await;
    let table = &r.ok().stdout;
    assert!(
        table.contains("@alice") && table.contains("owner"),
        "{table}"
    );
    assert!(
        table.contains("@bob") && table.contains("member"),
        "{table}"
    );
    alice.run(&["admin", "deactivate", "@bob"]).await.ok();
    bob.run(&["whoami"]).await.failed_with(3);
    let r = bob
        .run_with_stdin(
            &["login", "bob", "--password-stdin"],
            Some("a fine password\n"),
        )
        .await;
    r.failed_with(3);
    assert!(r.stderr.contains("deactivated"), "{}", r.stderr);
    alice.run(&["admin", "reactivate", "@bob"]).await.ok();

    // A forgotten password: a one-time code from an admin.
    let r = alice.run(&["admin", "reset-password", "@bob"]).await;
    let reset = r.ok().stdout.trim().to_string();
    assert!(
        r.stderr
            .contains(&format!("rtchat reset-password --code {reset}")),
        "{}",
        r.stderr
    );
    bob.run_with_stdin(
        &["reset-password", "--code", &reset, "--password-stdin"],
        Some("another fine password\n"),
    )
    .await
    .ok();
    bob.run_with_stdin(
        &["login", "bob", "--password-stdin"],
        Some("another fine password\n"),
    )
    .await
    .ok();
    bob.run_with_stdin(
        &["reset-password", "--code", &reset, "--password-stdin"],
        Some("a third fine password\n"),
    )
    .await
    .failed_with(1);

    // Roles: only owners make admins; the log says who did what to whom.
    bob.run(&["admin", "users"]).await.failed_with(1);
    let r = alice.run(&["admin", "promote", "@bob"]).await;
    assert!(r.ok().stderr.contains("@bob is now admin"), "{}", r.stderr);
    bob.run(&["admin", "users"]).await.ok();
    bob.run(&["admin", "promote", "@alice", "--owner"])
        .await
        .failed_with(1);
    alice
        .run(&["admin", "demote", "@alice"])
        .await
        .failed_with(1);
    let r = alice.run(&["admin", "log"]).await;
    let log = &r.ok().stdout;
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.contains("@alice user.role @bob (member -> admin)"),
        "{log}"
    );
    assert!(log.contains("@alice user.deactivate @bob"), "{log}");
    assert!(log.contains("@alice invite.create"), "{log}");
}

#[tokio::test]
async fn tokens_bots_and_webhooks_from_the_command_line() {
    let app = spawn_app().await;
    let alice = Cli::for_app(&app);
    alice.register("alice").await;

    // A personal token speaks for its owner without a login, until revoked.
    let r = alice
        .run(&["tokens", "create", "ci", "--expires", "30d"])
        .await;
    let token = r.ok().stdout.trim().to_string();
    assert!(token.starts_with("rtcp_"), "{}", r.stdout);
    let script = Cli::for_app(&app);
    let whoami = || async {
        let out = script
            .command(&["whoami"])
            .env("RTCHAT_TOKEN", &token)
            .output()
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = whoami().await;
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("@alice"), "{stdout}");
    let r = alice.run(&["tokens", "list"]).await;
    assert!(r.ok().stdout.contains("ci"), "{}", r.stdout);
    alice.run(&["tokens", "revoke", "ci"]).await.ok();
    assert_eq!(whoami().await.0, Some(3));

    // A bot: made by an admin, speaks with its token.
    let r = alice.run(&["admin", "create-bot", "buildbot"]).await;
    let bot_token = r.ok().stdout.trim().to_string();
    let out = script
        .command(&["whoami"])
        .env("RTCHAT_TOKEN", &bot_token)
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("@buildbot"));

    // A webhook: a URL anything can POST to; its messages show its name.
    alice.run(&["groups", "create", "ops"]).await.ok();
    let r = alice
        .run(&["webhooks", "create", "#ops", "--name", "deploy-bot"])
        .await;
    let url = r.ok().stdout.trim().to_string();
    assert!(
        url.starts_with(&format!("{}/hooks/rtch_", app.address)),
        "{url}"
    );
    assert!(r.stderr.contains("curl -X POST"), "{}", r.stderr);
    let posted = app
        .client
        .post(&url)
        .json(&serde_json::json!({"text": "deploy done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let r = alice.run(&["history", "#ops"]).await;
    let shown = &r.ok().stdout;
    assert!(
        shown.contains("deploy-bot") && shown.contains("deploy done"),
        "{shown}"
    );
    let r = alice.run(&["groups", "members", "#ops"]).await;
    assert!(r.ok().stdout.contains("@deploy-bot [bot]"), "{}", r.stdout);
    let r = alice.run(&["--json", "webhooks", "list"]).await;
    let id = r.ok().json_lines()[0]["id"].as_i64().unwrap().to_string();
    alice.run(&["webhooks", "revoke", &id]).await.ok();
    let posted = app
        .client
        .post(&url)
        .json(&serde_json::json!({"text": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
}

#[tokio::test]
async fn public_groups_topics_and_group_roles_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = (Cli::for_app(&app), Cli::for_app(&app));
    alice.register("alice").await;
    bob.register("bob").await;
    alice
        .run(&["groups", "create", "general", "--public"])
        .await
        .ok();
    alice.run(&["groups", "create", "secret"]).await.ok();

    let r = bob.run(&["groups", "browse"]).await;
    let listed = &r.ok().stdout;
    assert!(
        listed.contains("#general") && listed.contains("1 member"),
        "{listed}"
    );
    assert!(!listed.contains("secret"), "{listed}");
    bob.run(&["groups", "join", "#general"]).await.ok();
    bob.run(&["groups", "join", "#secret"]).await.failed_with(4);

    let r = alice
        .run(&[
            "groups",
            "topic",
            "#general",
            "everything",
            "and",
            "nothing",
        ])
        .await;
    assert!(
        r.ok()
            .stderr
            .contains("topic of #general: everything and nothing"),
        "{}",
        r.stderr
    );
    let r = bob.run(&["chats"]).await;
    assert!(
        r.ok().stdout.contains("everything and nothing"),
        "{}",
        r.stdout
    );
    let r = bob.run(&["--json", "chats"]).await;
    assert_eq!(r.ok().json_lines()[0]["topic"], "everything and nothing");
    bob.run(&["groups", "topic", "#general", "mine now"])
        .await
        .failed_with(1);

    alice
        .run(&["groups", "promote", "#general", "@bob"])
        .await
        .ok();
    let r = alice.run(&["groups", "members", "#general"]).await;
    let table = &r.ok().stdout;
    assert!(
        table.contains("owner") && table.contains("admin"),
        "{table}"
    );
    let r = bob
        .run(&["groups", "rename", "#general", "town-square"])
        .await;
    assert!(
        r.ok().stderr.contains("renamed #general to #town-square"),
        "{}",
        r.stderr
    );
    let r = alice
        .run(&["groups", "hand-over", "#town-square", "@bob"])
        .await;
    assert!(
        r.ok().stderr.contains("@bob owns #town-square now"),
        "{}",
        r.stderr
    );
    alice
        .run(&["groups", "demote", "#town-square", "@bob"])
        .await
        .failed_with(1);
}

/// The message id `send` said it stored (`sent (message 42)`).
fn sent_id(run: &Run) -> String {
    let said = run.ok().stderr.clone();
    said.trim()
        .strip_prefix("sent (message ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{said}"))
        .to_string()
}

/// A directory of its own for a test's files.
fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rtchat-files-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn files_are_sent_listed_and_saved_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let dir = scratch_dir();
    let report: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..1_200_000).map(|i| (i % 251) as u8))
        .collect();
    std::fs::write(dir.join("report.pdf"), &report).unwrap();
    std::fs::write(dir.join("notes.txt"), "the notes").unwrap();
    let pdf = dir.join("report.pdf").display().to_string();
    let notes = dir.join("notes.txt").display().to_string();

    alice
        .run(&["send", "@bob", "--file", &pdf, "-f", &notes, "the numbers"])
        .await
        .ok();
    // Files alone, no words.
    alice.run(&["send", "#team", "--file", &notes]).await.ok();
    let page = bob.run(&["history", "@alice"]).await;
    let out = page.ok().stdout.clone();
    assert!(out.contains("alice: the numbers"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("📎 report.pdf (1.2 MB) [file "))
        .unwrap_or_else(|| panic!("{out}"));
    let id = line
        .rsplit("[file ")
        .next()
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap()
        .to_string();
    assert!(out.contains("📎 notes.txt (9 B) [file "), "{out}");
    let team = bob.run(&["history", "#team"]).await;
    assert!(
        team.ok()
            .stdout
            .contains("alice: 📎 notes.txt (9 B) [file "),
        "{}",
        team.stdout
    );

    let json = bob.run(&["--json", "history", "@alice"]).await;
    let lines = json.ok().json_lines();
    let files = &lines.last().unwrap()["attachments"];
    assert_eq!(files[0]["name"], "report.pdf");
    assert_eq!(files[0]["size"], report.len());
    assert_eq!(files[0]["content_type"], "application/pdf");
    assert_eq!(files[0]["id"].to_string(), id);

    // Saved byte for byte, never over an existing file.
    let into = scratch_dir();
    let target = into.display().to_string();
    let saved = bob.run(&["download", &id, "-o", &target]).await;
    assert!(saved.ok().stderr.contains("saved "), "{}", saved.stderr);
    assert_eq!(std::fs::read(into.join("report.pdf")).unwrap(), report);
    bob.run(&["download", &id, "-o", &target]).await.ok();
    assert_eq!(std::fs::read(into.join("report (1).pdf")).unwrap(), report);
    let as_json = bob.run(&["--json", "download", &id, "-o", &target]).await;
    assert_eq!(as_json.ok().json_lines()[0]["size"], report.len());

    // A name from the server is only ever a name in the chosen directory.
    let token = alice.session().access_token;
    let hostile = app
        .client
        .post(app.url("/files?name=../../escape.txt"))
        .bearer_auth(&token)
        .body("gotcha")
        .send()
        .await
        .unwrap();
    let hostile: Value = hostile.json().await.unwrap();
    let file = hostile["id"].as_i64().unwrap();
    let own = alice
        .run(&["download", &file.to_string(), "-o", &target])
        .await;
    own.ok();
    assert!(into.join("escape.txt").exists());
    assert!(!into.parent().unwrap().join("escape.txt").exists());

    // Someone else's file, or none: 404 as exit 4, one line.
    let missing = bob.run(&["download", "999999", "-o", &target]).await;
    missing.failed_with(4);
    let r = alice
        .run(&["send", "@bob", "--file", "/no/such/file"])
        .await;
    r.failed_with(1);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&into);
}

#[tokio::test]
async fn reactions_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let r = alice.run(&["send", "#team", "ship it?"]).await;
    let id = sent_id(&r);
    let r = bob.run(&["react", &id, "👍"]).await;
    assert!(
        r.ok().stderr.contains("reacted 👍 to message"),
        "{}",
        r.stderr
    );
    bob.run(&["react", &id, "🎉"]).await.ok();
    alice.run(&["react", &id, "👍"]).await.ok();
    let again = alice.run(&["react", &id, "👍"]).await;
    assert!(again.ok().stderr.contains("already"), "{}", again.stderr);

    let page = alice.run(&["history", "#team"]).await;
    let out = page.ok().stdout.clone();
    assert!(out.contains("alice: ship it?\n    👍 2  🎉 1"), "{out}");
    let json = bob.run(&["--json", "history", "#team"]).await;
    let lines = json.ok().json_lines();
    assert_eq!(
        lines.last().unwrap()["reactions"],
        serde_json::json!([{"emoji": "👍", "count": 2, "me": true}, {"emoji": "🎉", "count": 1, "me": true}])
    );
    let r = bob.run(&["react", &id, "🎉", "--remove"]).await;
    assert!(r.ok().stderr.contains("took back 🎉"), "{}", r.stderr);
    let page = alice.run(&["history", "#team"]).await;
    assert!(
        page.ok().stdout.contains("👍 2\n") || page.stdout.ends_with("👍 2\n"),
        "{}",
        page.stdout
    );
    // Reactions raise no unread count.
    let chats = alice.run(&["--json", "chats"]).await;
    assert_eq!(chats.ok().json_lines()[0]["unread_count"], 0);
    bob.run(&["react", "999999", "👍"]).await.failed_with(4);
}

#[tokio::test]
async fn threads_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let r = alice.run(&["send", "#team", "release on friday?"]).await;
    let id = sent_id(&r);
    bob.run(&["send", "#team", "--reply-to", &id, "fine by me"])
        .await
        .ok();
    alice
        .run(&["send", "#team", "--reply-to", &id, "then friday"])
        .await
        .ok();
    let page = bob.run(&["history", "#team"]).await;
    let out = page.ok().stdout.clone();
    assert!(out.contains("💬 2 replies, last "), "{out}");
    assert!(out.contains(&format!("(thread {id})")), "{out}");
    let thread = bob.run(&["thread", &id]).await;
    let out = thread.ok().stdout.clone();
    let order: Vec<usize> = ["release on friday?", "fine by me", "then friday"]
        .iter()
        .map(|t| out.find(t).unwrap_or_else(|| panic!("{t}: {out}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
    let json = bob.run(&["--json", "thread", &id]).await;
    let lines = json.ok().json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["thread"]["replies"], 2);
    assert_eq!(lines[2]["thread_root"].to_string(), id);
}

#[tokio::test]
async fn mute_and_unmute_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    alice.run(&["send", "#team", "noise"]).await.ok();
    let r = bob.run(&["mute", "#team", "--for", "2h"]).await;
    assert!(r.ok().stderr.contains("#team muted until "), "{}", r.stderr);
    let chats = bob.run(&["--json", "chats"]).await;
    let row = chats.ok().json_lines()[0].clone();
    assert_eq!(row["muted"], true, "{row}");
    assert_eq!(row["unread_count"], 1);
    let human = bob.run(&["chats"]).await;
    assert!(human.ok().stdout.contains("(muted)"), "{}", human.stdout);
    let r = bob.run(&["mute", "#team", "--all"]).await;
    assert!(
        r.ok()
            .stderr
            .contains("until you unmute it, mentions of you too"),
        "{}",
        r.stderr
    );
    let r = bob.run(&["unmute", "#team"]).await;
    assert!(r.ok().stderr.contains("#team unmuted"), "{}", r.stderr);
    let chats = bob.run(&["--json", "chats"]).await;
    assert_eq!(chats.ok().json_lines()[0]["muted"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_is_styled_on_a_terminal_and_as_typed_in_a_pipe() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let text = "**ship** it *soon*, see `make` and [the docs](https://example.com)\n> quoted\n- one\n```rust\nfn main() {}\n```";
    alice.run(&["send", "#team", text]).await.ok();

    // Piped: exactly as typed.
    let piped = bob.run(&["history", "#team"]).await;
    let out = piped.ok().stdout.clone();
    assert!(
        out.contains("**ship** it *soon*, see `make` and [the docs](https://example.com)"),
        "{out}"
    );
    assert!(out.contains("```rust"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
    let json = bob.run(&["--json", "history", "#team"]).await;
    assert_eq!(json.ok().json_lines().last().unwrap()["content"], text);

    // On a terminal: bold, code set apart, the link's address, the quote's bar, a bullet, colours.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rtchat"));
    cmd.args(["history", "#team"])
        .env("RTCHAT_SERVER", &bob.server)
        .env("RTCHAT_CONFIG_DIR", &bob.config)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color");
    let mut pty = expectrl::Session::spawn(cmd).expect("a pty");
    // Everything the terminal shows until the program ends (a pty's end reads as an error).
    let shown = tokio::task::block_in_place(|| {
        use std::io::Read;
        let mut all = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pty.read(&mut chunk) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    for expected in [
        "\x1b[1mship\x1b[22m",
        "\x1b[3msoon\x1b[23m",
        "\x1b[36mmake\x1b[39m",
        "\x1b[4mthe docs\x1b[24m",
        "(https://example.com)",
        "│\x1b[0m quoted",
        "• one",
        "\x1b[38;2;",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown:?}");
    }
    assert!(!shown.contains("**ship**"), "{shown:?}");
}

/// A private D-Bus session bus for one test (Debian's dbus-daemon), killed with it; None when
/// dbus-daemon is not installed (CI installs it and sets RTCHAT_REQUIRE_DBUS=1).
async fn private_session_bus() -> Option<(tokio::process::Child, String)> {
    let spawned = tokio::process::Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut daemon = match spawned {
        Ok(daemon) => daemon,
        Err(e) => {
            assert!(
                std::env::var_os("RTCHAT_REQUIRE_DBUS").is_none(),
                "dbus-daemon is required here but cannot start: {e}"
            );
            eprintln!("dbus-daemon is not installed; skipping the D-Bus notification test");
            return None;
        }
    };
    let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("dbus-daemon says its address")
        .unwrap()
        .expect("an address");
    Some((daemon, address))
}

#[tokio::test]
async fn listen_notify_raises_desktop_notifications_for_direct_messages_and_mentions() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let Some((_bus, address)) = private_session_bus().await else {
        return;
    };
    // Everything sent to the notification service on that bus.
    let mut monitor = tokio::process::Command::new("dbus-monitor")
        .args([
            "--address",
            &address,
            "interface='org.freedesktop.Notifications'",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("dbus-monitor runs");
    let mut seen = BufReader::new(monitor.stdout.take().unwrap()).lines();
    let _listening = bob
        .command(&["listen", "--notify"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    app.wait_for_sockets(1).await;
    alice
        .run(&["send", "#team", "no one named here"])
        .await
        .ok();
    alice
        .run(&["send", "@bob", "are you free at 3?"])
        .await
        .ok();
    alice
        .run(&["send", "#team", "@bob see the deploy"])
        .await
        .ok();
    let mut told = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(told.contains("are you free at 3?") && told.contains("@bob see the deploy")) {
        let line = tokio::time::timeout_at(deadline, seen.next_line())
            .await
            .unwrap_or_else(|_| panic!("notifications never came; the bus saw:\n{told}"))
            .unwrap()
            .expect("dbus-monitor runs");
        told.push_str(&line);
        told.push('\n');
    }
    assert!(told.contains("member=Notify"), "{told}");
    assert!(
        told.contains("\"@alice\""),
        "a direct message is titled by its sender: {told}"
    );
    assert!(told.contains("\"@alice in #team\""), "{told}");
    assert!(
        !told.contains("no one named here"),
        "a group message naming nobody: {told}"
    );
    assert!(
        !told.contains("\"rtchat\"") || told.contains("rtchat"),
        "{told}"
    );
}

#[tokio::test]
async fn without_a_desktop_a_notification_is_the_bell() {
    let app = spawn_app().await;
    let (alice, bob) = team_of_two(&app).await;
    let mut child = bob
        .command(&["listen", "--notify"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    app.wait_for_sockets(1).await;
    alice.run(&["send", "@bob", "ping"]).await.ok();
    let mut stderr = child.stderr.take().unwrap();
    let mut byte = [0u8; 1];
    use tokio::io::AsyncReadExt;
    let rang = tokio::time::timeout(Duration::from_secs(10), stderr.read_exact(&mut byte)).await;
    assert!(matches!(rang, Ok(Ok(_))), "something on stderr");
    assert_eq!(byte[0], 0x07, "the bell");
}
