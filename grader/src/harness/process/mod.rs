//! Running a graded program: its own process group, captured output, a time
//! limit, and a guard that leaves nothing behind.
//!
//! Every program a check starts is a [`Process`], started as an untrusted
//! guest ([`sandbox`]). Dropping it (at the end of the check, on an early
//! return, or while a panic unwinds) sends SIGTERM to its whole process
//! group, waits a short grace period, sends SIGKILL to the group, to the
//! PID namespace's init and to the cgroup, and reaps the program, so no
//! process outlives its check.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ChildStdin, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::capture::Capture;
use super::conversation::{Conversation, Kind, Party};
pub use super::finished::{Finished, describe_status};
pub use super::launch::Launch;
use super::limits;
use super::sandbox::child::InitStack;
use super::sandbox::{self, ProgramCgroups, folders};
use crate::sync::Unpoison;
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitOptions};

mod spawn;

/// How long a program has to exit after SIGTERM before it gets SIGKILL, at
/// `--time-scale 1`.
pub const GRACE: Duration = Duration::from_millis(250);

/// The process groups a check has started, so that the runner can kill them
/// if the check itself overruns its time limit.
#[derive(Debug, Default)]
pub struct Registry {
    groups: Mutex<Vec<i32>>,
    notes: Mutex<Vec<String>>,
}

impl Registry {
    /// Records something the report should say, e.g. a limit a program hit.
    pub fn note(&self, note: String) {
        self.notes.lock().unpoison().push(note);
    }

    /// What was recorded with [`Registry::note`].
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unpoison().clone()
    }

    fn add(&self, pgid: i32) {
        self.groups.lock().unpoison().push(pgid);
    }

    fn remove(&self, pgid: i32) {
        self.groups.lock().unpoison().retain(|&g| g != pgid);
    }

    /// SIGKILLs every group still registered. The owning [`Process`] guards
    /// still reap their leaders when they are dropped.
    pub fn kill_all(&self) {
        for &pgid in self.groups.lock().unpoison().iter() {
            signal_group(pgid, Signal::KILL);
        }
    }
}

fn signal_group(pgid: i32, signal: Signal) {
    // ESRCH (the group is gone) is fine.
    if let Some(group) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

fn signal_process(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Reaps our child `pid` (waiting for it), returning its raw wait status;
/// `None` once it is no child of ours to wait for (already reaped). An
/// interrupted wait is waited again: the stack of an init that shares our
/// memory is unmapped once this returns.
fn reap(pid: i32) -> Option<i32> {
    loop {
        match rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty()) {
            Ok(Some((reaped, status))) => {
                return (reaped.as_raw_nonzero().get() == pid).then(|| status.as_raw());
            }
            Err(rustix::io::Errno::INTR) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// A running (or finished, not yet reaped) graded program.
#[derive(Debug)]
pub struct Process {
    /// Our direct child: the namespace's init, or the program itself when
    /// there is no PID namespace. Its pid is also the process group id.
    pid: i32,
    /// The program's pid as the grader sees it (for `/proc` and signals).
    program_pid: u32,
    pidfd: Option<OwnedFd>,
    /// Where the namespace's init reports how the program ended.
    status_report: Option<File>,
    exit: Option<ExitStatus>,
    reaped: bool,
    stdin: Option<ChildStdin>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    answers: Option<Arc<Capture>>,
    command_line: String,
    registry: Arc<Registry>,
    token: String,
    grace: Duration,
    started: Instant,
    cgroups: ProgramCgroups,
    home: PathBuf,
    pid_namespace: bool,
    /// Its role in the check's conversation, and where that is recorded.
    party: Party,
    conversation: Option<Arc<Conversation>>,
    exit_recorded: bool,
    /// The stack of an init that shares our memory: unmapped once the
    /// init is reaped.
    init_stack: Option<InitStack>,
}

impl Process {
    /// The program's pid, as `/proc` and signals know it.
    pub fn pid(&self) -> u32 {
        self.program_pid
    }

    /// When it was started (just before the clone).
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Its standard output so far.
    pub fn stdout(&self) -> &Arc<Capture> {
        &self.stdout
    }

    /// Its standard error so far.
    pub fn stderr(&self) -> &Arc<Capture> {
        &self.stderr
    }

    /// What it wrote on descriptor 3, when launched with `answers`.
    pub fn answers(&self) -> Option<&Arc<Capture>> {
        self.answers.as_ref()
    }

    /// Its stdin, when launched with `piped_stdin`; taking it and dropping it
    /// closes the program's input.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// The exit status, if the program has exited (without reaping it, so its
    /// process group id cannot be reused while we may still signal it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = peek_exit(self.pid).map(|own| self.program_status(own));
        }
        self.record_exit();
        self.exit
    }

    /// Records how the program ended, once, at the moment its stdout closed
    /// (within a scheduler tick of its exit, however late the grader looks).
    fn record_exit(&mut self) {
        let (Some(status), Some(conversation)) = (self.exit, &self.conversation) else {
            return;
        };
        if !std::mem::replace(&mut self.exit_recorded, true) {
            let at = self.stdout.closed_at().unwrap_or_else(Instant::now);
            conversation.program(Kind::Exit, self.party, &describe_status(Some(status)), at);
        }
    }

    /// How the program ended, given how our direct child ended: the init
    /// reports the program's own status before it exits; without a report
    /// the init was killed, and the namespace's processes with it.
    fn program_status(&mut self, own: ExitStatus) -> ExitStatus {
        let Some(report) = &mut self.status_report else {
            return own;
        };
        let mut raw = [0u8; 4];
        match report.read_exact(&mut raw) {
            Ok(()) => ExitStatus::from_raw(i32::from_ne_bytes(raw)),
            Err(_) => own,
        }
    }

    /// Waits until the program exits or `deadline` passes.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // The pidfd becomes readable when the process exits; without one
            // (old kernels) fall back to checking every few milliseconds.
            let wait = (deadline - now).min(Duration::from_secs(1));
            match &self.pidfd {
                Some(fd) => poll_readable(fd, wait),
                None => std::thread::sleep(wait.min(Duration::from_millis(5))),
            }
        }
    }

    /// Ends the program and everything it started: SIGTERM to its process
    /// group, its grace period to exit, then SIGKILL to the group, the PID
    /// namespace's init (which takes every process of the namespace with
    /// it) and the cgroup; then reaps. Returns how it ended. Idempotent.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        if self.reaped {
            return self.exit;
        }
        let pgid = self.pid;
        if self.exit_status().is_none() {
            if let Some(conversation) = &self.conversation {
                conversation.note(format!("stops the {} (SIGTERM)", self.party.name()));
            }
            signal_group(pgid, Signal::TERM);
            self.wait_until(Instant::now() + self.grace);
        }
        // Whatever else is in the group (children of the program) goes too,
        // even when the program already exited by itself.
        signal_group(pgid, Signal::KILL);
        self.cgroups.kill_all();
        if !self.pid_namespace {
            // Descendants that left the group (setsid) still carry the token.
            limits::kill_marked(&self.token);
        }
        // Our own child; it has been sent SIGKILL.
        let reaped = reap(self.pid);
        limits::leader_reaped(self.pid as u32);
        if let (None, Some(raw)) = (self.exit, reaped) {
            let own = ExitStatus::from_raw(raw);
            self.exit = Some(self.program_status(own));
        }
        self.record_exit();
        if self.cgroups.hit_memory_limit() {
            self.registry.note(format!(
                "the program and its children used more than {} MiB of memory and were stopped",
                sandbox::CGROUP_MEMORY_LIMIT_MIB
            ));
        }
        self.cgroups.remove();
        folders::remove_tree(&self.home);
        if let Some(conversation) = &self.conversation {
            conversation.remove_guest(self.program_pid);
        }
        self.reaped = true;
        self.registry.remove(pgid);
        self.exit
    }
}

impl Process {
    /// Stops the program (SIGSTOP, as Ctrl-Z does) until the returned guard
    /// is dropped (SIGCONT), waiting until every thread has stopped or
    /// `deadline` passes. Whatever peers send meanwhile waits in the kernel,
    /// so the program finds it all at once when it continues: a check can
    /// make "many clients ready at the same time" happen, whatever the
    /// machine's scheduling. Programs must retry calls that a stop and
    /// continue interrupts (EINTR), as the handouts teach.
    pub fn pause(&self, deadline: Instant) -> Paused {
        let pid = self.program_pid as i32;
        signal_process(pid, Signal::STOP);
        while Instant::now() < deadline
            && !super::observe::procfs::all_threads_stopped(self.program_pid).unwrap_or(true)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        Paused { pid }
    }
}

/// A stopped graded program; dropping this continues it.
#[derive(Debug)]
pub struct Paused {
    pid: i32,
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal_process(self.pid, Signal::CONT);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate();
        if let (true, Some(stack)) = (self.reaped, self.init_stack.take()) {
            stack.unmap();
        }
    }
}

fn poll_readable(fd: &OwnedFd, timeout: Duration) {
    let timeout = rustix::event::Timespec::try_from(timeout.max(Duration::from_millis(1)))
        .unwrap_or(rustix::event::Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
    // EINTR just returns early, and the caller loops.
    let _ = rustix::event::poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&timeout));
}

/// The exit status of `pid` if it has exited, leaving it unreaped.
fn peek_exit(pid: i32) -> Option<ExitStatus> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    let status = rustix::process::waitid(WaitId::Pid(Pid::from_raw(pid)?), options).ok()??;
    // Rebuild the raw wait status that ExitStatus understands.
    let raw = if let Some(code) = status.exit_status() {
        (code & 0xff) << 8
    } else {
        let signal = status.terminating_signal()? & 0x7f;
        if status.dumped() {
            signal | 0x80
        } else {
            signal
        }
    };
    Some(ExitStatus::from_raw(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Launch {
        Launch::new("/bin/sh", ["-c", script])
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    #[test]
    fn finish_collects_output_and_exit_code() {
        let process =
            Process::spawn(&sh("echo out; echo err >&2; exit 3"), Arc::default()).unwrap();
        let finished = process.finish(Instant::now() + Duration::from_secs(5));
        assert_eq!(finished.code(), Some(3));
        assert_eq!(finished.stdout, b"out\n");
        assert_eq!(finished.stderr, b"err\n");
        assert!(!finished.timed_out);
    }

    #[test]
    fn answers_arrive_apart_from_the_output() {
        let mut launch = sh("echo printed; echo answered >&3; ls /proc/self/fd >&2");
        launch.answers = true;
        let process = Process::spawn(&launch, Arc::default()).unwrap();
        let answers = Arc::clone(process.answers().unwrap());
        let finished = process.finish(Instant::now() + Duration::from_secs(5));
        assert!(answers.wait_closed(Instant::now() + Duration::from_secs(5)));
        assert_eq!(answers.bytes(), b"answered\n");
        assert_eq!(finished.stdout, b"printed\n");
        // 0, 1, 2, the answers, and the descriptor `ls` lists with.
        assert_eq!(finished.stderr_text().lines().count(), 5, "{finished:?}");
    }

    /// Whether processes `a` and `b` share one address space (`kcmp`).
    fn same_memory(a: i32, b: i32) -> bool {
        /// `KCMP_VM` of `<linux/kcmp.h>`: compare the address spaces.
        const KCMP_VM: libc::c_int = 1;
        // SAFETY: kcmp only compares two processes' kernel objects.
        let compared = unsafe { libc::syscall(libc::SYS_kcmp, a, b, KCMP_VM, 0, 0) };
        assert!(compared >= 0, "kcmp: {}", std::io::Error::last_os_error());
        compared == 0
    }

    #[test]
    fn a_namespace_init_shares_the_graders_memory_and_its_program_does_not() {
        let policy = sandbox::Policy::get();
        if !policy.pid_namespace || policy.user_namespace {
            eprintln!("skipped: the init shares our memory only in a PID namespace made by root");
            return;
        }
        let process = Process::spawn(&sh("sleep 30"), Arc::default()).unwrap();
        let grader = std::process::id() as i32;
        assert!(same_memory(grader, process.pid));
        assert!(!same_memory(grader, process.program_pid as i32));
    }

    /// Starting a program copies none of the grader's memory, not even
    /// for the moment before its exec: a copy would leave every page the
    /// grader had copy-on-write, and each page written afterwards would
    /// fault once.
    #[test]
    fn starting_a_program_leaves_the_graders_pages_writable() {
        let policy = sandbox::Policy::get();
        if !policy.pid_namespace || policy.user_namespace {
            eprintln!("skipped: the init shares our memory only in a PID namespace made by root");
            return;
        }
        const PAGES: usize = 4096;
        let minor_faults = || {
            // SAFETY: getrusage fills the struct we own.
            unsafe {
                let mut usage: libc::rusage = std::mem::zeroed();
                libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
                usage.ru_minflt
            }
        };
        let mut pages = vec![0u8; PAGES * 4096];
        let write_every_page = |pages: &mut [u8], value: u8| {
            for page in pages.chunks_mut(4096) {
                // Volatile: the write itself is what is measured.
                unsafe { std::ptr::write_volatile(&mut page[0], value) };
            }
        };
        write_every_page(&mut pages, 1);
        let finished = Process::spawn(&sh("exit 0"), Arc::default())
            .unwrap()
            .finish(Instant::now() + Duration::from_secs(5));
        assert_eq!(finished.code(), Some(0));
        let before = minor_faults();
        write_every_page(&mut pages, 2);
        let faults = minor_faults() - before;
        assert!(
            faults < (PAGES / 4) as i64,
            "{faults} page faults writing {PAGES} pages after a program started"
        );
    }

    /// A memory cgroup's OOM killer kills every process that shares its
    /// victim's memory: an init that shares the grader's must never be a
    /// candidate, so only the program and its children are in the cgroups.
    #[test]
    fn the_program_is_in_its_cgroups_and_its_init_is_not() {
        let process = Process::spawn(&sh("sleep 30"), Arc::default()).unwrap();
        let dirs = process.cgroups.dirs();
        if dirs.is_empty() || !process.pid_namespace {
            eprintln!("skipped: no cgroups or no PID namespace here");
            return;
        }
        for dir in dirs {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            let members: Vec<u32> = procs.lines().filter_map(|pid| pid.parse().ok()).collect();
            assert!(
                members.contains(&process.program_pid),
                "{}: {members:?}",
                dir.display()
            );
            assert!(
                !members.contains(&(process.pid as u32)),
                "{}: {members:?}",
                dir.display()
            );
        }
    }

    /// Each program's cgroups sit inside its grade's, whose limits bound
    /// what all the grade's programs use together (the kernel counts a
    /// cgroup's tasks and memory against every cgroup above it).
    #[test]
    fn a_programs_cgroups_are_inside_its_grades() {
        use crate::harness::sandbox::{GRADE_MAX_TASKS, GradeCgroups, Grant, Policy};
        let grade = GradeCgroups::create(&Policy::get().cgroups);
        let Some(grade_pids) = grade.roots().pids.clone() else {
            eprintln!("skipped: no writable pids cgroup here");
            return;
        };
        let mut launch = sh("sleep 30");
        launch.grant = Some(Grant {
            cgroups: Some(grade.roots().clone()),
            ..Grant::outside_a_grade()
        });
        let process = Process::spawn(&launch, Arc::default()).unwrap();
        let program_pids = process
            .cgroups
            .dirs()
            .iter()
            .find(|dir| dir.starts_with(&grade_pids) && *dir != &grade_pids)
            .cloned();
        let limit = std::fs::read_to_string(grade_pids.join("pids.max")).unwrap();
        drop(process);
        assert!(
            program_pids.is_some(),
            "no program cgroup inside {}",
            grade_pids.display()
        );
        assert_eq!(limit.trim(), GRADE_MAX_TASKS.to_string());
        drop(grade);
        assert!(
            !grade_pids.exists(),
            "{} outlived its grade",
            grade_pids.display()
        );
    }

    #[test]
    fn the_stack_of_an_init_is_unmapped_with_its_program() {
        let process = Process::spawn(&sh("exit 0"), Arc::default()).unwrap();
        let Some(stack) = process.init_stack.as_ref().map(InitStack::address) else {
            eprintln!("skipped: this grader's inits copy its memory");
            return;
        };
        let mapped = || {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines()
                .filter_map(|line| line.split_once('-'))
                .filter_map(|(start, _)| usize::from_str_radix(start, 16).ok())
                .any(|start| start == stack)
        };
        assert!(mapped());
        drop(process);
        assert!(!mapped());
    }

    #[test]
    fn a_hung_program_is_stopped_at_its_deadline() {
        let process = Process::spawn(&sh("sleep 30"), Arc::default()).unwrap();
        let started = Instant::now();
        let finished = process.finish(Instant::now() + Duration::from_millis(200));
        assert!(finished.timed_out);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn dropping_kills_the_whole_group_even_if_sigterm_is_ignored() {
        let launch = sh("trap '' TERM; sleep 30 & echo $!; wait");
        let process = Process::spawn(&launch, Arc::default()).unwrap();
        // The pid the script prints may be its namespace's: find the
        // grandchild as the grader sees it, among the script's children.
        process
            .stdout()
            .wait_for(Instant::now() + Duration::from_secs(5), |bytes, _| {
                (!bytes.is_empty()).then_some(())
            })
            .expect("the script prints once its child runs");
        let pid = process.pid();
        let children = super::super::observe::procfs::thread_children(pid, pid)
            .expect("the script's children");
        let grandchild = *children.first().expect("the script has a child") as i32;
        assert!(alive(grandchild));
        let leader = process.pid() as i32;
        let started = Instant::now();
        drop(process);
        assert!(started.elapsed() < GRACE + Duration::from_secs(2));
        assert!(!alive(leader), "the leader is reaped");
        // The grandchild was sent SIGKILL; on a busy machine it takes a moment
        // to be scheduled and die, and may linger as a zombie of init: wait
        // (bounded) until it is no longer running.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = super::super::observe::procfs::stat(grandchild as u32);
            if stat.as_ref().map_or(true, |stat| stat.ended()) {
                break;
            }
            assert!(Instant::now() < deadline, "still running: {stat:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn socket_calls_can_be_made_to_fail() {
        let script = "python3 -c 'import socket; socket.socket()' 2>&1 || echo refused";
        let launch = sh(script).fail_socket_calls(libc::EMFILE);
        let finished = Process::spawn(&launch, Arc::default())
            .unwrap()
            .finish(Instant::now() + Duration::from_secs(10));
        let output = String::from_utf8_lossy(&finished.stdout);
        assert!(output.contains("Too many open files"), "{output}");
        assert!(output.contains("refused"), "{output}");
    }

    #[test]
    fn graded_programs_run_under_the_limits() {
        let finished = Process::spawn(
            &sh("ulimit -c; ulimit -t; ulimit -f; ulimit -v"),
            Arc::default(),
        )
        .unwrap()
        .finish(Instant::now() + Duration::from_secs(5));
        let limits: Vec<String> = finished.stdout_text().lines().map(str::to_owned).collect();
        let kib = |mib: u64| (mib * 1024).to_string();
        // `ulimit -f` counts 512-byte blocks in POSIX sh.
        let blocks = (sandbox::child::FILE_SIZE_LIMIT_MIB * 2048).to_string();
        assert_eq!(limits[0], "0", "{limits:?}");
        assert_eq!(
            limits[1],
            sandbox::child::CPU_LIMIT_SECONDS.to_string(),
            "{limits:?}"
        );
        assert!(
            limits[2] == blocks || limits[2] == kib(sandbox::child::FILE_SIZE_LIMIT_MIB),
            "{limits:?}"
        );
        assert_eq!(
            limits[3],
            kib(sandbox::child::ADDRESS_SPACE_LIMIT_MIB),
            "{limits:?}"
        );
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let launch = Launch::new("/bin/echo-client", ["127.0.0.1", "it's here"]).env("A", "b c");
        assert_eq!(
            launch.command_line(),
            r"A='b c' /bin/echo-client 127.0.0.1 'it'\''s here'"
        );
    }
}
