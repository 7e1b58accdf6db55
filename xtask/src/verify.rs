//! `cargo xtask verify [LAB|all]`: is the grader calibrated? Every solution
//! must score full marks and every untouched stub zero.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use grader::builder::{self, CompilerOutput, Edition};
use grader::{Lab, LabReport};

use crate::grade::{Selection, parse_selection};
use crate::options::RunOptions;

/// Arguments of `cargo xtask verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The lab, or all (default).
    #[arg(value_parser = parse_selection, default_value = "all")]
    lab: Selection,
    #[command(flatten)]
    run: RunOptions,
}

/// One row of the calibration table.
#[derive(Debug)]
pub struct Calibration {
    /// The lab.
    pub lab: &'static Lab,
    /// The solution's grade.
    pub solution: LabReport,
    /// The stub's grade.
    pub stub: LabReport,
}

impl Calibration {
    /// Solution at full marks, stub at zero.
    pub fn ok(&self) -> bool {
        self.solution.full_marks() && self.stub.score == 0
    }
}

/// Grades the solution and the stub of `lab`.
pub fn calibrate(lab: &'static Lab, run: &RunOptions) -> Calibration {
    let grade = |edition: Edition| {
        let binaries = builder::build(lab, edition, CompilerOutput::Capture);
        grader::grade(lab, binaries, &run.grader_options(edition.name()))
    };
    Calibration {
        lab,
        solution: grade(Edition::Solution),
        stub: grade(Edition::Student),
    }
}

/// Prints the calibration table; exit 1 on any deviation.
pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let labs = args.lab.labs();
    println!(
        "{:<6} {:<12} {:>10} {:>10}  verdict",
        "lab", "name", "solution", "stub"
    );
    let mut all_ok = true;
    for lab in labs {
        let row = calibrate(lab, &args.run);
        let verdict = if row.ok() {
            "ok".to_owned()
        } else {
            deviation(&row)
        };
        all_ok &= row.ok();
        println!(
            "{:<6} {:<12} {:>10} {:>10}  {verdict}",
            lab.name(),
            lab.slug,
            format!("{}/{}", row.solution.score, row.solution.max_score),
            format!("{}/{}", row.stub.score, row.stub.max_score),
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn deviation(row: &Calibration) -> String {
    let solution_failed = row.solution.failed_ids();
    let stub_passed: Vec<&str> = row
        .stub
        .checks
        .iter()
        .filter(|check| check.passed())
        .map(|check| check.id.as_str())
        .collect();
    let mut parts = Vec::new();
    if !solution_failed.is_empty() {
        parts.push(format!(
            "DEVIATION: solution fails {}",
            solution_failed.join(", ")
        ));
    }
    if !stub_passed.is_empty() {
        parts.push(format!(
            "DEVIATION: stub passes {} (is labs/{} untouched?)",
            stub_passed.join(", "),
            row.lab.slug
        ));
    }
    parts.join("; ")
}
