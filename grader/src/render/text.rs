//! The terminal report: what a student reads after every grade.
//!
//! Whatever a graded program printed, or a student named, is shown through
//! [`terminal`]: its control characters appear escaped (`\x1b[2J`), so
//! that the only escape sequences that reach the terminal are this
//! report's own colours, and those only when [`Style::color`] says so.

use std::fmt::Write as _;

use super::timeline::{self, Row, Timeline};
use super::{CheckView, LabView, Same, panic_site, same_as, same_failures, where_to_start};
use crate::harness::show::indent;
use crate::outcome::{LabReport, Status};
use crate::untrusted::terminal;

/// How the report is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours (off for pipes and with `NO_COLOR`).
    pub color: bool,
    /// Show the commands each check ran, and every check's conversation
    /// whole.
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
        terminal(view.graded),
        view.grader_version,
        view.seed
    );
    if !view.containment.is_empty() {
        let _ = writeln!(out, "containment: {}", view.containment);
    }
    for note in view.notes {
        let _ = writeln!(out, "{} {}", style.paint("33", "note:"), terminal(note));
    }
    // The state, and the compiler's first errors (a screenful: the whole
    // is above, as cargo printed it).
    if let Some(explanation) = view.explanation() {
        let colour = if view.state.ran() { "33" } else { "31" };
        let message = terminal(&explanation);
        let _ = writeln!(out, "{}", style.paint(colour, &indent(&message, 2)));
    }
    let id_width = view
        .checks
        .iter()
        .map(|check| check.id.len())
        .max()
        .unwrap_or(0);
    if let Some((start, _)) = where_to_start(&view) {
        let _ = writeln!(out, "{}", style.paint("1", &start));
    }
    let same = same_failures(&view.checks);
    // A lab that did not compile ran nothing: one line, not a list of
    // checks that fail for no reason of their own.
    let checks = if view.did_not_compile() && !style.verbose {
        let _ = writeln!(out, "{}", style.paint("33", &view.not_run_line()));
        &[][..]
    } else {
        &view.checks[..]
    };
    for (index, check) in checks.iter().enumerate() {
        match &same[index] {
            Same::AsAbove(first) if !style.verbose => {
                write_status_line(&mut out, check, id_width, style);
                let _ = writeln!(out, "    {}", terminal(&same_as(first, check)));
            }
            Same::AlsoCosts(others) if !style.verbose => {
                write_check(&mut out, check, id_width, style, others);
            }
            _ => write_check(&mut out, check, id_width, style, &[]),
        }
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
        style.paint(
            if view.full_marks() { "1;32" } else { "1" },
            &view.total_line()
        )
    );
    // Long lines are cut, or with `--verbose` wrapped whole: a terminal
    // shows neither a 100 KiB line nor its end.
    let fit = if style.verbose { fold } else { clip };
    out.lines().map(fit).fold(String::new(), |mut page, line| {
        page.push_str(&line);
        page.push('\n');
        page
    })
}

/// How long a line of the report may be before it is cut (without
/// `--verbose`): a 100 KiB argument fills no screen.
pub const MAX_LINE: usize = 200;

/// The longest word a long line may hold and still be prose (wrapped at
/// spaces) rather than an argument (cut in the middle).
const LONGEST_WORD: usize = 80;

/// `line` itself when it fits, wrapped at spaces when it is prose; `None`
/// when it holds a word too long to wrap (a long argument).
fn short_or_prose(line: &str) -> Option<String> {
    if line.chars().count() <= MAX_LINE {
        return Some(line.to_owned());
    }
    line.split(' ')
        .all(|word| word.chars().count() <= LONGEST_WORD)
        .then(|| wrap(line))
}

/// `line` as the report shows it: prose longer than [`MAX_LINE`] characters
/// wraps at spaces, indented under itself; a line holding a long argument is
/// cut in the middle.
fn clip(line: &str) -> String {
    if let Some(shown) = short_or_prose(line) {
        return shown;
    }
    let length = line.chars().count();
    let (head, tail) = (120, 30);
    let left_out = length - head - tail;
    let mut clipped: String = line.chars().take(head).collect();
    let _ = write!(clipped, " …[{left_out} characters: --verbose shows them]… ");
    clipped.extend(line.chars().skip(length - tail));
    clipped
}

/// `line` whole, as `--verbose` shows it: prose longer than [`MAX_LINE`]
/// characters wraps at spaces, and a line holding a long argument is cut
/// into lines of [`MAX_LINE`] characters, the continuations indented four
/// spaces deeper than the line.
fn fold(line: &str) -> String {
    if let Some(shown) = short_or_prose(line) {
        return shown;
    }
    let indent = line.len() - line.trim_start().len();
    let continuation = " ".repeat(indent + 4);
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut first = true;
    while chars.peek().is_some() {
        let room = if first {
            MAX_LINE
        } else {
            out.push('\n');
            out.push_str(&continuation);
            MAX_LINE - continuation.len()
        };
        out.extend(chars.by_ref().take(room));
        first = false;
    }
    out
}

/// Prose wrapped at spaces into lines of at most [`MAX_LINE`] characters,
/// the continuations indented four spaces deeper than the line.
fn wrap(line: &str) -> String {
    let indent = line.len() - line.trim_start().len();
    let continuation = " ".repeat(indent + 4);
    let mut out = String::new();
    let mut current = line[..indent].to_owned();
    let mut width = indent;
    // Whether `current` holds a word yet: its width cannot say, since a
    // first word as long as the extra indent ends where a continuation's
    // indent does.
    let mut started = false;
    for word in line.trim_start().split(' ') {
        let length = word.chars().count();
        if width > continuation.len() && width + 1 + length > MAX_LINE {
            out.push_str(current.trim_end());
            out.push('\n');
            current.clone_from(&continuation);
            width = continuation.len();
            started = false;
        }
        if started {
            current.push(' ');
            width += 1;
        }
        current.push_str(word);
        width += length;
        started = true;
    }
    out.push_str(&current);
    out
}

fn write_status_line(out: &mut String, check: &CheckView, id_width: usize, style: Style) {
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
}

/// A check's line, and under a failure: why, which later checks the same
/// failure costs (`also_costs`), the guidance and the commands.
fn write_check(
    out: &mut String,
    check: &CheckView,
    id_width: usize,
    style: Style,
    also_costs: &[String],
) {
    write_status_line(out, check, id_width, style);
    // A check that did not run says why once, in the build failure above.
    if check.status != Status::NotRun {
        if let Some(failure) = check.failure {
            let _ = writeln!(out, "{}", indent(&terminal(&failure.to_string()), 4));
        }
    }
    let show_conversation = match check.status {
        Status::Failed => true,
        Status::Passed => style.verbose,
        Status::NotRun | Status::Skipped => false,
    };
    if show_conversation && !check.conversation.is_empty() {
        let timeline = if style.verbose {
            Timeline::whole(check.conversation)
        } else {
            let quoted = check.failure.map(ToString::to_string).unwrap_or_default();
            Timeline::relevant(check.conversation, timeline::RELEVANT_TAIL)
                .folding_lines_quoted_in(&quoted)
        };
        write_timeline(out, &timeline, style);
    }
    if !also_costs.is_empty() {
        let _ = writeln!(
            out,
            "    {}",
            style.paint(
                "33",
                &format!(
                    "the same {} costs {} more check(s): {}",
                    match check
                        .failure
                        .map(ToString::to_string)
                        .as_deref()
                        .and_then(panic_site)
                    {
                        Some(_) => "panic",
                        None => "cause",
                    },
                    also_costs.len(),
                    also_costs.join(", ")
                )
            )
        );
    }
    for (label, line) in check.guidance.iter().flat_map(|guidance| guidance.lines()) {
        let _ = writeln!(out, "    {} {}", style.paint("36", label), terminal(line));
    }
    let show_commands = match check.status {
        Status::Failed => true,
        Status::Passed => style.verbose,
        Status::NotRun | Status::Skipped => false,
    };
    if show_commands && !check.commands.is_empty() {
        let _ = writeln!(out, "    ran:");
        for command in check.commands {
            let _ = writeln!(out, "      {}", terminal(command));
        }
    }
}

/// The conversation as aligned lines under a `conversation:` heading:
/// `0.013  server → grader  6 B  "Hello,"`.
fn write_timeline(out: &mut String, timeline: &Timeline, style: Style) {
    let time_width = timeline
        .events()
        .map(|event| timeline::seconds(event.at).len())
        .max()
        .unwrap_or(0);
    let who_width = timeline
        .rows
        .iter()
        .map(|row| timeline.who_of(row).chars().count())
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "    {}", style.paint("36", "conversation:"));
    for row in &timeline.rows {
        let line = match row {
            Row::Gap(left_out) => format!(
                "{:>time_width$}  {}",
                "",
                style.paint("2", &timeline::gap(*left_out))
            ),
            Row::Event(event) | Row::Quoted(event, _) | Row::Repeated(event, _, _) => {
                let what = terminal(&timeline::what_of(row)).into_owned();
                format!(
                    "{:>time_width$}  {:<who_width$}  {}",
                    timeline::seconds(event.at),
                    timeline.who_of(row),
                    if style.verbose {
                        what
                    } else {
                        clip_what(&what)
                    }
                )
            }
        };
        let _ = writeln!(out, "      {}", line.trim_end());
    }
}

/// Characters of an event's words a timeline line shows (without
/// `--verbose`): a line a server printed is evidence, not the story.
const WHAT_WIDTH: usize = 110;

fn clip_what(what: &str) -> String {
    if what.chars().count() <= WHAT_WIDTH {
        return what.to_owned();
    }
    let mut kept: String = what.chars().take(WHAT_WIDTH - 1).collect();
    kept.push('…');
    kept
}

/// The closing lines of `grade all`: one per lab and the grand total.
pub fn totals(reports: &[LabReport], style: Style) -> String {
    let mut out = String::new();
    for report in reports {
        let _ = writeln!(out, "{}", LabView::of(report).total_line());
    }
    let score: u32 = reports.iter().map(|r| r.score).sum();
    let max: u32 = reports.iter().map(|r| r.max_score).sum();
    let _ = writeln!(out, "{}", style.paint("1", &format!("all: {score}/{max}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first word as long as the continuations' extra indent keeps the
    /// space after it.
    #[test]
    fn a_four_letter_first_word_keeps_its_space() {
        assert_eq!(wrap("    with no server"), "    with no server");
        let long = format!("    with {}", "word ".repeat(40));
        let wrapped = wrap(long.trim_end());
        assert!(wrapped.starts_with("    with word"), "{wrapped}");
        assert!(
            wrapped
                .lines()
                .skip(1)
                .all(|line| line.starts_with("        word")),
            "{wrapped}"
        );
    }
}
