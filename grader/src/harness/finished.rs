//! How a graded program ended, as checks and students read it: its exit
//! status in words, and what a finished program left behind (its output).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::limits;
use super::process::Process;
/// Describes an exit status the way a student reads it.
pub fn describe_status(status: Option<ExitStatus>) -> String {
    match status {
        None => "still running".into(),
        Some(status) => match (status.code(), status.signal()) {
            (Some(101), _) => "exit code 101 (a Rust panic, or a todo!() not yet replaced)".into(),
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(libc::SIGKILL)) => "killed by SIGKILL".into(),
            (None, Some(libc::SIGTERM)) => "killed by SIGTERM".into(),
            (None, Some(libc::SIGSEGV)) => "crashed: segmentation fault (SIGSEGV)".into(),
            (None, Some(libc::SIGABRT)) => "crashed: aborted (SIGABRT)".into(),
            (None, Some(signal)) => limits::explain_signal(signal)
                .unwrap_or_else(|| format!("killed by signal {signal}")),
            (None, None) => "ended in an unknown way".into(),
        },
    }
}

/// A program that ran to completion (or to its time limit).
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended (`None` only if it could not be reaped).
    pub status: Option<ExitStatus>,
    /// Whether the grader had to stop it: at its time limit, or earlier
    /// because it had stalled.
    pub timed_out: bool,
    /// Why the grader stopped it before its time limit: it sat asleep with
    /// nothing changing (see [`super::observe::stall`]).
    pub stalled: Option<String>,
    /// Kept stdout bytes.
    pub stdout: Vec<u8>,
    /// Kept stderr bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout was longer than what was kept.
    pub stdout_truncated: bool,
    /// How long it ran: from just before it started until its exit was
    /// seen (or the grader stopped waiting). Never shorter than its run.
    pub elapsed: Duration,
    /// When its exit was seen (or the grader stopped waiting): never
    /// before it exited, however slowly the grader started it.
    pub exit_seen: Instant,
    /// How it was started.
    pub command_line: String,
}

impl Finished {
    /// stdout as text (a byte that is not UTF-8 as `\xNN`).
    pub fn stdout_text(&self) -> String {
        crate::untrusted::decode(&self.stdout)
    }

    /// stderr as text (a byte that is not UTF-8 as `\xNN`).
    pub fn stderr_text(&self) -> String {
        crate::untrusted::decode(&self.stderr)
    }

    /// Whether stderr shows a crash (a panic, a traceback, an uncaught
    /// exception) on a line other than those `expected` accepts: an expected
    /// `error: …` line may well quote an exception's name as its cause.
    pub fn crashed(&self, expected: impl Fn(&str) -> bool) -> bool {
        const SIGNS: [&str; 4] = ["panicked", "Traceback", "RUST_BACKTRACE", "Exception"];
        self.stderr_text()
            .lines()
            .filter(|line| !expected(line))
            .any(|line| SIGNS.iter().any(|sign| line.contains(sign)))
    }

    /// The end of stderr as a failure detail (empty when nothing was printed,
    /// which [`Failure::detail`](crate::outcome::Failure::detail) then skips).
    pub fn stderr_detail(&self) -> String {
        super::show::stderr_tail("stderr", &self.stderr_text(), 8)
    }

    /// The failure of a client that sent the grader nothing it should have
    /// (no request, no name, no datagram): `summary`, what it should have
    /// done, how it ended and what it printed, and the `fix` with the
    /// handout `section` that says what to send.
    pub fn sent_nothing(
        &self,
        summary: impl Into<String>,
        expected: impl Into<String>,
        fix: &str,
        section: &str,
    ) -> crate::outcome::Failure {
        crate::outcome::Failure::new(summary)
            .expected(expected)
            .actual(format!(
                "{}; stdout: {}",
                self.describe(),
                super::show::bytes(&self.stdout, 120)
            ))
            .detail(self.stderr_detail())
            .diagnosis(fix, section)
    }

    /// How it ended and what it printed, on one line for an `actual:` value:
    /// `exit code 0 after 0.12 s; stderr: b"…"; stdout: (empty)`.
    pub fn brief(&self) -> String {
        let stderr = self.stderr_text();
        let shown = |bytes: &[u8], max: usize| {
            if bytes.is_empty() {
                "(empty)".to_owned()
            } else {
                super::show::bytes(bytes, max)
            }
        };
        format!(
            "{}; stderr: {}; stdout: {}",
            self.describe(),
            shown(super::show::tail(stderr.trim(), 3).as_bytes(), 200),
            shown(&self.stdout, 100)
        )
    }

    /// The exit code, when it exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// One line for reports: `exit code 1 after 0.12 s`.
    pub fn describe(&self) -> String {
        if let (true, Some(why)) = (self.timed_out, &self.stalled) {
            format!(
                "still running after {:.1} s, but {}; the grader stopped it",
                self.elapsed.as_secs_f64(),
                why.trim_start_matches("the client ")
                    .trim_start_matches("the server ")
                    .replacen("has been", "it had been", 1)
            )
        } else if self.timed_out {
            format!(
                "still running after {:.1} s; the grader stopped it",
                self.elapsed.as_secs_f64()
            )
        } else {
            format!(
                "{} after {:.2} s",
                describe_status(self.status),
                self.elapsed.as_secs_f64()
            )
        }
    }
}

impl Process {
    /// Waits until the program exits (true), `deadline` passes, or the
    /// check's programs stall (false, and why).
    pub fn wait_watching(&mut self, deadline: Instant) -> (bool, Option<String>) {
        let mut watch = super::observe::stall::Watch::new();
        loop {
            let slice = (Instant::now() + super::observe::stall::SLICE).min(deadline);
            if self.wait_until(slice).is_some() {
                return (true, None);
            }
            if Instant::now() >= deadline {
                return (false, None);
            }
            if let Some(why) = watch.stalled() {
                return (false, Some(why));
            }
        }
    }

    /// Waits for the program to exit (stopping it at `deadline`), ends its
    /// process group, and collects its output.
    pub fn finish(mut self, deadline: Instant) -> Finished {
        let (exited, stalled) = self.wait_watching(deadline);
        // From just before the program started until its exit was seen (or
        // the deadline came): never shorter than its run, however slowly the
        // grader set up around it, and without the clean-up below.
        let exit_seen = Instant::now();
        let elapsed = exit_seen.duration_since(self.started());
        let status = self.terminate();
        // The group is dead, so the pipes close; a descendant that escaped
        // the group could hold them open, so this wait is bounded too.
        let drain_deadline = Instant::now() + Duration::from_secs(1);
        self.stdout().wait_closed(drain_deadline);
        self.stderr().wait_closed(drain_deadline);
        Finished {
            status,
            timed_out: !exited,
            stalled,
            stdout: self.stdout().bytes(),
            stderr: self.stderr().bytes(),
            stdout_truncated: self.stdout().truncated(),
            elapsed,
            exit_seen,
            command_line: self.command_line().to_owned(),
        }
    }
}
