//! Lab 2 reference: a server that reports a failed bind the classic way.
//!
//! The steps of `TcpListener::bind` done one by one with socket2: create the
//! socket, set SO_REUSEADDR, bind, listen. Only the bind gets its own message
//! and exit code, because it is the step that fails in practice: the port is
//! taken, or belongs to another address, or needs privileges.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::process::ExitCode;

use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

/// Binds, listens, and logs every client that connects.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 5555)]
    port: u16,
}

/// The exit code of a failed bind.
const BIND_FAILED: u8 = 15;

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = match (args.host.as_str(), args.port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => addr,
            None => {
                eprintln!("error: {} has no address", args.host);
                return ExitCode::FAILURE;
            }
        },
        Err(err) => {
            eprintln!("error: resolving {}: {err}", args.host);
            return ExitCode::FAILURE;
        }
    };
    let socket = match bind(addr) {
        Ok(socket) => socket,
        Err(Failed::Bind(err)) => {
            eprintln!(
                "Bind failed. Error code: {} Message: {}",
                err.raw_os_error().unwrap_or(0),
                os_message(&err)
            );
            return ExitCode::from(BIND_FAILED);
        }
        Err(Failed::Other(err)) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match serve(socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Why [`bind`] failed: the bind itself, or a step that rarely fails.
#[derive(Debug)]
enum Failed {
    Bind(io::Error),
    Other(io::Error),
}

/// Creates a TCP socket for `addr`'s family, sets SO_REUSEADDR and binds.
fn bind(addr: SocketAddr) -> Result<Socket, Failed> {
    let context = |what: &'static str| {
        move |err: io::Error| Failed::Other(io::Error::new(err.kind(), format!("{what}: {err}")))
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(context("creating the socket"))?;
    // SO_REUSEADDR lets us bind a port that still has connections of an
    // earlier server in TIME_WAIT, so a restarted server comes back at once.
    // It does not let two live servers share a listening port on Linux.
    socket
        .set_reuse_address(true)
        .map_err(context("setting SO_REUSEADDR"))?;
    socket.bind(&addr.into()).map_err(Failed::Bind)?;
    Ok(socket)
}

/// Listens, announces the address, and logs each client as it connects.
fn serve(socket: Socket) -> io::Result<()> {
    let mut stdout = io::stdout();
    writeln!(stdout, "Socket bind complete")?;
    socket.listen(10)?;
    let listener: TcpListener = socket.into();
    // With port 0 the OS picked the port: only the listener knows which.
    writeln!(stdout, "Listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                writeln!(stdout, "Connected with {peer}")?;
                stdout.flush()?;
                // This server has nothing to say: it closes the connection
                // at once, which leaves that connection in TIME_WAIT on the
                // server's side once the client closes too.
                drop(stream);
            }
            // A failed accept concerns one client; the server carries on.
            Err(err) => writeln!(stdout, "error: accepting a connection: {err}")?,
        }
    }
}

/// The operating system's text for `err` without Rust's `(os error N)`
/// suffix: the code is printed on its own already.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_messages_lose_their_code_suffix() {
        let err = io::Error::from_raw_os_error(98);
        let message = os_message(&err);
        assert!(
            !message.is_empty() && !message.contains("os error"),
            "{message}"
        );
    }

    #[test]
    fn a_port_taken_by_a_listener_cannot_be_bound_even_with_reuseaddr() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let Err(Failed::Bind(err)) = bind(taken.local_addr().unwrap()) else {
            panic!("bound a port another socket listens on");
        };
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
