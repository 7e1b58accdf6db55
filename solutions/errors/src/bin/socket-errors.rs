//! Lab 2 reference: a client that says which step of a connection failed.
//!
//! Five stages, each guarded on its own: create the socket, resolve the host,
//! connect, send the request, receive the reply. A failure prints the stage's
//! line on stderr and exits with the stage's code, so that a person (or a
//! script) can tell "no such host" from "nobody listens there" from "the
//! server hung up on us".

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

/// Fetches PATH from a server with a one-line HTTP/1.0 request, and says
/// which step failed if one does.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's host name or IPv4 address.
    #[arg(long)]
    host: String,
    /// The server's port.
    #[arg(long)]
    port: u16,
    /// The path to ask for, sent exactly as written.
    #[arg(long)]
    file: String,
    /// Seconds to wait for the connection, and for each read (a decimal above 0).
    #[arg(long, default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,
}

/// Parses `--timeout`: a decimal number of seconds above 0. A zero timeout
/// would mean "wait forever" to the socket API, the opposite of what the user
/// asked for, so it is refused along with negative numbers and NaN.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("the timeout must be above 0 seconds, not {text}"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

/// The steps of a connection, in the order they happen. Each fails in its own
/// way, so each has its own message and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    CreateSocket,
    Resolve,
    Connect,
    Send,
    Receive,
}

impl Stage {
    /// The start of the line printed on stderr when this stage fails.
    fn message(self) -> &'static str {
        match self {
            Stage::CreateSocket => "Error creating socket",
            Stage::Resolve => "Address-related error connecting to server",
            Stage::Connect => "Connection error",
            Stage::Send => "Error sending data",
            Stage::Receive => "Error receiving data",
        }
    }

    /// The exit code of a failure at this stage: scripts test for it.
    fn exit_code(self) -> u8 {
        match self {
            Stage::CreateSocket => 10,
            Stage::Resolve => 11,
            Stage::Connect => 12,
            Stage::Send => 13,
            Stage::Receive => 14,
        }
    }
}

/// Why the program stopped: a stage failed, or stdout could not take the
/// reply (which is none of the five network stages).
#[derive(Debug)]
enum Error {
    At { stage: Stage, cause: io::Error },
    Stdout(io::Error),
}

impl Error {
    /// A closure for `map_err` that files an I/O error under `stage`.
    fn at(stage: Stage) -> impl FnOnce(io::Error) -> Error {
        move |cause| Error::At { stage, cause }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Error::At { stage, .. } => ExitCode::from(stage.exit_code()),
            Error::Stdout(_) => ExitCode::FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::At { stage, cause } => write!(f, "{}: {cause}", stage.message()),
            Error::Stdout(cause) => write!(f, "error: writing the reply to stdout: {cause}"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match fetch(&args, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            err.exit_code()
        }
    }
}

/// The five stages in order; the first failure ends the program.
fn fetch(args: &Args, out: &mut impl Write) -> Result<(), Error> {
    // socket2 makes creating the socket a step of its own, as in C or Python;
    // `TcpStream::connect` would create and connect in one call, and a
    // failure to create would look like a failure to connect.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(Error::at(Stage::CreateSocket))?;
    let addr = resolve(&args.host, args.port, args.timeout).map_err(Error::at(Stage::Resolve))?;
    // Without a timeout, a connect that gets no answer waits for the kernel
    // to give up, which takes minutes.
    socket
        .connect_timeout(&addr.into(), args.timeout)
        .map_err(Error::at(Stage::Connect))?;
    let stream: TcpStream = socket.into();
    send_request(&mut &stream, &args.file)?;
    // The timeout applies to each read: a server that sends a little now and
    // then is fine, one that goes quiet for longer is given up on.
    stream
        .set_read_timeout(Some(args.timeout))
        .map_err(Error::at(Stage::Receive))?;
    copy_reply(&mut &stream, out, args.timeout)
}

/// Looks `host` up and returns its first IPv4 address. The socket was made
/// for IPv4 before we knew the address (as the classic recipe does), so an
/// IPv6-only host is an address error too.
///
/// The system resolver takes no timeout of its own; asking it from another
/// thread lets us stop waiting after `timeout` (the thread ends with the
/// process).
fn resolve(host: &str, port: u16, timeout: Duration) -> io::Result<SocketAddr> {
    let (sender, receiver) = mpsc::channel();
    let query = (host.to_owned(), port);
    thread::spawn(move || {
        let answer = query.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
        // The receiver is gone if we stopped waiting: nothing to do then.
        let _ = sender.send(answer);
    });
    let addrs = match receiver.recv_timeout(timeout) {
        Ok(answer) => answer?,
        Err(RecvTimeoutError::Timeout) => {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("no answer for {host} within {} s", timeout.as_secs_f64()),
            ));
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(io::Error::other("the resolver thread failed"));
        }
    };
    addrs
        .into_iter()
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| io::Error::new(ErrorKind::NotFound, format!("{host} has no IPv4 address")))
}

/// Sends `GET PATH HTTP/1.0` and the blank line that ends the request.
/// `write_all` because one `write` may take only part of the bytes.
fn send_request(to: &mut impl Write, path: &str) -> Result<(), Error> {
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    to.write_all(request.as_bytes())
        .map_err(Error::at(Stage::Send))
}

/// Copies every byte of the reply to `out` until the server closes (a read
/// of 0 bytes). A read error, a reset by the server included, is a receive
/// error; so is a read that waits longer than `timeout`.
fn copy_reply(from: &mut impl Read, out: &mut impl Write, timeout: Duration) -> Result<(), Error> {
    let mut buffer = [0; 4096];
    loop {
        let received = match from.read(&mut buffer) {
            Ok(0) => return out.flush().map_err(Error::Stdout),
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            // A read timeout shows up as "would block" (EAGAIN) on Unix and
            // as "timed out" on Windows: say what it means.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Error::At {
                    stage: Stage::Receive,
                    cause: io::Error::new(
                        ErrorKind::TimedOut,
                        format!("no data for {} s", timeout.as_secs_f64()),
                    ),
                });
            }
            Err(err) => return Err(Error::at(Stage::Receive)(err)),
        };
        out.write_all(&buffer[..received]).map_err(Error::Stdout)?;
    }
}

#[cfg(test)]
mod tests {
    //! The send stage cannot be made to fail from outside on loopback (the
    //! request fits in the kernel's buffers at once), so the mapping from
    //! stage to message and exit code is tested here, with readers and
    //! writers that fail on purpose.

    use rstest::rstest;

    use super::*;

    /// A reader or writer whose every call fails with `kind`.
    struct Failing(ErrorKind);

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
    }

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn stage_of(err: &Error) -> Option<Stage> {
        match err {
            Error::At { stage, .. } => Some(*stage),
            Error::Stdout(_) => None,
        }
    }

    #[rstest]
    #[case(Stage::CreateSocket, 10, "Error creating socket")]
    #[case(Stage::Resolve, 11, "Address-related error connecting to server")]
    #[case(Stage::Connect, 12, "Connection error")]
    #[case(Stage::Send, 13, "Error sending data")]
    #[case(Stage::Receive, 14, "Error receiving data")]
    fn each_stage_has_its_message_and_exit_code(
        #[case] stage: Stage,
        #[case] code: u8,
        #[case] message: &str,
    ) {
        assert_eq!(stage.exit_code(), code);
        let err = Error::at(stage)(io::Error::other("the cause"));
        assert_eq!(err.to_string(), format!("{message}: the cause"));
    }

    #[test]
    fn a_failed_send_is_a_send_error() {
        let err = send_request(&mut Failing(ErrorKind::BrokenPipe), "/").unwrap_err();
        assert_eq!(stage_of(&err), Some(Stage::Send));
        assert!(err.to_string().starts_with("Error sending data: "), "{err}");
    }

    #[test]
    fn the_request_is_one_line_and_a_blank_line() {
        let mut sent = Vec::new();
        send_request(&mut sent, "/a b?c").unwrap();
        assert_eq!(sent, b"GET /a b?c HTTP/1.0\r\n\r\n");
    }

    #[rstest]
    #[case::reset(ErrorKind::ConnectionReset)]
    #[case::timed_out(ErrorKind::WouldBlock)]
    fn a_failed_read_is_a_receive_error(#[case] kind: ErrorKind) {
        let err =
            copy_reply(&mut Failing(kind), &mut Vec::new(), Duration::from_secs(1)).unwrap_err();
        assert_eq!(stage_of(&err), Some(Stage::Receive));
    }

    #[test]
    fn a_failing_stdout_is_no_network_stage() {
        let err = copy_reply(
            &mut &b"reply"[..],
            &mut Failing(ErrorKind::BrokenPipe),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(stage_of(&err), None);
    }

    #[test]
    fn the_reply_is_copied_byte_for_byte() {
        let reply: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let mut out = Vec::new();
        copy_reply(&mut &reply[..], &mut out, Duration::from_secs(1)).unwrap();
        assert_eq!(out, reply);
    }

    #[rstest]
    #[case("5", Some(5.0))]
    #[case("1.5", Some(1.5))]
    #[case("0", None)]
    #[case("-1", None)]
    #[case("NaN", None)]
    #[case("soon", None)]
    fn timeouts_are_decimals_above_zero(#[case] text: &str, #[case] seconds: Option<f64>) {
        assert_eq!(
            parse_timeout(text).ok(),
            seconds.map(Duration::from_secs_f64)
        );
    }
}
