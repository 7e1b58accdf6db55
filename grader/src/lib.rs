//! The Socket Labs grader.
//!
//! `cargo xtask grade LAB` builds a lab's crate ([`builder`]), runs the lab's
//! checks ([`labs`]) against its binaries with the shared [`harness`], and
//! [`render`]s the [`outcome`] as a report. Points and hints come from the
//! [`rubric`]; which labs exist comes from the [`lab`] table.
//!
//! A check is a plain function `fn(&Ctx) -> CheckResult`: failure is data
//! (what was expected, what happened), never a panic, and every process a
//! check starts is killed, with everything it started, when the check ends.
//! Graded programs are untrusted guests: see [`harness::sandbox`].
//!
//! # Layout
//!
//! One line per module, by its file under `grader/src/` (a folder stands
//! for its `mod.rs`); a test keeps this list and the files in step.
//!
//! - `lab.rs`: the lab table, the one list of the labs that exist, and each
//!   lab's checks.
//! - `rubric.rs`: reads `grader/rubric.toml`, the points, hints, handout
//!   anchors and limits of every check.
//! - `runner.rs`: runs a lab's checks in parallel, each under its time
//!   limit, applies gates, and returns a [`LabReport`].
//! - `outcome.rs`: the result model, [`LabReport`] and [`CheckOutcome`].
//! - `builder/`: builds the graded crate (student or solution) and finds
//!   exactly its executables.
//!   - `builder/messages.rs`: the compiler's messages as a report shows
//!     them: the first error whole, then a screenful.
//!   - `builder/previous.rs`: the executables of a lab's last build, graded
//!     ahead while cargo checks the build; the grade stands if cargo
//!     reports the very same files.
//! - `build_sandbox.rs`: a sealed build of a submission, contained like a
//!   graded program (its own uid and world, no network).
//! - `handout.rs`: the anchor a handout heading gets (GitHub's), and where a
//!   handout section is in the book of `cargo xtask book`.
//! - `sync.rs`: locks that outlive a panic (`lock().unpoison()`), the one
//!   way the grader takes a lock.
//! - `untrusted.rs`: text a student controls (their programs' output, their
//!   folder's name) made safe for each sink: the terminal, CSV, HTML, XML,
//!   JSON, file names. Every writer goes through it.
//! - `harness/`: what every check shares, and [`Ctx`](harness::Ctx).
//!   - `harness/ctx.rs`: [`Ctx`](harness::Ctx), what one check works with:
//!     its binaries, servers, clients, evidence and snapshot.
//!   - `harness/process/`: a running graded program, its kill guard and
//!     its output.
//!     - `harness/process/spawn.rs`: starting it through the sandbox: its
//!       plan, one clone, the captures of its output.
//!   - `harness/launch.rs`: what to run and how: a program's command line,
//!     environment, limits and grants.
//!   - `harness/capture.rs`: draining a program's output into a capped buffer.
//!   - `harness/ready.rs`: a server is ready when it prints `Listening on ADDR`.
//!   - `harness/finished.rs`: how a graded program ended, as students read it.
//!   - `harness/last_words.rs`: the errors a program's own output names (evidence for a diagnosis).
//!   - `harness/limits.rs`: the resource limits of a graded program, and
//!     finding the processes it left.
//!   - `harness/conversation/`: the conversation a check recorded, as it
//!     is recorded.
//!     - `harness/conversation/event.rs`: its events, as a report keeps them.
//!   - `harness/net/`: TCP with deadlines: the grader's clients.
//!     - `harness/net/conn.rs`: the grader's end of a TCP connection, recording.
//!     - `harness/net/peers.rs`: the grader's servers, the peers of client programs.
//!     - `harness/net/faulty.rs`: a port that refuses, a listener that never accepts.
//!     - `harness/net/udp.rs`: UDP with deadlines: the grader's datagram sockets.
//!     - `harness/net/descriptors.rs`: running a server out of file descriptors.
//!   - `harness/observe/`: what the grader sees of a program besides its output.
//!     - `harness/observe/procfs/`: `/proc`, read in one place, typed.
//!       - `harness/observe/procfs/pid.rs`: the files of one process, `/proc/PID/`.
//!       - `harness/observe/procfs/net.rs`: the socket tables of `/proc/net`.
//!     - `harness/observe/sockdiag.rs`: a listening socket's backlog, a connection's received and unread bytes (sock_diag).
//!     - `harness/observe/stall.rs`: failing fast when a program can no longer pass.
//!   - `harness/ipv6.rs`: checks that run a program on the IPv6 loopback.
//!   - `harness/fixtures.rs`: the course's fixture programs as a bin dir to
//!     grade, a classic bug switched on (the tests and `xtask bench`).
//!   - `harness/payload.rs`: random payloads drawn from a check's seed, a buffer at a time.
//!   - `harness/show.rs`: bytes and differences shown as students read them.
//!   - `harness/snapshot.rs`: expected output recorded from the solutions,
//!     compiled in (`SNAPSHOTS`).
//!   - `harness/sandbox/`: the containment of graded programs, in one
//!     direction (nothing in it uses the rest of the harness), and the
//!     per-grade [`Sandbox`](harness::sandbox::Sandbox).
//!     - `harness/sandbox/policy.rs`: what this machine lets the grader enforce.
//!     - `harness/sandbox/child.rs`: the child's code between `clone` and `exec`.
//!     - `harness/sandbox/seccomp.rs`: the system-call filter every program runs under.
//!     - `harness/sandbox/mounts.rs`: the mount plan of each program's world.
//!     - `harness/sandbox/folders.rs`: a program's working and private folders.
//!     - `harness/sandbox/cgroups.rs`: the pids and memory limits, and kill.
//!     - `harness/sandbox/network.rs`: the grade's loopback-only network namespace.
//!     - `harness/sandbox/uids.rs`: one uid per grade running at the same time.
//! - `labs/`: one module per lab, its checks as plain functions listed by
//!   `checks!` in its `CHECKS`, which the lab table holds.
//!   - `labs/echo/`: lab 1, `CHECKS`.
//!     - `labs/echo/server.rs`: the `echo-server` checks.
//!     - `labs/echo/client.rs`: the `echo-client` checks.
//!   - `labs/errors/`: lab 2, `CHECKS`.
//!     - `labs/errors/client.rs`: the `socket-errors` checks.
//!     - `labs/errors/server.rs`: the `bind-server` checks.
//!     - `labs/errors/interrupted.rs`: `socket-errors` stopped and continued.
//!     - `labs/errors/support.rs`: what the `socket-errors` checks share.
//!   - `labs/multiconn/`: lab 3, `CHECKS`.
//!     - `labs/multiconn/server.rs`: the server checks.
//!     - `labs/multiconn/echo.rs`: the grader's echo exchange, and its failure.
//!     - `labs/multiconn/still_open.rs`: the echo owed to a client that stops sending without closing.
//!     - `labs/multiconn/lifetimes.rs`: clients that come and go keep their connections.
//!     - `labs/multiconn/resources.rs`: the server's threads, CPU and descriptors.
//!     - `labs/multiconn/client.rs`: the client checks.
//!     - `labs/multiconn/descriptors.rs`: the server out of descriptors.
//!     - `labs/multiconn/interrupted.rs`: the client stopped and continued.
//!     - `labs/multiconn/logs.rs`: the logs, grouped per connection.
//!   - `labs/app/`: lab 4, `CHECKS`.
//!     - `labs/app/server.rs`: the server checks: requests, whole and in pieces.
//!     - `labs/app/bad_input.rs`: the server checks of bad input.
//!     - `labs/app/log.rs`: the server's log.
//!     - `labs/app/client.rs`: the client checks.
//!     - `labs/app/descriptors.rs`: the server out of descriptors.
//!     - `labs/app/protocol.rs`: the protocol, grader side.
//!     - `labs/app/framing_tests.rs`: the framing check and its driver.
//!     - `labs/app/framing_cases.rs`: the framing check's seeded cases.
//!     - `labs/app/framing_judge.rs`: the framing check's answers, judged and shown.
//!   - `labs/udp/`: lab 5, `CHECKS`.
//!     - `labs/udp/server.rs`: the server checks.
//!     - `labs/udp/client.rs`: the client checks.
//!     - `labs/udp/delayed.rs`: the client against a peer that answers late.
//!     - `labs/udp/usage.rs`: the client's `--timeout` usage check.
//!   - `labs/client_list/`: lab 6, `CHECKS`.
//!     - `labs/client_list/server.rs`: the server checks.
//!     - `labs/client_list/client.rs`: the client checks.
//!     - `labs/client_list/registration.rs`: the grader's registering clients.
//!     - `labs/client_list/reply.rs`: the reply, read in the order sent.
//! - `render/`: one view of each check, built once from the outcome, and
//!   the writers over it.
//!   - `render/text.rs`: the terminal report.
//!   - `render/timeline.rs`: a check's conversation, as every writer shows it.
//!   - `render/html.rs`: the report as a self-contained page, with diagrams.
//!   - `render/diagram.rs`: a check's conversation as an SVG sequence diagram.
//!   - `render/json.rs`: `--format json`.
//!   - `render/gradescope.rs`: Gradescope's `results.json`.
//!   - `render/headless.rs`: headless Chromium, for the pictures and the pages' browser tests.
//!   - `render/junit.rs`: JUnit XML, a test case per check.
//!   - `render/csv.rs`: the grade-class CSV.
//!   - `render/dashboard.rs`: the grade-class page of the whole class.
//!
//! # Adding a check
//!
//! SLUG is the lab's slug (`client-list`); in Rust file names it is spelled
//! with `_` (`client_list`). `cargo xtask course-check` names the first of
//! these files still missing its part, so run it after each step.
//!
//! 1. `grader/rubric.toml`: a `[[check]]` entry with its id `SLUG.name`,
//!    title, points, hint, handout anchor and manual (the file's header
//!    lists every field).
//! 2. `labs/SLUG/README.md`: the handout section the anchor points to, saying
//!    what the program must do.
//! 3. `grader/src/labs/SLUG/server.rs` or `client.rs` (or another module
//!    of the lab's folder, by concern): the function
//!    `fn name(ctx: &Ctx) -> CheckResult`, failing with a [`Failure`] that
//!    says what was expected and what happened. Every read from a graded
//!    program is bounded: a connection reads 64 KiB plus a margin unless
//!    the check says how much it expects
//!    ([`Conn::expect_at_most`](harness::net::conn::Conn::expect_at_most)).
//! 4. `grader/src/labs/SLUG/mod.rs`: the function's path
//!    `server::name` in `CHECKS = checks!("SLUG"; …)`, in rubric order: the
//!    function's name is the id's name.
//! 5. `grader/tests/SLUG.rs` and `grader/tests/fixtures/SLUG/PROGRAM`: a
//!    classic bug, switched on by `LAB_BUG` in the fixture program, that
//!    fails the new check (a case of `a_classic_bug_fails_its_check`).
//! 6. If the contract changes (a new behaviour the programs must have):
//!    `solutions/SLUG/` so that the solution still scores full marks, the
//!    fixture program's correct behaviour, and the stub `labs/SLUG/src/`,
//!    whose `todo!`s stay in functions whose doc names the handout section
//!    (`Handout: "Step 2: the echo loop"`).
//! 7. `grader/snapshots/SLUG.name.snap`, if the check calls
//!    `ctx.snapshot`: recorded from the solution by
//!    `INSTA_UPDATE=always cargo test -p grader --test SLUG`, then reviewed,
//!    and named in `SNAPSHOTS` in `grader/src/harness/snapshot.rs`, which
//!    compiles it into the grader.
//! 8. `cargo xtask course-check`, then `cargo xtask verify SLUG`: the
//!    solution still scores full marks and the stub zero.

pub mod build_sandbox;
pub mod builder;
pub mod handout;
pub mod harness;
pub mod lab;
pub mod labs;
pub mod outcome;
pub mod render;
pub mod rubric;
pub mod runner;
pub mod sync;
pub mod untrusted;

pub use lab::{LABS, Lab};
pub use outcome::{CheckOutcome, CheckResult, Diagnosis, Failure, LabReport, Status};
pub use runner::{Options, grade};

/// The grader's version: the git commit it was built from (`+changes` when
/// the grader's files differ from it), or the crate version outside git.
pub fn version() -> String {
    use std::sync::OnceLock;
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let root = builder::workspace_root();
            let git = |args: &[&str]| {
                std::process::Command::new("git")
                    .arg("-C")
                    .arg(&root)
                    .args(args)
                    .output()
                    .ok()
                    .filter(|out| out.status.success())
                    .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            };
            match git(&["rev-parse", "--short=10", "HEAD"]) {
                Some(commit) if !commit.is_empty() => {
                    let changed = git(&["status", "--porcelain", "--", "grader"])
                        .is_some_and(|s| !s.is_empty());
                    if changed {
                        format!("{commit}+changes")
                    } else {
                        commit
                    }
                }
                _ => format!("v{}", env!("CARGO_PKG_VERSION")),
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The modules under `grader/src/`, as the layout names them: a file
    /// by its path, a folder (its `mod.rs`) by `folder/`.
    fn modules(dir: &Path, prefix: &str, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("grader/src") {
            let entry = entry.expect("an entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                found.insert(format!("{prefix}{name}/"));
                modules(&entry.path(), &format!("{prefix}{name}/"), found);
            } else if name.ends_with(".rs") && name != "mod.rs" && !prefix.is_empty() {
                found.insert(format!("{prefix}{name}"));
            } else if name.ends_with(".rs") && name != "lib.rs" && name != "mod.rs" {
                found.insert(name);
            }
        }
    }

    #[test]
    fn the_layout_names_every_module_once_and_nothing_else() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeSet::new();
        modules(&src, "", &mut files);
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
        let layout = lib
            .split("//! # Layout")
            .nth(1)
            .and_then(|rest| rest.split("//! # ").next())
            .expect("lib.rs has a # Layout section");
        let mut named = Vec::new();
        for line in layout.lines() {
            let item = line.trim_start_matches("//!").trim_start();
            if let Some(rest) = item.strip_prefix("- `") {
                named.push(rest.split('`').next().unwrap_or("").to_owned());
            }
        }
        let unique: BTreeSet<String> = named.iter().cloned().collect();
        assert_eq!(unique.len(), named.len(), "a module named twice: {named:?}");
        let missing: Vec<_> = files.difference(&unique).collect();
        let stale: Vec<_> = unique.difference(&files).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "lib.rs's # Layout: add a line for {missing:?}; remove or rename {stale:?}"
        );
    }
}
