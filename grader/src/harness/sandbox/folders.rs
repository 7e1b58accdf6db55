//! The folders a graded program gets: a private working folder, and the
//! read-only folder its executables are staged in.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The most a `--bin-dir` folder may hold to be staged whole.
pub const STAGE_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// A fresh working folder for one guest, private to its uid (0700): a new
/// folder with a random name in the temporary folder. Removed with
/// [`remove_tree`].
pub fn guest_home(owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("socket-labs-guest-")
        .tempdir()?
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

/// Removes a folder and whatever a program wrote there, whatever it did to
/// the modes inside (a folder made 0o000 cannot be emptied by a user that
/// is not root until it is given its modes back), never following its
/// symbolic links.
pub fn remove_tree(dir: &Path) {
    if fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    restore_modes(dir);
    let _ = fs::remove_dir_all(dir);
}

fn restore_modes(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        restore_modes(&entry.path());
    }
}

/// A read-only copy of what a grade runs, in a folder the guest uid may read
/// and run from (build folders and temporary folders are often private).
#[derive(Debug)]
pub struct Staged {
    folder: tempfile::TempDir,
}

impl Staged {
    /// A new, empty staging folder.
    pub fn new() -> io::Result<Staged> {
        let folder = tempfile::Builder::new()
            .prefix("socket-labs-bin-")
            .tempdir()?;
        fs::set_permissions(folder.path(), fs::Permissions::from_mode(0o755))?;
        Ok(Staged { folder })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Copies (or hard-links) one executable in as `name`, runnable by
    /// everyone, and returns its new path.
    pub fn executable(&self, name: &str, path: &Path) -> io::Result<PathBuf> {
        // What a symbolic link points to: a link itself would point out of
        // the program's world.
        let path = &path.canonicalize()?;
        let copy = self.path().join(name);
        if fs::hard_link(path, &copy).is_err() {
            fs::copy(path, &copy)?;
        }
        let mode = fs::metadata(&copy)?.permissions().mode();
        if mode & 0o555 != 0o555 {
            // A hard link shares its mode with the original: copy instead.
            let _ = fs::remove_file(&copy);
            fs::copy(path, &copy)?;
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
        }
        Ok(copy)
    }

    /// Copies a whole `--bin-dir` folder in (regular files and folders only,
    /// at most [`STAGE_LIMIT_BYTES`]): a program may load a module or a jar
    /// that sits beside it. Symbolic links, devices and sockets are left out
    /// and named in the returned notes.
    pub fn folder(&self, source: &Path) -> io::Result<Vec<String>> {
        let mut notes = Vec::new();
        let mut total = 0;
        copy_tree(source, self.path(), &mut total, &mut notes)?;
        Ok(notes)
    }
}

fn copy_tree(
    source: &Path,
    target: &Path,
    total: &mut u64,
    notes: &mut Vec<String>,
) -> io::Result<()> {
    for entry in fs::read_dir(source)? {
        let entry = entry?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        if meta.is_dir() {
            fs::create_dir(&to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
            copy_tree(&from, &to, total, notes)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > STAGE_LIMIT_BYTES {
                return Err(io::Error::other(format!(
                    "{} holds more than {} MiB: put only the programs and what they load in it",
                    source.display(),
                    STAGE_LIMIT_BYTES / (1024 * 1024)
                )));
            }
            // Readable by the guest, runnable where it was runnable: a hard
            // link when the file already is (no copy of megabytes of debug
            // binaries per grade), a copy given that mode otherwise (a link
            // shares its mode with the original).
            let (needed, mode) = if meta.mode() & 0o111 != 0 {
                (0o555, 0o755)
            } else {
                (0o444, 0o644)
            };
            if meta.mode() & needed != needed || fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
            }
        } else {
            notes.push(format!(
                "{} was left out: only regular files and folders are staged",
                from.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A `--bin-dir` folder is staged as the guest may use it: what is
    /// already readable (and runnable) by everyone is linked, not copied;
    /// what is not is copied with that mode, the original left as it was.
    #[test]
    fn a_folder_is_staged_readable_and_its_originals_unchanged() {
        let source = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let path = source.path().join(name);
            fs::write(&path, name).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let program = write("program", 0o755);
        let private_program = write("private-program", 0o700);
        let module = write("module.py", 0o600);
        let staged = Staged::new().unwrap();
        assert!(staged.folder(source.path()).unwrap().is_empty());
        let inode = |path: &Path| fs::metadata(path).unwrap().ino();
        let mode = |path: &Path| fs::metadata(path).unwrap().mode() & 0o777;
        let copy = |name: &str| staged.path().join(name);
        assert_eq!(inode(&copy("program")), inode(&program));
        assert_eq!(mode(&copy("program")), 0o755);
        assert_ne!(inode(&copy("private-program")), inode(&private_program));
        assert_eq!(mode(&copy("private-program")), 0o755);
        assert_eq!(mode(&copy("module.py")), 0o644);
        assert_eq!(fs::read(copy("module.py")).unwrap(), b"module.py");
        assert_eq!(
            (mode(&private_program), mode(&module)),
            (0o700, 0o600),
            "the originals keep their modes"
        );
    }
}
