//! What `/proc` says about a running program: threads, open descriptors and
//! CPU time. Linux only; elsewhere these return an error and the checks that
//! need them report themselves as skipped.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Number of threads of `pid` (`Threads:` in `/proc/PID/status`).
pub fn threads(pid: u32) -> io::Result<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/PID/status"))
}

/// Number of open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// CPU time `pid` has used so far, user plus system (`/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: the
    // numeric fields start after its last ')'.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based).
    let ticks = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(total * 1_000_000 / per_second))
}

/// Bytes that arrived on the TCP connection from `remote` to `local` and
/// that the program owning that socket has not read yet (`rx_queue` in
/// `/proc/net/tcp` or `tcp6`); `None` when no such connection is listed.
/// The grader uses it to see when a server has read everything it was sent.
pub fn tcp_unread(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u64>> {
    let table = match local {
        SocketAddr::V4(_) => "/proc/net/tcp",
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let (local, remote) = (proc_net_address(local), proc_net_address(remote));
    let text = std::fs::read_to_string(table)?;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 4 && fields[1] == local && fields[2] == remote {
            let unread = fields[4]
                .split_once(':')
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                .ok_or_else(|| io::Error::other("malformed /proc/net/tcp line"))?;
            return Ok(Some(unread));
        }
    }
    Ok(None)
}

/// An address as `/proc/net/tcp` prints it: the IP as 32-bit words in the
/// machine's byte order, in hex, then the port in hex (`0100007F:1F90`).
fn proc_net_address(addr: SocketAddr) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(threads(pid).unwrap() >= 1);
        assert!(open_fds(pid).unwrap() >= 3);
        let busy_until = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < busy_until {}
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
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
        while tcp_unread(local, remote).unwrap() != Some(6) {
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
