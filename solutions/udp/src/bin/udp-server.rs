//! Lab 5 reference: a UDP server that answers every datagram.
//!
//! There is no connection and no `accept`: one socket receives datagrams from
//! anyone, `recv_from` says who sent each one, and the reply goes back to
//! exactly that address with `send_to`.

use std::io::{self, ErrorKind, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;

use clap::Parser;

/// A UDP server: logs every datagram and answers `Got your message!`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to bind to (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to bind to; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 6667)]
    port: u16,
}

/// The receive buffer. A datagram longer than this is cut to this size by
/// the kernel (the rest is lost), so it bounds what the server can see.
const BUFFER: usize = 8192;

/// What every sender gets back.
const REPLY: &[u8] = b"Got your message!";

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(&args.host, args.port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds, announces the address it really got, and answers datagrams forever.
fn serve(host: &str, port: u16) -> io::Result<()> {
    let socket = UdpSocket::bind((host, port))
        .map_err(|err| io::Error::new(err.kind(), format!("binding {host}:{port}: {err}")))?;
    // Rust's stdout flushes at every newline, so each line is visible at once.
    let mut out = io::stdout().lock();
    // With port 0 the OS picked the port: only the socket knows which.
    writeln!(out, "Listening on {}", socket.local_addr()?)?;
    out.flush()?;
    let mut buffer = [0; BUFFER];
    loop {
        let (received, peer) = match socket.recv_from(&mut buffer) {
            Ok(datagram) => datagram,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            // Some systems (Windows) report here that an earlier reply could
            // not be delivered. That concerns one peer; the server carries on.
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
                ) =>
            {
                writeln!(out, "error: receiving: {err}")?;
                continue;
            }
            Err(err) => {
                return Err(io::Error::new(err.kind(), format!("receiving: {err}")));
            }
        };
        answer(&socket, &mut out, &buffer[..received], peer)?;
    }
}

/// Logs one datagram and replies to its sender. An empty datagram is a
/// datagram like any other: for UDP, 0 bytes does not mean "closed".
fn answer(
    socket: &UdpSocket,
    out: &mut impl Write,
    data: &[u8],
    peer: SocketAddr,
) -> io::Result<()> {
    // escape_ascii shows any bytes, text or not, without ever failing.
    writeln!(out, "Got message from {peer}: b\"{}\"", data.escape_ascii())?;
    // A failed reply concerns that peer only; UDP promised nothing anyway.
    if let Err(err) = socket.send_to(REPLY, peer) {
        writeln!(out, "error: replying to {peer}: {err}")?;
    }
    Ok(())
}
