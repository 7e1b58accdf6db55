//! `cargo xtask status`: where a student stands in every lab.

use std::process::ExitCode;

use anyhow::Result;
use grader::LABS;

use crate::results;

/// Prints a table of the six labs from the saved grades.
pub fn run() -> Result<ExitCode> {
    println!(
        "{:<6} {:<12} {:>7}  {:<14} still failing",
        "lab", "name", "score", "last graded"
    );
    for lab in LABS {
        let max: u32 = grader::rubric::for_lab(lab)
            .iter()
            .map(|spec| spec.points)
            .sum();
        match results::load(lab.slug) {
            None => println!(
                "{:<6} {:<12} {:>7}  {:<14} (not graded yet: cargo xtask grade {})",
                lab.name(),
                lab.slug,
                format!("-/{max}"),
                "never",
                lab.name()
            ),
            Some(report) => {
                let failing: Vec<&str> = report["checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|check| check["status"] != "passed")
                    .filter_map(|check| check["id"].as_str())
                    .collect();
                let score = format!("{}/{}", report["score"], report["max_score"]);
                let failing = if let Some(message) = results::build_failure(&report) {
                    // No check ran: the compiler's first error, not a list.
                    match grader::builder::first_error_line(message) {
                        Some(error) => {
                            format!("did not compile: {}", grader::untrusted::terminal(&error))
                        }
                        None => "did not compile".to_owned(),
                    }
                } else if failing.is_empty() {
                    "none: full marks".to_owned()
                } else {
                    failing.join(", ")
                };
                println!(
                    "{:<6} {:<12} {:>7}  {:<14} {failing}",
                    lab.name(),
                    lab.slug,
                    score,
                    results::age(&report)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
