//! Copying directory trees and asking git about them: the plumbing of
//! `swap`, `reset`, `dist` and `grade-class`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

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

/// Seconds since the epoch, for names of kept copies that sort by time.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:03}", now.as_secs(), now.subsec_millis())
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

/// Whether this copy of the course has the reference solutions. The student
/// edition (`cargo xtask dist`) does not: there the tests about swapping,
/// exporting or grading solutions have nothing to test, and say so.
#[cfg(test)]
pub fn has_solutions(test: &str) -> bool {
    let present = grader::builder::workspace_root().join("solutions").is_dir();
    if !present {
        eprintln!("{test}: skipped, this edition of the course has no solutions/");
    }
    present
}
