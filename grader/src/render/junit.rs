//! JUnit XML: a `<testsuite>` per lab, a `<testcase>` per check named by
//! its id alone (so a CI's history follows a check from run to run), with
//! its points as a property and its message as the failure's text.

use std::fmt::Write as _;

use super::{CheckView, LabView};
use crate::outcome::{LabReport, Status};
use crate::untrusted::markup as escape;

/// The JUnit XML of `reports`.
pub fn xml(reports: &[LabReport]) -> String {
    let views: Vec<LabView> = reports.iter().map(LabView::of).collect();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = views.iter().map(|view| view.checks.len()).sum();
    let failed: usize = views.iter().map(failures).sum();
    let _ = writeln!(
        xml,
        "<testsuites name=\"socket-labs\" tests=\"{tests}\" failures=\"{failed}\">"
    );
    for view in &views {
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(&format!("{} ({})", view.lab, view.slug)),
            view.checks.len(),
            failures(view),
            view.skipped,
            view.duration.as_secs_f64()
        );
        let _ = writeln!(
            xml,
            "    <properties><property name=\"score\" value=\"{}/{}\"/><property name=\"grader\" value=\"{}\"/><property name=\"seed\" value=\"{}\"/><property name=\"state\" value=\"{}\"/></properties>",
            view.score,
            view.max_score,
            escape(view.grader_version),
            view.seed,
            view.state.key()
        );
        for check in &view.checks {
            write_case(&mut xml, view.lab, check);
        }
        // Not graded, or did not compile: said once for the suite, with
        // the compiler's first errors, which each failure points at.
        if let Some(explanation) = view.explanation() {
            let _ = writeln!(
                xml,
                "    <system-out>{}: {}</system-out>",
                view.state.key(),
                escape(&explanation)
            );
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Checks that cost points: failed or not run (skipped ones are counted
/// apart, as JUnit does).
fn failures(view: &LabView) -> usize {
    view.checks
        .iter()
        .filter(|check| matches!(check.status, Status::Failed | Status::NotRun))
        .count()
}

fn write_case(xml: &mut String, lab: &str, check: &CheckView) {
    let _ = writeln!(
        xml,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
        escape(lab),
        escape(check.id),
        check.duration.as_secs_f64()
    );
    let _ = writeln!(
        xml,
        "      <properties><property name=\"points\" value=\"{}\"/></properties>",
        check.points()
    );
    let summary = check
        .failure
        .map_or("failed", |failure| failure.summary.as_str());
    match check.status {
        Status::Passed => {}
        Status::Skipped => {
            let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(summary));
        }
        Status::Failed | Status::NotRun => {
            let _ = writeln!(
                xml,
                "      <failure message=\"{}\">{}</failure>",
                escape(summary),
                escape(&check.message())
            );
        }
    }
    xml.push_str("    </testcase>\n");
}
