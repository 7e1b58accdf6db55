//! What `/proc` says about a running program, read in one place: each file
//! is parsed once, into a typed row, by one function here — `stat` (state,
//! parent, session, CPU time) of a process or each of its threads,
//! `status` (threads), `limits` (open files), `fd` (descriptors, the
//! sockets among them) and the socket tables of `net/` (TCP and UDP, IPv4
//! and IPv6). The checks, [`crate::harness::observe::stall`] and [`crate::harness::limits`] read
//! `/proc` through them. Linux only; elsewhere these return an error and the
//! checks that need them report themselves as skipped.
//!
//! Its tables:
//! - `pid.rs`: the files of one process, `/proc/PID/…`: `stat`, `status`,
//!   `limits`, `io`, `syscall`, `wchan`, `schedstat`, `fd` and `fdinfo`;
//! - `net.rs`: the socket tables of `/proc/net` (the calling thread's
//!   network namespace) and the TCP buffer sizes of `/proc/sys/net`.
//!
//! Both are read as `procfs::…`.

mod net;
mod pid;

pub use net::*;
pub use pid::*;

use std::time::Duration;

/// Looks again every few milliseconds until `done` holds (true) or
/// `deadline` passes (false): `/proc` cannot be waited on.
pub fn watch_until(deadline: std::time::Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
