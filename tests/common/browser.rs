//! A real Chromium for the web client's tests: Debian's `chromium`, driven through its
//! `chromedriver` (WebDriver, on a loopback port, one per test binary), each session a browser of
//! its own (its own profile: its own cookies). Without them a test says it was skipped; CI
//! installs both and sets RTCHAT_REQUIRE_BROWSER=1, so there they must run.

// Only the api test binary opens browsers; the others share this harness.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

static DRIVER: OnceLock<Option<(String, u32)>> = OnceLock::new();

const CHROMIUM: &str = "/usr/bin/chromium";

extern "C" fn stop_driver() {
    if let Some(Some((_, pid))) = DRIVER.get() {
        // SAFETY: signalling our own child (chromedriver ends its browsers with it).
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
}

/// chromedriver's address, started once for this test binary; None when the machine has no
/// Chromium (and the run does not require one).
fn driver() -> Option<String> {
    DRIVER
        .get_or_init(|| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let spawned = if std::path::Path::new(CHROMIUM).exists() {
                let mut command = std::process::Command::new("chromedriver");
                command.arg(format!("--port={port}"));
                super::process::spawn_for_the_run(command).map_err(|e| e.to_string())
            } else {
                Err(format!("{CHROMIUM} is missing"))
            };
            let child = match spawned {
                Ok(child) => child,
                Err(why) => {
                    assert!(
                        std::env::var_os("RTCHAT_REQUIRE_BROWSER").is_none(),
                        "Chromium and chromedriver are required here: {why}"
                    );
                    eprintln!(
                        "no Chromium here ({why}): skipping the browser tests (CI runs them)"
                    );
                    return None;
                }
            };
            // SAFETY: registering a plain extern "C" function to run at exit.
            unsafe {
                libc::atexit(stop_driver);
            }
            let url = format!("http://127.0.0.1:{port}");
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some((url, child.id()))
        })
        .as_ref()
        .map(|(url, _)| url.clone())
}

/// One browser: a headless Chromium with a profile of its own.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    /// A new browser `width` pixels wide, or None when the machine has none (the test is skipped).
    pub async fn open(width: u32) -> Option<Browser> {
        Self::open_with(width, false).await
    }

    /// `open`, with the system's dark appearance when `dark` (the page follows it).
    pub async fn open_with(width: u32, dark: bool) -> Option<Browser> {
        Self::launch(width, dark, false).await
    }

    /// `open`, for a server whose certificate comes from a test's own CA.
    pub async fn open_for_tls(width: u32) -> Option<Browser> {
        Self::launch(width, false, true).await
    }

    async fn launch(width: u32, dark: bool, any_certificate: bool) -> Option<Browser> {
        let url = driver()?;
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},900"),
        ];
        if dark {
            args.push("--force-dark-mode".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        if any_certificate {
            caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
        }
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("chromedriver starts a browser");
        Some(Browser { client })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// The element `xpath` finds, waiting up to 10 s for it.
    pub async fn find(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("{xpath}: {e}"))
    }

    /// A textbox by its label's text.
    pub async fn textbox(&self, label: &str) -> Element {
        self.find(&format!(
            "//label[normalize-space(text())='{label}']//*[self::input or self::textarea] \
             | //*[self::input or self::textarea][@id=//label[normalize-space(.)='{label}']/@for]"
        ))
        .await
    }

    /// A button by its text.
    pub async fn button(&self, name: &str) -> Element {
        self.find(&format!("//button[normalize-space(.)='{name}']"))
            .await
    }

    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.textbox(label).await;
        field.clear().await.expect("cleared");
        field.send_keys(text).await.expect("typed");
    }

    pub async fn click(&self, name: &str) {
        self.click_at(&format!("//button[normalize-space(.)='{name}']"))
            .await;
    }

    /// Clicks what `xpath` finds. The page redraws lists as events arrive: an element found just
    /// before a redraw is found again.
    pub async fn click_at(&self, xpath: &str) {
        for _ in 0..50 {
            let element = self.find(xpath).await;
            match element.click().await {
                Ok(_) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking {xpath}: {e}"),
            }
        }
        panic!("{xpath} kept changing under the click");
    }

    /// Chooses `path` in the page's file input (as the Attach button's dialog would).
    pub async fn choose_file(&self, path: &std::path::Path) {
        self.find("//input[@type='file']")
            .await
            .send_keys(&path.display().to_string())
            .await
            .expect("the file is chosen");
    }

    /// Searches messages for `words` in the page and waits for a result containing `expected`.
    pub async fn search(&self, words: &str, expected: &str) {
        self.fill("Search messages", words).await;
        self.textbox("Search messages")
            .await
            .send_keys("\u{E007}")
            .await
            .expect("searched");
        self.text_until("//ul[@aria-label='Search results']", |t| {
            t.contains(expected)
        })
        .await;
    }

    /// Types into the composer and presses Enter.
    pub async fn say(&self, text: &str) {
        let composer = self.textbox("Message").await;
        composer
            .send_keys(&format!("{text}\u{E007}"))
            .await
            .expect("typed and sent");
    }

    /// The text of the element `xpath` finds, once `check` holds for it (10 s at most).
    pub async fn text_until(&self, xpath: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(found) = self.client.find(Locator::XPath(xpath)).await {
                last = found.text().await.unwrap_or_default();
                if check(&last) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{xpath} never matched; last text: {last:?}");
    }

    /// The open conversation's messages (the element with role "log").
    pub async fn log_until(&self, check: impl Fn(&str) -> bool) -> String {
        self.text_until("//*[@role='log']", check).await
    }

    /// Runs `script` in the page; its JSON result.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("the script runs")
    }

    /// Signs up through the page: the "Create account" form.
    pub async fn create_account(&self, base: &str, name: &str, invite: Option<&str>) {
        self.goto(&format!("{base}/")).await;
        self.click("Create account").await;
        self.fill("Username", name).await;
        self.fill("Email", &format!("{name}@example.com")).await;
        self.fill("Password", crate::common::PASSWORD).await;
        if let Some(code) = invite {
            self.fill("Invite code", code).await;
        }
        self.click("Create account").await;
        self.find("//nav[@aria-label='Conversations']").await;
    }

    /// A PNG of what the browser shows, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(path, png).expect("the screenshot is written");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
