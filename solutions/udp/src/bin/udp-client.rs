//! Lab 5 reference: a UDP client that gives up in time.
//!
//! Sends one datagram and waits for the answer, but only for so long: UDP
//! never says "the server is not there", the answer just never comes. While
//! it waits it takes only a datagram from the server's address; anyone else
//! can send to its port too.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// Sends a message to a UDP server and prints its reply.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    host: String,
    /// The server's port.
    port: u16,
    /// What to send, as one datagram.
    message: String,
    /// How long to wait for the reply, in seconds (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_timeout)]
    timeout: Duration,
}

/// The largest reply the client takes whole.
const BUFFER: usize = 8192;

fn main() -> ExitCode {
    let args = Args::parse();
    match request(&args.host, args.port, args.message.as_bytes(), args.timeout) {
        Ok(Some((server, reply))) => {
            println!("Got reply from {server}: b\"{}\"", reply.escape_ascii());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("No connection between client and server");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--timeout`: a number of seconds above 0, such as `3` or `0.5`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    // NaN compares false with everything, so it needs a test of its own.
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("the timeout must be above 0 seconds".into());
    }
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

/// Sends `message` to `host:port` and returns the server's address and
/// reply, or `None` when no reply came from it within `timeout`.
fn request(
    host: &str,
    port: u16,
    message: &[u8],
    timeout: Duration,
) -> io::Result<Option<(SocketAddr, Vec<u8>)>> {
    let context = |what: &str| {
        let what = what.to_owned();
        move |err: io::Error| io::Error::new(err.kind(), format!("{what} {host}:{port}: {err}"))
    };
    let server = (host, port)
        .to_socket_addrs()
        .map_err(context("resolving"))?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::NotFound, format!("{host} has no address")))?;
    // Port 0: any free port. The server learns it from our datagram.
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0; 16], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(context("opening a socket for"))?;
    // One send_to, one datagram: the message arrives whole or not at all.
    socket
        .send_to(message, server)
        .map_err(context("sending to"))?;
    // The deadline is fixed now: datagrams from strangers must not extend it.
    let deadline = Instant::now() + timeout;
    wait_for_reply(&socket, server, deadline).map_err(context("receiving from"))
}

/// Waits until a datagram from `server` arrives or `deadline` passes,
/// ignoring datagrams from any other address.
fn wait_for_reply(
    socket: &UdpSocket,
    server: SocketAddr,
    deadline: Instant,
) -> io::Result<Option<(SocketAddr, Vec<u8>)>> {
    let mut buffer = [0; BUFFER];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(&mut buffer) {
            Ok((received, from)) if from == server => {
                return Ok(Some((from, buffer[..received].to_vec())));
            }
            // Anyone may send to our port: that is not the reply.
            Ok(_) => {}
            // The read timed out (Unix says WouldBlock, Windows TimedOut):
            // the loop checks the deadline.
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            // Some systems report "port unreachable" from the server's side:
            // nobody is there to answer, which is what the caller reports.
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(err),
        }
    }
}
