//! The rubric: points, hints and limits of every check, read from
//! `grader/rubric.toml`.
//!
//! Instructors tune a course by editing that one file; the checks themselves
//! (in [`crate::labs`]) only know their id. The file is compiled into the
//! grader so that a grade never depends on a file next to the student's code.

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lab::Lab;

/// The rubric's text, compiled in.
const RUBRIC_TOML: &str = include_str!("../rubric.toml");

/// Everything the rubric says about one check.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Stable id, `slug.name`: reports, `--check` and exports use it.
    pub id: String,
    /// What the check verifies, in a few words.
    pub title: String,
    /// Points for passing.
    pub points: u32,
    /// What to look at when the check fails.
    pub hint: String,
    /// The handout section to read, as an anchor (`#the-half-close`).
    pub handout: String,
    /// How to try the same thing by hand.
    #[serde(default)]
    pub manual: String,
    /// Upper bound on the check's duration, in seconds, before `--time-scale`.
    /// A correct program finishes far sooner: limits are never waited out.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
    /// How much of each stream of a graded process is kept, in KiB. The rest
    /// is still drained and counted.
    #[serde(default = "default_output_cap_kib")]
    pub output_cap_kib: usize,
    /// Another check that must pass for this one to earn its points: for
    /// checks that an unfinished program could pass by accident.
    #[serde(default)]
    pub requires: Option<String>,
    /// Runs alone, after the parallel checks, because it measures time or CPU.
    #[serde(default)]
    pub serial: bool,
    /// Needs Linux (`/proc`, seccomp): elsewhere it is reported as skipped
    /// and the grade as not final.
    #[serde(default)]
    pub linux_only: bool,
}

fn default_time_limit() -> f64 {
    10.0
}

fn default_output_cap_kib() -> usize {
    256
}

impl CheckSpec {
    /// The time limit scaled for this machine.
    pub fn time_limit(&self, time_scale: f64) -> Duration {
        Duration::from_secs_f64(self.time_limit * time_scale)
    }

    /// The output cap in bytes.
    pub fn output_cap(&self) -> usize {
        self.output_cap_kib * 1024
    }

    /// The lab slug this check belongs to (the part of the id before the dot).
    pub fn lab_slug(&self) -> &str {
        self.id.split_once('.').map_or("", |(slug, _)| slug)
    }
}

/// Where a student whose program passes nothing yet should begin: where
/// the lab's handout begins its steps (the library first, Step 1), which is
/// not always the first check of the rubric.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabStart {
    /// The lab's slug, `app`.
    pub slug: String,
    /// What to begin with, in a few words: `Step 1, a thread per connection`.
    pub begin: String,
    /// The handout section of that first step, as an anchor.
    pub begin_at: String,
    /// The check that grades it.
    pub begin_with: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RubricFile {
    check: Vec<CheckSpec>,
    #[serde(default)]
    lab: Vec<LabStart>,
}

/// The rubric the grader was built with, parsed once per process (every
/// command starts by validating it, so it is on the way to every grade).
fn compiled_in() -> &'static Result<RubricFile, String> {
    static RUBRIC: OnceLock<Result<RubricFile, String>> = OnceLock::new();
    RUBRIC.get_or_init(|| parse_file(RUBRIC_TOML))
}

/// Where each lab begins, from the rubric's `[[lab]]` tables.
pub fn starts() -> &'static [LabStart] {
    compiled_in().as_ref().map_or(&[], |file| &file.lab)
}

/// Where lab `slug` begins, if the rubric says.
pub fn start(slug: &str) -> Option<&'static LabStart> {
    starts().iter().find(|start| start.slug == slug)
}

/// All checks of the course, in rubric order. Commands call [`validate`]
/// first, so that a rubric that does not parse is a clean error, not this
/// panic.
pub fn all() -> &'static [CheckSpec] {
    match compiled_in() {
        Ok(file) => &file.check,
        Err(err) => panic!("{err}"),
    }
}

/// Whether the rubric the grader was built with parses: the error names
/// the file and line (`grader/rubric.toml:212: unknown field `point`, …`).
pub fn validate() -> Result<(), String> {
    compiled_in().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The checks of the rubric `text`, or what is wrong with it and where.
pub fn parse(text: &str) -> Result<Vec<CheckSpec>, String> {
    parse_file(text).map(|file| file.check)
}

fn parse_file(text: &str) -> Result<RubricFile, String> {
    toml::from_str::<RubricFile>(text).map_err(|err| {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let message = err.message().trim_end();
        match line {
            Some(line) => format!("grader/rubric.toml:{line}: {message}"),
            None => format!("grader/rubric.toml: {message}"),
        }
    })
}

/// The checks of one lab, in rubric order.
pub fn for_lab(lab: &Lab) -> Vec<&'static CheckSpec> {
    all()
        .iter()
        .filter(|spec| spec.lab_slug() == lab.slug)
        .collect()
}

/// The points `lab` is out of where no check is skipped: the sum over its
/// checks. Tests and tools take totals from here, never from a literal.
pub fn total(lab: &Lab) -> u32 {
    for_lab(lab).iter().map(|spec| spec.points).sum()
}

/// Looks a check up by id.
pub fn find(id: &str) -> Option<&'static CheckSpec> {
    all().iter().find(|spec| spec.id == id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::lab::LABS;

    #[test]
    fn a_rubric_typo_is_an_error_with_the_file_and_line() {
        let typo = RUBRIC_TOML.replacen("\npoints = ", "\npoint = ", 1);
        let line = typo
            .lines()
            .position(|line| line.starts_with("point = "))
            .unwrap()
            + 1;
        let err = parse(&typo).unwrap_err();
        assert!(
            err.starts_with("grader/rubric.toml:") && err.contains("point"),
            "{err}"
        );
        // The line of the typo, or of the table it is in.
        let at: usize = err.split(':').nth(1).unwrap().parse().unwrap();
        assert!(at <= line && line - at < 20, "{err} (typo on line {line})");
    }

    #[test]
    fn rubric_parses_and_ids_are_unique() {
        let mut ids = HashSet::new();
        for spec in all() {
            assert!(ids.insert(spec.id.as_str()), "{} is listed twice", spec.id);
            assert!(
                LABS.iter().any(|lab| lab.slug == spec.lab_slug()),
                "{} names no lab",
                spec.id
            );
            assert!(spec.points > 0, "{} gives no points", spec.id);
            assert!(
                spec.handout.starts_with('#'),
                "{}: handout is an anchor",
                spec.id
            );
            assert!(!spec.hint.trim().is_empty(), "{} has no hint", spec.id);
            assert!(spec.time_limit > 0.0, "{} has no time limit", spec.id);
        }
    }

    #[test]
    fn every_lab_says_where_to_begin_with_one_of_its_checks() {
        for lab in LABS {
            let start = start(lab.slug).unwrap_or_else(|| panic!("{}: no [[lab]]", lab.slug));
            let check = find(&start.begin_with)
                .unwrap_or_else(|| panic!("{}: no check {}", lab.slug, start.begin_with));
            assert_eq!(check.lab_slug(), lab.slug);
            assert!(start.begin_at.starts_with('#'), "{}", lab.slug);
        }
        assert_eq!(starts().len(), LABS.len());
    }

    #[test]
    fn gates_name_an_earlier_check_of_the_same_lab() {
        for spec in all() {
            if let Some(required) = &spec.requires {
                let gate = find(required).unwrap_or_else(|| panic!("{}: no {required}", spec.id));
                assert_eq!(gate.lab_slug(), spec.lab_slug(), "{}", spec.id);
                assert!(gate.requires.is_none(), "{}: gates do not chain", spec.id);
            }
        }
    }
}
