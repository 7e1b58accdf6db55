//! Everything a grade is shown as: one view of each check, built once from
//! the [`LabReport`], and thin writers over it.
//!
//! - [`text`]: the terminal report a student reads after every grade.
//! - [`html`]: the same as a self-contained page, each check's
//!   conversation drawn as a sequence diagram.
//! - [`json`]: `--format json`, the report as data.
//! - [`gradescope`]: Gradescope's `results.json`.
//! - [`junit`]: JUnit XML, one test case per check, named by its id.
//! - [`csv`]: the grade-class CSV, one row per student and lab.
//! - [`dashboard`]: the grade-class page: histogram, pass rates, students.
//!
//! [`timeline`] is the view of a check's conversation that the text report
//! and the HTML page share; [`diagram`] draws it as the page's SVG
//! sequence diagram.
//!
//! Every writer shows what a student controls (their programs' output, their
//! folder's name) through [`crate::untrusted`], the one place that makes it
//! safe for the terminal, CSV, HTML, XML and JSON.
//!
//! [`headless`] runs Chromium for what must be seen in a real browser (the
//! README's pictures, the tests of the pages).
//!
//! What a check shows is decided here, once, so that every writer agrees:
//! a check that ran and failed (gated ones included) shows why, the hint,
//! the handout section and how to try it by hand; a check that was skipped
//! or not run shows only why, since there is nothing in it for the student
//! to fix (the platform, or the build, is the reason).

pub mod csv;
pub mod dashboard;
pub mod diagram;
pub mod gradescope;
pub mod headless;
pub mod html;
pub mod json;
pub mod junit;
pub mod text;
pub mod timeline;

use std::fmt::Write as _;
use std::time::Duration;

use crate::harness::conversation::Transcript;
use crate::outcome::{BuildState, CheckOutcome, Failure, LabReport, Status, SubmissionState};

/// One lab as every writer shows it.
#[derive(Debug)]
pub struct LabView<'a> {
    /// `lab1`.
    pub lab: &'a str,
    /// `echo`.
    pub slug: &'a str,
    /// The lab's title.
    pub title: &'a str,
    /// What was graded: `student`, `solution` or the `--bin-dir` path.
    pub graded: &'a str,
    /// Why the binaries were not there to run, when the build failed.
    pub build_failure: Option<&'a str>,
    /// What became of the submission: graded, an untouched stub, did not
    /// compile, not graded and why.
    pub state: SubmissionState,
    /// What the grader noted about the submission: files it left out.
    pub notes: &'a [String],
    /// Every check, in rubric order.
    pub checks: Vec<CheckView<'a>>,
    /// Points earned.
    pub score: u32,
    /// Points available (skipped checks left out).
    pub max_score: u32,
    /// How many checks were skipped on this platform.
    pub skipped: usize,
    /// The seed of the grade.
    pub seed: u64,
    /// The grader's version.
    pub grader_version: &'a str,
    /// What containment was in force (empty when unknown).
    pub containment: &'a str,
    /// Wall time of the checks (the build not included).
    pub duration: Duration,
}

impl<'a> LabView<'a> {
    /// The view of `report`.
    pub fn of(report: &'a LabReport) -> Self {
        Self {
            lab: &report.lab,
            slug: &report.slug,
            title: &report.title,
            graded: &report.graded,
            build_failure: match &report.build {
                BuildState::Ready => None,
                BuildState::Failed { message } => Some(message),
            },
            state: report.state,
            notes: &report.notes,
            checks: report.checks.iter().map(CheckView::of).collect(),
            score: report.score,
            max_score: report.max_score,
            skipped: report.skipped(),
            seed: report.seed,
            grader_version: &report.grader_version,
            containment: &report.containment,
            duration: report.duration,
        }
    }

    /// Why the lab is in its state, when it is not simply graded: the
    /// not-graded message, or the compiler's first errors (bounded to a
    /// screenful, see [`crate::builder::first_errors`]), or that the
    /// sources are the stub. The CSV's `reason`.
    pub fn reason(&self) -> Option<String> {
        if let Some(message) = self.build_failure {
            return Some(match crate::builder::first_errors(message) {
                Some(errors) => format!(
                    "{}; the compiler's first errors:\n{errors}",
                    message
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches(':')
                ),
                None => bounded(message.trim_end(), crate::builder::SCREENFUL_BYTES),
            });
        }
        (self.state == SubmissionState::UntouchedStub)
            .then(|| "the sources are the lab's stub, byte for byte".to_owned())
    }

    /// What a report says first about a lab that was not simply graded:
    /// its state's heading, then [`LabView::reason`]; `None` for a graded
    /// lab. Every writer shows it once, at the top of the lab.
    pub fn explanation(&self) -> Option<String> {
        match (self.state.heading(), self.reason()) {
            (None, None) => None,
            (Some(heading), None) => Some(heading),
            (None, Some(why)) => Some(why),
            (Some(heading), Some(why)) => Some(format!("{heading}.\n{why}")),
        }
    }

    /// `lab1: 34/40`.
    pub fn total(&self) -> String {
        format!("{}: {}/{}", self.lab, self.score, self.max_score)
    }

    /// The total as a report's last line: `lab1: 34/40`, `lab1: 0/46 (did
    /// not compile)`, or for a grade of one check (`--check`), of how many:
    /// `lab1: 1 check of 13: 4/4`, which does not read as full marks.
    pub fn total_line(&self) -> String {
        let all = crate::rubric::all()
            .iter()
            .filter(|spec| spec.lab_slug() == self.slug)
            .count();
        let mut line = if self.checks.len() == 1 && all > 1 {
            format!(
                "{}: 1 check of {all}: {}/{}",
                self.lab, self.score, self.max_score
            )
        } else {
            self.total()
        };
        if self.did_not_compile() {
            line.push_str(" (did not compile)");
        }
        line
    }

    /// Whether the lab did not compile: its checks could not run, and a
    /// report says so once, with the compiler's first error, instead of
    /// listing every check as failing.
    pub fn did_not_compile(&self) -> bool {
        self.state == SubmissionState::DidNotCompile
    }

    /// What a report shows in place of the list of checks of a lab that
    /// did not compile: `13 checks not run: they run once it compiles. Fix
    /// the first error above, then grade again.`
    pub fn not_run_line(&self) -> String {
        let count = self.checks.len();
        format!(
            "{count} {} not run: {} once it compiles. Fix the first error above, then grade again.",
            if count == 1 { "check" } else { "checks" },
            if count == 1 { "it runs" } else { "they run" },
        )
    }

    /// Full marks?
    pub fn full_marks(&self) -> bool {
        self.score == self.max_score && self.max_score > 0
    }

    /// The ids of the checks that did not earn their points.
    pub fn failed_ids(&self) -> Vec<&'a str> {
        self.checks
            .iter()
            .filter(|check| check.status != Status::Passed)
            .map(|check| check.id)
            .collect()
    }
}

/// One check as every writer shows it.
#[derive(Debug)]
pub struct CheckView<'a> {
    /// Stable id from the rubric, `echo.one_client`.
    pub id: &'a str,
    /// What the check verifies.
    pub title: &'a str,
    /// How it ended.
    pub status: Status,
    /// Points earned.
    pub points: u32,
    /// Points available.
    pub max_points: u32,
    /// Why it did not pass: what was expected, what happened, the diff.
    pub failure: Option<&'a Failure>,
    /// What to do about it; only for a check that ran and failed.
    pub guidance: Option<Guidance<'a>>,
    /// The commands the check ran.
    pub commands: &'a [String],
    /// Wall time the check took.
    pub duration: Duration,
    /// The conversation the check had with the graded programs.
    pub conversation: &'a Transcript,
}

/// What a student can do about a failed check.
#[derive(Debug, Clone, Copy)]
pub struct Guidance<'a> {
    /// The rubric's hint.
    pub hint: &'a str,
    /// The handout section to read.
    pub handout: &'a str,
    /// How to try the same thing by hand, when the rubric says.
    pub try_it: Option<&'a str>,
}

impl Guidance<'_> {
    /// The guidance as labelled lines: `("hint:", …)`, `("read:", …)` and,
    /// when there is one, `("try it:", …)`.
    pub fn lines(&self) -> Vec<(&'static str, &str)> {
        let mut lines = vec![("hint:", self.hint), ("read:", self.handout)];
        lines.extend(self.try_it.map(|try_it| ("try it:", try_it)));
        lines
    }
}

impl<'a> CheckView<'a> {
    /// The view of `check`.
    pub fn of(check: &'a CheckOutcome) -> Self {
        Self {
            id: &check.id,
            title: &check.title,
            status: check.status,
            points: check.points,
            max_points: check.max_points,
            failure: check.failure.as_ref(),
            guidance: (check.status == Status::Failed).then(|| Guidance {
                hint: &check.hint,
                handout: &check.handout,
                try_it: Some(check.manual.as_str()).filter(|manual| !manual.is_empty()),
            }),
            commands: &check.commands,
            duration: check.duration,
            conversation: &check.conversation,
        }
    }

    /// Whether the check earned its points.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }

    /// `4/4`.
    pub fn points(&self) -> String {
        format!("{}/{}", self.points, self.max_points)
    }

    /// The plain-text message for platforms that show one block per check:
    /// why it did not pass, then the guidance; empty for a passed check.
    pub fn message(&self) -> String {
        let mut text = String::new();
        if let Some(failure) = self.failure {
            let _ = writeln!(text, "{failure}");
        }
        for (label, line) in self.guidance.iter().flat_map(Guidance::lines) {
            let _ = writeln!(text, "{label} {line}");
        }
        text.trim_end().to_owned()
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), saying so.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … ({} more bytes)", &text[..end], text.len() - end)
}

/// Where a student whose program passes nothing yet should begin: where the
/// handout begins its steps (the rubric's `[[lab]]`: the library first,
/// Step 1), or else the first check; the sentence, and the handout section
/// it names (which a page makes a link).
pub fn where_to_start(view: &LabView) -> Option<(String, String)> {
    // A grade of one check (`--check ID`) says nothing about the rest.
    if view.build_failure.is_some()
        || view.checks.len() < 2
        || view.checks.iter().any(CheckView::passed)
    {
        return None;
    }
    let failed = |id: &str| {
        view.checks
            .iter()
            .find(|check| check.id == id && check.status == Status::Failed)
    };
    if let Some(start) = crate::rubric::start(view.slug) {
        if let Some(check) = failed(&start.begin_with) {
            let handout = check.guidance.map(|guidance| guidance.handout)?;
            let page = handout.split_once('#').map_or(handout, |(page, _)| page);
            let read = format!("{page}{}", start.begin_at);
            return Some((
                format!(
                    "Nothing passes yet, which is where every lab starts. Begin where the handout \
                     does, with {}: read {read}, then grade again with --check {}.",
                    start.begin, check.id
                ),
                read,
            ));
        }
    }
    let first = view
        .checks
        .iter()
        .find(|check| check.status == Status::Failed)?;
    let read = first.guidance.map(|guidance| guidance.handout)?;
    Some((
        format!(
            "Nothing passes yet, which is where every lab starts. Begin with {}: read {read}, \
             then grade again with --check {}.",
            first.id, first.id
        ),
        read.to_owned(),
    ))
}

/// The line that stands for a failure explained at `first`: the same panic
/// (and where), or the same cause, with this check's own summary (its byte
/// counts may differ).
pub fn same_as(first: &str, check: &CheckView) -> String {
    match check_panic_site(check) {
        Some(site) => format!("the same panic as {first}, above ({site})"),
        None => match check.failure {
            Some(failure) if !failure.summary.trim().is_empty() => format!(
                "the same cause as {first}, above: {}",
                failure.summary.lines().next().unwrap_or_default()
            ),
            _ => format!("the same cause as {first}, above"),
        },
    }
}

/// Where the program of a failed check panicked: from its failure's text,
/// or else from the stderr its conversation recorded (a failure may quote
/// stderr escaped, or not at all).
fn check_panic_site(check: &CheckView) -> Option<String> {
    let text = check.failure.map(ToString::to_string).unwrap_or_default();
    if let Some(site) = panic_site(&text) {
        return Some(site.to_owned());
    }
    check
        .conversation
        .events
        .iter()
        .filter(|event| event.kind == crate::harness::conversation::Kind::Stderr)
        .find_map(|event| panic_site(&event.text).map(str::to_owned))
}

/// How a check's failure relates to the others'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Same {
    /// Its failure is its own.
    Own,
    /// It fails for the same cause as these later checks: explained here once.
    AlsoCosts(Vec<String>),
    /// It fails for the same cause as this earlier check.
    AsAbove(String),
}

/// Where a Rust program panicked, from the stderr a failure shows:
/// `labs/echo/src/bin/echo-client.rs:46:5`. Checks that end in the same
/// panic (a `todo!()`) fail for one reason, whatever each expected.
pub fn panic_site(failure: &str) -> Option<&str> {
    failure.lines().find_map(|line| {
        let (_, rest) = line.split_once(" panicked at ")?;
        // `path:line:col:`, ended by whitespace, or by an escaped newline
        // when the failure quotes stderr as a byte string.
        let site = rest
            .split(|c: char| c.is_whitespace() || c == '\\' || c == '"')
            .next()?;
        Some(site.trim_end_matches(':'))
    })
}

/// What a failed check's failure comes down to, so that failures of one
/// cause are explained once: the site of its panic; or the cause its
/// evidence showed (its diagnosis: the same hint and handout section); or
/// else its text with the numbers blurred, so that failures that differ
/// only in byte counts (`got 1024 bytes where 12 were expected`, `… where 59 …`)
/// read the same. `None` for a check that did not fail.
pub fn cause(check: &CheckView) -> Option<String> {
    if check.status != Status::Failed {
        return None;
    }
    let failure = check.failure?;
    if let Some(site) = check_panic_site(check) {
        return Some(format!("panicked at {site}"));
    }
    if let Some(diagnosis) = &failure.diagnosis {
        return Some(format!(
            "diagnosis: {}\n{}",
            diagnosis.hint, diagnosis.handout
        ));
    }
    Some(blur_numbers(&failure.to_string()))
}

/// `text` with every number (and the size unit after it) as `#`: `got 1.0
/// MiB of 12 bytes` and `got 943.0 KiB of 59 bytes` both read `got # of #
/// bytes`.
pub fn blur_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            let end = rest
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
                .map_or(rest.len(), |(index, _)| index);
            rest = &rest[end..];
            for unit in [" KiB", " MiB", " GiB", " B"] {
                if let Some(after) = rest.strip_prefix(unit) {
                    if !after.starts_with(|c: char| c.is_alphanumeric()) {
                        rest = after;
                        break;
                    }
                }
            }
            out.push('#');
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Groups the failed checks of one cause (see [`cause`]): a `todo!()` that
/// ends the server before it listens fails every server check alike, and a
/// server that echoes its whole buffer fails every echo with other counts.
pub fn same_failures(checks: &[CheckView]) -> Vec<Same> {
    let causes: Vec<Option<String>> = checks.iter().map(cause).collect();
    causes
        .iter()
        .enumerate()
        .map(|(index, mine)| {
            let Some(mine) = mine else {
                return Same::Own;
            };
            if let Some(first) = (0..index).find(|earlier| causes[*earlier].as_ref() == Some(mine))
            {
                return Same::AsAbove(checks[first].id.to_owned());
            }
            let later: Vec<String> = (index + 1..checks.len())
                .filter(|later| causes[*later].as_ref() == Some(mine))
                .map(|later| checks[later].id.to_owned())
                .collect();
            if later.is_empty() {
                Same::Own
            } else {
                Same::AlsoCosts(later)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str, failure: Failure) -> CheckOutcome {
        CheckOutcome {
            id: id.into(),
            title: String::new(),
            status: Status::Failed,
            points: 0,
            max_points: 4,
            failure: Some(failure),
            hint: String::new(),
            handout: String::new(),
            manual: String::new(),
            duration: Duration::ZERO,
            time_limit: Duration::ZERO,
            commands: Vec::new(),
            conversation: Transcript::default(),
        }
    }

    #[test]
    fn numbers_and_their_units_blur() {
        assert_eq!(
            blur_numbers("got 1.0 MiB of 12 bytes, then 943.0 KiB; 6 B at 0.25 s"),
            "got # of # bytes, then #; # at # s"
        );
    }

    /// Failures that differ only in byte counts fold; so do failures whose
    /// evidence showed the same cause, whatever their words; others do not.
    #[test]
    fn failures_of_one_cause_fold_into_the_first() {
        let cause = |summary: &str| {
            Failure::new(summary).diagnosis("write back only what you read", "#step-2")
        };
        let checks = [
            failed("a", Failure::new("echo: got 1024 of 12 bytes")),
            failed("b", cause("echo of hello: got 1024 of 12 bytes")),
            failed("c", Failure::new("echo: got 2048 of 59 bytes")),
            failed("d", cause("the log was wrong")),
            failed(
                "e",
                Failure::new("echo: got 1024 of 12 bytes, then nothing"),
            ),
        ];
        let views: Vec<CheckView> = checks.iter().map(CheckView::of).collect();
        assert_eq!(
            same_failures(&views),
            [
                Same::AlsoCosts(vec!["c".into()]),
                Same::AlsoCosts(vec!["d".into()]),
                Same::AsAbove("a".into()),
                Same::AsAbove("b".into()),
                Same::Own,
            ]
        );
        assert_eq!(
            same_as("b", &views[3]),
            "the same cause as b, above: the log was wrong"
        );
    }
}
