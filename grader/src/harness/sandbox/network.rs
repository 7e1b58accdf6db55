//! A network namespace per grade: only a loopback interface, brought up,
//! and small TCP buffers. The check threads join it
//! ([`super::Sandbox::enter`]) so that checks still connect to their
//! programs; builds happen before, outside it.
//!
//! `net.ipv4.tcp_rmem` and `tcp_wmem` belong to the network namespace
//! (Linux 4.15 and later): in the grade's, they are [`RECEIVE_BUFFERS`] and
//! [`SEND_BUFFERS`], so that a check that must fill a socket's buffers (a
//! client that never reads, an echo left waiting in the server) fills them
//! with a few hundred KiB rather than the megabytes the machine's defaults
//! let a socket grow to. The checks read the sizes that apply where they run
//! (`procfs::TcpBuffers::here`) and scale their data to them.
//!
//! The namespace also has socket hash tables of its own, sized for a grade
//! ([`CHILD_HASH_ENTRIES`]): a read of `/proc/net/tcp` walks every bucket of
//! the table it is listed in, and the machine's (262144 buckets on 24 GiB)
//! made each read cost about 2 ms of kernel time, for a handful of sockets.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use socket2::{Domain, Socket, Type};

/// `net.ipv4.tcp_rmem` in the grade's namespace: min, default, max (bytes).
/// The default is the usual one (128 KiB), so a program that reads a
/// request of 100 KiB before it answers sees it arrive as on any machine;
/// the maximum stops autotuning from growing a socket further.
pub const RECEIVE_BUFFERS: [usize; 3] = [4096, 131072, 131072];

/// `net.ipv4.tcp_wmem` in the grade's namespace: min, default, max (bytes).
/// The default is the kernel's (16 KiB), and so is the maximum instead of
/// the usual 4 MiB: a socket's send buffer does not grow, which is what
/// makes filling a server's send buffer cheap. Loopback moves a mebibyte
/// as fast with it (lab 1's `one_mebibyte`, measured).
pub const SEND_BUFFERS: [usize; 3] = [4096, 16384, 16384];

/// `net.ipv4.tcp_child_ehash_entries` and `udp_child_hash_entries` (Linux
/// 6.1 and 6.2): the buckets of the TCP and UDP hash tables of a namespace
/// created from one that sets them. A grade's sockets number in the
/// thousands at most (lab 3's 200 clients, with their `TIME_WAIT`s), and a
/// namespace holds at most half as many `TIME_WAIT` sockets as its TCP
/// table has buckets: 16384 keeps every one of them, as on the machine.
const CHILD_HASH_ENTRIES: [(&str, u32); 2] = [
    ("tcp_child_ehash_entries", 16384),
    ("udp_child_hash_entries", 1024),
];

/// A network namespace holding only a loopback interface, brought up.
#[derive(Debug)]
pub struct NetworkNamespace {
    fd: OwnedFd,
}

impl NetworkNamespace {
    /// Creates one on a short-lived thread (`unshare` moves only the calling
    /// thread, and we keep no thread in it), and keeps a descriptor to it.
    pub fn create() -> io::Result<NetworkNamespace> {
        std::thread::spawn(|| -> io::Result<NetworkNamespace> {
            // SAFETY: a new network namespace changes nothing this thread
            // shares with others (unlike unsharing files or the filesystem
            // context); the thread ends below.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }?;
            // The sizes are read from the namespace a new one is created
            // in: set in this first one (never in the machine's), they give
            // the second its own tables. A kernel without them keeps this
            // first namespace, sharing the machine's tables.
            if set_child_hash_tables() {
                // SAFETY: as above.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }?;
            }
            bring_up_loopback()?;
            // Best effort: on a kernel where these are not per namespace,
            // writing them would change the whole machine's, so only a
            // namespace that has them of its own gets them.
            set_buffers();
            let fd = fs::File::open("/proc/thread-self/ns/net")?;
            Ok(NetworkNamespace { fd: fd.into() })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    }

    /// Moves the calling thread into the namespace.
    pub fn enter(&self) -> io::Result<()> {
        rustix::thread::move_into_link_name_space(
            self.fd.as_fd(),
            Some(LinkNameSpaceType::Network),
        )?;
        Ok(())
    }
}

/// Writes [`CHILD_HASH_ENTRIES`] in the calling thread's network
/// namespace; whether the TCP one took.
fn set_child_hash_tables() -> bool {
    let written = CHILD_HASH_ENTRIES.map(|(name, entries)| {
        fs::write(format!("/proc/sys/net/ipv4/{name}"), entries.to_string()).is_ok()
    });
    written[0]
}

/// Writes [`RECEIVE_BUFFERS`] and [`SEND_BUFFERS`] in the calling thread's
/// network namespace, when it has them of its own (Linux 4.15 and later; a
/// new namespace starts with a copy of the machine's). Failing leaves the
/// machine's sizes, which the checks read anyway.
fn set_buffers() {
    let written = |name: &str, sizes: [usize; 3]| {
        let text = format!("{} {} {}", sizes[0], sizes[1], sizes[2]);
        fs::write(format!("/proc/sys/net/ipv4/{name}"), text).is_ok()
    };
    if per_namespace_buffers() {
        let _ = written("tcp_rmem", RECEIVE_BUFFERS) && written("tcp_wmem", SEND_BUFFERS);
    }
}

/// Whether `tcp_rmem` and `tcp_wmem` are per network namespace: from Linux
/// 4.15 on.
fn per_namespace_buffers() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse::<u32>().ok());
    match (numbers.next(), numbers.next()) {
        (Some(major), Some(minor)) => (major, minor) >= (4, 15),
        _ => false,
    }
}

/// Sets `IFF_UP` on `lo` in the calling thread's network namespace.
fn bring_up_loopback() -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: ifreq is plain data.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own, on
    // a socket we own.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::observe::procfs::TcpBuffers;

    /// As root, a grade's namespace has the small buffers and a TCP table of
    /// its own, and the machine keeps its own.
    #[test]
    fn the_namespace_has_small_buffers_of_its_own() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let machine = TcpBuffers::here();
        let namespace = NetworkNamespace::create().expect("a network namespace");
        let inside = std::thread::spawn(move || {
            namespace.enter().expect("entering it");
            let ehash = fs::read_to_string("/proc/sys/net/ipv4/tcp_ehash_entries");
            (TcpBuffers::here(), ehash)
        })
        .join()
        .unwrap();
        let (inside, ehash) = inside;
        // Negative when the table is the machine's, shared.
        if std::path::Path::new("/proc/sys/net/ipv4/tcp_child_ehash_entries").exists() {
            assert_eq!(ehash.unwrap().trim(), CHILD_HASH_ENTRIES[0].1.to_string());
        }
        if per_namespace_buffers() {
            assert_eq!(inside.receive, RECEIVE_BUFFERS);
            assert_eq!(inside.send, SEND_BUFFERS);
        }
        assert_eq!(TcpBuffers::here(), machine);
    }
}
