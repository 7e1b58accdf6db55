//! A network namespace per grade: only a loopback interface, brought up.
//! The check threads join it ([`super::Sandbox::enter`]) so that checks still
//! connect to their programs; builds happen before, outside it.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use socket2::{Domain, Socket, Type};

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
            bring_up_loopback()?;
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
