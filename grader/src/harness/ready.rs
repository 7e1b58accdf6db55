//! Readiness: a server is ready when it prints `Listening on IP:PORT`.
//!
//! The line tells the grader two things at once: that the server can accept
//! connections now, and which port it got when it asked for port 0. Waiting
//! for it replaces every sleep a test suite might otherwise need.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::capture::complete_lines;
use super::observe::procfs::{self, Socket, Table};
use super::observe::sockdiag;
use super::process::{Process, describe_status};
use super::show;
use crate::outcome::Failure;

/// The prefix of the readiness line.
pub const LISTENING: &str = "Listening on ";

/// Parses a `Listening on ADDR` line into the address it names.
pub fn parse_listening(line: &str) -> Option<Result<SocketAddr, String>> {
    let rest = line.trim_end().strip_prefix(LISTENING)?;
    Some(rest.trim().parse().map_err(|_| rest.to_owned()))
}

/// The address `text` means when it is an IPv6 address and a port joined
/// by a colon, without the brackets (`::1:41234`, printed from `ip()` and
/// `port()`): `[::1]:41234`.
fn unbracketed_ipv6(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.trim().rsplit_once(':')?;
    let ip: std::net::Ipv6Addr = ip.parse().ok()?;
    Some(SocketAddr::from((ip, port.parse::<u16>().ok()?)))
}

/// What a server that never announces a usable address got wrong, whichever
/// check started it: the first thing a server does.
pub const NOT_ANNOUNCED: &str = "Before anything else, the server binds to HOST and PORT from its arguments and prints `Listening on ADDR`, the address its socket really got (`local_addr()`: with port 0 the OS chose the port, and only the socket knows which), then flushes stdout. The grader connects only once that line has come.";

/// Waits for the server's `Listening on` line and returns the address in it.
pub fn wait_listening(server: &mut Process, limit: Duration) -> Result<SocketAddr, Failure> {
    let deadline = Instant::now() + limit;
    let found = server.stdout().wait_for(deadline, |bytes, _| {
        complete_lines(bytes)
            .iter()
            .find_map(|line| parse_listening(line))
    });
    match found {
        Some(Ok(addr)) if addr.port() == 0 => Err(Failure::new(
            "the server announced port 0 instead of the port it was given",
        )
        .expected("Listening on 127.0.0.1:PORT, where PORT is what the OS chose (ask the listener for its local_addr)")
        .actual(format!("Listening on {addr}"))),
        Some(Ok(addr)) if the_graders_own(addr, server.pid()) => Err(Failure::new(
            "the server announced a port that only the grader listens on, not a socket of its own",
        )
        .expected("Listening on the address of the socket the server bound (its `local_addr()`)")
        .actual(format!(
            "Listening on {addr}: that port belongs to one of the grader's own test peers, and the server holds no socket on it"
        ))),
        Some(Ok(addr)) => Ok(addr),
        Some(Err(text)) => Err(match unbracketed_ipv6(&text) {
            Some(addr) => Failure::new(
                "the `Listening on` line holds an IPv6 address and a port without brackets",
            )
            .expected(format!("Listening on {addr}"))
            .actual(format!("Listening on {text}"))
            .detail(
                "an IPv6 address holds colons itself, so with a port it is written in brackets; \
                 print the `SocketAddr` (`listener.local_addr()`), which does",
            ),
            None => Failure::new("the `Listening on` line does not hold an address")
                .expected("Listening on IP:PORT, e.g. Listening on 127.0.0.1:41234")
                .actual(format!("Listening on {text}")),
        }),
        None => {
            // Stdout closed before the line came: the program is exiting.
            // Wait a moment for its status so the message says it exited
            // rather than that it kept us waiting.
            if server.stdout().closed() {
                server.wait_until(Instant::now() + Duration::from_secs(1));
            }
            Err(not_ready(server, limit))
        }
    }
}

/// Whether every socket bound to `addr`'s port (a TCP listener, or any UDP
/// socket) is the grader's own: a peer of another check of the same grade,
/// in the same network namespace. A program that announced it bound
/// nothing there, and would have the grader's peer answer for it. `false`
/// where `/proc` cannot tell (not Linux).
///
/// The server's own processes (`server`'s tree) are asked first: they hold
/// a few descriptors, where the grader holds those of every check running
/// (hundreds, each a `readlink`), and they hold the socket whenever the
/// announcement is true.
fn the_graders_own(addr: SocketAddr, server: u32) -> bool {
    let Ok(bound) = sockdiag::bound_to(addr.port()).or_else(|_| bound_in_proc_net(addr.port()))
    else {
        return false;
    };
    if bound.is_empty() {
        return false;
    }
    let holds_one = |pid: u32| {
        procfs::socket_fds(pid)
            .is_ok_and(|held| held.iter().any(|(_, inode)| bound.contains(inode)))
    };
    if procfs::process_tree(server).into_iter().any(holds_one) {
        return false;
    }
    let Ok(ours) = procfs::socket_fds(std::process::id()) else {
        return false;
    };
    bound
        .iter()
        .all(|inode| ours.iter().any(|(_, our_inode)| our_inode == inode))
}

/// [`sockdiag::bound_to`] from the tables of `/proc/net`, for a kernel
/// without its sock_diag handlers: a walk of every socket of the namespace.
fn bound_in_proc_net(port: u16) -> std::io::Result<Vec<u64>> {
    Ok(procfs::sockets(Table::ALL)?
        .into_iter()
        .filter(|socket| {
            socket.local_port == port
                && (socket.state == Socket::LISTEN
                    || matches!(socket.table, Table::Udp | Table::Udp6))
        })
        .map(|socket| socket.inode)
        .collect())
}

fn not_ready(server: &mut Process, limit: Duration) -> Failure {
    if server.stdout().closed() {
        // stdout closes a moment before the exit is visible: wait for it, so
        // the report says the program exited rather than that it was slow.
        if server
            .wait_until(Instant::now() + Duration::from_secs(1))
            .is_some()
        {
            server
                .stderr()
                .wait_closed(Instant::now() + Duration::from_secs(1));
        }
    }
    let stdout = server.stdout().text();
    let stderr = server.stderr().text();
    let printed = if stdout.trim().is_empty() {
        "your program printed nothing on stdout".to_owned()
    } else {
        format!(
            "your program printed on stdout:\n{}",
            show::indent(&show::head(&stdout, 10), 4)
        )
    };
    // The line is there but unfinished: only whole lines count.
    let unterminated = stdout
        .rsplit('\n')
        .next()
        .is_some_and(|last| last.starts_with(LISTENING));
    let failure = match server.exit_status() {
        Some(status) => Failure::new(format!(
            "the server exited ({}) before printing `Listening on`",
            describe_status(Some(status))
        )),
        None if unterminated => Failure::new(
            "the `Listening on ADDR` line never ended: print it with a newline at the end (println!), then flush",
        ),
        None => Failure::new(format!(
            "waited {:.0} s for `Listening on ADDR` on stdout; {} — did it flush stdout after printing?",
            limit.as_secs_f64(),
            if stdout.trim().is_empty() {
                "nothing came"
            } else {
                "it never came"
            }
        )),
    };
    failure
        .detail(printed)
        .detail(show::stderr_tail("stderr", &stderr, 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port that only the grader's own sockets are bound to is one a
    /// program may not announce; a port another process listens on may be.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_port_only_the_grader_is_bound_to_is_its_own() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        // A server that holds nothing: no process has this pid.
        const NO_SERVER: u32 = u32::MAX;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(the_graders_own(listener.local_addr().unwrap(), NO_SERVER));
        let datagrams = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(the_graders_own(datagrams.local_addr().unwrap(), NO_SERVER));
        let mut other = Command::new("python3")
            .args([
                "-c",
                "import socket, sys\n\
                 s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                 print(s.getsockname()[1], flush=True); sys.stdin.read()",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(other.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let theirs = SocketAddr::from(([127, 0, 0, 1], port));
        // Found in the server's descriptors, and in nobody's the grader
        // knows of.
        let verdicts = [
            the_graders_own(theirs, other.id()),
            the_graders_own(theirs, NO_SERVER),
        ];
        drop(other.stdin.take());
        other.wait().unwrap();
        assert_eq!(verdicts, [false, false], "{theirs} is another process's");
    }

    /// sock_diag and `/proc/net` find the same sockets bound to a port: TCP
    /// listeners and UDP sockets, IPv4 and IPv6, and not the connections a
    /// listener accepted, which share its port.
    #[test]
    #[cfg(target_os = "linux")]
    fn sock_diag_and_proc_net_agree_on_what_is_bound() {
        let sorted = |mut inodes: Vec<u64>| {
            inodes.sort_unstable();
            inodes
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _accepted = listener.accept().unwrap();
        let _datagrams = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let _six = std::net::TcpListener::bind(("::1", port));
        let _six_datagrams = std::net::UdpSocket::bind(("::1", port));
        let expected = 2 + usize::from(_six.is_ok()) + usize::from(_six_datagrams.is_ok());
        let from_diag = sorted(sockdiag::bound_to(port).expect("sock_diag"));
        assert_eq!(from_diag.len(), expected, "{from_diag:?}");
        assert_eq!(from_diag, sorted(bound_in_proc_net(port).unwrap()));
    }

    #[test]
    fn parses_ipv4_and_ipv6_addresses() {
        assert_eq!(
            parse_listening("Listening on 127.0.0.1:41234"),
            Some(Ok("127.0.0.1:41234".parse().unwrap()))
        );
        assert_eq!(
            parse_listening("Listening on [::1]:5000\r"),
            Some(Ok("[::1]:5000".parse().unwrap()))
        );
    }

    #[test]
    fn other_lines_are_not_readiness() {
        assert_eq!(parse_listening("Socket bind complete"), None);
        assert_eq!(parse_listening("listening on 127.0.0.1:1"), None);
    }

    #[test]
    fn a_line_without_an_address_is_reported() {
        assert_eq!(
            parse_listening("Listening on port 5000"),
            Some(Err("port 5000".to_owned()))
        );
    }

    #[test]
    fn an_ipv6_address_without_brackets_is_read_as_the_one_meant() {
        assert_eq!(
            unbracketed_ipv6("::1:41234"),
            Some("[::1]:41234".parse().unwrap())
        );
        assert_eq!(
            unbracketed_ipv6("fe80::2:8080"),
            Some("[fe80::2]:8080".parse().unwrap())
        );
        for not_one in ["port 5000", "127.0.0.1:x", "localhost:80", "::1"] {
            assert_eq!(unbracketed_ipv6(not_one), None, "{not_one}");
        }
    }
}
