//! Snapshots: expected output recorded from the reference solutions.
//!
//! Snapshots are insta `.snap` files under `grader/snapshots/`. The project's
//! own tests record them from the solutions with insta (so `cargo insta
//! review` works as usual); grading compares with the copies compiled into
//! the grader ([`SNAPSHOTS`]), renders a diff, and never writes a file. The
//! tests hand the grader their recorder ([`SnapshotMode::Record`]): insta is
//! one of their dependencies, not the grader's, so a grade never compiles it.

use std::path::PathBuf;

use similar::TextDiff;

use crate::outcome::{CheckResult, Failure};

/// Whether a snapshot check compares (grading) or records (the project's tests).
#[derive(Debug, Clone, Copy, Default)]
pub enum SnapshotMode {
    /// Compare with the stored snapshot; never write.
    #[default]
    Compare,
    /// Hand `(name, actual)` to a recorder: the project's tests pass one that
    /// asserts with insta, which records new or changed snapshots in
    /// [`snapshot_dir`] for review.
    Record(fn(name: &str, actual: &str)),
}

/// Where the snapshot files live: in the grader, never under `labs/`. The
/// project's tests record them there; grading reads [`SNAPSHOTS`].
pub fn snapshot_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"))
}

/// `(name, contents)` of snapshot files in `grader/snapshots/`, compiled in.
macro_rules! compiled_in {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../snapshots/", $name, ".snap")))),*]
    };
}

/// Every snapshot, compiled into the grader as the rubric is: neither a
/// graded program nor an edited copy of `grader/snapshots/` changes what a
/// grade compares with. (A test keeps this list and the folder in step.)
pub const SNAPSHOTS: &[(&str, &str)] = compiled_in![
    "app.client_output",
    "app.server_log",
    "client-list.client_output",
    "client-list.server_log",
    "echo.client_output",
    "echo.server_log",
    "errors.bind_clients",
    "errors.messages",
    "multiconn.client_log",
    "multiconn.server_log",
    "udp.client_reply",
    "udp.server_log",
];

/// Replaces what changes from run to run with placeholders: port numbers
/// (`127.0.0.1:41234` → `127.0.0.1:[PORT]`).
pub fn redact(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut copied = 0;
    for (colon, _) in text.match_indices(':') {
        if colon < copied {
            continue;
        }
        let after = &text[colon + 1..];
        let port = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let ends_word = after[port..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if (1..=5).contains(&port) && ends_word && ends_with_ip(&text[..colon]) {
            redacted.push_str(&text[copied..colon]);
            redacted.push_str(":[PORT]");
            copied = colon + 1 + port;
        }
    }
    redacted.push_str(&text[copied..]);
    redacted
}

/// Whether `text` ends with an IPv4 address (`127.0.0.1`) or a bracketed
/// IPv6 one (`[::1]`).
fn ends_with_ip(text: &str) -> bool {
    if let Some(inside) = text.strip_suffix(']') {
        let inside = inside.rsplit_once('[').map_or("", |(_, inside)| inside);
        return !inside.is_empty()
            && inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    let octet =
        |group: &str| (1..=3).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_digit());
    let mut groups = text.rsplitn(4, '.');
    let (Some(fourth), Some(third), Some(second), Some(first)) =
        (groups.next(), groups.next(), groups.next(), groups.next())
    else {
        return false;
    };
    // The address may follow other text (`at127.1.2.3`): the first octet is
    // the last one to three digits before the dot.
    let first_digits = first.len() - first.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    octet(fourth) && octet(third) && octet(second) && first_digits >= 1
}

/// Replaces the text after each of `prefixes` on a line with `[OS ERROR]`:
/// operating systems and languages word the same error differently.
pub fn redact_after(text: &str, prefixes: &[&str]) -> String {
    text.lines()
        .map(
            |line| match prefixes.iter().find(|prefix| line.starts_with(*prefix)) {
                Some(prefix) => format!("{prefix}[OS ERROR]"),
                None => line.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares `actual` with snapshot `name`, or records it (see [`SnapshotMode`]).
pub fn check(name: &str, actual: &str, mode: SnapshotMode) -> CheckResult {
    match mode {
        SnapshotMode::Compare => compare(name, actual),
        SnapshotMode::Record(record) => {
            record(name, actual);
            Ok(())
        }
    }
}

/// Compares `actual` with the snapshot `name` compiled into the grader.
pub fn compare(name: &str, actual: &str) -> CheckResult {
    let stored = SNAPSHOTS
        .iter()
        .find(|(stored, _)| *stored == name)
        .map(|(_, contents)| *contents)
        .ok_or_else(|| {
            Failure::new(format!(
                "the grader has no snapshot `{name}`; this is a grader bug"
            ))
        })?;
    let expected = normalize(snap_contents(stored));
    let actual = normalize(actual);
    if expected == actual {
        return Ok(());
    }
    let diff = TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header("expected (snapshot)", "actual (your program)")
        .to_string();
    Err(
        Failure::new("the output does not match the snapshot recorded from the reference solution")
            .diff(format!(
                "lines with - are expected but missing, lines with + are yours:\n{diff}"
            )),
    )
}

/// The body of an insta snapshot file (everything after its header).
fn snap_contents(file: &str) -> &str {
    let Some(rest) = file.strip_prefix("---\n") else {
        return file;
    };
    rest.split_once("\n---\n").map_or(rest, |(_, body)| body)
}

/// Insta ignores trailing whitespace and surrounding blank lines; so do we.
fn normalize(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let text = lines.join("\n");
    format!("{}\n", text.trim_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_redacted_but_addresses_kept() {
        assert_eq!(
            redact("Connected by 127.0.0.1:53412"),
            "Connected by 127.0.0.1:[PORT]"
        );
        assert_eq!(
            redact("Listening on [::1]:5000."),
            "Listening on [::1]:[PORT]."
        );
        assert_eq!(redact("Message 2 from client."), "Message 2 from client.");
        assert_eq!(
            redact("from 127.0.0.9:1, to [fe80::1%2]:80 and [::ffff:127.1.2.3]:65535"),
            "from 127.0.0.9:[PORT], to [fe80::1%2]:80 and [::ffff:127.1.2.3]:[PORT]"
        );
        assert_eq!(
            redact("at 127.1.2.3:123456 and 1.2.3:80"),
            "at 127.1.2.3:123456 and 1.2.3:80"
        );
        assert_eq!(redact("x127.1.2.3:80y"), "x127.1.2.3:80y");
        assert_eq!(redact("at127.1.2.3:80."), "at127.1.2.3:[PORT].");
    }

    #[test]
    fn os_error_texts_are_redacted_after_their_prefix() {
        let text = "Connection error: Connection refused (os error 111)\nother";
        assert_eq!(
            redact_after(text, &["Connection error: "]),
            "Connection error: [OS ERROR]\nother"
        );
    }

    #[test]
    fn every_snapshot_file_is_compiled_in() {
        let mut files: Vec<String> = std::fs::read_dir(snapshot_dir())
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().ok()?;
                name.strip_suffix(".snap").map(str::to_owned)
            })
            .collect();
        files.sort();
        let compiled: Vec<&str> = SNAPSHOTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(files, compiled, "update SNAPSHOTS in snapshot.rs");
    }

    #[test]
    fn snap_bodies_are_read_from_insta_files() {
        let file = "---\nsource: grader/src/x.rs\n---\nListening on 127.0.0.1:[PORT]\n";
        assert_eq!(snap_contents(file), "Listening on 127.0.0.1:[PORT]\n");
        assert_eq!(normalize("a  \nb\n\n"), normalize("\na\nb"));
    }
}
