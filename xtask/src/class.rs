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

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
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
use serde::{Deserialize, Serialize};

use crate::files::{copy_tree, export_committed, git};
use crate::grade::{Selection, parse_selection};
use crate::intake::NotTaken;
use crate::options::RunOptions;
use grader::sync::Unpoison;

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

/// One submission folder of the class.
#[derive(Debug)]
struct Submission {
    /// The folder's name, as [`grader::untrusted::name`] shows it (or its
    /// pseudonym, with `--anonymise`).
    student: String,
    /// The folder's name.
    raw: OsString,
    /// The folder.
    path: PathBuf,
    /// Whether the folder is a symbolic link to a folder (not followed).
    symlink: bool,
}

/// The submissions in `dir`, sorted by name: its folders, and its symbolic
/// links to folders, which are listed to be reported, not followed. Files
/// beside them (`grades.csv`, the pages) are not submissions.
fn submissions(dir: &Path, anonymise: Option<&[u8; 16]>) -> Result<Vec<Submission>> {
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
            let student = match anonymise {
                Some(salt) => pseudonym(salt, entry.file_name().as_encoded_bytes()),
                None => grader::untrusted::name(&entry.file_name()),
            };
            found.push(Submission {
                student,
                raw: entry.file_name(),
                path: entry.path(),
                symlink,
            });
        }
    }
    found.sort_by(|a, b| a.student.cmp(&b.student));
    Ok(found)
}

/// The submissions `only` names, in the order of `submissions`: each name
/// matches a folder's name byte for byte or, failing that, as
/// [`grader::untrusted::name`] shows it (`bob\xff`). A name that matches
/// no folder is an error.
fn select(submissions: Vec<Submission>, only: &[OsString], dir: &Path) -> Result<Vec<Submission>> {
    let mut wanted = BTreeSet::new();
    for name in only {
        let found = submissions
            .iter()
            .position(|submission| submission.raw == *name)
            .or_else(|| {
                let raw = grader::untrusted::name_bytes(name.to_str()?)?;
                submissions
                    .iter()
                    .position(|submission| submission.raw == raw)
            });
        match found {
            Some(index) => {
                wanted.insert(index);
            }
            None => bail!(
                "--only {}: no submission folder of that name in {}",
                grader::untrusted::name(name),
                dir.display()
            ),
        }
    }
    Ok(submissions
        .into_iter()
        .enumerate()
        .filter(|(index, _)| wanted.contains(index))
        .map(|(_, submission)| submission)
        .collect())
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

/// Where a submission's sources of a lab are, and what to note about
/// them, or why they are not taken.
type Sources = Result<(PathBuf, Vec<String>), NotTaken>;

/// Finds the sources of `lab` in `submission`: of a lab found more than
/// once, the one copy `prefer` matches, or else an error that lists the
/// copies and says how to choose.
fn locate(submission: &Submission, lab: &'static Lab, prefer: Option<&str>) -> Sources {
    if submission.symlink {
        return Err(NotTaken {
            why: NotGraded::SymbolicLink,
            message: NotGraded::SymbolicLink.reason().to_owned(),
        });
    }
    match crate::intake::find_sources(&submission.path, lab) {
        Ok(src) => Ok((src, Vec::new())),
        Err(mut not_taken) if not_taken.why == NotGraded::FoundTwice => {
            let found = crate::intake::find_all_sources(&submission.path, lab);
            let shown = |dir: &PathBuf| crate::intake::relative(dir, &submission.path);
            if let Some(glob) = prefer {
                let matching: Vec<&PathBuf> = found
                    .iter()
                    .filter(|dir| path_glob_matches(glob, shown(dir).trim_end_matches('/')))
                    .collect();
                if let [chosen] = matching.as_slice() {
                    let others: Vec<String> = found
                        .iter()
                        .filter(|dir| dir != chosen)
                        .map(shown)
                        .collect();
                    let note = format!(
                        "{lab} is in the submission more than once: took {} (--prefer {}), left out {}",
                        shown(chosen),
                        grader::untrusted::terminal(glob),
                        others.join(", ")
                    );
                    return Ok(((*chosen).clone(), vec![note]));
                }
                not_taken.message.push_str(&format!(
                    "; --prefer {} matches {} of them, not one",
                    grader::untrusted::terminal(glob),
                    matching.len()
                ));
            }
            not_taken.message.push_str(
                "; say which to grade with --prefer PATH-GLOB (e.g. --prefer 'labs/*'), and regrade",
            );
            Err(not_taken)
        }
        Err(not_taken) => Err(not_taken),
    }
}

/// Whether `glob` matches the leading folders of `path` (`labs/echo/src`):
/// `*` and `?` within one name, `**` for any number of folders. `labs`,
/// `labs/*` and `**/labs` all match `labs/echo/src`; `old*` matches
/// `old-backup/echo/src`.
pub fn path_glob_matches(glob: &str, path: &str) -> bool {
    fn name_matches(glob: &[char], name: &[char]) -> bool {
        match (glob.first(), name.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                name_matches(&glob[1..], name)
                    || (!name.is_empty() && name_matches(glob, &name[1..]))
            }
            (Some('?'), Some(_)) => name_matches(&glob[1..], &name[1..]),
            (Some(g), Some(n)) if g == n => name_matches(&glob[1..], &name[1..]),
            _ => false,
        }
    }
    fn leading(globs: &[Vec<char>], names: &[Vec<char>]) -> bool {
        let Some((first, rest)) = globs.split_first() else {
            return true;
        };
        if first.iter().collect::<String>() == "**" {
            return (0..=names.len()).any(|skip| leading(rest, &names[skip..]));
        }
        names
            .split_first()
            .is_some_and(|(name, names)| name_matches(first, name) && leading(rest, names))
    }
    let split = |text: &str| -> Vec<Vec<char>> {
        text.split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .map(|part| part.chars().collect())
            .collect()
    };
    leading(&split(glob), &split(path))
}

/// The labs to grade when none was named: those that some submission
/// holds (once, or more than once), in lab order; every lab of the course
/// when none holds any (each row then says what was not found). Returns
/// them with how many submissions hold each.
fn labs_found(submissions: &[Submission]) -> Vec<(&'static Lab, usize)> {
    let present = Selection::All.labs();
    let found: Vec<(&'static Lab, usize)> = present
        .iter()
        .map(|lab| {
            let holding = submissions
                .iter()
                .filter(|submission| {
                    !submission.symlink
                        && !crate::intake::find_all_sources(&submission.path, lab).is_empty()
                })
                .count();
            (*lab, holding)
        })
        .filter(|(_, holding)| *holding > 0)
        .collect();
    if found.is_empty() {
        present.into_iter().map(|lab| (lab, 0)).collect()
    } else {
        found
    }
}

/// Takes and builds every (submission, lab) crate, `jobs` submissions at a
/// time, each in its own copy of the course and of the dependency seed;
/// returns, in the order of `submissions`, the binaries (copied out of the
/// submission's target dir, which is then removed) or why they are missing.
/// Every build has ended when it returns: no check runs beside a build.
/// Where the sources are is looked up first: when no submission holds any,
/// nothing is built at all.
fn build_all(
    submissions: &[Submission],
    labs: &[&'static Lab],
    plan: &Plan,
    work: &Path,
) -> Result<Vec<Built>> {
    let sources: Vec<Vec<Sources>> = submissions
        .iter()
        .map(|submission| {
            labs.iter()
                .map(|lab| locate(submission, lab, plan.prefer))
                .collect()
        })
        .collect();
    let template = work.join("course");
    // Kept across runs in the course's target dir (`CARGO_TARGET_DIR` when
    // set, as cargo does): the dependencies build once.
    let seed = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("grade-class/seed");
    let mut _seed_lock = None;
    if sources.iter().flatten().any(Result::is_ok) {
        fresh_course(&template)?;
        // One grade-class at a time builds in it or copies it (two at once,
        // as tests or a bench beside a class, would copy files cargo is
        // writing).
        _seed_lock = Some(lock_exclusively(&seed.with_extension("lock"))?);
        build_seed(&template, labs, &seed)?;
    }
    let context = BuildContext {
        labs,
        template: &template,
        seed: &seed,
        work,
        build_timeout: plan.build_timeout,
        total: submissions.len(),
        started: std::sync::atomic::AtomicUsize::new(0),
    };
    let queue = Mutex::new(
        submissions
            .iter()
            .zip(sources)
            .enumerate()
            .rev()
            .collect::<Vec<_>>(),
    );
    let built: Mutex<Vec<(usize, Result<Vec<Built>>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.clamp(1, submissions.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let Some((index, (submission, sources))) = queue.lock().unpoison().pop() else {
                        return;
                    };
                    let result = build_submission(&context, index, submission, sources);
                    built.lock().unpoison().push((index, result));
                }
            });
        }
    });
    let mut built = built.into_inner().unpoison();
    built.sort_by_key(|(index, _)| *index);
    let mut all = Vec::new();
    for (_, result) in built {
        all.extend(result?);
    }
    Ok(all)
}

/// What every submission's build shares.
struct BuildContext<'a> {
    labs: &'a [&'static Lab],
    template: &'a Path,
    seed: &'a Path,
    work: &'a Path,
    build_timeout: Duration,
    total: usize,
    /// How many submissions have started building, for the progress lines.
    started: std::sync::atomic::AtomicUsize,
}

/// Takes and builds the labs of one submission, in a copy of the course and
/// of the seed of its own (`work/submissions/INDEX`, `work/targets/INDEX`).
fn build_submission(
    context: &BuildContext,
    index: usize,
    submission: &Submission,
    sources: Vec<Sources>,
) -> Result<Vec<Built>> {
    let number = context
        .started
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let student = &submission.student;
    let course = context.work.join("submissions").join(index.to_string());
    let target = context.work.join("targets").join(index.to_string());
    let mut course_ready = false;
    let mut built = Vec::new();
    for (lab, src) in context.labs.iter().zip(sources) {
        let progress = format!("{number}/{}] {student} {}", context.total, lab.name());
        let (src, mut notes) = match src {
            Ok(found) => found,
            Err(not_taken) => {
                eprintln!("[intake {progress}: {}", not_taken.why);
                built.push(Built::not_graded(student, lab, not_taken));
                continue;
            }
        };
        if !course_ready {
            copy_tree(context.template, &course, &[])?;
            std::fs::create_dir_all(target.parent().expect("has a parent"))?;
            copy_with_times(context.seed, &target)?;
            course_ready = true;
        }
        eprintln!("[build {progress}");
        let crate_dir = course.join(lab.student_dir());
        match crate::intake::take_from(&src, &crate_dir) {
            Ok(taken) => notes.extend(taken),
            Err(not_taken) => {
                built.push(Built::not_graded(student, lab, not_taken));
                continue;
            }
        }
        // Graded like any other, and labelled: the sources are the
        // committed stub, byte for byte.
        let untouched =
            crate::files::same_files(&src, &context.template.join(lab.student_dir()).join("src"));
        let spec = BuildSpec {
            lab,
            workspace_manifest: course.join("Cargo.toml"),
            crate_dir,
            crate_name: format!("{student}/{}", lab.student_dir()),
            target_dir: Some(target.clone()),
            output: CompilerOutput::Capture,
            sealed: Some(context.build_timeout),
        };
        let binaries = builder::build_crate(&spec)
            .and_then(|binaries| keep_binaries(binaries, &course.join("bin").join(lab.slug)))
            .map_err(|message| without_work_paths(&message, &course, &target, context.work));
        built.push(Built {
            student: student.clone(),
            lab,
            state: match (&binaries, untouched) {
                (Err(_), _) => SubmissionState::DidNotCompile,
                (Ok(_), true) => SubmissionState::UntouchedStub,
                (Ok(_), false) => SubmissionState::Graded,
            },
            binaries,
            notes,
        });
    }
    if course_ready {
        std::fs::remove_dir_all(&target)?;
    }
    Ok(built)
}

/// `message` (the compiler's) without this grading's temporary folders,
/// which mean nothing to a student and are gone when the pages are read:
/// paths in the submission's copy of the course are the course's
/// (`labs/echo/src/main.rs`), its target dir is `target`, and anything
/// else of the work folder is `…`.
fn without_work_paths(message: &str, course: &Path, target: &Path, work: &Path) -> String {
    message
        .replace(&format!("{}/", course.display()), "")
        .replace(&course.display().to_string(), ".")
        .replace(&target.display().to_string(), "target")
        .replace(&work.display().to_string(), "…")
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
        // Reports name the program as the student runs it in a clone, not
        // by this grading's temporary folder.
        kept.shown
            .insert(name.clone(), Path::new("target/debug").join(name));
    }
    kept.tests = match binaries.tests {
        Some(Ok(tests)) => Some(keep(&tests)),
        other => other,
    };
    Ok(kept)
}

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

/// A student's stable pseudonym under `salt`: `anon-` and 16 hex digits of
/// the keyed SipHash-2-4 of the folder name's bytes. The same name and salt
/// give the same pseudonym run after run; without the salt, names cannot
/// be recovered by hashing a list of guesses.
pub fn pseudonym(salt: &[u8; 16], name: &[u8]) -> String {
    format!("anon-{:016x}", siphash24(salt, name))
}

/// The salt of `--anonymise` for the class in `dir`: read from
/// `dir/.grade-class-salt`, or made (16 random bytes) and kept there, so
/// that a regrade gives every student the same pseudonym.
pub fn salt_of(dir: &Path) -> Result<[u8; 16]> {
    use std::io::Read as _;
    let path = dir.join(".grade-class-salt");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(salt) = <[u8; 16]>::try_from(bytes.as_slice()) {
            return Ok(salt);
        }
        bail!(
            "{} is not 16 bytes: remove it to make a new salt (every pseudonym changes)",
            path.display()
        );
    }
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut salt))
        .context("reading /dev/urandom")?;
    crate::files::write_atomically(&path, &salt)?;
    Ok(salt)
}

/// SipHash-2-4 of `data` under the 128-bit `key` (Aumasson and Bernstein's
/// reference algorithm).
fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
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
/// `grade --html` writes, linking back to the dashboard beside it. Files,
/// not a folder: every folder of `dir` is a submission. Without
/// `handouts`, the handout links are relative to `dir` where they can be
/// ([`crate::book::links_from`]). With `only`, of the students' pages only
/// theirs are written (the dashboard always is).
pub fn write_pages(
    dir: &Path,
    results: &[Graded],
    handouts: Option<&str>,
    only: Option<&BTreeSet<String>>,
) -> Result<PathBuf> {
    use grader::render::{dashboard, html};
    let (handouts, book) = match handouts {
        Some(url) if url.ends_with('/') => (url.to_owned(), true),
        Some(url) => (format!("{url}/"), true),
        None => crate::book::links_from(dir),
    };
    let by_student = by_student(results);
    let pages: Vec<(String, String)> = page_stems(by_student.keys().copied())
        .into_iter()
        .map(|stem| {
            let file = format!("report-{stem}.html");
            (html::url_path(&file), file)
        })
        .collect();
    for ((student, reports), (_, file)) in by_student.iter().zip(&pages) {
        if only.is_some_and(|only| !only.contains(*student)) {
            continue;
        }
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

/// The file, in the class's folder, that keeps what its outputs are made
/// from.
pub const CLASS_FILE: &str = "grades.json";

/// What `grade-class` keeps beside its outputs, in `SUBMISSIONS/grades.json`:
/// the class's grades as data (every report, as `grade --format json`
/// writes it), and what `--only` rebuilds the CSV and the class report from
/// when it regrades some students.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClassFile {
    /// The seed every student was graded with.
    pub seed: u64,
    /// The labs of the class (`lab1` …), each student's graded in each.
    pub labs: Vec<String>,
    /// Whether the names are pseudonyms (`--anonymise`).
    pub anonymised: bool,
    /// `--handouts`, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handouts: Option<String>,
    /// `--csv`, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// Every student, by name.
    pub students: Vec<StudentGrades>,
}

/// One student's grades in [`ClassFile`].
#[derive(Debug, Serialize, Deserialize)]
pub struct StudentGrades {
    /// The folder's name, as the CSV shows it (or its pseudonym).
    pub student: String,
    /// A report per lab.
    pub reports: Vec<LabReport>,
}

impl ClassFile {
    /// The class file of `results`.
    fn of(results: &[Graded], labs: &[&'static Lab], seed: u64, args: &ClassArgs) -> Self {
        let mut students: Vec<StudentGrades> = Vec::new();
        for graded in results {
            match students.last_mut() {
                Some(last) if last.student == graded.student => {
                    last.reports.push(graded.report.clone());
                }
                _ => students.push(StudentGrades {
                    student: graded.student.clone(),
                    reports: vec![graded.report.clone()],
                }),
            }
        }
        Self {
            seed,
            labs: labs.iter().map(|lab| lab.name()).collect(),
            anonymised: args.anonymise,
            handouts: args.handouts.clone(),
            csv: args
                .csv
                .as_ref()
                .map(|csv| std::path::absolute(csv).unwrap_or(csv.clone())),
            students,
        }
    }

    /// The class file of the class in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CLASS_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
                "--only regrades a class graded before, and {} is not there: grade the whole class first",
                path.display()
            ),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "reading {}: regrade the whole class to write it afresh",
                path.display()
            )
        })
    }

    /// Writes it into `dir`, in one rename.
    fn save(&self, dir: &Path) -> Result<()> {
        crate::files::write_atomically(&dir.join(CLASS_FILE), &serde_json::to_vec(self)?)
    }

    /// The class's labs.
    fn class_labs(&self) -> Result<Vec<&'static Lab>> {
        self.labs
            .iter()
            .map(|name| {
                Lab::find(name).with_context(|| {
                    format!("{CLASS_FILE} names a lab `{name}` this course has not")
                })
            })
            .collect()
    }

    /// Its rows.
    fn graded(&self) -> Vec<Graded> {
        self.students
            .iter()
            .flat_map(|student| {
                student.reports.iter().map(|report| Graded {
                    student: student.student.clone(),
                    report: report.clone(),
                    state: report.state,
                })
            })
            .collect()
    }
}

/// The rows of `kept`, less those (student, lab) that `fresh` has anew,
/// and those of `fresh`, sorted.
fn merge(kept: Vec<Graded>, fresh: Vec<Graded>) -> Vec<Graded> {
    let anew: BTreeSet<(String, String)> = fresh
        .iter()
        .map(|graded| (graded.student.clone(), graded.report.lab.clone()))
        .collect();
    let mut all: Vec<Graded> = kept
        .into_iter()
        .filter(|graded| !anew.contains(&(graded.student.clone(), graded.report.lab.clone())))
        .chain(fresh)
        .collect();
    all.sort_by(|a, b| (&a.student, &a.report.lab).cmp(&(&b.student, &b.report.lab)));
    all
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

/// Prints a line per student of `results` with their total, and a line on
/// the grade; returns how many students were not graded in full.
fn print_summary(
    results: &[Graded],
    labs: &[(&'static Lab, Option<usize>)],
    labs_found: bool,
    started: Instant,
    seed: u64,
) -> usize {
    let mut per_student: BTreeMap<&str, (u32, u32, Vec<String>)> = BTreeMap::new();
    for graded in results {
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
    let graded_labs: Vec<String> = labs
        .iter()
        .map(|(lab, holding)| match holding {
            Some(holding) => format!("{lab}, held by {holding} of {}", per_student.len()),
            None => lab.to_string(),
        })
        .collect();
    println!(
        "\n{} submissions, {} lab grades in {:.1} s (seed {seed}); labs: {}{}",
        per_student.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        graded_labs.join("; "),
        if labs_found {
            " (the labs the submissions hold; --lab LAB grades another)"
        } else {
            ""
        }
    );
    per_student
        .values()
        .filter(|(_, _, not_graded)| !not_graded.is_empty())
        .count()
}

/// Who was not simply graded, and why, a line each, grouped by state
/// (not graded first, then did not compile, then untouched stubs); empty
/// when every lab was graded.
pub fn closing_summary(results: &[Graded]) -> String {
    let mut by_state: BTreeMap<SubmissionState, Vec<&Graded>> = BTreeMap::new();
    for graded in results {
        if graded.report.state != SubmissionState::Graded {
            by_state
                .entry(graded.report.state)
                .or_default()
                .push(graded);
        }
    }
    let mut out = String::new();
    let order = |state: &SubmissionState| match state {
        SubmissionState::NotGraded(_) => 0,
        SubmissionState::DidNotCompile => 1,
        _ => 2,
    };
    let mut states: Vec<_> = by_state.into_iter().collect();
    states.sort_by_key(|(state, _)| order(state));
    for (state, rows) in states {
        out.push_str(&format!("\n{} ({}):\n", state.label(), rows.len()));
        for graded in rows {
            let why = grader::render::LabView::of(&graded.report)
                .reason()
                .and_then(|reason| reason.lines().next().map(str::to_owned))
                .unwrap_or_default();
            let why = grader::untrusted::terminal(&why);
            let why = grader::render::bounded(&why, 160);
            out.push_str(&format!(
                "  {} {}: {why}\n",
                graded.student, graded.report.lab
            ));
        }
    }
    out
}

/// Each student's reports, by name in order.
fn by_student(results: &[Graded]) -> BTreeMap<&str, Vec<&LabReport>> {
    let mut by_student: BTreeMap<&str, Vec<&LabReport>> = BTreeMap::new();
    for graded in results {
        by_student
            .entry(&graded.student)
            .or_default()
            .push(&graded.report);
    }
    by_student
}

/// The wide CSV (`--wide`): a row per student; for each lab its state and
/// score, then a column per check with the points it earned, headed by the
/// check's id and what it is out of (`echo.hello (6)`), for gradebook
/// imports (Canvas, Moodle).
pub fn wide_csv(results: &[Graded]) -> String {
    use grader::untrusted::csv_cell;
    let mut columns: Vec<(String, Vec<(String, u32)>)> = Vec::new();
    for graded in results {
        if !columns.iter().any(|(lab, _)| *lab == graded.report.lab) {
            columns.push((
                graded.report.lab.clone(),
                graded
                    .report
                    .checks
                    .iter()
                    .map(|check| (check.id.clone(), check.max_points))
                    .collect(),
            ));
        }
    }
    columns.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = vec!["student".to_owned(), "total".to_owned(), "max".to_owned()];
    for (lab, checks) in &columns {
        header.push(format!("{lab} state"));
        header.push(format!("{lab} score"));
        header.extend(checks.iter().map(|(id, max)| format!("{id} ({max})")));
    }
    let mut out = header.join(",") + "\n";
    let by_student = by_student(results);
    for (student, reports) in by_student {
        let total: u32 = reports.iter().map(|report| report.score).sum();
        let max: u32 = reports.iter().map(|report| report.max_score).sum();
        let mut row = vec![csv_cell(student), total.to_string(), max.to_string()];
        for (lab, checks) in &columns {
            let report = reports.iter().find(|report| report.lab == *lab);
            row.push(report.map_or(String::new(), |report| report.state.key().to_owned()));
            row.push(report.map_or(String::new(), |report| report.score.to_string()));
            for (id, _) in checks {
                row.push(
                    report
                        .and_then(|report| report.check(id))
                        .map_or(String::new(), |check| check.points.to_string()),
                );
            }
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use grader::{Lab, Options};

    /// The reference vectors of SipHash-2-4 (key 00..0f, messages 00..).
    #[test]
    fn pseudonyms_are_siphash_keyed_by_the_salt_and_stable() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(super::siphash24(&key, b""), 0x726f_db47_dd0e_0e31);
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(super::siphash24(&key, &message), 0xa129_ca61_49be_45e5);
        let a = super::pseudonym(&key, b"ada");
        assert_eq!(a, super::pseudonym(&key, b"ada"));
        assert_ne!(a, super::pseudonym(&key, b"bob"));
        assert_ne!(a, super::pseudonym(&[0; 16], b"ada"));
        assert!(a.starts_with("anon-") && a.len() == 21, "{a}");
    }

    #[test]
    fn prefer_globs_match_the_leading_folders() {
        use super::path_glob_matches as matches;
        assert!(matches("labs", "labs/echo/src"));
        assert!(matches("labs/*", "labs/echo/src"));
        assert!(matches("labs/*/src", "labs/echo/src"));
        assert!(matches("**/labs", "Lab 1/labs/echo/src"));
        assert!(matches("old*", "old-backup/echo/src"));
        assert!(!matches("labs", "old-backup/echo/src"));
        assert!(!matches("labs/echo/src/bin", "labs/echo/src"));
        assert!(matches("l?bs", "labs/echo/src"));
    }

    use super::{csv, grade_class};
    use crate::options::RunOptions;
    use crate::seeded_class::{BUILD_TIMEOUT, KINDS, grade_seeded_class, make_submissions};

    /// Every seeded bug scores what it predicts, whichever way the
    /// submission is laid out; every file has an old modification time and
    /// the untouched stub comes right after the correct solution, so each
    /// submission must get executables of its own. The build that hangs
    /// gets a row that says so, and the rows after it are still right.
    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn every_seeded_bug_scores_what_it_predicts() {
        let run = grade_seeded_class(KINDS, 2, &RunOptions::default()).unwrap();
        assert!(run.wrong.is_empty(), "{}", run.wrong.join("\n"));
        assert_eq!(run.csv_rows, KINDS);
    }

    /// The same class graded twice with the same seed gets the same rows.
    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn grading_a_class_twice_with_one_seed_gives_the_same_grades() {
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
        let dashboard = super::write_pages(dir.path(), &results, Some(url), None).unwrap();
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
