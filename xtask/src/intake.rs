//! Taking a lab's sources from a submission, as students really upload it.
//!
//! A submission may be a clone of the course, a zip of `labs/`, a zip of the
//! lab's crate alone, any of these inside an extra parent folder, or `src/`
//! itself. The lab's sources are the folder that holds `bin/BINARY.rs` for a
//! binary of the lab's contract, at any depth. From it only regular files
//! are taken (no symlinks, nothing over the size caps): the course's own
//! Cargo files build them, so a submission's `Cargo.toml`, `build.rs` or
//! extra crates never come in. When nothing fits, the message says what was
//! expected and what the submission holds: never a silent 0.
//!
//! A submission's folder and file names are the student's: messages show
//! them in the lossless, control-free notation of
//! [`grader::untrusted::name`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use grader::Lab;
use grader::builder::workspace_root;
use grader::outcome::{NotGraded, SubmissionState};

use crate::grade::{Selection, parse_selection};

/// The largest source file taken.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most bytes taken from one lab's sources.
pub const MAX_TOTAL_BYTES: u64 = 8 << 20;
/// How deep in a submission the sources are looked for.
const MAX_DEPTH: usize = 8;
/// Folders never searched: build output, version control, macOS zip debris.
const NOT_SEARCHED: &[&str] = &["target", ".git", "__MACOSX", "node_modules"];

/// Arguments of `cargo xtask intake`.
#[derive(Debug, Args)]
pub struct IntakeArgs {
    /// The submission: a folder, however the student arranged it.
    submission: PathBuf,
    /// The labs to take (lab3, 3, multiconn, or all).
    #[arg(long, value_parser = parse_selection, default_value = "all")]
    lab: Selection,
    /// When no selected lab is in the submission, write a Gradescope
    /// results file to FILE (0 points, and what was expected and found).
    #[arg(long, value_name = "FILE")]
    gradescope: Option<PathBuf>,
}

/// Why a lab's sources were not taken from a submission: the state, and a
/// message that says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTaken {
    /// Which of the not-graded states it is.
    pub why: NotGraded,
    /// What was expected and what was found, in a sentence.
    pub message: String,
}

impl NotTaken {
    fn new(why: NotGraded, message: String) -> Self {
        Self { why, message }
    }
}

impl std::fmt::Display for NotTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What `intake` found of a lab, for the `grade` that follows it (the
/// Gradescope script runs one, then the other): a lab not found is
/// reported as not graded, not as a graded stub, and an untouched stub is
/// labelled. Kept in `target/intake/SLUG.state` with a digest of the
/// crate's `src/` as intake left it: once the sources change, it no longer
/// applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeState {
    /// What became of the lab.
    pub state: SubmissionState,
    /// Why it was not taken, when it was not.
    pub message: String,
}

impl IntakeState {
    fn path(root: &Path, lab: &Lab) -> PathBuf {
        root.join("target/intake")
            .join(format!("{}.state", lab.slug))
    }

    /// Records `state` for `lab`, with the digest of its `src/` now.
    pub fn save(root: &Path, lab: &Lab, state: SubmissionState, message: &str) -> Result<()> {
        let path = Self::path(root, lab);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let digest = crate::files::digest(&root.join(lab.student_dir()).join("src")).unwrap_or(0);
        let text = format!("{}\n{digest:016x}\n{message}", state.key());
        crate::files::write_atomically(&path, text.as_bytes())
    }

    /// What the last intake found of `lab`, if its `src/` is still as
    /// intake left it.
    pub fn load(root: &Path, lab: &Lab) -> Option<Self> {
        let text = std::fs::read_to_string(Self::path(root, lab)).ok()?;
        let mut lines = text.splitn(3, '\n');
        let state = SubmissionState::from_key(lines.next()?)?;
        let digest = u64::from_str_radix(lines.next()?, 16).ok()?;
        let now = crate::files::digest(&root.join(lab.student_dir()).join("src"))?;
        (digest == now).then(|| Self {
            state,
            message: lines.next().unwrap_or_default().to_owned(),
        })
    }
}

/// Where in `submission` the sources of `lab` are: the one folder holding
/// `bin/BINARY.rs` for a binary of the lab. The error says what was expected
/// and what was found.
pub fn find_sources(submission: &Path, lab: &Lab) -> Result<PathBuf, NotTaken> {
    let mut found = find_all_sources(submission, lab);
    let expected = format!(
        "a folder `src/` holding {} (as in `labs/{slug}/src/`, `{slug}/src/` or `src/`, at any depth)",
        lab.binaries
            .iter()
            .map(|name| format!("`bin/{name}.rs`"))
            .collect::<Vec<_>>()
            .join(" and "),
        slug = lab.slug
    );
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => match listing(submission) {
            None => Err(NotTaken::new(
                NotGraded::Empty,
                format!("no sources for {lab}: the submission folder is empty"),
            )),
            Some(files) => Err(NotTaken::new(
                NotGraded::NotFound,
                format!(
                    "no sources for {lab} in the submission: expected {expected}. The submission holds: {files}"
                ),
            )),
        },
        _ => Err(NotTaken::new(
            NotGraded::FoundTwice,
            format!(
                "{lab} is in the submission more than once: {}; expected one copy: {expected}",
                found
                    .iter()
                    .map(|dir| relative(dir, submission))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Every folder in `submission` that holds `bin/BINARY.rs` for a binary of
/// `lab`, sorted (one, for a submission [`find_sources`] takes).
pub fn find_all_sources(submission: &Path, lab: &Lab) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(submission.to_path_buf(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let holds_a_binary = lab.binaries.iter().any(|name| {
            std::fs::symlink_metadata(dir.join("bin").join(format!("{name}.rs")))
                .is_ok_and(|meta| meta.is_file())
        });
        if holds_a_binary {
            found.push(dir);
            continue;
        }
        if depth == MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir && !name.starts_with('.') && !NOT_SEARCHED.contains(&name.as_ref()) {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    found.sort();
    found
}

/// Copies the regular files under `src` into `dest` (which must not exist),
/// keeping the layout. Symlinks and other special files are left out and
/// named in the returned notes; a file over [`MAX_FILE_BYTES`] or a total
/// over [`MAX_TOTAL_BYTES`] is an error.
pub fn copy_sources(src: &Path, dest: &Path) -> Result<Vec<String>, NotTaken> {
    let unreadable = |message: String| NotTaken::new(NotGraded::Unreadable, message);
    let mut notes = Vec::new();
    let mut total = 0;
    let mut pending = vec![PathBuf::new()];
    while let Some(relative_dir) = pending.pop() {
        let from = src.join(&relative_dir);
        std::fs::create_dir_all(dest.join(&relative_dir))
            .map_err(|err| unreadable(format!("creating {}: {err}", dest.display())))?;
        let entries = std::fs::read_dir(&from)
            .map_err(|err| unreadable(format!("reading src/{}: {err}", shown(&relative_dir))))?;
        for entry in entries.flatten() {
            let path = relative_dir.join(entry.file_name());
            let meta = std::fs::symlink_metadata(entry.path())
                .map_err(|err| unreadable(format!("src/{}: {err}", shown(&path))))?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                if meta.len() > MAX_FILE_BYTES {
                    return Err(NotTaken::new(
                        NotGraded::TooLarge,
                        format!(
                            "src/{} has {} bytes; source files over {MAX_FILE_BYTES} bytes are not taken",
                            shown(&path),
                            meta.len()
                        ),
                    ));
                }
                total += meta.len();
                if total > MAX_TOTAL_BYTES {
                    return Err(NotTaken::new(
                        NotGraded::TooLarge,
                        format!(
                            "the sources hold over {MAX_TOTAL_BYTES} bytes; they are not taken"
                        ),
                    ));
                }
                std::fs::copy(entry.path(), dest.join(&path))
                    .map_err(|err| unreadable(format!("copying src/{}: {err}", shown(&path))))?;
            } else {
                let kind = if meta.is_symlink() {
                    "a symbolic link"
                } else {
                    "not a regular file"
                };
                notes.push(format!(
                    "src/{} was left out: it is {kind}, and only regular files are taken",
                    shown(&path)
                ));
            }
        }
    }
    notes.sort();
    Ok(notes)
}

/// Replaces `crate_dir/src` with the sources in `src` (found by
/// [`find_sources`]); returns the notes of [`copy_sources`].
pub fn take_from(src: &Path, crate_dir: &Path) -> Result<Vec<String>, NotTaken> {
    let fresh = crate_dir.join(".src-intake");
    let _ = std::fs::remove_dir_all(&fresh);
    let notes = copy_sources(src, &fresh)?;
    let unplaced = |message: String| NotTaken::new(NotGraded::Unreadable, message);
    let old = crate_dir.join("src");
    if old.exists() {
        std::fs::remove_dir_all(&old)
            .map_err(|err| unplaced(format!("removing the stub: {err}")))?;
    }
    std::fs::rename(&fresh, &old).map_err(|err| unplaced(format!("placing the sources: {err}")))?;
    Ok(notes)
}

/// Replaces `crate_dir/src` with the lab's sources from `submission`;
/// returns where they were found and the notes of [`copy_sources`].
pub fn take(submission: &Path, lab: &Lab, crate_dir: &Path) -> Result<String, NotTaken> {
    let src = find_sources(submission, lab)?;
    let notes = take_from(&src, crate_dir)?;
    let mut message = format!("{lab}: took the sources in {}", relative(&src, submission));
    for note in notes {
        message.push_str("\n  ");
        message.push_str(&note);
    }
    Ok(message)
}

/// A path inside a submission, for messages: each of its names in the
/// notation of [`grader::untrusted::name`], joined by `/`.
pub fn shown(path: &Path) -> String {
    path.iter()
        .map(grader::untrusted::name)
        .collect::<Vec<_>>()
        .join("/")
}

/// `dir` relative to `base`, for messages (`.` for `base` itself).
pub fn relative(dir: &Path, base: &Path) -> String {
    match dir.strip_prefix(base) {
        Ok(path) if path.as_os_str().is_empty() => ".".to_owned(),
        Ok(path) => format!("{}/", shown(path)),
        Err(_) => shown(dir),
    }
}

/// The first files of a submission, for a message that shows what it
/// holds; `None` when it holds no file at all.
fn listing(submission: &Path) -> Option<String> {
    const SHOWN: usize = 20;
    let mut files = Vec::new();
    let mut pending = vec![submission.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                if !NOT_SEARCHED.contains(&entry.file_name().to_string_lossy().as_ref()) {
                    pending.push(path);
                }
            } else {
                files.push(relative(&path, submission).trim_end_matches('/').to_owned());
            }
        }
        if files.len() > 10 * SHOWN {
            break;
        }
    }
    if files.is_empty() {
        return None;
    }
    files.sort();
    let more = files.len().saturating_sub(SHOWN);
    files.truncate(SHOWN);
    let mut text = files.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    Some(text)
}

/// `cargo xtask intake`: puts the submission's sources of the selected labs
/// in place of this course's (the Gradescope script runs it on the clean
/// copy of the course). Exit 0 when at least one selected lab was taken (the
/// labs not found are named on stdout); 3 when none was, after writing the
/// `--gradescope` file that tells the student why.
pub fn run(args: &IntakeArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let mut taken = 0;
    let mut messages = Vec::new();
    for lab in args.lab.labs() {
        let crate_dir = root.join(lab.student_dir());
        // Nothing under labs/ is replaced without a copy (on Gradescope the
        // course is a clean copy, but this also runs in a student's clone).
        crate::swap::keep_copy(&root, lab, "intake")?;
        let stub = crate_dir.join("src");
        let untouched = find_sources(&args.submission, lab)
            .is_ok_and(|src| crate::files::same_files(&src, &stub));
        let state = match take(&args.submission, lab, &crate_dir) {
            Ok(mut message) => {
                taken += 1;
                if untouched {
                    message.push_str(" (the untouched stub: graded, and labelled so)");
                    messages.push(message);
                    (SubmissionState::UntouchedStub, String::new())
                } else {
                    messages.push(message);
                    (SubmissionState::Graded, String::new())
                }
            }
            Err(not_taken) => {
                messages.push(not_taken.message.clone());
                (SubmissionState::NotGraded(not_taken.why), not_taken.message)
            }
        };
        IntakeState::save(&root, lab, state.0, &state.1)?;
    }
    let text = messages.join("\n");
    println!("{text}");
    if taken > 0 {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.gradescope {
        let results = serde_json::json!({
            "score": 0,
            "output": format!("Nothing was graded.\n{text}\nUpload the lab's folder (or a zip of it) and submit again."),
            "tests": [],
        });
        let partial = path.with_extension("json.partial");
        let results = grader::untrusted::json(serde_json::to_string_pretty(&results)?);
        std::fs::write(&partial, results)?;
        std::fs::rename(&partial, path)?;
    }
    Ok(ExitCode::from(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> &'static Lab {
        Lab::find("echo").unwrap()
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_sources_are_found_however_the_submission_is_arranged() {
        for layout in [
            "labs/echo/src",                           // a clone of the course
            "my-work/labs/echo/src",                   // an extra parent folder
            "labs-zip/echo/src",                       // a zip of labs/
            "echo-crate/src",                          // a zip of the lab crate alone
            "src",                                     // the crate's contents
            "",                                        // src/ itself
            "Lab 1 (final)/socket-labs/labs/echo/src", // deeper still
        ] {
            let submission = tempfile::tempdir().unwrap();
            write(
                submission.path(),
                format!("{layout}/bin/echo-server.rs").trim_start_matches('/'),
                "fn main() {}",
            );
            write(
                submission.path(),
                "__MACOSX/labs/echo/src/bin/echo-client.rs",
                "junk",
            );
            let found = find_sources(submission.path(), echo()).unwrap();
            assert_eq!(found, submission.path().join(layout), "{layout}");
        }
    }

    #[test]
    fn nothing_found_says_what_was_expected_and_what_is_there() {
        let submission = tempfile::tempdir().unwrap();
        write(submission.path(), "echo/echo-server.rs", "fn main() {}");
        let err = find_sources(submission.path(), echo()).unwrap_err();
        assert!(err.message.contains("lab1 (echo)"), "{err}");
        assert!(err.message.contains("`bin/echo-server.rs`"), "{err}");
        assert!(err.message.contains("echo/echo-server.rs"), "{err}");

        assert_eq!(err.why, NotGraded::NotFound);

        let empty = tempfile::tempdir().unwrap();
        let err = find_sources(empty.path(), echo()).unwrap_err();
        assert_eq!(err.why, NotGraded::Empty);
        assert!(err.message.contains("empty"), "{err}");

        write(submission.path(), "a/src/bin/echo-server.rs", "");
        write(submission.path(), "b/src/bin/echo-client.rs", "");
        let err = find_sources(submission.path(), echo()).unwrap_err();
        assert_eq!(err.why, NotGraded::FoundTwice);
        assert!(
            err.message.contains("more than once: a/src/, b/src/"),
            "{err}"
        );
    }

    #[test]
    fn only_regular_files_under_the_cap_are_taken() {
        let submission = tempfile::tempdir().unwrap();
        let src = submission.path().join("src");
        write(&src, "bin/echo-server.rs", "fn main() {}");
        write(&src, "bin/echo-client.rs", "fn main() {}");
        write(
            submission.path(),
            "Cargo.toml",
            "[package]\nbuild = \"build.rs\"",
        );
        write(submission.path(), "build.rs", "fn main() {}");
        std::os::unix::fs::symlink("/etc/passwd", src.join("secrets.rs")).unwrap();
        std::os::unix::fs::symlink("/etc", src.join("etc")).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let out = dest.path().join("src");
        let notes = copy_sources(&src, &out).unwrap();
        assert_eq!(
            crate::files::list_files(&out).unwrap(),
            [
                PathBuf::from("bin/echo-client.rs"),
                PathBuf::from("bin/echo-server.rs")
            ]
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().all(|note| note.contains("a symbolic link")));

        let big = vec![b'/'; MAX_FILE_BYTES as usize + 1];
        std::fs::write(src.join("big.rs"), big).unwrap();
        let err = copy_sources(&src, &dest.path().join("again")).unwrap_err();
        assert_eq!(err.why, NotGraded::TooLarge);
        assert!(err.message.contains("src/big.rs"), "{err}");
    }
}
