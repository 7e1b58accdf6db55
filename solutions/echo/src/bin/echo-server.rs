//! Lab 1 reference: a TCP echo server that serves one client after another.
//!
//! The whole TCP story on the server side: bind and listen (one call in
//! Rust), accept a connection, read and write until the client closes, then
//! go back to accept.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

use clap::Parser;

/// An echo server: sends every byte back to the client that sent it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 65432)]
    port: u16,
}

/// The most a single read asks for: small on purpose, so that a long message
/// takes several reads, as it may on a real network anyway.
const CHUNK: usize = 1024;

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

/// Binds, announces the address it really got, and serves clients forever.
fn serve(host: &str, port: u16) -> io::Result<()> {
    let listener = TcpListener::bind((host, port))
        .map_err(|err| io::Error::new(err.kind(), format!("binding {host}:{port}: {err}")))?;
    // With port 0 the OS picked the port: only the listener knows which.
    println!("Listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(connection) => connection,
            // A failed accept (e.g. the client gave up already) concerns that
            // client only; the server carries on.
            Err(err) => {
                eprintln!("error: accepting a connection: {err}");
                continue;
            }
        };
        println!("Connected by {peer}");
        if let Err(err) = echo(stream) {
            println!("error: {peer}: {err}");
        }
        println!("Disconnected {peer}");
    }
}

/// Echoes until the client closes its side: `read` returning 0 means end of
/// stream. Each chunk is written back whole with `write_all`, because one
/// `write` may send fewer bytes than it was given.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buffer = [0; CHUNK];
    loop {
        let received = match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        stream.write_all(&buffer[..received])?;
    }
}
