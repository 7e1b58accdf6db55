//! Grading a class: its submissions found and built, then every built lab
//! graded, N at a time, into a row per (student, lab).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use grader::outcome::SubmissionState;
use grader::sync::Unpoison;
use grader::{Lab, Options};

use super::Graded;
use super::building::{Built, build_all};
use super::submissions::{labs_found, select, submissions};

/// How to grade a class.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The labs to grade; `None`: those the submissions contain.
    pub labs: Option<Vec<&'static Lab>>,
    /// How many submissions are built, and then graded, at once.
    pub jobs: usize,
    /// How long a submission's build may take.
    pub build_timeout: Duration,
    /// Which copy of a lab found more than once to take (`--prefer`).
    pub prefer: Option<&'a str>,
    /// The salt of `--anonymise`.
    pub anonymise: Option<[u8; 16]>,
    /// The students to grade (`--only`); `None`: every one.
    pub only: Option<&'a [OsString]>,
}

/// A graded class.
#[derive(Debug)]
pub struct Class {
    /// A row per (student, lab), sorted.
    pub results: Vec<Graded>,
    /// The labs graded, with how many submissions hold each (`None` when
    /// they were named with `--lab`).
    pub labs: Vec<(&'static Lab, Option<usize>)>,
}

/// Grades every submission in `dir` with `options` (one seed for all).
pub fn grade_class(
    dir: &Path,
    labs: &[&'static Lab],
    jobs: usize,
    build_timeout: Duration,
    options: &Options,
) -> Result<Vec<Graded>> {
    let plan = Plan {
        labs: Some(labs.to_vec()),
        jobs,
        build_timeout,
        prefer: None,
        anonymise: None,
        only: None,
    };
    Ok(grade_class_with(dir, &plan, options)?.results)
}

/// Grades every submission in `dir` as `plan` says.
pub fn grade_class_with(dir: &Path, plan: &Plan, options: &Options) -> Result<Class> {
    let mut submissions = submissions(dir, plan.anonymise.as_ref())?;
    if submissions.is_empty() {
        bail!("{} holds no submission directories", dir.display());
    }
    if let Some(only) = plan.only {
        submissions = select(submissions, only, dir)?;
    }
    let labs: Vec<(&'static Lab, Option<usize>)> = match &plan.labs {
        Some(labs) => labs.iter().map(|lab| (*lab, None)).collect(),
        None => labs_found(&submissions)
            .into_iter()
            .map(|(lab, holding)| (lab, Some(holding)))
            .collect(),
    };
    if plan.labs.is_none() {
        let said: Vec<String> = labs
            .iter()
            .map(|(lab, holding)| {
                format!(
                    "{lab} (in {} of {})",
                    holding.unwrap_or(0),
                    submissions.len()
                )
            })
            .collect();
        eprintln!("grading the labs the submissions hold: {}", said.join(", "));
    }
    let lab_list: Vec<&'static Lab> = labs.iter().map(|(lab, _)| *lab).collect();
    let work = tempfile::Builder::new().prefix("grade-class-").tempdir()?;
    let built = build_all(&submissions, &lab_list, plan, work.path())?;
    let total = built.len();
    let queue = Mutex::new(built.into_iter().rev().collect::<Vec<_>>());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(built) = queue.lock().unpoison().pop() else {
                        return;
                    };
                    let Built {
                        student,
                        lab,
                        binaries,
                        state,
                        notes,
                    } = built;
                    let options = Options {
                        graded: student.clone(),
                        jobs: 4,
                        ..options.clone()
                    };
                    let mut report = grader::grade(lab, binaries, &options);
                    report.notes = notes;
                    // What the intake and the build found: not graded, an
                    // untouched stub (the grade cannot tell either).
                    if report.state == SubmissionState::Graded
                        || matches!(state, SubmissionState::NotGraded(_))
                    {
                        report.state = state;
                    }
                    // Counted as they finish, so the counter runs in order.
                    let number = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    eprintln!(
                        "[grade {number}/{total}] {student} {}: {}/{} ({:.1} s)",
                        report.lab,
                        report.score,
                        report.max_score,
                        report.duration.as_secs_f64()
                    );
                    results.lock().unpoison().push(Graded {
                        student,
                        report,
                        state,
                    });
                }
            });
        }
    });
    let mut results = results.into_inner().unpoison();
    results.sort_by(|a, b| (&a.student, &a.report.lab).cmp(&(&b.student, &b.report.lab)));
    Ok(Class { results, labs })
}
