//! Lab 4 (app): the grader against the solution, the stub, an independent
//! Python implementation, one classic bug per check, broken framing
//! libraries, and malformed input thrown at the reference server.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grader::Status;
use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::Binaries;
use rstest::rstest;
use support::*;

#[test]
fn the_solution_gets_full_marks() {
    assert_full_marks(&grade_solution("app"));
}

#[test]
fn the_untouched_stub_gets_zero_with_every_check_reported() {
    let started = Instant::now();
    let report = grade_stub("app");
    assert_zero_with_every_check(&report);
    // The stub's exercise tests ran, and failed on its todo!()s.
    let framing = report.check("app.framing_tests").unwrap();
    assert_eq!(framing.status, Status::Failed, "{}", summary(&report));
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_independent_python_implementation_gets_full_marks() {
    let dir = fixture_bin_dir("app", &[]);
    let report = grade_dir("app", dir.path());
    assert_full_marks(&report);
    // There is no crate to run tests in: that check is skipped, not failed.
    let framing = report.check("app.framing_tests").unwrap();
    assert_eq!(framing.status, Status::Skipped, "{}", summary(&report));
    assert_eq!(framing.max_points, 0);
    assert_nothing_left(dir.path());
}

/// One classic mistake per check: each must cost that check (and sometimes
/// a few that depend on the same behaviour).
#[rstest]
#[case::counts_characters_not_bytes(
    "app-server",
    "length_in_chars",
    "app.search",
    // The content's characters are as many as content-length says: the
    // evidence of a length counted in characters.
    "#text-bytes-and-content-length"
)]
#[case::decodes_as_latin1(
    "app-server",
    "decode_latin1",
    "app.unicode_query",
    "#text-bytes-and-content-length"
)]
#[case::forgets_the_quotes(
    "app-server",
    "no_match_unquoted",
    "app.no_match",
    "#step-4-the-server-answers"
)]
#[case::builds_json_by_hand("app-server", "json_by_hand", "app.no_match", "#the-application")]
#[case::ignores_the_action(
    "app-server",
    "ignore_action",
    "app.invalid_action",
    "#step-4-the-server-answers"
)]
#[case::treats_binary_as_text(
    "app-server",
    "binary_as_text",
    "app.binary_request",
    "#the-application"
)]
#[case::keeps_the_connection_open(
    "app-server",
    "keep_open",
    "app.closes_after_answer",
    "#the-connection-state-machine"
)]
#[case::header_in_one_read(
    "app-server",
    "json_header_one_read",
    "app.one_byte_at_a_time",
    "#a-byte-stream-has-no-message-boundaries"
)]
#[case::length_in_one_read(
    "app-server",
    "proto_header_one_read",
    "app.split_length",
    "#the-connection-state-machine"
)]
#[case::one_shared_buffer(
    "app-server",
    "shared_buffer",
    "app.concurrent",
    "#the-connection-state-machine"
)]
#[case::crashes_on_bad_json(
    "app-server",
    "crash_on_bad_header",
    "app.malformed_header",
    "#when-the-input-is-bad"
)]
#[case::crashes_on_a_missing_key(
    "app-server",
    "crash_on_missing_key",
    "app.missing_key",
    "#when-the-input-is-bad"
)]
#[case::crashes_on_bad_content(
    "app-server",
    "crash_on_bad_content",
    "app.bad_content",
    "#when-the-input-is-bad"
)]
#[case::no_length_limit(
    "app-server",
    "no_length_limit",
    "app.huge_content_length",
    "#limits-on-what-a-peer-may-make-you-allocate"
)]
#[case::blocking_reads(
    "app-server",
    "blocking_reads",
    "app.stalled_half",
    "#the-connection-state-machine"
)]
#[case::little_endian_length(
    "app-server",
    "little_endian_length",
    "app.byte_order",
    "#network-byte-order"
)]
// The first request it gets wrong, whichever check sends it: the grader
// sends it again with the length's bytes reversed, and it answers.
#[case::little_endian_length_search(
    "app-server",
    "little_endian_length",
    "app.search",
    "#network-byte-order"
)]
#[case::logs_a_python_repr(
    "app-server",
    "log_python_repr",
    "app.server_log",
    "#what-the-server-prints"
)]
#[case::client_waits_for_the_close(
    "app-client",
    "waits_for_close",
    "app.client_held_open",
    "#step-5-the-client"
)]
#[case::client_counts_characters(
    "app-client",
    "length_in_chars",
    "app.client_search",
    "#step-5-the-client"
)]
#[case::client_sends_json_always(
    "app-client",
    "binary_as_json",
    "app.client_binary",
    "#step-5-the-client"
)]
#[case::client_reads_once(
    "app-client",
    "single_recv",
    "app.client_fragments",
    "#a-byte-stream-has-no-message-boundaries"
)]
#[case::client_prints_without_talking(
    "app-client",
    "prints_without_talking",
    "app.client_search",
    "#step-5-the-client"
)]
#[case::client_prints_the_handout_table(
    "app-client",
    "prints_the_handout_table",
    "app.client_search",
    "#step-5-the-client"
)]
#[case::refuses_the_limit_itself(
    "app-server",
    "limit_inclusive",
    "app.largest_content",
    "#limits-on-what-a-peer-may-make-you-allocate"
)]
#[case::a_reset_ends_the_server(
    "app-server",
    "crash_on_reset",
    "app.reset_mid_request",
    "#when-the-input-is-bad"
)]
#[case::end_of_stream_drops_the_request(
    "app-server",
    "eof_drops_request",
    "app.half_close",
    "#the-connection-state-machine"
)]
#[case::interrupted_poll_ends_the_server(
    "app-server",
    "interrupted_as_error",
    "app.stop_and_continue",
    "#the-connection-state-machine"
)]
#[case::ends_when_out_of_descriptors(
    "app-server",
    "accept_error_ends_server",
    "app.out_of_descriptors",
    "#out-of-file-descriptors"
)]
#[case::client_traceback(
    "app-client",
    "traceback_on_bad_response",
    "app.client_malformed",
    "#when-the-input-is-bad"
)]
#[case::client_lowercase(
    "app-client",
    "lowercase_got",
    "app.client_output",
    "#step-5-the-client"
)]
fn a_classic_bug_fails_its_check(
    #[case] program: &str,
    #[case] bug: &str,
    #[case] check: &str,
    #[case] section: &str,
) {
    let dir = fixture_bin_dir("app", &[(program, bug)]);
    // Only the check at stake runs: several of these bugs stall the program,
    // and waiting out every other check's deadlines would only slow the suite.
    let report = grade_dir_check("app", dir.path(), check);
    assert_fails(&report, check);
    assert_diagnosis(&report, bug, section);
    assert_nothing_left(dir.path());
}

#[test]
fn a_client_bug_leaves_the_server_checks_alone() {
    let dir = fixture_bin_dir("app", &[("app-client", "single_recv")]);
    let report = grade_dir("app", dir.path());
    for check in &report.checks {
        if !check.id.starts_with("app.client") && check.id != "app.framing_tests" {
            assert_passes(&report, &check.id);
        }
    }
}

/// A library crate (`lib`, e.g. the reference solution's `src/lib.rs`, with
/// `from` replaced by `to`) in a workspace of its own in a temporary
/// directory, next to a copy of the grader's framing-tests crate pointed at
/// it. The copy shares `solutions/target`, so only the two crates are
/// compiled; the library is renamed `name` so that its artifacts never
/// replace the solution's.
fn broken_solution_crate(name: &str, lib: &Path, from: &str, to: &str) -> tempfile::TempDir {
    let root = builder::workspace_root();
    let solutions = root.join("solutions");
    let dir = tempfile::Builder::new()
        .prefix("socket-labs-broken-app-")
        .tempdir()
        .unwrap();
    let manifest = std::fs::read_to_string(solutions.join("Cargo.toml")).unwrap();
    let manifest = regex_replace_members(&manifest);
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(solutions.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    let crate_manifest = std::fs::read_to_string(solutions.join("app/Cargo.toml")).unwrap();
    assert!(crate_manifest.contains("name = \"app\""));
    std::fs::write(
        app.join("Cargo.toml"),
        crate_manifest.replacen("name = \"app\"", &format!("name = \"{name}\""), 1),
    )
    .unwrap();
    let source = std::fs::read_to_string(lib).unwrap();
    assert!(
        source.contains(from),
        "{} no longer contains {from:?}",
        lib.display()
    );
    std::fs::write(app.join("src/lib.rs"), source.replacen(from, to, 1)).unwrap();
    let tests = dir.path().join("framing-tests");
    std::fs::create_dir_all(&tests).unwrap();
    let tests_manifest =
        std::fs::read_to_string(solutions.join("framing-tests/Cargo.toml")).unwrap();
    let grader_framing = format!("{}/", root.join("grader/framing").display());
    std::fs::write(
        tests.join("Cargo.toml"),
        tests_manifest
            .replace("../../grader/framing/", &grader_framing)
            .replace(
                "app = { path = \"../app\" }",
                &format!("app = {{ path = \"../app\", package = \"{name}\" }}"),
            ),
    )
    .unwrap();
    dir
}

/// Grades only `app.framing_tests` with the grader's framing driver built
/// against the library in `dir` (from [`broken_solution_crate`]).
fn grade_framing_of(dir: &tempfile::TempDir) -> grader::LabReport {
    let lab = lab("app");
    let solutions = builder::workspace_root().join("solutions");
    let binaries = builder::build(lab, Edition::Solution, CompilerOutput::Capture).unwrap();
    let spec = builder::BuildSpec {
        lab,
        workspace_manifest: dir.path().join("Cargo.toml"),
        crate_dir: dir.path().join("app"),
        crate_name: "the broken library".into(),
        target_dir: Some(solutions.join("target")),
        output: CompilerOutput::Capture,
        sealed: None,
    };
    let binaries = Binaries {
        tests: Some(builder::build_grader_tests(&spec, "framing-tests")),
        ..binaries
    };
    let options = grader::Options {
        only: Some("app.framing_tests".into()),
        ..options("broken framing library")
    };
    grader::grade(lab, Ok(binaries), &options)
}

fn regex_replace_members(manifest: &str) -> String {
    manifest
        .lines()
        .map(|line| {
            if line.starts_with("members") {
                "members = [\"app\", \"framing-tests\"]"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A framing library with a classic bug fails the framing check (the
/// grader's own cases catch it, and the report names the first one), graded
/// as a crate would be.
#[rstest]
#[case::little_endian_length(
    "app-broken-byte-order",
    "u16::from_be_bytes(proto_header)",
    "u16::from_le_bytes(proto_header)",
    "the first: decode a search"
)]
#[case::no_length_limit(
    "app-broken-limit",
    ".filter(|&length| length <= MAX_CONTENT_LENGTH)",
    "",
    "above the limit, refused before any content"
)]
#[case::incomplete_is_an_error(
    "app-broken-incomplete",
    "let Some(&[high, low]) = buffer.get(..PROTO_HEADER_LEN) else {\n        return Ok(None);",
    "let Some(&[high, low]) = buffer.get(..PROTO_HEADER_LEN) else {\n        return Err(FrameError::EmptyHeader);",
    "every split point of a search is incomplete until the last byte"
)]
fn a_broken_framing_library_fails_its_tests(
    #[case] name: &str,
    #[case] from: &str,
    #[case] to: &str,
    #[case] reported: &str,
) {
    let solution_lib = builder::workspace_root().join("solutions/app/src/lib.rs");
    let dir = broken_solution_crate(name, &solution_lib, from, to);
    let report = grade_framing_of(&dir);
    assert_fails(&report, "app.framing_tests");
    let failure = report.checks[0].failure.as_ref().unwrap().to_string();
    assert!(failure.contains(reported), "{failure}");
}

/// The points of the framing check cannot be earned with the graded crate's
/// own tests: the untouched stub's library with its exercise tests replaced
/// by thirty that always pass still fails it.
#[test]
fn the_crates_own_tests_earn_nothing() {
    let stub_lib = builder::workspace_root().join("labs/app/src/lib.rs");
    let empty_tests: String = (0..30)
        .map(|n| format!("    #[test]\n    fn always_passes_{n}() {{}}\n"))
        .collect();
    let dir = broken_solution_crate(
        "app-own-tests",
        &stub_lib,
        "#[cfg(test)]\nmod tests {",
        &format!(
            "#[cfg(test)]\nmod tests {{\n{empty_tests}}}\n#[cfg(any())]\nmod exercise_tests {{"
        ),
    );
    let report = grade_framing_of(&dir);
    assert_fails(&report, "app.framing_tests");
}

/// Prepended to every `todo!()` of the stub: a library that prints
/// libtest's verdict for the thirty exercise tests and ends the process,
/// successfully, as soon as any of its functions is called.
const FORGED_VERDICT: &str = r#"{
            println!("running 30 tests");
            println!("test result: ok. 30 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s");
            std::process::exit(0);
        }
        todo!("#;

/// The check judges what the library returns, never what the process that
/// runs it prints: the stub, with every exercise function printing a
/// passing test verdict and exiting 0, earns nothing, and the report says
/// that the driver ended during a call.
#[test]
fn a_forged_test_verdict_earns_nothing() {
    let stub_lib = builder::workspace_root().join("labs/app/src/lib.rs");
    let stub = std::fs::read_to_string(&stub_lib).unwrap();
    assert_eq!(
        stub.matches("todo!(").count(),
        6,
        "the stub's exercise functions"
    );
    let dir = broken_solution_crate("app-forged-verdict", &stub_lib, "todo!(", "todo!(");
    std::fs::write(
        dir.path().join("app/src/lib.rs"),
        stub.replace("todo!(", FORGED_VERDICT),
    )
    .unwrap();
    let report = grade_framing_of(&dir);
    assert_fails(&report, "app.framing_tests");
    let check = report.check("app.framing_tests").unwrap();
    assert_eq!(check.points, 0, "{}", summary(&report));
    let failure = check.failure.as_ref().unwrap().to_string();
    assert!(failure.contains("framing cases failed"), "{failure}");
    assert!(failure.contains("the driver ended"), "{failure}");
}

/// A correct library may print what it likes, a failing verdict included,
/// and still earns the check: the reference library, noisy on stdout and
/// stderr in every call of `check`.
#[test]
fn a_correct_library_may_print_anything() {
    let solution_lib = builder::workspace_root().join("solutions/app/src/lib.rs");
    let dir = broken_solution_crate(
        "app-noisy",
        &solution_lib,
        "pub fn check(buffer: &[u8]) -> Result<Option<Frame>, FrameError> {",
        "pub fn check(buffer: &[u8]) -> Result<Option<Frame>, FrameError> {\n    \
         println!(\"test result: FAILED. 0 passed; 30 failed\");\n    \
         eprintln!(\"checking {} bytes\", buffer.len());",
    );
    let report = grade_framing_of(&dir);
    assert_passes(&report, "app.framing_tests");
}

#[test]
fn the_stub_has_the_solutions_framing_tests_marked_ignored() {
    let root = builder::workspace_root();
    let tests = |path: PathBuf| {
        let text = std::fs::read_to_string(path).unwrap();
        let (_, tests) = text.split_once("#[cfg(test)]").unwrap();
        tests
            .lines()
            .filter(|line| !line.trim_start().starts_with("#[ignore"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let stub = tests(root.join("labs/app/src/lib.rs"));
    assert_eq!(stub, tests(root.join("solutions/app/src/lib.rs")));
    let text = std::fs::read_to_string(root.join("labs/app/src/lib.rs")).unwrap();
    let functions = text.matches("\n    fn ").count();
    let ignored = text.matches("#[ignore = \"lab exercise").count();
    // Every test function is ignored (the helpers `search`, `binary`, `raw`
    // are the three functions that are not tests).
    assert_eq!(functions - 3, ignored, "every exercise test is #[ignore]d");
}

/// Sends `bytes` to a fresh connection and reads until the server closes
/// or `wait` passes (input that is only incomplete keeps the connection
/// open, as it should).
fn throw(addr: &str, bytes: &[u8], half_close: bool, wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    received
}

/// Kills the server when the test ends, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The reference server survives every malformed input the checks send, and
/// more: it is still running and answering afterwards, and never panicked.
#[test]
fn the_reference_server_does_not_die_on_malformed_input() {
    let binaries = builder::build(lab("app"), Edition::Solution, CompilerOutput::Capture).unwrap();
    let mut guard = KillOnDrop(
        Command::new(&binaries.paths["app-server"])
            .args(["127.0.0.1", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let server = &mut guard.0;
    let mut stdout = server.stdout.take().unwrap();
    let mut first_line = Vec::new();
    let mut byte = [0];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first_line.push(byte[0]);
    }
    let line = String::from_utf8(first_line).unwrap();
    let addr = line.strip_prefix("Listening on ").unwrap().to_owned();
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    let header = |length: &str| {
        format!(
            "{{\"byteorder\": \"little\", \"content-type\": \"text/json\", \"content-encoding\": \"utf-8\", \"content-length\": {length}}}"
        )
    };
    let frame = |header: &str, content: &[u8]| {
        let mut bytes = (header.len() as u16).to_be_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(content);
        bytes
    };
    let mut rng = fastrand::Rng::with_seed(4);
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![0, 0],
        vec![0],
        b"\x00\x05{bad}".to_vec(),
        b"\x00\x03\xff\xfe\xfd".to_vec(),
        frame("[1, 2]", b""),
        frame("null", b""),
        frame(&header("-1"), b""),
        frame(&header("1.5"), b""),
        frame(&header("\"12\""), b""),
        frame(&header("1048577"), b""),
        frame(&header("99999999999999999999999"), b""),
        frame(&header("4"), b"\xff\xfe\xfd\xfc"),
        frame(&header("4"), b"[42]"),
        frame(&header("2"), b"{}"),
        frame(&header("30"), b"{\"action\": 1, \"value\": null}  "),
        frame(&header("10"), b"{\"act"),
        frame(
            "{\"byteorder\": 1, \"content-type\": [], \"content-encoding\": {}, \"content-length\": 0}",
            b"",
        ),
    ];
    for _ in 0..50 {
        let len = rng.usize(0..300);
        inputs.push(std::iter::repeat_with(|| rng.u8(..)).take(len).collect());
    }
    // Half-closed, every input ends its connection; left open, incomplete
    // ones wait for more, so the grader does not wait long for those.
    for input in &inputs {
        throw(&addr, input, true, Duration::from_secs(5));
        throw(&addr, input, false, Duration::from_millis(50));
    }
    let content = b"{\"action\": \"search\", \"value\": \"ring\"}";
    let good = frame(&header(&content.len().to_string()), content);
    let answer = throw(&addr, &good, false, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("Misty Mountains"), "{text}");
    assert!(server.try_wait().unwrap().is_none(), "the server exited");
    server.kill().unwrap();
    server.wait().unwrap();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let log = drain.join().unwrap();
    assert!(log.contains("Error: 127.0.0.1:"), "{log}");
}

/// A skipped check is reported as such and leaves the total.
#[test]
fn grading_a_bin_dir_skips_the_framing_tests() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab("app");
    let binaries = Binaries::from_dir(lab, dir.path());
    assert!(binaries.crate_dir.is_none());
    let options = grader::Options {
        only: Some("app.framing_tests".into()),
        ..options("empty bin dir")
    };
    let report = grader::grade(lab, Ok(binaries), &options);
    assert_eq!(report.checks[0].status, Status::Skipped);
    assert_eq!(report.max_score, 0);
    let text = summary(&report);
    assert!(text.contains("not applicable"), "{text}");
    assert!(text.contains("skipped"), "{text}");
}
