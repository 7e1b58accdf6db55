//! The crate's own tests: runs the framing tests of the graded crate
//! (`cargo test -p app --lib -- --include-ignored`) and counts them.

use std::path::PathBuf;

use crate::harness::process::Launch;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

/// How many test cases the framing tests of the stub and the solution have:
/// a crate that runs fewer has lost some, and has not shown that its
/// framing works.
const FRAMING_TESTS: usize = 30;

/// Runs the framing tests of the graded crate, the ones marked ignored in
/// the stub included, as `cargo test -p app --lib -- --include-ignored`.
pub(super) fn framing_tests(ctx: &Ctx) -> CheckResult {
    let Some(crate_dir) = ctx.binaries().crate_dir.clone() else {
        return Err(ctx.skip(format!(
            "not applicable: {} holds executables, not a cargo crate with the framing tests",
            ctx.binaries().origin
        )));
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = crate_dir.join("Cargo.toml");
    let mut launch = Launch::new(
        PathBuf::from(cargo),
        [
            "test".into(),
            "--manifest-path".into(),
            manifest.into_os_string(),
            "--lib".into(),
            "--color".into(),
            "never".into(),
            "--".into(),
            "--include-ignored".into(),
            "--color".into(),
            "never".into(),
        ],
    );
    if let Some(target_dir) = &ctx.binaries().target_dir {
        // Cargo's own options go before the `--` that starts the test binary's.
        let separator = launch
            .args
            .iter()
            .position(|arg| arg == "--")
            .unwrap_or(launch.args.len());
        launch
            .args
            .insert(separator, target_dir.clone().into_os_string());
        launch.args.insert(separator, "--target-dir".into());
    }
    launch.output_cap = ctx.spec().output_cap();
    launch.current_dir = Some(crate_dir.clone());
    // Panic messages without backtraces: they say which assertion failed.
    launch = launch.env("RUST_BACKTRACE", "0");
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
        format!(
            "only {passed} framing tests ran; the lab comes with {FRAMING_TESTS} (keep them, add your own)"
        )
    } else {
        format!(
            "{} of {} framing tests failed",
            failed.len(),
            failed.len() + passed_anyway(&results)
        )
    };
    Err(Failure::new(summary)
        .expected("`cargo test -p app --lib -- --include-ignored` passes (the tests in src/lib.rs)")
        .actual(finished.describe())
        .detail(if failed.is_empty() {
            String::new()
        } else {
            show::head(&failed.join("\n"), 12)
        })
        .detail(format!(
            "cargo's output:\n{}",
            show::indent(&show::tail(&finished.stderr_text(), 15), 4)
        ))
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
