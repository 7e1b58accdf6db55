//! The terminal report: what a student reads after every grade.

use std::fmt::Write as _;

use crate::harness::show::indent;
use crate::outcome::{BuildState, CheckOutcome, LabReport, Status};

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

/// Renders one lab: a header, a line per check (with the reason, hint and
/// handout section under each failure), and the total line `lab1: 34/40`.
pub fn render_lab(report: &LabReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} [{} · grader {} · seed {}]",
        style.paint("1", &format!("{} ({})", report.lab, report.slug)),
        report.title,
        report.graded,
        report.grader_version,
        report.seed
    );
    if !report.containment.is_empty() {
        let _ = writeln!(out, "containment: {}", report.containment);
    }
    if let BuildState::Failed { message } = &report.build {
        let _ = writeln!(out, "{}", style.paint("31", &indent(message.trim_end(), 2)));
    }
    let id_width = report
        .checks
        .iter()
        .map(|check| check.id.len())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        render_check(&mut out, check, id_width, style);
    }
    let skipped = report.skipped();
    if skipped > 0 {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "33",
                &format!("{skipped} check(s) skipped, not counted in the total below; on another platform than Linux the grade is not final")
            )
        );
    }
    let total = format!("{}: {}/{}", report.lab, report.score, report.max_score);
    let _ = writeln!(
        out,
        "{}",
        style.paint(if report.full_marks() { "1;32" } else { "1" }, &total)
    );
    out
}

fn render_check(out: &mut String, check: &CheckOutcome, id_width: usize, style: Style) {
    let (mark, colour) = match check.status {
        Status::Passed => ("✓", "32"),
        Status::Failed => ("✗", "31"),
        Status::NotRun => ("·", "33"),
        Status::Skipped => ("-", "33"),
    };
    let _ = writeln!(
        out,
        "{} {:<id_width$}  {}/{}  {}",
        style.paint(colour, mark),
        check.id,
        check.points,
        check.max_points,
        check.title
    );
    if check.status == Status::Passed {
        if style.verbose {
            render_commands(out, check);
        }
        return;
    }
    if check.status == Status::NotRun {
        return;
    }
    if let Some(failure) = &check.failure {
        let _ = writeln!(out, "{}", indent(&failure.to_string(), 4));
    }
    if check.status == Status::Skipped {
        return;
    }
    let _ = writeln!(out, "    {} {}", style.paint("36", "hint:"), check.hint);
    let _ = writeln!(out, "    {} {}", style.paint("36", "read:"), check.handout);
    if !check.manual.is_empty() {
        let _ = writeln!(out, "    {} {}", style.paint("36", "try it:"), check.manual);
    }
    render_commands(out, check);
}

fn render_commands(out: &mut String, check: &CheckOutcome) {
    if !check.commands.is_empty() {
        let _ = writeln!(out, "    ran:");
        for command in &check.commands {
            let _ = writeln!(out, "      {command}");
        }
    }
}

/// The closing lines of `grade all`: one per lab and the grand total.
pub fn render_totals(reports: &[LabReport], style: Style) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{}: {}/{}", report.lab, report.score, report.max_score);
    }
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let max: u32 = reports.iter().map(|r| r.max_score).sum();
    let _ = writeln!(out, "{}", style.paint("1", &format!("all: {score}/{max}")));
    out
}
