//! The grade-class CSV: one row per student and lab, with its state, the
//! ids of the checks that did not earn their points, and why a lab was not
//! simply graded.

use std::fmt::Write as _;

use super::LabView;
use crate::outcome::LabReport;
use crate::untrusted::csv_cell as field;

/// The header row.
pub const HEADER: &str =
    "student,lab,state,score,max,failed_checks,grader_version,seed,reason,notes";

/// The CSV of `(student, report)` rows, header first.
pub fn grades<'a>(rows: impl IntoIterator<Item = (&'a str, &'a LabReport)>) -> String {
    let mut out = format!("{HEADER}\n");
    for (student, report) in rows {
        let view = LabView::of(report);
        // Why nothing ran (sources not found, no compile, a hung build),
        // whole but bounded: the compiler's first errors, a screenful.
        let reason = view.reason().unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            field(student),
            view.lab,
            view.state.key(),
            view.score,
            view.max_score,
            field(&view.failed_ids().join(" ")),
            view.grader_version,
            view.seed,
            field(&reason),
            field(&view.notes.join("; "))
        );
    }
    out
}
