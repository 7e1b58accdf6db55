//! What `/proc` says about a running program: threads, open descriptors and
//! CPU time. Linux only; elsewhere these return an error and the checks that
//! need them report themselves as skipped.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Looks again every few milliseconds until `done` holds (true) or
/// `deadline` passes (false): `/proc` cannot be waited on.
pub fn watch_until(deadline: std::time::Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Number of threads of `pid` (`Threads:` in `/proc/PID/status`).
pub fn threads(pid: u32) -> io::Result<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/PID/status"))
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

/// CPU time `pid` has used so far, user plus system (`/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: the
    // numeric fields start after its last ')'.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based).
    let ticks = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(total * 1_000_000 / per_second))
}

/// Where in the kernel `pid`'s main thread sleeps (`/proc/PID/wchan`):
/// `do_epoll_wait`, `sock_alloc_send_pskb`, or `0` when it is running.
pub fn wchan(pid: u32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
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

/// Bytes that arrived on the connections accepted at `server` (its
/// listening address) and that the server has not read yet, all together.
pub fn unread_by_server(server: SocketAddr) -> io::Result<u64> {
    let local = proc_net_address(server);
    Ok(tcp_sockets()?
        .iter()
        .filter(|socket| socket.local_address == local && socket.state != TcpSocket::LISTEN)
        .map(|socket| u64::from(socket.rx_queue))
        .sum())
}

/// Connections accepted at `server` whose client has closed its side (the
/// FIN arrived: `CLOSE_WAIT`) while the server has nothing left to send
/// them: an end of stream the server has not noticed yet.
pub fn unnoticed_ends(server: SocketAddr) -> io::Result<usize> {
    let local = proc_net_address(server);
    Ok(tcp_sockets()?
        .iter()
        .filter(|socket| {
            socket.local_address == local
                && socket.state == TcpSocket::CLOSE_WAIT
                && socket.tx_queue == 0
        })
        .count())
}

/// How many connections wait in the accept queue of the listening socket on
/// `port`; `None` when nothing listens there. (The backlog is not in
/// `/proc/net/tcp`: see [`super::sockdiag`].)
pub fn accept_queue(port: u16) -> io::Result<Option<u32>> {
    Ok(tcp_sockets()?
        .iter()
        .find(|socket| socket.local_port == port && socket.state == TcpSocket::LISTEN)
        .map(|socket| socket.rx_queue))
}

/// One TCP socket of the machine, as `/proc/net/tcp` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Its local address as the table prints it (see [`proc_net_address`]).
    pub local_address: String,
    /// Its remote address, likewise (zeros for a listening socket).
    pub remote_address: String,
    /// Its local port.
    pub local_port: u16,
    /// Its state (the kernel's numbering: see [`TcpSocket::TIME_WAIT`]).
    pub state: u8,
    /// Bytes waiting to be sent; for a listening socket, its backlog.
    pub tx_queue: u32,
    /// Bytes that arrived and the owning program has not read yet; for a
    /// listening socket, how many connections wait to be accepted.
    pub rx_queue: u32,
    /// Its inode, as `/proc/PID/fd` links name it (`socket:[INODE]`).
    pub inode: u64,
}

impl TcpSocket {
    /// `TCP_ESTABLISHED` in the kernel's numbering.
    pub const ESTABLISHED: u8 = 0x01;
    /// `TCP_LISTEN` in the kernel's numbering.
    pub const LISTEN: u8 = 0x0A;
    /// `TCP_CLOSE_WAIT` in the kernel's numbering: the peer closed its side.
    pub const CLOSE_WAIT: u8 = 0x08;
    /// `TCP_TIME_WAIT` in the kernel's numbering.
    pub const TIME_WAIT: u8 = 0x06;
}

/// Whether every thread of `pid` is stopped (state `T` in
/// `/proc/PID/task/TID/stat`), as after SIGSTOP.
pub fn all_threads_stopped(pid: u32) -> io::Result<bool> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("stat"))?;
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/task/TID/stat"))?;
        if state != "T" && state != "t" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every TCP socket of the calling thread's network namespace, IPv4 and
/// IPv6. `/proc/net` follows the process's main thread, which stays outside
/// the grade's namespace: check threads read `/proc/thread-self/net`.
pub fn tcp_sockets() -> io::Result<Vec<TcpSocket>> {
    let mut sockets = Vec::new();
    for table in ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6 table.
            Err(err) if table.ends_with('6') && err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        sockets.extend(text.lines().skip(1).filter_map(parse_tcp_line));
    }
    Ok(sockets)
}

/// Parses `sl local_address rem_address st tx_queue:rx_queue ...`, where
/// numbers are hexadecimal and an address is `ADDR:PORT`.
fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (_, port) = fields.get(1)?.rsplit_once(':')?;
    let (tx_queue, rx_queue) = fields.get(4)?.split_once(':')?;
    Some(TcpSocket {
        local_address: (*fields.get(1)?).to_owned(),
        remote_address: (*fields.get(2)?).to_owned(),
        local_port: u16::from_str_radix(port, 16).ok()?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        tx_queue: u32::from_str_radix(tx_queue, 16).ok()?,
        rx_queue: u32::from_str_radix(rx_queue, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// The sizes TCP sockets get where the calling thread is: `net.ipv4.tcp_rmem`
/// and `tcp_wmem` (min, default, max, in bytes) of its network namespace.
/// In a grade's namespace they are the grader's small ones
/// ([`RECEIVE_BUFFERS`](super::sandbox::network::RECEIVE_BUFFERS)); without
/// one, the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpBuffers {
    /// `tcp_rmem`.
    pub receive: [usize; 3],
    /// `tcp_wmem`.
    pub send: [usize; 3],
}

impl TcpBuffers {
    /// The sizes where the calling thread is; Linux's usual defaults where
    /// `/proc` does not say.
    pub fn here() -> TcpBuffers {
        let read = |name: &str| -> Option<[usize; 3]> {
            let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok()?;
            let numbers: Vec<usize> = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            numbers.try_into().ok()
        };
        TcpBuffers {
            receive: read("tcp_rmem").unwrap_or([4096, 131_072, 6_291_456]),
            send: read("tcp_wmem").unwrap_or([4096, 16_384, 4_194_304]),
        }
    }

    /// The largest size a socket's send buffer grows to by itself.
    pub fn largest_send(&self) -> usize {
        self.send[2]
    }

    /// The largest size a socket's receive buffer grows to by itself.
    pub fn largest_receive(&self) -> usize {
        self.receive[2]
    }

    /// The most one connection's kernel buffers hold, one way: the sender's
    /// send buffer and the receiver's receive buffer, both grown as far as
    /// they go. Data that must wait in a program, not in the kernel, is
    /// some multiple of this.
    pub fn one_way(&self) -> usize {
        self.largest_send() + self.largest_receive()
    }

    /// The sizes as `sysctl` shows them, for reports: `tcp_wmem 4096 16384
    /// 65536, tcp_rmem 4096 131072 131072`.
    pub fn describe(&self) -> String {
        let [a, b, c] = self.send;
        let [d, e, f] = self.receive;
        format!("tcp_wmem {a} {b} {c}, tcp_rmem {d} {e} {f}")
    }
}

/// The inode of the socket at the `local` end of the TCP connection from
/// `remote`; `None` when no such connection is listed.
pub fn tcp_inode(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u64>> {
    let (local, remote) = (proc_net_address(local), proc_net_address(remote));
    Ok(tcp_sockets()?
        .into_iter()
        .find(|socket| socket.local_address == local && socket.remote_address == remote)
        .map(|socket| socket.inode))
}

/// Whether `pid` still holds a descriptor for the socket `inode`.
pub fn holds_socket(pid: u32, inode: u64) -> io::Result<bool> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed while we look is not held.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        if target.as_os_str() == wanted.as_str() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Bytes that arrived on the TCP connection from `remote` to `local` and
/// that the program owning that socket has not read yet; `None` when no such
/// connection is listed. The grader uses it to see when a server has read
/// everything it was sent.
pub fn tcp_unread(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u64>> {
    let (local, remote) = (proc_net_address(local), proc_net_address(remote));
    Ok(tcp_sockets()?
        .into_iter()
        .find(|socket| socket.local_address == local && socket.remote_address == remote)
        .map(|socket| u64::from(socket.rx_queue)))
}

/// An address as `/proc/net/tcp` prints it: the IP as 32-bit words in the
/// machine's byte order, in hex, then the port in hex (`0100007F:1F90`).
pub fn proc_net_address(addr: SocketAddr) -> String {
    let octets = match addr {
        SocketAddr::V4(v4) => v4.ip().octets().to_vec(),
        SocketAddr::V6(v6) => v6.ip().octets().to_vec(),
    };
    let ip: String = octets
        .chunks(4)
        .map(|word| {
            format!(
                "{:08X}",
                u32::from_ne_bytes([word[0], word[1], word[2], word[3]])
            )
        })
        .collect();
    format!("{ip}:{:04X}", addr.port())
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
    fn tcp_lines_are_parsed() {
        let line = "   3: 0100007F:1F90 00000000:0000 0A 00000002:00000001 00:00000000 00000000  1000        0 12345 1 0 100 0 0 10 0";
        assert_eq!(
            parse_tcp_line(line),
            Some(TcpSocket {
                local_address: "0100007F:1F90".into(),
                remote_address: "00000000:0000".into(),
                local_port: 8080,
                state: TcpSocket::LISTEN,
                tx_queue: 2,
                rx_queue: 1,
                inode: 12345,
            })
        );
    }

    #[test]
    fn our_own_listener_is_listed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets = tcp_sockets().unwrap();
        assert!(
            sockets
                .iter()
                .any(|s| s.local_port == port && s.state == TcpSocket::LISTEN)
        );
    }

    #[test]
    fn sees_bytes_a_socket_has_not_read() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"unread").unwrap();
        let (local, remote) = (server.local_addr().unwrap(), server.peer_addr().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tcp_unread(local, remote).unwrap() != Some(6) {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw 6 unread bytes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            proc_net_address("127.0.0.1:8080".parse().unwrap()),
            "0100007F:1F90"
        );
    }
}
