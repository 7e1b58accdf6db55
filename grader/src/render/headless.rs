//! Headless Chromium, for what must be seen in a real browser: the README's
//! pictures (`cargo xtask screenshots`) and the tests that open our pages
//! offline. One place starts it with the same quiet flags, bounds it in
//! time, and kills it with its helpers, which share its process group.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The first of `chromium`, `chromium-browser` and `google-chrome` on the
/// `PATH` that is an executable file.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// One run of headless Chromium, with a profile folder of its own that
/// lives as long as this value.
#[derive(Debug)]
pub struct Headless {
    command: Command,
    profile: tempfile::TempDir,
}

/// How a run ended.
#[derive(Debug)]
pub struct Browsed {
    /// Its exit status, or `None` when it outlived its limit (it was killed).
    pub status: Option<ExitStatus>,
    /// What it printed on stdout (`--dump-dom` prints the document there).
    pub stdout: String,
}

impl Headless {
    /// Chromium at `chromium`, headless, with nothing of its own to fetch
    /// (no updates, sync, extensions or first-run pages) and no GPU.
    pub fn new(chromium: &Path) -> std::io::Result<Self> {
        let profile = tempfile::tempdir()?;
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()));
        Ok(Self { command, profile })
    }

    /// Its profile folder, where a run may be asked to write (a net log, a
    /// screenshot) and which is removed with this value.
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }

    /// Adds one command-line argument.
    pub fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.command.arg(arg);
        self
    }

    /// Loads `page` and waits for Chromium to exit, at most `limit`; then
    /// kills whatever is left of its process group.
    pub fn run(&mut self, page: &Path, limit: Duration) -> std::io::Result<Browsed> {
        let mut child = self
            .command
            .arg(format!("file://{}", page.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if started.elapsed() > limit {
                break None;
            }
            // Chromium offers no readiness to wait on: its exit is polled.
            std::thread::sleep(Duration::from_millis(50));
        };
        // Its helpers share its process group: none outlives the run.
        if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = child.wait();
        Ok(Browsed {
            status,
            stdout: reader.join().unwrap_or_default(),
        })
    }
}
