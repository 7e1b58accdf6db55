//! The tokio baseline: the echo server a Rust programmer would write with
//! tokio, a task per connection on the multi-threaded runtime.
//!
//! It logs the same lines as the lab 3 reference server (`Accepted connection
//! from`, `Echoing b"…" to`, `Closing connection to`), each flushed, so that
//! both do the same work per message and the comparison is of the I/O model.

use std::io::Write;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args.next().unwrap_or_else(|| "65432".into());
    let listener = match TcpListener::bind(format!("{host}:{port}")).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: bind {host}:{port}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => log(format_args!("Listening on {addr}")),
        Err(err) => {
            eprintln!("error: local address: {err}");
            return std::process::ExitCode::FAILURE;
        }
    }
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                log(format_args!("Accepted connection from {peer}"));
                tokio::spawn(echo(stream, peer));
            }
            // Out of descriptors, say: that client is lost, the server goes on.
            Err(err) => log(format_args!("error: accept: {err}")),
        }
    }
}

async fn echo(mut stream: TcpStream, peer: SocketAddr) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                log(format_args!(
                    "Echoing b\"{}\" to {peer}",
                    buf[..n].escape_ascii()
                ));
                if let Err(err) = stream.write_all(&buf[..n]).await {
                    log(format_args!("error: {peer}: {err}"));
                    return;
                }
            }
            Err(err) => {
                log(format_args!("error: {peer}: {err}"));
                return;
            }
        }
    }
    log(format_args!("Closing connection to {peer}"));
}

/// One line on stdout, flushed (stdout is line-buffered, as in the labs).
fn log(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
