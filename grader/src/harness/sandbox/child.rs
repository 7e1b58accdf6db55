//! The child's side of starting a graded program, from the clone to exec.
//!
//! The process handle (`harness::process`) prepares everything (a
//! [`ChildPlan`]) and clones; in a multithreaded grader the child may then
//! only make async-signal-safe system calls, so everything here is plain
//! system calls on prepared data, and this is the one place of the sandbox
//! that calls libc directly. With a PID namespace the child is the
//! namespace's init: it builds the program's filesystem ([`MountPlan`]),
//! starts the program as pid 2 (which joins its cgroups before it execs)
//! and reaps until it exits.
//! A root grader's init shares the grader's memory instead of copying it
//! ([`clone_init`]), and so does its program until its exec
//! ([`clone_program`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::OwnedFd;

use super::mounts::{MountPlan, View};

/// Address space per process: the backstop behind the memory watcher.
pub const ADDRESS_SPACE_LIMIT_MIB: u64 = 16 * 1024;
/// CPU time per process, in seconds (SIGXCPU, then SIGKILL).
pub const CPU_LIMIT_SECONDS: u64 = 60;
/// Largest file a graded process may write, in MiB (SIGXFSZ).
pub const FILE_SIZE_LIMIT_MIB: u64 = 64;

/// Where a program launched with `Launch::answers` finds its answer pipe.
pub const ANSWERS_FD: i32 = 3;

/// A list of C strings as `execve` wants it: pointers, then null.
pub fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A pipe whose both ends close on exec (the child dups what it keeps).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Reads the errno the child sends when it could not start the program;
/// `None` (end of file, as exec closes the pipe) when it started.
///
/// Until it returns, the child may still read the [`ChildPlan`], which an
/// init made by [`clone_init`] reads in the grader's own memory: so it
/// returns only once every copy of the pipe's write end is closed (or the
/// child reported and is exiting). The reads are rustix's, which report
/// their error in their result: that init shares this thread's `errno`.
pub fn read_exec_error(read_end: OwnedFd) -> Option<i32> {
    let mut raw = [0u8; 4];
    let mut filled = 0;
    while filled < raw.len() {
        match rustix::io::read(&read_end, &mut raw[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    (filled == raw.len()).then(|| i32::from_ne_bytes(raw))
}

/// The pid (as we see it) of the only child of the namespace init `pid`:
/// the graded program.
pub fn init_child(pid: i32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The user namespace of a non-root grader: our uid mapped to itself.
/// Everything the child needs is made here, before the clone.
#[derive(Debug)]
pub struct UserNamespacePlan {
    uid_map: CString,
    gid_map: CString,
}

impl UserNamespacePlan {
    pub fn new() -> Self {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        Self {
            uid_map: CString::new(format!("{uid} {uid} 1\n")).expect("digits"),
            gid_map: CString::new(format!("{gid} {gid} 1\n")).expect("digits"),
        }
    }
}

impl Default for UserNamespacePlan {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything the child needs, prepared before the clone: after it, in a
/// multithreaded parent, the child may not allocate.
#[derive(Debug)]
pub struct ChildPlan<'a> {
    pub program: &'a CStr,
    pub argv: *const *const libc::c_char,
    pub envp: *const *const libc::c_char,
    pub cwd: &'a CStr,
    pub stdin: i32,
    pub stdout: i32,
    pub stderr: i32,
    /// Dup'ed to [`ANSWERS_FD`] (`Launch::answers`); never `exec_error`.
    pub answers: Option<i32>,
    pub exec_error: i32,
    pub status: i32,
    pub join_cgroups: &'a [i32],
    pub guest: Option<(u32, u32)>,
    pub fail_socket_calls: Option<i32>,
    pub open_files: Option<u64>,
    pub pid_namespace: bool,
    pub user_namespace: Option<&'a UserNamespacePlan>,
    /// Where the program's stack starts until its exec, when the init
    /// shares the grader's memory ([`InitStack::program_stack`]): the
    /// program shares it too, until exec, instead of copying it.
    pub program_stack: Option<*mut std::ffi::c_void>,
    /// The program's own filesystem, when the machine allows one.
    pub mounts: Option<&'a MountPlan>,
}

/// The child after the clone. With a PID namespace it is the namespace's
/// pid 1: it makes its mounts private, starts the program as pid 2 and
/// stays as its init; otherwise it becomes the program.
///
/// Takes a pointer, not a reference: an init made by [`clone_init`] reads
/// the plan in the grader's memory, which the grader frees once the init
/// is done with it ([`read_exec_error`]) while the init runs on. Only
/// [`start_program`] borrows it, and returns plain values.
///
/// # Safety
///
/// Only in the child of [`raw_clone`] or [`clone_init`], with `plan` valid
/// until the child closes its copy of `plan.exec_error`: async-signal-safe
/// system calls only.
pub unsafe fn child_main(plan: *const ChildPlan<'_>) -> ! {
    // SAFETY: the caller keeps the plan valid while `start_program` runs;
    // what follows uses only the values it returned.
    unsafe {
        let (program, status) = start_program(&*plan);
        // The init keeps only the descriptor it reports on: it never execs,
        // so descriptors of checks spawning at the same moment, inherited at
        // the clone, would otherwise stay open as long as it runs. Closing
        // its copy of `exec_error` tells the grader it is done with the plan
        // (see `read_exec_error`).
        let kept = status as u32;
        if kept > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, kept - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, kept + 1, u32::MAX, 0u32);
        run_init(program, status)
    }
}

/// The init's setup: its session, the program's filesystem, then the
/// program, cloned as pid 2. Returns the program's pid and the descriptor
/// to report its end on. Without a PID namespace the child becomes the
/// program instead, and this never returns.
///
/// The init joins none of the program's cgroups (the program joins them
/// before it execs): a memory cgroup's OOM killer that picked an init
/// sharing the grader's memory would kill every process sharing it, the
/// grader too.
///
/// # Safety
///
/// As [`child_main`].
unsafe fn start_program(plan: &ChildPlan<'_>) -> (libc::pid_t, i32) {
    // SAFETY: plain system calls on our own process and descriptors.
    unsafe {
        // A session of its own, with no controlling terminal: in the
        // grader's session a program could open /dev/tty, type into the
        // grader's shell (TIOCSTI) or take the terminal's foreground and stop
        // the grader. It is also its own process group, which the grader
        // signals, and, where the kernel groups sessions for scheduling
        // (autogroup), its own share of the CPU.
        libc::setsid();
        // If the grader dies, its programs die with it.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if let Some(user) = plan.user_namespace {
            // The grader is non-dumpable, which makes /proc/self root's: the
            // child writes its own uid map, so it must own it again (exec
            // would reset this anyway).
            libc::prctl(libc::PR_SET_DUMPABLE, 1);
            if enter_user_namespace(user).is_err() {
                fail(plan.exec_error);
            }
        }
        if !plan.pid_namespace {
            exec_program(plan);
        }
        match plan.mounts {
            Some(mounts) => {
                if mounts.apply().is_err() {
                    fail(plan.exec_error);
                }
            }
            None => {
                // Our mounts must not reach the grader's namespace, then a
                // /proc that shows only this namespace's processes (best
                // effort); hidepid=2 hides this init, a clone of the grader
                // that never execs and so carries its command line.
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                );
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    c"hidepid=2".as_ptr().cast(),
                );
            }
        }
        let program = match plan.program_stack {
            Some(stack) => clone_program(plan, stack),
            None => {
                let program = raw_clone(0);
                if program == 0 {
                    exec_program(plan);
                }
                program
            }
        };
        if program < 0 {
            fail(plan.exec_error);
        }
        (program, plan.status)
    }
}

/// Starts the program as [`start_program`] does, in an init that shares the
/// grader's memory: the program shares it too (`CLONE_VM`), on a stack of
/// its own, and the init waits until it has exec'd or exited
/// (`CLONE_VFORK`), as `posix_spawn` does. A copy (a fork) would copy the
/// grader's page tables and leave every page of it copy-on-write: each page
/// a grader thread wrote afterwards faulted, with a TLB flush on every
/// core, a quarter of the grader's CPU time in a grade of lab 3.
///
/// Until exec the program is in its cgroups while it shares the grader's
/// memory, which the init may not be (see [`start_program`]): the pages it
/// touches meanwhile are charged to the memory's owner, the grader, so its
/// fresh memory cgroup has nothing to reclaim and no reason to pick it.
///
/// # Safety
///
/// As [`child_main`], in an init made by [`clone_init`]; `stack` is the top
/// of memory that nothing else uses until the program has exec'd (the
/// init is suspended meanwhile).
unsafe fn clone_program(plan: &ChildPlan<'_>, stack: *mut std::ffi::c_void) -> libc::pid_t {
    extern "C" fn entry(plan: *mut std::ffi::c_void) -> libc::c_int {
        // SAFETY: the init's plan, alive while the init is suspended.
        unsafe { exec_program(&*plan.cast::<ChildPlan<'_>>()) }
    }
    // SAFETY: glibc's clone starts `entry` on `stack`; the program makes
    // only async-signal-safe calls and ends in exec or exit.
    unsafe {
        libc::clone(
            entry,
            stack,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(plan).cast_mut().cast(),
        )
    }
}

/// The init's loop: reap every process of the namespace; when the program
/// exits, report its status and exit, which kills everything left in the
/// namespace. A PID namespace's init receives only the signals it has a
/// handler for, and SIGKILL from the grader: SIGTERM reaches the program.
///
/// Raw system calls (rustix's), with no `errno` and no cancellation point:
/// an init made by [`clone_init`] shares the thread-local storage of the
/// grader's thread that started it, which may have ended by now (rustix's
/// own system calls, not its `use-libc` backend, which nothing here turns
/// on). An interrupted wait is waited again; `waitpid` fails otherwise only
/// when there is nothing left to wait for.
unsafe fn run_init(program: libc::pid_t, status_fd: i32) -> ! {
    use rustix::process::{WaitOptions, waitpid};
    loop {
        match waitpid(None, WaitOptions::empty()) {
            Ok(Some((reaped, status))) if reaped.as_raw_nonzero().get() == program => {
                let raw = status.as_raw();
                // SAFETY: the descriptor the init kept to report on.
                let report = unsafe { std::os::fd::BorrowedFd::borrow_raw(status_fd) };
                let _ = rustix::io::write(report, &raw.to_ne_bytes());
                break;
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    // SAFETY: exit_group ends the init (and with it the namespace); it
    // neither returns nor touches thread-local storage.
    unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    unreachable!("exit_group returned")
}

/// Maps our uid and gid to themselves in the new user namespace.
unsafe fn enter_user_namespace(user: &UserNamespacePlan) -> Result<(), ()> {
    // SAFETY: files of our own process, written with prepared bytes.
    unsafe {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", user.uid_map.as_bytes())?;
        write_file(c"/proc/self/gid_map", user.gid_map.as_bytes())
    }
}

unsafe fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), ()> {
    // SAFETY: open/write/close with valid pointers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written == bytes.len() as isize {
            Ok(())
        } else {
            Err(())
        }
    }
}

/// Becomes the graded program: its stdio, its limits, its uid, then exec.
unsafe fn exec_program(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: plain system calls with prepared arguments.
    unsafe {
        // The program's cgroups, joined before anything of it runs (its
        // init stays out of them: see `start_program`).
        for &fd in plan.join_cgroups {
            libc::write(fd, b"0".as_ptr().cast(), 1);
        }
        if libc::dup2(plan.stdin, 0) < 0
            || libc::dup2(plan.stdout, 1) < 0
            || libc::dup2(plan.stderr, 2) < 0
        {
            fail(plan.exec_error);
        }
        let mut first_closed = 3u32;
        if let Some(answers) = plan.answers {
            // dup2 onto itself would keep close-on-exec: clear it instead.
            let kept = if answers == ANSWERS_FD {
                libc::fcntl(answers, libc::F_SETFD, 0)
            } else {
                libc::dup2(answers, ANSWERS_FD)
            };
            if kept < 0 {
                fail(plan.exec_error);
            }
            first_closed = 4;
        }
        // Nothing else of the grader's crosses exec: its sockets, other
        // checks' pipes, descriptors it inherited (a build's jobserver).
        libc::syscall(
            libc::SYS_close_range,
            first_closed,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        // The grader ignores SIGPIPE (Rust does); a program starts with the
        // default, and with no signal blocked.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        apply_limits();
        if let Some(limit) = plan.open_files {
            set_limit(libc::RLIMIT_NOFILE, limit, limit);
        }
        if libc::chdir(plan.cwd.as_ptr()) != 0 {
            fail(plan.exec_error);
        }
        if let Some((uid, gid)) = plan.guest {
            // Raw system calls: glibc's wrappers would try to change the
            // credentials of threads that exist only in the parent.
            if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setgid, gid) != 0
                || libc::syscall(libc::SYS_setuid, uid) != 0
            {
                fail(plan.exec_error);
            }
        }
        // A change of uid clears the parent-death signal: set it again.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // No set-uid program may give it privileges back.
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if super::seccomp::install_filter(plan.fail_socket_calls).is_err() {
            fail(plan.exec_error);
        }
        libc::execve(plan.program.as_ptr(), plan.argv, plan.envp);
        fail(plan.exec_error)
    }
}

/// Sends this thread's errno to the grader and exits.
unsafe fn fail(exec_error: i32) -> ! {
    // SAFETY: errno of this thread; a four-byte write; exit.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(exec_error, (&raw const errno).cast(), 4);
        libc::syscall(libc::SYS_exit_group, 127);
    }
    unreachable!("exit_group returned")
}

/// Sets the rlimits of the program about to exec.
unsafe fn apply_limits() {
    const MIB: u64 = 1024 * 1024;
    // SAFETY: setrlimit with structs we own.
    unsafe {
        set_limit(libc::RLIMIT_CORE, 0, 0);
        let address_space = ADDRESS_SPACE_LIMIT_MIB * MIB;
        set_limit(libc::RLIMIT_AS, address_space, address_space);
        set_limit(libc::RLIMIT_CPU, CPU_LIMIT_SECONDS, CPU_LIMIT_SECONDS + 5);
        let file_size = FILE_SIZE_LIMIT_MIB * MIB;
        set_limit(libc::RLIMIT_FSIZE, file_size, file_size);
    }
}

/// Sets one rlimit: from then on, for `RLIMIT_NOFILE`, any call that would
/// make a descriptor numbered `soft` or higher fails with EMFILE.
unsafe fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one struct we own.
    unsafe { libc::setrlimit(resource, &limit) };
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

/// The stack of an init made by [`clone_init`], which runs in the grader's
/// memory on a stack of its own for as long as its program runs: it must
/// outlive the init. Its owner calls [`InitStack::unmap`] once it has
/// reaped the init; dropped without that (a panic between the clone and
/// the reaping), it is left mapped, never handed to another use while an
/// init may still run on it. Its lowest page is a guard.
#[derive(Debug)]
pub struct InitStack {
    base: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: a region of memory that only the init uses, unmapped once.
unsafe impl Send for InitStack {}
// SAFETY: as above; the grader never touches it.
unsafe impl Sync for InitStack {}

impl InitStack {
    /// Room for the init's setup (the mounts, the clone of the program) and
    /// its wait loop, with a wide margin; only the pages it touches are
    /// ever backed by memory.
    const LEN: usize = 256 * 1024;
    const GUARD: usize = 4096;

    pub fn new() -> io::Result<Self> {
        use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
        // SAFETY: a fresh private anonymous mapping, which nothing else
        // refers to; its lowest page is made inaccessible.
        unsafe {
            let base = rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                Self::LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK | MapFlags::NORESERVE,
            )?;
            let stack = Self {
                base,
                len: Self::LEN,
            };
            rustix::mm::mprotect(base, Self::GUARD, MprotectFlags::empty())?;
            Ok(stack)
        }
    }

    /// Where the mapping starts, as `/proc/self/maps` shows it.
    #[cfg(test)]
    pub fn address(&self) -> usize {
        self.base as usize
    }

    /// The top of the stack, where a clone starts it (it grows down).
    fn top(&self) -> *mut std::ffi::c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }

    /// The top of the lower half, the program's stack until its exec
    /// ([`clone_program`]): the init, suspended meanwhile, uses only the
    /// top of the upper half.
    pub fn program_stack(&self) -> *mut std::ffi::c_void {
        // SAFETY: inside our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len / 2).cast() }
    }

    /// Unmaps the stack: only once the init that ran on it is reaped.
    pub fn unmap(self) {
        // SAFETY: our own mapping, which no init uses any more (the
        // caller reaped it).
        let _ = unsafe { rustix::mm::munmap(self.base, self.len) };
    }
}

/// [`raw_clone`] for the init of a PID namespace, sharing the grader's
/// memory (`CLONE_VM`) instead of copying it: runs [`child_main`] with
/// `plan` on `stack`, and returns the child's pid, or -1.
///
/// An init lives as long as its program. As a copy of the grader it kept
/// every page the grader had when it started shared copy-on-write, so each
/// page a grader thread wrote afterwards was copied (with a TLB flush on
/// both cores) once per program alive, and its exit unmapped a copy of the
/// grader: a fifth of a lab's CPU time. Sharing, it costs neither; nor
/// does its program, which shares it too until its exec
/// ([`clone_program`]).
///
/// # Safety
///
/// As [`raw_clone`], and more: the child reads `plan` where it is, so the
/// caller keeps it alive and unchanged until [`read_exec_error`] returns;
/// it uses this thread's thread-local storage (its `errno`), so nothing
/// the grader does may depend on `errno` meanwhile; `stack` outlives the
/// child; and the flags do not include `CLONE_NEWUSER`, whose uid maps
/// the child writes after making the shared memory dumpable.
pub unsafe fn clone_init(
    flags: libc::c_int,
    plan: &ChildPlan<'_>,
    stack: &InitStack,
) -> libc::pid_t {
    extern "C" fn entry(plan: *mut std::ffi::c_void) -> libc::c_int {
        // SAFETY: the plan `clone_init` was given, alive until the init has
        // reported (see there); the init runs only async-signal-safe calls.
        unsafe { child_main(plan.cast::<ChildPlan<'_>>()) }
    }
    debug_assert!(
        plan.user_namespace.is_none(),
        "an init that shares the grader's memory may not make it dumpable"
    );
    // SAFETY: the caller upholds the contract above; glibc's clone starts
    // `entry` on `stack`, and exits with its result (it never returns).
    unsafe {
        libc::clone(
            entry,
            stack.top(),
            flags | libc::CLONE_VM | libc::SIGCHLD,
            std::ptr::from_ref(plan).cast_mut().cast(),
        )
    }
}

/// Whether a child can be created with `flags` and, given a folder to build
/// it on, be given a filesystem view of its own (a probe that exits at once).
pub fn probe_clone(flags: libc::c_int, view_root: Option<&std::path::Path>) -> bool {
    let user = (flags & libc::CLONE_NEWUSER != 0).then(UserNamespacePlan::new);
    let mounts = match view_root.map(|root| MountPlan::new(root, &View::default())) {
        Some(Ok(plan)) => Some(plan),
        Some(Err(_)) => return false,
        None => None,
    };
    // SAFETY: a fork-like clone; the child makes plain system calls on
    // prepared data, then exits.
    let pid = unsafe { raw_clone(flags) };
    match pid {
        -1 => false,
        0 => {
            // SAFETY: in the child: prepared data only, then exit.
            unsafe {
                let mut failed = false;
                if let Some(user) = &user {
                    libc::prctl(libc::PR_SET_DUMPABLE, 1);
                    failed |= enter_user_namespace(user).is_err();
                }
                if let Some(mounts) = &mounts {
                    failed = failed || mounts.apply().is_err();
                }
                libc::syscall(libc::SYS_exit_group, i32::from(failed));
            }
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
