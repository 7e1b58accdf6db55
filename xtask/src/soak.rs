//! `cargo xtask soak LAB`: grade many times, optionally with every core
//! busy, and report per check how often it passed, how close it came to its
//! time limit, and whether its result ever changed (nondeterminism).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::Binaries;
use grader::harness::process::{Launch, Process};
use grader::render::text::Style;

use crate::grade::{Selection, parse_selection};
use crate::options::RunOptions;

/// Arguments of `cargo xtask soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The lab, or all.
    #[arg(value_parser = parse_selection)]
    lab: Selection,
    /// How many grades.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Grade the reference solution.
    #[arg(long, conflicts_with = "bin_dir")]
    solution: bool,
    /// Grade executables in DIR.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep every core busy while grading.
    #[arg(long)]
    load: bool,
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    runs: usize,
    slowest: Duration,
    limit: Duration,
    first_failure: Option<String>,
    /// The first failure's whole report, as a grade prints it.
    first_report: Option<String>,
}

/// Busy loops on every core, stopped (with their process group) on drop.
fn start_load() -> Result<Vec<Process>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (0..cores)
        .map(|_| {
            Ok(Process::spawn(
                &Launch::new("/bin/sh", ["-c", "while :; do :; done"]),
                Arc::default(),
            )?)
        })
        .collect()
}

/// `cargo xtask soak`.
pub fn run(args: &SoakArgs) -> Result<ExitCode> {
    let labs = args.lab.labs();
    let _load = if args.load { Some(start_load()?) } else { None };
    let mut all_stable = true;
    for lab in labs {
        let binaries = match &args.bin_dir {
            Some(dir) => Binaries::from_dir(lab, dir),
            None => {
                let edition = if args.solution {
                    Edition::Solution
                } else {
                    Edition::Student
                };
                match builder::build(lab, edition, CompilerOutput::Show) {
                    Ok(binaries) => binaries,
                    Err(message) => bail!("{message}"),
                }
            }
        };
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let order: Vec<String> = grader::rubric::for_lab(lab)
            .iter()
            .map(|spec| spec.id.clone())
            .collect();
        let started = Instant::now();
        for run in 0..args.runs {
            let options = args.run.grader_options("soak");
            let report = grader::grade(lab, Ok(binaries.clone()), &options);
            eprint!(
                "\r{} run {}/{}: {}/{}   ",
                lab.name(),
                run + 1,
                args.runs,
                report.score,
                report.max_score
            );
            for check in &report.checks {
                let tally = tallies.entry(check.id.clone()).or_default();
                tally.runs += 1;
                tally.passed += usize::from(check.passed());
                tally.slowest = tally.slowest.max(check.duration);
                tally.limit = check.time_limit;
                if !check.passed() && tally.first_failure.is_none() {
                    let reason = check.failure.as_ref().map(|f| f.summary.clone());
                    let reason = reason.unwrap_or_default();
                    tally.first_failure = Some(format!("seed {}: {reason}", report.seed));
                    let alone = grader::LabReport {
                        checks: vec![check.clone()],
                        ..report.clone()
                    };
                    tally.first_report =
                        Some(grader::render::text::lab(&alone, Style::for_stdout(true)));
                }
            }
        }
        eprintln!();
        println!(
            "{} ({}): {} runs{} in {:.0} s",
            lab.name(),
            lab.slug,
            args.runs,
            if args.load { " under load" } else { "" },
            started.elapsed().as_secs_f64()
        );
        let width = order.iter().map(|id| id.len()).max().unwrap_or(0).max(32);
        println!(
            "  {:<width$} {:>7} {:>12} {:>8}  notes",
            "check", "passed", "slowest (s)", "limit"
        );
        for id in &order {
            let tally = &tallies[id];
            let changed = tally.passed != 0 && tally.passed != tally.runs;
            all_stable &= tally.passed == tally.runs;
            println!(
                "  {:<width$} {:>7} {:>12.2} {:>8.0}  {}{}",
                id,
                format!("{}/{}", tally.passed, tally.runs),
                tally.slowest.as_secs_f64(),
                tally.limit.as_secs_f64(),
                if changed { "NONDETERMINISTIC " } else { "" },
                // A summary may quote what a graded program printed.
                grader::untrusted::terminal(tally.first_failure.as_deref().unwrap_or(""))
            );
        }
        // What a flaky check said, whole: its run cannot be replayed at
        // will, even with its seed (the load is part of it).
        for id in &order {
            if let Some(report) = &tallies[id].first_report {
                println!("\n{id}, its first failure:\n{report}");
            }
        }
    }
    Ok(if all_stable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
