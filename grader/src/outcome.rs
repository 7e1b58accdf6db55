//! The result model: what a grade produced, check by check.
//!
//! Every output (the terminal report, `--format json`, Gradescope, JUnit, the
//! grade-class CSV) is rendered from these types through one view of each
//! check (`crate::render`), so they carry everything a writer may need.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::harness::conversation::Transcript;

/// Why a check did not pass, as data: the runner renders it, nothing panics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// One sentence: what went wrong.
    pub summary: String,
    /// What the contract asks for, when there is one value to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the program did instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// A snapshot diff, when the check compares against a snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Further lines worth showing: a program's stderr, its exit status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What the evidence points at, when it points elsewhere than the
    /// check's own rubric entry: the report shows this hint and handout
    /// section in place of the rubric's (see [`Failure::diagnosis`]).
    /// (Boxed: a failure travels in every `Err`, and is rarely diagnosed.)
    #[serde(skip)]
    pub diagnosis: Option<Box<Diagnosis>>,
}

/// A cause the grader found evidence for, and where the handout teaches
/// its fix: e.g. bytes left unread in a server's receive queue point at
/// the edge-triggered section, whichever check noticed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// What to do about it, in place of the rubric's hint.
    pub hint: String,
    /// The handout section that teaches the fix, as an anchor (`#the-half-close`).
    pub handout: String,
}

impl Failure {
    /// A failure with just a summary.
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            ..Self::default()
        }
    }

    /// Adds what was expected.
    #[must_use]
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds what happened.
    #[must_use]
    pub fn actual(mut self, actual: impl Into<String>) -> Self {
        self.actual = Some(actual.into());
        self
    }

    /// Adds a snapshot diff.
    #[must_use]
    pub fn diff(mut self, diff: impl Into<String>) -> Self {
        self.diff = Some(diff.into());
        self
    }

    /// Says what the evidence points at: `hint` and the handout section
    /// `handout` (an anchor of the lab's README) replace the rubric's in the
    /// report. The first diagnosis made wins: it is the most specific.
    #[must_use]
    pub fn diagnosis(mut self, hint: impl Into<String>, handout: impl Into<String>) -> Self {
        self.diagnosis.get_or_insert_with(|| {
            Box::new(Diagnosis {
                hint: hint.into(),
                handout: handout.into(),
            })
        });
        self
    }

    /// Adds a detail line (skipped when empty).
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        if !detail.trim().is_empty() {
            self.details.push(detail);
        }
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        if let Some(expected) = &self.expected {
            write!(f, "\nexpected: {expected}")?;
        }
        if let Some(actual) = &self.actual {
            write!(f, "\nactual:   {actual}")?;
        }
        if let Some(diff) = &self.diff {
            write!(f, "\n{diff}")?;
        }
        for detail in &self.details {
            write!(f, "\n{detail}")?;
        }
        Ok(())
    }
}

/// What a check function returns.
pub type CheckResult = Result<(), Failure>;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Passed: full points.
    Passed,
    /// Ran and failed, or passed but its gate did not.
    Failed,
    /// Not run: the crate did not build, or a binary is missing.
    NotRun,
    /// Not applicable to what is graded, or not run on this platform (the
    /// failure says which); its points are left out of the total.
    Skipped,
}

/// The result of one check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Stable id from the rubric, `echo.one_client`.
    pub id: String,
    /// What the check verifies.
    pub title: String,
    /// How it ended.
    pub status: Status,
    /// Points earned.
    pub points: u32,
    /// Points available.
    pub max_points: u32,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The rubric's hint.
    pub hint: String,
    /// The handout section to read: `labs/echo/README.md#the-half-close`.
    pub handout: String,
    /// How to try the same thing by hand.
    pub manual: String,
    /// Wall time the check took.
    #[serde(serialize_with = "as_millis", deserialize_with = "from_millis")]
    pub duration: Duration,
    /// The time limit it ran under.
    #[serde(serialize_with = "as_millis", deserialize_with = "from_millis")]
    pub time_limit: Duration,
    /// The commands the check ran, for `--verbose`.
    pub commands: Vec<String>,
    /// The conversation the check had with the graded programs.
    #[serde(default, skip_serializing_if = "Transcript::is_empty")]
    pub conversation: Transcript,
}

impl CheckOutcome {
    /// Whether the check earned its points.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// What became of one submission's lab: graded (an untouched stub and a
/// program that did not compile included, at what they earn), or why it
/// could not be. One definition for every output (the report's `state`,
/// results.json, JUnit, the CSV's `state` column, the pages' headings, the
/// dashboard's counts): `grade-class` exits 1 when a submission is not
/// graded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubmissionState {
    /// Built, and every check run.
    #[default]
    Graded,
    /// Built and graded like any other, every check run and reported, but
    /// its sources are the lab's stub, byte for byte: nothing was changed.
    UntouchedStub,
    /// Taken, but it did not compile: graded, every check at zero, and the
    /// compiler's messages say why.
    DidNotCompile,
    /// Nothing of it could be graded.
    NotGraded(NotGraded),
}

impl SubmissionState {
    /// Every state, in the order reports list them.
    pub const ALL: [SubmissionState; 9] = [
        Self::Graded,
        Self::UntouchedStub,
        Self::DidNotCompile,
        Self::NotGraded(NotGraded::NotFound),
        Self::NotGraded(NotGraded::FoundTwice),
        Self::NotGraded(NotGraded::Empty),
        Self::NotGraded(NotGraded::SymbolicLink),
        Self::NotGraded(NotGraded::TooLarge),
        Self::NotGraded(NotGraded::Unreadable),
    ];

    /// Whether the submission was graded (a compile error included).
    pub fn graded(self) -> bool {
        !matches!(self, Self::NotGraded(_))
    }

    /// Whether its checks ran: graded, stub included, and built. The
    /// dashboard's pass rates count only these ("of 10 graded").
    pub fn ran(self) -> bool {
        matches!(self, Self::Graded | Self::UntouchedStub)
    }

    /// The state as data, one word: `graded`, `untouched_stub`,
    /// `did_not_compile`, `not_found`, `found_twice`, `empty`,
    /// `symbolic_link`, `too_large`, `unreadable` (the CSV's `state`
    /// column, JSON's `state`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Graded => "graded",
            Self::UntouchedStub => "untouched_stub",
            Self::DidNotCompile => "did_not_compile",
            Self::NotGraded(why) => why.key(),
        }
    }

    /// The state read back from [`SubmissionState::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.key() == key)
    }

    /// In words, for a label or a count: `untouched stub`, `did not
    /// compile`, `not graded: found twice`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Graded => "graded",
            Self::UntouchedStub => "untouched stub",
            Self::DidNotCompile => "did not compile",
            Self::NotGraded(NotGraded::NotFound) => "not graded: not found",
            Self::NotGraded(NotGraded::FoundTwice) => "not graded: found twice",
            Self::NotGraded(NotGraded::Empty) => "not graded: empty",
            Self::NotGraded(NotGraded::SymbolicLink) => "not graded: a symbolic link",
            Self::NotGraded(NotGraded::TooLarge) => "not graded: too large",
            Self::NotGraded(NotGraded::Unreadable) => "not graded: unreadable",
        }
    }

    /// The heading a report gives it, or none for a plain graded lab:
    /// `Did not compile: every check is at zero, and the compiler says why`.
    pub fn heading(self) -> Option<String> {
        Some(match self {
            Self::Graded => return None,
            Self::UntouchedStub => {
                "Untouched stub: these are the lab's starting files, unchanged; \
                                    every check was run"
                    .to_owned()
            }
            Self::DidNotCompile => {
                "Did not compile: no check could run, and the compiler's first errors say why"
                    .to_owned()
            }
            Self::NotGraded(why) => format!(
                "Not graded: {}; none of its code ran, and its zero is no judgement of it",
                why.reason()
            ),
        })
    }
}

impl fmt::Display for SubmissionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for SubmissionState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> Deserialize<'de> for SubmissionState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        Self::from_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("no submission state `{key}`")))
    }
}

/// Why a submission's lab could not be graded: none of its code ran, and
/// its zero is no judgement of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotGraded {
    /// The submission holds files, but not the lab's sources.
    NotFound,
    /// The lab's sources are in the submission more than once.
    FoundTwice,
    /// The submission folder holds no files at all.
    Empty,
    /// The submission folder is a symbolic link, which is not followed: it
    /// may point anywhere on the grading machine.
    SymbolicLink,
    /// The sources are over the size limits of the intake.
    TooLarge,
    /// The sources could not be read (the message says why).
    Unreadable,
}

impl NotGraded {
    /// The state as data: `not_found`, `found_twice`, `empty`,
    /// `symbolic_link`, `too_large`, `unreadable`.
    pub fn key(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::FoundTwice => "found_twice",
            Self::Empty => "empty",
            Self::SymbolicLink => "symbolic_link",
            Self::TooLarge => "too_large",
            Self::Unreadable => "unreadable",
        }
    }

    /// Why, in words: `the submission folder is a symbolic link`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "the lab's sources are not in the submission",
            Self::FoundTwice => "the lab's sources are in the submission more than once",
            Self::Empty => "the submission folder is empty",
            Self::SymbolicLink => "the submission folder is a symbolic link",
            Self::TooLarge => "the sources are over the size limits",
            Self::Unreadable => "the sources could not be read",
        }
    }
}

impl fmt::Display for NotGraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not graded: {}", self.reason())
    }
}

/// How the graded binaries came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BuildState {
    /// Built (or found in `--bin-dir`).
    Ready,
    /// Did not compile; the compiler's output was shown as it printed it.
    Failed {
        /// One line for reports.
        message: String,
    },
}

/// The result of grading one lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabReport {
    /// `lab1`.
    pub lab: String,
    /// `echo`.
    pub slug: String,
    /// The lab's title.
    pub title: String,
    /// What was graded: `student`, `solution` or the `--bin-dir` path.
    pub graded: String,
    /// Whether the binaries were there to run.
    pub build: BuildState,
    /// What became of the submission: graded, an untouched stub, did not
    /// compile, or why it was not graded.
    pub state: SubmissionState,
    /// What the grader noted about the submission before grading it, such
    /// as the files of `src/` the intake left out (only regular files are
    /// taken: not symlinks, FIFOs or devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Every check of the rubric, in rubric order.
    pub checks: Vec<CheckOutcome>,
    /// Points earned.
    pub score: u32,
    /// Points available.
    pub max_score: u32,
    /// The seed of every random payload, to replay a run with `--seed`.
    pub seed: u64,
    /// The grader's version (git commit).
    pub grader_version: String,
    /// How the graded programs were contained, e.g. `uid 64000 · pid ns ·
    /// net ns (loopback only) · cgroup (pids, memory) · clean env`.
    pub containment: String,
    /// Wall time of the lab's checks, from the first to the last; the build
    /// (which happens before grading starts) is not included.
    #[serde(serialize_with = "as_millis", deserialize_with = "from_millis")]
    pub duration: Duration,
}

impl LabReport {
    /// How many checks could not run on this platform.
    pub fn skipped(&self) -> usize {
        self.checks
            .iter()
            .filter(|check| check.status == Status::Skipped)
            .count()
    }

    /// Full marks?
    pub fn full_marks(&self) -> bool {
        self.score == self.max_score && self.max_score > 0
    }

    /// The ids of the checks that did not earn their points.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|check| !check.passed())
            .map(|check| check.id.as_str())
            .collect()
    }

    /// The outcome of one check.
    pub fn check(&self, id: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|check| check.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::conversation::{Event, Kind, Party};

    /// A report read back from its JSON is the report (`grade-class --only`
    /// rebuilds the class's outputs from the reports it kept), with its
    /// conversations, and its JSON is the same again.
    #[test]
    fn a_report_reads_back_from_its_json() {
        let mut event: Event = serde_json::from_str(r#"{"at_ms": 12, "kind": "data"}"#).unwrap();
        event.from = Some(Party::Grader);
        event.to = Some(Party::Server);
        event.bytes = Some(5);
        event.until = Some(Duration::from_millis(15));
        assert_eq!(event.kind, Kind::Data);
        let check = CheckOutcome {
            id: "echo.one_client".into(),
            title: "one client".into(),
            status: Status::Failed,
            points: 0,
            max_points: 4,
            failure: Some(Failure::new("no reply").expected("hello").detail("exit 1")),
            hint: "read".into(),
            handout: "labs/echo/README.md#the-half-close".into(),
            manual: String::new(),
            duration: Duration::from_millis(250),
            time_limit: Duration::from_secs(5),
            commands: vec!["target/debug/echo-server".into()],
            conversation: crate::harness::conversation::Transcript {
                events: vec![event],
                elided: 3,
                elided_at: Some(1),
            },
        };
        let report = LabReport {
            lab: "lab1".into(),
            slug: "echo".into(),
            title: "Echo".into(),
            graded: "bob\\xff".into(),
            build: BuildState::Failed {
                message: "did not compile".into(),
            },
            state: SubmissionState::NotGraded(NotGraded::FoundTwice),
            notes: vec!["a note".into()],
            checks: vec![check],
            score: 0,
            max_score: 4,
            seed: u64::MAX,
            grader_version: "abc".into(),
            containment: String::new(),
            duration: Duration::from_millis(1234),
        };
        let json = serde_json::to_string(&report).unwrap();
        let back: LabReport = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(back.state, report.state);
        assert_eq!(back.checks[0].conversation, report.checks[0].conversation);
        assert_eq!(back.checks[0].failure, report.checks[0].failure);
        assert_eq!(back.duration, report.duration);
        assert!(serde_json::from_str::<SubmissionState>("\"sideways\"").is_err());
    }
}
