//! Snapshots: expected output recorded from the reference solutions.
//!
//! Snapshots are insta `.snap` files under `grader/snapshots/`. The project's
//! own tests record them from the solutions with insta (so `cargo insta
//! review` works as usual); grading only reads them and renders a diff, and
//! never writes a file, least of all into the student's tree.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;
use similar::TextDiff;

use crate::outcome::{CheckResult, Failure};

/// Whether a snapshot check compares (grading) or records (the project's tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// Compare with the stored snapshot; never write.
    #[default]
    Compare,
    /// Assert with insta, which records new or changed snapshots for review.
    Record,
}

/// Where the snapshots live: in the grader, never under `labs/`.
pub fn snapshot_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"))
}

/// Replaces what changes from run to run with placeholders: port numbers
/// (`127.0.0.1:41234` → `127.0.0.1:[PORT]`).
pub fn redact(text: &str) -> String {
    static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}\b").expect("valid regex")
    });
    ADDRESS.replace_all(text, "$1:[PORT]").into_owned()
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
        SnapshotMode::Record => {
            record(name, actual);
            Ok(())
        }
    }
}

fn record(name: &str, actual: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, actual));
}

/// Compares `actual` with the stored snapshot `name`.
pub fn compare(name: &str, actual: &str) -> CheckResult {
    let path = snapshot_dir().join(format!("{name}.snap"));
    let stored = std::fs::read_to_string(&path).map_err(|err| {
        Failure::new(format!(
            "the grader has no snapshot {} ({err}); this is a grader bug",
            path.display()
        ))
    })?;
    let expected = normalize(snap_contents(&stored));
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
    fn snap_bodies_are_read_from_insta_files() {
        let file = "---\nsource: grader/src/x.rs\n---\nListening on 127.0.0.1:[PORT]\n";
        assert_eq!(snap_contents(file), "Listening on 127.0.0.1:[PORT]\n");
        assert_eq!(normalize("a  \nb\n\n"), normalize("\na\nb"));
    }
}
