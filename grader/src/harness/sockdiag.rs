//! The backlog of a listening socket, which `/proc/net/tcp` does not show.
//! The kernel's sock_diag netlink interface reports it (it is the Send-Q
//! that `ss -lnt` prints) for the calling thread's network namespace.
//! Linux only.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` of `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` in the kernel's numbering of TCP states.
const TCP_LISTEN: u32 = 10;

/// `struct inet_diag_sockid`: ports and addresses in network byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SockId {
    source_port: [u8; 2],
    destination_port: [u8; 2],
    source: [u32; 4],
    destination: [u32; 4],
    interface: u32,
    cookie: [u32; 2],
}

/// A netlink header and `struct inet_diag_req_v2`.
#[repr(C)]
struct Request {
    header: libc::nlmsghdr,
    family: u8,
    protocol: u8,
    extensions: u8,
    padding: u8,
    states: u32,
    id: SockId,
}

/// `struct inet_diag_msg`: for a listener, `write_queue` is its backlog.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Reply {
    family: u8,
    state: u8,
    timer: u8,
    retransmits: u8,
    id: SockId,
    expires: u32,
    read_queue: u32,
    write_queue: u32,
    uid: u32,
    inode: u32,
}

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

/// Asks for every TCP listener of `family` and picks the one on `port`.
fn query(family: u8, port: u16) -> io::Result<Option<u32>> {
    // SAFETY: a plain socket call; the descriptor is owned right below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let flags = libc::NLM_F_REQUEST | libc::NLM_F_DUMP;
    let request = Request {
        header: libc::nlmsghdr {
            nlmsg_len: u32::try_from(size_of::<Request>()).map_err(io::Error::other)?,
            nlmsg_type: SOCK_DIAG_BY_FAMILY,
            nlmsg_flags: u16::try_from(flags).map_err(io::Error::other)?,
            nlmsg_seq: 1,
            nlmsg_pid: 0,
        },
        family,
        protocol: u8::try_from(libc::IPPROTO_TCP).map_err(io::Error::other)?,
        extensions: 0,
        padding: 0,
        states: 1 << TCP_LISTEN,
        id: SockId::default(),
    };
    // SAFETY: sends the bytes of a `repr(C)` struct we own.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            (&raw const request).cast(),
            size_of::<Request>(),
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u8; 64 * 1024];
    let mut found = None;
    loop {
        // SAFETY: receives into a buffer we own, no longer than it.
        let received = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        let Ok(received) = usize::try_from(received) else {
            return Err(io::Error::last_os_error());
        };
        let mut rest = &buffer[..received];
        while rest.len() >= size_of::<libc::nlmsghdr>() {
            // SAFETY: `rest` holds at least a header's bytes; read_unaligned
            // copies them whatever their alignment.
            let header: libc::nlmsghdr = unsafe { std::ptr::read_unaligned(rest.as_ptr().cast()) };
            let length = header.nlmsg_len as usize;
            if length < size_of::<libc::nlmsghdr>() || length > rest.len() {
                return Err(io::Error::other("a malformed sock_diag reply"));
            }
            match i32::from(header.nlmsg_type) {
                libc::NLMSG_DONE => return Ok(found),
                libc::NLMSG_ERROR => return Err(io::Error::other("sock_diag refused the request")),
                _ => {}
            }
            let body = &rest[size_of::<libc::nlmsghdr>()..length];
            if body.len() >= size_of::<Reply>() {
                // SAFETY: `body` holds at least a reply's bytes.
                let reply: Reply = unsafe { std::ptr::read_unaligned(body.as_ptr().cast()) };
                if u16::from_be_bytes(reply.id.source_port) == port {
                    found = Some(reply.write_queue);
                }
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
