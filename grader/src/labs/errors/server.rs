//! The `bind-server` checks: the log lines around bind, clients, IPv6, a
//! port already taken, and rebinding over TIME_WAIT.

use std::io::{self};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::ipv6;
use crate::harness::net::conn::Conn;
use crate::harness::net::{self};
use crate::harness::observe::procfs::{self, Socket};
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::support::{grader_error, outputs};
use super::{BIND_EXIT, BIND_FAILED, QUICK, SERVER};

pub(super) fn bind_ready(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    server.connect(ctx.deadline())?;
    let lines = server.lines();
    let bound = lines.iter().position(|line| line == "Socket bind complete");
    let listening = lines
        .iter()
        .position(|line| line.starts_with("Listening on "));
    match (bound, listening) {
        (Some(bound), Some(listening)) if bound < listening => Ok(()),
        _ => Err(Failure::new(
            "the server must print `Socket bind complete` once bind succeeded, before `Listening on ADDR`",
        )
        .expected("Socket bind complete\nListening on 127.0.0.1:PORT")
        .actual(show::head(&server.stdout(), 6))),
    }
}

/// Connects a client and waits for the server's `Connected with PEER` line
/// naming it.
fn connect_and_expect_log(ctx: &Ctx, server: &mut Server, which: &str) -> Result<Conn, Failure> {
    let stream = server.connect(ctx.deadline())?;
    let peer = stream
        .local_addr()
        .map_err(|err| grader_error("read its own address", err))?;
    let wanted = format!("Connected with {peer}");
    if server
        .wait_for_line(ctx.within(5.0), |line| line == wanted)
        .is_none()
    {
        return Err(server.explain(
            Failure::new(format!("the server did not log the {which} client"))
                .expected(format!("{wanted}   (the client's own address and port)"))
                .actual(show::head(&server.stdout(), 10)),
        ));
    }
    Ok(stream)
}

pub(super) fn bind_clients(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let first = connect_and_expect_log(ctx, &mut server, "first")?;
    drop(first);
    let _second = connect_and_expect_log(ctx, &mut server, "second")?;
    let prefixes = ["Socket bind complete", "Listening on ", "Connected with "];
    let lines: Vec<String> = server
        .lines()
        .into_iter()
        .filter(|line| prefixes.iter().any(|prefix| line.starts_with(prefix)))
        .collect();
    ctx.snapshot(&redact(&lines.join("\n")))
}

/// Started with `::1`, the server makes its socket in the address's family
/// (`Domain::for_address`), not IPv4 whatever HOST says.
pub(super) fn bind_ipv6(ctx: &Ctx) -> CheckResult {
    let how = "Make the socket in the family of the address it binds, `Socket::new(Domain::for_address(addr), …)`: `Domain::IPV4` (`AF_INET`) cannot bind `::1`. Print `local_addr()`, which writes IPv6 in brackets.";
    let mut server = ipv6::server(ctx, SERVER, how, "#the-bind-server")?;
    connect_and_expect_log(ctx, &mut server, "IPv6").map(drop)
}

pub(super) fn bind_failed(ctx: &Ctx) -> CheckResult {
    let taken = TcpListener::bind("127.0.0.1:0").map_err(|err| grader_error("listen", err))?;
    let port = taken
        .local_addr()
        .map_err(|err| grader_error("listen", err))?
        .port()
        .to_string();
    let finished = ctx.run(&ctx.launch(SERVER, ["127.0.0.1", port.as_str()])?, QUICK)?;
    let stderr = finished.stderr_text();
    let line = stderr.lines().find(|line| line.starts_with(BIND_FAILED));
    // The OS's own text for EADDRINUSE (strerror), in any letter case: a
    // message of one's own wording is not the OS's.
    let os_text = address_in_use_text();
    let has_message = line.is_some_and(|line| {
        line[BIND_FAILED.len()..]
            .trim()
            .eq_ignore_ascii_case(&os_text)
    });
    if finished.code() == Some(BIND_EXIT) && has_message {
        return second_of_its_own(ctx);
    }
    let mut failure = Failure::new(format!(
        "{SERVER} on a port where another socket listens must report the failed bind"
    ))
    .expected(format!(
        "`{BIND_FAILED}{os_text}` (the OS's text for error 98) on stderr, then exit code {BIND_EXIT}"
    ))
    .actual(outputs(&finished));
    if finished.timed_out {
        failure = failure.detail(
            "it was still running: did it bind at all? SO_REUSEADDR does not let a second socket \
             bind a port where another one listens, so bind must have failed",
        );
    }
    Err(failure)
}

/// The port held by another of the student's own servers, as when one is
/// started twice: a second socket binds it only with SO_REUSEPORT, which
/// shares a port between sockets of the same user (the grader's own
/// listener above is of another uid, so that option slips past it).
fn second_of_its_own(ctx: &Ctx) -> CheckResult {
    let first = ctx.server(SERVER)?;
    let port = first.addr.port().to_string();
    let mut second = ctx.spawn(&ctx.launch(SERVER, ["127.0.0.1", port.as_str()])?)?;
    let limit = ctx
        .scaled(QUICK)
        .min(ctx.deadline().saturating_duration_since(Instant::now()));
    let Ok(addr) = crate::harness::ready::wait_listening(&mut second, limit) else {
        let finished = second.finish(ctx.within(QUICK));
        if finished.code() == Some(BIND_EXIT) {
            return Ok(());
        }
        return Err(Failure::new(format!(
            "a second {SERVER} on the port the first listens on did not report the failed bind"
        ))
        .expected(format!(
            "exit code {BIND_EXIT}, after `{BIND_FAILED}…` on stderr"
        ))
        .actual(outputs(&finished)));
    };
    drop(first);
    Err(Failure::new(format!(
        "two {SERVER}s listened on the same port at once ({addr})"
    ))
    .expected(format!(
        "the second fails to bind: `{BIND_FAILED}…`, exit code {BIND_EXIT}"
    ))
    .actual(format!("the second printed `Listening on {addr}` while the first listened there"))
    .diagnosis(
        "SO_REUSEPORT lets several sockets of the same user share a port; the lab asks for SO_REUSEADDR (`set_reuse_address`), which only lets a new listener bind a port whose old connections linger in TIME_WAIT, never one where another socket listens.",
        "#so_reuseaddr-and-time_wait",
    ))
}

/// The operating system's text for EADDRINUSE, as strerror gives it
/// (`Address already in use`), without Rust's ` (os error 98)`.
fn address_in_use_text() -> String {
    let err = io::Error::from_raw_os_error(libc::EADDRINUSE);
    let text = err.to_string();
    text.strip_suffix(&format!(" (os error {})", libc::EADDRINUSE))
        .unwrap_or(&text)
        .to_owned()
}

/// Starts a server, has it log a client, stops it, then closes the client:
/// the connection's TIME_WAIT is left on the server's port, which it
/// returns.
fn leave_time_wait(ctx: &Ctx) -> Result<SocketAddr, Failure> {
    let mut server = ctx.server(SERVER)?;
    let addr: SocketAddr = server.addr;
    let client = connect_and_expect_log(ctx, &mut server, "first")?;
    // Stopping the server closes its side of the connection first (if it
    // had not already), so TIME_WAIT lands on the server's port once the
    // grader closes its side too.
    server.process.terminate();
    let _ = net::read_until(&client, None, ctx.within(5.0));
    drop(client);
    Ok(addr)
}

/// What [`states_on`] says of a port without sockets.
const NO_SOCKET: &str = "no socket";

/// The TCP states of the sockets on local port `port`, by name.
fn states_on(port: u16) -> String {
    const NAMES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    let Ok(sockets) = procfs::tcp_sockets() else {
        return "(unknown: /proc/net/tcp cannot be read)".to_owned();
    };
    let states: Vec<&str> = sockets
        .iter()
        .filter(|socket| socket.local_port == port)
        .map(|socket| NAMES.get(usize::from(socket.state)).copied().unwrap_or("?"))
        .collect();
    if states.is_empty() {
        NO_SOCKET.to_owned()
    } else {
        states.join(", ")
    }
}

/// Waits until a socket on local port `port` is in TIME_WAIT; `false` once
/// no socket is left on the port (the connection ended without one) or at
/// `deadline`.
fn wait_time_wait(port: u16, deadline: Instant) -> io::Result<bool> {
    loop {
        let sockets = procfs::tcp_sockets()?;
        let mut on_port = sockets
            .iter()
            .filter(|socket| socket.local_port == port)
            .peekable();
        if on_port.peek().is_none() {
            return Ok(false);
        }
        if on_port.any(|socket| socket.state == Socket::TIME_WAIT) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        // The kernel offers no event for a state change: look again soon.
        thread::sleep(Duration::from_millis(10));
    }
}

pub(super) fn rebind_time_wait(ctx: &Ctx) -> CheckResult {
    // The connection's TIME_WAIT is what the restart must bind over. One
    // that ended without one, leaving nothing on the port, is tried once
    // more: rarely, under load, it was gone before the grader looked (1
    // grade of lab 2 in about 100 with every core busy, cause not found); a
    // server that resets its connections (SO_LINGER 0) fails both times.
    let mut attempts = 0;
    let addr = loop {
        attempts += 1;
        let addr = leave_time_wait(ctx)?;
        match wait_time_wait(addr.port(), ctx.within(5.0)) {
            Ok(true) => break addr,
            Ok(false) => {
                let left = states_on(addr.port());
                if left == NO_SOCKET && attempts < 2 {
                    continue;
                }
                let failure = Failure::new(format!(
                    "after the server stopped, no connection on port {} went into TIME_WAIT",
                    addr.port()
                ))
                .detail(format!("on port {} now: {left}", addr.port()));
                return Err(if left == NO_SOCKET {
                    failure.diagnosis(
                        "The connection ended with a reset (RST), twice, and a reset leaves no TIME_WAIT: close a connection normally (drop it), without SO_LINGER set to 0, whose close sends a reset. TIME_WAIT is not something to avoid: SO_REUSEADDR is what lets the server bind over it.",
                        "#so_reuseaddr-and-time_wait",
                    )
                } else {
                    failure.detail("the grader closes its side after the server's: did the server end with the connection still open in another process?")
                });
            }
            Err(err) => return Err(grader_error("read /proc/net/tcp", err)),
        }
    };
    let port = addr.port().to_string();
    let launch = ctx.launch(SERVER, ["127.0.0.1", port.as_str()])?;
    let restarted = ctx.start_server(&launch).map_err(|failure| {
        failure.detail(format!(
            "a connection on port {port} is in TIME_WAIT: a server binds that port again at once \
             only if it set SO_REUSEADDR before bind"
        ))
    })?;
    net::connect(restarted.addr, ctx.deadline())?;
    Ok(())
}
