//! What to run and how: a [`Launch`] is a graded program's command line,
//! environment, limits and grants, before [`Process`](super::process::Process)
//! starts it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::process::GRACE;
use super::sandbox::Grant;
use super::show::shell_quote;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Whether the check writes to the program's stdin (otherwise it reads
    /// from /dev/null).
    pub piped_stdin: bool,
    /// How many bytes of each output stream to keep.
    pub output_cap: usize,
    /// Make every `socket(2)` call of the program fail with this errno (a
    /// seccomp filter installed before exec), to test how a program of any
    /// language handles a socket it cannot create. Linux only.
    pub fail_socket_calls: Option<i32>,
    /// Start the program with at most this many file descriptors
    /// (`RLIMIT_NOFILE`, soft and hard): to test how it runs out of them.
    pub open_files: Option<u64>,
    /// Working directory (a fresh folder of the program's own if `None`).
    pub current_dir: Option<PathBuf>,
    /// How long the program has to exit after SIGTERM.
    pub grace: Duration,
    /// The path reports show for the program, when it runs from a staged
    /// copy (see [`sandbox::Sandbox::stage`]).
    pub shown_as: Option<PathBuf>,
    /// Who the program runs as and what it may see: its grade's
    /// ([`sandbox::Sandbox::grant`]); `None` outside a grade.
    pub grant: Option<Grant>,
    /// A network namespace of its own with no interface up (a contained
    /// build), rather than the calling thread's.
    pub own_network: bool,
    /// Give the program a pipe at descriptor 3 whose read end only the
    /// grader holds ([`Process::answers`]): data the program writes there
    /// is told apart from anything printed on stdout or stderr.
    pub answers: bool,
}

impl Launch {
    /// Runs `program` with `args`, stdin from /dev/null, 256 KiB kept per stream.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            piped_stdin: false,
            output_cap: 256 * 1024,
            fail_socket_calls: None,
            open_files: None,
            current_dir: None,
            grace: GRACE,
            shown_as: None,
            grant: None,
            own_network: false,
            answers: false,
        }
    }

    /// Makes every `socket(2)` call of the program fail with `errno`.
    #[must_use]
    pub fn fail_socket_calls(mut self, errno: i32) -> Self {
        self.fail_socket_calls = Some(errno);
        self
    }

    /// Starts the program with at most `limit` file descriptors.
    #[must_use]
    pub fn open_files(mut self, limit: u64) -> Self {
        self.open_files = Some(limit);
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line as a user would type it, for reports and `--verbose`.
    pub fn command_line(&self) -> String {
        let mut line = String::new();
        for (key, value) in &self.env {
            let _ = write!(line, "{}={} ", shell_quote(key), shell_quote(value));
        }
        if let Some(limit) = self.open_files {
            // util-linux's prlimit runs a command with a limit set.
            let _ = write!(line, "prlimit --nofile={limit} ");
        }
        let program = self.shown_as.as_ref().unwrap_or(&self.program);
        line.push_str(&shell_quote(program.as_os_str()));
        for arg in &self.args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        line
    }
}
