//! The files of one process in `/proc/PID/` (and of its threads in
//! `/proc/PID/task/TID/`), each parsed once.

use std::collections::BTreeSet;
use std::io;
use std::time::Duration;

/// A process's `/proc/PID/status`, the fields the grader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its state's letter (`State:`), as in [`Stat::state`].
    pub state: char,
    /// How many threads it has (`Threads:`).
    pub threads: usize,
    /// Its resident memory in KiB (`VmRSS:`; none for a kernel thread or
    /// a zombie).
    pub resident_kib: Option<u64>,
}

impl Status {
    /// Parses a `status` file.
    pub fn parse(text: &str) -> Option<Status> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
        };
        Some(Status {
            state: field("State:")?.chars().next()?,
            threads: field("Threads:")?.parse().ok()?,
            resident_kib: field("VmRSS:")
                .and_then(|kib| kib.trim_end_matches("kB").trim().parse().ok()),
        })
    }
}

/// `/proc/PID/status`.
pub fn status(pid: u32) -> io::Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Status::parse(&text).ok_or_else(|| malformed("PID/status"))
}

/// Number of threads of `pid` (`Threads:` in `/proc/PID/status`).
pub fn threads(pid: u32) -> io::Result<usize> {
    Ok(status(pid)?.threads)
}

/// `pid` and every process under it that still runs: its children, theirs,
/// and so on (`/proc/PID/task/TID/children`). A program may leave its work
/// to a process it started and wait: what it is judged on is all of them.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = Vec::new();
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        tree.push(pid);
        for task in tasks.flatten() {
            if let Some(tid) = task.file_name().to_str().and_then(|tid| tid.parse().ok()) {
                pending.extend(thread_children(pid, tid).unwrap_or_default());
            }
        }
    }
    tree
}

/// Number of threads of `pid` and of every process under it
/// ([`process_tree`]): a thread per client in a child counts.
pub fn tree_threads(pid: u32) -> io::Result<usize> {
    summed_over_tree(pid, threads)
}

/// CPU time of `pid` and of every process under it that still runs
/// ([`process_tree`]): a child's busy loop counts.
pub fn tree_cpu_time(pid: u32) -> io::Result<Duration> {
    summed_over_tree(pid, cpu_time)
}

/// `measure` of `pid` (which must succeed) plus that of every process under
/// it that still answers (one may end while it is read).
fn summed_over_tree<T: std::iter::Sum<T>>(
    pid: u32,
    measure: impl Fn(u32) -> io::Result<T>,
) -> io::Result<T> {
    let own = measure(pid)?;
    let children = process_tree(pid)
        .into_iter()
        .filter(|&process| process != pid)
        .filter_map(|process| measure(process).ok());
    Ok(std::iter::once(own).chain(children).sum())
}

/// Number of open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// The numbers of the file descriptors `pid` holds, in order.
pub fn fd_numbers(pid: u32) -> io::Result<Vec<u64>> {
    let mut numbers: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// How many descriptors `pid` may hold (the soft `Max open files` of
/// `/proc/PID/limits`).
pub fn open_files_limit(pid: u32) -> io::Result<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::other("no Max open files line in /proc/PID/limits"))
}

/// A process's or thread's `/proc/PID/stat`, the fields the grader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Its state: `R` running, `S` sleeping, `D` in the disk, `T` stopped,
    /// `t` traced, `Z` a zombie, `X` dead.
    pub state: char,
    /// Its parent's pid.
    pub parent: u32,
    /// Its session's id.
    pub session: u32,
    /// CPU time used so far, user plus system, in clock ticks.
    pub cpu_ticks: u64,
}

impl Stat {
    /// Parses a `stat` file. The command name (field 2) may contain spaces
    /// and parentheses: the other fields start after its last `)`.
    pub fn parse(text: &str) -> Option<Stat> {
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        // After the name, 0-based: state 0, ppid 1, pgrp 2, session 3,
        // utime 11, stime 12.
        let number = |index: usize| -> Option<u64> { fields.get(index)?.parse().ok() };
        Some(Stat {
            state: fields.first()?.chars().next()?,
            parent: u32::try_from(number(1)?).ok()?,
            session: u32::try_from(number(3)?).ok()?,
            cpu_ticks: number(11)? + number(12)?,
        })
    }

    /// The CPU time used so far.
    pub fn cpu_time(&self) -> Duration {
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_micros(self.cpu_ticks * 1_000_000 / per_second)
    }

    /// Whether it has ended (a zombie, or dead).
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

fn malformed(file: &str) -> io::Error {
    io::Error::other(format!("malformed /proc/{file}"))
}

/// `/proc/PID/stat`.
pub fn stat(pid: u32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Stat::parse(&text).ok_or_else(|| malformed("PID/stat"))
}

/// `/proc/PID/task/TID/stat` of every thread of `pid`, by thread id. A
/// thread that ends while they are read is left out.
pub fn thread_stats(pid: u32) -> io::Result<Vec<(u32, Stat)>> {
    let mut stats = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Some(tid) = task.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        stats.push((
            tid,
            Stat::parse(&text).ok_or_else(|| malformed("PID/task/TID/stat"))?,
        ));
    }
    Ok(stats)
}

/// CPU time `pid` has used so far, user plus system (`/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    Ok(stat(pid)?.cpu_time())
}

/// Whether every thread of `pid` is stopped (state `T` in
/// `/proc/PID/task/TID/stat`), as after SIGSTOP.
pub fn all_threads_stopped(pid: u32) -> io::Result<bool> {
    Ok(thread_stats(pid)?
        .iter()
        .all(|(_, stat)| matches!(stat.state, 'T' | 't')))
}

/// Where in the kernel `pid`'s main thread sleeps (`/proc/PID/wchan`):
/// `do_epoll_wait`, `sock_alloc_send_pskb`, or `0` when it is running.
pub fn wchan(pid: u32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
}

/// Where in the kernel the thread `tid` of `pid` sleeps (see [`wchan`]).
pub fn thread_wchan(pid: u32, tid: u32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan"))
}

/// The processes the thread `tid` of `pid` started and that still run
/// (`/proc/PID/task/TID/children`).
pub fn thread_children(pid: u32, tid: u32) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect())
}

/// `syscr` and `syscw` of `/proc/PID/io`: how many reads and writes (sends
/// and receives included) the process made.
pub fn io_calls(pid: u32) -> io::Result<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let field = |name: &str| {
        io.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| malformed("PID/io"))
    };
    Ok((field("syscr:")?, field("syscw:")?))
}

/// Whether `pid`'s main thread sleeps waiting for readiness: in `poll`,
/// `epoll_wait` or `select`.
pub fn waits_for_readiness(pid: u32) -> io::Result<bool> {
    let wchan = wchan(pid)?;
    Ok(wchan.contains("poll") || wchan.contains("select"))
}

/// Whether every thread of `pid` sleeps in a readiness wait (`poll`,
/// `select`, `epoll_wait` and their variants) with no timeout, as
/// `/proc/PID/task/TID/syscall` shows: then nothing but an event on one of
/// its descriptors (or a signal) wakes it. `false` when a thread runs, sleeps
/// elsewhere or with a timeout, or `/proc` does not say.
pub fn sleeps_until_an_event(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("syscall")) else {
            return false;
        };
        if !untimed_readiness_wait(&text) {
            return false;
        }
        any = true;
    }
    any
}

/// Whether a `/proc/PID/syscall` line (`NR ARG1 … ARG6 SP PC`: the number
/// in decimal, the rest in hex) is a readiness wait without a timeout.
fn untimed_readiness_wait(line: &str) -> bool {
    let mut fields = line.split_whitespace();
    let Some(number) = fields.next().and_then(|field| field.parse::<i64>().ok()) else {
        return false;
    };
    let args: Vec<u64> = fields
        .map(|field| u64::from_str_radix(field.trim_start_matches("0x"), 16).unwrap_or(1))
        .collect();
    // An `int` timeout (milliseconds), negative for none: only its low 32
    // bits are the argument.
    let negative = |index: usize| args.get(index).is_some_and(|&arg| (arg as u32 as i32) < 0);
    // A pointer to a timeout, NULL for none.
    let null = |index: usize| args.get(index) == Some(&0);
    match number {
        #[cfg(target_arch = "x86_64")]
        n if n == libc::SYS_poll => negative(2),
        #[cfg(target_arch = "x86_64")]
        n if n == libc::SYS_select => null(4),
        #[cfg(target_arch = "x86_64")]
        n if n == libc::SYS_epoll_wait => negative(3),
        n if n == libc::SYS_ppoll => null(2),
        n if n == libc::SYS_pselect6 => null(4),
        n if n == libc::SYS_epoll_pwait => negative(3),
        n if n == libc::SYS_epoll_pwait2 => null(3),
        _ => false,
    }
}

/// What a thread sleeps in, from `/proc/PID/task/TID/syscall`: the system
/// call's number and its six arguments. `None` while the thread runs (the
/// file then says `running`), or when `/proc` does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// The system call's number (`libc::SYS_*`).
    pub number: i64,
    /// Its arguments.
    pub args: [u64; 6],
}

impl Blocked {
    /// Parses a `/proc/PID/syscall` line: `NR ARG1 … ARG6 SP PC`, the number
    /// in decimal, the rest in hex.
    pub fn parse(line: &str) -> Option<Blocked> {
        let mut fields = line.split_whitespace();
        let number = fields.next()?.parse::<i64>().ok()?;
        if number < 0 {
            // -1: blocked, but not in a system call (a page fault).
            return None;
        }
        let mut args = [0; 6];
        for arg in &mut args {
            *arg = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
        }
        Some(Blocked { number, args })
    }

    /// Whether this is a receive (`read`, `readv`, `recvfrom`, `recvmsg`)
    /// on the descriptor `fd`.
    pub fn receives_on(&self, fd: u64) -> bool {
        let receive = [
            libc::SYS_read,
            libc::SYS_readv,
            libc::SYS_recvfrom,
            libc::SYS_recvmsg,
        ];
        receive.contains(&self.number) && self.args[0] == fd
    }

    /// Whether this is a `futex` wait without a timeout: only another of
    /// the program's threads (or a signal) wakes it.
    pub fn untimed_futex(&self) -> bool {
        self.number == libc::SYS_futex && self.args[3] == 0
    }
}

/// What the thread `tid` of `pid` sleeps in (see [`Blocked`]).
pub fn thread_blocked(pid: u32, tid: u32) -> Option<Blocked> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    Blocked::parse(&text)
}

/// How often the threads of `pid` have been given a CPU so far, all
/// together (the third field of `/proc/PID/task/TID/schedstat`): unchanged
/// between two looks means none of them ran in between.
pub fn times_scheduled(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let text = std::fs::read_to_string(task?.path().join("schedstat"))?;
        total += text
            .split_whitespace()
            .nth(2)
            .and_then(|field| field.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/task/TID/schedstat"))?;
    }
    Ok(total)
}

/// The inodes of the sockets `pid` holds (its `/proc/PID/fd` links
/// `socket:[INODE]`). A descriptor closed while they are read is not held.
pub fn socket_inodes(pid: u32) -> io::Result<BTreeSet<u64>> {
    Ok(socket_fds(pid)?
        .into_iter()
        .map(|(_, inode)| inode)
        .collect())
}

/// Whether `pid` still holds a descriptor for the socket `inode`.
pub fn holds_socket(pid: u32, inode: u64) -> io::Result<bool> {
    Ok(socket_inodes(pid)?.contains(&inode))
}

/// The sockets `pid` holds, as `(descriptor, inode)`.
pub fn socket_fds(pid: u32) -> io::Result<Vec<(u64, u64)>> {
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A descriptor closed while we look is not held.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|target| target.strip_prefix("socket:["))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|inode| inode.parse().ok());
        if let Some(inode) = inode {
            sockets.push((fd, inode));
        }
    }
    Ok(sockets)
}

/// The descriptors registered with `pid`'s epoll instances (the `tfd:`
/// lines of `/proc/PID/fdinfo/FD` for each `anon_inode:[eventpoll]`);
/// `None` when it holds no epoll instance (it waits with `poll` or
/// `select`, whose interest lists `/proc` does not show).
pub fn epoll_registered(pid: u32) -> io::Result<Option<Vec<u64>>> {
    let mut registered = None;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if target.as_os_str() != "anon_inode:[eventpoll]" {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))?;
        let fds = registered.get_or_insert_with(Vec::new);
        fds.extend(info.lines().filter_map(|line| {
            line.strip_prefix("tfd:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        }));
    }
    Ok(registered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(threads(pid).unwrap() >= 1);
        assert!(open_fds(pid).unwrap() >= 3);
        let busy_until = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < busy_until {}
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
        let threads = thread_stats(pid).unwrap();
        assert!(threads.iter().any(|(tid, _)| *tid == pid));
        assert!(!all_threads_stopped(pid).unwrap());
        assert!(matches!(stat(pid).unwrap().state, 'R' | 'S'));
        assert!(io_calls(pid).is_ok());
        let status = status(pid).unwrap();
        assert!(status.threads >= 1 && status.resident_kib.unwrap() > 0);
    }

    #[test]
    fn stat_lines_are_parsed_after_the_last_parenthesis() {
        let line = "42 (a (b) c) S 7 42 40 0 -1 4194560 100 0 0 0 15 5 0 0 20 0 1 0 1 1 1";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                state: 'S',
                parent: 7,
                session: 40,
                cpu_ticks: 20,
            })
        );
        assert_eq!(Stat::parse("42 (x"), None);
    }

    #[test]
    fn untimed_readiness_waits_are_told_from_timed_ones() {
        let line = |number: i64, args: [&str; 6]| {
            format!("{number} {} 0x7ffc232bda08 0x7f1b74f26ef3", args.join(" "))
        };
        let zeros = ["0x3", "0x55f442dd9620", "0x3ff", "0x0", "0x0", "0x0"];
        let mut untimed = zeros;
        untimed[3] = "0xffffffff";
        let mut timed = zeros;
        timed[3] = "0x64";
        let pwait = libc::SYS_epoll_pwait;
        assert!(untimed_readiness_wait(&line(pwait, untimed)));
        assert!(!untimed_readiness_wait(&line(pwait, timed)));
        assert!(!untimed_readiness_wait(&line(pwait, zeros)));
        // epoll_pwait2 and ppoll take a pointer: NULL is no timeout.
        assert!(untimed_readiness_wait(&line(libc::SYS_epoll_pwait2, zeros)));
        assert!(!untimed_readiness_wait(&line(
            libc::SYS_epoll_pwait2,
            timed
        )));
        assert!(!untimed_readiness_wait(&line(libc::SYS_read, untimed)));
        assert!(!untimed_readiness_wait("running"));
        assert!(!untimed_readiness_wait("-1 0x7ffc232bda08 0x7f1b74f26ef3"));
    }

    #[test]
    fn a_thread_blocked_in_a_read_of_a_socket_is_seen_receiving_on_it() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let fd = receiver.as_raw_fd() as u64;
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let _ = tid_sender.send(rustix::thread::gettid().as_raw_nonzero().get() as u32);
            let mut byte = [0];
            receiver.read_exact(&mut byte).map(|()| byte[0])
        });
        let tid = tid.recv().unwrap();
        let pid = std::process::id();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        assert!(super::super::watch_until(deadline, || {
            thread_blocked(pid, tid).is_some_and(|blocked| blocked.receives_on(fd))
        }));
        assert!(!thread_blocked(pid, tid).unwrap().receives_on(fd + 1));
        sender.write_all(b"x").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), b'x');
        assert_eq!(Blocked::parse("running"), None);
        assert_eq!(Blocked::parse("-1 0x7ffc232bda08 0x7f1b74f26ef3"), None);
        let futex = format!("{} 0x1 0x80 0x2 0x0 0x0 0x0 0x7ffc 0x7f1b", libc::SYS_futex);
        assert!(Blocked::parse(&futex).unwrap().untimed_futex());
        let timed = format!(
            "{} 0x1 0x80 0x2 0x7ff0 0x0 0x0 0x7ffc 0x7f1b",
            libc::SYS_futex
        );
        assert!(!Blocked::parse(&timed).unwrap().untimed_futex());
    }
}
