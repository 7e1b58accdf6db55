//! Lab 1 reference: a TCP echo client.
//!
//! Connects, sends the whole message, half-closes to say "I'm done sending",
//! then reads until the server closes and prints every byte it got back.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;

use clap::Parser;

/// Sends a message to an echo server and prints what comes back.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// The server's port.
    #[arg(default_value_t = 65432)]
    port: u16,
    /// What to send.
    #[arg(default_value = "Hello, world")]
    message: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match exchange(&args.host, args.port, args.message.as_bytes()) {
        Ok(reply) => {
            println!("Received b\"{}\"", reply.escape_ascii());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `message` and returns everything the server sent back.
fn exchange(host: &str, port: u16, message: &[u8]) -> io::Result<Vec<u8>> {
    let context = |what: &str| {
        let what = what.to_owned();
        move |err: io::Error| io::Error::new(err.kind(), format!("{what} {host}:{port}: {err}"))
    };
    let mut stream = TcpStream::connect((host, port)).map_err(context("connecting to"))?;
    stream.write_all(message).map_err(context("sending to"))?;
    // Without this the server could not tell that the message is complete,
    // and both sides would wait for each other forever.
    stream
        .shutdown(Shutdown::Write)
        .map_err(context("half-closing the connection to"))?;
    let mut reply = Vec::new();
    // One read returns whatever has arrived so far; read_to_end loops until
    // read returns 0, which means the server closed the connection.
    stream
        .read_to_end(&mut reply)
        .map_err(context("receiving from"))?;
    Ok(reply)
}
