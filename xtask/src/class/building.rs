//! Building a class: the dependencies once, into a seed target dir; then
//! each submission's labs, in a copy of the committed course and of the
//! seed of its own, sealed and under a time limit; the executables kept,
//! the target dir removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use grader::Lab;
use grader::builder::{self, BuildSpec, CompilerOutput, workspace_root};
use grader::harness::Binaries;
use grader::outcome::SubmissionState;
use grader::sync::Unpoison;

use super::grading::Plan;
use super::submissions::{Sources, Submission, locate};
use crate::files::{copy_tree, export_committed, git};
use crate::intake::NotTaken;

/// A submission's lab, ready to grade: its binaries, or why there are none.
#[derive(Debug)]
pub(super) struct Built {
    pub(super) student: String,
    pub(super) lab: &'static Lab,
    pub(super) binaries: Result<Binaries, String>,
    pub(super) state: SubmissionState,
    /// What the intake left out.
    pub(super) notes: Vec<String>,
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
pub(super) fn fresh_course(dir: &Path) -> Result<()> {
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
pub(super) fn build_seed(course: &Path, labs: &[&'static Lab], seed: &Path) -> Result<()> {
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

/// Takes and builds every (submission, lab) crate, `jobs` submissions at a
/// time, each in its own copy of the course and of the dependency seed;
/// returns, in the order of `submissions`, the binaries (copied out of the
/// submission's target dir, which is then removed) or why they are missing.
/// Every build has ended when it returns: no check runs beside a build.
/// Where the sources are is looked up first: when no submission holds any,
/// nothing is built at all.
pub(super) fn build_all(
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
pub(super) struct BuildContext<'a> {
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
pub(super) fn build_submission(
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
pub(super) fn without_work_paths(
    message: &str,
    course: &Path,
    target: &Path,
    work: &Path,
) -> String {
    message
        .replace(&format!("{}/", course.display()), "")
        .replace(&course.display().to_string(), ".")
        .replace(&target.display().to_string(), "target")
        .replace(&work.display().to_string(), "…")
}

/// Holds an exclusive `flock(2)` on `path` (made if missing) until the
/// returned file is dropped, waiting for any other holder.
pub(super) fn lock_exclusively(path: &Path) -> Result<std::fs::File> {
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
pub(super) fn copy_with_times(seed: &Path, target: &Path) -> Result<()> {
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
pub(super) fn keep_binaries(binaries: Binaries, dir: &Path) -> Result<Binaries, String> {
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
