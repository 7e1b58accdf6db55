//! Lab 6: a server that gives every connection a thread of its own and keeps
//! a list of its clients that all those threads share.
//!
//! Your task, step by step, is in the handout: labs/client-list/README.md.
//! Grade it with `cargo xtask grade lab6`.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde::Serialize;

/// Keeps a list of the clients that registered, and sends it to each of them.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (loopback unless you choose otherwise).
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 lets the operating system choose a free one.
    #[arg(default_value_t = 5000)]
    port: u16,
}

/// The longest name accepted, in bytes of UTF-8 (not in characters).
const MAX_NAME: usize = 256;

/// What the server knows about one client: the JSON object in the reply,
/// `{"name": …, "address": "127.0.0.1", "port": 41234}`.
#[allow(dead_code)] // until your handle() builds one
#[derive(Debug, Clone, Serialize)]
struct Entry {
    name: String,
    address: String,
    port: u16,
}

/// The list every connection thread shares (handout: "Sharing the list:
/// Arc and Mutex"). A `BTreeMap` keeps the names sorted, and inserting a
/// name that is already there replaces its entry.
type Clients = Arc<Mutex<BTreeMap<String, Entry>>>;

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

/// Binds to `host:port`, prints `Listening on ADDR` (flushed), creates the
/// shared [`Clients`], then accepts forever: each connection goes to a new
/// thread running [`handle`] with its own `Arc::clone` of the list. An error
/// with one client is logged as `error: PEER: …` and the server carries on.
///
/// Handout: "Step 1: a thread per connection".
fn serve(host: &str, port: u16) -> io::Result<()> {
    todo!(
        "bind a TcpListener to ({host}, {port}), print `Listening on` with its local_addr(), \
         then accept in a loop and thread::spawn a handle() for each connection"
    )
}

/// Serves one client: [`read_name`], insert an [`Entry`] with the peer's
/// address and port under the name while holding the lock as briefly as you
/// can, print `Registered NAME from PEER`, send the whole list as JSON with
/// `write_all`, and shut the connection down.
///
/// Handout: "Step 2: register and reply" and "Poisoning".
#[allow(dead_code)] // until your serve() calls it
fn handle(stream: TcpStream, peer: SocketAddr, clients: &Clients) -> io::Result<()> {
    todo!(
        "read the name from {stream:?}, record {peer} in {} entries, reply with the list as JSON",
        clients.lock().map_or(0, |list| list.len())
    )
}

/// Reads everything the client sends until it half-closes, and returns it
/// as a `String`. Refuses (with an error) a name that is empty, longer than
/// [`MAX_NAME`] bytes, or not valid UTF-8.
///
/// Handout: "Step 3: reading the name".
#[allow(dead_code)] // until your handle() calls it
fn read_name(stream: &mut TcpStream) -> io::Result<String> {
    todo!(
        "read from {stream:?} until end of stream (at most {} bytes are worth reading), check the length, decode as UTF-8",
        MAX_NAME + 1
    )
}
