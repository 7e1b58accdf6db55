//! Faulty places to connect to, for the checks of a client's errors: a
//! port that refuses ([`RefusingPort`]) and a listener whose accept queue
//! is full ([`FullBacklog`]).

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::conn::Conn;
use super::try_connect;
use crate::harness::observe::sockdiag;

/// Holds a port on which connections are refused: a bound socket that does
/// not listen. Nothing else can take the port while it is held, so a check
/// never races another for it.
#[derive(Debug)]
pub struct RefusingPort {
    _socket: Socket,
    /// The address that refuses connections.
    pub addr: SocketAddr,
}

impl RefusingPort {
    /// Reserves a refusing port on 127.0.0.1.
    pub fn reserve() -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no inet address"))?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }
}

/// A loopback listener whose accept queue is full and which never accepts:
/// the kernel drops new connection requests to it, so a `connect` there
/// hangs until its own timeout. It makes a connect timeout happen on
/// loopback, without sending anything to an outside address.
#[derive(Debug)]
pub struct FullBacklog {
    _listener: Socket,
    _queued: Vec<Conn>,
    /// The address where connecting hangs.
    pub addr: SocketAddr,
}

impl FullBacklog {
    /// Listens with a backlog of 0 and connects to itself until the kernel
    /// reports the queue full (`/proc/net/tcp`: more connections waiting
    /// than the backlog) or a connection attempt hangs, before `deadline`.
    pub fn new(deadline: Instant) -> io::Result<Self> {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        listener.listen(0)?;
        let addr = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound socket has no inet address"))?;
        let mut queued = Vec::new();
        while !Self::is_full(addr.port())? {
            if queued.len() >= 8 {
                return Err(io::Error::other(
                    "the accept queue did not fill up after 8 connections",
                ));
            }
            // Each connect is bounded: once the queue is full the kernel
            // drops our own connection request too, which also proves it.
            let step = (Instant::now() + Duration::from_millis(500)).min(deadline);
            match try_connect(addr, step) {
                Ok(stream) => queued.push(stream),
                Err(err) if err.kind() == ErrorKind::TimedOut => break,
                Err(err) => return Err(err),
            }
        }
        Ok(Self {
            _listener: listener,
            _queued: queued,
            addr,
        })
    }

    fn is_full(port: u16) -> io::Result<bool> {
        // Full once more connections wait than the backlog of 0.
        Ok(sockdiag::accept_queue(port)?.is_some_and(|queued| queued > 0))
    }
}
