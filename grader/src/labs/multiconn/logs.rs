//! Reading the logs: the server's and the client's lines grouped per
//! connection, with the bytes of `Echoing` and `Received` lines joined.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};

use crate::harness::snapshot::redact;
use crate::outcome::Failure;

/// The log lines of the contract, as templates: `{}` is any text (as long
/// as the rest of the line matches), `{w}` a word without spaces, `{n}` a
/// number. A line matches when it is exactly the template filled in.
const ACCEPTED: &str = "Accepted connection from {w}";
const ECHOING: &str = "Echoing b\"{}\" to {w}";
const CLOSING: &str = "Closing connection to {w}";
const STARTING: &str = "Starting connection {n} to {w}";
const SENDING: &str = "Sending b\"{}\" to connection {n}";
const RECEIVED: &str = "Received b\"{}\" from connection {n}";
const CLIENT_CLOSING: &str = "Closing connection {n}";

/// The fields of `line` if it fills in `template` (see [`ACCEPTED`]); a
/// `{}` takes as much as it can, like `.*` in a regular expression.
fn captures<'a>(line: &'a str, template: &str) -> Option<Vec<&'a str>> {
    let mut fields = Vec::new();
    let mut rest = line;
    let mut pieces = template.split('{').peekable();
    rest = rest.strip_prefix(pieces.next().unwrap_or_default())?;
    while let Some(piece) = pieces.next() {
        let (kind, literal) = piece.split_once('}')?;
        let end = if literal.is_empty() && pieces.peek().is_none() {
            rest.len()
        } else {
            rest.rfind(literal)?
        };
        let field = &rest[..end];
        let fits = match kind {
            "w" => !field.is_empty() && !field.contains(char::is_whitespace),
            "n" => !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit()),
            _ => true,
        };
        if !fits {
            return None;
        }
        fields.push(field);
        rest = &rest[end + literal.len()..];
    }
    rest.is_empty().then_some(fields)
}

/// What the server logged about one peer. Bytes are kept as the escaped text
/// of the log: escaping works byte by byte, so joining the escaped pieces
/// gives the escaped text of the joined bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ServerView {
    pub(super) accepted: usize,
    pub(super) echoed: String,
    pub(super) echo_lines: usize,
    pub(super) closing: usize,
}

impl ServerView {
    pub(super) fn of(lines: &[String], peer: SocketAddr) -> Self {
        let peer = peer.to_string();
        let mut view = Self::default();
        for line in lines {
            if captures(line, ACCEPTED).is_some_and(|c| c[0] == peer) {
                view.accepted += 1;
            } else if let Some(c) = captures(line, ECHOING).filter(|c| c[1] == peer) {
                view.echoed.push_str(c[0]);
                view.echo_lines += 1;
            } else if captures(line, CLOSING).is_some_and(|c| c[0] == peer) {
                view.closing += 1;
            }
        }
        view
    }

    /// The view as contract lines, redacted, for a snapshot.
    pub(super) fn render(&self, peer: SocketAddr) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..self.accepted {
            lines.push(format!("Accepted connection from {peer}"));
        }
        if self.echo_lines > 0 {
            lines.push(format!("Echoing b\"{}\" to {peer}", self.echoed));
        }
        for _ in 0..self.closing {
            lines.push(format!("Closing connection to {peer}"));
        }
        lines.iter().map(|line| redact(line)).collect()
    }
}

/// What the client logged about one of its connections.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ClientView {
    pub(super) starting: Vec<String>,
    pub(super) sent: String,
    pub(super) sent_lines: usize,
    pub(super) received: String,
    pub(super) received_lines: usize,
    pub(super) closing: usize,
}

/// The client's log, by connection number.
pub(super) fn client_views(stdout: &str) -> BTreeMap<u64, ClientView> {
    let mut views: BTreeMap<u64, ClientView> = BTreeMap::new();
    let number = |text: &str| text.parse::<u64>().unwrap_or(u64::MAX);
    for line in stdout.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(c) = captures(line, STARTING) {
            let view = views.entry(number(c[0])).or_default();
            view.starting.push(c[1].to_owned());
        } else if let Some(c) = captures(line, SENDING) {
            let view = views.entry(number(c[1])).or_default();
            view.sent.push_str(c[0]);
            view.sent_lines += 1;
        } else if let Some(c) = captures(line, RECEIVED) {
            let view = views.entry(number(c[1])).or_default();
            view.received.push_str(c[0]);
            view.received_lines += 1;
        } else if let Some(c) = captures(line, CLIENT_CLOSING) {
            views.entry(number(c[0])).or_default().closing += 1;
        }
    }
    views
}

impl ClientView {
    pub(super) fn render(&self, number: u64) -> Vec<String> {
        let mut lines = Vec::new();
        for addr in &self.starting {
            lines.push(redact(&format!("Starting connection {number} to {addr}")));
        }
        if self.sent_lines > 0 {
            lines.push(format!("Sending b\"{}\" to connection {number}", self.sent));
        }
        if self.received_lines > 0 {
            lines.push(format!(
                "Received b\"{}\" from connection {number}",
                self.received
            ));
        }
        for _ in 0..self.closing {
            lines.push(format!("Closing connection {number}"));
        }
        lines
    }
}

/// The escaped text a log line shows for `bytes`.
pub(super) fn escaped(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A local address for the failure messages.
pub(super) fn local_addr(stream: &TcpStream) -> Result<SocketAddr, Failure> {
    stream
        .local_addr()
        .map_err(|err| Failure::new(format!("the grader's socket has no address: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_are_grouped_by_peer_and_echoes_joined() {
        let lines: Vec<String> = [
            "Listening on 127.0.0.1:5000",
            "Accepted connection from 127.0.0.1:40001",
            "Accepted connection from 127.0.0.1:40002",
            r#"Echoing b"say \"hi\"" to 127.0.0.1:40001"#,
            r#"Echoing b"other" to 127.0.0.1:40002"#,
            r#"Echoing b"\t\xff" to 127.0.0.1:40001"#,
            "error: something about 127.0.0.1:40001",
            "Closing connection to 127.0.0.1:40001",
        ]
        .map(String::from)
        .to_vec();
        let view = ServerView::of(&lines, "127.0.0.1:40001".parse().unwrap());
        assert_eq!(
            view,
            ServerView {
                accepted: 1,
                echoed: escaped(b"say \"hi\"\t\xff"),
                echo_lines: 2,
                closing: 1,
            }
        );
        let other = ServerView::of(&lines, "127.0.0.1:40002".parse().unwrap());
        assert_eq!((other.echoed.as_str(), other.closing), ("other", 0));
    }

    #[test]
    fn client_lines_are_grouped_by_connection_number() {
        let stdout = "Starting connection 1 to 127.0.0.1:5000\n\
                      Starting connection 2 to 127.0.0.1:5000\n\
                      Sending b\"Message 1 from client.\" to connection 2\n\
                      Received b\"Mess\" from connection 2\n\
                      Received b\"age 1 from client.\" from connection 2\n\
                      Closing connection 2\n";
        let views = client_views(stdout);
        assert_eq!(views.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(views[&2].received, "Message 1 from client.");
        assert_eq!(views[&2].received_lines, 2);
        assert_eq!(views[&1].closing, 0);
        assert_eq!(
            views[&2].render(2)[0],
            "Starting connection 2 to 127.0.0.1:[PORT]"
        );
    }
}
