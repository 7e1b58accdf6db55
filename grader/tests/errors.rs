//! Lab 2 (errors): the grader against the solution, the stub, an independent
//! Python implementation, one classic bug per check, and malformed input
//! sent to the reference server.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use rstest::rstest;
use support::*;

/// One classic mistake per check: each must cost that check. (That the
/// correct fixture passes every check is shown above.)
#[rstest]
#[case::prints_the_reply_as_text(
    "socket-errors",
    "text_reply",
    "errors.success",
    "#step-5-receive-the-reply"
)]
#[case::sends_no_request(
    "socket-errors",
    "sends_no_request",
    "errors.success",
    "#step-4-send-the-request"
)]
#[case::speaks_http_1_1(
    "socket-errors",
    "http11",
    "errors.request_line",
    "#step-4-send-the-request"
)]
#[case::trims_the_path(
    "socket-errors",
    "trims_the_path",
    "errors.request_line",
    "#step-4-send-the-request"
)]
#[case::creates_and_connects_in_one_call(
    "socket-errors",
    "create_connection",
    "errors.socket_create",
    "#step-1-create-the-socket"
)]
#[case::files_resolution_under_connect(
    "socket-errors",
    "resolve_as_connect",
    "errors.resolve",
    "#step-2-resolve-the-host"
)]
#[case::exits_1_on_any_connect_error(
    "socket-errors",
    "exit_1",
    "errors.refused",
    "#step-3-connect-with-a-timeout"
)]
#[case::connects_without_a_timeout(
    "socket-errors",
    "no_connect_timeout",
    "errors.connect_timeout",
    // Stopped while its socket is still in SYN_SENT: `connect` had no
    // timeout, which Step 3 teaches.
    "#step-3-connect-with-a-timeout"
)]
#[case::reads_without_a_timeout(
    "socket-errors",
    "no_read_timeout",
    "errors.recv_timeout",
    "#timeouts"
)]
#[case::takes_a_reset_for_the_end(
    "socket-errors",
    "reset_as_eof",
    "errors.reset",
    "#step-5-receive-the-reply"
)]
#[case::loses_the_reply_on_an_error(
    "socket-errors",
    "reply_at_the_end",
    "errors.reset",
    "#step-5-receive-the-reply"
)]
#[case::timeout_in_eagain_words(
    "socket-errors",
    "eagain_words",
    "errors.recv_timeout",
    "#timeouts"
)]
#[case::calls_a_reset_a_timeout(
    "socket-errors",
    "reset_as_timeout",
    "errors.reset",
    "#step-5-receive-the-reply"
)]
#[case::whole_seconds_only(
    "socket-errors",
    "integer_timeout",
    "errors.timeout_honoured",
    "#timeouts"
)]
#[case::fixed_timeout(
    "socket-errors",
    "fixed_timeout",
    "errors.timeout_honoured",
    "#timeouts"
)]
#[case::errors_on_stdout(
    "socket-errors",
    "errors_on_stdout",
    "errors.stderr_not_stdout",
    "#the-five-stages"
)]
#[case::interrupted_read_is_an_error(
    "socket-errors",
    "interrupted_as_error",
    "errors.stop_and_continue",
    "#interrupted-reads"
)]
#[case::host_has_a_default("socket-errors", "default_host", "errors.usage", "#running-it")]
#[case::two_line_messages("socket-errors", "two_lines", "errors.messages", "#the-five-stages")]
#[case::bind_server_ipv4_only("bind-server", "ipv4_socket", "errors.bind_ipv6", "#the-bind-server")]
#[case::announces_before_bind_line(
    "bind-server",
    "listening_first",
    "errors.bind_ready",
    "#the-bind-server"
)]
#[case::accepts_once("bind-server", "one_client", "errors.bind_clients", "#the-bind-server")]
#[case::own_words_for_the_bind_error(
    "bind-server",
    "own_message",
    "errors.bind_failed",
    "#when-bind-fails"
)]
#[case::exits_1_when_bind_fails("bind-server", "exit_1", "errors.bind_failed", "#when-bind-fails")]
#[case::no_reuseaddr(
    "bind-server",
    "no_reuseaddr",
    "errors.rebind_time_wait",
    "#so_reuseaddr-and-time_wait"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("errors", &[(program, bug)]);
    let report = grade_dir_check("errors", dir.path(), check);
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("errors", &[("socket-errors", "reset_as_eof")]);
    let report = grade_dir("errors", dir.path());
    for id in [
        "errors.success",
        "errors.refused",
        "errors.bind_ready",
        "errors.bind_clients",
        "errors.bind_failed",
        "errors.rebind_time_wait",
    ] {
        assert_passes(&report, id);
    }
}

/// The reference bind-server survives clients that send junk, reset, or
/// vanish: it keeps accepting and logging.
#[test]
fn the_reference_server_survives_malformed_clients() {
    let lab = lab("errors");
    let binaries = grader::builder::build(
        lab,
        grader::builder::Edition::Solution,
        grader::builder::CompilerOutput::Capture,
    )
    .expect("the solution builds");
    let path = binaries.path("bind-server").unwrap();
    let mut child = Command::new(path)
        .args(["127.0.0.1", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        if let Some(addr) = line.trim().strip_prefix("Listening on ") {
            break addr.parse::<std::net::SocketAddr>().unwrap();
        }
    };
    for round in 0..20 {
        let mut stream = TcpStream::connect(addr).unwrap();
        let _ = stream.write_all(&[0xff, 0x00, b'\n', round]);
        if round % 2 == 0 {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(stream);
    }
    let last = TcpStream::connect(addr).unwrap();
    let wanted = format!("Connected with {}", last.local_addr().unwrap());
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the server stopped before logging the last client");
        if line.trim() == wanted {
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Half-closing after the request is allowed (lab 1 teaches it): a client
/// that does so still meets a silent server and must still get full marks.
#[test]
fn a_client_that_half_closes_after_its_request_gets_full_marks() {
    let dir = fixture_bin_dir("errors", &[("socket-errors", "half_close_after_request")]);
    assert_full_marks(&grade_dir("errors", dir.path()));
    assert_nothing_left(dir.path());
}
