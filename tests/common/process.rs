//! Helper programs a test binary starts once and keeps for its whole run (nats-server,
//! chromedriver), ended with the run however it ends.

use std::process::{Child, Command, Stdio};

/// Starts `command` (its output discarded) so that it gets SIGTERM when this process dies: from
/// a thread that lives as long as the process, since the parent-death signal follows the thread
/// that spawned the child, and a test's thread ends with its test.
pub fn spawn_for_the_run(mut command: Command) -> std::io::Result<Child> {
    let (started, child) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        command.stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl only asks for a signal when this thread's process dies.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let spawned = command.spawn();
        let ok = spawned.is_ok();
        let _ = started.send(spawned);
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    child.recv().expect("the spawning thread answers")
}

/// `program` serving on a free loopback port for the whole run (`args` given the port), once it
/// accepts connections: its port and pid. None when it cannot start and the environment variable
/// `required` is unset (then the tests that need it say they were skipped); a panic when it is set.
pub fn serve_for_the_run(
    program: &str,
    args: impl Fn(u16) -> Vec<String>,
    required: &str,
    patience: std::time::Duration,
) -> Option<(u16, u32)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut command = Command::new(program);
    command.args(args(port));
    let child = match spawn_for_the_run(command) {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var_os(required).is_none(),
                "{program} is required here ({required}) but cannot start: {e}"
            );
            eprintln!("{program} is not installed; skipping the tests that need it");
            return None;
        }
    };
    let deadline = std::time::Instant::now() + patience;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{program} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some((port, child.id()))
}
