//! What `grade-class` prints: a line per student with their total, then
//! who was not simply graded, and why.

use std::collections::BTreeMap;
use std::time::Instant;

use grader::Lab;
use grader::outcome::SubmissionState;

use super::Graded;

/// Prints a line per student of `results` with their total, and a line on
/// the grade; returns how many students were not graded in full.
pub(super) fn print_summary(
    results: &[Graded],
    labs: &[(&'static Lab, Option<usize>)],
    labs_found: bool,
    started: Instant,
    seed: u64,
) -> usize {
    let mut per_student: BTreeMap<&str, (u32, u32, Vec<String>)> = BTreeMap::new();
    for graded in results {
        let entry = per_student.entry(&graded.student).or_default();
        entry.0 += graded.report.score;
        entry.1 += graded.report.max_score;
        if let SubmissionState::NotGraded(why) = graded.state {
            entry.2.push(format!("{} {why}", graded.report.lab));
        }
    }
    // Names are in the notation of `grader::untrusted::name`: no control
    // character of a folder's name reaches the terminal.
    println!("{:<24} {:>9}", "student", "total");
    for (student, (score, max, not_graded)) in &per_student {
        let total = format!("{score}/{max}");
        if not_graded.is_empty() {
            println!("{student:<24} {total:>9}");
        } else {
            println!("{student:<24} {total:>9}  {}", not_graded.join("; "));
        }
    }
    let graded_labs: Vec<String> = labs
        .iter()
        .map(|(lab, holding)| match holding {
            Some(holding) => format!("{lab}, held by {holding} of {}", per_student.len()),
            None => lab.to_string(),
        })
        .collect();
    println!(
        "\n{} submissions, {} lab grades in {:.1} s (seed {seed}); labs: {}{}",
        per_student.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        graded_labs.join("; "),
        if labs_found {
            " (the labs the submissions hold; --lab LAB grades another)"
        } else {
            ""
        }
    );
    per_student
        .values()
        .filter(|(_, _, not_graded)| !not_graded.is_empty())
        .count()
}

/// Who was not simply graded, and why, a line each, grouped by state
/// (not graded first, then did not compile, then untouched stubs); empty
/// when every lab was graded.
pub fn closing_summary(results: &[Graded]) -> String {
    let mut by_state: BTreeMap<SubmissionState, Vec<&Graded>> = BTreeMap::new();
    for graded in results {
        if graded.report.state != SubmissionState::Graded {
            by_state
                .entry(graded.report.state)
                .or_default()
                .push(graded);
        }
    }
    let mut out = String::new();
    let order = |state: &SubmissionState| match state {
        SubmissionState::NotGraded(_) => 0,
        SubmissionState::DidNotCompile => 1,
        _ => 2,
    };
    let mut states: Vec<_> = by_state.into_iter().collect();
    states.sort_by_key(|(state, _)| order(state));
    for (state, rows) in states {
        out.push_str(&format!("\n{} ({}):\n", state.label(), rows.len()));
        for graded in rows {
            let why = grader::render::LabView::of(&graded.report)
                .reason()
                .and_then(|reason| reason.lines().next().map(str::to_owned))
                .unwrap_or_default();
            let why = grader::untrusted::terminal(&why);
            let why = grader::render::bounded(&why, 160);
            out.push_str(&format!(
                "  {} {}: {why}\n",
                graded.student, graded.report.lab
            ));
        }
    }
    out
}
