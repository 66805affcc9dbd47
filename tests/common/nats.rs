//! A NATS server for the test binary, for the cluster tests on the NATS bus.

use std::sync::OnceLock;

static NATS: OnceLock<Option<(String, u32)>> = OnceLock::new();

extern "C" fn stop_test_nats() {
    if let Some(Some((_, pid))) = NATS.get() {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
}

/// A NATS server for this test binary (`nats-server` from the machine, on a free loopback port),
/// or None when it is not installed (CI installs it and sets RTCHAT_REQUIRE_NATS=1).
pub fn nats_url() -> Option<String> {
    NATS.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = std::process::Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        let child = match super::process::spawn_for_the_run(command) {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("RTCHAT_REQUIRE_NATS").is_none(),
                    "nats-server is required here but cannot start: {e}"
                );
                eprintln!("nats-server is not installed; skipping the NATS tests");
                return None;
            }
        };
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_nats);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some((format!("nats://127.0.0.1:{port}"), child.id()))
    })
    .as_ref()
    .map(|(url, _)| url.clone())
}
