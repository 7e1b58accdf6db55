//! Two rows of `cargo xtask bench` about a student's first minutes: the cold
//! first grade against a cold build of the lab crate alone, and how long a
//! grade takes when the program has a classic bug.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use grader::Lab;

/// The goal for a cold first grade, as a multiple of a cold build of the
/// lab crate alone.
const COLD_RATIO_GOAL: f64 = 2.0;

/// The first `cargo xtask grade lab1` of a fresh clone (the student's stub:
/// building xtask, the grader and the lab, then grading) against a cold
/// `cargo build -p echo` in another fresh copy.
pub fn cold_ratio(root: &Path) -> Result<()> {
    let copy = |purpose: &str| -> Result<tempfile::TempDir> {
        let copy = tempfile::Builder::new()
            .prefix(&format!("socket-labs-{purpose}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        crate::files::copy_tree(root, copy.path(), &["target", ".git", ".swap", ".grades"])?;
        Ok(copy)
    };
    let timed = |dir: &Path, args: &[&str]| -> Result<Duration> {
        let started = Instant::now();
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running cargo {}", args.join(" ")))?;
        Ok(started.elapsed())
    };
    let first = copy("first-grade")?;
    let grade = timed(first.path(), &["xtask", "grade", "lab1"])?;
    let alone = copy("lab-alone")?;
    let build = timed(alone.path(), &["build", "--quiet", "--package", "echo"])?;
    let ratio = grade.as_secs_f64() / build.as_secs_f64().max(0.001);
    println!(
        "| first `cargo xtask grade lab1`, cold | cold `cargo build -p echo` | ratio | goal |"
    );
    println!("|---:|---:|---:|---|");
    println!(
        "| {:.1} s | {:.1} s | {ratio:.1}× | ≤ {COLD_RATIO_GOAL}× {} |",
        grade.as_secs_f64(),
        build.as_secs_f64(),
        if ratio <= COLD_RATIO_GOAL {
            "✓"
        } else {
            "✗"
        }
    );
    Ok(())
}

/// The classic bugs of a lab: `(program, LAB_BUG)` of every case of its
/// `a_classic_bug_fails_its_check` test (`grader/tests/SLUG.rs`), whose
/// cases are `(program, bug, check, section)`.
pub fn classic_bugs(root: &Path, lab: &Lab) -> Result<Vec<(String, String)>> {
    let path = root
        .join("grader/tests")
        .join(format!("{}.rs", lab.slug.replace('-', "_")));
    let source =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let end = source
        .find("fn a_classic_bug_fails_its_check")
        .context("no a_classic_bug_fails_its_check test")?;
    let start = source[..end].rfind("#[rstest]").unwrap_or(0);
    let constants = |name: &str| {
        // `const SERVER: &str = "client-list-server";`
        source
            .split(&format!("const {name}: &str = \""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    let mut bugs = Vec::new();
    for case in source[start..end].split("#[case::").skip(1) {
        let arguments = case.split_once('(').map_or("", |(_, rest)| rest);
        let mut fields = arguments.split(',').map(str::trim);
        let program = fields.next().unwrap_or_default();
        let program = match program.strip_prefix('"') {
            Some(quoted) => quoted.trim_end_matches('"').to_owned(),
            None => constants(program).unwrap_or_default(),
        };
        let bug = fields
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        if !program.is_empty() && !bug.is_empty() {
            bugs.push((program, bug));
        }
    }
    Ok(bugs)
}

/// Grades every classic bug of `lab` (the lab's Python fixtures, one bug
/// switched on) with `cargo xtask grade`, as a student would, and prints the
/// median and the slowest grade.
pub fn failing_grades(root: &Path, lab: &Lab) -> Result<()> {
    let mut times = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (program, bug) in classic_bugs(root, lab)? {
        let dir = grader::harness::fixtures::bin_dir(lab, &[(program.as_str(), bug.as_str())])
            .context("a bin dir of the lab's fixtures")?;
        let started = Instant::now();
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root)
            .args([
                "xtask",
                "grade",
                &lab.name(),
                "--format",
                "json",
                "--bin-dir",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .context("grading a classic bug")?;
        let took = started.elapsed();
        // A bug's grade passes most checks: none passed means the fixture
        // never ran (the time would measure nothing).
        if passed_checks(&output.stdout) == 0 {
            bail!(
                "{program} with LAB_BUG={bug} passed no check of {}: the fixture did not run",
                lab.name()
            );
        }
        if took > slowest.0 {
            slowest = (took, format!("{program} {bug}"));
        }
        times.push(took);
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "| {} | {} | {:.1} s | {:.1} s ({}) | ≤ 3 s {}, ≤ 10 s {} |",
        lab.name(),
        times.len(),
        median.as_secs_f64(),
        slowest.0.as_secs_f64(),
        slowest.1,
        mark(median.as_secs_f64() <= 3.0),
        mark(slowest.0.as_secs_f64() <= 10.0),
    );
    Ok(())
}

/// How many checks a JSON report (`--format json`) says passed.
fn passed_checks(report: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(report)
        .ok()
        .and_then(|report| {
            report["checks"].as_array().map(|checks| {
                checks
                    .iter()
                    .filter(|check| check["status"] == "passed")
                    .count()
            })
        })
        .unwrap_or(0)
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "reads the course's own tests (grader/tests/), which the student edition leaves out"
    )]
    fn every_lab_has_its_classic_bugs_listed() {
        let root = grader::builder::workspace_root();
        for lab in grader::LABS {
            let bugs = classic_bugs(&root, lab).unwrap();
            assert!(bugs.len() >= 10, "{}: {bugs:?}", lab.slug);
            for (program, _) in &bugs {
                assert!(
                    lab.binaries.contains(&program.as_str()),
                    "{}: {program}",
                    lab.slug
                );
            }
        }
    }
}
