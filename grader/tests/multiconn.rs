//! Lab 3 (multiconn): the grader against the solution, the stub, an
//! independent Python implementation, one classic bug per check, and the
//! reference server's robustness.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::process::{Launch, Process};
use grader::harness::ready;
use rstest::rstest;
use support::*;

/// One classic mistake per check: each must cost that check (and sometimes
/// a few that depend on the same behaviour).
#[rstest]
#[case::no_echo_log(
    "multiconn-server",
    "no_echo_log",
    "multiconn.one_client",
    "#step-2-the-event-loop"
)]
#[case::one_buffer_for_everyone(
    "multiconn-server",
    "shared_buffer",
    "multiconn.many_clients",
    "#per-connection-state"
)]
#[case::one_client_at_a_time(
    "multiconn-server",
    "blocking_server",
    "multiconn.idle_client",
    "#never-block-the-loop"
)]
#[case::reads_once_per_edge_triggered_event(
    "multiconn-server",
    "read_once_per_event",
    "multiconn.large_half_close",
    "#edge-triggered-read-until-wouldblock"
)]
#[case::blocking_write(
    "multiconn-server",
    "blocking_write",
    "multiconn.non_reading_client",
    "#partial-writes-and-write-interest"
)]
#[case::ignores_what_send_returned(
    "multiconn-server",
    "ignores_send_count",
    "multiconn.large_half_close",
    "#partial-writes-and-write-interest"
)]
#[case::write_interest_only_after_the_end(
    "multiconn-server",
    "write_interest_at_eof",
    "multiconn.large_still_open",
    "#partial-writes-and-write-interest"
)]
#[case::token_from_the_count(
    "multiconn-server",
    "token_from_count",
    "multiconn.clients_come_and_go",
    "#readiness-poll-token-interest-events"
)]
#[case::thread_per_client(
    "multiconn-server",
    "thread_per_client",
    "multiconn.one_thread",
    "#see-it-in-proc"
)]
#[case::drops_the_buffer_at_eof(
    "multiconn-server",
    "close_on_eof",
    "multiconn.large_half_close",
    "#closing-and-deregistering"
)]
#[case::busy_polls_on_write_interest(
    "multiconn-server",
    "always_write_interest",
    "multiconn.idle_cpu",
    "#partial-writes-and-write-interest"
)]
#[case::polls_with_a_zero_timeout(
    "multiconn-server",
    "zero_timeout",
    "multiconn.idle_cpu",
    "#never-block-the-loop"
)]
#[case::never_closes_its_sockets(
    "multiconn-server",
    "no_close",
    "multiconn.fd_leak",
    "#see-it-in-proc"
)]
#[case::forgets_a_connection_whose_read_failed(
    "multiconn-server",
    "read_error_forgotten",
    "multiconn.fd_leak",
    "#closing-and-deregistering"
)]
#[case::crashes_on_a_reset(
    "multiconn-server",
    "crash_on_reset",
    "multiconn.close_while_buffered",
    "#closing-and-deregistering"
)]
#[case::ends_when_out_of_descriptors(
    "multiconn-server",
    "accept_error_ends_server",
    "multiconn.out_of_descriptors",
    "#out-of-file-descriptors"
)]
#[case::retries_accept_at_once(
    "multiconn-server",
    "accept_retry_spin",
    "multiconn.out_of_descriptors",
    "#out-of-file-descriptors"
)]
#[case::ignores_a_failed_write(
    "multiconn-server",
    "ignore_write_error",
    "multiconn.close_while_buffered",
    "#closing-and-deregistering"
)]
#[case::logs_its_own_address(
    "multiconn-server",
    "log_own_address",
    "multiconn.server_log",
    "#what-the-programs-print"
)]
#[case::off_by_one(
    "multiconn-client",
    "off_by_one",
    "multiconn.client_fifty",
    "#step-3-the-client"
)]
#[case::one_connection_after_another(
    "multiconn-client",
    "sequential",
    "multiconn.client_at_once",
    "#step-3-the-client"
)]
#[case::reads_once(
    "multiconn-client",
    "reads_once",
    "multiconn.client_fragments",
    "#edge-triggered-read-until-wouldblock"
)]
#[case::client_prints_without_talking(
    "multiconn-client",
    "prints_without_talking",
    "multiconn.client_fifty",
    "#step-3-the-client"
)]
#[case::client_logs_its_messages(
    "multiconn-client",
    "logs_its_messages",
    "multiconn.client_logs_the_reply",
    "#step-3-the-client"
)]
#[case::eof_is_success(
    "multiconn-client",
    "eof_is_success",
    "multiconn.client_early_close",
    "#when-things-go-wrong"
)]
#[case::first_failure_ends_the_client(
    "multiconn-client",
    "first_failure_ends_client",
    "multiconn.client_closed_at_once",
    "#when-things-go-wrong"
)]
#[case::ends_when_out_of_descriptors_client(
    "multiconn-client",
    "socket_error_ends_client",
    "multiconn.client_out_of_descriptors",
    "#out-of-file-descriptors"
)]
#[case::numbers_from_zero(
    "multiconn-client",
    "numbers_from_zero",
    "multiconn.client_log",
    "#what-the-programs-print"
)]
#[case::interrupted_poll_ends_the_server(
    "multiconn-server",
    "interrupted_as_error",
    "multiconn.many_clients",
    "#step-2-the-event-loop"
)]
#[case::interrupted_poll_ends_the_client(
    "multiconn-client",
    "interrupted_as_error",
    "multiconn.client_stop_and_continue",
    "#edge-triggered-read-until-wouldblock"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("multiconn", &[(program, bug)]);
    // Only the check under test runs: the 8 MiB checks against a Python
    // server take seconds, and the whole suite runs on busy machines.
    let report = grade_dir_check("multiconn", dir.path(), check);
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

/// A server is judged with the processes it starts: a busy loop, or a
/// thread per client, in a child of a parent that only waits for it (a
/// shell script that runs the server without `exec`) is still seen.
#[rstest]
#[case::busy_loop_in_a_child("zero_timeout", "multiconn.idle_cpu")]
#[case::threads_in_a_child("thread_per_client", "multiconn.one_thread")]
fn work_left_to_a_child_process_counts(#[case] bug: &str, #[case] check: &str) {
    let dir = fixture_bin_dir("multiconn", &[("multiconn-server", bug)]);
    let wrapper = dir.path().join("multiconn-server");
    let script = std::fs::read_to_string(&wrapper).unwrap();
    assert!(script.contains(" exec "), "{script}");
    std::fs::write(&wrapper, script.replacen(" exec ", " ", 1)).unwrap();
    let report = grade_dir_check("multiconn", dir.path(), check);
    assert_fails(&report, check);
    assert_nothing_left(dir.path());
}

/// Lab 3's central lesson, seen in a full report: a server that reads once
/// per edge-triggered event leaves bytes unread, and its first failed check
/// sends the student to the edge-triggered section.
#[test]
fn one_read_per_event_is_sent_to_the_edge_triggered_section() {
    let dir = fixture_bin_dir("multiconn", &[("multiconn-server", "read_once_per_event")]);
    let report = grade_dir("multiconn", dir.path());
    assert_diagnosis(
        &report,
        "read_once_per_event (whole lab)",
        "#edge-triggered-read-until-wouldblock",
    );
    assert_counts_add_up(&report);
    assert_nothing_left(dir.path());
}

/// The counts of a server that stopped reading agree with each other and
/// with the conversation: what the grader wrote is what the server read,
/// plus what waits unread in its socket, plus what is still in the
/// grader's send buffer; and the headline says what the server read.
fn assert_counts_add_up(report: &grader::LabReport) {
    use grader::harness::conversation::{Kind, Party};
    let check = report
        .checks
        .iter()
        .find(|check| check.id == "multiconn.large_half_close")
        .unwrap();
    let failure = check.failure.as_ref().expect("large_half_close failed");
    let actual = failure.actual.as_deref().unwrap_or_default();
    // `… blocked after 171.8 KiB (175872 bytes): the server read 12288
    // bytes of them, 116160 wait unread … and 47424 in …`
    let counts = actual.split_once('(').map_or("", |(_, counts)| counts);
    let numbers: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    let [written, read, unread, in_flight] = numbers[..] else {
        panic!("expected four byte counts in {actual:?}");
    };
    assert_eq!(read + unread + in_flight, written, "{actual}");
    assert!(
        failure
            .summary
            .contains(&format!("after {} of", grader::harness::show::size(read))),
        "{}",
        failure.summary
    );
    if check.conversation.elided == 0 {
        let sent: u64 = check
            .conversation
            .events
            .iter()
            .filter(|event| {
                event.kind == Kind::Data
                    && event.from == Some(Party::Grader)
                    && event.to == Some(Party::Server)
            })
            .filter_map(|event| event.bytes)
            .sum();
        assert_eq!(sent, written, "the conversation's bytes against {actual}");
    }
}

/// A backlog of one is no bug: the checks that connect many clients wait
/// for room in the listen queue rather than have the kernel drop a
/// connection (and retry only a second later).
#[test]
fn a_server_with_a_backlog_of_one_passes_the_crowded_checks() {
    let dir = fixture_bin_dir("multiconn", &[("multiconn-server", "backlog_of_one")]);
    for check in ["multiconn.many_clients", "multiconn.out_of_descriptors"] {
        let report = grade_dir_check("multiconn", dir.path(), check);
        assert_passes(&report, check);
    }
    assert_nothing_left(dir.path());
}

/// A runtime's own threads, started before any client (Node.js runs 7, a
/// JVM more), are no thread per client: the count that matters is the one
/// that grows with the clients.
#[test]
fn a_runtime_with_threads_of_its_own_passes_the_thread_count() {
    let dir = fixture_bin_dir("multiconn", &[("multiconn-server", "runtime_threads")]);
    let report = grade_dir_check("multiconn", dir.path(), "multiconn.one_thread");
    assert_passes(&report, "multiconn.one_thread");
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("multiconn", &[("multiconn-client", "sequential")]);
    let report = grade_dir("multiconn", dir.path());
    for id in [
        "multiconn.one_client",
        "multiconn.many_clients",
        "multiconn.large_half_close",
        "multiconn.server_log",
    ] {
        assert_passes(&report, id);
    }
}

/// The reference server survives what the checks throw at it: resets,
/// half-closes, clients that never read, garbage bytes, and keeps serving.
#[test]
fn the_reference_server_survives_rude_clients() {
    let bins = builder::build(
        support::lab("multiconn"),
        Edition::Solution,
        CompilerOutput::Capture,
    )
    .expect("the solution builds");
    let launch = Launch::new(bins.path("multiconn-server").unwrap(), ["127.0.0.1", "0"]);
    let mut server = Process::spawn(&launch, Default::default()).unwrap();
    let addr = ready::wait_listening(&mut server, Duration::from_secs(10)).unwrap();
    for round in 0..20 {
        let mut rude = TcpStream::connect(addr).unwrap();
        let junk: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + round) as u8).collect();
        let _ = rude.write_all(&junk);
        match round % 3 {
            // Reset: SO_LINGER 0 makes close send RST.
            0 => socket2::SockRef::from(&rude)
                .set_linger(Some(Duration::ZERO))
                .unwrap(),
            1 => rude.shutdown(Shutdown::Both).unwrap(),
            _ => {}
        }
        drop(rude);
    }
    let mut polite = TcpStream::connect(addr).unwrap();
    polite.write_all(b"\x00\xff still there?").unwrap();
    polite.shutdown(Shutdown::Write).unwrap();
    polite
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echo = Vec::new();
    polite.read_to_end(&mut echo).unwrap();
    assert_eq!(echo, b"\x00\xff still there?");
    assert!(server.exit_status().is_none(), "the server exited");
    let stderr = server.stderr().text();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
