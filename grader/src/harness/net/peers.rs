//! The grader's own servers: the peers a client program talks to ([`Peer`],
//! [`Peers`]), the listener they use, and the pokes that wake a peer whose
//! client has exited.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::conn::Conn;
use super::remaining;
use crate::harness::conversation::{self, Party};
use crate::harness::observe::stall::{self, Watch};
use crate::sync::Unpoison;

/// A loopback listener for the grader's own servers (the peers that client
/// programs talk to).
pub fn listen() -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Wakes up a grader peer still waiting for its client, once the client
/// has exited: a client that never connected must not make the check wait
/// for the peer's deadline. (If the client was served, this connection just
/// goes unanswered.) Keep the returned [`Poke`] until the peer has ended.
pub fn poke(addr: SocketAddr) -> Poke {
    let Ok(socket) = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
    else {
        return Poke(None);
    };
    let local = match addr {
        SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
    };
    let Some(from) = socket
        .bind(&local.into())
        .and_then(|()| socket.local_addr())
        .ok()
        .and_then(|bound| bound.as_socket())
    else {
        return Poke(None);
    };
    // The peer accepts it as the grader's own, not as the client's.
    let key = (from, addr);
    pokes().push(key);
    conversation::record(|c| c.note("wakes its own server: the client has exited"));
    let _ = socket.connect_timeout(&addr.into(), Duration::from_secs(1));
    Poke(Some(key))
}

/// A [`poke`] that a peer may still accept. Dropped once the peer has
/// ended, it forgets the poke: a peer that had already served its client
/// never accepts it, and the kernel may later give its port to a graded
/// program connecting to another check's peer, which must not take that
/// program for the grader.
#[derive(Debug)]
pub struct Poke(Option<(SocketAddr, SocketAddr)>);

impl Drop for Poke {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            pokes().retain(|poke| *poke != key);
        }
    }
}

/// The grader's [`poke`]s not yet accepted: where each comes from, and the
/// peer it wakes.
static POKES: std::sync::Mutex<Vec<(SocketAddr, SocketAddr)>> = std::sync::Mutex::new(Vec::new());

fn pokes() -> std::sync::MutexGuard<'static, Vec<(SocketAddr, SocketAddr)>> {
    POKES.lock().unpoison()
}

/// Accepts one connection, waiting no later than `deadline`.
pub fn accept_until(listener: &TcpListener, deadline: Instant) -> io::Result<(Conn, SocketAddr)> {
    let mut watch = Watch::new();
    loop {
        if let Some(why) = watch.stalled() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("no client connected: {why}"),
            ));
        }
        let mut pollfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let slice = remaining(deadline).min(stall::SLICE);
        let millis = i32::try_from(slice.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for a descriptor we own.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready > 0 {
            let (stream, peer) = listener.accept()?;
            stream.set_nonblocking(false)?;
            let poked = {
                let key = (peer, listener.local_addr()?);
                let mut pokes = pokes();
                let found = pokes.iter().position(|poke| *poke == key);
                found.map(|index| pokes.swap_remove(index)).is_some()
            };
            let conn = if poked {
                Conn::unrecorded(stream)
            } else {
                Conn::accepted(stream, Party::Client)
            };
            return Ok((conn, peer));
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "no client connected in time",
            ));
        }
    }
}

/// A grader-side server for one client: the peer a client program talks to.
#[derive(Debug)]
pub struct Peer<T> {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: thread::JoinHandle<io::Result<T>>,
}

impl<T: Send + 'static> Peer<T> {
    /// Listens on a free loopback port and serves the first client with
    /// `serve` in a thread of its own; gives up at `deadline`.
    pub fn serve_one(
        deadline: Instant,
        serve: impl FnOnce(Conn) -> io::Result<T> + Send + 'static,
    ) -> io::Result<Self> {
        let (listener, addr) = listen()?;
        let handle = conversation::spawn("grader-peer", move || {
            let (stream, _) = accept_until(&listener, deadline)?;
            stream.set_read_timeout(Some(remaining(deadline)))?;
            stream.set_write_timeout(Some(remaining(deadline)))?;
            serve(stream)
        })?;
        Ok(Self { addr, handle })
    }

    /// Waits for the peer to finish, once its client has exited. A peer
    /// still waiting for a client that never connected is woken with a
    /// [`poke`] first: the check must not wait for the peer's deadline.
    pub fn join(self) -> io::Result<T> {
        let _poke = poke(self.addr);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the grader's peer panicked")))
    }
}

/// A grader-side server for up to `count` clients at once, each served in a
/// thread of its own: the peer a client program that opens many connections
/// talks to.
#[derive(Debug)]
pub struct Peers<T> {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    results: mpsc::Receiver<(usize, io::Result<T>)>,
}

impl<T: Send + 'static> Peers<T> {
    /// Listens on a free loopback port, accepts up to `count` clients until
    /// `deadline`, and serves each with `serve(stream, index)` (index = order
    /// of acceptance, from 0) in a thread of its own, bounded by `deadline`.
    pub fn serve_many(
        deadline: Instant,
        count: usize,
        serve: impl Fn(Conn, usize) -> io::Result<T> + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let (listener, addr) = listen()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let (sender, results) = mpsc::channel();
        let serve = Arc::new(serve);
        let counter = Arc::clone(&accepted);
        conversation::spawn("grader-peers", move || {
            for index in 0..count {
                let Ok((stream, _)) = accept_until(&listener, deadline) else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let serve = Arc::clone(&serve);
                let sender = sender.clone();
                let _ = conversation::spawn("grader-peer", move || {
                    let result = stream
                        .set_read_timeout(Some(remaining(deadline)))
                        .and_then(|()| stream.set_write_timeout(Some(remaining(deadline))))
                        .and_then(|()| serve(stream, index));
                    let _ = sender.send((index, result));
                });
            }
        })?;
        Ok(Self {
            addr,
            accepted,
            results,
        })
    }

    /// How many clients it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The results of the connections served so far, waiting until all
    /// accepted connections are done or `deadline` passes; in accept order.
    pub fn results(&self, deadline: Instant) -> Vec<(usize, io::Result<T>)> {
        let mut done = Vec::new();
        while done.len() < self.accepted() {
            match self.results.recv_timeout(remaining(deadline)) {
                Ok(result) => done.push(result),
                Err(_) => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        while let Ok(result) = self.results.try_recv() {
            done.push(result);
        }
        done.sort_by_key(|(index, _)| *index);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client program that exits without connecting leaves the peer
    /// waiting for it: `join` must end that wait, not the deadline (an
    /// hour here: a regression hangs the test rather than passing it).
    #[test]
    fn joining_a_peer_whose_client_never_came_does_not_wait_for_its_deadline() {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let peer = Peer::serve_one(deadline, |conn| Ok(conn.is_poke())).expect("a peer");
        assert!(
            peer.join().expect("the peer's result"),
            "the peer saw a client"
        );
    }

    /// A peer that served its client never accepts the poke of its join:
    /// the poke is forgotten once the peer has ended, or a graded program
    /// given the poke's port later would be taken for the grader.
    #[test]
    fn a_poke_no_peer_accepted_is_forgotten_once_the_peer_has_ended() {
        let deadline = Instant::now() + Duration::from_secs(3600);
        let peer = Peer::serve_one(deadline, |conn| Ok(conn.is_poke())).expect("a peer");
        let addr = peer.addr;
        let client = std::net::TcpStream::connect(addr).expect("the client connects");
        assert!(
            !peer.join().expect("the peer's result"),
            "the client was taken for a poke"
        );
        drop(client);
        assert!(
            pokes().iter().all(|(_, to)| *to != addr),
            "the poke is still listed"
        );
    }
}
