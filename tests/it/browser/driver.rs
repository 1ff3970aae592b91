//! `Browser`: one headless Chromium session behind its own `chromedriver`
//! process, with a temp profile, and helpers that poll with a deadline.
//!
//! Every helper panics with the selector, the page's URL and its text when
//! it fails: a browser test reads as a list of steps, not of `?`s.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::error::WebDriverErrorInner;
use thirtyfour::prelude::*;
use thirtyfour::{BrowserLogEntry, ChromeCapabilities, LoggingPrefsLogLevel};

use super::http::ReqwestClient;

/// How long `wait_for` and friends poll before they give up.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often they look.
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to answer `/status` after it is spawned.
const DRIVER_START: Duration = Duration::from_secs(20);
/// Desktop and phone viewports (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// Chromium's flags: headless, no sandbox (root in CI, containers), no GPU,
/// no /dev/shm (small in containers), and nothing that phones home or
/// changes between runs (first-run UI, component updates, sync, QUIC).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--force-device-scale-factor=1",
    "--lang=en-US",
];

/// One console log entry (`console.*`, an uncaught exception, a failed
/// resource load), as chromedriver reports it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// `javascript` (uncaught errors), `console-api` (`console.*`),
    /// `network` (a failed load), ...; empty when the driver gave none.
    pub source: String,
    pub message: String,
}

pub struct Browser {
    /// `None` once quit (on Drop).
    driver: Option<WebDriver>,
    chromedriver: Child,
    /// Holds `profile/` (Chromium's `--user-data-dir`) and `chromedriver.log`.
    dir: Option<tempfile::TempDir>,
    profile: PathBuf,
    /// Every log entry drained from the driver so far (a drain empties the
    /// driver's buffer, so they are kept here for `console_log`/`js_errors`).
    log: Mutex<Vec<LogEntry>>,
}

/// `name`'s full path on `PATH`, if it is there and executable.
fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// A port that was free a moment ago (chromedriver does not take port 0):
/// bind, read it, drop. Someone may take it before chromedriver does; the
/// caller retries with another.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Waits until the chromedriver on `port` answers `/status` with ready, or
/// exits (port taken, say), or the deadline passes.
async fn driver_ready(http: &reqwest::Client, port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + DRIVER_START;
    let url = format!("http://127.0.0.1:{port}/status");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("chromedriver exited ({status})"));
        }
        if let Ok(resp) = http.get(&url).send().await
            && let Ok(body) = resp.json::<Value>().await
            && body["value"]["ready"] == Value::Bool(true)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("chromedriver not ready after {DRIVER_START:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Browser {
    /// A fresh headless Chromium at 1280x900, or `None` (with a note) when
    /// `chromium` or `chromedriver` is not on `PATH` and `CI` is unset.
    /// With `CI` set a missing browser is a failure: `.ci/run` installs it.
    pub async fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
        else {
            let why = "chromium or chromedriver is not on PATH (Debian: apt-get install \
                       --no-install-recommends chromium chromium-driver fonts-liberation)";
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but {why}: the browser tests must run in CI (.ci/run installs them)"
                );
            }
            eprintln!("skipping a browser test: {why}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("ferry-browser-")
            .tempdir()
            .expect("temp dir for the browser");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("profile dir");
        let log_path = dir.path().join("chromedriver.log");
        let http = super::http::client();

        let mut failures = Vec::new();
        let (mut child, port) = loop {
            let port = free_port();
            let log = std::fs::File::create(&log_path).expect("chromedriver log file");
            let mut child = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
            match driver_ready(&http, port, &mut child).await {
                Ok(()) => break (child, port),
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("port {port}: {why}\n{}", log_tail(&log_path)));
                    if failures.len() == 5 {
                        panic!("chromedriver did not start:\n{}", failures.join("\n---\n"));
                    }
                }
            }
        };

        let mut caps = ChromeCapabilities::new();
        let session = async {
            caps.set_binary(&chromium.to_string_lossy())?;
            for arg in CHROMIUM_ARGS {
                caps.add_arg(arg)?;
            }
            caps.add_arg(&format!("--window-size={},{}", DESKTOP.0, DESKTOP.1))?;
            caps.add_arg(&format!("--user-data-dir={}", profile.display()))?;
            caps.set_browser_log_level(LoggingPrefsLogLevel::All)?;
            WebDriver::builder(format!("http://127.0.0.1:{port}"), caps)
                .client(ReqwestClient(http))
                .connect()
                .await
        }
        .await;
        let driver = match session {
            Ok(driver) => driver,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                kill_chromium_of(&profile);
                panic!(
                    "no Chromium session from chromedriver: {e}\nchromedriver's log:\n{}",
                    log_tail(&log_path)
                );
            }
        };
        let browser = Browser {
            driver: Some(driver),
            chromedriver: child,
            dir: Some(dir),
            profile,
            log: Mutex::new(Vec::new()),
        };
        browser.set_desktop_size().await;
        Some(browser)
    }

    /// The thirtyfour session, for what the helpers do not cover.
    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("browser already quit")
    }

    /// Panics with what the page shows: its URL and text (shortened).
    async fn fail(&self, what: String) -> ! {
        let url = self.url().await;
        let text = self
            .driver()
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|r| r.json().as_str().map(str::to_owned))
            .unwrap_or_default();
        let text: String = text.chars().take(2000).collect();
        let errors = self.js_errors().await;
        panic!("{what}\nurl: {url}\njs errors: {errors:?}\npage text:\n{text}");
    }

    /// Opens `url` and waits for its load event.
    pub async fn goto(&self, url: impl AsRef<str>) {
        let url = url.as_ref();
        if let Err(e) = self.driver().goto(url).await {
            self.fail(format!("goto {url}: {e}")).await;
        }
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.driver()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(no url: {e})"))
    }

    /// Polls until `check` gives `Some`, or panics with `what` after `WAIT`.
    async fn poll<T, F, Fut>(&self, what: impl FnOnce() -> String, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if Instant::now() > deadline {
                self.fail(format!("{} (waited {WAIT:?})", what())).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The elements matching `css` now, or `None` on a passing failure; a
    /// selector the browser cannot parse fails at once instead of after
    /// `WAIT`.
    async fn find_all(&self, css: &str) -> Option<Vec<WebElement>> {
        match self.driver().find_all(By::Css(css)).await {
            Ok(found) => Some(found),
            Err(e) if matches!(&*e, WebDriverErrorInner::InvalidSelector(_)) => {
                self.fail(format!("`{css}` is not a valid CSS selector: {e}"))
                    .await
            }
            Err(_) => None,
        }
    }

    /// The first element matching `css`, once there is one.
    pub async fn wait_for(&self, css: &str) -> WebElement {
        self.poll(
            || format!("no element matches `{css}`"),
            || async { self.find_all(css).await?.into_iter().next() },
        )
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        self.poll(
            || format!("`{css}` is still there"),
            || async { self.find_all(css).await?.is_empty().then_some(()) },
        )
        .await
    }

    /// The first element matching `css` whose text contains `text`, once
    /// there is one.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> WebElement {
        self.poll(
            || format!("no element matching `{css}` contains {text:?}"),
            || async {
                for el in self.find_all(css).await? {
                    if el.text().await.is_ok_and(|t| t.contains(text)) {
                        return Some(el);
                    }
                }
                None
            },
        )
        .await
    }

    /// Clears the field matching `css` and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.wait_for(css).await;
        let typed = async {
            el.clear().await?;
            el.send_keys(value).await
        }
        .await;
        if let Err(e) = typed {
            self.fail(format!("fill `{css}` with {value:?}: {e}")).await;
        }
    }

    /// Clicks the element matching `css`, once it is there and clickable
    /// (not hidden or covered by another element).
    pub async fn click(&self, css: &str) {
        let mut last = String::new();
        let clicked = self
            .poll_quiet(
                || async {
                    let Some(el) = self.find_all(css).await.and_then(|f| f.into_iter().next())
                    else {
                        return Err("no element matches".to_owned());
                    };
                    el.click().await.map_err(|e| e.to_string())
                },
                &mut last,
            )
            .await;
        if !clicked {
            self.fail(format!("click `{css}`: {last} (waited {WAIT:?})"))
                .await;
        }
    }

    /// Like `poll` for a fallible step: retries until it succeeds or `WAIT`
    /// passes, keeping the last error; false on timeout.
    async fn poll_quiet<F, Fut>(&self, mut step: F, last: &mut String) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            match step().await {
                Ok(()) => return true,
                Err(e) => *last = e,
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The rendered text of the first element matching `css` (waits for it).
    pub async fn text(&self, css: &str) -> String {
        let el = self.wait_for(css).await;
        match el.text().await {
            Ok(t) => t,
            Err(e) => self.fail(format!("text of `{css}`: {e}")).await,
        }
    }

    /// The rendered texts of every element matching `css` now (no wait:
    /// none is an answer).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let found = match self.driver().find_all(By::Css(css)).await {
            Ok(found) => found,
            Err(e) => self.fail(format!("find `{css}`: {e}")).await,
        };
        let mut texts = Vec::with_capacity(found.len());
        for el in found {
            match el.text().await {
                Ok(t) => texts.push(t),
                Err(e) => self.fail(format!("text of `{css}`: {e}")).await,
            }
        }
        texts
    }

    /// Attribute `name` of the first element matching `css` (waits for it).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let el = self.wait_for(css).await;
        match el.attr(name.to_owned()).await {
            Ok(v) => v,
            Err(e) => self.fail(format!("attribute {name} of `{css}`: {e}")).await,
        }
    }

    /// Runs `js` as a function body in the page and gives its `return`
    /// value (`null` without one): `b.eval("return document.title")`.
    /// WebDriver runs it outside the page's CSP, so it works on pages that
    /// forbid inline scripts.
    pub async fn eval(&self, js: &str) -> Value {
        match self.driver().execute(js, vec![]).await {
            Ok(r) => r.json().clone(),
            Err(e) => self.fail(format!("eval {js:?}: {e}")).await,
        }
    }

    /// Every console entry since the browser started, oldest first.
    pub async fn console_log(&self) -> Vec<LogEntry> {
        let drained: Vec<BrowserLogEntry> = self.driver().browser_log().await.unwrap_or_default();
        let mut log = self.log.lock().unwrap();
        log.extend(drained.into_iter().map(|e| LogEntry {
            level: e.level,
            source: e.source.unwrap_or_default(),
            message: e.message,
        }));
        log.clone()
    }

    /// The messages of the `SEVERE` console entries that are not a failed
    /// load (`network`): uncaught exceptions and `console.error` calls.
    pub async fn js_errors(&self) -> Vec<String> {
        self.console_log()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE" && e.source != "network")
            .map(|e| e.message)
            .collect()
    }

    /// The cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Cookie> {
        match self.driver().get_all_cookies().await {
            Ok(c) => c,
            Err(e) => self.fail(format!("cookies: {e}")).await,
        }
    }

    /// The cookie `name` for the current page, if the browser holds one.
    pub async fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Sets the viewport (not the window) to `width` x `height` CSS pixels:
    /// sets the window, reads the viewport, corrects the window by the
    /// difference.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let d = self.driver();
        if let Err(e) = d.set_window_rect(0, 0, width, height).await {
            self.fail(format!("set window {width}x{height}: {e}")).await;
        }
        let inner = self
            .eval("return [window.innerWidth, window.innerHeight]")
            .await;
        let inner = (inner[0].as_u64(), inner[1].as_u64());
        let (Some(iw), Some(ih)) = inner else {
            self.fail(format!("viewport size: {inner:?}")).await;
        };
        if (iw, ih) != (u64::from(width), u64::from(height)) {
            // The window's frame, if any, is the difference.
            let w = (2 * u64::from(width)).saturating_sub(iw) as u32;
            let h = (2 * u64::from(height)).saturating_sub(ih) as u32;
            if let Err(e) = d.set_window_rect(0, 0, w, h).await {
                self.fail(format!("set window for a {width}x{height} viewport: {e}"))
                    .await;
            }
        }
    }

    /// A phone's viewport: 390x844 (an iPhone 12-15).
    pub async fn set_phone_size(&self) {
        self.set_viewport(PHONE.0, PHONE.1).await;
    }

    /// The default viewport: 1280x900.
    pub async fn set_desktop_size(&self) {
        self.set_viewport(DESKTOP.0, DESKTOP.1).await;
    }

    /// A PNG of the viewport at `path` (its folder is created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        if let Err(e) = self.driver().screenshot(path).await {
            self.fail(format!("screenshot {}: {e}", path.display()))
                .await;
        }
    }

    /// `docs/screenshots/<name>.png`, only when `FERRY_DOC_SCREENSHOTS=1`
    /// (otherwise nothing): the documentation's pictures come from the
    /// tests, so they show what the tests checked.
    pub async fn doc_screenshot(&self, name: &str) {
        if let Some(path) = doc_screenshot_path(name) {
            self.screenshot(path).await;
        }
    }

    /// Quits the session without blocking the runtime (Drop quits too, but
    /// synchronously, on a thread of its own), then cleans up as Drop does.
    pub async fn close(mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = driver.quit().await;
        }
    }

    fn kill(&mut self) {
        // Quit the session first, so Chromium exits and lets go of its
        // profile; thirtyfour's Drop does that synchronously (on a thread of
        // its own, with a fresh client) even while a test panics.
        drop(self.driver.take());
        // Chromium exits after the quit's answer: give it a moment, so that
        // chromedriver, its parent, reaps it before going itself.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !chromium_of(&self.profile).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
        // A Chromium that outlived its driver (the quit failed) is still
        // ours: it is the one with our profile on its command line.
        kill_chromium_of(&self.profile);
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_owned();
            if dir.close().is_err() {
                // A process that was still writing to the profile; once more.
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// Where `doc_screenshot(name)` writes, or `None` when it should not.
pub fn doc_screenshot_path(name: &str) -> Option<PathBuf> {
    (std::env::var("FERRY_DOC_SCREENSHOTS").as_deref() == Ok("1")).then(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/screenshots")
            .join(format!("{name}.png"))
    })
}

/// The processes (Chromium and its helpers) whose command line names
/// `profile` as their `--user-data-dir`: only ever this browser's own.
fn chromium_of(profile: &Path) -> Vec<rustix::process::Pid> {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == needle.as_bytes())
                .then(|| rustix::process::Pid::from_raw(pid))?
        })
        .collect()
}

/// Kills what `chromium_of(profile)` finds.
fn kill_chromium_of(profile: &Path) {
    for pid in chromium_of(profile) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}
