//! `cargo xtask send HOST PORT [FILE]`: the few things the handouts' "try it"
//! lines need from `nc`, which a stock machine may not have.
//!
//! It connects to HOST:PORT (or with `--listen` waits there for one peer),
//! sends FILE (default: what you type, line by line), and prints every byte
//! that comes back until the peer closes. `--half-close` shuts down the
//! sending side at the end of the input, as a lab's client does; `--udp`
//! sends the input as one datagram and prints the one reply (with
//! `--listen`, it plays a UDP server that never answers).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `cargo xtask send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The host to connect to (or to listen on, with --listen).
    host: String,
    /// The port.
    port: u16,
    /// What to send (default: standard input).
    file: Option<PathBuf>,
    /// Shut down the sending side once everything is sent (TCP).
    #[arg(long)]
    half_close: bool,
    /// Wait at HOST:PORT for one peer instead of connecting (to play a server).
    #[arg(long)]
    listen: bool,
    /// Send one UDP datagram and print the reply (waits at most 2 s); with
    /// --listen, print the first datagram that arrives and never answer.
    #[arg(long, conflicts_with = "half_close")]
    udp: bool,
}

/// `cargo xtask send`.
pub fn run(args: &SendArgs) -> Result<ExitCode> {
    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        None => Box::new(io::stdin()),
    };
    let address = (args.host.as_str(), args.port);
    if args.udp && args.listen {
        return silent_udp_server(address);
    }
    if args.udp {
        return datagram(address, input);
    }
    let stream = if args.listen {
        let listener = TcpListener::bind(address)
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        listener.accept().context("accepting a connection")?.0
    } else {
        TcpStream::connect(address)
            .with_context(|| format!("connecting to {}:{}", args.host, args.port))?
    };
    let writer = stream.try_clone().context("cloning the socket")?;
    let half_close = args.half_close;
    // Sending and receiving at once: a peer may answer before the input ends
    // (an echo server answers each line as it comes).
    std::thread::spawn(move || send_all(input, writer, half_close));
    let mut reader = &stream;
    let mut stdout = io::stdout().lock();
    io::copy(&mut reader, &mut stdout).context("receiving")?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn send_all(mut input: impl Read, mut stream: TcpStream, half_close: bool) {
    let mut buffer = [0; 64 * 1024];
    loop {
        match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

fn datagram(address: (&str, u16), mut input: impl Read) -> Result<ExitCode> {
    let peer = address
        .to_socket_addrs()?
        .next()
        .context("the host has no address")?;
    let local = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).context("opening a UDP socket")?;
    let mut message = Vec::new();
    input
        .read_to_end(&mut message)
        .context("reading the input")?;
    socket.send_to(&message, peer).context("sending")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reply = vec![0; 65536];
    match socket.recv_from(&mut reply) {
        Ok((n, _)) => {
            io::stdout().write_all(&reply[..n])?;
            println!();
            Ok(ExitCode::SUCCESS)
        }
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            eprintln!("no reply within 2 s");
            Ok(ExitCode::FAILURE)
        }
        Err(err) => Err(err).context("receiving the reply"),
    }
}

/// Receives one datagram at `address`, prints it, and never answers: the
/// server a UDP client must time out on.
fn silent_udp_server(address: (&str, u16)) -> Result<ExitCode> {
    let socket =
        UdpSocket::bind(address).with_context(|| format!("binding {}:{}", address.0, address.1))?;
    let mut datagram = vec![0; 65536];
    let (n, from) = socket.recv_from(&mut datagram).context("receiving")?;
    eprintln!("received {n} bytes from {from}, not answering");
    io::stdout().write_all(&datagram[..n])?;
    Ok(ExitCode::SUCCESS)
}
