//! Sockets with deadlines: the grader's own clients and servers. The
//! connection it records through is [`conn`], its UDP sockets are [`udp`],
//! a server run out of descriptors is [`descriptors`].
//!
//! Every blocking call here is bounded by a deadline, so a program that never
//! answers costs its check time, never a hung grader. The grader's clients
//! read while they write, so a large echo can never deadlock on full kernel
//! buffers, and they use small socket buffers so that buffering bugs in the
//! graded program show up whatever the kernel's autotuning does.

pub mod conn;
pub mod descriptors;
mod faulty;
mod peers;
pub mod udp;

pub use faulty::{FullBacklog, RefusingPort};
pub use peers::{Peer, Peers, accept_until, listen, poke};

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use self::conn::{Conn, TooMuch};
use super::conversation::{self, Kind, Party};
use super::observe::stall::{self, Watch};
use super::observe::{procfs, sockdiag};
use super::show;
use crate::outcome::Failure;

/// Send and receive buffer size of the grader's sockets.
pub const SMALL_BUFFER: usize = 16 * 1024;

/// Time left until `deadline`, at least a millisecond (a zero timeout means
/// "block forever" to the socket API).
pub fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Connects to `addr` with small buffers, failing at `deadline`.
pub fn connect(addr: SocketAddr, deadline: Instant) -> Result<Conn, Failure> {
    try_connect(addr, deadline).map_err(|err| {
        Failure::new(format!("could not connect to {addr}: {err}")).expected(format!(
            "the server accepts connections on {addr}, the address it announced"
        ))
    })
}

/// Connects many clients to one server, one after another, without
/// overflowing its listen queue. A connection that finds the queue full is
/// dropped, and the kernel tries again only a second later: a grader that
/// connects faster than a server with a small backlog (`listen(fd, 5)`)
/// accepts would make a correct server look slow, or fail it.
///
/// The queue holds the backlog plus one. The crowd connects in batches of
/// half that, and before each batch waits, a second at most, until the
/// queue has room for the batch: one look at `/proc` per batch, so a server
/// with a large backlog costs almost nothing. Where the backlog cannot be
/// read, the batches are of one, and there must be room for two. A server
/// that makes no room in that time is not accepting (it serves one client
/// at a time, or is stopped), and from then on the crowd stops waiting.
#[derive(Debug)]
pub struct Crowd {
    addr: SocketAddr,
    /// Connections the listen queue takes before it drops one.
    capacity: u32,
    /// Connections per look at the queue.
    batch: u32,
    /// Connections left before the next look.
    left_in_batch: u32,
    patient: bool,
}

impl Crowd {
    /// A crowd for the server listening at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let backlog = sockdiag::listen_backlog(addr.port()).ok().flatten();
        let (capacity, batch) = match backlog {
            Some(backlog) => {
                let capacity = backlog.saturating_add(1);
                (capacity, capacity.div_ceil(2))
            }
            None => (2, 1),
        };
        Self {
            addr,
            capacity,
            batch,
            left_in_batch: 0,
            patient: true,
        }
    }

    /// [`connect`]s one more client, once the listen queue has room.
    pub fn connect(&mut self, deadline: Instant) -> Result<Conn, Failure> {
        if self.left_in_batch == 0 {
            if self.patient {
                let room_by = (Instant::now() + Duration::from_secs(1)).min(deadline);
                let (port, room) = (self.addr.port(), self.capacity - self.batch);
                self.patient = procfs::watch_until(room_by, || {
                    sockdiag::accept_queue(port)
                        .map_or(true, |queue| queue.is_none_or(|queued| queued <= room))
                });
            }
            self.left_in_batch = self.batch;
        }
        self.left_in_batch -= 1;
        connect(self.addr, deadline)
    }
}

/// [`connect`], with the error left as an `io::Error` for checks that expect
/// failures. The connection, or its failure, goes in the conversation.
pub fn try_connect(addr: SocketAddr, deadline: Instant) -> io::Result<Conn> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_send_buffer_size(SMALL_BUFFER)?;
    socket.set_recv_buffer_size(SMALL_BUFFER)?;
    let began = Instant::now();
    if let Err(err) = socket.connect_timeout(&addr.into(), remaining(deadline)) {
        conversation::record(|c| {
            let how = format!("connecting to {addr} failed: {err}");
            c.signal(Kind::Refused, Party::Grader, Party::Server, None, &how);
        });
        return Err(err);
    }
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(Conn::connected(stream, Party::Server, began))
}

/// How the grader's client sends its payload.
#[derive(Debug, Clone, Copy)]
pub struct SendPlan {
    /// Write in pieces of this many bytes (all at once if `None`).
    pub piece: Option<usize>,
    /// Pause between pieces: part of the scenario, not synchronisation.
    pub pause: Duration,
    /// Half-close (shut down writing) after the last byte.
    pub half_close: bool,
    /// Before each piece after the first, wait until the peer has read
    /// everything sent so far ([`wait_until_read`]): then a program that
    /// reads only once gets one piece, however slow the machine.
    pub wait_until_read: bool,
}

impl SendPlan {
    /// Everything at once, then a half-close.
    pub const ALL_THEN_CLOSE: Self = Self {
        piece: None,
        pause: Duration::ZERO,
        half_close: true,
        wait_until_read: false,
    };
}

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The peer closed its side (read returned 0).
    Eof,
    /// We had read as many bytes as we were waiting for.
    Enough,
    /// The deadline passed.
    Deadline,
    /// The program stopped making progress (see [`stall`]): why.
    Stalled(String),
    /// The connection failed (e.g. reset by the peer).
    Error(String),
    /// The program sent more than the connection's budget (see
    /// [`Conn::expect_at_most`]): the grader stopped reading.
    TooMuch(TooMuch),
}

impl ReadEnd {
    /// Whether the grader gave up waiting: the time limit passed, or the
    /// program stalled.
    pub fn gave_up(&self) -> bool {
        matches!(self, ReadEnd::Deadline | ReadEnd::Stalled(_))
    }
}

/// How reading ended, as a student reads it: `the server closed the
/// connection`, never the variant's name.
impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadEnd::Eof => write!(f, "the server closed the connection"),
            ReadEnd::Enough => write!(f, "more bytes than expected arrived"),
            ReadEnd::Deadline => write!(f, "nothing more arrived before the time limit"),
            ReadEnd::Stalled(why) => write!(f, "nothing more arrived: {why}"),
            ReadEnd::Error(err) => write!(f, "the connection failed: {err}"),
            ReadEnd::TooMuch(too_much) => write!(f, "{too_much}"),
        }
    }
}

/// What came back during an exchange.
#[derive(Debug)]
pub struct Exchange {
    /// Every byte received.
    pub received: Vec<u8>,
    /// Why reading stopped.
    pub end: ReadEnd,
    /// A write that failed, if one did.
    pub write_error: Option<String>,
}

impl Exchange {
    /// A failure unless exactly `expected` came back: shows the first
    /// difference, or what the wait ended on. A program that sent more than
    /// the connection's budget fails with that first, whatever the bytes.
    pub fn expect_bytes(&self, expected: &[u8], what: &str) -> Result<(), Failure> {
        if let ReadEnd::TooMuch(too_much) = &self.end {
            return Err(Failure::new(format!(
                "{what}: {too_much}; the grader stopped reading there"
            ))
            .detail(format!(
                "the first bytes: {}",
                show::bytes(&self.received[..self.received.len().min(48)], 48)
            )));
        }
        let Some(difference) = show::first_difference(expected, &self.received) else {
            return Ok(());
        };
        let ended = format!("then {}", self.end);
        let (got, wanted) = (self.received.len(), expected.len());
        let summary = if got > wanted {
            // "got 24576 of 41 bytes" would read as part of a whole.
            match self.end {
                ReadEnd::Enough => format!("{what}: got {got} bytes where {wanted} were expected"),
                _ => format!("{what}: got {got} bytes where {wanted} were expected, {ended}"),
            }
        } else {
            format!("{what}: got {got} of {wanted} bytes, {ended}")
        };
        let mut failure = Failure::new(summary).detail(difference);
        if let Some(err) = &self.write_error {
            failure = failure.detail(format!("sending to the server failed: {err}"));
        }
        Err(failure)
    }
}

/// Sends `payload` following `plan` while reading the reply on the same
/// connection, until end of stream, `stop_after` bytes, an error or `deadline`
/// (and at most the connection's budget: see [`read_until`]).
pub fn exchange(
    stream: &Conn,
    payload: &[u8],
    plan: SendPlan,
    stop_after: Option<usize>,
    deadline: Instant,
) -> Exchange {
    let writer = stream.try_clone().expect("cloning a socket");
    let payload = payload.to_vec();
    let write_handle = conversation::spawn("grader-writer", move || {
        send(&writer, &payload, plan, deadline)
    })
    .expect("starting the grader's writer thread");
    let (received, end) = read_until(stream, stop_after, deadline);
    // The writer is bounded by the same deadline, so this join is too.
    let write_error = match write_handle.join() {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(_) => Some("the grader's writer thread panicked".into()),
    };
    Exchange {
        received,
        end,
        write_error,
    }
}

/// Writes `payload` as `plan` says, within `deadline`.
pub fn send(stream: &Conn, payload: &[u8], plan: SendPlan, deadline: Instant) -> io::Result<()> {
    let mut stream = stream;
    let piece = plan.piece.unwrap_or(payload.len()).max(1);
    for (index, chunk) in payload.chunks(piece).enumerate() {
        if index > 0 {
            // While the grader takes its time between pieces, the program
            // waits for it: that is no stall. (A write blocked because the
            // program stopped reading is one, so writing is not covered.)
            let _pausing = stall::patient();
            if plan.wait_until_read {
                wait_until_read(stream, deadline);
            }
            if !plan.pause.is_zero() {
                thread::sleep(plan.pause.min(remaining(deadline)));
            }
        }
        write_all_until(&mut stream, chunk, deadline)?;
    }
    if plan.half_close {
        stream.shutdown(Shutdown::Write)?;
    }
    Ok(())
}

/// `write_all` bounded by `deadline` as a whole: a socket timeout bounds
/// each `write` call, and `write_all` may make many of them.
pub fn write_all_until(stream: &mut &Conn, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    let mut watch = Watch::new();
    while !data.is_empty() {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "the peer stopped reading",
            ));
        }
        // A program that stopped reading and sleeps will never make room.
        if let Some(why) = watch.stalled() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("the peer stopped reading: {why}"),
            ));
        }
        stream.set_write_timeout(Some(remaining(deadline).min(stall::SLICE)))?;
        match stream.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                watch.progress();
            }
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Reads until end of stream, `stop_after` bytes, an error or `deadline`.
///
/// The reads are bounded by the connection's budget
/// ([`Conn::expect_at_most`]): waiting for `stop_after` bytes expects that
/// many more, and without it, a program that sends more than the budget
/// ends the wait with [`ReadEnd::TooMuch`].
pub fn read_until(
    stream: &Conn,
    stop_after: Option<usize>,
    deadline: Instant,
) -> (Vec<u8>, ReadEnd) {
    if let Some(wanted) = stop_after {
        stream.expect_more(wanted as u64);
    }
    read_until_done(stream, deadline, |received| {
        stop_after.is_some_and(|wanted| received.len() >= wanted)
    })
}

/// Reads until `done` says the bytes received so far are enough (for a
/// protocol with framing: a whole message has arrived), end of stream, an
/// error, `deadline`, or the connection's budget ([`ReadEnd::TooMuch`]).
pub fn read_until_done(
    stream: &Conn,
    deadline: Instant,
    mut done: impl FnMut(&[u8]) -> bool,
) -> (Vec<u8>, ReadEnd) {
    let mut stream = stream;
    let mut received = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut watch = Watch::new();
    loop {
        if done(&received) {
            return (received, ReadEnd::Enough);
        }
        if Instant::now() >= deadline {
            return (received, ReadEnd::Deadline);
        }
        if let Some(why) = watch.stalled() {
            return (received, ReadEnd::Stalled(why));
        }
        let slice = remaining(deadline).min(stall::SLICE);
        if let Err(err) = stream.set_read_timeout(Some(slice)) {
            return (received, ReadEnd::Error(err.to_string()));
        }
        match stream.read(&mut buffer) {
            Ok(0) => return (received, ReadEnd::Eof),
            Ok(n) => {
                received.extend_from_slice(&buffer[..n]);
                watch.progress();
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(err) => match TooMuch::of(&err) {
                Some(too_much) => return (received, ReadEnd::TooMuch(too_much.clone())),
                None => return (received, ReadEnd::Error(err.to_string())),
            },
        }
    }
}

/// When the last bytes that arrived on `stream` came, as the kernel saw
/// them (`tcpi_last_data_recv` of `TCP_INFO`, in milliseconds): a wait timed
/// from there does not depend on how soon the grader's thread got to run,
/// which a loaded machine delays. `Instant::now()` if the kernel cannot say.
pub fn last_arrival(stream: &TcpStream) -> Instant {
    // SAFETY: tcp_info is plain data that getsockopt fills for our socket.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid socket, and an out-buffer of the size we pass.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut length,
        )
    };
    let now = Instant::now();
    if result != 0 {
        return now;
    }
    now.checked_sub(Duration::from_millis(u64::from(info.tcpi_last_data_recv)))
        .unwrap_or(now)
}

/// Waits until the program at the other end of `stream` (on this machine)
/// has read everything sent to it so far: its socket has received every
/// byte the grader wrote and has none left to read, or it is gone (the
/// program closed it). Gives up quietly at `deadline`, or once the check's
/// programs have stalled or exited (they will read nothing more).
///
/// Checks that send in pieces use it so that each piece is read before the
/// next is sent, whatever the load: with pauses alone, a program that is
/// descheduled for longer than the pauses finds every piece already waiting
/// and a single `read` returns them all, so the bug the check is about
/// passes.
pub fn wait_until_read(stream: &Conn, deadline: Instant) {
    wait_until_all_read(std::slice::from_ref(stream), deadline);
}

/// [`wait_until_read`] for many connections at once.
///
/// Each round asks the kernel about each connection's far end by its
/// addresses ([`sockdiag::tcp_connection`]): a few microseconds, so the
/// rounds start 20 µs apart and the wait ends about as soon as the program
/// has read. Where sock_diag cannot say, `/proc/net/tcp` does, in rounds a
/// millisecond apart, once the grader's bytes are acknowledged too (which
/// the kernel may delay by 40 ms).
pub fn wait_until_all_read(streams: &[Conn], deadline: Instant) {
    let mut pending: Vec<(SocketAddr, SocketAddr, u64)> = streams
        .iter()
        .filter_map(|stream| {
            Some((
                stream.local_addr().ok()?,
                stream.peer_addr().ok()?,
                stream.bytes_written(),
            ))
        })
        .collect();
    let mut pause = Duration::from_micros(20);
    let mut watch = Watch::new();
    while !pending.is_empty() && Instant::now() < deadline && watch.stalled().is_none() {
        let mut unanswered = Vec::new();
        pending.retain(
            |&(ours, theirs, written)| match sockdiag::tcp_connection(theirs, ours) {
                Ok(None) => false,
                Ok(Some(far)) => far.received < written || far.unread > 0,
                Err(_) => {
                    unanswered.push((ours, theirs));
                    true
                }
            },
        );
        if !unanswered.is_empty() && !still_unread_in_proc_net(&mut pending, &unanswered) {
            return;
        }
        if !pending.is_empty() {
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

/// For the connections sock_diag could not look up, whether
/// `/proc/net/tcp` says their far ends have not read everything (our socket
/// has unacknowledged bytes, or theirs unread ones); drops from `pending`
/// those that have. `false` when the table cannot be read.
fn still_unread_in_proc_net(
    pending: &mut Vec<(SocketAddr, SocketAddr, u64)>,
    unanswered: &[(SocketAddr, SocketAddr)],
) -> bool {
    let Ok(sockets) = procfs::tcp_sockets() else {
        return false;
    };
    let queues = |local: SocketAddr, remote: SocketAddr| {
        procfs::Socket::find(
            &sockets,
            &procfs::proc_net_address(local),
            &procfs::proc_net_address(remote),
        )
        .map(|socket| (socket.tx_queue, socket.rx_queue))
    };
    pending.retain(|&(ours, theirs, _)| {
        if !unanswered.contains(&(ours, theirs)) {
            return true;
        }
        // A socket that is gone has nothing more to read.
        match queues(ours, theirs) {
            None => false,
            Some((unacknowledged, _)) => {
                matches!(queues(theirs, ours), Some((_, unread)) if unacknowledged > 0 || unread > 0)
            }
        }
    });
    true
}

/// Reads from `stream` until the other side half-closes (or the stream's
/// timeout ends the wait), and at most the connection's budget
/// ([`Conn::expect_at_most`]): beyond it, an error that
/// [`TooMuch::of`] recognises.
pub fn read_to_eof(stream: &mut Conn) -> io::Result<Vec<u8>> {
    let mut received = Vec::new();
    stream.read_to_end(&mut received)?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::conn::DEFAULT_EXPECTED;
    use super::*;

    /// A plain client connected to a grader's server socket, and the
    /// server's address.
    fn connected() -> (TcpStream, Conn, SocketAddr) {
        let (listener, addr) = listen().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = accept_until(&listener, Instant::now() + Duration::from_secs(5)).unwrap();
        (client, server, addr)
    }

    /// Where sock_diag cannot answer, `/proc/net/tcp` tells a connection
    /// whose far end has not read everything from one whose far end has.
    #[test]
    fn without_sock_diag_the_socket_table_says_what_is_unread() {
        let (mut client, mut server, _) = connected();
        let here = (server.local_addr().unwrap(), server.peer_addr().unwrap());
        server.write_all(b"12345").unwrap();
        let mut pending = vec![(here.0, here.1, 5)];
        assert!(still_unread_in_proc_net(&mut pending, &[here]));
        assert_eq!(pending.len(), 1, "5 bytes wait unread");
        client.read_exact(&mut [0; 5]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pending.is_empty() && Instant::now() < deadline {
            // Until the grader's bytes are acknowledged.
            still_unread_in_proc_net(&mut pending, &[here]);
        }
        assert!(pending.is_empty(), "everything was read");
    }

    #[test]
    fn the_receive_queue_of_a_local_peer_is_seen_and_emptied() {
        let (mut client, mut server, addr) = connected();
        let client_addr = client.local_addr().unwrap();
        server.write_all(b"12345").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let unread = || {
            procfs::tcp_connection(client_addr, addr)
                .unwrap()
                .map(|socket| u64::from(socket.rx_queue))
        };
        while unread() != Some(5) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(unread(), Some(5));
        let mut buf = [0; 5];
        client.read_exact(&mut buf).unwrap();
        wait_until_read(&server, deadline);
        assert_eq!(unread(), Some(0));
        drop(client);
        wait_until_read(&server, Instant::now() + Duration::from_secs(5));
    }

    #[test]
    fn exchange_with_a_local_echo_moves_a_large_payload() {
        let (listener, addr) = listen().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let echo = thread::spawn(move || {
            let (mut stream, _) = accept_until(&listener, deadline).unwrap();
            stream.expect_at_most(2_000_000);
            let mut reader = stream.try_clone().unwrap();
            io::copy(&mut reader, &mut stream).unwrap();
        });
        let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let stream = connect(addr, deadline).unwrap();
        let result = exchange(
            &stream,
            &payload,
            SendPlan::ALL_THEN_CLOSE,
            Some(payload.len()),
            deadline,
        );
        assert!(result.expect_bytes(&payload, "echo").is_ok());
        drop(stream);
        echo.join().unwrap();
    }

    /// A local server that writes `size` bytes (without end if `None`) to
    /// its first client, then closes.
    fn writer(size: Option<usize>) -> (SocketAddr, thread::JoinHandle<()>) {
        let (listener, addr) = listen().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = size.unwrap_or(usize::MAX);
            while left > 0 {
                let piece = left.min(chunk.len());
                if stream.write_all(&chunk[..piece]).is_err() {
                    return;
                }
                left -= piece;
            }
        });
        (addr, handle)
    }

    #[test]
    fn a_flood_ends_the_read_at_the_budget() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (addr, flood) = writer(None);
        let stream = connect(addr, deadline).unwrap();
        stream.expect_at_most(100_000);
        let (received, end) = read_until(&stream, None, deadline);
        let too_much = stream.too_much().expect("over budget");
        assert_eq!(end, ReadEnd::TooMuch(too_much.clone()));
        assert_eq!(received.len() as u64, 100_000 + super::conn::MARGIN);
        assert_eq!(too_much.expected, 100_000);
        assert_eq!(
            too_much.to_string(),
            "the server sent more than 161.7 KiB where at most 97.7 KiB was expected"
        );
        // Every read after it fails the same way, read_to_end included.
        let err = read_to_eof(&mut stream.try_clone().unwrap()).unwrap_err();
        assert_eq!(TooMuch::of(&err), Some(&too_much));
        drop(stream);
        flood.join().unwrap();
    }

    #[test]
    fn an_end_of_stream_right_at_the_budget_is_an_end_of_stream() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let size = DEFAULT_EXPECTED + super::conn::MARGIN;
        let (addr, writer) = writer(Some(size as usize));
        let stream = connect(addr, deadline).unwrap();
        let (received, end) = read_until(&stream, None, deadline);
        assert_eq!((received.len() as u64, end), (size, ReadEnd::Eof));
        writer.join().unwrap();
    }

    #[test]
    fn waiting_for_more_bytes_than_the_default_expects_them() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (addr, writer) = writer(Some(1024 * 1024));
        let stream = connect(addr, deadline).unwrap();
        let (received, end) = read_until(&stream, Some(1024 * 1024), deadline);
        assert_eq!((received.len(), end), (1024 * 1024, ReadEnd::Enough));
        writer.join().unwrap();
    }

    #[test]
    fn a_refusing_port_refuses() {
        let port = RefusingPort::reserve().unwrap();
        let err = try_connect(port.addr, Instant::now() + Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_full_backlog_makes_connect_hang() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let full = FullBacklog::new(deadline).unwrap();
        let started = Instant::now();
        let err = try_connect(full.addr, started + Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    }

    #[test]
    fn accept_gives_up_at_the_deadline() {
        let (listener, _) = listen().unwrap();
        let err = accept_until(&listener, Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    }
}
