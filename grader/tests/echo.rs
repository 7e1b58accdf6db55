//! Lab 1 (echo): the grader against the solution, the stub, an independent
//! Python implementation, one classic bug per check, and hostile programs.

mod support;

use std::time::{Duration, Instant};

use rstest::rstest;
use support::*;

/// One classic mistake per check: each must cost exactly that check (and
/// sometimes a few that depend on the same behaviour).
#[rstest]
#[case::announces_the_port_it_asked_for(
    "echo-server",
    "announce_requested_port",
    "echo.ready",
    "#step-1-the-server-binds-and-listens"
)]
#[case::drops_a_byte("echo-server", "drop_last_byte", "echo.hello", "#step-2-the-echo-loop")]
#[case::treats_bytes_as_text(
    "echo-server",
    "text_roundtrip",
    "echo.one_mebibyte",
    "#step-2-the-echo-loop"
)]
#[case::reads_once(
    "echo-server",
    "reads_once",
    "echo.small_pieces",
    "#why-read-returns-less-than-you-asked"
)]
#[case::reads_to_the_end_first(
    "echo-server",
    "read_to_end_first",
    "echo.echo_before_half_close",
    "#step-2-the-echo-loop"
)]
#[case::stops_after_one_client(
    "echo-server",
    "one_client",
    "echo.second_client",
    "#step-3-one-client-after-another"
)]
#[case::exits_on_one_clients_error(
    "echo-server",
    "exits_on_client_error",
    "echo.second_client",
    "#step-3-one-client-after-another"
)]
#[case::logs_its_own_address(
    "echo-server",
    "log_own_address",
    "echo.server_log",
    "#what-the-server-prints"
)]
#[case::binds_ipv4_only("echo-server", "ipv4_only", "echo.ipv6", "#optional-ipv6")]
#[case::prints_a_python_repr(
    "echo-client",
    "python_repr",
    "echo.client_output",
    "#step-4-the-client"
)]
#[case::client_reads_once_large(
    "echo-client",
    "reads_once",
    "echo.client_large",
    "#why-read-returns-less-than-you-asked"
)]
#[case::client_reads_once_pieces(
    "echo-client",
    "reads_once",
    "echo.client_pieces",
    "#why-read-returns-less-than-you-asked"
)]
#[case::never_half_closes(
    "echo-client",
    "no_half_close",
    "echo.client_half_close",
    "#the-half-close"
)]
#[case::prints_without_talking(
    "echo-client",
    "prints_without_talking",
    "echo.client_output",
    "#step-4-the-client"
)]
#[case::prints_its_message(
    "echo-client",
    "prints_its_message",
    "echo.client_prints_the_reply",
    "#step-4-the-client"
)]
#[case::traceback_when_refused(
    "echo-client",
    "traceback_when_refused",
    "echo.client_refused",
    "#when-things-go-wrong"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("echo", &[(program, bug)]);
    let report = grade_dir("echo", dir.path());
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("echo", &[("echo-client", "reads_once")]);
    let report = grade_dir("echo", dir.path());
    for id in [
        "echo.ready",
        "echo.hello",
        "echo.one_mebibyte",
        "echo.server_log",
        "echo.client_output",
    ] {
        assert_passes(&report, id);
    }
}

/// Hostile servers cost their checks, never the grader: the grade ends in
/// bounded time and no process is left behind.
#[rstest]
#[case::never_ready("never_ready", false)]
#[case::crashes_at_start("crash_at_start", false)]
#[case::never_accepts("never_accept", true)]
#[case::floods_stdout_from_a_child("flood_stdout", true)]
#[case::ignores_sigterm("ignore_sigterm", true)]
#[case::escapes_its_group_with_setsid("escape_setsid", true)]
fn a_hostile_server_costs_only_its_checks(#[case] bug: &str, #[case] server_checks_pass: bool) {
    let dir = fixture_bin_dir("echo", &[("echo-server", bug)]);
    let started = Instant::now();
    let report = grade_dir("echo", dir.path());
    // Bounded: the slowest server check's time limit plus the runner's grace.
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        report.check("echo.ready").unwrap().passed(),
        server_checks_pass,
        "{}",
        summary(&report)
    );
    // The client checks use the grader's own server: they still pass.
    for id in [
        "echo.client_output",
        "echo.client_large",
        "echo.client_refused",
    ] {
        assert_passes(&report, id);
    }
    assert_nothing_left(dir.path());
}

#[test]
fn a_missing_binary_fails_its_checks_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let report = grade_dir("echo", dir.path());
    let failure = report
        .check("echo.hello")
        .unwrap()
        .failure
        .as_ref()
        .unwrap();
    assert!(
        failure
            .summary
            .contains("no executable named `echo-server`"),
        "{failure}"
    );
    assert_eq!(report.score, 0);
}

#[test]
fn a_server_that_eats_memory_is_stopped_and_the_report_says_why() {
    let dir = fixture_bin_dir("echo", &[("echo-server", "eat_memory")]);
    let report = grade_dir_check("echo", dir.path(), "echo.hello");
    assert_fails(&report, "echo.hello");
    let failure = report
        .check("echo.hello")
        .unwrap()
        .failure
        .as_ref()
        .unwrap()
        .to_string();
    assert!(failure.contains("used more than 1024 MiB"), "{failure}");
    assert_nothing_left(dir.path());
}

/// `--check ID` (the Classroom workflow grades a check a step) still applies
/// the check's gate: a client whose output is wrong earns nothing for
/// reporting a refused connection, alone as in a full grade.
#[test]
fn one_check_alone_still_applies_its_gate() {
    let dir = fixture_bin_dir("echo", &[("echo-client", "python_repr")]);
    let report = grade_dir_check("echo", dir.path(), "echo.client_refused");
    assert_eq!(report.checks.len(), 1, "{}", summary(&report));
    assert_fails(&report, "echo.client_refused");
    let failure = report.checks[0].failure.as_ref().unwrap().to_string();
    assert!(failure.contains("`echo.client_output`"), "{failure}");
    // It sends the student where the gate does, not to its own section:
    // nothing is wrong with what it checked.
    let gated = &report.checks[0];
    let gate = grader::rubric::find("echo.client_output").unwrap();
    assert!(gated.handout.ends_with(&gate.handout), "{}", gated.handout);
    assert!(gated.hint.contains("passed on its own"), "{}", gated.hint);
    assert!(gated.manual.is_empty(), "{}", gated.manual);
    assert_nothing_left(dir.path());
}

/// An `error:` line may name an exception as its cause (as a Java program
/// would): that is a clean report, not a crash.
#[test]
fn an_exception_named_in_the_error_line_is_not_a_crash() {
    let dir = fixture_bin_dir("echo", &[("echo-client", "java_style_cause")]);
    let report = grade_dir_check("echo", dir.path(), "echo.client_refused");
    assert_passes(&report, "echo.client_refused");
}

/// A daemon-style double fork with a cleared environment escapes both the
/// process group and the environment marker; the grader, a child subreaper,
/// gets the orphan back and kills it when the check ends.
#[test]
fn an_orphan_that_clears_its_environment_is_still_killed() {
    let dir = fixture_bin_dir("echo", &[("echo-server", "escape_env_cleared")]);
    let report = grade_dir_check("echo", dir.path(), "echo.hello");
    assert_passes(&report, "echo.hello");
    let marker =
        std::fs::read_to_string(outbox(&dir).join("escaped")).expect("the fixture escaped");
    assert_no_process_mentioning(&marker);
}

/// A server that exits after its first client: the failure that follows
/// says, once and first, that it exited, with its status and when.
#[test]
fn a_server_that_exited_is_named_as_the_cause() {
    let dir = fixture_bin_dir("echo", &[("echo-server", "one_client")]);
    let report = grade_dir_check("echo", dir.path(), "echo.second_client");
    let failure = report.checks[0].failure.as_ref().unwrap().to_string();
    assert!(
        failure.starts_with("the server is no longer running: it exited ")
            && failure.contains("after it started, with exit code 0"),
        "{failure}"
    );
    assert_eq!(failure.matches("no longer running").count(), 1, "{failure}");
    assert_nothing_left(dir.path());
}

/// A server that echoes one read and closes while the grader still sends:
/// its echo and FIN arrive first, then its RST answers the grader's next
/// write. However the grader's reader and writer interleave, the timeline
/// shows them as the kernel received them: no byte or FIN of the server's
/// after its reset.
#[test]
fn a_timeline_shows_the_data_and_fin_that_came_before_a_reset_before_it() {
    use grader::harness::conversation::{Kind, Party};
    use grader::render::timeline::Timeline;
    let dir = fixture_bin_dir("echo", &[("echo-server", "reads_once")]);
    let report = grade_dir_check("echo", dir.path(), "echo.one_mebibyte");
    let check = &report.checks[0];
    assert!(!check.passed());
    let timeline = Timeline::whole(&check.conversation);
    let from_server: Vec<(Kind, Option<u32>)> = timeline
        .events()
        .filter(|event| event.from == Some(Party::Server) && event.to == Some(Party::Grader))
        .map(|event| (event.kind, event.conn))
        .collect();
    for (index, (kind, conn)) in from_server.iter().enumerate() {
        if *kind == Kind::Reset {
            assert!(
                !from_server[index..]
                    .iter()
                    .any(|(later, on)| on == conn && matches!(later, Kind::Data | Kind::Fin)),
                "{from_server:?}"
            );
        }
    }
    assert!(
        from_server.iter().any(|(kind, _)| *kind == Kind::Data),
        "{from_server:?}"
    );
    assert_nothing_left(dir.path());
}

/// A server that echoes its whole buffer (`write_all(&buffer)`, not
/// `&buffer[..n]`) fails every echo, each with its own byte counts: one
/// cause, shown by the same evidence (an echo longer than what was sent).
/// The report explains it once, with Step 2's paragraph, and lists the
/// checks it costs; each of those keeps its own summary in one line.
#[test]
fn an_echo_of_the_whole_buffer_is_explained_once_for_every_check_it_costs() {
    let dir = fixture_bin_dir("echo", &[("echo-server", "whole_buffer")]);
    let report = grade_dir("echo", dir.path());
    let failed: Vec<&str> = report.failed_ids();
    for id in ["echo.hello", "echo.small_pieces", "echo.server_log"] {
        assert!(failed.contains(&id), "{failed:?}");
        let check = report.check(id).unwrap();
        assert!(
            check.handout.ends_with("#step-2-the-echo-loop"),
            "{id}: {}",
            check.handout
        );
    }
    let text = grader::render::text::lab(&report, Default::default());
    assert_eq!(
        text.matches("write back only the `n` bytes").count(),
        1,
        "{text}"
    );
    assert!(text.contains("the same cause costs"), "{text}");
    assert!(
        text.contains("the same cause as echo.hello, above: echo of a message sent 6 bytes at a time: got 1024 bytes where 59 were expected"),
        "{text}"
    );
    assert_nothing_left(dir.path());
}

/// A server that spins after its first read (a loop with no system call)
/// fails fast, and the failure says it spins: its CPU time grew while it
/// read and wrote nothing. The verdict rests on CPU time, so it comes well
/// before the check's time limit.
#[test]
fn a_spinning_server_fails_fast_and_is_said_to_spin() {
    let dir = fixture_bin_dir("echo", &[("echo-server", "spins")]);
    let report = grade_dir_check("echo", dir.path(), "echo.hello");
    let check = &report.checks[0];
    let failure = check.failure.as_ref().expect("a failure").to_string();
    assert!(failure.contains("the server spins: it used "), "{failure}");
    assert!(
        check.duration < check.time_limit / 2,
        "{:?} of {:?}: {failure}",
        check.duration,
        check.time_limit
    );
    assert_nothing_left(dir.path());
}
