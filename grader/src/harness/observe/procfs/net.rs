//! The socket tables of `/proc/net` (`tcp`, `tcp6`, `udp`, `udp6`), as
//! typed rows, and the TCP buffer sizes of `/proc/sys/net`.

use std::io;
use std::net::SocketAddr;

/// A socket table of `/proc/net` (the calling thread's namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `tcp`
    Tcp,
    /// `tcp6`
    Tcp6,
    /// `udp`
    Udp,
    /// `udp6`
    Udp6,
}

impl Table {
    /// The TCP tables.
    pub const TCP: &[Table] = &[Table::Tcp, Table::Tcp6];
    /// Every table.
    pub const ALL: &[Table] = &[Table::Tcp, Table::Tcp6, Table::Udp, Table::Udp6];

    fn file(self) -> &'static str {
        match self {
            Table::Tcp => "tcp",
            Table::Tcp6 => "tcp6",
            Table::Udp => "udp",
            Table::Udp6 => "udp6",
        }
    }
}

/// One socket of the machine, as a table of `/proc/net` lists it. Its
/// fields are those that change only when something happens (the timer
/// fields, which tick by themselves, are left out), so two equal rows mean
/// that nothing happened on the socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Socket {
    /// The table it is listed in.
    pub table: Table,
    /// Its local address as the table prints it (see [`proc_net_address`]).
    pub local_address: String,
    /// Its remote address, likewise (zeros for a listening socket).
    pub remote_address: String,
    /// Its local port.
    pub local_port: u16,
    /// Its state (the kernel's numbering: see [`Socket::TIME_WAIT`]).
    pub state: u8,
    /// Bytes sent and not yet acknowledged (for UDP, waiting to be sent);
    /// 0 for a listening socket, whose backlog this table does not show
    /// (see [`crate::harness::observe::sockdiag`]).
    pub tx_queue: u32,
    /// Bytes that arrived and the owning program has not read yet; for a
    /// listening socket, how many connections wait to be accepted.
    pub rx_queue: u32,
    /// Its inode, as `/proc/PID/fd` links name it (`socket:[INODE]`).
    pub inode: u64,
}

impl Socket {
    /// `TCP_ESTABLISHED` in the kernel's numbering.
    pub const ESTABLISHED: u8 = 0x01;
    /// `TCP_LISTEN` in the kernel's numbering.
    pub const LISTEN: u8 = 0x0A;
    /// `TCP_CLOSE_WAIT` in the kernel's numbering: the peer closed its side.
    pub const CLOSE_WAIT: u8 = 0x08;
    /// `TCP_TIME_WAIT` in the kernel's numbering.
    pub const TIME_WAIT: u8 = 0x06;

    /// Parses a row `sl local_address rem_address st tx_queue:rx_queue …
    /// inode …` of `table`, where numbers are hexadecimal (but the inode)
    /// and an address is `ADDR:PORT`.
    pub fn parse(table: Table, line: &str) -> Option<Socket> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (_, port) = fields.get(1)?.rsplit_once(':')?;
        let (tx_queue, rx_queue) = fields.get(4)?.split_once(':')?;
        Some(Socket {
            table,
            local_address: (*fields.get(1)?).to_owned(),
            remote_address: (*fields.get(2)?).to_owned(),
            local_port: u16::from_str_radix(port, 16).ok()?,
            state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
            tx_queue: u32::from_str_radix(tx_queue, 16).ok()?,
            rx_queue: u32::from_str_radix(rx_queue, 16).ok()?,
            inode: fields.get(9)?.parse().ok()?,
        })
    }

    /// The TCP connection among `sockets` from `remote` to `local` (both as
    /// [`proc_net_address`] prints them).
    pub fn find<'a>(sockets: &'a [Socket], local: &str, remote: &str) -> Option<&'a Socket> {
        sockets
            .iter()
            .find(|socket| socket.local_address == local && socket.remote_address == remote)
    }
}

/// Every socket of `tables` in the calling thread's network namespace.
/// `/proc/net` follows the process's main thread, which stays outside the
/// grade's namespace: check threads read `/proc/thread-self/net`.
pub fn sockets(tables: &[Table]) -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    for &table in tables {
        let path = format!("/proc/thread-self/net/{}", table.file());
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6 or udp6 table.
            Err(err)
                if matches!(table, Table::Tcp6 | Table::Udp6)
                    && err.kind() == io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(err) => return Err(err),
        };
        sockets.extend(
            text.lines()
                .skip(1)
                .filter_map(|line| Socket::parse(table, line)),
        );
    }
    Ok(sockets)
}

/// The sockets of `tables` that the process `pid` holds open.
pub fn sockets_held(pid: u32, tables: &[Table]) -> Vec<Socket> {
    let inodes = super::socket_inodes(pid).unwrap_or_default();
    if inodes.is_empty() {
        return Vec::new();
    }
    sockets(tables)
        .unwrap_or_default()
        .into_iter()
        .filter(|socket| inodes.contains(&socket.inode))
        .collect()
}

/// Every TCP socket of the calling thread's network namespace, IPv4 and
/// IPv6 (see [`sockets`]).
pub fn tcp_sockets() -> io::Result<Vec<Socket>> {
    sockets(Table::TCP)
}

/// The socket at the `local` end of the TCP connection from `remote`, with
/// its inode and its queues (`rx_queue`: what its program has not read
/// yet); `None` when no such connection is listed.
///
/// Looked up by sock_diag ([`sockdiag::tcp_socket`]), which walks no
/// table: this is polled, on namespaces that hold hundreds of closed
/// connections. The table is read only where sock_diag cannot answer.
///
/// [`sockdiag::tcp_socket`]: crate::harness::observe::sockdiag::tcp_socket
pub fn tcp_connection(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Socket>> {
    if let Ok(found) = crate::harness::observe::sockdiag::tcp_socket(local, remote) {
        return Ok(found);
    }
    let (local, remote) = (proc_net_address(local), proc_net_address(remote));
    Ok(Socket::find(&tcp_sockets()?, &local, &remote).cloned())
}

/// Bytes that arrived on the connections accepted at `server` (its
/// listening address) and that the server has not read yet, all together.
pub fn unread_by_server(server: SocketAddr) -> io::Result<u64> {
    let local = proc_net_address(server);
    Ok(tcp_sockets()?
        .iter()
        .filter(|socket| socket.local_address == local && socket.state != Socket::LISTEN)
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
                && socket.state == Socket::CLOSE_WAIT
                && socket.tx_queue == 0
        })
        .count())
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

/// The sizes TCP sockets get where the calling thread is: `net.ipv4.tcp_rmem`
/// and `tcp_wmem` (min, default, max, in bytes) of its network namespace.
/// In a grade's namespace they are the grader's small ones
/// ([`RECEIVE_BUFFERS`](crate::harness::sandbox::network::RECEIVE_BUFFERS)); without
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
    /// 16384, tcp_rmem 4096 131072 131072`.
    pub fn describe(&self) -> String {
        let [a, b, c] = self.send;
        let [d, e, f] = self.receive;
        format!("tcp_wmem {a} {b} {c}, tcp_rmem {d} {e} {f}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tcp_lines_are_parsed() {
        let line = "   3: 0100007F:1F90 00000000:0000 0A 00000002:00000001 00:00000000 00000000  1000        0 12345 1 0 100 0 0 10 0";
        assert_eq!(
            Socket::parse(Table::Tcp, line),
            Some(Socket {
                table: Table::Tcp,
                local_address: "0100007F:1F90".into(),
                remote_address: "00000000:0000".into(),
                local_port: 8080,
                state: Socket::LISTEN,
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
                .any(|s| s.local_port == port && s.state == Socket::LISTEN)
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
        let unread = || tcp_connection(local, remote).unwrap().map(|s| s.rx_queue);
        while unread() != Some(6) {
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
