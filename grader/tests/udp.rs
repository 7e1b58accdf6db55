//! Lab 5 (udp): the grader against the solution, the stub, an independent
//! Python implementation, one classic bug per check, and hostile programs.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grader::Status;
use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::capture::complete_lines;
use grader::harness::conversation::{Kind, Party};
use grader::harness::net::udp;
use grader::harness::process::{Launch, Process};
use grader::harness::ready;
use rstest::rstest;
use support::*;

/// One classic mistake per check: each must cost that check (and sometimes
/// a few that depend on the same behaviour).
#[rstest]
#[case::server_logs_lossy_text(
    "udp-server",
    "lossy_log",
    "udp.large_datagram",
    "#a-datagram-is-bytes-not-text"
)]
#[case::replies_from_a_new_socket(
    "udp-server",
    "reply_from_new_socket",
    "udp.reply",
    "#who-sent-this"
)]
#[case::binds_the_unspecified_address(
    "udp-server",
    "bind_unspecified",
    "udp.reply",
    "#step-1-the-server-binds"
)]
#[case::logs_a_python_repr(
    "udp-server",
    "log_python_repr",
    "udp.server_log",
    "#what-the-server-prints"
)]
#[case::replies_to_the_first_sender(
    "udp-server",
    "reply_to_first",
    "udp.two_clients",
    "#who-sent-this"
)]
#[case::receives_into_1024_bytes(
    "udp-server",
    "small_buffer",
    "udp.large_datagram",
    "#datagrams-have-edges"
)]
#[case::stops_on_an_empty_datagram(
    "udp-server",
    "empty_means_stop",
    "udp.empty_datagram",
    "#zero-bytes-is-a-message"
)]
#[case::decodes_as_utf8(
    "udp-server",
    "decode_utf8",
    "udp.binary_datagram",
    "#a-datagram-is-bytes-not-text"
)]
#[case::connects_to_the_first_sender(
    "udp-server",
    "connect_to_first",
    "udp.two_clients",
    "#who-sent-this"
)]
#[case::receives_into_an_empty_buffer(
    "udp-server",
    "empty_buffer",
    "udp.server_log",
    "#datagrams-have-edges"
)]
#[case::announces_the_requested_port(
    "udp-server",
    "prints_requested_port",
    "udp.reply",
    "#step-1-the-server-binds"
)]
#[case::client_receives_into_an_empty_buffer(
    "udp-client",
    "empty_buffer",
    "udp.client_reply",
    "#datagrams-have-edges"
)]
#[case::counts_in_one_byte("udp-server", "counter_overflow", "udp.burst", "#no-promises")]
#[case::client_prints_a_python_repr(
    "udp-client",
    "python_repr",
    "udp.client_reply",
    "#step-3-the-client"
)]
#[case::client_prints_without_talking(
    "udp-client",
    "prints_without_talking",
    "udp.client_reply",
    "#step-3-the-client"
)]
#[case::client_prints_the_fixed_reply(
    "udp-client",
    "prints_the_fixed_reply",
    "udp.client_binary_reply",
    "#step-3-the-client"
)]
#[case::client_decodes_lossily(
    "udp-client",
    "lossy_text",
    "udp.client_binary_reply",
    "#step-3-the-client"
)]
#[case::client_prints_its_whole_buffer(
    "udp-client",
    "whole_buffer",
    "udp.client_reply",
    "#datagrams-have-edges"
)]
#[case::client_socket_always_ipv4(
    "udp-client",
    "ipv4_socket",
    "udp.client_ipv6",
    "#step-3-the-client"
)]
#[case::client_takes_the_first_datagram(
    "udp-client",
    "first_datagram",
    "udp.client_stranger",
    "#step-4-only-the-servers-reply"
)]
#[case::client_waits_one_second(
    "udp-client",
    "timeout_one_second",
    "udp.client_delayed",
    "#why-a-udp-client-needs-a-timeout"
)]
#[case::client_ignores_timeout(
    "udp-client",
    "ignores_timeout",
    "udp.client_timeout",
    "#why-a-udp-client-needs-a-timeout"
)]
#[case::client_restarts_the_clock_for_strangers(
    "udp-client",
    "stranger_restarts_the_clock",
    "udp.client_stranger_timeout",
    "#why-a-udp-client-needs-a-timeout"
)]
#[case::client_retries_when_refused(
    "udp-client",
    "retries_when_refused",
    "udp.client_no_server",
    "#when-no-one-answers"
)]
#[case::client_traceback_when_refused(
    "udp-client",
    "connect_traceback",
    "udp.client_no_server",
    "#when-no-one-answers"
)]
#[case::zero_timeout_accepted(
    "udp-client",
    "zero_timeout",
    "udp.client_usage",
    "#step-3-the-client"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("udp", &[(program, bug)]);
    let report = grade_dir("udp", dir.path());
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

/// A server bug of one cause fails several checks; each failure names
/// that cause (from what the grader saw), not the hint of the check it
/// happened in, so that the report explains it once.
#[rstest]
#[case::replies_from_a_new_socket("reply_from_new_socket", "#who-sent-this")]
#[case::binds_the_unspecified_address("bind_unspecified", "#step-1-the-server-binds")]
#[case::leaves_its_log_unflushed("unflushed_log", "#what-the-server-prints")]
#[case::logs_no_bytes("logs_no_bytes", "#datagrams-have-edges")]
fn a_server_bug_of_one_cause_names_it_in_every_check_it_fails(
    #[case] bug: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("udp", &[("udp-server", bug)]);
    let report = grade_dir("udp", dir.path());
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|check| check.status == Status::Failed)
        .collect();
    assert!(failed.len() >= 2, "{bug}: {}", summary(&report));
    for check in failed {
        assert!(
            check.handout.ends_with(section),
            "{bug}: {} sends the student to {}, not {section}:\n{}",
            check.id,
            check.handout,
            summary(&report)
        );
    }
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("udp", &[("udp-client", "first_datagram")]);
    let report = grade_dir("udp", dir.path());
    for id in [
        "udp.reply",
        "udp.server_log",
        "udp.two_clients",
        "udp.burst",
        "udp.client_reply",
        "udp.client_timeout",
    ] {
        assert_passes(&report, id);
    }
}

/// The grader's sockets that play the client's peers are shown talking to
/// the client: a stranger's datagram goes grader → client, and so does the
/// client's datagram to a server that never answers (client → grader).
#[test]
fn the_client_checks_label_their_datagrams_with_the_client() {
    let dir = fixture_bin_dir("udp", &[]);
    for id in [
        "udp.client_stranger",
        "udp.client_timeout",
        "udp.client_stranger_timeout",
    ] {
        let report = grade_dir_check("udp", dir.path(), id);
        assert_passes(&report, id);
        let events = &report.check(id).unwrap().conversation.events;
        let datagrams: Vec<_> = events
            .iter()
            .filter(|event| event.kind == Kind::Datagram)
            .collect();
        assert!(!datagrams.is_empty(), "{id}: no datagram recorded");
        for event in datagrams {
            let parties = [event.from, event.to];
            assert!(
                parties.contains(&Some(Party::Client)) && parties.contains(&Some(Party::Grader)),
                "{id}: a datagram between {:?} and {:?}: {}",
                event.from,
                event.to,
                event.text
            );
        }
    }
    assert_nothing_left(dir.path());
}

/// A server that never gets ready costs the server checks only, in bounded
/// time; the client checks use the grader's own peers.
#[test]
fn a_server_that_never_gets_ready_costs_only_the_server_checks() {
    let dir = fixture_bin_dir("udp", &[("udp-server", "never_ready")]);
    let started = Instant::now();
    let report = grade_dir("udp", dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "took {:?}",
        started.elapsed()
    );
    assert_fails(&report, "udp.reply");
    for id in [
        "udp.client_reply",
        "udp.client_stranger",
        "udp.client_timeout",
    ] {
        assert_passes(&report, id);
    }
    assert_nothing_left(dir.path());
}

/// The reference server carries on after every odd datagram the checks
/// send, and after one too long for its buffer (cut to 8192 bytes).
#[test]
fn the_reference_server_survives_odd_datagrams() {
    let lab = lab("udp");
    let binaries = builder::build(lab, Edition::Solution, CompilerOutput::Capture).unwrap();
    let launch = Launch::new(binaries.path("udp-server").unwrap(), ["127.0.0.1", "0"]);
    let mut server = Process::spawn(&launch, Arc::default()).unwrap();
    let addr = ready::wait_listening(&mut server, Duration::from_secs(10)).unwrap();
    let socket = udp::bind().unwrap();
    let deadline = || Instant::now() + Duration::from_secs(5);
    let too_long = vec![b'x'; 20_000];
    let odd: [&[u8]; 4] = [
        b"",
        b"\xff\xfe\x00\x80\xc3\x28",
        &too_long,
        &[0; udp::MAX_DATAGRAM],
    ];
    for datagram in odd.into_iter().chain([&b"still there?"[..]]) {
        socket.send_to(datagram, addr).unwrap();
        let (reply, _) = udp::recv_from_until(&socket, addr, deadline()).unwrap();
        assert_eq!(reply.unwrap().bytes, b"Got your message!");
    }
    assert!(server.exit_status().is_none());
    let expected = format!(
        "Got message from {}: b\"{}\"",
        socket.local_addr().unwrap(),
        "x".repeat(8192)
    );
    let logged = server.stdout().wait_for(deadline(), |bytes, _| {
        complete_lines(bytes)
            .into_iter()
            .find(|line| *line == expected)
    });
    assert!(
        logged.is_some(),
        "a too-long datagram is logged cut to 8192 bytes"
    );
}

#[test]
fn a_missing_binary_fails_its_checks_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let report = grade_dir("udp", dir.path());
    let failure = report.check("udp.reply").unwrap().failure.as_ref().unwrap();
    assert!(
        failure.summary.contains("no executable named `udp-server`"),
        "{failure}"
    );
    assert_eq!(report.score, 0);
}
