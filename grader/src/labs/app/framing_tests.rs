//! The framing check: runs the grader's own framing tests
//! (`grader/framing/tests/framing.rs`), built against the graded crate's
//! library, as a graded program, and counts them.

use crate::harness::process::Launch;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

/// How many test cases the grader's framing tests have: a run with fewer
/// has lost some (a grader bug), and has not shown that the framing works.
const FRAMING_TESTS: usize = 30;

/// Runs the grader's own framing tests (`grader/framing/tests/framing.rs`),
/// built against the graded crate's library, as a graded program.
pub(super) fn framing_tests(ctx: &Ctx) -> CheckResult {
    let Some(tests) = ctx.binaries().tests.clone() else {
        return Err(ctx.skip(format!(
            "not applicable: {} holds executables, not a cargo crate with the framing library",
            ctx.binaries().origin
        )));
    };
    let executable = tests.map_err(|message| {
        Failure::new(format!(
            "the grader's framing tests do not compile against your library: keep the public API of src/lib.rs as the stub declares it\n{}",
            show::tail(&message, 30)
        ))
    })?;
    let mut launch = Launch::new(executable, ["--color", "never"]);
    launch.shown_as = ctx.binaries().shown.get("grader-tests").cloned();
    launch.grant = ctx.binaries().grant.clone();
    launch.output_cap = ctx.spec().output_cap();
    ctx.note_command(launch.command_line());
    let finished = ctx.run(&launch, ctx.spec().time_limit)?;
    let stdout = finished.stdout_text();
    let results: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("test result: "))
        .collect();
    let passed: usize = results
        .iter()
        .filter_map(|line| {
            line.split(';')
                .find_map(|part| part.trim().strip_suffix(" passed"))
                .and_then(|count| {
                    count
                        .trim_start_matches("test result: ok.")
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
        })
        .sum();
    if finished.code() == Some(0) && passed >= FRAMING_TESTS {
        return Ok(());
    }
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.ends_with("FAILED") && line.starts_with("test "))
        .collect();
    let summary = if finished.timed_out {
        "the framing tests did not finish in time".to_owned()
    } else if results.is_empty() {
        "the framing tests did not build or did not run".to_owned()
    } else if failed.is_empty() {
        format!("only {passed} of the grader's {FRAMING_TESTS} framing tests ran")
    } else {
        format!(
            "{} of {} framing tests failed",
            failed.len(),
            failed.len() + passed_anyway(&results)
        )
    };
    Err(Failure::new(summary)
        .expected("the grader's framing tests pass: the same cases as the tests at the bottom of src/lib.rs (`cargo test -p app -- --include-ignored`)")
        .actual(finished.describe())
        .detail(if failed.is_empty() {
            String::new()
        } else {
            show::head(&failed.join("\n"), 12)
        })
        .detail(finished.stderr_detail())
        .detail(show::head(&panics(&stdout), 20)))
}

/// How many tests passed, from libtest's `test result:` lines, whether or
/// not the run as a whole failed.
fn passed_anyway(results: &[&str]) -> usize {
    results
        .iter()
        .filter_map(|line| {
            let (_, rest) = line.split_once(". ")?;
            rest.split(';')
                .find_map(|part| part.trim().strip_suffix(" passed"))?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// The panic messages in libtest's output, the part that says what failed.
fn panics(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("failures:"))
        .take(60)
        .collect::<Vec<_>>()
        .join("\n")
}
