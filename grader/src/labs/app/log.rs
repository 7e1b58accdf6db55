//! The server's log: the lines the contract names, compared with the
//! snapshot recorded from the solution.

use serde_json::{Value, json};

use crate::harness::net;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::protocol::{Expected, binary_request_bytes, json_request, judge, read_response};
use super::server::{ALL_AT_ONCE, HALF_CLOSE};
use super::{CLIENT_BINARY_TYPE, SERVER};

/// The server log lines the contract names, with every `Received request`
/// object re-serialised (sorted keys, no spaces) so that the snapshot does
/// not depend on how a program formats JSON.
fn contract_lines(server: &Server) -> String {
    let prefixes = [
        "Listening on ",
        "Accepted connection from ",
        "Received ",
        "Closing connection to ",
    ];
    let lines: Vec<String> = server
        .lines()
        .into_iter()
        // Error lines stay in, whatever their case: one where nothing went
        // wrong (a WouldBlock logged as an error) is a difference.
        .filter(|line| {
            prefixes.iter().any(|prefix| line.starts_with(prefix))
                || line.to_ascii_lowercase().starts_with("error")
        })
        .map(|line| match parse_received_request(&line) {
            Some((object, peer)) => format!("Received request {object} from {peer}"),
            None => error_reason_redacted(line),
        })
        .collect();
    redact(&lines.join("\n"))
}

/// `Error: PEER: REASON` with REASON, which is the program's own wording,
/// replaced by `[REASON]`; other lines unchanged.
fn error_reason_redacted(line: String) -> String {
    let peer_and_reason = line
        .strip_prefix("Error: ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(peer, _)| peer.parse::<std::net::SocketAddr>().is_ok());
    match peer_and_reason {
        Some((peer, _)) => format!("Error: {peer}: [REASON]"),
        None => line,
    }
}

/// Splits `Received request {…} from PEER` into the parsed object and PEER.
fn parse_received_request(line: &str) -> Option<(Value, &str)> {
    let rest = line.strip_prefix("Received request ")?;
    let (object, peer) = rest.rsplit_once(" from ")?;
    let object: Value = serde_json::from_str(object).ok()?;
    object.is_object().then_some((object, peer))
}

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let search_request = json_request("search", "morpheus");
    let binary_content = b"double\xf0\x9f\x90\xb6";
    let exchanges: [(&[u8], Expected, String); 2] = [
        (
            &search_request,
            Expected::for_search("search", "morpheus"),
            format!(
                "Received request {} from PEER",
                json!({"action": "search", "value": "morpheus"})
            ),
        ),
        (
            &binary_request_bytes(binary_content),
            Expected::for_binary(binary_content),
            format!("Received {CLIENT_BINARY_TYPE} request from PEER"),
        ),
    ];
    for (request, expected, received_line) in &exchanges {
        let stream = server.connect(ctx.deadline())?;
        let peer = stream
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        net::send(&stream, request, ALL_AT_ONCE, ctx.deadline())
            .map_err(|err| Failure::new(format!("sending the request failed: {err}")))?;
        let (received, end) = read_response(&stream, ctx.within(5.0));
        judge(&received, &end, expected).map_err(|failure| server.explain(failure))?;
        drop(stream);
        let closing = format!("Closing connection to {peer}");
        let expected_lines = format!(
            "Accepted connection from {peer}\n{}\n{closing}",
            received_line.replace("PEER", &peer.to_string())
        );
        if server
            .wait_for_line(ctx.within(5.0), |line| line == closing)
            .is_none()
        {
            return Err(
                Failure::new("the server did not log closing the connection")
                    .expected(format!(
                        "{expected_lines}\n   (PEER as the client sees its own address)"
                    ))
                    .actual(show::tail(&server.stdout(), 10)),
            );
        }
        let lines = server.lines();
        let accepted = lines
            .iter()
            .any(|line| *line == format!("Accepted connection from {peer}"));
        let logged = lines.iter().any(|line| match parse_received_request(line) {
            Some((object, logged_peer)) => {
                logged_peer == peer.to_string()
                    && object == json!({"action": "search", "value": "morpheus"})
                    && received_line.starts_with("Received request ")
            }
            None => *line == received_line.replace("PEER", &peer.to_string()),
        });
        if !accepted || !logged {
            return Err(Failure::new(
                "the server did not log the connection and its request as the contract says",
            )
            .expected(expected_lines)
            .actual(show::tail(&server.stdout(), 10))
            .detail("the {…} in `Received request {…} from PEER` is the request's content as one line of JSON (the grader parses it)"));
        }
    }
    // A client that closes after one byte of its request: bad input, one
    // `Error:` line for that peer, then its connection closes.
    let stream = server.connect(ctx.deadline())?;
    let peer = stream
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    net::send(&stream, &search_request[..1], HALF_CLOSE, ctx.deadline())
        .map_err(|err| Failure::new(format!("sending one byte failed: {err}")))?;
    drop(stream);
    let closing = format!("Closing connection to {peer}");
    if server
        .wait_for_line(ctx.within(5.0), |line| line == closing)
        .is_none()
    {
        return Err(Failure::new(
            "the server did not close the connection of a client that closed after one byte of its request",
        )
        .expected(format!(
            "Accepted connection from {peer}\nError: {peer}: REASON\n{closing}"
        ))
        .actual(show::tail(&server.stdout(), 10)));
    }
    ctx.snapshot(&contract_lines(&server))
}
