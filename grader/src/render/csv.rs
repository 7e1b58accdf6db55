//! The grade-class CSV: one row per student and lab, with the ids of the
//! checks that did not earn their points.

use std::fmt::Write as _;

use super::LabView;
use crate::outcome::LabReport;
use crate::untrusted::csv_cell as field;

/// The header row.
pub const HEADER: &str =
    "student,lab,score,max,failed_checks,grader_version,seed,not_graded_because,notes";

/// The CSV of `(student, report)` rows, header first.
pub fn grades<'a>(rows: impl IntoIterator<Item = (&'a str, &'a LabReport)>) -> String {
    let mut out = format!("{HEADER}\n");
    for (student, report) in rows {
        let view = LabView::of(report);
        // Why nothing ran (sources not found, no compile, a hung build),
        // first line only: the student's report has the rest.
        let not_graded = view
            .build_failure
            .and_then(|message| message.lines().next())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            field(student),
            view.lab,
            view.score,
            view.max_score,
            field(&view.failed_ids().join(" ")),
            view.grader_version,
            view.seed,
            field(not_graded),
            field(&view.notes.join("; "))
        );
    }
    out
}
