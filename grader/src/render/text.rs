//! The terminal report: what a student reads after every grade.

use std::fmt::Write as _;

use super::{CheckView, LabView};
use crate::harness::show::indent;
use crate::outcome::{LabReport, Status};

/// How the report is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours (off for pipes and with `NO_COLOR`).
    pub color: bool,
    /// Show the commands each check ran.
    pub verbose: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout(verbose: bool) -> Self {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { color, verbose }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Renders one lab: a header, a line per check (with the reason, hint,
/// handout section and try-it under each failure), and the total line
/// `lab1: 34/40`.
pub fn lab(report: &LabReport, style: Style) -> String {
    let view = LabView::of(report);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} [{} · grader {} · seed {}]",
        style.paint("1", &format!("{} ({})", view.lab, view.slug)),
        view.title,
        view.graded,
        view.grader_version,
        view.seed
    );
    if !view.containment.is_empty() {
        let _ = writeln!(out, "containment: {}", view.containment);
    }
    if let Some(message) = view.build_failure {
        let _ = writeln!(out, "{}", style.paint("31", &indent(message.trim_end(), 2)));
    }
    let id_width = view
        .checks
        .iter()
        .map(|check| check.id.len())
        .max()
        .unwrap_or(0);
    for check in &view.checks {
        write_check(&mut out, check, id_width, style);
    }
    if view.skipped > 0 {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "33",
                &format!(
                    "{} check(s) skipped, not counted in the total below; on another platform than Linux the grade is not final",
                    view.skipped
                )
            )
        );
    }
    let _ = writeln!(
        out,
        "{}",
        style.paint(if view.full_marks() { "1;32" } else { "1" }, &view.total())
    );
    out
}

fn write_check(out: &mut String, check: &CheckView, id_width: usize, style: Style) {
    let (mark, colour) = match check.status {
        Status::Passed => ("✓", "32"),
        Status::Failed => ("✗", "31"),
        Status::NotRun => ("·", "33"),
        Status::Skipped => ("-", "33"),
    };
    let _ = writeln!(
        out,
        "{} {:<id_width$}  {}  {}",
        style.paint(colour, mark),
        check.id,
        check.points(),
        check.title
    );
    // A check that did not run says why once, in the build failure above.
    if check.status != Status::NotRun {
        if let Some(failure) = check.failure {
            let _ = writeln!(out, "{}", indent(&failure.to_string(), 4));
        }
    }
    for (label, line) in check.guidance.iter().flat_map(|guidance| guidance.lines()) {
        let _ = writeln!(out, "    {} {line}", style.paint("36", label));
    }
    let show_commands = match check.status {
        Status::Failed => true,
        Status::Passed => style.verbose,
        Status::NotRun | Status::Skipped => false,
    };
    if show_commands && !check.commands.is_empty() {
        let _ = writeln!(out, "    ran:");
        for command in check.commands {
            let _ = writeln!(out, "      {command}");
        }
    }
}

/// The closing lines of `grade all`: one per lab and the grand total.
pub fn totals(reports: &[LabReport], style: Style) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{}", LabView::of(report).total());
    }
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let max: u32 = reports.iter().map(|r| r.max_score).sum();
    let _ = writeln!(out, "{}", style.paint("1", &format!("all: {score}/{max}")));
    out
}
