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
        let (port, pid) = super::process::serve_for_the_run(
            "nats-server",
            |port| {
                vec![
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]
            },
            "RTCHAT_REQUIRE_NATS",
            std::time::Duration::from_secs(10),
        )?;
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_nats);
        }
        Some((format!("nats://127.0.0.1:{port}"), pid))
    })
    .as_ref()
    .map(|(url, _)| url.clone())
}
