//! Reading the logs: the server's and the client's lines grouped per
//! connection, with the bytes of `Echoing` and `Received` lines joined.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::LazyLock;

use regex::Regex;

use crate::harness::snapshot::redact;
use crate::outcome::Failure;

static ACCEPTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Accepted connection from (\S+)$").expect("valid regex"));
static ECHOING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^Echoing b"(.*)" to (\S+)$"#).expect("valid regex"));
static CLOSING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Closing connection to (\S+)$").expect("valid regex"));
static STARTING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Starting connection (\d+) to (\S+)$").expect("valid regex"));
static SENDING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^Sending b"(.*)" to connection (\d+)$"#).expect("valid regex"));
static RECEIVED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^Received b"(.*)" from connection (\d+)$"#).expect("valid regex")
});
static CLIENT_CLOSING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Closing connection (\d+)$").expect("valid regex"));

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
            if ACCEPTED.captures(line).is_some_and(|c| c[1] == peer) {
                view.accepted += 1;
            } else if let Some(c) = ECHOING.captures(line).filter(|c| c[2] == peer) {
                view.echoed.push_str(&c[1]);
                view.echo_lines += 1;
            } else if CLOSING.captures(line).is_some_and(|c| c[1] == peer) {
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
        if let Some(c) = STARTING.captures(line) {
            let view = views.entry(number(&c[1])).or_default();
            view.starting.push(c[2].to_owned());
        } else if let Some(c) = SENDING.captures(line) {
            let view = views.entry(number(&c[2])).or_default();
            view.sent.push_str(&c[1]);
            view.sent_lines += 1;
        } else if let Some(c) = RECEIVED.captures(line) {
            let view = views.entry(number(&c[2])).or_default();
            view.received.push_str(&c[1]);
            view.received_lines += 1;
        } else if let Some(c) = CLIENT_CLOSING.captures(line) {
            views.entry(number(&c[1])).or_default().closing += 1;
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
