//! `cargo xtask mutants` on a slice of lab 1 (the echo server's read loop),
//! so that the command cannot rot. It needs cargo-mutants: CI installs it;
//! elsewhere `cargo install --locked cargo-mutants`.

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// The count in `column` of the table row starting with `row`.
fn count(table: &str, row: &str, column: usize) -> usize {
    let line = table
        .lines()
        .find(|line| line.starts_with(row))
        .unwrap_or_else(|| panic!("no row {row:?} in:\n{table}"));
    line.split_whitespace()
        .nth(column)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn mutants_of_the_echo_loop_are_graded_and_the_survivors_listed() {
    let installed = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        installed,
        "cargo-mutants is not installed: `cargo install --locked cargo-mutants` (CI installs it)"
    );
    let output_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let output = Command::cargo_bin("xtask")
        .unwrap()
        .args([
            "mutants",
            "lab1",
            "--re",
            r"replace echo -> |in echo$",
            "--output",
        ])
        .arg(output_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}\n{stdout}\n{stderr}",
        output.status
    );
    // `echo` replaced by `Ok(())` echoes nothing: the grade must drop. The
    // three mutants of its `Interrupted` guard are caught or survive.
    let row = "lab1   echo";
    let (caught, missed, unviable, timeout) = (
        count(&stdout, row, 2),
        count(&stdout, row, 3),
        count(&stdout, row, 4),
        count(&stdout, row, 5),
    );
    let equivalent = count(&stdout, row, 6);
    assert_eq!(
        caught + missed + unviable + timeout + equivalent,
        4,
        "{stdout}"
    );
    assert!(caught >= 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "lab1: caught {caught}/{} (viable)",
            caught + missed + timeout
        )),
        "{stdout}"
    );
    let survivors = std::fs::read_to_string(output_dir.path().join("survivors.md")).unwrap();
    let listed = survivors
        .lines()
        .filter(|line| line.starts_with("## echo/src/bin/echo-server.rs: "))
        .count();
    assert_eq!(listed, missed + timeout, "{survivors}");
    assert_eq!(
        survivors.matches("```diff\n").count(),
        listed,
        "{survivors}"
    );
}
