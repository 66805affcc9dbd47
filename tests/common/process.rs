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
