//! [`Ctx`]: what one check gets to work with.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::capture::complete_lines;
use super::observe::{procfs, sockdiag};
use super::process::{Finished, Launch, Process, Registry, describe_status};
use super::sandbox::Grant;
use super::snapshot::{self, SnapshotMode};
use super::{last_words, ready, show};
use crate::lab::Lab;
use crate::outcome::{CheckResult, Failure};
use crate::rubric::CheckSpec;
use crate::sync::Unpoison;

/// The executables being graded, by contract name.
#[derive(Debug, Clone, Default)]
pub struct Binaries {
    /// Where they came from, for messages: `labs/echo`, `--bin-dir /tmp/x`.
    pub origin: String,
    /// Contract name → path of the executable.
    pub paths: BTreeMap<String, PathBuf>,
    /// The cargo crate they were built from, when the grader built them
    /// (`None` for `--bin-dir`): checks that run the crate's own tests need it.
    pub crate_dir: Option<PathBuf>,
    /// The target directory the crate was built in, when not its
    /// workspace's own.
    pub target_dir: Option<PathBuf>,
    /// The grader's own tests of the lab's library, built against the
    /// graded crate (lab 4): the test executable, or why it did not build.
    /// `None` when there are none to run (no such tests, or `--bin-dir`).
    pub tests: Option<Result<PathBuf, String>>,
    /// Contract name → where the executable came from, when `paths` point
    /// at staged copies: reports show these (the copies are removed after
    /// the grade).
    pub shown: BTreeMap<String, PathBuf>,
    /// The `--bin-dir` folder they were found in: staged whole, so that a
    /// program keeps the files beside it.
    pub folder: Option<PathBuf>,
    /// Who the programs run as and what they may see, once staged.
    pub grant: Option<Grant>,
}

impl Binaries {
    /// The lab's executables found in `dir` (missing ones are left out; the
    /// checks that need them report it).
    pub fn from_dir(lab: &Lab, dir: &Path) -> Self {
        let paths = lab
            .binaries
            .iter()
            .map(|name| (name.to_string(), dir.join(name)))
            .filter(|(_, path)| is_executable(path))
            .collect();
        Self {
            origin: format!("--bin-dir {}", dir.display()),
            paths,
            crate_dir: None,
            target_dir: None,
            tests: None,
            shown: BTreeMap::new(),
            folder: Some(dir.to_path_buf()),
            grant: None,
        }
    }

    /// The executable named `name`.
    pub fn path(&self, name: &str) -> Result<&Path, Failure> {
        self.paths.get(name).map(PathBuf::as_path).ok_or_else(|| {
            Failure::new(format!(
                "there is no executable named `{name}` in {}",
                self.origin
            ))
            .expected(format!("an executable file called {name}"))
        })
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A graded server that announced its address.
#[derive(Debug)]
pub struct Server {
    /// The running program.
    pub process: Process,
    /// The address from its `Listening on` line.
    pub addr: SocketAddr,
    /// When it was started.
    started: Instant,
    /// What evidence about it means in this lab (see [`Server::on`]).
    lessons: Vec<Lesson>,
}

/// Evidence about a graded server that points at one cause, whichever
/// check comes across it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Bytes that arrived wait unread in its sockets while it sleeps
    /// waiting for readiness (see [`Server::unread_while_waiting`]).
    UnreadWhileWaiting,
    /// It exited on an error decoding bytes as UTF-8 (its stderr says so).
    TextDecodingCrash,
    /// It holds a connection its client closed (CLOSE_WAIT) that it no
    /// longer watches: deregistered, never dropped (see
    /// [`Server::kept_after_close`]).
    KeptAfterClose,
    /// It exited on one connection's error, a reset or a broken pipe (its
    /// stderr says so): an error of one client ended the whole server.
    ConnectionErrorCrash,
    /// It printed EAGAIN's words ("Resource temporarily unavailable", `os
    /// error 11`) as an error: it took a non-blocking call's `WouldBlock`
    /// for a failure.
    WouldBlockAsError,
    /// It exited on an interrupted system call (its stderr says EINTR): a
    /// stop and continue, or any signal, ended it.
    InterruptedCrash,
    /// It exited looking up a key its map does not hold (Rust's `no entry
    /// found for key`, Python's `KeyError`): it indexed input it had not
    /// checked.
    MissingKeyCrash,
}

/// What waits unread in a sleeping server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread {
    /// Bytes that arrived and were not read.
    pub bytes: u64,
    /// Clients' ends of stream (FIN) the server has not noticed.
    pub ends: usize,
    /// Connections that wait in its listening socket's accept queue.
    pub unaccepted: u32,
}

impl Unread {
    /// The evidence in words, for a failure's details.
    fn describe(self) -> String {
        let mut parts = Vec::new();
        if self.bytes > 0 {
            parts.push(format!("{} bytes", self.bytes));
        }
        match self.ends {
            0 => {}
            1 => parts.push("an end of stream (a client half-closed)".into()),
            ends => parts.push(format!("{ends} ends of stream (clients half-closed)")),
        }
        let mut text = String::new();
        if !parts.is_empty() {
            text = format!(
                "unread on the server's connections: {}",
                parts.join(" and ")
            );
        }
        if self.unaccepted > 0 {
            if !text.is_empty() {
                text += ", and ";
            }
            text += &match self.unaccepted {
                1 => "a client waits in the listening socket's queue, never accepted".to_owned(),
                n => format!("{n} clients wait in the listening socket's queue, never accepted"),
            };
        }
        format!("{text}, while the server sleeps waiting for its next event")
    }
}

/// A kind of evidence, and whether a program's last words (its stderr)
/// show it.
type LastWords = (Evidence, fn(&str) -> bool);

/// What a piece of evidence means in a lab: a hint and the handout section
/// (an anchor) that teaches the fix.
#[derive(Debug, Clone, Copy)]
struct Lesson {
    evidence: Evidence,
    hint: &'static str,
    handout: &'static str,
}

/// How long a server that is going away may take to be gone.
const EXIT_SETTLE: Duration = Duration::from_millis(200);

/// How long bytes must stay unread, the server asleep, to count as left
/// behind rather than not read yet.
const UNREAD_SETTLE: Duration = Duration::from_millis(200);

/// The words every explanation of an exited server starts with: a failure
/// says it once, however many steps explain it.
const EXITED: &str = "the server is no longer running";

impl Server {
    /// Everything it printed on stdout so far (up to the cap).
    pub fn stdout(&self) -> String {
        self.process.stdout().text()
    }

    /// Its complete stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        complete_lines(&self.process.stdout().bytes())
    }

    /// Waits until a stdout line satisfies `matches` (returning it), or the
    /// deadline passes.
    pub fn wait_for_line(
        &self,
        deadline: Instant,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.process.stdout().wait_for(deadline, |bytes, _| {
            complete_lines(bytes).into_iter().find(|line| matches(line))
        })
    }

    /// Its complete stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        complete_lines(&self.process.stderr().bytes())
    }

    /// Waits until the lines on stdout and stderr together satisfy `probe`
    /// (returning what it found), or the deadline passes. For log lines the
    /// contract lets a server write to either stream (`error: …`).
    pub fn wait_for_lines_on_either<T>(
        &self,
        deadline: Instant,
        mut probe: impl FnMut(&[String]) -> Option<T>,
    ) -> Option<T> {
        loop {
            let mut lines = self.lines();
            lines.extend(self.stderr_lines());
            if let Some(found) = probe(&lines) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Two streams cannot be waited on at once: wake when stdout
            // grows, or after a short slice to look at stderr again.
            let slice = (Instant::now() + Duration::from_millis(20)).min(deadline);
            let stdout = self.process.stdout();
            let kept = stdout.bytes().len();
            if stdout.closed() {
                std::thread::sleep(slice.saturating_duration_since(Instant::now()));
            } else {
                stdout.wait_for(slice, |bytes, closed| {
                    (closed || bytes.len() != kept).then_some(())
                });
            }
        }
    }

    /// Waits until a line on stdout or stderr satisfies `matches` (returning
    /// it), or the deadline passes: for lines the contract lets a program
    /// print on either stream, such as its errors about one connection.
    pub fn wait_for_line_on_either(
        &self,
        deadline: Instant,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.wait_for_lines_on_either(deadline, |lines| {
            lines.iter().find(|line| matches(line)).cloned()
        })
    }

    /// Says what `evidence` means for this server: a failure explained
    /// while it is seen carries `hint` and the handout section `handout`
    /// (an anchor of the lab's README) instead of the check's own.
    #[must_use]
    pub fn on(mut self, evidence: Evidence, hint: &'static str, handout: &'static str) -> Self {
        self.lessons.push(Lesson {
            evidence,
            hint,
            handout,
        });
        self
    }

    fn lesson(&self, evidence: Evidence) -> Option<Lesson> {
        self.lessons
            .iter()
            .copied()
            .find(|lesson| lesson.evidence == evidence)
    }

    /// Bytes that arrived on the server's connections, and ends of stream
    /// (a client's FIN), that wait unread while it sleeps waiting for
    /// readiness, unchanged (and its CPU time too) over `settle`: evidence a
    /// slow machine cannot fake, since a server that is merely behind is
    /// running, not asleep in poll. `None` when there are none, or `/proc`
    /// cannot tell.
    pub fn unread_while_waiting(&self, settle: Duration) -> Option<Unread> {
        let pid = self.process.pid();
        let sample = || {
            let waiting = procfs::waits_for_readiness(pid).ok()?;
            let unread = Unread {
                bytes: procfs::unread_by_server(self.addr).ok()?,
                ends: procfs::unnoticed_ends(self.addr).ok()?,
                unaccepted: sockdiag::accept_queue(self.addr.port()).ok()?.unwrap_or(0),
            };
            let cpu = procfs::cpu_time(pid).ok()?;
            (waiting && (unread.bytes > 0 || unread.ends > 0 || unread.unaccepted > 0))
                .then_some((unread, cpu))
        };
        let first = sample()?;
        std::thread::sleep(settle);
        let second = sample()?;
        (first == second).then_some(first.0)
    }

    /// The clients whose connection the server keeps after they closed it
    /// and after it stopped watching it: the server holds the socket, in
    /// CLOSE_WAIT (the client closed, the server never did), but no longer
    /// registered with its epoll instance (deregistered, never dropped).
    /// The same now and a moment later; empty when the server uses no
    /// epoll instance, or `/proc` cannot tell.
    pub fn kept_after_close(&self) -> Vec<SocketAddr> {
        let pid = self.process.pid();
        let kept = || -> Option<Vec<String>> {
            let registered = procfs::epoll_registered(pid).ok()??;
            let held = procfs::socket_fds(pid).ok()?;
            let sockets = procfs::tcp_sockets().ok()?;
            let mut kept: Vec<String> = sockets
                .iter()
                .filter(|socket| {
                    socket.state == procfs::Socket::CLOSE_WAIT
                        && socket.local_port == self.addr.port()
                        && held
                            .iter()
                            .any(|(fd, inode)| *inode == socket.inode && !registered.contains(fd))
                })
                .map(|socket| socket.remote_address.clone())
                .collect();
            kept.sort();
            Some(kept)
        };
        let Some(first) = kept().filter(|kept| !kept.is_empty()) else {
            return Vec::new();
        };
        std::thread::sleep(Duration::from_millis(100));
        let second = kept().unwrap_or_default();
        let peers = self.peers_by_proc_address();
        first
            .iter()
            .filter(|remote| second.contains(remote))
            .map(|remote| {
                peers
                    .iter()
                    .find(|(address, _)| address == remote)
                    .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |(_, peer)| *peer)
            })
            .collect()
    }

    /// The addresses the server's log names, keyed by how `/proc/net/tcp`
    /// prints them.
    fn peers_by_proc_address(&self) -> Vec<(String, SocketAddr)> {
        let mut lines = self.lines();
        lines.extend(self.stderr_lines());
        lines
            .iter()
            .filter_map(|line| line.rsplit(' ').next()?.parse::<SocketAddr>().ok())
            .map(|peer| (procfs::proc_net_address(peer), peer))
            .collect()
    }

    /// Connects to it by `deadline`; a failure says whether it is still
    /// running (see [`Server::explain`]).
    pub fn connect(&mut self, deadline: Instant) -> Result<super::net::conn::Conn, Failure> {
        super::net::connect(self.addr, deadline).map_err(|failure| self.explain(failure))
    }

    /// Adds what the server did to a failure: whether it is still running
    /// (if not, how and when it ended: every failure after the end is
    /// explained by it), and the end of its stderr. Use it when a connection
    /// to it misbehaves. Explaining a failure twice adds nothing.
    pub fn explain(&mut self, failure: Failure) -> Failure {
        if failure.summary.starts_with(EXITED) {
            return failure;
        }
        // A reset or refused connection is often the first sign of a
        // server on its way out: give it a moment to finish exiting.
        let failure = match self.process.wait_until(Instant::now() + EXIT_SETTLE) {
            Some(status) => {
                // Its last words (a panic's message) may still be on their
                // way through the pipe: what explains the exit is read once
                // stderr has closed, or a moment later at most.
                self.process
                    .stderr()
                    .wait_closed(Instant::now() + EXIT_SETTLE);
                // Its stdout closes as it exits: the moment, within a
                // scheduler tick, even when the grader notices later.
                let ended = self
                    .process
                    .stdout()
                    .closed_at()
                    .unwrap_or_else(Instant::now);
                Failure {
                    summary: format!(
                        "{EXITED}: it exited {} after it started, with {}\nso: {}",
                        show::duration(ended.saturating_duration_since(self.started)),
                        describe_status(Some(status)),
                        failure.summary
                    ),
                    ..failure
                }
            }
            None => self.explain_running(failure),
        };
        let stderr = self.process.stderr().text();
        let failure = match self.lesson(Evidence::WouldBlockAsError) {
            Some(lesson) => match self
                .lines()
                .into_iter()
                .chain(self.process.stdout().tail_lines())
                .chain(self.stderr_lines())
                .chain(self.process.stderr().tail_lines())
                .find(|line| last_words::mentions_would_block(line))
            {
                Some(line) => failure
                    .detail(format!(
                        "the server reported WouldBlock (EAGAIN) as an error: {}",
                        show::shorten(&line, 160)
                    ))
                    .diagnosis(lesson.hint, lesson.handout),
                None => failure,
            },
            None => failure,
        };
        // Last words that explain an exit, each the mark of one mistake.
        let marks: [LastWords; 4] = [
            (Evidence::TextDecodingCrash, last_words::mentions_utf8),
            (
                Evidence::ConnectionErrorCrash,
                last_words::mentions_connection_error,
            ),
            (Evidence::InterruptedCrash, last_words::mentions_interrupted),
            (Evidence::MissingKeyCrash, last_words::mentions_missing_key),
        ];
        let exited = self.process.exit_status().is_some();
        let failure = marks
            .into_iter()
            .fold(failure, |failure, (evidence, said)| {
                match self.lesson(evidence) {
                    Some(lesson) if exited && said(&stderr) => {
                        failure.diagnosis(lesson.hint, lesson.handout)
                    }
                    _ => failure,
                }
            });
        failure.detail(show::stderr_tail("server stderr", &stderr, 8))
    }
}

impl Server {
    /// The evidence about a server that is still running: connections it
    /// logged as closed but kept, then what waits unread while it sleeps.
    fn explain_running(&self, failure: Failure) -> Failure {
        if let Some(lesson) = self.lesson(Evidence::KeptAfterClose) {
            let kept = self.kept_after_close();
            if !kept.is_empty() {
                let peers: Vec<String> = kept
                    .iter()
                    .filter(|peer| peer.port() != 0)
                    .take(3)
                    .map(ToString::to_string)
                    .collect();
                return failure
                    .detail(format!(
                        "the server still holds {} connection{} {} closed{}, in CLOSE_WAIT, although it no longer watches {} for events: deregistered, but never dropped (closed)",
                        kept.len(),
                        if kept.len() == 1 { "" } else { "s" },
                        if kept.len() == 1 { "its client" } else { "their clients" },
                        if peers.is_empty() {
                            String::new()
                        } else {
                            format!(" ({}{})", peers.join(", "), if kept.len() > 3 { ", …" } else { "" })
                        },
                        if kept.len() == 1 { "it" } else { "them" },
                    ))
                    .diagnosis(lesson.hint, lesson.handout);
            }
        }
        match self.lesson(Evidence::UnreadWhileWaiting) {
            Some(lesson) => match self.unread_while_waiting(UNREAD_SETTLE) {
                Some(unread) => failure
                    .detail(unread.describe())
                    .diagnosis(lesson.hint, lesson.handout),
                None => failure,
            },
            None => failure,
        }
    }
}

/// What one check works with: the binaries, its deadline, its seed, and the
/// registry of the processes it starts.
#[derive(Debug)]
pub struct Ctx {
    spec: &'static CheckSpec,
    bins: Arc<Binaries>,
    deadline: Instant,
    time_scale: f64,
    seed: u64,
    registry: Arc<Registry>,
    commands: Mutex<Vec<String>>,
    try_it: Mutex<Option<String>>,
    snapshot_mode: SnapshotMode,
    skipped: AtomicBool,
}

impl Ctx {
    /// A context for `spec`, its deadline starting now.
    pub fn new(
        spec: &'static CheckSpec,
        bins: Arc<Binaries>,
        time_scale: f64,
        seed: u64,
        snapshot_mode: SnapshotMode,
    ) -> Self {
        Self {
            spec,
            bins,
            deadline: Instant::now() + spec.time_limit(time_scale),
            time_scale,
            seed,
            registry: Arc::default(),
            commands: Mutex::default(),
            try_it: Mutex::default(),
            snapshot_mode,
            skipped: AtomicBool::new(false),
        }
    }

    /// The rubric entry of this check.
    pub fn spec(&self) -> &'static CheckSpec {
        self.spec
    }

    /// Says that the check does not apply to what is graded (e.g. a crate's
    /// own tests when grading `--bin-dir` executables) or to this platform,
    /// and returns the failure to return with `reason`. The runner reports
    /// the check as [`Status::Skipped`](crate::outcome::Status::Skipped) and
    /// leaves its points out of the total.
    pub fn skip(&self, reason: impl Into<String>) -> Failure {
        self.skipped.store(true, Ordering::Relaxed);
        Failure::new(reason)
    }

    /// Whether the check called [`Ctx::skip`].
    pub fn was_skipped(&self) -> bool {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The executables being graded, and where they came from.
    pub fn binaries(&self) -> &Binaries {
        &self.bins
    }

    /// When the check's time runs out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `seconds` scaled by `--time-scale`.
    pub fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds * self.time_scale)
    }

    /// A deadline `seconds` (scaled) from now, but never after the check's own.
    pub fn within(&self, seconds: f64) -> Instant {
        (Instant::now() + self.scaled(seconds)).min(self.deadline)
    }

    /// The run's seed (printed in reports, replayed with `--seed`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A random generator for this check: the run's seed mixed with the
    /// check's id, so replaying a seed replays every check's payloads.
    pub fn rng(&self) -> fastrand::Rng {
        let mut hasher = DefaultHasher::new();
        self.spec.id.hash(&mut hasher);
        fastrand::Rng::with_seed(self.seed ^ hasher.finish())
    }

    /// The registry of processes this check started.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The commands the check ran so far.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unpoison().clone()
    }

    /// Notes a command for `--verbose`, e.g. the grader's own connection.
    pub fn note_command(&self, command: impl Into<String>) {
        self.commands.lock().unpoison().push(command.into());
    }

    /// Adds `note` to the report's "try it" line (the rubric's `manual`):
    /// what the grader did differently from the recipe, e.g. the sizes its
    /// socket buffers had.
    pub fn note_try_it(&self, note: impl Into<String>) {
        *self.try_it.lock().unpoison() = Some(note.into());
    }

    /// The note for the "try it" line, if the check made one.
    pub fn try_it_note(&self) -> Option<String> {
        self.try_it.lock().unpoison().clone()
    }

    /// How to run binary `bin` with `args`, with this check's output cap.
    pub fn launch(
        &self,
        bin: &str,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<Launch, Failure> {
        let mut launch = Launch::new(self.bins.path(bin)?, args);
        launch.shown_as = self.bins.shown.get(bin).cloned();
        launch.grant = self.bins.grant.clone();
        launch.output_cap = self.spec.output_cap();
        launch.grace = launch.grace.mul_f64(self.time_scale);
        Ok(launch)
    }

    /// Starts a program.
    pub fn spawn(&self, launch: &Launch) -> Result<Process, Failure> {
        self.note_command(launch.command_line());
        Process::spawn(launch, Arc::clone(&self.registry)).map_err(|err| {
            Failure::new(format!(
                "could not start `{}`: {err}",
                launch.command_line()
            ))
        })
    }

    /// Starts server `bin` on `127.0.0.1` port 0 and waits for it to be ready.
    pub fn server(&self, bin: &str) -> Result<Server, Failure> {
        let launch = self.launch(bin, ["127.0.0.1", "0"])?;
        self.start_server(&launch).map_err(|failure| {
            // Started as every server starts: one that does not announce
            // where it listens failed where the lab's servers start.
            match Lab::find(self.spec.lab_slug()) {
                Some(lab) => failure.diagnosis(ready::NOT_ANNOUNCED, lab.server_starts),
                None => failure,
            }
        })
    }

    /// Starts a server as `launch` says and waits for its `Listening on` line.
    pub fn start_server(&self, launch: &Launch) -> Result<Server, Failure> {
        let started = Instant::now();
        let mut process = self.spawn(launch)?;
        let limit = self
            .scaled(5.0)
            .min(self.deadline.saturating_duration_since(Instant::now()));
        let addr = ready::wait_listening(&mut process, limit)?;
        Ok(Server {
            process,
            addr,
            started,
            lessons: Vec::new(),
        })
    }

    /// Runs a program to completion, stopping it after `seconds` (scaled, and
    /// never past the check's deadline).
    pub fn run(&self, launch: &Launch, seconds: f64) -> Result<Finished, Failure> {
        let process = self.spawn(launch)?;
        Ok(process.finish(self.within(seconds)))
    }

    /// Compares `actual` with this check's snapshot (`echo.server_log` is
    /// stored as `grader/snapshots/echo.server_log.snap`).
    pub fn snapshot(&self, actual: &str) -> CheckResult {
        snapshot::check(&self.spec.id, actual, self.snapshot_mode)
    }
}
