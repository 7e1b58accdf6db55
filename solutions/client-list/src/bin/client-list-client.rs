//! Lab 6 reference: registers a name with the client-list server and prints
//! the list it gets back, as JSON indented with four spaces.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use serde_json::ser::PrettyFormatter;
use serde_json::{Map, Value};

/// Registers with a client-list server and prints every client it knows.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// The server's port.
    #[arg(default_value_t = 5000)]
    port: u16,
    /// The name to register under.
    #[arg(long, default_value = "name")]
    name: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Registers, then prints the list the server sent back.
fn run(args: &Args) -> io::Result<()> {
    let reply = register(&args.host, args.port, args.name.as_bytes())?;
    if reply.is_empty() {
        return Err(io::Error::other(format!(
            "{}:{} closed the connection without sending the list (was the name refused?)",
            args.host, args.port
        )));
    }
    // With serde_json's `preserve_order` feature (Cargo.toml), a `Map` keeps
    // its members in the order they were parsed: the server's order.
    let list: Map<String, Value> = serde_json::from_slice(&reply).map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the reply is not a JSON object: {err}"),
        )
    })?;
    let mut out = io::stdout().lock();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(b"    "));
    list.serialize(&mut serializer)?;
    writeln!(out)?;
    out.flush()
}

/// Sends `name`, half-closes, and returns the whole reply.
fn register(host: &str, port: u16, name: &[u8]) -> io::Result<Vec<u8>> {
    let context = |what: &str| {
        let what = what.to_owned();
        move |err: io::Error| io::Error::new(err.kind(), format!("{what} {host}:{port}: {err}"))
    };
    let mut stream = TcpStream::connect((host, port)).map_err(context("connecting to"))?;
    stream.write_all(name).map_err(context("sending to"))?;
    // The half-close is how the server knows the name is complete.
    stream
        .shutdown(Shutdown::Write)
        .map_err(context("half-closing the connection to"))?;
    // The list grows with every client: it can be far longer than what one
    // read returns, so read until the server closes.
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .map_err(context("receiving from"))?;
    Ok(reply)
}
