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
//! - [`lab`]: the lab table, the one list of the labs that exist.
//! - [`rubric`]: reads `grader/rubric.toml`, the points, hints, handout
//!   anchors and limits of every check.
//! - [`labs`]: one module per lab, its checks as plain functions listed in
//!   its `CHECKS` with their rubric ids; the larger labs are folders
//!   (`mod.rs` with `CHECKS`, then `server.rs`, `client.rs` and the
//!   protocol or log readers they share).
//! - [`harness`]: what every check shares: processes and their limits,
//!   readiness, sockets with deadlines, `/proc`, snapshots, and [`Ctx`](harness::Ctx).
//!   - `harness/sandbox/`: the containment of graded programs, in one
//!     direction (nothing in it uses the rest of the harness): the policy,
//!     the child's code between `clone` and `exec`, the mount plan of each
//!     program's world, cgroups, the grade's network namespace, a uid per
//!     grade, and the per-grade [`Sandbox`](harness::sandbox::Sandbox);
//!   - `harness/process.rs`: a running graded program, its kill guard and
//!     its output, started through the sandbox.
//! - [`runner`]: runs a lab's checks in parallel, each under its time
//!   limit, applies gates, and returns a [`LabReport`].
//! - [`build_sandbox`]: a sealed build of a submission, contained like a
//!   graded program (its own uid and world, no network).
//! - [`builder`]: builds the graded crate (student or solution) and finds
//!   exactly its executables.
//! - [`outcome`]: the result model, [`LabReport`] and [`CheckOutcome`].
//! - [`render`]: one view of each check, built once from the outcome, and
//!   the writers over it: the terminal report, JSON, Gradescope, JUnit and
//!   the grade-class CSV.
//! - [`handout`]: the anchor a handout heading gets (GitHub's), and where a
//!   handout section is in the book of `cargo xtask book`.
//! - [`untrusted`]: text a student controls (their programs' output, their
//!   folder's name) made safe for each sink: the terminal, CSV, HTML, XML,
//!   JSON, file names. Every writer goes through it.
//!
//! # Adding a check
//!
//! SLUG is the lab's slug (`client-list`); in Rust file names it is spelled
//! with `_` (`client_list`).
//!
//! 1. `grader/rubric.toml`: a `[[check]]` entry with its id `SLUG.name`,
//!    title, points, hint, handout anchor and manual (the file's header
//!    lists every field).
//! 2. `labs/SLUG/README.md`: the handout section the anchor points to, saying
//!    what the program must do.
//! 3. `grader/src/labs/SLUG/server.rs` or `client.rs` (or
//!    `grader/src/labs/echo.rs` for lab 1): the function
//!    `fn name(ctx: &Ctx) -> CheckResult`, failing with a [`Failure`] that
//!    says what was expected and what happened. Every read from a graded
//!    program is bounded: a connection reads 64 KiB plus a margin unless
//!    the check says how much it expects
//!    ([`Conn::expect_at_most`](harness::conn::Conn::expect_at_most)).
//! 4. `grader/src/labs/SLUG/mod.rs` (or `echo.rs`): a row
//!    `("SLUG.name", server::name)` in `CHECKS`, in rubric order.
//! 5. `grader/tests/SLUG.rs` and `grader/tests/fixtures/SLUG/`: a classic
//!    bug, switched on by `LAB_BUG` in the fixture program, that fails the new check
//!    (`a_classic_bug_fails_its_check`).
//! 6. `grader/snapshots/SLUG.name.snap`, if the check calls
//!    `ctx.snapshot`: recorded from the solution by
//!    `INSTA_UPDATE=always cargo test -p grader --test SLUG`, then reviewed,
//!    and named in `SNAPSHOTS` in `grader/src/harness/snapshot.rs`, which
//!    compiles it into the grader.
//! 7. `cargo xtask verify SLUG`: the solution still scores full marks and
//!    the stub zero.

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
