//! A graded program is an untrusted guest: what it may touch, and how the
//! kernel enforces it.
//!
//! A student controls the sources of the program the grader runs. The
//! program must not be able to change a grade, read or alter anything of the
//! grader's, keep a process alive after its check, or reach any network but
//! loopback. Each layer below is a kernel mechanism, used wherever the
//! machine allows it, and the report's header says which were in force
//! ([`Policy::describe`]):
//!
//! - **a guest uid** (when the grader runs as root): the program runs as
//!   [`GUEST_UID`]/[`GUEST_GID`] with no supplementary groups, in a fresh
//!   working directory it owns. Nothing of the grader's is writable by that
//!   uid, and signals and `ptrace` against the grader fail with EPERM.
//! - **a PID namespace per program**: its pid 1 is a small init of ours
//!   (see `process.rs`), so every descendant dies with it, whatever its
//!   session, group or environment, and the grader's pid is not even visible.
//!   As a non-root user this needs a user namespace, in which the course
//!   folder is mounted read-only (only one uid can be mapped there).
//! - **a network namespace per grade** (root): only loopback, brought up.
//!   The check threads join it ([`Sandbox::enter`]) so checks still connect.
//!   Builds happen before, outside it.
//! - **cgroups** where they are writable: a pids limit (a fork bomb stops at
//!   [`MAX_TASKS`]), a memory limit behind the resident-memory watcher, and
//!   cgroup v2's `cgroup.kill` to end every process at once.
//! - **a cleared environment**: a fixed PATH of system directories,
//!   `LANG=C.UTF-8`, HOME set to the program's own directory, and only the
//!   variables the lab contract names.
//!
//! The *minimum* containment ([`Policy::minimum_missing`]) is the uid drop
//! when running as root, the cleared environment, results written only by
//! the grader, and every descendant killed; `--contained` makes a missing
//! minimum an error. Namespaces and cgroups are used when available and
//! reported, never required: platform containers may deny them.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ctx::Binaries;

/// The uid graded programs run as when the grader runs as root.
pub const GUEST_UID: u32 = 64_000;
/// The gid graded programs run as when the grader runs as root.
pub const GUEST_GID: u32 = 64_000;
/// The most processes and threads one graded program may have at once (lab 6
/// legitimately runs a few hundred threads).
pub const MAX_TASKS: u32 = 1024;
/// The cgroup memory limit, above the resident-memory watcher's 1 GiB: the
/// watcher stops the program and says so; the cgroup stops its children too.
pub const CGROUP_MEMORY_LIMIT_MIB: u64 = super::limits::MEMORY_LIMIT_MIB + 256;
/// The PATH a graded program gets: system directories only.
pub const GUEST_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Set in the grader's environment, turns containment off but for the
/// cleared environment and the process-group kill, for measuring what it
/// costs; `--contained` then refuses to grade.
pub const DISABLE_VARIABLE: &str = "SOCKET_LABS_NO_SANDBOX";

/// What this machine lets the grader do, found out once per process.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The uid and gid graded programs run as (root only).
    pub guest: Option<(u32, u32)>,
    /// Each program gets a PID namespace whose init is ours.
    pub pid_namespace: bool,
    /// The PID namespace sits in a user namespace (non-root), where the
    /// course folder is mounted read-only.
    pub user_namespace: bool,
    /// Each grade gets a network namespace with only loopback (root only).
    pub network_namespace: bool,
    /// Writable cgroup hierarchies.
    pub cgroups: CgroupRoots,
    /// The folder mounted read-only inside a user namespace.
    pub protected: PathBuf,
}

/// The cgroup folders under which each program gets one of its own.
#[derive(Debug, Clone, Default)]
pub struct CgroupRoots {
    /// cgroup v1 `pids` controller.
    pub pids: Option<PathBuf>,
    /// cgroup v1 `memory` controller.
    pub memory: Option<PathBuf>,
    /// cgroup v2, for `cgroup.kill`.
    pub unified: Option<PathBuf>,
}

impl Policy {
    /// The policy of this process, detected on first use.
    pub fn get() -> &'static Policy {
        static POLICY: OnceLock<Policy> = OnceLock::new();
        POLICY.get_or_init(Policy::detect)
    }

    fn detect() -> Policy {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let protected = super::super::builder::workspace_root();
        if std::env::var_os(DISABLE_VARIABLE).is_some() {
            return Policy {
                guest: None,
                pid_namespace: false,
                user_namespace: false,
                network_namespace: false,
                cgroups: CgroupRoots::default(),
                protected,
            };
        }
        let (pid_namespace, user_namespace) = if root {
            (probe_clone(libc::CLONE_NEWPID | libc::CLONE_NEWNS), false)
        } else {
            let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS;
            let available = probe_clone(flags);
            (available, available)
        };
        Policy {
            guest: root.then_some((GUEST_UID, GUEST_GID)),
            pid_namespace,
            user_namespace,
            network_namespace: root && NetworkNamespace::create().is_ok(),
            cgroups: if root {
                CgroupRoots::detect()
            } else {
                CgroupRoots::default()
            },
            protected,
        }
    }

    /// One line for the report's header, e.g. `uid 64000 · pid ns · net ns
    /// (loopback only) · cgroup (pids, memory, kill) · clean env`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.guest {
            Some((uid, _)) => parts.push(format!("uid {uid}")),
            None => parts.push("your uid".to_owned()),
        }
        if self.user_namespace {
            parts.push("user ns (course read-only)".to_owned());
        }
        if self.pid_namespace {
            parts.push("pid ns".to_owned());
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
    /// the uid drop when running as root. The cleared environment, the
    /// grader-written results and the killing of every descendant (a PID
    /// namespace, or the process group, the environment marker and the
    /// subreaper) are always in force.
    pub fn minimum_missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 && self.guest.is_none() {
            missing.push("running as root without a separate uid for graded programs".to_owned());
        }
        missing
    }
}

/// Whether a child can be created with `flags` (a probe that exits at once).
fn probe_clone(flags: libc::c_int) -> bool {
    // SAFETY: a fork-like clone; the child only calls _exit.
    let pid = unsafe { raw_clone(flags) };
    match pid {
        -1 => false,
        0 => {
            // SAFETY: the child ends at once.
            unsafe { libc::syscall(libc::SYS_exit_group, 0) };
            unreachable!("exit_group returned")
        }
        pid => {
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }
}

/// `clone(2)` used like `fork(2)`, with namespace flags: returns 0 in the
/// child, the child's pid in the parent, -1 on failure.
///
/// # Safety
///
/// In a multithreaded process the child may only make async-signal-safe
/// system calls (no allocation, no locks, no glibc set*id wrappers, which
/// would wait for threads that do not exist in the child), and must end in
/// `execve` or `exit_group`.
pub unsafe fn raw_clone(flags: libc::c_int) -> libc::pid_t {
    // SAFETY: with a null stack the child continues on a copy of ours, as
    // after fork; the caller upholds the rest.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        ) as libc::pid_t
    }
}

impl CgroupRoots {
    /// The writable hierarchies: `socket-labs` folders made under our own
    /// cgroup in each.
    fn detect() -> CgroupRoots {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let v1 = |controller: &str| {
            let mount = mountinfo.lines().find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let mut fields = after.split_whitespace();
                let (kind, _source, options) = (fields.next()?, fields.next()?, fields.next()?);
                (kind == "cgroup" && options.split(',').any(|o| o == controller))
                    .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
            })?;
            let path = own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_owned())
            })?;
            usable(mount.join(path.trim_start_matches('/')).join("socket-labs"))
        };
        let unified = mountinfo
            .lines()
            .find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                after
                    .starts_with("cgroup2 ")
                    .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
            })
            .and_then(|mount| {
                let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
                // The root cgroup has no cgroup.kill: look in ours.
                let dir = usable(mount.join(path.trim_start_matches('/')).join("socket-labs"))?;
                dir.join("cgroup.kill").exists().then_some(dir)
            });
        CgroupRoots {
            pids: v1("pids"),
            memory: v1("memory"),
            unified,
        }
    }
}

/// `dir` if it exists or can be made, and we can make folders inside it.
fn usable(dir: PathBuf) -> Option<PathBuf> {
    fs::create_dir_all(&dir).ok()?;
    let probe = dir.join(format!("probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    fs::remove_dir(&probe).ok()?;
    Some(dir)
}

/// The cgroups of one graded program: made before it starts, joined by its
/// init before anything of the program runs, removed after it is reaped.
#[derive(Debug, Default)]
pub struct ProgramCgroups {
    dirs: Vec<PathBuf>,
    memory: Option<PathBuf>,
    unified: Option<PathBuf>,
    /// Open `cgroup.procs` files: the child writes `0` to each to join.
    join: Vec<OwnedFd>,
}

impl ProgramCgroups {
    /// New cgroups for one program, in every usable hierarchy. A hierarchy
    /// that refuses is left out (the report still says what is in force
    /// from the policy; this is best effort on top of it).
    pub fn create(roots: &CgroupRoots) -> ProgramCgroups {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroups = ProgramCgroups::default();
        if let Some(root) = &roots.pids {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                let _ = fs::write(dir.join("pids.max"), MAX_TASKS.to_string());
                cgroups.add(dir);
            }
        }
        if let Some(root) = &roots.memory {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                let bytes = CGROUP_MEMORY_LIMIT_MIB * 1024 * 1024;
                let _ = fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string());
                cgroups.memory = Some(dir.clone());
                cgroups.add(dir);
            }
        }
        if let Some(root) = &roots.unified {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                cgroups.unified = Some(dir.clone());
                cgroups.add(dir);
            }
        }
        cgroups
    }

    fn add(&mut self, dir: PathBuf) {
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .expect("cgroup paths have no NUL");
        // SAFETY: open(2) with a valid path; the descriptor is ours.
        let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor owned by nobody else.
            self.join.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        self.dirs.push(dir);
    }

    /// The descriptors the child writes `0` to, joining every cgroup.
    pub fn join_fds(&self) -> Vec<i32> {
        self.join.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Kills every process in the program's cgroups (v2's `cgroup.kill`).
    pub fn kill_all(&self) {
        if let Some(dir) = &self.unified {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
        }
    }

    /// Whether the memory cgroup had to kill a process.
    pub fn hit_memory_limit(&self) -> bool {
        self.memory.as_ref().is_some_and(|dir| {
            fs::read_to_string(dir.join("memory.oom_control")).is_ok_and(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("oom_kill "))
                    .and_then(|count| count.trim().parse::<u64>().ok())
                    .is_some_and(|count| count > 0)
            })
        })
    }

    /// Removes the cgroups once their processes are gone (a dead process
    /// leaves its cgroup a moment after it is reaped, so this retries
    /// briefly; a folder that stays busy is left for the next run).
    pub fn remove(&mut self) {
        self.join.clear();
        for dir in self.dirs.drain(..) {
            for _ in 0..50 {
                match fs::remove_dir(&dir) {
                    Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
        }
    }
}

impl Drop for ProgramCgroups {
    fn drop(&mut self) {
        self.remove();
    }
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

/// A fresh working folder for one guest, owned by its uid: a new folder
/// with a random name in the temporary folder (which every uid may
/// traverse), private to the guest. Removed with [`remove_guest_home`].
pub fn guest_home(policy: &Policy) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("socket-labs-guest-")
        .tempdir()?
        .keep();
    if let Some((uid, gid)) = policy.guest {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

/// Removes a guest's working folder and whatever it wrote there (never
/// following its symbolic links).
pub fn remove_guest_home(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
}

/// What one grade runs in: a network namespace (when available) that every
/// check thread joins, and the executables staged where the guest uid may
/// read and run them.
#[derive(Debug)]
pub struct Sandbox {
    network: Option<NetworkNamespace>,
    staged: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// A sandbox for one grade, as the [`Policy`] allows.
    pub fn new() -> Sandbox {
        let policy = Policy::get();
        Sandbox {
            network: policy
                .network_namespace
                .then(|| NetworkNamespace::create().ok())
                .flatten(),
            staged: None,
        }
    }

    /// Moves the calling thread into the grade's network namespace (a check
    /// thread, before it starts anything). Threads it starts stay there.
    pub fn enter(&self) -> io::Result<()> {
        match &self.network {
            Some(namespace) => namespace.enter(),
            None => Ok(()),
        }
    }

    /// Whether the checks run in a network namespace of their own.
    pub fn isolated_network(&self) -> bool {
        self.network.is_some()
    }

    /// What was in force for this grade, for the report's header.
    pub fn describe(&self) -> String {
        let mut policy = Policy::get().clone();
        policy.network_namespace = self.isolated_network();
        policy.describe()
    }

    /// Copies (or hard-links) the executables into a folder the guest uid
    /// may read and run (build folders and temporary folders are often
    /// private), and returns the binaries pointing there.
    pub fn stage(&mut self, binaries: &Binaries) -> io::Result<Binaries> {
        let folder = tempfile::Builder::new()
            .prefix("socket-labs-bin-")
            .tempdir()?;
        fs::set_permissions(folder.path(), fs::Permissions::from_mode(0o755))?;
        let dir = folder.path().to_path_buf();
        self.staged = Some(folder);
        let mut staged = binaries.clone();
        let mut staged_from = std::collections::BTreeMap::new();
        let tests = staged
            .tests
            .iter_mut()
            .flat_map(|tests| tests.as_mut().ok())
            .map(|path| ("grader-tests".to_owned(), path));
        for (name, path) in staged
            .paths
            .iter_mut()
            .map(|(name, path)| (name.clone(), path))
            .chain(tests)
        {
            let copy = dir.join(&name);
            if fs::hard_link(&*path, &copy).is_err() {
                fs::copy(&*path, &copy)?;
            }
            let mode = fs::metadata(&copy)?.permissions().mode();
            if mode & 0o555 != 0o555 {
                // A hard link shares its mode with the original: copy instead.
                let _ = fs::remove_file(&copy);
                fs::copy(&*path, &copy)?;
                fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
            }
            staged_from.insert(name, path.clone());
            *path = copy;
        }
        staged.shown = staged_from;
        Ok(staged)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A network namespace holding only a loopback interface, brought up.
#[derive(Debug)]
struct NetworkNamespace {
    fd: OwnedFd,
}

impl NetworkNamespace {
    /// Creates one on a short-lived thread (`unshare` moves only the calling
    /// thread, and we keep no thread in it), and keeps a descriptor to it.
    fn create() -> io::Result<NetworkNamespace> {
        std::thread::spawn(|| -> io::Result<NetworkNamespace> {
            // SAFETY: unshare affects only this thread, which ends below.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            bring_up_loopback()?;
            let fd = fs::File::open("/proc/thread-self/ns/net")?;
            Ok(NetworkNamespace { fd: fd.into() })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    }

    fn enter(&self) -> io::Result<()> {
        // SAFETY: setns with a namespace descriptor we own; it moves only
        // the calling thread.
        if unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Sets `IFF_UP` on `lo` in the calling thread's network namespace.
fn bring_up_loopback() -> io::Result<()> {
    // SAFETY: a datagram socket for the ioctl, closed by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
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
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    });
}
