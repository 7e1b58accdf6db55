//! Lab 4 reference: the application client.
//!
//! Sends one request framed like every message of the protocol, then reads
//! until the buffer holds one whole response. It cannot read "until the
//! server closes" to find the end: the framing says where the response ends.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use app::{Message, TEXT_JSON};
use clap::Parser;
use serde_json::{Value, json};

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

/// The request for `action` and `value`: JSON for a search, bytes otherwise.
fn request(action: &str, value: &str) -> Message {
    if action == "search" {
        Message::json(&json!({ "action": action, "value": value }))
    } else {
        let content = [action.as_bytes(), value.as_bytes()].concat();
        Message::new("binary/custom-client-binary-type", "binary", content)
    }
}

/// Sends the request, reads the response, and returns the line to print.
fn run(args: &Args) -> Result<String, String> {
    let server = format!("{}:{}", args.host, args.port);
    let mut stream = TcpStream::connect((args.host.as_str(), args.port))
        .map_err(|err| format!("connecting to {server}: {err}"))?;
    let bytes = request(&args.action, &args.value)
        .encode()
        .map_err(|err| format!("building the request: {err}"))?;
    stream
        .write_all(&bytes)
        .map_err(|err| format!("sending to {server}: {err}"))?;
    let response =
        read_response(&mut stream).map_err(|err| format!("receiving from {server}: {err}"))?;
    describe(response).map_err(|err| format!("malformed response from {server}: {err}"))
}

/// Reads until the buffer holds a whole message. End of stream before that
/// is an error: the server closed in the middle of its response.
fn read_response(stream: &mut TcpStream) -> io::Result<Message> {
    let mut buffer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match app::decode(&buffer) {
            Ok(Some((message, _))) => return Ok(message),
            Ok(None) => {}
            Err(err) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed response: {err}"),
                ));
            }
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the server closed the connection after {} bytes, before the response was complete",
                    buffer.len()
                ),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The line to print for a response: `Got result: …` for JSON (a string
/// without its quotes), `Got response: b"…"` for anything else.
fn describe(response: Message) -> Result<String, String> {
    if response.header.content_type != TEXT_JSON {
        return Ok(format!(
            "Got response: b\"{}\"",
            response.content.escape_ascii()
        ));
    }
    let text = String::from_utf8(response.content)
        .map_err(|err| format!("the content is not UTF-8: {err}"))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|err| format!("the content is not JSON: {err}"))?;
    match value.get("result") {
        Some(Value::String(result)) => Ok(format!("Got result: {result}")),
        Some(result) => Ok(format!("Got result: {result}")),
        None => Err(format!("the content has no \"result\": {text}")),
    }
}
