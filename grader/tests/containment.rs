//! A graded program is an untrusted guest: each test runs a lab 1 server
//! that attempts one attack before it serves correctly, and asserts that the
//! attack failed and that the correct behaviour still earned the check.
//!
//! The guarantees hold when the grader runs as root (a separate uid, PID and
//! network namespaces); as another user the tests say why they are skipped.
//! (`xtask/tests/containment.rs` has the attacks on results files and on
//! whole classes.)

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use grader::harness::sandbox::{GUEST_UID, Policy};
use support::*;

/// Grades `echo.hello` with the server attempting `attack`, asserts the
/// check still passed, and returns what the attack reported.
fn attempt(attack: &str) -> String {
    attempt_scaled(attack, 1.0)
}

/// [`attempt`] with every time limit multiplied by `time_scale`: for an
/// attack slow by nature, which must not fail the check by its time alone.
fn attempt_scaled(attack: &str, time_scale: f64) -> String {
    let dir = fixture_bin_dir("echo", &[("echo-server", attack)]);
    let report = grade_dir_check_scaled("echo", dir.path(), "echo.hello", time_scale);
    assert_passes(&report, "echo.hello");
    assert_nothing_left(dir.path());
    std::fs::read_to_string(outbox(&dir).join(attack))
        .unwrap_or_else(|err| panic!("the attack left no report: {err}\n{}", summary(&report)))
}

/// Whether `test`, which needs the cgroup `controller`, can run: it is
/// [`contained`], and the machine has that controller, writable
/// (`present`).
fn contained_with_cgroup(test: &str, controller: &str, present: bool) -> bool {
    if !contained(test) {
        return false;
    }
    if !present {
        eprintln!("{test}: skipped: no writable {controller} cgroup on this machine");
    }
    present
}

/// The number an attack reported on the line that begins with `prefix`
/// (`refused after 1021: 11` → 1021).
fn number_after(reported: &str, prefix: &str) -> Option<u32> {
    let rest = reported
        .lines()
        .find_map(|line| line.strip_prefix(prefix))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
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
    let rubric = grader::builder::workspace_root().join("grader/rubric.toml");
    assert!(
        reported.contains(&format!("refused {}: 2", rubric.display())),
        "the grader's files must not even exist in the program's world: {reported}"
    );
    assert!(!reported.contains("opened"), "{reported}");
    assert!(!reported.contains("created"), "{reported}");
    assert_eq!(reported.matches("refused").count(), 2, "{reported}");
}

/// A uid's keyring outlives its processes, and a later grade may run under
/// the same guest uid: the kernel's keyrings are closed to programs.
#[test]
fn a_program_cannot_leave_a_key_for_a_later_grade() {
    if !contained("keyring") {
        return;
    }
    let reported = attempt("attack_keyring");
    assert!(reported.contains("add_key: -1 errno 1\n"), "{reported}");
    assert!(reported.contains("keyctl: -1 errno 1\n"), "{reported}");
}

/// A program's working folder is held in memory and bounded: files of the
/// largest size allowed, as many as it likes, never reach the machine's
/// disk (and the grader's results with it).
#[test]
fn a_program_cannot_fill_the_machines_disk() {
    if !contained("fill the disk") {
        return;
    }
    let reported = attempt("attack_fill_disk");
    let written = number_after(&reported, "stopped after ");
    assert!(
        written.is_some_and(|bytes| bytes <= 64 << 20) && reported.contains(": 28\n"),
        "ENOSPC within 64 MiB: {reported}"
    );
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
    if !contained_with_cgroup("fork bomb", "pids", Policy::get().cgroups.pids.is_some()) {
        return;
    }
    let reported = attempt("attack_fork_bomb");
    let forked = number_after(&reported, "refused after ")
        .unwrap_or_else(|| panic!("forking was never refused: {reported}"));
    assert!(forked < grader::harness::sandbox::MAX_TASKS, "{reported}");
}

/// Hundreds of children, each holding less memory than the grader, fill the
/// program's memory cgroup: its OOM killer kills some of them, and the
/// grader (this test's process) lives on. The OOM killer kills every
/// process that shares its victim's memory, and a PID namespace's init
/// shares the grader's: the init stays out of the program's cgroups.
#[test]
fn a_crowd_that_fills_the_memory_cgroup_never_takes_the_grader_with_it() {
    if !contained_with_cgroup(
        "memory crowd",
        "memory",
        Policy::get().cgroups.memory.is_some(),
    ) {
        return;
    }
    // A grader bigger than any of the children, as a grader that has run a
    // few checks is: were an init that shares its memory in the cgroup, the
    // OOM killer would pick it first, and kill this process with it.
    let ballast = std::hint::black_box(vec![1u8; 64 << 20]);
    // Hundreds of processes touching more than a gigabyte before the
    // server says `Listening on`: seconds on a busy machine (once more
    // than the 5 s a server gets to start, in a CI run beside other
    // load). The point here is containment, not speed.
    let reported = attempt_scaled("attack_memory_crowd", 4.0);
    drop(ballast);
    let killed = number_after(&reported, "killed ")
        .unwrap_or_else(|| panic!("no count of killed children: {reported}"));
    assert!(killed > 0, "the memory cgroup killed nobody: {reported}");
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

/// The folder interfaces are listed in shows this grade's network only.
#[test]
fn a_program_sees_only_loopback_in_sys() {
    if !contained("/sys/class/net") {
        return;
    }
    let reported = attempt("attack_sys_net");
    assert!(
        reported.trim() == "lo" || reported.starts_with("refused"),
        "{reported}"
    );
}

/// A submission with no echo code looks everywhere for the reference
/// solution, to run it in its place. It must find nothing: the course, its
/// solutions and every home folder are not in a graded program's world.
#[test]
fn a_program_cannot_find_or_run_the_reference_solution() {
    if !contained("borrowing the solution") {
        return;
    }
    let course = grader::builder::workspace_root();
    // Something to find, whether or not the solutions were built: an
    // executable named like the solution in the course's target folder, and
    // one in a home folder.
    let decoys = [
        course.join("target/containment-decoy"),
        PathBuf::from("/root/.socket-labs-containment-decoy"),
    ];
    for decoy in &decoys {
        std::fs::create_dir_all(decoy).unwrap();
        let program = decoy.join("echo-server");
        std::fs::write(&program, "#!/bin/sh\necho borrowed\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = fixture_bin_dir("echo", &[("echo-server", "attack_borrow_solution")]);
    let report = grade_dir_check("echo", dir.path(), "echo.hello");
    let reported = std::fs::read_to_string(outbox(&dir).join("attack_borrow_solution"))
        .unwrap_or_else(|err| panic!("the attack left no report: {err}\n{}", summary(&report)));
    eprintln!("the attack reported:\n{reported}");
    assert_passes(&report, "echo.hello");
    for decoy in &decoys {
        assert!(decoy.join("echo-server").exists(), "the decoy is gone");
        let _ = std::fs::remove_dir_all(decoy);
    }
    assert!(reported.ends_with("done\n"), "{reported}");
    assert!(!reported.contains("found"), "{reported}");
    assert!(
        reported.contains(&format!("refused {}: 2", course.display())),
        "the course must not even exist in the program's world: {reported}"
    );
}

/// Files in every shared temporary folder and a System V shared-memory
/// segment: the program may make them, in places of its own that vanish with
/// it, and none of them is left on the machine.
#[test]
fn nothing_a_program_leaves_in_shared_places_outlives_it() {
    if !contained("shared places") {
        return;
    }
    let reported = attempt("attack_shared_places");
    let marker = reported
        .lines()
        .find_map(|line| line.strip_prefix("marker "))
        .unwrap_or_else(|| panic!("no marker: {reported}"));
    assert!(
        reported.contains("wrote /tmp/"),
        "a private /tmp is writable: {reported}"
    );
    for place in ["/tmp", "/var/tmp", "/run/lock", "/dev/shm", "/run"] {
        let left = Path::new(place).join(marker);
        assert!(!left.exists(), "{} outlived the program", left.display());
    }
    let key: i64 = reported
        .lines()
        .find_map(|line| line.strip_prefix("shm key "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no shared memory attempt: {reported}"));
    let segments = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    assert!(
        !segments
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().next() == Some(&key.to_string())),
        "the segment outlived the program:\n{segments}"
    );
}

/// Programs graded at the same time, in one grade and in two, each try to
/// write into every other graded program's folder.
#[test]
fn a_program_cannot_reach_its_neighbours_folders() {
    if !contained("neighbours") {
        return;
    }
    let reports: Vec<String> = std::thread::scope(|scope| {
        let grades: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| attempt("attack_neighbours")))
            .collect();
        grades
            .into_iter()
            .map(|grade| grade.join().unwrap())
            .collect()
    });
    for reported in reports {
        assert!(reported.ends_with("done\n"), "{reported}");
        assert!(!reported.contains("wrote"), "{reported}");
    }
}

/// Two grades at once run as two different uids.
#[test]
fn two_grades_at_once_run_as_different_uids() {
    if !contained("a uid per grade") {
        return;
    }
    let first = grader::harness::sandbox::Sandbox::new();
    let second = grader::harness::sandbox::Sandbox::new();
    let (Some(one), Some(other)) = (first.guest(), second.guest()) else {
        panic!("no guest uid as root");
    };
    assert_ne!(one, other);
    assert!(one.0 >= GUEST_UID && other.0 >= GUEST_UID);
}

/// A program of more than one file: the server imports a module that sits
/// beside it, as the tutorial's `app-server.py` imports `libserver.py`.
#[test]
fn a_program_of_two_files_keeps_the_file_beside_it() {
    let dir = fixture_bin_dir("echo", &[]);
    std::fs::copy(
        fixtures("echo").join("echo-server"),
        dir.path().join("echo_server_impl.py"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("echo-server"),
        "#!/usr/bin/env python3\n\
         import echo_server_impl\n\
         echo_server_impl.main()\n",
    )
    .unwrap();
    let report = grade_dir("echo", dir.path());
    assert_full_marks(&report);
}

/// A `--bin-dir` is staged whole, but only its regular files and folders:
/// an executable that is a symbolic link is staged as what it points to, and
/// any other link is left out, and the report says so.
#[test]
fn a_bin_dir_with_symbolic_links_is_staged_with_what_they_point_to() {
    let dir = fixture_bin_dir("echo", &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let client = dir.path().join("echo-client");
    let moved = elsewhere.path().join("echo-client");
    std::fs::copy(&client, &moved).unwrap();
    std::fs::remove_file(&client).unwrap();
    std::os::unix::fs::symlink(&moved, &client).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("linked.txt")).unwrap();
    let report = grade_dir("echo", dir.path());
    assert_full_marks(&report);
    assert!(
        report
            .notes
            .iter()
            .any(|note| note.contains("linked.txt") && note.contains("left out")),
        "{:?}",
        report.notes
    );
}

/// A program that takes every permission away from its working folder and
/// what it made in it still leaves nothing behind.
#[test]
fn a_working_folder_is_removed_whatever_its_modes() {
    if !contained("locked working folder") {
        return;
    }
    let reported = attempt("attack_locked_home");
    let home = reported
        .lines()
        .find_map(|line| line.strip_prefix("home "))
        .unwrap_or_else(|| panic!("no home: {reported}"));
    assert!(reported.contains("locked"), "{reported}");
    assert!(!Path::new(home).exists(), "{home} was left behind");
}
