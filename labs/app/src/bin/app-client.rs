//! Lab 4: the application client.
//!
//! Your task, step by step, is in the handout: labs/app/README.md ("Step 5:
//! the client"). Grade it with `cargo xtask grade lab4`.

use std::net::TcpStream;
use std::process::ExitCode;

use app::Message;
use clap::Parser;

/// Sends one request to an app server and prints its answer.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's address.
    host: String,
    /// The server's port.
    port: u16,
    /// `search` sends a JSON request; any other action a binary one.
    action: String,
    /// What to search for (or the rest of the binary content).
    value: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The request for `action` and `value`: for `search`, a `text/json`
/// message `{"action": …, "value": …}`; otherwise the bytes of ACTION then
/// VALUE, content-type `binary/custom-client-binary-type`, encoding `binary`.
///
/// Handout: "Step 5: the client".
#[allow(dead_code)] // until your run() uses it
fn request(action: &str, value: &str) -> Message {
    todo!("build the request for action {action:?} and value {value:?}")
}

/// Connects, sends the encoded request, reads the response with
/// [`read_response`], and returns the line to print (see [`describe`]).
/// Every failure becomes an error message: `connecting to ADDR: …`,
/// `malformed response from ADDR: …`.
///
/// Handout: "Step 5: the client".
fn run(args: &Args) -> Result<String, String> {
    todo!(
        "connect to {}:{}, send the request, read and describe the response",
        args.host,
        args.port
    )
}

/// Reads until the buffer holds a whole message ([`app::decode`] after every
/// read). End of stream before that is an error.
///
/// Handout: "Step 5: the client" and "A byte stream has no message
/// boundaries".
#[allow(dead_code)] // until your run() uses it
fn read_response(stream: &mut TcpStream) -> std::io::Result<Message> {
    todo!("read from {stream:?} until app::decode finds a whole message")
}

/// The line to print: `Got result: RESULT` for a `text/json` response (a
/// string result without its JSON quotes), `Got response: b"…"` (with
/// `escape_ascii`) for anything else. Content that is not JSON, or has no
/// `result`, is an error.
///
/// Handout: "Step 5: the client".
#[allow(dead_code)] // until your run() uses it
fn describe(response: Message) -> Result<String, String> {
    todo!("turn {response:?} into the line to print")
}
