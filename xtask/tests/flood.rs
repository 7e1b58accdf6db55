//! A graded program that sends without end costs the grader a bounded
//! buffer, not its memory: `cargo xtask grade lab1` against an echo client
//! and an echo server that write for ever stays under 300 MB of peak RSS.
//!
//! One test in a file of its own: `getrusage(RUSAGE_CHILDREN)` reports the
//! largest child this test process waited for, and no other test runs a
//! child here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The grader's peak resident memory must stay under this, in bytes.
const PEAK_RSS_LIMIT: u64 = 300 * 1024 * 1024;

/// Connects to the server it is given and writes without end; it never
/// reads, and never half-closes.
const FLOODING_CLIENT: &str = r#"#!/usr/bin/env python3
import socket, sys
host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 65432
sock = socket.create_connection((host, port))
chunk = b"x" * (1 << 20)
try:
    while True:
        sock.sendall(chunk)
except OSError:
    pass
"#;

/// Listens where it is told, announces itself as the contract says, and
/// writes without end to every client, whatever the client sends.
const FLOODING_SERVER: &str = r#"#!/usr/bin/env python3
import socket, sys, threading
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(16)
print(f"Listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
chunk = b"x" * (1 << 20)
def flood(conn):
    try:
        while True:
            conn.sendall(chunk)
    except OSError:
        pass
while True:
    conn, _ = listener.accept()
    threading.Thread(target=flood, args=(conn,), daemon=True).start()
"#;

fn write_program(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a program");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The largest resident set of the children this process waited for, in
/// bytes (Linux reports `ru_maxrss` in KiB).
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage fills the struct we pass for RUSAGE_CHILDREN.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid out-pointer.
    let result = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(result, 0, "getrusage: {}", std::io::Error::last_os_error());
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

#[test]
fn a_client_and_a_server_that_flood_leave_the_grader_under_300_mb() {
    // Graded programs may run as another uid: the folder is readable by all.
    let programs = tempfile::Builder::new()
        .prefix("socket-labs-flood-")
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(programs.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    write_program(programs.path(), "echo-client", FLOODING_CLIENT);
    write_program(programs.path(), "echo-server", FLOODING_SERVER);
    let xtask = assert_cmd::cargo::cargo_bin("xtask");
    let output = Command::new(&xtask)
        .args(["grade", "lab1", "--bin-dir"])
        .arg(programs.path())
        .output()
        .expect("running cargo xtask grade");
    let peak = children_peak_rss();
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        peak < PEAK_RSS_LIMIT,
        "the grader's peak RSS was {} MiB (limit {} MiB):\n{report}",
        peak >> 20,
        PEAK_RSS_LIMIT >> 20
    );
    // The report says why: what was expected, and that more came.
    assert!(
        report.contains("the server sent more than") && report.contains("was expected"),
        "{report}"
    );
    assert!(
        report.contains("the client sent more than") && report.contains("was expected"),
        "{report}"
    );
    eprintln!("the grader's peak RSS: {} MiB", peak >> 20);
}
