//! What this machine lets the grader enforce, found out once per process,
//! and the fixed parts of every guest's world (its uid, its environment).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::cgroups::CgroupRoots;
use super::child;
use super::mounts;
use super::network::NetworkNamespace;

/// The first uid graded programs run as when the grader runs as root: each
/// grade running at the same time on this machine takes the next free one
/// (see [`super::uids`]).
pub const GUEST_UID: u32 = 64_000;
/// The gid that goes with [`GUEST_UID`]; grades take the next free ones too.
pub const GUEST_GID: u32 = 64_000;
/// The PATH a graded program gets: system directories only.
pub const GUEST_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Set in the grader's environment, turns containment off but for the
/// cleared environment and the process-group kill, for measuring what it
/// costs; `--contained` then refuses to grade.
pub const DISABLE_VARIABLE: &str = "SOCKET_LABS_NO_SANDBOX";
/// Set in the grader's environment by the course's own tests (or switched on
/// with [`enable_test_reports`]): the `outbox/` folder of a `--bin-dir` is
/// then seen writable, at its own path, by the programs graded from it,
/// where a test fixture (an attack, say) writes down what it managed for the
/// test to read. Nothing a student controls can set it.
pub const REPORT_FOLDER_VARIABLE: &str = "SOCKET_LABS_TEST_REPORTS";

static TEST_REPORTS: AtomicBool = AtomicBool::new(false);

/// Lets the programs of a `--bin-dir` write into its `outbox/` folder (the
/// course's tests, in their own process).
pub fn enable_test_reports() {
    TEST_REPORTS.store(true, Ordering::Relaxed);
}

/// Whether [`REPORT_FOLDER_VARIABLE`] is in force.
pub fn test_reports_enabled() -> bool {
    static FROM_ENVIRONMENT: OnceLock<bool> = OnceLock::new();
    TEST_REPORTS.load(Ordering::Relaxed)
        || *FROM_ENVIRONMENT.get_or_init(|| std::env::var_os(REPORT_FOLDER_VARIABLE).is_some())
}

/// What this machine lets the grader do, found out once per process.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The first uid and gid graded programs run as (root only).
    pub guest: Option<(u32, u32)>,
    /// Each program gets a PID namespace whose init is ours (and IPC and
    /// UTS namespaces with it).
    pub pid_namespace: bool,
    /// The PID namespace sits in a user namespace (non-root).
    pub user_namespace: bool,
    /// Each program sees a filesystem of its own: the system's folders
    /// read-only, its executables read-only, its working folder, and private
    /// temporary folders; nothing else (see [`super::mounts`]).
    pub filesystem_view: bool,
    /// Whether the kernel lets us make a mount namespace at all: where it
    /// does, `--contained` requires the filesystem view.
    pub mount_namespace_possible: bool,
    /// Each grade gets a network namespace with only loopback (root only).
    pub network_namespace: bool,
    /// Writable cgroup hierarchies.
    pub cgroups: CgroupRoots,
    /// The course folder, hidden from graded programs.
    pub protected: PathBuf,
    /// The empty folder each program's filesystem view is built on (inside
    /// its own mount namespace, so programs never see one another's).
    pub view_root: Option<PathBuf>,
}

impl Policy {
    /// The policy of this process, detected on first use.
    pub fn get() -> &'static Policy {
        static POLICY: OnceLock<Policy> = OnceLock::new();
        POLICY.get_or_init(Policy::detect)
    }

    fn detect() -> Policy {
        let root = is_root();
        let protected = crate::builder::workspace_root();
        let disabled = Policy {
            guest: None,
            pid_namespace: false,
            user_namespace: false,
            filesystem_view: false,
            mount_namespace_possible: false,
            network_namespace: false,
            cgroups: CgroupRoots::default(),
            protected: protected.clone(),
            view_root: None,
        };
        if std::env::var_os(DISABLE_VARIABLE).is_some() {
            return disabled;
        }
        // Root, or a grader in a user namespace of its own, may make the
        // others itself; any other grader needs one for each program.
        let capable = root || in_own_user_namespace();
        let user = if capable { 0 } else { libc::CLONE_NEWUSER };
        let namespaces =
            user | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        let pid_namespace = child::probe_clone(namespaces, None);
        let mount_namespace_possible = child::probe_clone(user | libc::CLONE_NEWNS, None);
        let view_root = pid_namespace
            .then(|| mounts::view_root(root).ok())
            .flatten()
            .filter(|dir| child::probe_clone(namespaces, Some(dir)));
        Policy {
            guest: root.then_some((GUEST_UID, GUEST_GID)),
            pid_namespace,
            user_namespace: pid_namespace && !capable,
            filesystem_view: view_root.is_some(),
            mount_namespace_possible,
            network_namespace: NetworkNamespace::create().is_ok(),
            cgroups: if root {
                let mut roots = CgroupRoots::detect();
                if pid_namespace {
                    // The init's end takes every process of its namespace
                    // with it, as `cgroup.kill` would; and joining a v2
                    // cgroup costs each program's start a wait of several
                    // milliseconds (see `ProgramCgroups::add`).
                    roots.unified = None;
                }
                roots
            } else {
                CgroupRoots::default()
            },
            protected,
            view_root,
        }
    }

    /// One line for the report's header, e.g. `uid 64000 · own files only ·
    /// pid ns · net ns (loopback only) · cgroup (pids, memory) · clean
    /// env`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.guest {
            Some((uid, _)) => parts.push(format!("uid {uid}")),
            None => parts.push("your uid".to_owned()),
        }
        if self.user_namespace || in_own_user_namespace() {
            parts.push("user ns".to_owned());
        }
        if self.filesystem_view {
            parts.push("own files only".to_owned());
        }
        if self.pid_namespace {
            parts.push("pid, ipc ns".to_owned());
        } else {
            parts.push("process group + subreaper".to_owned());
        }
        if self.network_namespace {
            parts.push("net ns (loopback only)".to_owned());
        }
        let mut controllers = Vec::new();
        if self.cgroups.pids.is_some() {
            controllers.push("pids");
        }
        if self.cgroups.memory.is_some() {
            controllers.push("memory");
        }
        if self.cgroups.unified.is_some() {
            controllers.push("kill");
        }
        if !controllers.is_empty() {
            parts.push(format!("cgroup ({})", controllers.join(", ")));
        }
        parts.push("clean env".to_owned());
        parts.join(" · ")
    }

    /// What of the minimum containment is missing (empty when none is):
    /// as root, a separate uid for graded programs, and their own view of
    /// the filesystem wherever the kernel allows a mount namespace. The
    /// cleared environment, the grader-written results and the killing of
    /// every descendant (a PID namespace, or the process group, the
    /// environment marker and the subreaper) are always in force.
    pub fn minimum_missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if is_root() && self.guest.is_none() {
            missing.push("running as root without a separate uid for graded programs".to_owned());
        }
        if is_root() && self.mount_namespace_possible && !self.filesystem_view {
            missing.push(
                "graded programs could not be given a filesystem of their own \
                 (they could read the course and other students' files)"
                    .to_owned(),
            );
        }
        missing
    }
}

/// Moves this process into a user namespace of its own, where it keeps its
/// uid and gid and gains the capabilities to make namespaces in it: a grader
/// run without root can then give each grade a network namespace of its
/// own, loopback only and with small TCP buffers, as a root grader does
/// (lab 3's checks that fill socket buffers move megabytes less). Returns
/// whether it did.
///
/// Call it first thing, while the process has one thread: the kernel
/// refuses a threaded process. It does nothing as root (the machine's own
/// namespaces serve), nothing with [`DISABLE_VARIABLE`] set, and nothing
/// where the machine refuses any step, which a child process tries first:
/// once in a user namespace there is no way back, and one where our uid
/// could not be mapped would leave the grader unable to create a file.
/// Everything else stays as it was: the same uid for every file, the
/// network for builds. Graded programs need no user namespace of their
/// own then: the grader makes their namespaces as root does (and shares
/// its memory with their init, see `child::clone_init`).
pub fn enter_own_user_namespace() -> bool {
    if is_root() || std::env::var_os(DISABLE_VARIABLE).is_some() || !single_threaded() {
        return false;
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let enter = || -> io::Result<()> {
        // SAFETY: a single-threaded process (checked above) may change its
        // user namespace; nothing of ours depends on the old one.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }?;
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))?;
        Ok(())
    };
    // SAFETY: fork in a single-threaded process; the child only tries the
    // same steps, and a network namespace, then exits.
    match unsafe { libc::fork() } {
        -1 => false,
        0 => {
            let entered = enter().is_ok()
                // SAFETY: as above, in the child.
                && unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                    .is_ok();
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(i32::from(!entered)) }
        }
        child => {
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            let entered =
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 && enter().is_ok();
            OWN_USER_NAMESPACE.store(entered, Ordering::Relaxed);
            entered
        }
    }
}

static OWN_USER_NAMESPACE: AtomicBool = AtomicBool::new(false);

/// Whether this process entered a user namespace of its own
/// ([`enter_own_user_namespace`]): it may then make the other namespaces
/// itself, as root does, and its programs need none of their own.
pub fn in_own_user_namespace() -> bool {
    OWN_USER_NAMESPACE.load(Ordering::Relaxed)
}

/// Whether this process has only the thread calling.
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.split_whitespace().eq(["Threads:", "1"]))
    })
}

/// Whether the grader runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The environment a graded program gets: nothing of the grader's.
pub fn guest_environment(home: &Path, extra: &[(OsString, OsString)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), GUEST_PATH.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), home.as_os_str().to_owned()),
        // A panic's message and location say more to a student than a
        // backtrace through the standard library.
        ("RUST_BACKTRACE".into(), "0".into()),
    ];
    for (key, value) in extra {
        env.retain(|(existing, _)| existing != key);
        env.push((key.clone(), value.clone()));
    }
    env
}

/// A path as a C string (paths with a NUL byte cannot be passed to the
/// kernel at all).
pub fn c_path(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", path.to_string_lossy()),
        )
    })
}

/// Makes the grader itself non-dumpable: no core file, and no `ptrace` or
/// `/proc/PID/mem` access by processes of the same uid.
pub fn protect_grader() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    });
}
