//! Attacks on what the grader writes and on the grader process itself, run
//! through `cargo xtask grade` as a platform runs it. Each graded program is
//! lab 1's independent Python server attempting one attack before it serves
//! correctly; the grade must be the true one.
//!
//! The guarantees hold when the grader runs as root (CI does); as another
//! user the tests say why they are skipped.

// The grader's test support: lab 1's fixtures in a `--bin-dir`, with an
// outbox the attacks report to.
#[path = "../../grader/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use assert_cmd::Command;
use support::{contained, fixture_bin_dir, outbox};
use tempfile::TempDir;

fn xtask() -> Command {
    let mut command = Command::cargo_bin("xtask").expect("the xtask binary");
    // The attacks write down what they managed in their bin dir's outbox.
    command.env(grader::harness::sandbox::REPORT_FOLDER_VARIABLE, "1");
    command
}

/// A folder anyone may write in: the attacker's best case.
fn open_results_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let results = dir.path().join("results.json");
    (dir, results)
}

#[test]
fn a_server_that_forges_results_and_kills_its_grader_changes_nothing() {
    if !contained("forge and kill") {
        return;
    }
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_forge_and_kill")]);
    let (_results_dir, results) = open_results_dir();
    let bin_dir = programs.path().to_str().unwrap();
    let output = xtask()
        .args(["grade", "lab1", "--contained", "--bin-dir", bin_dir])
        .arg("--gradescope")
        .arg(&results)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    // The grader lived to the end and gave the true grade: full marks.
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("containment: uid 64000"), "{report}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert!(written.get("forged").is_none(), "{written}");
    let checks = grader::rubric::for_lab(support::lab("echo")).len();
    assert_eq!(
        written["tests"].as_array().unwrap().len(),
        checks,
        "{written}"
    );
    let attempts = std::fs::read_to_string(outbox(&programs).join("attack_forge_and_kill"))
        .expect("the attack ran");
    assert!(!attempts.contains("killed"), "{attempts}");
    // It could not even find the grader's command line, which names the
    // results file.
    assert!(!attempts.contains("forged"), "{attempts}");
}

#[test]
fn a_secret_in_the_graders_environment_stays_secret() {
    if !contained("secret environment variable") {
        return;
    }
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_secrets")]);
    let secret = "correct-horse-battery-staple";
    let output = xtask()
        .env("SOCKET_LABS_TEST_SECRET", secret)
        .args(["grade", "lab1", "--contained", "--check", "echo.hello"])
        .args(["--bin-dir", programs.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let seen =
        std::fs::read_to_string(outbox(&programs).join("attack_secrets")).expect("the attack ran");
    assert!(seen.contains("own: "), "{seen}");
    assert!(!seen.contains(secret), "{seen}");
}
