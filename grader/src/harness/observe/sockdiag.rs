//! The backlog of a listening socket, which `/proc/net/tcp` does not show.
//! The kernel's sock_diag netlink interface reports it (it is the Send-Q
//! that `ss -lnt` prints) for the calling thread's network namespace.
//! Linux only.

use std::io::{self, Read};

use socket2::{Domain, Protocol, Socket, Type};

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
/// Where `idiag_wqueue` sits in a reply: for a listener, its backlog.
const WRITE_QUEUE: usize = 4 + SOCK_ID + 2 * 4;

/// The backlog of the TCP listener on `port` (IPv4 or IPv6), or `None` when
/// nothing listens there.
pub fn listen_backlog(port: u16) -> io::Result<Option<u32>> {
    for family in [libc::AF_INET, libc::AF_INET6] {
        let family = u8::try_from(family).map_err(io::Error::other)?;
        if let Some(backlog) = query(family, port)? {
            return Ok(Some(backlog));
        }
    }
    Ok(None)
}

/// A netlink header and `struct inet_diag_req_v2` asking for every TCP
/// listener of `family`, in the kernel's (native) byte order.
fn request(family: u8) -> Vec<u8> {
    let length = HEADER + 8 + SOCK_ID;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let mut bytes = Vec::with_capacity(length);
    bytes.extend_from_slice(&(length as u32).to_ne_bytes());
    bytes.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    bytes.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
    bytes.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    bytes.resize(length, 0); // any socket id
    bytes
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// Asks for every TCP listener of `family` and picks the one on `port`.
fn query(family: u8, port: u16) -> io::Result<Option<u32>> {
    let mut socket = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(libc::NETLINK_SOCK_DIAG)),
    )?;
    socket.send(&request(family))?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut found = None;
    loop {
        let received = socket.read(&mut buffer)?;
        let mut rest = &buffer[..received];
        while rest.len() >= HEADER {
            let length = u32_at(rest, 0) as usize;
            if length < HEADER || length > rest.len() {
                return Err(io::Error::other("a malformed sock_diag reply"));
            }
            match i32::from(u16::from_ne_bytes([rest[4], rest[5]])) {
                libc::NLMSG_DONE => return Ok(found),
                libc::NLMSG_ERROR => return Err(io::Error::other("sock_diag refused the request")),
                _ => {}
            }
            let reply = &rest[HEADER..length];
            if reply.len() >= REPLY && u16::from_be_bytes([reply[4], reply[5]]) == port {
                found = Some(u32_at(reply, WRITE_QUEUE));
            }
            // Netlink messages are padded to 4 bytes.
            rest = &rest[length.next_multiple_of(4).min(rest.len())..];
        }
        if received == 0 {
            return Ok(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn no_listener_no_backlog() {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            socket.local_addr().expect("bound").port()
        };
        assert_eq!(listen_backlog(port).expect("sock_diag"), None);
    }
}
