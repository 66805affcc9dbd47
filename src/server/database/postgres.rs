//! A private PostgreSQL run from the binaries on the machine: initdb on first use, a unix socket only,
//! run as the `postgres` system user when we are root, and stopped when its owner stops or dies.
//!
//! The server uses it when no DATABASE_URL is given; the integration tests use it when no
//! TEST_DATABASE_URL is given.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The database role created by initdb; owns everything.
pub const SUPERUSER: &str = "rtchat";
/// Socket files are named after a port even when no TCP port is open.
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "PostgreSQL is not installed: no `initdb`/`postgres` on PATH or under /usr/lib/postgresql/*/bin.\n\
         Install it (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql`), \
         or point rtchat at a running server with DATABASE_URL=postgresql://user:password@host:5432/dbname"
    )]
    NotInstalled,
    #[error(
        "running as root, PostgreSQL must run as the `postgres` system user, which does not exist \
         (create it with `useradd --system postgres`, or set DATABASE_URL)"
    )]
    NoPostgresUser,
    #[error("socket path {0} is too long for a unix socket; choose a shorter data directory")]
    SocketPathTooLong(PathBuf),
    #[error("{action} failed: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed:\n{0}")]
    Initdb(String),
    #[error("PostgreSQL did not start (see {log}):\n{tail}")]
    StartFailed { log: PathBuf, tail: String },
    #[error(
        "{dir} is in use by another PostgreSQL (pid {pid}), perhaps another rtchat-server: \
         stop it, or give this one its own --data-dir"
    )]
    InUse { dir: PathBuf, pid: i32 },
    #[error(
        "the data directory {dir} is in use by another rtchat-server (pid {pid}): stop it, or give \
         this one its own --data-dir"
    )]
    InUseByServer { dir: PathBuf, pid: i32 },
    #[error(
        "PostgreSQL runs as the `postgres` user (we are root), which cannot enter {blocked} \
         (mode {mode:o}): choose a --data-dir it can reach, such as /var/lib/rtchat"
    )]
    Unreachable { blocked: PathBuf, mode: u32 },
}

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> PostgresError {
    let action = action.into();
    move |source| PostgresError::Io { action, source }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Durability costs time; a throw-away test database does not need it.
    pub fsync: bool,
    pub max_connections: u32,
    /// Further `name=value` server settings.
    pub settings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: true,
            max_connections: 100,
            settings: Vec::new(),
        }
    }
}

/// A running PostgreSQL that this process started. Stopped (fast shutdown) on `stop` or drop.
#[derive(Debug)]
pub struct ManagedPostgres {
    data_dir: PathBuf,
    pid: i32,
    exited: Option<mpsc::Receiver<()>>,
}

struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl ManagedPostgres {
    /// Initialises `data_dir` if it holds no cluster yet, starts PostgreSQL on it and waits until it
    /// accepts connections. Blocking: call it from `spawn_blocking` in async code.
    pub fn start(data_dir: &Path, options: &Options) -> Result<Self, PostgresError> {
        let bins = find_binaries().ok_or(PostgresError::NotInstalled)?;
        let run_as = postgres_user()?;
        if let Some(run_as) = run_as {
            check_reachable(data_dir, run_as)?;
        }
        let socket = data_dir.join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > 100 {
            return Err(PostgresError::SocketPathTooLong(socket));
        }
        prepare_dir(data_dir, run_as)?;
        wait_for_previous_postmaster(data_dir)?;
        if !data_dir.join("PG_VERSION").exists() {
            initdb(&bins, data_dir, run_as, options)?;
        }

        let log_path = data_dir.parent().unwrap_or(data_dir).join("postgres.log");
        // Where this start's lines begin: a failure quotes them, not an earlier run's.
        let log_start = fs::metadata(&log_path).map_or(0, |m| m.len());
        let cmd = postmaster_command(&bins, data_dir, run_as, options, &log_path)?;
        let (pid, exit_rx) = spawn_watched(cmd).map_err(|e| match e {
            Spawn::Thread(e) => io_err("spawning the postgres supervisor thread")(e),
            Spawn::Postgres(e) => io_err(format!("starting {}", bins.postgres.display()))(e),
        })?;
        let mut pg = ManagedPostgres {
            data_dir: data_dir.to_path_buf(),
            pid,
            exited: Some(exit_rx),
        };
        if let Err(e) = pg.wait_ready(&log_path, log_start) {
            pg.stop();
            return Err(e);
        }
        Ok(pg)
    }

    /// A connection configuration for `dbname` over the unix socket.
    pub fn connect_config(&self, dbname: &str) -> tokio_postgres::Config {
        socket_config(&self.data_dir, dbname)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The postmaster's process id; it leads a process group of its own (with every backend).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the postmaster has exited (it was killed, or crashed) without `stop` being called.
    pub fn has_exited(&mut self) -> bool {
        match &self.exited {
            Some(rx) => match rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => false,
                _ => {
                    self.exited = None;
                    true
                }
            },
            None => false,
        }
    }

    /// Fast shutdown: open sessions are ended, data is flushed. Waits up to 30 s.
    pub fn stop(&mut self) {
        let Some(exited) = self.exited.take() else {
            return;
        };
        // SAFETY: plain kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.pid, libc::SIGINT);
        }
        if exited.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: as above; immediate shutdown as a last resort.
            unsafe {
                libc::kill(self.pid, libc::SIGQUIT);
            }
            let _ = exited.recv_timeout(Duration::from_secs(5));
        }
    }

    fn wait_ready(&mut self, log_path: &Path, log_start: u64) -> Result<(), PostgresError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let pid_file = self.data_dir.join("postmaster.pid");
        loop {
            // PostgreSQL writes "ready" as the last line of postmaster.pid once it accepts connections.
            if let Ok(text) = fs::read_to_string(&pid_file)
                && text.lines().next() == Some(&self.pid.to_string())
                && text.lines().last().map(str::trim) == Some("ready")
            {
                return Ok(());
            }
            let died = self.exited.as_ref().is_some_and(|rx| rx.try_recv().is_ok());
            if died || Instant::now() > deadline {
                if died {
                    self.exited = None;
                }
                return Err(PostgresError::StartFailed {
                    log: log_path.to_path_buf(),
                    tail: log_tail(log_path, log_start),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How to reach `dbname` of the managed PostgreSQL in `data_dir`, started by this process or by
/// another (a running server, for `rtchat-server admin`).
pub fn socket_config(data_dir: &Path, dbname: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(data_dir)
        .port(PORT)
        .user(SUPERUSER)
        .dbname(dbname)
        .application_name("rtchat");
    cfg
}

impl Drop for ManagedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a postmaster left from an earlier run may take to finish its shutdown.
const PREVIOUS_POSTMASTER_GRACE: Duration = Duration::from_secs(30);

/// A postmaster of an earlier server that was killed gets the parent-death signal and shuts down,
/// which takes a moment: wait for it to go instead of failing on its lock file. One that stays is
/// somebody else's.
fn wait_for_previous_postmaster(data_dir: &Path) -> Result<(), PostgresError> {
    let pid_file = data_dir.join("postmaster.pid");
    let Some(pid) = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    // One still watched over by a live rtchat-server belongs to that server: say so at once.
    if is_postgres(pid)
        && let Some(parent) = parent_of(pid)
        && fs::read_to_string(format!("/proc/{parent}/comm"))
            .is_ok_and(|c| c.trim() == "rtchat-server")
        && parent != std::process::id() as i32
    {
        return Err(PostgresError::InUseByServer {
            dir: data_dir.to_path_buf(),
            pid: parent,
        });
    }
    let deadline = Instant::now() + PREVIOUS_POSTMASTER_GRACE;
    let mut told = false;
    // Its backends outlive a postmaster killed with it (they notice its death within moments).
    while is_postgres(pid) || !processes_in(data_dir).is_empty() {
        if Instant::now() > deadline {
            return Err(PostgresError::InUse {
                dir: data_dir.to_path_buf(),
                pid,
            });
        }
        if !told {
            tracing::info!(
                pid,
                "waiting for the previous PostgreSQL of this data directory to stop"
            );
            told = true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    // Killed together with its server, the postmaster stays a zombie until whoever adopted it
    // collects it, and PostgreSQL takes a zombie's pid in the lock file for a live postmaster. No
    // process works in the directory any more: the lock file is stale.
    if is_zombie(pid) {
        tracing::info!(
            pid,
            "removing the lock files of a PostgreSQL that was killed"
        );
        let socket_lock = data_dir.join(format!(".s.PGSQL.{PORT}.lock"));
        for lock in [&pid_file, &socket_lock] {
            match fs::remove_file(lock) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(format!("removing {}", lock.display()))(e)),
            }
        }
    }
    Ok(())
}

/// Live processes whose working directory is `dir`: a postmaster and its backends all work in
/// their data directory.
fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(dir) = fs::canonicalize(dir) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
                && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state == 'Z')
}

/// A process's state letter and parent, from `/proc/PID/stat` (the fields after the command name,
/// which may itself hold spaces and parentheses).
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

fn parent_of(pid: i32) -> Option<i32> {
    state_and_parent(pid).map(|(_, parent)| parent)
}

/// Every directory above `data_dir` must let the `postgres` user pass (PostgreSQL would fail deep
/// in initdb with "Permission denied" otherwise). Those we create later are made passable.
fn check_reachable(data_dir: &Path, run_as: RunAs) -> Result<(), PostgresError> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    // The data directory's own parent is opened up by `prepare_dir`.
    for dir in absolute.ancestors().skip(2) {
        let Ok(meta) = fs::metadata(dir) else {
            continue; // not there yet: created passable
        };
        let mode = meta.mode() & 0o777;
        let can_pass = if meta.uid() == run_as.uid {
            mode & 0o100 != 0
        } else if meta.gid() == run_as.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_pass {
            return Err(PostgresError::Unreachable {
                blocked: dir.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

/// Whether `pid` is a live PostgreSQL process (not a recycled pid of something else).
fn is_postgres(pid: i32) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie has exited already; only its parent has not collected it yet.
    !is_zombie(pid)
        && cmdline
            .split(|b| *b == 0)
            .next()
            .is_some_and(|arg0| String::from_utf8_lossy(arg0).contains("postgres"))
}

/// The last lines `path` gained after its first `from` bytes.
fn log_tail(path: &Path, from: u64) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The postmaster's command line: a unix socket in the data directory only, our settings, its
/// output appended to `log_path`, a process group of its own, and the parent-death signal.
fn postmaster_command(
    bins: &Binaries,
    data_dir: &Path,
    run_as: Option<RunAs>,
    options: &Options,
    log_path: &Path,
) -> Result<Command, PostgresError> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    let mut cmd = Command::new(&bins.postgres);
    cmd.arg("-D")
        .arg(data_dir)
        .args(["-c", "listen_addresses="])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", data_dir.display()))
        .args(["-c", "unix_socket_permissions=0700"])
        .arg("-c")
        .arg(format!("port={PORT}"))
        .arg("-c")
        .arg(format!("max_connections={}", options.max_connections));
    if !options.fsync {
        cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
        cmd.args(["-c", "full_page_writes=off"]);
    }
    for setting in &options.settings {
        cmd.arg("-c").arg(setting);
    }
    cmd.current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io_err("duplicating log handle"))?)
        .stderr(log)
        // Ctrl-C in a terminal goes to the whole foreground group: PostgreSQL must keep serving
        // until the server has drained, so it gets a group of its own and is stopped by us.
        .process_group(0);
    if let Some(RunAs { uid, gid }) = run_as {
        cmd.uid(uid).gid(gid);
    }
    // SAFETY: prctl is async-signal-safe. std runs this after switching uid/gid, which would
    // otherwise clear the parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Why `spawn_watched` failed.
enum Spawn {
    Thread(io::Error),
    Postgres(io::Error),
}

/// Starts `cmd` from a thread of its own that waits for it: the parent-death signal fires when the
/// *thread* that spawned the child ends, so that thread lives exactly as long as the postmaster.
/// The pid, and a channel that hears when it exits.
fn spawn_watched(mut cmd: Command) -> Result<(i32, mpsc::Receiver<()>), Spawn> {
    let (pid_tx, pid_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    thread::Builder::new()
        .name("postgres-supervisor".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = pid_tx.send(Ok(child.id() as i32));
                let _ = child.wait();
                let _ = exit_tx.send(());
            }
            Err(e) => {
                let _ = pid_tx.send(Err(e));
            }
        })
        .map_err(Spawn::Thread)?;
    let pid = pid_rx
        .recv()
        .map_err(|_| Spawn::Thread(io::Error::other("the watching thread died")))?
        .map_err(Spawn::Postgres)?;
    Ok((pid, exit_rx))
}

fn find_binaries() -> Option<Binaries> {
    let from_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    if let (Some(initdb), Some(postgres)) = (from_path("initdb"), from_path("postgres")) {
        return Some(Binaries { initdb, postgres });
    }
    // Debian keeps the server binaries off PATH, one directory per major version: take the newest.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| Binaries {
        initdb: bin.join("initdb"),
        postgres: bin.join("postgres"),
    })
}

/// PostgreSQL refuses to run as root: when we are root, it runs as the `postgres` system user.
fn postgres_user() -> Result<Option<RunAs>, PostgresError> {
    // SAFETY: geteuid cannot fail; getpwnam returns null or a pointer to static storage that we
    // read before any other call into the passwd functions.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(None);
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            return Err(PostgresError::NoPostgresUser);
        }
        Ok(Some(RunAs {
            uid: (*pw).pw_uid,
            gid: (*pw).pw_gid,
        }))
    }
}

fn prepare_dir(data_dir: &Path, run_as: Option<RunAs>) -> Result<(), PostgresError> {
    if let Some(parent) = data_dir.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
        if run_as.is_some() {
            // The postgres user must be able to pass through to its own directory.
            let mode = fs::metadata(parent)
                .map_err(io_err(format!("reading {}", parent.display())))?
                .permissions()
                .mode();
            if mode & 0o001 == 0 {
                fs::set_permissions(parent, fs::Permissions::from_mode(mode | 0o711))
                    .map_err(io_err(format!("opening up {}", parent.display())))?;
            }
        }
    }
    if !data_dir.exists() {
        fs::create_dir(data_dir).map_err(io_err(format!("creating {}", data_dir.display())))?;
    }
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("restricting {}", data_dir.display())))?;
    if let Some(RunAs { uid, gid }) = run_as {
        chown(data_dir, Some(uid), Some(gid)).map_err(io_err(format!(
            "handing {} to postgres",
            data_dir.display()
        )))?;
    }
    Ok(())
}

fn initdb(
    bins: &Binaries,
    data_dir: &Path,
    run_as: Option<RunAs>,
    options: &Options,
) -> Result<(), PostgresError> {
    let mut cmd = Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(data_dir)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
        .current_dir(data_dir)
        .stdin(Stdio::null());
    if !options.fsync {
        cmd.arg("--no-sync");
    }
    if let Some(RunAs { uid, gid }) = run_as {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd
        .output()
        .map_err(io_err(format!("running {}", bins.initdb.display())))?;
    if !out.status.success() {
        return Err(PostgresError::Initdb(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
