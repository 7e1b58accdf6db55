//! `--format json`: the report as data, every field of [`LabReport`] (the
//! README's "Machine-readable results" lists them).

use crate::outcome::LabReport;

/// One lab as a pretty-printed JSON object.
pub fn lab(report: &LabReport) -> String {
    serde_json::to_string_pretty(report).expect("a LabReport always serializes")
}
