//! UDP sockets with deadlines: the grader's own datagram clients and servers.
//!
//! A datagram may never come, so every wait here ends at a deadline and says
//! "nothing came" as a value rather than an error: for UDP, silence is an
//! ordinary outcome that the checks must describe to the student.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::harness::conversation::{self, Conversation, Party};
use crate::harness::net::remaining;
use crate::harness::observe::stall::{self, Watch};

/// The largest datagram the grader expects to receive (the IPv4 UDP limit),
/// so that what arrives is never cut short on the grader's side.
pub const MAX_DATAGRAM: usize = 65_507;

/// The most datagrams from other senders [`recv_from_until`] keeps (it
/// counts no more): enough to say where replies came from, while a program
/// that floods the grader's socket costs it a bounded buffer.
pub const OTHERS_KEPT: usize = 16;

/// The most datagrams [`drain`] takes in one go, and the most bytes: a
/// program that sends faster than the grader drains cannot keep it
/// draining, or its memory growing, for ever.
pub const DRAIN_AT_MOST: (usize, usize) = (1024, 1024 * 1024);

/// One datagram and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Its bytes, exactly as they arrived.
    pub bytes: Vec<u8>,
    /// The sender's address, as `recv_from` reported it.
    pub from: SocketAddr,
    /// When it arrived, as the kernel stamped it (see [`arrival`]).
    pub arrived: Instant,
}

/// When the last datagram `recv_from` returned on `socket` arrived, from the
/// kernel's receive timestamp (`SIOCGSTAMP`): a wait timed from there does
/// not depend on how soon the grader's thread got to run, which a loaded
/// machine delays. `Instant::now()` if the kernel cannot say.
pub fn arrival(socket: &UdpSocket) -> Instant {
    /// `SIOCGSTAMP` (`asm-generic/sockios.h`): the last packet's timestamp.
    const SIOCGSTAMP: libc::c_ulong = 0x8906;
    let mut stamp = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: a valid socket and a timeval for the kernel to fill.
    let result = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            SIOCGSTAMP as _,
            &raw mut stamp,
        )
    };
    let now = Instant::now();
    let wall = std::time::SystemTime::now();
    if result != 0 {
        return now;
    }
    let stamped = std::time::UNIX_EPOCH
        + Duration::from_secs(stamp.tv_sec as u64)
        + Duration::from_micros(stamp.tv_usec as u64);
    let ago = wall.duration_since(stamped).unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

/// Has the kernel stamp each datagram as it arrives (`SO_TIMESTAMP`), for
/// [`arrival`]: without it, the first `SIOCGSTAMP` answers with the time of
/// the call, as late as the grader's thread got to run.
fn stamp_arrivals(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int option of the size we pass.
    let result = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMP,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A UDP socket bound to a free loopback port (127.0.0.1, port 0), for
/// talking to a graded server.
pub fn bind() -> io::Result<Udp> {
    bind_facing(Party::Server)
}

/// A UDP socket bound to a free loopback port, talking to the graded
/// program `theirs`.
pub fn bind_facing(theirs: Party) -> io::Result<Udp> {
    bind_facing_at(Ipv4Addr::LOCALHOST.into(), theirs)
}

/// [`bind_facing`] on the loopback address `ip` (`::1` for IPv6).
pub fn bind_facing_at(ip: IpAddr, theirs: Party) -> io::Result<Udp> {
    let socket = UdpSocket::bind((ip, 0))?;
    stamp_arrivals(&socket)?;
    Ok(Udp {
        socket,
        theirs,
        conversation: conversation::current(),
    })
}

/// The grader's UDP socket, recording every datagram it sends or receives
/// in the check's conversation. It derefs to the `UdpSocket` for the rest.
#[derive(Debug)]
pub struct Udp {
    socket: UdpSocket,
    theirs: Party,
    conversation: Option<Arc<Conversation>>,
}

impl Udp {
    /// Another handle to the same socket, recording into the same
    /// conversation.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            socket: self.socket.try_clone()?,
            theirs: self.theirs,
            conversation: self.conversation.clone(),
        })
    }

    /// `send_to`, recorded.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let sent = self.socket.send_to(data, to)?;
        self.record(
            Party::Grader,
            self.theirs,
            self.socket.local_addr().ok(),
            Some(to),
            data,
        );
        Ok(sent)
    }

    /// `recv_from`, recorded.
    pub fn recv_from(&self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from(buffer)?;
        let to = self.socket.local_addr().ok();
        self.record(self.theirs, Party::Grader, Some(from), to, &buffer[..n]);
        Ok((n, from))
    }

    fn record(
        &self,
        sender: Party,
        receiver: Party,
        from: Option<SocketAddr>,
        to: Option<SocketAddr>,
        data: &[u8],
    ) {
        if let Some(conversation) = &self.conversation {
            let show =
                |addr: Option<SocketAddr>| addr.map_or_else(|| "?".into(), |a| a.to_string());
            let route = format!("{} → {}", show(from), show(to));
            conversation.datagram(sender, receiver, &route, data);
        }
    }
}

impl std::ops::Deref for Udp {
    type Target = UdpSocket;

    fn deref(&self) -> &UdpSocket {
        &self.socket
    }
}

/// Receives the next datagram, or `None` once `deadline` passes first.
/// An error the socket reports (e.g. an ICMP "port unreachable" on a
/// connected socket) is returned as an error.
pub fn recv_until(socket: &Udp, deadline: Instant) -> io::Result<Option<Datagram>> {
    let mut buffer = vec![0; MAX_DATAGRAM];
    let mut watch = Watch::new();
    loop {
        if Instant::now() >= deadline || watch.stalled().is_some() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(remaining(deadline).min(stall::SLICE)))?;
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) => {
                return Ok(Some(Datagram {
                    bytes: buffer[..n].to_vec(),
                    from,
                    arrived: arrival(socket),
                }));
            }
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(err) => return Err(err),
        }
    }
}

/// Receives datagrams until one comes from `from`, or `deadline` passes.
/// Returns that datagram (if any) and the first [`OTHERS_KEPT`] other
/// datagrams that arrived before it, so that a check can tell "nothing
/// came" from "it came from the wrong address".
pub fn recv_from_until(
    socket: &Udp,
    from: SocketAddr,
    deadline: Instant,
) -> io::Result<(Option<Datagram>, Vec<Datagram>)> {
    let mut others = Vec::new();
    while let Some(datagram) = recv_until(socket, deadline)? {
        if datagram.from == from {
            return Ok((Some(datagram), others));
        }
        if others.len() < OTHERS_KEPT {
            others.push(datagram);
        }
    }
    Ok((None, others))
}

/// Every datagram already waiting on `socket`, without waiting for more,
/// and no more than [`DRAIN_AT_MOST`] datagrams or bytes. Errors the socket reports are
/// skipped: only the datagrams matter here.
pub fn drain(socket: &Udp) -> io::Result<Vec<Datagram>> {
    socket.set_nonblocking(true)?;
    let mut buffer = vec![0; MAX_DATAGRAM];
    let mut received = Vec::new();
    let mut errors = 0;
    let mut bytes = 0;
    while received.len() < DRAIN_AT_MOST.0 && bytes < DRAIN_AT_MOST.1 {
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) => {
                bytes += n;
                received.push(Datagram {
                    bytes: buffer[..n].to_vec(),
                    from,
                    arrived: arrival(socket),
                });
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            // Each pending error is reported once; a few in a row is the
            // most a loopback socket can queue, so this loop ends.
            Err(_) if errors < 64 => errors += 1,
            Err(_) => break,
        }
    }
    socket.set_nonblocking(false)?;
    Ok(received)
}

/// Holds a UDP port on which nothing answers and datagrams are refused: the
/// socket is bound there but connected to itself, so the kernel delivers it
/// nothing from anyone else and answers senders with ICMP "port
/// unreachable", exactly as for a port where nothing is bound. Unlike a port
/// that was bound and released, no other program can take it meanwhile.
#[derive(Debug)]
pub struct RefusingUdpPort {
    _socket: Udp,
    /// The address where datagrams are refused.
    pub addr: SocketAddr,
}

impl RefusingUdpPort {
    /// Reserves a refusing UDP port on 127.0.0.1.
    pub fn reserve() -> io::Result<Self> {
        let socket = bind()?;
        let addr = socket.local_addr()?;
        socket.connect(addr)?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }
}

/// A grader-side UDP server for one scenario: the peer a client program
/// talks to. It runs `serve` on its socket in a thread of its own.
#[derive(Debug)]
pub struct UdpPeer<T> {
    /// Where its socket is bound.
    pub addr: SocketAddr,
    result: mpsc::Receiver<io::Result<T>>,
}

impl<T: Send + 'static> UdpPeer<T> {
    /// Binds a free loopback port and runs `serve` with the socket. `serve`
    /// must bound its own waits, e.g. with [`recv_until`] and a deadline.
    pub fn start(serve: impl FnOnce(Udp) -> io::Result<T> + Send + 'static) -> io::Result<Self> {
        Self::start_at(Ipv4Addr::LOCALHOST.into(), serve)
    }

    /// [`UdpPeer::start`] on the loopback address `ip` (`::1` for IPv6).
    pub fn start_at(
        ip: IpAddr,
        serve: impl FnOnce(Udp) -> io::Result<T> + Send + 'static,
    ) -> io::Result<Self> {
        let socket = bind_facing_at(ip, Party::Client)?;
        let addr = socket.local_addr()?;
        let (sender, result) = mpsc::channel();
        conversation::spawn("grader-udp-peer", move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| serve(socket)))
                .unwrap_or_else(|_| Err(io::Error::other("the grader's UDP peer panicked")));
            let _ = sender.send(outcome);
        })?;
        Ok(Self { addr, result })
    }

    /// What the peer's scenario found, once it has ended, or `None` if it is
    /// still going at `deadline` (it then ends at its own deadline, unseen).
    /// A client program that has exited leaves its peer nothing more to
    /// wait for, so a short deadline here is enough.
    pub fn outcome_until(&self, deadline: Instant) -> Option<io::Result<T>> {
        self.result.recv_timeout(remaining(deadline)).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn datagrams_keep_their_bytes_and_sender() {
        let (a, b) = (bind().unwrap(), bind().unwrap());
        a.send_to(b"", b.local_addr().unwrap()).unwrap();
        a.send_to(b"\xff two", b.local_addr().unwrap()).unwrap();
        let first = recv_until(&b, soon()).unwrap().unwrap();
        assert_eq!(first.bytes, b"");
        assert_eq!(first.from, a.local_addr().unwrap());
        let second = recv_until(&b, soon()).unwrap().unwrap();
        assert_eq!(second.bytes, b"\xff two");
    }

    #[test]
    fn silence_ends_at_the_deadline() {
        let socket = bind().unwrap();
        let started = Instant::now();
        let got = recv_until(&socket, Instant::now() + Duration::from_millis(50)).unwrap();
        assert!(got.is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn datagrams_from_others_are_set_aside() {
        let (me, friend, stranger) = (bind().unwrap(), bind().unwrap(), bind().unwrap());
        let to = me.local_addr().unwrap();
        stranger.send_to(b"stranger", to).unwrap();
        friend.send_to(b"friend", to).unwrap();
        let (found, others) = recv_from_until(&me, friend.local_addr().unwrap(), soon()).unwrap();
        assert_eq!(found.unwrap().bytes, b"friend");
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].bytes, b"stranger");
        assert!(drain(&me).unwrap().is_empty());
    }

    #[test]
    fn a_crowd_of_strangers_is_kept_only_in_part() {
        let (me, friend, stranger) = (bind().unwrap(), bind().unwrap(), bind().unwrap());
        let to = me.local_addr().unwrap();
        for _ in 0..OTHERS_KEPT * 2 {
            stranger.send_to(b"stranger", to).unwrap();
        }
        friend.send_to(b"friend", to).unwrap();
        let (found, others) = recv_from_until(&me, friend.local_addr().unwrap(), soon()).unwrap();
        assert_eq!(found.unwrap().bytes, b"friend");
        assert_eq!(others.len(), OTHERS_KEPT);
    }

    #[test]
    fn a_refusing_udp_port_refuses_and_stays_taken() {
        let port = RefusingUdpPort::reserve().unwrap();
        let client = bind().unwrap();
        client.connect(port.addr).unwrap();
        client.send(b"anyone?").unwrap();
        let err = recv_until(&client, soon()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert!(UdpSocket::bind(port.addr).is_err());
    }

    #[test]
    fn a_peer_serves_its_scenario() {
        let peer = UdpPeer::start(|socket| {
            let request = recv_until(&socket, soon())?.expect("a request");
            socket.send_to(b"reply", request.from)?;
            Ok(request.bytes)
        })
        .unwrap();
        let client = bind().unwrap();
        client.send_to(b"request", peer.addr).unwrap();
        let (reply, _) = recv_from_until(&client, peer.addr, soon()).unwrap();
        assert_eq!(reply.unwrap().bytes, b"reply");
        assert_eq!(peer.outcome_until(soon()).unwrap().unwrap(), b"request");
    }
}
