//! What the handouts say the kernel does, shown on this machine's kernel.
//!
//! Each test is one claim a handout makes about sockets on Linux, and the
//! handout's sentence links the test by name: if a kernel ever behaves
//! otherwise, the test fails and the sentence is due for a rewrite. They
//! use loopback only, ports the kernel picks (port 0), and bounded waits
//! for a condition (a process asleep in a call, a socket in a state), never
//! a sleep that hopes something happened meanwhile.
//!
//! The claims, by lab:
//! - lab 1: `connect` completes before `accept`; a blocking `write` takes
//!   everything, and returns less only when a stop and continue, or a
//!   timeout, cuts its wait short;
//! - lab 2: a full accept queue drops SYNs (the connect waits and retries);
//!   SO_REUSEADDR must be set on both the socket in TIME_WAIT and the new
//!   one; a read with a timeout fails with EINTR after a stop and continue;
//! - lab 3: a write after the peer's normal close succeeds once, then EPIPE;
//!   after a reset, ECONNRESET then EPIPE; Rust ignores SIGPIPE;
//! - lab 5: the largest UDP datagram on IPv4 carries 65 507 bytes (one more
//!   is EMSGSIZE); an empty datagram arrives as a 0-byte read; a datagram
//!   larger than the buffer is cut, and the rest is lost.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

/// How long any condition may take to come true on a slow, busy machine.
const PATIENCE: Duration = Duration::from_secs(30);

const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Waits until `condition` holds, checking every millisecond, and panics
/// with `what` after [`PATIENCE`].
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A connected pair on loopback: (the connecting side, the accepted side),
/// with small buffers so that a few hundred KiB fill them.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(LOOPBACK).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    SockRef::from(&client)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    SockRef::from(&server)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    (client, server)
}

/// Bytes waiting in a socket's receive queue (FIONREAD).
fn queued(socket: &impl AsRawFd) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::FIONREAD, &mut bytes) };
    assert_eq!(result, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    bytes as usize
}

/// The scheduling state (`R`, `S`, `T`, …) of a thread or process, from
/// its `stat` file under /proc.
fn state(stat: &str) -> Option<char> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name is in parentheses and may hold spaces: the state
    // follows the last `)`.
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits until the thread or process of `stat` sleeps in a call while the
/// peer's receive queue holds bytes and stays the same: the writer has
/// filled every buffer and waits for room.
fn wait_for_a_blocked_writer(stat: &str, reader: &TcpStream) {
    let mut last = usize::MAX;
    wait_until("the writer to block in write", || {
        let now = queued(reader);
        let settled = now > 0 && now == last && state(stat) == Some('S');
        last = now;
        settled
    });
}

/// A forked child that makes one system call on an inherited socket and
/// reports its result on a pipe: a process of its own, so that the test
/// can stop and continue it.
struct Child {
    pid: libc::pid_t,
    results: RawFd,
}

impl Child {
    /// Forks; the child runs `call` (only async-signal-safe system calls:
    /// the parent has threads) and writes its `isize` result and errno.
    fn spawn(call: impl FnOnce() -> isize) -> Self {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only makes system calls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let result = call();
            // SAFETY: errno is thread-local and readable.
            let errno = unsafe { *libc::__errno_location() } as isize;
            let report = [result, errno];
            // SAFETY: writes 16 bytes from the array, then ends the child
            // without running the parent's destructors or atexit handlers.
            unsafe {
                libc::write(fds[1], report.as_ptr().cast(), size_of_val(&report));
                libc::_exit(0);
            }
        }
        // SAFETY: the write end is the child's now.
        unsafe { libc::close(fds[1]) };
        Self {
            pid,
            results: fds[0],
        }
    }

    fn stat(&self) -> String {
        format!("/proc/{}/stat", self.pid)
    }

    /// Stops the child (SIGSTOP, as Ctrl-Z does), waits until it is
    /// stopped, and continues it (SIGCONT, as `fg` does).
    fn stop_and_continue(&self) {
        // SAFETY: plain system calls on our own child.
        unsafe {
            assert_eq!(libc::kill(self.pid, libc::SIGSTOP), 0);
            let mut status = 0;
            assert_eq!(
                libc::waitpid(self.pid, &mut status, libc::WUNTRACED),
                self.pid
            );
            assert!(libc::WIFSTOPPED(status), "the child was not stopped");
            assert_eq!(libc::kill(self.pid, libc::SIGCONT), 0);
        }
    }

    /// The call's result and errno, as the child reported them.
    fn result(&self) -> (isize, i32) {
        let mut poll = libc::pollfd {
            fd: self.results,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, PATIENCE.as_millis() as i32) };
        assert_eq!(ready, 1, "the child did not report within {PATIENCE:?}");
        let mut report = [0isize; 2];
        // SAFETY: reads at most 16 bytes into the array.
        let read = unsafe {
            libc::read(
                self.results,
                report.as_mut_ptr().cast(),
                size_of_val(&report),
            )
        };
        assert_eq!(read as usize, size_of_val(&report), "the child's report");
        (report[0], report[1] as i32)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: our own child and our own descriptor.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            libc::close(self.results);
        }
    }
}

/// Lab 1, "The TCP call sequence": the kernel completes the handshake on
/// its own, and the connection waits in the accept queue, data and all.
#[test]
fn connect_completes_before_accept() {
    let listener = TcpListener::bind(LOOPBACK).unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .expect("connect returns before anybody calls accept");
    client.write_all(b"early").unwrap();
    let (mut server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    let mut bytes = [0; 5];
    server.read_exact(&mut bytes).unwrap();
    assert_eq!(&bytes, b"early");
}

const BIG: usize = 4 << 20;

/// Lab 1, "Why write_all": a blocking write to a peer that reads late
/// waits, then returns every byte.
#[test]
fn a_blocking_write_takes_everything_when_the_peer_reads_late() {
    let (client, mut server) = pair();
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_sender.send(unsafe { libc::gettid() }).unwrap();
        let written = (&client).write(&vec![7; BIG]);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        written
    });
    let tid = tid.recv().unwrap();
    wait_for_a_blocked_writer(&format!("/proc/self/task/{tid}/stat"), &server);
    let mut received = Vec::new();
    server.read_to_end(&mut received).unwrap();
    assert_eq!(writer.join().unwrap().unwrap(), BIG, "one write took all");
    assert_eq!(received.len(), BIG);
}

/// Lab 1, "Why write_all": stopping and continuing a writer blocked in
/// `write` ends the call with the count queued so far.
#[test]
fn a_blocking_write_is_cut_short_by_a_stop_and_continue() {
    let (client, server) = pair();
    let bytes = vec![7u8; BIG];
    let fd = client.as_raw_fd();
    // SAFETY (in the child): write from a buffer allocated before the fork.
    let child = Child::spawn(|| unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) });
    wait_for_a_blocked_writer(&child.stat(), &server);
    child.stop_and_continue();
    let (written, errno) = child.result();
    assert!(
        written > 0 && (written as usize) < BIG,
        "write returned {written} (errno {errno}) of {BIG}"
    );
    drop(server);
}

/// Lab 1, "Why write_all": a send timeout ends a blocking write with the
/// count queued so far.
#[test]
fn a_write_timeout_cuts_a_blocking_write_short() {
    let (mut client, _server) = pair();
    client
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let written = client.write(&vec![7; BIG]).unwrap();
    assert!(written > 0 && written < BIG, "wrote {written} of {BIG}");
    let err = client.write(&vec![7; BIG]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "then: {err}");
}

/// Lab 2, "Interrupted reads": a read with a timeout fails with EINTR when
/// the reader is stopped and continued, although it handles no signal.
#[test]
fn a_read_with_a_timeout_fails_with_eintr_after_a_stop_and_continue() {
    let (client, _server) = pair();
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let fd = client.as_raw_fd();
    let mut buffer = [0u8; 16];
    let child = Child::spawn(|| unsafe {
        // SAFETY (in the child): read into a buffer of the right size.
        libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len())
    });
    wait_until("the reader to wait in read", || {
        state(&child.stat()) == Some('S')
    });
    child.stop_and_continue();
    assert_eq!(child.result(), (-1, libc::EINTR));
}

/// A local port left with one connection in TIME_WAIT, the listener that
/// accepted it gone; `reuse` is SO_REUSEADDR on that listener.
fn port_in_time_wait(reuse: bool) -> u16 {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.set_reuse_address(reuse).unwrap();
    listener.bind(&LOOPBACK.into()).unwrap();
    listener.listen(8).unwrap();
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    drop(listener);
    // The server closes first: its side of the connection ends in TIME_WAIT.
    drop(server);
    assert_eq!(client.read(&mut [0; 1]).unwrap(), 0);
    drop(client);
    wait_until("the connection to reach TIME_WAIT", || {
        let states = tcp_states(port);
        !states.is_empty() && states.iter().all(|state| state == "06")
    });
    port
}

/// The states (hex, as /proc/net/tcp shows them: `06` is TIME_WAIT) of the
/// sockets whose local port is `port`.
fn tcp_states(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            (u16::from_str_radix(local_port, 16).ok()? == port).then(|| fields[3].to_owned())
        })
        .collect()
}

fn bind_again(port: u16, reuse: bool) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(reuse)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    socket.listen(8)?;
    Ok(socket)
}

/// Lab 2, "SO_REUSEADDR and TIME_WAIT": binding a port with a connection
/// in TIME_WAIT works only when the old socket and the new one both set
/// SO_REUSEADDR.
#[test]
fn time_wait_blocks_a_bind_unless_both_sockets_set_so_reuseaddr() {
    for (old, new, works) in [
        (true, true, true),
        (false, true, false),
        (true, false, false),
        (false, false, false),
    ] {
        let port = port_in_time_wait(old);
        let result = bind_again(port, new);
        match (works, result) {
            (true, Ok(_)) => {}
            (false, Err(err)) => assert_eq!(
                err.raw_os_error(),
                Some(libc::EADDRINUSE),
                "old {old}, new {new}: {err}"
            ),
            (_, result) => panic!(
                "SO_REUSEADDR on the old socket {old}, on the new one {new}: {:?}",
                result.map(|_| "bound")
            ),
        }
    }
}

/// Waits until `socket` has an error or a hang-up to report, without
/// reading it (the peer's RST has arrived).
fn wait_for_reset(socket: &TcpStream) {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, PATIENCE.as_millis() as i32) };
    assert_eq!(ready, 1, "no reset within {PATIENCE:?}");
    assert_ne!(poll.revents & (libc::POLLERR | libc::POLLHUP), 0);
}

/// Lab 3, "Out of file descriptors": after the peer's normal close, the
/// first write still succeeds (the peer answers it with a reset), and the
/// next ones fail with EPIPE.
#[test]
fn a_write_after_the_peer_closed_succeeds_once_then_fails_with_broken_pipe() {
    let (mut client, server) = pair();
    drop(server);
    assert_eq!(client.read(&mut [0; 1]).unwrap(), 0, "the peer's FIN");
    assert_eq!(client.write(b"first").unwrap(), 5, "the first write");
    wait_for_reset(&client);
    for attempt in ["second", "third"] {
        let err = client.write(attempt.as_bytes()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "{attempt}: {err}");
    }
}

/// Lab 3, "Out of file descriptors": after the peer reset the connection,
/// the first write fails with ECONNRESET, the next ones with EPIPE.
#[test]
fn a_write_after_the_peer_reset_fails_with_connection_reset_then_broken_pipe() {
    let (mut client, server) = pair();
    SockRef::from(&server)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(server);
    wait_for_reset(&client);
    let err = client.write(b"first").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET), "first: {err}");
    let err = client.write(b"second").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "second: {err}");
}

/// Lab 3, "Out of file descriptors": a Rust program ignores SIGPIPE, so a
/// write to a closed connection is an error to handle, not a death.
#[test]
fn rust_programs_ignore_sigpipe() {
    // SAFETY: sigaction only reads the current disposition into `old`.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(
            libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old),
            0
        );
        old
    };
    assert_eq!(old.sa_sigaction, libc::SIG_IGN);
}

/// Whether a non-blocking connect in progress has completed within
/// `limit`; panics if it failed.
fn connected_within(socket: &Socket, limit: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as i32) };
    assert!(ready >= 0, "poll: {}", std::io::Error::last_os_error());
    if let Some(err) = socket.take_error().unwrap() {
        panic!("the connect failed: {err}");
    }
    ready == 1
}

fn start_connect(to: SocketAddr) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_nonblocking(true).unwrap();
    match socket.connect(&to.into()) {
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        other => panic!("a non-blocking connect: {other:?}"),
    }
    socket
}

/// Lab 2, "Errors you will meet", and lab 1's accept queue: while a
/// listener's accept queue is full, the kernel drops new SYNs, so a
/// connect gets no answer; it retries, and completes once `accept` has
/// made room.
#[test]
fn a_full_accept_queue_drops_syns_until_accept_makes_room() {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&LOOPBACK.into()).unwrap();
    // A backlog of 0: Linux queues one finished connection, no more.
    listener.listen(0).unwrap();
    let address = listener.local_addr().unwrap().as_socket().unwrap();
    let first = start_connect(address);
    assert!(connected_within(&first, PATIENCE), "the queue has room");
    let second = start_connect(address);
    assert!(
        !connected_within(&second, Duration::from_millis(300)),
        "a connect completed while the accept queue was full"
    );
    let _accepted = listener.accept().unwrap();
    assert!(
        connected_within(&second, PATIENCE),
        "the connect did not complete after accept made room"
    );
}

/// Lab 5: the largest UDP datagram over IPv4 carries 65 507 bytes (65 535
/// less the IP and UDP headers); one byte more fails with EMSGSIZE.
#[test]
fn a_udp_datagram_over_65507_bytes_fails_with_emsgsize() {
    let receiver = UdpSocket::bind(LOOPBACK).unwrap();
    receiver.set_read_timeout(Some(PATIENCE)).unwrap();
    let sender = UdpSocket::bind(LOOPBACK).unwrap();
    let to = receiver.local_addr().unwrap();
    assert_eq!(sender.send_to(&[1; 65_507], to).unwrap(), 65_507);
    let mut buffer = vec![0; 70_000];
    assert_eq!(receiver.recv_from(&mut buffer).unwrap().0, 65_507);
    let err = sender.send_to(&[1; 65_508], to).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
}

/// Lab 5, "Zero bytes is a message": an empty datagram is delivered, as a
/// read of 0 bytes, with its sender's address.
#[test]
fn an_empty_datagram_arrives_as_a_zero_byte_read() {
    let receiver = UdpSocket::bind(LOOPBACK).unwrap();
    receiver.set_read_timeout(Some(PATIENCE)).unwrap();
    let sender = UdpSocket::bind(LOOPBACK).unwrap();
    assert_eq!(
        sender.send_to(&[], receiver.local_addr().unwrap()).unwrap(),
        0
    );
    let (length, from) = receiver.recv_from(&mut [0; 16]).unwrap();
    assert_eq!(length, 0);
    assert_eq!(from, sender.local_addr().unwrap());
}

/// Lab 5, "Datagrams have edges": a datagram larger than the buffer is cut
/// to the buffer's size, and the rest of it is gone: the next read returns
/// the next datagram.
#[test]
fn a_datagram_larger_than_the_buffer_is_truncated() {
    let receiver = UdpSocket::bind(LOOPBACK).unwrap();
    receiver.set_read_timeout(Some(PATIENCE)).unwrap();
    let sender = UdpSocket::bind(LOOPBACK).unwrap();
    let to = receiver.local_addr().unwrap();
    sender.send_to(b"0123456789abcdef", to).unwrap();
    sender.send_to(b"next", to).unwrap();
    let mut buffer = [0; 10];
    assert_eq!(receiver.recv_from(&mut buffer).unwrap().0, 10);
    assert_eq!(&buffer, b"0123456789");
    let (length, _) = receiver.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"next");
}

/// The handouts link these tests by name, `` [`name`](../../grader/tests/kernel_claims.rs) ``:
/// every name linked is a test here, and every test here is linked.
#[test]
fn every_claim_is_linked_from_a_handout_and_every_link_names_a_test() {
    let source = include_str!("kernel_claims.rs");
    let tests: Vec<&str> = source
        .split("#[test]\nfn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .filter(|name| *name != "every_claim_is_linked_from_a_handout_and_every_link_names_a_test")
        .collect();
    let mut linked = Vec::new();
    for lab in grader::LABS {
        let path = grader::builder::workspace_root().join(lab.handout());
        let handout = std::fs::read_to_string(&path).unwrap();
        for piece in handout
            .split("`](../../grader/tests/kernel_claims.rs)")
            .collect::<Vec<_>>()[..handout
            .matches("`](../../grader/tests/kernel_claims.rs)")
            .count()]
            .iter()
        {
            let name = piece.rsplit("[`").next().unwrap();
            assert!(
                tests.contains(&name),
                "{}: links `{name}`, which is no test in kernel_claims.rs",
                path.display()
            );
            linked.push(name.to_owned());
        }
    }
    for test in &tests {
        assert!(
            linked.iter().any(|name| name == test),
            "no handout links the test `{test}`"
        );
    }
}
