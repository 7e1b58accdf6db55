//! `--format json`: the report as data, every field of [`LabReport`] (the
//! README's "Machine-readable results" lists them).

use crate::outcome::LabReport;

/// One lab as a pretty-printed JSON object, printable on a terminal as it
/// is (see [`crate::untrusted::json`]).
pub fn lab(report: &LabReport) -> String {
    crate::untrusted::json(
        serde_json::to_string_pretty(report).expect("a LabReport always serializes"),
    )
}
