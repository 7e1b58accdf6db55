//! The Socket Labs grader.
//!
//! `cargo xtask grade LAB` builds a lab's crate ([`builder`]), runs the lab's
//! checks ([`labs`]) against its binaries with the shared [`harness`], and
//! renders the [`outcome`] as a [`report`]. Points and hints come from the
//! [`rubric`]; which labs exist comes from the [`lab`] table.
//!
//! A check is a plain function `fn(&Ctx) -> CheckResult`: failure is data
//! (what was expected, what happened), never a panic, and every process a
//! check starts is killed with its process group when the check ends.

pub mod builder;
pub mod export;
pub mod harness;
pub mod lab;
pub mod labs;
pub mod outcome;
pub mod report;
pub mod rubric;
pub mod runner;

pub use lab::{LABS, Lab};
pub use outcome::{CheckOutcome, CheckResult, Failure, LabReport, Status};
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
