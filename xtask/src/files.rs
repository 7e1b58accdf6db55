//! Copying directory trees and asking git about them: the plumbing of
//! `swap`, `reset`, `dist` and `grade-class`; and the course root of the
//! course-only commands that need the reference solutions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// The course root, when it holds the reference solutions: `bench`,
/// `mutants`, `bugs` and `screenshots` grade them, and the student edition
/// (`dist`) ships without them. `what` says what needs them.
pub fn course_with_solutions(what: &str) -> Result<PathBuf> {
    let root = grader::builder::workspace_root();
    if !root.join("solutions/Cargo.toml").is_file() {
        bail!(
            "{what} the reference solutions, which this copy of the course does not have (it is the student edition)"
        );
    }
    Ok(root)
}

/// Copies `from` into `to` recursively, byte for byte, skipping entries
/// whose name is in `skip` (e.g. `target`).
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if skip.iter().any(|skipped| name == *skipped) {
            continue;
        }
        let source = entry.path();
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target, skip)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source)?;
            std::os::unix::fs::symlink(link, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

/// Removes everything in `dir` except the entries named in `keep`.
pub fn clear_dir(dir: &Path, keep: &[&str]) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if keep.iter().any(|kept| entry.file_name() == *kept) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The time now, for names of kept copies that read as a date and sort by
/// time: `2025-03-14T09-26-53.589Z` (UTC; `-` for `:`, which some file
/// systems and zips refuse).
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    readable_utc(now.as_secs(), now.subsec_millis())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH-MM-SS.mmmZ` (Howard Hinnant's
/// days-to-civil algorithm).
fn readable_utc(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}.{millis:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Runs git in `root`; its stdout on success.
pub fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .context("running git")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Writes `paths` as committed at HEAD into `outdir` (`git archive | tar`,
/// which keeps the executable bits of the platform scripts).
pub fn export_committed(root: &Path, paths: &[&str], outdir: &Path) -> Result<()> {
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["archive", "--format=tar", "HEAD", "--"])
        .args(paths)
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let extract = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(outdir)
        .stdin(archive.stdout.take().expect("piped"))
        .status()
        .context("running tar")?;
    let archived = archive.wait()?;
    if !archived.success() || !extract.success() {
        bail!("git archive HEAD | tar -x failed ({archived}, {extract})");
    }
    Ok(())
}

/// Files under `path` (relative to `root`) that are modified or not tracked.
pub fn uncommitted(root: &Path, path: &str) -> Result<Vec<String>> {
    let status = git(
        root,
        &["status", "--porcelain", "--untracked-files=all", "--", path],
    )?;
    Ok(status
        .lines()
        .map(|line| line.get(3..).unwrap_or(line).to_owned())
        .collect())
}

/// Every file of `dir`, relative to it, sorted (for comparisons in tests,
/// and for the seeded class of the bench).
pub fn list_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path().strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether the regular files under `a` and under `b` are the same, path
/// for path and byte for byte (an untouched stub: a submission's `src/`
/// against the committed one). Anything unreadable counts as different.
pub fn same_files(a: &Path, b: &Path) -> bool {
    let (Ok(left), Ok(right)) = (list_files(a), list_files(b)) else {
        return false;
    };
    left == right
        && left.iter().all(|file| {
            match (std::fs::read(a.join(file)), std::fs::read(b.join(file))) {
                (Ok(x), Ok(y)) => x == y,
                _ => false,
            }
        })
}

/// A digest of the regular files under `dir`: their paths and bytes
/// (FNV-1a, 64 bits), to tell whether a folder changed since it was seen;
/// `None` when it cannot be read.
pub fn digest(dir: &Path) -> Option<u64> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in list_files(dir).ok()? {
        let bytes = std::fs::read(dir.join(&file)).ok()?;
        eat(file.as_os_str().as_encoded_bytes());
        eat(&[0]);
        eat(&(bytes.len() as u64).to_le_bytes());
        eat(&bytes);
    }
    Some(hash)
}

/// Writes `contents` to `path` in one step: a temporary file beside it,
/// renamed over it. A reader sees the old file or the whole new one; a
/// symbolic link or file planted at `path` is replaced, not written through.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    // Readable by all, like a file written with std::fs::write.
    use std::os::unix::fs::PermissionsExt as _;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
#[test]
fn kept_copies_are_named_by_a_readable_utc_time() {
    assert_eq!(readable_utc(0, 0), "1970-01-01T00-00-00.000Z");
    assert_eq!(readable_utc(1_710_408_413, 589), "2024-03-14T09-26-53.589Z");
    assert_eq!(readable_utc(951_782_400, 7), "2000-02-29T00-00-00.007Z");
}

/// A temp copy of the course's `paths` (files or folders, without `target/`)
/// committed in a git repository of its own, for tests that swap or export.
#[cfg(test)]
pub fn committed_copy(paths: &[&str]) -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let root = grader::builder::workspace_root();
    for path in paths {
        let (from, to) = (root.join(path), temp.path().join(path));
        if from.is_dir() {
            copy_tree(&from, &to, &["target"]).unwrap();
        } else {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
    git(temp.path(), &["init", "-q"]).unwrap();
    commit_everything(temp.path(), "x");
    temp
}

/// Commits every file of the test repository `root` as a test author.
#[cfg(test)]
pub fn commit_everything(root: &Path, message: &str) {
    git(root, &["add", "-A"]).unwrap();
    let author = ["-c", "user.name=t", "-c", "user.email=t@t"];
    git(root, &[&author[..], &["commit", "-qm", message]].concat()).unwrap();
}
