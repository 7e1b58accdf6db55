//! `cargo xtask grade` as a user meets it: names, exit codes, messages.

use assert_cmd::Command;
use predicates::prelude::*;

fn xtask() -> Command {
    Command::cargo_bin("xtask").expect("the xtask binary")
}

#[test]
fn an_unknown_lab_is_a_usage_error_that_lists_the_valid_names() {
    xtask()
        .args(["grade", "lab9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no lab is called `lab9`"))
        .stderr(predicate::str::contains("lab3 | 3 | multiconn"))
        .stderr(predicate::str::contains("all"));
}

#[test]
fn an_unknown_check_is_a_usage_error() {
    xtask()
        .args(["grade", "lab1", "--check", "echo.nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("echo.nope"));
}

#[test]
fn solution_and_bin_dir_exclude_each_other() {
    xtask()
        .args(["grade", "1", "--solution", "--bin-dir", "."])
        .assert()
        .code(2);
}

#[test]
fn a_bin_dir_without_the_programs_scores_zero_and_exits_1() {
    let empty = tempfile::tempdir().unwrap();
    xtask()
        .args(["grade", "echo", "--bin-dir"])
        .arg(empty.path())
        .env("NO_COLOR", "1")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("✗ echo.hello"))
        .stdout(predicate::str::contains(
            "no executable named `echo-server`",
        ))
        .stdout(predicate::str::is_match(r"(?m)^lab1: 0/\d+$").unwrap());
}

#[test]
fn json_output_is_one_object_per_lab_with_every_check() {
    let empty = tempfile::tempdir().unwrap();
    let output = xtask()
        .args(["grade", "lab1", "--format", "json", "--bin-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["lab"], "lab1");
    assert_eq!(report["score"], 0);
    for check in report["checks"].as_array().unwrap() {
        for key in [
            "id",
            "title",
            "status",
            "points",
            "max_points",
            "hint",
            "handout",
            "duration",
        ] {
            assert!(check.get(key).is_some(), "{key} missing in {check}");
        }
    }
}
