//! Exports of a grade for teaching platforms: Gradescope's `results.json`
//! and JUnit XML. Both render the same [`LabReport`]s as the terminal report,
//! so every platform sees the same checks, points and messages.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::outcome::{CheckOutcome, LabReport, Status};

/// The text a platform shows for one check: the failure, hint and handout
/// section, as in the terminal report.
pub fn check_message(check: &CheckOutcome) -> String {
    let mut text = String::new();
    if let Some(failure) = &check.failure {
        let _ = writeln!(text, "{failure}");
    }
    if check.status != Status::Passed {
        let _ = writeln!(text, "hint: {}", check.hint);
        let _ = writeln!(text, "read: {}", check.handout);
    }
    text.trim_end().to_owned()
}

/// Gradescope autograder `results.json`: top-level `score`,
/// `execution_time`, `output` and `tests`, one test per check.
pub fn gradescope(reports: &[LabReport]) -> Value {
    let tests: Vec<Value> = reports
        .iter()
        .flat_map(|report| {
            report.checks.iter().map(move |check| {
                json!({
                    "name": format!("{} {}: {}", report.lab, check.id, check.title),
                    "number": check.id,
                    "score": check.points,
                    "max_score": check.max_points,
                    "status": if check.passed() { "passed" } else { "failed" },
                    "output": check_message(check),
                    "visibility": "visible",
                })
            })
        })
        .collect();
    let score: u32 = reports.iter().map(|report| report.score).sum();
    let seconds: f64 = reports
        .iter()
        .map(|report| report.duration.as_secs_f64())
        .sum();
    let output = reports
        .iter()
        .map(|report| {
            format!(
                "{}: {}/{} (grader {}, seed {})",
                report.lab, report.score, report.max_score, report.grader_version, report.seed
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    json!({
        "score": score,
        "execution_time": seconds.ceil() as u64,
        "output": output,
        "stdout_visibility": "visible",
        "tests": tests,
    })
}

/// JUnit XML: a `<testsuite>` per lab, a `<testcase>` per check, failures
/// carrying the same message as the terminal report.
pub fn junit(reports: &[LabReport]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = reports.iter().map(|report| report.checks.len()).sum();
    let failures: usize = reports
        .iter()
        .map(|report| report.checks.iter().filter(|c| !c.passed()).count())
        .sum();
    let _ = writeln!(
        xml,
        "<testsuites name=\"socket-labs\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for report in reports {
        let failed = report.checks.iter().filter(|check| !check.passed()).count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">",
            escape(&format!("{} ({})", report.lab, report.slug)),
            report.checks.len(),
            report.duration.as_secs_f64()
        );
        let _ = writeln!(
            xml,
            "    <properties><property name=\"score\" value=\"{}/{}\"/><property name=\"grader\" value=\"{}\"/><property name=\"seed\" value=\"{}\"/></properties>",
            report.score,
            report.max_score,
            escape(&report.grader_version),
            report.seed
        );
        for check in &report.checks {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&report.lab),
                escape(&format!(
                    "{} ({}/{} points)",
                    check.id, check.points, check.max_points
                )),
                check.duration.as_secs_f64()
            );
            match check.status {
                Status::Passed => xml.push_str("/>\n"),
                Status::Skipped => xml.push_str("><skipped/></testcase>\n"),
                Status::Failed | Status::NotRun => {
                    let summary = check
                        .failure
                        .as_ref()
                        .map_or("failed", |failure| failure.summary.as_str());
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(summary),
                        escape(&check_message(check))
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Escapes text for XML; characters XML 1.0 cannot carry at all (most
/// control characters, which a student's program may well print) become `?`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_handles_markup_and_control_characters() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("bell\u{7}"), "bell?");
        assert_eq!(escape("🐶\n"), "🐶\n");
    }
}
