//! Lab 6 reference: a thread-per-connection server that keeps a shared list
//! of the clients that registered with it.
//!
//! Every client sends its name and half-closes; the server records the name
//! with the address it saw the client connect from, and answers with the
//! whole list as JSON. Each connection gets a thread of its own, so a slow
//! client only ever holds up its own thread; the list is shared between those
//! threads behind an `Arc<Mutex<…>>`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use clap::Parser;
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

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

/// What the server knows about one client: the JSON object in the reply.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    name: String,
    address: String,
    port: u16,
}

/// The list every connection thread shares. A `BTreeMap` keeps the names
/// sorted (by their UTF-8 bytes), so the reply comes out sorted for free, and
/// inserting a name that is already there replaces its entry.
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

/// How many connections may wait to be accepted. `TcpListener::bind` asks
/// for 128; a burst of a thousand clients overflows that queue and the
/// kernel resets the newcomers, so this server asks for more.
const BACKLOG: i32 = 1024;

/// `TcpListener::bind` with a longer accept queue: socket, SO_REUSEADDR,
/// bind and listen as separate steps (lab 2 takes them apart the same way).
fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for this host"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds, announces the address it got, then hands every connection to a
/// thread of its own and goes straight back to `accept`.
fn serve(host: &str, port: u16) -> io::Result<()> {
    let listener = listen(host, port)
        .map_err(|err| io::Error::new(err.kind(), format!("binding {host}:{port}: {err}")))?;
    println!("Listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    let clients = Clients::default();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(connection) => connection,
            // A failed accept concerns that one client; the server carries on.
            Err(err) => {
                println!("error: accepting a connection: {err}");
                continue;
            }
        };
        // Each thread gets its own handle on the same list.
        let clients = Arc::clone(&clients);
        let spawned = thread::Builder::new()
            .name(format!("client {peer}"))
            .spawn(move || {
                if let Err(err) = handle(stream, peer, &clients) {
                    println!("error: {peer}: {err}");
                }
            });
        // Out of threads: that client is dropped (its stream went with the
        // closure), the others are still served.
        if let Err(err) = spawned {
            println!("error: {peer}: starting a thread: {err}");
        }
    }
}

/// Serves one client: reads its name, records it, sends the whole list back,
/// and shuts the connection down.
fn handle(mut stream: TcpStream, peer: SocketAddr, clients: &Clients) -> io::Result<()> {
    let name = read_name(&mut stream)?;
    let entry = Entry {
        name: name.clone(),
        address: peer.ip().to_string(),
        port: peer.port(),
    };
    let reply = {
        // A thread that panicked while holding the lock "poisons" it. Our
        // critical section is an insert and a serialisation, which cannot
        // leave the map half-changed, so the data is still good: take it.
        let mut clients = clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.insert(name.clone(), entry);
        serde_json::to_vec(&*clients)?
        // The guard is dropped here: the lock is never held while we wait on
        // the network, or one slow client would stall every other thread.
    };
    println!("Registered {name} from {peer}");
    stream.write_all(&reply)?;
    stream.shutdown(Shutdown::Both)
}

/// Reads the client's name: everything it sends until it half-closes.
///
/// It may arrive in any number of pieces, and a multi-byte character may be
/// split between two of them, so the bytes are collected first and decoded
/// once at the end.
fn read_name(stream: &mut TcpStream) -> io::Result<String> {
    let mut bytes = Vec::new();
    // One byte more than the limit is enough to know a name is too long, and
    // a client cannot make us buffer more than that.
    Read::take(stream, MAX_NAME as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.is_empty() {
        return Err(refused("the name is empty".to_owned()));
    }
    if bytes.len() > MAX_NAME {
        return Err(refused(format!("the name is longer than {MAX_NAME} bytes")));
    }
    String::from_utf8(bytes).map_err(|err| {
        refused(format!(
            "the name is not valid UTF-8 (byte {} is bad)",
            err.utf8_error().valid_up_to()
        ))
    })
}

/// An error about what the client sent (as opposed to a network failure).
fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("refused: {reason}"))
}
