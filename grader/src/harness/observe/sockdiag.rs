//! What `/proc/net/tcp` does not show, or shows only in a walk of the whole
//! table, from the kernel's sock_diag netlink interface, for the calling
//! thread's network namespace (Linux only):
//!
//! - a listening socket's backlog (the Send-Q that `ss -lnt` prints) and
//!   how many connections wait in its accept queue ([`listener`]);
//! - how many bytes one connection's socket has received in all, and how
//!   many of them its program has not read yet ([`tcp_connection`]). That
//!   one is a lookup of one socket by its addresses: it walks no table,
//!   and costs a few microseconds where reading `/proc/net/tcp` costs
//!   hundreds, so a check can ask after every byte it sends.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::procfs;

/// `SOCK_DIAG_BY_FAMILY` of `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` in the kernel's numbering of TCP states.
const TCP_LISTEN: u32 = 10;
/// The size of `struct nlmsghdr`.
const HEADER: usize = 16;
/// The size of `struct inet_diag_sockid`: ports and addresses in network
/// byte order, the interface, the cookie.
const SOCK_ID: usize = 48;
/// The size of `struct inet_diag_msg`, the start of each reply.
const REPLY: usize = 4 + SOCK_ID + 5 * 4;
/// Where `idiag_rqueue` sits in a reply: bytes not read yet; for a
/// listener, the connections in its accept queue.
const READ_QUEUE: usize = 4 + SOCK_ID + 4;
/// Where `idiag_wqueue` sits in a reply: bytes not acknowledged yet; for a
/// listener, its backlog.
const WRITE_QUEUE: usize = 4 + SOCK_ID + 2 * 4;

/// A listening TCP socket, as its kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Connections the handshake completed that no `accept` took yet.
    pub queued: u32,
    /// The most connections the accept queue holds (what `listen` asked
    /// for, capped by `net.core.somaxconn`).
    pub backlog: u32,
}

/// The TCP listener on `port` (IPv4 or IPv6), or `None` when nothing
/// listens there. It asks for the namespace's listeners only, so a check
/// can ask after each of its clients however many connections are open.
pub fn listener(port: u16) -> io::Result<Option<Listener>> {
    for family in [libc::AF_INET, libc::AF_INET6] {
        let family = u8::try_from(family).map_err(io::Error::other)?;
        if let Some(listener) = query(family, port)? {
            return Ok(Some(listener));
        }
    }
    Ok(None)
}

/// The backlog of the TCP listener on `port`, or `None` when nothing
/// listens there.
pub fn listen_backlog(port: u16) -> io::Result<Option<u32>> {
    Ok(listener(port)?.map(|listener| listener.backlog))
}

/// How many connections wait in the accept queue of the TCP listener on
/// `port`; `None` when nothing listens there.
pub fn accept_queue(port: u16) -> io::Result<Option<u32>> {
    Ok(listener(port)?.map(|listener| listener.queued))
}

/// A netlink header and `struct inet_diag_req_v2` asking for every socket
/// of `protocol` and `family` in `states` (a mask of states) bound to
/// `port` (0: any port), in the kernel's (native) byte order. The kernel
/// skips the sockets on other ports itself: no table is walked in full.
fn request(protocol: u8, family: u8, states: u32, port: u16) -> Vec<u8> {
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let mut bytes = request_start(flags, family, 0, states);
    bytes[HEADER + 1] = protocol;
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes.resize(HEADER + 8 + SOCK_ID, 0); // any remote end, any interface
    bytes
}

/// The netlink header and `struct inet_diag_req_v2` up to its socket id:
/// TCP sockets of `family` in `states` (a mask of TCP states), with the
/// attributes `extensions` asks for.
fn request_start(flags: u16, family: u8, extensions: u8, states: u32) -> Vec<u8> {
    let length = HEADER + 8 + SOCK_ID;
    let mut bytes = Vec::with_capacity(length);
    bytes.extend_from_slice(&(length as u32).to_ne_bytes());
    bytes.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    bytes.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, extensions, 0]);
    bytes.extend_from_slice(&states.to_ne_bytes());
    bytes
}

/// A socket to ask the kernel's sock_diag with, in the calling thread's
/// network namespace.
fn diag_socket() -> io::Result<Socket> {
    Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
    )
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// Asks for the TCP listener of `family` on `port`.
fn query(family: u8, port: u16) -> io::Result<Option<Listener>> {
    let mut found = None;
    dump(
        &request(libc::IPPROTO_TCP as u8, family, 1 << TCP_LISTEN, port),
        |reply| {
            if u16::from_be_bytes([reply[4], reply[5]]) == port {
                found = Some(Listener {
                    queued: u32_at(reply, READ_QUEUE),
                    backlog: u32_at(reply, WRITE_QUEUE),
                });
            }
        },
    )?;
    Ok(found)
}

/// The inodes of the sockets bound to `port` that take connections or
/// datagrams there: TCP listeners and UDP sockets, IPv4 and IPv6. The
/// kernel picks them out (where reading `/proc/net` prints every socket of
/// the namespace, a few thousand in a grade with many connections).
pub fn bound_to(port: u16) -> io::Result<Vec<u64>> {
    let mut inodes = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        for (protocol, states) in [
            (libc::IPPROTO_TCP, 1 << TCP_LISTEN),
            (libc::IPPROTO_UDP, u32::MAX),
        ] {
            let request = request(protocol as u8, family as u8, states, port);
            dump(&request, |reply| {
                if u16::from_be_bytes([reply[4], reply[5]]) == port {
                    inodes.push(u64::from(u32_at(reply, INODE)));
                }
            })?;
        }
    }
    Ok(inodes)
}

/// Sends a dump `request` and hands each reply (a `struct inet_diag_msg`
/// and its attributes) to `visit`.
fn dump(request: &[u8], mut visit: impl FnMut(&[u8])) -> io::Result<()> {
    let mut socket = diag_socket()?;
    socket.send(request)?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let received = socket.read(&mut buffer)?;
        let mut rest = &buffer[..received];
        while rest.len() >= HEADER {
            let length = u32_at(rest, 0) as usize;
            if length < HEADER || length > rest.len() {
                return Err(io::Error::other("a malformed sock_diag reply"));
            }
            match i32::from(u16::from_ne_bytes([rest[4], rest[5]])) {
                libc::NLMSG_DONE => return Ok(()),
                libc::NLMSG_ERROR => return Err(io::Error::other("sock_diag refused the request")),
                _ => {}
            }
            let reply = &rest[HEADER..length];
            if reply.len() >= REPLY {
                visit(reply);
            }
            // Netlink messages are padded to 4 bytes.
            rest = &rest[length.next_multiple_of(4).min(rest.len())..];
        }
        if received == 0 {
            return Ok(());
        }
    }
}

/// `INET_DIAG_INFO`: the attribute that holds a socket's `struct tcp_info`.
const INET_DIAG_INFO: u16 = 2;
/// `INET_DIAG_NOCOOKIE`: look the socket up by its addresses alone.
const NO_COOKIE: u32 = u32::MAX;
/// Where `idiag_inode` sits in a reply: 0 once no program holds the socket.
const INODE: usize = 4 + SOCK_ID + 4 * 4;
/// Where `tcpi_bytes_received` sits in `struct tcp_info` (Linux 4.1 on).
const BYTES_RECEIVED: usize = 128;

/// One end of a TCP connection, as its kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Bytes that arrived on it, in order, since it was opened.
    pub received: u64,
    /// Bytes that arrived and its program has not read yet.
    pub unread: u32,
}

/// One TCP socket as the lookup of [`lookup`] found it.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// The kernel's TCP state (`TIME_WAIT` for a closed connection's trace).
    state: u8,
    /// `idiag_rqueue`: bytes not read yet.
    unread: u32,
    /// `idiag_wqueue`: bytes sent and not acknowledged yet.
    unacknowledged: u32,
    /// 0 once no program holds the socket.
    inode: u32,
    /// `tcpi_bytes_received`; `None` for a socket without `tcp_info`
    /// (`TIME_WAIT`).
    received: Option<u64>,
}

/// The socket at `local` of the TCP connection to `remote`: `None` when no
/// such connection is open any more (gone, or its `TIME_WAIT`).
///
/// Whether a program holds it does not enter into it: a connection in the
/// listen queue, not accepted yet, belongs to no program either, and its
/// bytes are still to be read (taking it for closed once let a check send
/// its next piece before the server had even accepted the first).
pub fn tcp_connection(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Connection>> {
    Ok(lookup(local, remote)?.and_then(|found| {
        Some(Connection {
            received: found.received?,
            unread: found.unread,
        })
    }))
}

/// The socket at `local` of the TCP connection to `remote` as `/proc/net/tcp`
/// lists it (closed connections' `TIME_WAIT`s included), looked up rather
/// than found in the whole table.
pub fn tcp_socket(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<procfs::Socket>> {
    Ok(lookup(local, remote)?.map(|found| procfs::Socket {
        table: match local {
            SocketAddr::V4(_) => procfs::Table::Tcp,
            SocketAddr::V6(_) => procfs::Table::Tcp6,
        },
        local_address: procfs::proc_net_address(local),
        remote_address: procfs::proc_net_address(remote),
        local_port: local.port(),
        state: found.state,
        tx_queue: found.unacknowledged,
        rx_queue: found.unread,
        inode: u64::from(found.inode),
    }))
}

/// Whether the kernel answers sock_diag requests about TCP. Without its
/// `tcp_diag` handler (a module a container may not be able to load), a
/// lookup fails as a socket that does not exist would (`ENOENT`), so it is
/// asked once, with a request that always has an answer: the listeners.
fn answers() -> bool {
    static ANSWERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWERS.get_or_init(|| query(libc::AF_INET as u8, 0).is_ok())
}

/// Looks up the one TCP socket at `local` connected to `remote`.
fn lookup(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Found>> {
    if !answers() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel does not answer sock_diag requests about TCP",
        ));
    }
    let family = match local.ip() {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let socket = diag_socket()?;
    socket.send(&lookup_request(family as u8, local, remote))?;
    let mut buffer = [0u8; 1024];
    let received = (&socket).read(&mut buffer)?;
    let reply = &buffer[..received];
    if reply.len() < HEADER {
        return Err(io::Error::other("a truncated sock_diag reply"));
    }
    if i32::from(u16::from_ne_bytes([reply[4], reply[5]])) == libc::NLMSG_ERROR {
        // ENOENT: no socket has these addresses.
        return Ok(None);
    }
    let length = (u32_at(reply, 0) as usize).min(reply.len());
    let message = &reply[HEADER..length];
    if message.len() < REPLY {
        return Err(io::Error::other("a truncated sock_diag reply"));
    }
    // The lookup falls back to a listener on the port once the connection
    // is gone.
    let state = message[1];
    let port = u16::from_be_bytes([message[6], message[7]]);
    if u32::from(state) == TCP_LISTEN || port != remote.port() {
        return Ok(None);
    }
    let mut found = Found {
        state,
        unread: u32_at(message, READ_QUEUE),
        unacknowledged: u32_at(message, WRITE_QUEUE),
        inode: u32_at(message, INODE),
        received: None,
    };
    let mut attributes = &message[REPLY..];
    while attributes.len() >= 4 {
        let size = usize::from(u16::from_ne_bytes([attributes[0], attributes[1]]));
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]);
        if size < 4 || size > attributes.len() {
            break;
        }
        let payload = &attributes[4..size];
        if kind == INET_DIAG_INFO && payload.len() >= BYTES_RECEIVED + 8 {
            let bytes: [u8; 8] = payload[BYTES_RECEIVED..BYTES_RECEIVED + 8]
                .try_into()
                .expect("eight bytes");
            found.received = Some(u64::from_ne_bytes(bytes));
        }
        attributes = &attributes[size.next_multiple_of(4).min(attributes.len())..];
    }
    Ok(Some(found))
}

/// A netlink header and `struct inet_diag_req_v2` asking for the one TCP
/// socket at `local` connected to `remote`, with its `tcp_info`.
fn lookup_request(family: u8, local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let extensions = 1u8 << (INET_DIAG_INFO - 1);
    let mut bytes = request_start(libc::NLM_F_REQUEST as u16, family, extensions, u32::MAX);
    bytes.extend_from_slice(&local.port().to_be_bytes());
    bytes.extend_from_slice(&remote.port().to_be_bytes());
    for address in [local.ip(), remote.ip()] {
        let mut field = [0u8; 16];
        match address {
            IpAddr::V4(v4) => field[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => field.copy_from_slice(&v6.octets()),
        }
        bytes.extend_from_slice(&field);
    }
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    bytes.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    bytes.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    debug_assert_eq!(bytes.len(), HEADER + 8 + SOCK_ID);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::{TcpListener, TcpStream};

    /// An open connection that received `received` bytes, `unread` of them
    /// not read yet.
    fn open_with(received: u64, unread: u32) -> Option<Connection> {
        Some(Connection { received, unread })
    }

    /// Waits (at most 5 s) until the connection `look` finds has received
    /// `bytes`.
    fn until_received(look: &dyn Fn() -> Option<Connection>, bytes: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while look().is_some_and(|c| c.received < bytes) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// What arrives and what is read, at the receiving end, and nothing
    /// once the connection is closed; IPv4 and IPv6.
    #[test]
    fn a_connections_received_and_unread_bytes_are_read() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = TcpListener::bind(host) else {
                continue; // no IPv6 here
            };
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            let (at_server, at_client) =
                (server.local_addr().unwrap(), client.local_addr().unwrap());
            let look = || tcp_connection(at_server, at_client).expect("sock_diag");
            assert_eq!(look(), open_with(0, 0), "{host}");
            client.write_all(b"12345").unwrap();
            until_received(&look, 5);
            assert_eq!(look(), open_with(5, 5), "{host}");
            let mut three = [0; 3];
            server.read_exact(&mut three).unwrap();
            assert_eq!(look(), open_with(5, 2), "{host}");
            drop(server);
            assert_eq!(look(), None, "{host}");
        }
    }

    /// A connection still in the listen queue is not closed: what arrived
    /// on it waits unread until a program accepts and reads it.
    #[test]
    fn a_connection_not_yet_accepted_has_its_bytes_unread() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"12345").unwrap();
        let (at_server, at_client) = (listener.local_addr().unwrap(), client.local_addr().unwrap());
        let look = || tcp_connection(at_server, at_client).expect("sock_diag");
        until_received(&look, 5);
        assert_eq!(look(), open_with(5, 5));
        let (mut server, _) = listener.accept().unwrap();
        server.read_exact(&mut [0; 5]).unwrap();
        assert_eq!(look(), open_with(5, 0));
    }

    /// The same row as `/proc/net/tcp` has, for an open connection and for
    /// the `TIME_WAIT` a closed one leaves.
    #[test]
    fn a_looked_up_socket_is_the_row_of_proc_net_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (at_server, at_client) = (server.local_addr().unwrap(), client.local_addr().unwrap());
        client.write_all(b"abc").unwrap();
        let row = |local, remote| {
            let want = (
                procfs::proc_net_address(local),
                procfs::proc_net_address(remote),
            );
            procfs::tcp_sockets().unwrap().into_iter().find(|socket| {
                (socket.local_address.clone(), socket.remote_address.clone()) == want
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while row(at_server, at_client).is_some_and(|socket| socket.rx_queue < 3)
            && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        assert_eq!(
            tcp_socket(at_server, at_client).unwrap(),
            row(at_server, at_client)
        );
        // The side that closes first keeps the TIME_WAIT (unread bytes
        // would make the other side's close a reset, which ends it).
        let mut server = server;
        server.read_exact(&mut [0; 3]).unwrap();
        drop(client);
        drop(server);
        while row(at_client, at_server)
            .is_some_and(|socket| socket.state != procfs::Socket::TIME_WAIT)
            && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        let looked_up = tcp_socket(at_client, at_server).unwrap();
        assert_eq!(
            looked_up.as_ref().map(|socket| socket.state),
            Some(procfs::Socket::TIME_WAIT)
        );
        assert_eq!(looked_up, row(at_client, at_server));
    }

    #[test]
    fn a_listeners_backlog_is_read() {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind");
        socket.listen(7).expect("listen");
        let port = socket
            .local_addr()
            .expect("bound")
            .as_socket()
            .expect("inet")
            .port();
        assert_eq!(listen_backlog(port).expect("sock_diag"), Some(7));
    }

    #[test]
    fn a_listeners_accept_queue_is_what_proc_net_tcp_shows() {
        let listener = std::net::TcpListener::bind("[::1]:0").expect("bind");
        let addr = listener.local_addr().expect("bound");
        let from_proc = || {
            procfs::tcp_sockets()
                .unwrap()
                .into_iter()
                .find(|socket| {
                    socket.local_port == addr.port() && socket.state == procfs::Socket::LISTEN
                })
                .map(|socket| socket.rx_queue)
        };
        assert_eq!(accept_queue(addr.port()).unwrap(), Some(0));
        let waiting: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        // The handshake completes in the kernel before `connect` returns.
        assert_eq!(accept_queue(addr.port()).unwrap(), Some(3));
        assert_eq!(accept_queue(addr.port()).unwrap(), from_proc());
        let _taken = listener.accept().expect("accept");
        assert_eq!(accept_queue(addr.port()).unwrap(), Some(2));
        drop(waiting);
    }

    #[test]
    fn no_listener_no_backlog() {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            socket.local_addr().expect("bound").port()
        };
        assert_eq!(listen_backlog(port).expect("sock_diag"), None);
    }
}
