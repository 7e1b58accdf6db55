//! A graded program is an untrusted guest: each test runs a lab 1 server
//! that attempts one attack before it serves correctly, and asserts that the
//! attack failed and that the correct behaviour still earned the check.
//!
//! The guarantees hold when the grader runs as root (a separate uid, PID and
//! network namespaces); as another user the tests say why they are skipped.
//! (`xtask/tests/containment.rs` has the attacks on results files and on
//! whole classes.)

mod support;

use grader::harness::contain::{GUEST_UID, Policy};
use support::*;

/// Grades `echo.hello` with the server attempting `attack`, asserts the
/// check still passed, and returns what the attack reported.
fn attempt(attack: &str) -> String {
    let dir = fixture_bin_dir("echo", &[("echo-server", attack)]);
    let report = grade_dir_check("echo", dir.path(), "echo.hello");
    assert_passes(&report, "echo.hello");
    assert_nothing_left(dir.path());
    std::fs::read_to_string(outbox(&dir).join(attack))
        .unwrap_or_else(|err| panic!("the attack left no report: {err}\n{}", summary(&report)))
}

#[test]
fn graded_programs_run_as_the_guest_uid_in_namespaces() {
    if !contained("graded_programs_run_as_the_guest_uid_in_namespaces") {
        return;
    }
    let policy = Policy::get();
    assert_eq!(policy.guest, Some((GUEST_UID, GUEST_UID)));
    assert!(policy.pid_namespace, "{}", policy.describe());
    assert!(policy.network_namespace, "{}", policy.describe());
    assert!(policy.minimum_missing().is_empty());
}

#[test]
fn a_descendant_that_changes_group_and_clears_its_environment_dies_with_the_check() {
    if !contained("setpgid escape") {
        return;
    }
    let marker = attempt("attack_escape_setpgid");
    assert_no_process_mentioning(marker.trim());
}

#[test]
fn a_program_cannot_kill_or_forge_for_its_grader() {
    if !contained("forge and kill") {
        return;
    }
    let reported = attempt("attack_forge_and_kill");
    // The grader survived (this test is still running, and the check
    // passed); whatever the program found to aim at, it was refused.
    assert!(!reported.contains("killed"), "{reported}");
    assert!(!reported.contains("forged"), "{reported}");
}

#[test]
fn a_program_sees_none_of_the_graders_environment() {
    if !contained("secret environment") {
        return;
    }
    let reported = attempt("attack_secrets");
    // Every variable of ours that a program has no business with: what
    // cargo set for this test, HOME and PATH of the grader's user, …
    let ours: Vec<String> = std::env::vars()
        .filter(|(key, _)| key != "LANG")
        .map(|(key, value)| format!("{key}={value}"))
        .filter(|entry| entry.len() > 8)
        .collect();
    assert!(!ours.is_empty());
    for entry in &ours {
        let (key, value) = entry.split_once('=').unwrap();
        assert!(
            !reported.contains(&format!("'{key}': '{value}'"))
                && !reported.contains(&entry.to_string()),
            "the program read {key}: {reported}"
        );
    }
}

#[test]
fn a_program_cannot_write_into_the_grader() {
    if !contained("write into grader/") {
        return;
    }
    let reported = attempt("attack_write_grader");
    assert!(!reported.contains("opened"), "{reported}");
    assert!(!reported.contains("created"), "{reported}");
    assert_eq!(reported.matches("refused").count(), 2, "{reported}");
}

#[test]
fn a_program_cannot_ptrace_its_grader() {
    if !contained("ptrace") {
        return;
    }
    let reported = attempt("attack_ptrace");
    assert!(!reported.contains("attached"), "{reported}");
}

#[test]
fn a_fork_bomb_stops_at_the_task_limit_and_dies_with_the_check() {
    if !contained("fork bomb") {
        return;
    }
    if Policy::get().cgroups.pids.is_none() {
        eprintln!("fork bomb: skipped: no writable pids cgroup on this machine");
        return;
    }
    let reported = attempt("attack_fork_bomb");
    let forked: u32 = reported
        .trim()
        .strip_prefix("refused after ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("forking was never refused: {reported}"));
    assert!(forked < grader::harness::contain::MAX_TASKS, "{reported}");
}

/// Lists interfaces only: nothing is ever sent anywhere but loopback.
#[test]
fn a_program_sees_only_loopback() {
    if !contained("interfaces") {
        return;
    }
    let reported = attempt("attack_interfaces");
    assert_eq!(reported.trim(), "lo");
}
