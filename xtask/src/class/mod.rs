//! `cargo xtask grade-class SUBMISSIONS_DIR`: grade a whole class.
//!
//! Each submission is graded in isolation. From it only the regular files of
//! each lab's `src/` are taken (found at any depth, see [`crate::intake`]),
//! into a fresh course exported from the instructor's committed files, so a
//! submission's `Cargo.toml`, `build.rs` or extra crates never come in. The
//! dependencies are built once, into a seed target dir; each submission
//! builds in a copy of it (`--locked --offline`, under a time limit), with
//! no fingerprint of any lab crate in it, so every submission's executables
//! are built from its own sources whatever their modification times. The
//! executables are copied aside and the target dir removed; then the grades
//! run, N submissions at a time. A submission that is not found, does not
//! compile, hangs its build or forks scores what it earns, its row says
//! why, and the batch goes on.
//!
//! Folder names are the students': anything a file name may hold, control
//! characters and bytes that are not UTF-8 included. Every output shows a
//! name in one lossless, control-free notation ([`grader::untrusted::name`]),
//! and each page's file name is derived from it, bounded and distinct
//! ([`grader::untrusted::unique_file_stems`]). A submission folder that is a
//! symbolic link is not followed: it could point anywhere on this machine.
//!
//! What the class's outputs are made from is kept beside them, in
//! `grades.json` ([`ClassFile`]): the class's seed and labs, and every
//! student's reports. `--only NAME…` regrades the named students with the
//! class's seed and labs, and rewrites the CSV, the dashboard and their
//! pages from the saved reports of the others and the new ones of theirs.
//!
//! Its parts, in the order of a grade:
//! - `submissions.rs`: the class's submission folders, and where each
//!   holds a lab's sources (`--prefer`, `--only`);
//! - `building.rs`: the dependency seed, and each submission's build in a
//!   copy of the course;
//! - `grading.rs`: grading every built lab, N at a time;
//! - `anonymise.rs`: the stable pseudonyms of `--anonymise`;
//! - `exports.rs`: the CSV, the wide CSV and `grades.json`;
//! - `pages.rs`: the class report and each student's page;
//! - `summary.rs`: what it prints at the end;
//! - `tests.rs`: their tests.

mod anonymise;
mod building;
mod exports;
mod grading;
mod pages;
mod submissions;
mod summary;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use grader::outcome::SubmissionState;
use grader::{Lab, LabReport};

use crate::grade::{Selection, parse_selection};
use crate::options::RunOptions;

use anonymise::salt_of;
pub use exports::csv;
use exports::{CLASS_FILE, ClassFile, merge, wide_csv};
pub use grading::grade_class;
use grading::{Class, Plan, grade_class_with};
pub use pages::{page_stems, write_pages};
use summary::{closing_summary, print_summary};

/// Arguments of `cargo xtask grade-class`.
#[derive(Debug, Args)]
pub struct ClassArgs {
    /// One directory per student, holding the lab's `src/` at any depth.
    submissions: PathBuf,
    /// The lab to grade, or all (default: the labs the submissions contain,
    /// which the summary names).
    #[arg(long, value_parser = parse_selection)]
    lab: Option<Selection>,
    /// How many submissions are built, and then graded, at once.
    #[arg(short = 'j', long, default_value_t = 2)]
    jobs: usize,
    /// Of a lab found more than once in a submission, take the copy whose
    /// path in the submission matches PATH-GLOB (`*` and `?` within a
    /// folder name, `**` for any folders; matched against the leading
    /// folders: `labs` or `labs/*` takes `labs/echo/src/`).
    #[arg(long, value_name = "PATH-GLOB")]
    prefer: Option<String>,
    /// Also write a wide CSV beside the CSV (`grades-wide.csv`): a row per
    /// student, a column per check with its points, for gradebook imports.
    #[arg(long)]
    wide: bool,
    /// Replace every student's name with a stable salted hash
    /// (`anon-…`, keyed by `SUBMISSIONS/.grade-class-salt`, made once) in
    /// the CSV, the pages and their file names, and the summary.
    #[arg(long)]
    anonymise: bool,
    /// Regrade only these students, in place: their rows of the CSV (and
    /// of the wide CSV, when there is one), their pages and the class
    /// report are updated, the others' kept, from what the last grade of
    /// the class kept in `SUBMISSIONS/grades.json`; with the class's seed
    /// and labs (`--lab` picks among them). A NAME is a folder's name,
    /// byte for byte, or as the CSV shows it (`bob\xff`).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    only: Vec<OsString>,
    /// Where to write the CSV (default: SUBMISSIONS/grades.csv).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Seconds a submission's build may take (its dependencies are built).
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    build_timeout: u64,
    /// Where the pages' handout links point: the address of the book of
    /// `cargo xtask book` on the web (`https://…/book/`), for pages handed
    /// back to students (default: the book in target/book if built, else
    /// this course's folder, as file:// URLs).
    #[arg(long, value_name = "URL")]
    handouts: Option<String>,
    /// `--seed` (the same for every student) and `--time-scale`.
    #[command(flatten)]
    run: RunOptions,
}

/// One graded (student, lab) pair.
#[derive(Debug)]
pub struct Graded {
    /// The submission's directory name, as [`grader::untrusted::name`]
    /// shows it.
    pub student: String,
    /// The lab's report (the intake's notes in its `notes`).
    pub report: LabReport,
    /// Whether it was graded, or why not.
    pub state: SubmissionState,
}

/// `cargo xtask grade-class`: exit 0 when every submission was graded (a
/// program that did not compile included), 1 when some could not be (see
/// [`NotGraded`]), 2 for a usage error. With `--only`, of the students it
/// regraded.
pub fn run(args: &ClassArgs) -> Result<ExitCode> {
    // Grades of record: as `grade --contained` does, refuse without the
    // minimum containment.
    let missing = grader::harness::sandbox::Policy::get().minimum_missing();
    if !missing.is_empty() {
        bail!(
            "graded programs cannot be contained here: {}",
            missing.join("; ")
        );
    }
    let started = Instant::now();
    let dir = &args.submissions;
    // A regrade keeps what the class was graded with: its seed, its labs,
    // its names.
    let previous = if args.only.is_empty() {
        None
    } else {
        Some(ClassFile::load(dir)?)
    };
    let mut options = args.run.grader_options("class");
    let mut labs = args.lab.as_ref().map(Selection::labs);
    let mut anonymise = args.anonymise;
    if let Some(previous) = &previous {
        if args.run.seed.is_some_and(|seed| seed != previous.seed) {
            bail!(
                "the class was graded with --seed {}: --only regrades with it (or regrade the whole class)",
                previous.seed
            );
        }
        options.seed = previous.seed;
        if args.anonymise && !previous.anonymised {
            bail!(
                "the class was graded without --anonymise: regrade the whole class to anonymise it"
            );
        }
        anonymise = previous.anonymised;
        let class_labs = previous.class_labs()?;
        if let Some(named) = &labs {
            if let Some(lab) = named
                .iter()
                .find(|lab| !class_labs.iter().any(|l| l.slug == lab.slug))
            {
                bail!(
                    "{lab} is not a lab of this class ({}): --only regrades among them",
                    previous.labs.join(", ")
                );
            }
        } else {
            labs = Some(class_labs);
        }
    }
    let seed = options.seed;
    let salt = if anonymise { Some(salt_of(dir)?) } else { None };
    let plan = Plan {
        labs,
        jobs: args.jobs,
        build_timeout: Duration::from_secs(args.build_timeout),
        prefer: args.prefer.as_deref(),
        anonymise: salt,
        only: previous.as_ref().map(|_| args.only.as_slice()),
    };
    let Class {
        results: fresh,
        labs,
    } = grade_class_with(dir, &plan, &options)?;
    let regraded: BTreeSet<String> = fresh.iter().map(|graded| graded.student.clone()).collect();
    let not_graded = print_summary(
        &fresh,
        &labs,
        args.lab.is_none() && previous.is_none(),
        started,
        seed,
    );
    let closing = closing_summary(&fresh);
    let (results, file) = match previous {
        None => {
            let labs: Vec<&'static Lab> = labs.iter().map(|(lab, _)| *lab).collect();
            let file = ClassFile::of(&fresh, &labs, seed, args);
            (fresh, file)
        }
        Some(previous) => {
            let results = merge(previous.graded(), fresh);
            let mut file = ClassFile::of(&results, &previous.class_labs()?, seed, args);
            file.anonymised = previous.anonymised;
            file.handouts = file.handouts.or(previous.handouts);
            file.csv = file.csv.or(previous.csv);
            (results, file)
        }
    };
    let csv_path = file.csv.clone().unwrap_or_else(|| dir.join("grades.csv"));
    std::fs::write(&csv_path, csv(&results))
        .with_context(|| format!("writing {}", csv_path.display()))?;
    let wide_path = csv_path.with_file_name("grades-wide.csv");
    // A regrade keeps the wide CSV up to date when the class has one.
    let wide = args.wide || (!args.only.is_empty() && wide_path.is_file());
    if wide {
        std::fs::write(&wide_path, wide_csv(&results))
            .with_context(|| format!("writing {}", wide_path.display()))?;
    }
    let only = (!args.only.is_empty()).then_some(&regraded);
    let dashboard = write_pages(dir, &results, file.handouts.as_deref(), only)?;
    file.save(dir)?;
    if only.is_some() {
        println!(
            "regraded {} of {} students (seed {seed}, labs {}): their rows, their pages and the class report are updated",
            regraded.len(),
            file.students.len(),
            file.labs.join(", ")
        );
    }
    println!(
        "CSV: {}{}; class report: {} (a page per student beside it); grades as data: {}",
        csv_path.display(),
        if wide {
            format!(", wide: {}", wide_path.display())
        } else {
            String::new()
        },
        dashboard.display(),
        dir.join(CLASS_FILE).display()
    );
    print!("{closing}");
    if not_graded > 0 {
        println!(
            "{not_graded} submission(s) could not be graded in full: their rows say why (exit code 1)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
