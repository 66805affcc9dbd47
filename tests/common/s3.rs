//! An S3-compatible server for the test binary (moto's server mode, `moto_server`, from PyPI; CI
//! installs it and sets RTCHAT_REQUIRE_S3=1), with the environment the server's S3 client reads.

use std::sync::OnceLock;

static S3: OnceLock<Option<(String, u32)>> = OnceLock::new();

extern "C" fn stop_test_s3() {
    if let Some(Some((_, pid))) = S3.get() {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
}

/// Where moto_server is: RTCHAT_MOTO_SERVER, else on PATH, else CI's /opt/moto.
fn moto_server() -> String {
    if let Some(path) = std::env::var_os("RTCHAT_MOTO_SERVER") {
        return path.to_string_lossy().into_owned();
    }
    let installed = "/opt/moto/bin/moto_server";
    if std::path::Path::new(installed).exists() {
        return installed.into();
    }
    "moto_server".into()
}

/// The endpoint of an S3-compatible server on loopback for this test binary, or None when none is
/// installed. The AWS_* variables the server's S3 client reads are set for the whole process once.
pub fn s3_endpoint() -> Option<String> {
    S3.get_or_init(|| {
        let (port, pid) = super::process::serve_for_the_run(
            &moto_server(),
            |port| {
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]
            },
            "RTCHAT_REQUIRE_S3",
            std::time::Duration::from_secs(30),
        )?;
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_test_s3);
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        // SAFETY: set once, before any server of this binary reads them; the same values for all.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            std::env::set_var("AWS_ALLOW_HTTP", "true");
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        }
        Some((endpoint, pid))
    })
    .as_ref()
    .map(|(url, _)| url.clone())
}

/// A new bucket on the test S3 server.
pub async fn new_bucket(endpoint: &str) -> String {
    let bucket = format!("rtchat-{}", uuid::Uuid::new_v4().simple());
    let created = super::http()
        .build()
        .unwrap()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 server answers");
    assert!(created.status().is_success(), "{}", created.status());
    bucket
}
