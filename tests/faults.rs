//! Faults injected for real: a killed PostgreSQL backend, a frozen PostgreSQL, a killed postmaster,
//! a killed server restarted at once, and SIGTERM with a half-sent request. A killed backend makes
//! PostgreSQL restart every session of its cluster, so each test here runs its own PostgreSQL (and
//! this is a test binary of its own, apart from the shared one of `tests/api`).

// Each binary uses part of the harness.
#[allow(dead_code, unused_imports)]
mod common;

/// The tests, in `tests/faults/`.
mod faults {
    mod binary;
    mod database;
}

/// Files and directories `prefix-PID...` in the temporary directory whose test process is gone
/// (killed before its cleanup ran).
pub fn remove_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split(['-', '.']).next())
        else {
            continue;
        };
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

/// A postmaster and its children: each backend is a session of its own, so the postmaster's
/// process group does not reach them.
pub fn postmaster_and_children(postmaster: i32) -> Vec<i32> {
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
        if parent == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

/// `signal` to each of `pids` (a test's own PostgreSQL processes).
pub fn signal_all(pids: &[i32], signal: i32) {
    for &pid in pids {
        // SAFETY: kill(2) on processes this test started.
        unsafe { libc::kill(pid, signal) };
    }
}
