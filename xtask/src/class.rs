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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use grader::builder::{self, BuildSpec, CompilerOutput, workspace_root};
use grader::harness::Binaries;
use grader::outcome::{NotGraded, SubmissionState};
use grader::{Lab, LabReport, Options};

use crate::files::{copy_tree, export_committed, git};
use crate::grade::{Selection, parse_selection};
use crate::intake::NotTaken;
use crate::options::RunOptions;

/// Arguments of `cargo xtask grade-class`.
#[derive(Debug, Args)]
pub struct ClassArgs {
    /// One directory per student, holding the lab's `src/` at any depth.
    submissions: PathBuf,
    /// The lab to grade, or all (default).
    #[arg(long, value_parser = parse_selection, default_value = "all")]
    lab: Selection,
    /// How many submissions are graded at once.
    #[arg(short = 'j', long, default_value_t = 2)]
    jobs: usize,
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

/// One submission folder of the class.
#[derive(Debug)]
struct Submission {
    /// The folder's name, as [`grader::untrusted::name`] shows it.
    student: String,
    /// The folder.
    path: PathBuf,
    /// Whether the folder is a symbolic link to a folder (not followed).
    symlink: bool,
}

/// The submissions in `dir`, sorted by name: its folders, and its symbolic
/// links to folders, which are listed to be reported, not followed. Files
/// beside them (`grades.csv`, the pages) are not submissions.
fn submissions(dir: &Path) -> Result<Vec<Submission>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
    {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let symlink = kind.is_symlink();
        if kind.is_dir() || (symlink && entry.path().is_dir()) {
            found.push(Submission {
                student: grader::untrusted::name(&entry.file_name()),
                path: entry.path(),
                symlink,
            });
        }
    }
    found.sort_by(|a, b| a.student.cmp(&b.student));
    Ok(found)
}

/// A submission's lab, ready to grade: its binaries, or why there are none.
#[derive(Debug)]
struct Built {
    student: String,
    lab: &'static Lab,
    binaries: Result<Binaries, String>,
    state: SubmissionState,
    /// What the intake left out.
    notes: Vec<String>,
}

impl Built {
    /// A lab whose sources were not taken: nothing of it runs.
    fn not_graded(student: &str, lab: &'static Lab, not_taken: NotTaken) -> Self {
        Self {
            student: student.to_owned(),
            lab,
            binaries: Err(format!("not graded: {not_taken}")),
            state: SubmissionState::NotGraded(not_taken.why),
            notes: Vec::new(),
        }
    }
}

/// The fresh course every submission is built in: the committed course
/// (what `dist` ships, plus the lock), in `dir`.
fn fresh_course(dir: &Path) -> Result<()> {
    let root = workspace_root();
    let committed = git(&root, &["ls-tree", "-r", "-z", "--name-only", "HEAD"])
        .context("grade-class builds in the committed course, and needs a git checkout of it")?;
    let paths: Vec<&str> = committed
        .split('\0')
        .filter(|path| !path.is_empty() && !crate::dist::left_out(path))
        .collect();
    std::fs::create_dir_all(dir)?;
    export_committed(&root, &paths, dir)
}

/// Builds the stubs of `labs` in `course` into `seed` (the course's own
/// files only, so the registry may be used), then removes every lab crate's
/// fingerprint from it: a copy of the seed has the dependencies built, and
/// cargo can only build a lab crate afresh in it.
fn build_seed(course: &Path, labs: &[&'static Lab], seed: &Path) -> Result<()> {
    for lab in labs {
        builder::build_crate(&BuildSpec {
            lab,
            workspace_manifest: course.join("Cargo.toml"),
            crate_dir: course.join(lab.student_dir()),
            crate_name: format!("the course's {}", lab.student_dir()),
            target_dir: Some(seed.to_path_buf()),
            output: CompilerOutput::Capture,
            sealed: None,
        })
        .map_err(anyhow::Error::msg)
        .context("building the dependencies")?;
    }
    let fingerprints = seed.join("debug/.fingerprint");
    for entry in std::fs::read_dir(&fingerprints)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let of_a_lab = grader::LABS.iter().any(|lab| {
            std::iter::once(lab.package)
                .chain(lab.grader_tests)
                .any(|package| name.starts_with(&format!("{package}-")))
        });
        if of_a_lab {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Takes and builds every (submission, lab) crate; returns the binaries
/// (copied out of the submission's target dir, which is then removed) or
/// why they are missing. Where the sources are is looked up first: when no
/// submission holds any, nothing is built at all.
fn build_all(
    submissions: &[Submission],
    labs: &[&'static Lab],
    work: &Path,
    build_timeout: Duration,
) -> Result<Vec<Built>> {
    let sources: Vec<Vec<Result<PathBuf, NotTaken>>> = submissions
        .iter()
        .map(|submission| {
            labs.iter()
                .map(|lab| {
                    if submission.symlink {
                        Err(NotTaken {
                            why: NotGraded::SymbolicLink,
                            message: NotGraded::SymbolicLink.reason().to_owned(),
                        })
                    } else {
                        crate::intake::find_sources(&submission.path, lab)
                    }
                })
                .collect()
        })
        .collect();
    let template = work.join("course");
    // Kept across runs in the course's target/: the dependencies build once.
    let seed = workspace_root().join("target/grade-class/seed");
    let mut _seed_lock = None;
    if sources.iter().flatten().any(Result::is_ok) {
        fresh_course(&template)?;
        // One grade-class at a time builds in it or copies it (two at once,
        // as tests or a bench beside a class, would copy files cargo is
        // writing).
        _seed_lock = Some(lock_exclusively(&seed.with_extension("lock"))?);
        build_seed(&template, labs, &seed)?;
    }
    let mut built = Vec::new();
    for (index, (submission, sources)) in submissions.iter().zip(sources).enumerate() {
        let student = &submission.student;
        let course = work.join("submissions").join(index.to_string());
        let target = work.join("target");
        let mut course_ready = false;
        for (lab, src) in labs.iter().zip(sources) {
            let progress = format!(
                "{}/{}] {student} {}",
                index + 1,
                submissions.len(),
                lab.name()
            );
            let src = match src {
                Ok(src) => src,
                Err(not_taken) => {
                    eprintln!("[intake {progress}: {}", not_taken.why);
                    built.push(Built::not_graded(student, lab, not_taken));
                    continue;
                }
            };
            if !course_ready {
                copy_tree(&template, &course, &[])?;
                copy_with_times(&seed, &target)?;
                course_ready = true;
            }
            eprintln!("[build {progress}");
            let crate_dir = course.join(lab.student_dir());
            let notes = match crate::intake::take_from(&src, &crate_dir) {
                Ok(notes) => notes,
                Err(not_taken) => {
                    built.push(Built::not_graded(student, lab, not_taken));
                    continue;
                }
            };
            let spec = BuildSpec {
                lab,
                workspace_manifest: course.join("Cargo.toml"),
                crate_dir,
                crate_name: format!("{student}/{}", lab.student_dir()),
                target_dir: Some(target.clone()),
                output: CompilerOutput::Capture,
                sealed: Some(build_timeout),
            };
            let binaries = builder::build_crate(&spec)
                .and_then(|binaries| keep_binaries(binaries, &course.join("bin").join(lab.slug)));
            built.push(Built {
                student: student.clone(),
                lab,
                state: if binaries.is_ok() {
                    SubmissionState::Graded
                } else {
                    SubmissionState::DidNotCompile
                },
                binaries,
                notes,
            });
        }
        if course_ready {
            std::fs::remove_dir_all(&target)?;
        }
    }
    Ok(built)
}

/// Holds an exclusive `flock(2)` on `path` (made if missing) until the
/// returned file is dropped, waiting for any other holder.
fn lock_exclusively(path: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
}

/// Copies the seed target dir keeping modification times: cargo rebuilds a
/// dependency whose own dependencies' outputs look newer than it.
fn copy_with_times(seed: &Path, target: &Path) -> Result<()> {
    let status = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(seed)
        .arg(target)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!("copying {} failed ({status})", seed.display());
    }
    Ok(())
}

/// Copies executables (and the grader's tests built against the crate) out
/// of the submission's target dir, which is removed after its build.
fn keep_binaries(binaries: Binaries, dir: &Path) -> Result<Binaries, String> {
    std::fs::create_dir_all(dir).map_err(|err| err.to_string())?;
    let keep = |path: &Path| -> Result<PathBuf, String> {
        let copy = dir.join(path.file_name().unwrap_or_default());
        std::fs::copy(path, &copy).map_err(|err| format!("copying {}: {err}", path.display()))?;
        Ok(copy)
    };
    let mut kept = Binaries {
        origin: binaries.origin.clone(),
        crate_dir: binaries.crate_dir.clone(),
        ..Binaries::default()
    };
    for (name, path) in &binaries.paths {
        kept.paths.insert(name.clone(), keep(path)?);
    }
    kept.tests = match binaries.tests {
        Some(Ok(tests)) => Some(keep(&tests)),
        other => other,
    };
    Ok(kept)
}

/// Grades every submission in `dir` with `options` (one seed for all).
pub fn grade_class(
    dir: &Path,
    labs: &[&'static Lab],
    jobs: usize,
    build_timeout: Duration,
    options: &Options,
) -> Result<Vec<Graded>> {
    let submissions = submissions(dir)?;
    if submissions.is_empty() {
        bail!("{} holds no submission directories", dir.display());
    }
    let work = tempfile::Builder::new().prefix("grade-class-").tempdir()?;
    let built = build_all(&submissions, labs, work.path(), build_timeout)?;
    let total = built.len();
    let queue = Mutex::new(built.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((index, built)) =
                        queue.lock().unwrap_or_else(|p| p.into_inner()).pop()
                    else {
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
                    eprintln!(
                        "[grade {}/{total}] {student} {}: {}/{} ({:.1} s)",
                        total - index,
                        report.lab,
                        report.score,
                        report.max_score,
                        report.duration.as_secs_f64()
                    );
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Graded {
                            student,
                            report,
                            state,
                        });
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by(|a, b| (&a.student, &a.report.lab).cmp(&(&b.student, &b.report.lab)));
    Ok(results)
}

/// The CSV: one row per (student, lab).
pub fn csv(results: &[Graded]) -> String {
    grader::render::csv::grades(
        results
            .iter()
            .map(|graded| (graded.student.as_str(), &graded.report)),
    )
}

/// The class's pages in `dir`: the dashboard `report.html`, and for each
/// student `report-STEM.html` (STEM from [`page_stems`]), the page
/// `grade --html` writes, linking back to the dashboard. Files, not a
/// folder: every folder of `dir` is a submission.
pub fn write_pages(dir: &Path, results: &[Graded], handouts: Option<&str>) -> Result<PathBuf> {
    use grader::render::{dashboard, html};
    let (handouts, book) = match handouts {
        Some(url) if url.ends_with('/') => (url.to_owned(), true),
        Some(url) => (format!("{url}/"), true),
        None => crate::book::local_links(),
    };
    let mut by_student: BTreeMap<&str, Vec<&LabReport>> = BTreeMap::new();
    for graded in results {
        by_student
            .entry(&graded.student)
            .or_default()
            .push(&graded.report);
    }
    let pages: Vec<(String, String)> = page_stems(by_student.keys().copied())
        .into_iter()
        .map(|stem| {
            let file = format!("report-{stem}.html");
            (html::url_path(&file), file)
        })
        .collect();
    for ((student, reports), (_, file)) in by_student.iter().zip(&pages) {
        let page = html::page(
            reports.iter().copied(),
            html::Links {
                handouts: &handouts,
                book,
                up: Some(("report.html", "the class report")),
            },
        );
        let path = dir.join(file);
        crate::files::write_atomically(&path, page.as_bytes())
            .with_context(|| format!("writing the page of {student}"))?;
    }
    let students: Vec<dashboard::Student> = by_student
        .iter()
        .zip(&pages)
        .map(|((name, reports), (href, _))| dashboard::Student {
            name,
            page: href,
            reports: reports.clone(),
        })
        .collect();
    let path = dir.join("report.html");
    let page = dashboard::page(
        &students,
        html::Links {
            handouts: &handouts,
            book,
            up: None,
        },
    );
    crate::files::write_atomically(&path, page.as_bytes())?;
    Ok(path)
}

/// The stem of each student's page, in the order of `students`: a readable
/// prefix of the name and a hash of it, so that a name of any length makes
/// a file name well under the 255-byte limit and two students never share
/// a page (`bob\xff` and `bob\xfe` included).
pub fn page_stems<'a>(students: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    grader::untrusted::unique_file_stems(students)
}

/// `cargo xtask grade-class`: exit 0 when every submission was graded (a
/// program that did not compile included), 1 when some could not be (see
/// [`NotGraded`]), 2 for a usage error.
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
    let labs = args.lab.labs();
    let options = args.run.grader_options("class");
    let seed = options.seed;
    let results = grade_class(
        &args.submissions,
        &labs,
        args.jobs,
        Duration::from_secs(args.build_timeout),
        &options,
    )?;
    let csv_path = args
        .csv
        .clone()
        .unwrap_or_else(|| args.submissions.join("grades.csv"));
    std::fs::write(&csv_path, csv(&results))
        .with_context(|| format!("writing {}", csv_path.display()))?;
    let dashboard = write_pages(&args.submissions, &results, args.handouts.as_deref())?;
    let mut per_student: BTreeMap<&str, (u32, u32, Vec<String>)> = BTreeMap::new();
    for graded in &results {
        let entry = per_student.entry(&graded.student).or_default();
        entry.0 += graded.report.score;
        entry.1 += graded.report.max_score;
        if let SubmissionState::NotGraded(why) = graded.state {
            entry.2.push(format!("{} {why}", graded.report.lab));
        }
    }
    // Names are in the notation of `grader::untrusted::name`: no control
    // character of a folder's name reaches the terminal.
    println!("{:<24} {:>9}", "student", "total");
    for (student, (score, max, not_graded)) in &per_student {
        let total = format!("{score}/{max}");
        if not_graded.is_empty() {
            println!("{student:<24} {total:>9}");
        } else {
            println!("{student:<24} {total:>9}  {}", not_graded.join("; "));
        }
    }
    let not_graded = per_student
        .values()
        .filter(|(_, _, not_graded)| !not_graded.is_empty())
        .count();
    println!(
        "\n{} submissions, {} lab grades in {:.1} s (seed {seed}); CSV: {}; class report: {} (a page per student beside it)",
        per_student.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        csv_path.display(),
        dashboard.display()
    );
    if not_graded > 0 {
        println!(
            "{not_graded} submission(s) could not be graded in full: their rows say why (exit code 1)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use grader::{Lab, Options};

    use super::{csv, grade_class};
    use crate::options::RunOptions;
    use crate::seeded_class::{BUILD_TIMEOUT, KINDS, grade_seeded_class, make_submissions};

    /// Every seeded bug scores what it predicts, whichever way the
    /// submission is laid out; every file has an old modification time and
    /// the untouched stub comes right after the correct solution, so each
    /// submission must get executables of its own. The build that hangs
    /// gets a row that says so, and the rows after it are still right.
    #[test]
    fn every_seeded_bug_scores_what_it_predicts() {
        if !crate::files::has_solutions("every_seeded_bug_scores_what_it_predicts") {
            return;
        }
        let run = grade_seeded_class(KINDS, 2, &RunOptions::default()).unwrap();
        assert!(run.wrong.is_empty(), "{}", run.wrong.join("\n"));
        assert_eq!(run.csv_rows, KINDS);
    }

    /// The same class graded twice with the same seed gets the same rows.
    #[test]
    fn grading_a_class_twice_with_one_seed_gives_the_same_grades() {
        if !crate::files::has_solutions("grading_a_class_twice_with_one_seed_gives_the_same_grades")
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        make_submissions(dir.path(), 3).unwrap();
        let grade = || {
            grade_class(
                dir.path(),
                &[Lab::find("echo").unwrap()],
                2,
                BUILD_TIMEOUT,
                &Options {
                    seed: 11,
                    ..Options::default()
                },
            )
            .unwrap()
        };
        let rows =
            |results: &[super::Graded]| csv(results).lines().map(str::to_owned).collect::<Vec<_>>();
        let results = grade();
        let first = rows(&results);
        assert_eq!(first.len(), 4, "{first:#?}");
        assert_eq!(first, rows(&grade()));

        // The class's pages: the dashboard links every student's page.
        // --handouts is a hosted copy of the book: its pages are SLUG.html.
        let url = "https://example.edu/socket-labs/book";
        let dashboard = super::write_pages(dir.path(), &results, Some(url)).unwrap();
        let dashboard = std::fs::read_to_string(dashboard).unwrap();
        assert!(dashboard.contains("href=\"https://example.edu/socket-labs/book/echo.html#"));
        let students: Vec<&str> = results
            .iter()
            .map(|graded| graded.student.as_str())
            .collect();
        let mut students = students;
        students.dedup();
        for (student, stem) in students
            .iter()
            .zip(super::page_stems(students.iter().copied()))
        {
            let page = dir.path().join(format!("report-{stem}.html"));
            let page = std::fs::read_to_string(&page).unwrap();
            assert!(page.contains("href=\"report.html\""), "{student}");
            assert!(dashboard.contains(&format!("href=\"report-{stem}.html\"")));
        }
    }
}
