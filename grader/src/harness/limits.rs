//! Limits on what a graded program may use, and finding the processes that
//! escaped its process group.
//!
//! Memory is watched rather than capped: a strict address-space limit kills
//! correct threaded programs (each thread reserves a stack, some runtimes
//! reserve gigabytes up front), so a watcher stops a program whose resident
//! memory passes [`MEMORY_LIMIT_MIB`], and a generous address-space limit is
//! only a backstop. CPU time and file size are plain rlimits.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions};

use super::process::Registry;
use crate::sync::Unpoison;

use super::sandbox::MEMORY_LIMIT_MIB;
use super::sandbox::child::{CPU_LIMIT_SECONDS, FILE_SIZE_LIMIT_MIB};
/// How often the watcher looks at a process's memory.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// The environment variable that marks every process a check starts, and
/// every process those start, so that escaped ones can be found.
pub const TOKEN_VARIABLE: &str = "SOCKET_LABS_GRADED";

/// What a fatal signal from a limit means, for reports.
pub fn explain_signal(signal: i32) -> Option<String> {
    match signal {
        libc::SIGXCPU => Some(format!(
            "stopped: used more than {CPU_LIMIT_SECONDS} s of CPU time (SIGXCPU)"
        )),
        libc::SIGXFSZ => Some(format!(
            "stopped: wrote a file larger than {FILE_SIZE_LIMIT_MIB} MiB (SIGXFSZ)"
        )),
        _ => None,
    }
}

/// Watches the resident memory of `pid` until it exits; past the limit it
/// kills process group `pgid` and leaves a note in `registry` for the report.
pub fn watch_memory(pid: u32, pgid: i32, name: String, registry: Arc<Registry>) {
    let spawned = thread::Builder::new().name("grader-memory-watch".into()).spawn(move || {
        loop {
            thread::sleep(WATCH_EVERY);
            let Some(resident_mib) = resident_mib(pid) else { return };
            if resident_mib > MEMORY_LIMIT_MIB {
                registry.note(format!(
                    "{name} used more than {MEMORY_LIMIT_MIB} MiB of memory ({resident_mib} MiB resident) and was stopped"
                ));
                // The process group the check started.
                if let Some(group) = Pid::from_raw(pgid) {
                    let _ = rustix::process::kill_process_group(group, Signal::KILL);
                }
                return;
            }
        }
    });
    // Without a watcher the rlimit backstop still applies.
    drop(spawned);
}

/// Resident memory of a live (not zombie) process, in MiB.
fn resident_mib(pid: u32) -> Option<u64> {
    let status = super::observe::procfs::status(pid).ok()?;
    if status.state == 'Z' {
        return None;
    }
    Some(status.resident_kib? / 1024)
}

/// SIGKILLs every process that carries `token` in its environment (the
/// descendants of a graded program, including those that left its process
/// group with `setsid`), and reaps those that were reparented to us.
pub fn kill_marked(token: &str) {
    let marker = format!("{TOKEN_VARIABLE}={token}");
    let own_pid = std::process::id();
    let mut killed = HashSet::new();
    // A process may fork while we scan: scan again until a pass finds nothing.
    for _ in 0..5 {
        let found = marked_processes(&marker, own_pid);
        let fresh: Vec<u32> = found
            .into_iter()
            .filter(|pid| !killed.contains(pid))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            // A pid we just found marked as ours.
            kill(pid);
            killed.insert(pid);
        }
    }
    for pid in killed {
        // Orphans reparented to us (when we are a subreaper) are ours to
        // reap; for any other pid this fails harmlessly with ECHILD.
        if let Some(pid) = Pid::from_raw(pid as i32) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

fn marked_processes(marker: &str, own_pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own_pid)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&b| b == 0)
                    .any(|entry| entry == marker.as_bytes())
            })
        })
        .collect()
}

/// The leaders of graded programs that are running (spawned and not yet
/// reaped), across all checks: the orphan sweep must never touch them.
fn live_leaders() -> &'static Mutex<HashSet<u32>> {
    static LIVE: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

/// Held (shared) while a graded program is being spawned and registered,
/// and (exclusive) while orphans are swept: a program between `fork` and its
/// registration is never mistaken for an orphan.
pub fn spawn_lock() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}

/// Records a spawned leader (call under [`spawn_lock`]).
pub fn leader_started(pid: u32) {
    live_leaders().lock().unpoison().insert(pid);
}

/// Forgets a leader once it has been reaped.
pub fn leader_reaped(pid: u32) {
    live_leaders().lock().unpoison().remove(&pid);
}

/// Makes this process a child subreaper, once: a descendant whose parent
/// dies (the classic double fork of a daemon) is then re-parented to us
/// instead of to init, so that [`sweep_orphans`] can find it even when it
/// left its process group and cleared its environment.
pub fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// Kills and reaps our children that are neither running graded programs
/// nor the grader's own tools: orphans re-parented to us as a subreaper
/// after the graded program that forked them was killed (including those
/// that left their group and cleared their environment, which
/// [`kill_marked`] cannot see), and orphans that already exited.
///
/// After each check it asks only for our children ([`our_children`]); at
/// the end of a grade ([`sweep_orphans_thoroughly`]), it looks at every
/// process of the machine.
pub fn sweep_orphans() {
    sweep(our_children());
}

/// [`sweep_orphans`], looking at every process of the machine for our
/// children rather than trusting the kernel's lists of them (which may skip
/// a child that comes or goes while they are read).
pub fn sweep_orphans_thoroughly() {
    sweep(None);
}

/// Our children, from each thread's `/proc/self/task/TID/children`: a few
/// small reads, where looking through `/proc` reads the status of every
/// process of the machine (and blocks every spawn meanwhile). `None` when
/// the kernel does not list children (`CONFIG_PROC_CHILDREN`).
fn our_children() -> Option<Vec<u32>> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(listed) => children.extend(
                listed
                    .split_ascii_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            ),
            // A thread that ended meanwhile.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && task.path().exists() => {
                return None;
            }
            Err(_) => {}
        }
    }
    Some(children)
}

/// Kills and reaps the orphans among `candidates` (every process of the
/// machine when `None`).
fn sweep(candidates: Option<Vec<u32>>) {
    let _exclusive = spawn_lock().write().unpoison();
    let own_pid = std::process::id();
    // Read from /proc rather than asked of getsid(2): inside a PID namespace
    // whose session leader lives outside it (a CI runner's container), our
    // session id is 0, which rustix's `getsid` cannot represent.
    let own_session = session_of(own_pid);
    let live = live_leaders().lock().unpoison().clone();
    let candidates = match candidates {
        Some(children) => children,
        None => {
            let Ok(entries) = std::fs::read_dir("/proc") else {
                return;
            };
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        }
    };
    for pid in candidates {
        // Only processes in a session of their own: a graded program's
        // escapes call setsid, while children that whoever embeds the
        // grader starts directly (a test's own server, say) share our
        // session and are not ours to sweep.
        if live.contains(&pid)
            || parent_of(pid) != Some(own_pid)
            || session_of(pid) == own_session
            || is_grader_tool(pid)
        {
            continue;
        }
        // Our own child.
        kill(pid);
        if let Some(pid) = Pid::from_raw(pid as i32) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        }
    }
}

fn kill(pid: u32) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    super::observe::procfs::stat(pid)
        .ok()
        .map(|stat| stat.parent)
}

fn session_of(pid: u32) -> Option<u32> {
    super::observe::procfs::stat(pid)
        .ok()
        .map(|stat| stat.session)
}

/// Whether a child of ours is one of the tools the grader runs itself
/// (cargo to build, git for its version), possibly for another grade in the
/// same process: those are waited for by their caller, never swept.
fn is_grader_tool(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let name = program.rsplit(|&b| b == b'/').next().unwrap_or_default();
    matches!(name, b"cargo" | b"git" | b"rustc" | b"rustup")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon's double fork, in a session of its own: its parent exits,
    /// the kernel hands it to us (the subreaper), and the sweep after a
    /// check, which reads only the kernel's lists of our children, kills it.
    #[test]
    fn an_orphan_in_a_session_of_its_own_is_swept() {
        become_subreaper();
        let output = std::process::Command::new("sh")
            .args([
                "-c",
                "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!",
            ])
            .output()
            .expect("sh runs");
        let pid: u32 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("sh printed the pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // setsid has run once the sleep is in a session of its own.
        while session_of(pid) != Some(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(parent_of(pid), Some(std::process::id()), "handed to us");
        sweep_orphans();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the orphan {pid} was killed and reaped"
        );
    }
}
