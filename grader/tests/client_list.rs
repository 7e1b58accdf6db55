//! Lab 6 (client-list): the grader against the solution, the stub, an
//! independent Python implementation, one classic bug per check, and the
//! reference server against the malformed input the checks send.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use grader::Status;
use grader::builder::{self, CompilerOutput, Edition};
use rstest::rstest;
use support::*;

const SERVER: &str = "client-list-server";
const CLIENT: &str = "client-list-client";

/// One classic mistake per check: each must cost that check (and sometimes
/// a few that depend on the same behaviour).
#[rstest]
#[case::port_as_a_string(
    SERVER,
    "port_as_string",
    "client-list.sees_itself",
    "#step-2-register-and-reply"
)]
// Every check's server fails to start: the first is sent to where the
// lab's server binds, not to the check's own section.
#[case::announces_the_port_it_asked_for(
    SERVER,
    "announce_requested_port",
    "client-list.sees_itself",
    "#step-1-a-thread-per-connection"
)]
#[case::copies_the_list_outside_the_lock(
    SERVER,
    "copy_update",
    "client-list.many_at_once",
    "#lost-updates"
)]
#[case::serves_one_client_at_a_time(
    SERVER,
    "sequential",
    "client-list.silent_client",
    "#step-1-a-thread-per-connection"
)]
#[case::locks_before_reading_the_name(
    SERVER,
    "lock_before_read",
    "client-list.silent_client",
    "#sharing-the-list-arc-and-mutex"
)]
#[case::leaks_its_threads(
    SERVER,
    "leak_threads",
    "client-list.thread_per_connection",
    "#step-1-a-thread-per-connection"
)]
#[case::writes_while_holding_the_lock(
    SERVER,
    "lock_while_writing",
    "client-list.slow_reader",
    "#sharing-the-list-arc-and-mutex"
)]
#[case::builds_json_by_hand(SERVER, "hand_json", "client-list.awkward_names", "#json-with-serde")]
#[case::keeps_the_first_registration(
    SERVER,
    "keep_first",
    "client-list.duplicate_replaces",
    "#step-2-register-and-reply"
)]
#[case::cuts_long_names(
    SERVER,
    "truncate",
    "client-list.name_limit",
    "#step-3-reading-the-name"
)]
#[case::reads_the_whole_name_before_checking(
    SERVER,
    "unbounded_name",
    "client-list.name_limit",
    "#step-3-reading-the-name"
)]
#[case::counts_characters(
    SERVER,
    "count_chars",
    "client-list.name_limit_multibyte",
    "#step-3-reading-the-name"
)]
#[case::accepts_an_empty_name(
    SERVER,
    "allow_empty",
    "client-list.empty_name",
    "#step-3-reading-the-name"
)]
#[case::trims_the_name(
    SERVER,
    "strip",
    "client-list.whitespace_kept",
    "#step-3-reading-the-name"
)]
#[case::reads_the_name_once(
    SERVER,
    "recv_once",
    "client-list.name_in_pieces",
    "#step-3-reading-the-name"
)]
#[case::decodes_lossily(SERVER, "lossy", "client-list.non_utf8", "#step-3-reading-the-name")]
#[case::forgets_served_clients(
    SERVER,
    "forgets_served",
    "client-list.many_at_once",
    "#step-2-register-and-reply"
)]
#[case::keeps_insertion_order(SERVER, "insertion_order", "client-list.sorted", "#the-protocol")]
#[case::logs_its_own_address(
    SERVER,
    "log_own_address",
    "client-list.server_log",
    "#what-the-server-prints"
)]
#[case::prints_a_python_dict(
    CLIENT,
    "python_repr",
    "client-list.client_output",
    "#step-4-the-client"
)]
#[case::indents_with_two_spaces(
    CLIENT,
    "indent2",
    "client-list.client_indent",
    "#printing-json-in-the-servers-order"
)]
#[case::reads_1024_bytes_once(
    CLIENT,
    "recv_1024",
    "client-list.client_long_list",
    "#reading-a-reply-to-the-end"
)]
#[case::prints_without_talking(
    CLIENT,
    "prints_without_talking",
    "client-list.client_output",
    "#step-4-the-client"
)]
#[case::prints_without_reading(
    CLIENT,
    "prints_without_reading",
    "client-list.client_output",
    "#step-4-the-client"
)]
#[case::never_half_closes(
    CLIENT,
    "no_half_close",
    "client-list.client_output",
    "#the-half-close-im-done-sending"
)]
#[case::adds_a_newline(CLIENT, "newline", "client-list.client_name", "#step-4-the-client")]
#[case::sorts_ignoring_case(
    CLIENT,
    "lower_sort",
    "client-list.client_order",
    "#printing-json-in-the-servers-order"
)]
#[case::prints_an_empty_list(
    CLIENT,
    "print_empty",
    "client-list.client_empty_reply",
    "#when-things-go-wrong"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("client-list", &[(program, bug)]);
    let report = grade_dir("client-list", dir.path());
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

/// A server that cuts a long name to 256 bytes counts bytes all right:
/// the multibyte check explains the cut, as the plain limit's check does,
/// and does not say that characters were counted.
#[test]
fn a_name_cut_to_the_limit_is_explained_as_a_cut() {
    let dir = fixture_bin_dir("client-list", &[(SERVER, "truncate")]);
    let report = grade_dir_check(
        "client-list",
        dir.path(),
        "client-list.name_limit_multibyte",
    );
    assert_fails(&report, "client-list.name_limit_multibyte");
    assert_diagnosis(&report, "truncate", "#step-3-reading-the-name");
    let check = report.check("client-list.name_limit_multibyte").unwrap();
    let failure = check.failure.as_ref().unwrap().to_string();
    assert!(check.hint.contains("never cut"), "{}", summary(&report));
    assert!(!failure.contains("not 256 characters"), "{failure}");
    assert!(
        failure.contains("cut the name instead of refusing it"),
        "{failure}"
    );
    assert_nothing_left(dir.path());
}

/// One mistake in every reply fails every server check; each must be
/// explained by that one mistake, its one hint and handout section, and
/// the report must group them under the first.
#[rstest]
#[case::own_address_in_the_entries("own_address", "#step-2-register-and-reply")]
#[case::never_closes_after_the_list("never_closes", "#step-2-register-and-reply")]
fn one_mistake_in_every_reply_is_one_cause(#[case] bug: &str, #[case] section: &str) {
    let dir = fixture_bin_dir("client-list", &[(SERVER, bug)]);
    let report = grade_dir("client-list", dir.path());
    assert_diagnosis(&report, bug, section);
    let failed: Vec<&grader::CheckOutcome> = report
        .checks
        .iter()
        .filter(|check| check.status == Status::Failed)
        .collect();
    // Every server check registers a name.
    let servers = grader::rubric::for_lab(lab("client-list"))
        .iter()
        .filter(|spec| !spec.id.contains(".client_"))
        .count();
    assert_eq!(failed.len(), servers, "{}", summary(&report));
    for check in &failed {
        assert!(
            check.handout.ends_with(section) && check.hint == failed[0].hint,
            "{} is explained otherwise ({}: {}):\n{}",
            check.id,
            check.handout,
            check.hint,
            summary(&report)
        );
    }
    let view = grader::render::LabView::of(&report);
    let grouped = grader::render::same_failures(&view.checks);
    let first = failed[0].id.clone();
    for (check, same) in view.checks.iter().zip(&grouped) {
        match same {
            grader::render::Same::AsAbove(above) => assert_eq!(above, &first, "{}", check.id),
            grader::render::Same::AlsoCosts(later) => {
                assert_eq!(check.id, first);
                assert_eq!(later.len(), servers - 1);
            }
            grader::render::Same::Own => assert!(check.passed(), "{} stands alone", check.id),
        }
    }
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("client-list", &[(CLIENT, "recv_1024")]);
    let report = grade_dir("client-list", dir.path());
    for spec in grader::rubric::for_lab(lab("client-list")) {
        if !spec.id.contains(".client_") {
            assert_passes(&report, &spec.id);
        }
    }
}

/// The reference server, started on a free port; killed when dropped.
struct Reference {
    child: Child,
    addr: SocketAddr,
}

impl Reference {
    fn start() -> Self {
        let lab = lab("client-list");
        let binaries = builder::build(lab, Edition::Solution, CompilerOutput::Capture)
            .expect("the solution builds");
        let path = binaries.paths[SERVER].clone();
        let mut child = Command::new(path)
            .args(["127.0.0.1", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the reference server");
        let mut stdout = child.stdout.take().unwrap();
        let mut first = Vec::new();
        let mut byte = [0];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            first.push(byte[0]);
        }
        let line = String::from_utf8(first).unwrap();
        let addr = line
            .strip_prefix("Listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { child, addr }
    }

    fn exchange(&self, name: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = stream.write_all(name);
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).map(|_| reply)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_reference_server_survives_malformed_input() {
    let server = Reference::start();
    let huge = vec![b'x'; 1 << 20];
    let bad: [&[u8]; 6] = [
        b"",
        b"caf\xe9",
        &[0xf0, 0x9f, 0x90],
        &[b'y'; 257],
        &huge,
        b"\0",
    ];
    for name in bad {
        let _ = server.exchange(name);
    }
    // A client that goes away in the middle of its name.
    drop(TcpStream::connect(server.addr).and_then(|mut s| s.write_all(b"half")));
    let reply = server
        .exchange(b"still fine")
        .expect("the server still answers");
    let list: serde_json::Value = serde_json::from_slice(&reply).expect("a JSON list");
    assert!(list.get("still fine").is_some(), "{list}");
    assert!(
        list.get("\0").is_some(),
        "a NUL name is valid UTF-8: {list}"
    );
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died"
    );
    drop(server);
}
