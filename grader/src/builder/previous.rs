//! Grading while cargo checks the build.
//!
//! Most grades follow no edit: cargo's check that the crate is up to date
//! (a no-op build) takes 40 to 70 ms, a fifth of a quick lab's grade. So the
//! executables of the lab's last build are remembered, each with its file's
//! identity (device, inode, size, modification time), and a grade can start
//! on them while cargo checks. The grade stands only if cargo then reports
//! the very same files, untouched since they were staged: cargo never
//! rewrites an executable in place, so an unchanged identity means unchanged
//! bytes. Otherwise it is thrown away and the lab graded again.
//!
//! A lab whose sources changed since cargo last built or checked it is not
//! graded ahead: the build will most likely replace the executables, and
//! the early grade would only take the compiler's cores.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::BuildSpec;
use crate::harness::Binaries;

/// Which file, exactly: a rebuilt executable is a new file (a new inode, a
/// new modification time), never the old one rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl Identity {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        })
    }
}

/// What a build of a lab produced: its executables by contract name, and
/// the grader's tests of its library (lab 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    executables: Vec<(String, PathBuf)>,
    tests: Option<PathBuf>,
}

impl Record {
    fn of(binaries: &Binaries) -> Option<Self> {
        let tests = match &binaries.tests {
            None => None,
            Some(Ok(path)) => Some(path.clone()),
            // Tests that did not compile are not worth grading ahead.
            Some(Err(_)) => return None,
        };
        Some(Self {
            executables: binaries
                .paths
                .iter()
                .map(|(name, path)| (name.clone(), path.clone()))
                .collect(),
            tests,
        })
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.executables
            .iter()
            .map(|(_, path)| path)
            .chain(&self.tests)
    }
}

/// The executables of a lab's last build, as they were when a grade
/// started on them.
#[derive(Debug, Clone)]
pub struct Previous {
    record: Record,
    identities: Vec<Identity>,
    /// What to grade: the executables, as a build would return them.
    pub binaries: Binaries,
}

impl Previous {
    /// The last build of `spec`'s crate, if it is worth grading ahead: every
    /// file is still there, and no source of the crate, nor the workspace's
    /// manifest or lock, changed since cargo last built or checked it.
    /// Identities are taken now: call this just before staging.
    pub fn load(spec: &BuildSpec<'_>) -> Option<Self> {
        let path = record_path(spec)?;
        // When cargo last said what the build is: the record is written
        // after every build, also those with nothing to do.
        let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        let record: Record = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
        let identities = record
            .files()
            .map(|path| Identity::of(path))
            .collect::<Option<Vec<_>>>()?;
        let workspace = spec.workspace_manifest.parent()?;
        let inputs = [
            spec.workspace_manifest.clone(),
            workspace.join("Cargo.lock"),
            workspace.join(".cargo/config.toml"),
        ];
        if inputs.iter().any(|path| newer_than(path, built))
            || changed_since(&spec.crate_dir, built)
        {
            return None;
        }
        let binaries = Binaries {
            origin: spec.crate_name.clone(),
            paths: record.executables.iter().cloned().collect(),
            crate_dir: Some(spec.crate_dir.clone()),
            target_dir: spec.target_dir.clone(),
            tests: record.tests.clone().map(Ok),
            ..Binaries::default()
        };
        Some(Self {
            record,
            identities,
            binaries,
        })
    }

    /// Whether `built`, what cargo has just reported, is exactly what was
    /// graded ahead: the same files, none replaced since [`Previous::load`].
    pub fn is(&self, built: &Binaries) -> bool {
        Record::of(built).as_ref() == Some(&self.record)
            && self
                .record
                .files()
                .zip(&self.identities)
                .all(|(path, identity)| Identity::of(path).as_ref() == Some(identity))
    }
}

/// Remembers what a build of `spec`'s crate produced, for the next grade.
/// Failing to is not worth failing the build: that grade waits for cargo.
pub fn remember(spec: &BuildSpec<'_>, built: &Binaries) {
    let (Some(path), Some(record)) = (record_path(spec), Record::of(built)) else {
        return;
    };
    let Ok(text) = serde_json::to_string(&record) else {
        return;
    };
    let written = path.parent().is_some_and(|folder| {
        std::fs::create_dir_all(folder).is_ok()
            && std::fs::write(path.with_extension("tmp"), text).is_ok()
    });
    if written {
        let _ = std::fs::rename(path.with_extension("tmp"), &path);
    }
}

/// Forgets the last build of `spec`'s crate (it failed: nothing to grade
/// ahead).
pub fn forget(spec: &BuildSpec<'_>) {
    if let Some(path) = record_path(spec) {
        let _ = std::fs::remove_file(path);
    }
}

/// `TARGET/socket-labs/last-build-PACKAGE.json`, in the target directory
/// cargo builds the crate in: the build's own, the environment's, or the
/// workspace's `target/`.
fn record_path(spec: &BuildSpec<'_>) -> Option<PathBuf> {
    let target = match &spec.target_dir {
        Some(dir) => dir.clone(),
        None => match std::env::var_os("CARGO_TARGET_DIR")
            .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        {
            Some(dir) => PathBuf::from(dir),
            None => spec.workspace_manifest.parent()?.join("target"),
        },
    };
    Some(
        target
            .join("socket-labs")
            .join(format!("last-build-{}.json", spec.lab.package)),
    )
}

/// Whether `path` was modified at `time` or later: file times tick in
/// jiffies, so an edit in the same tick as the build may show the same time.
fn newer_than(path: &Path, time: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|modified| modified >= time)
}

/// Whether anything under `dir` (its `target/` aside) was modified after
/// `time`: a folder's own time changes when a file is added or removed.
fn changed_since(dir: &Path, time: SystemTime) -> bool {
    if newer_than(dir, time) {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => {
                entry.file_name() != "target" && changed_since(&path, time)
            }
            Ok(_) => newer_than(&path, time),
            Err(_) => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::LABS;
    use crate::builder::CompilerOutput;

    /// A workspace with one lab crate, written an hour ago, and in its
    /// target directory the lab's executables as a build left them a minute
    /// later.
    struct Built {
        dir: tempfile::TempDir,
        binaries: Binaries,
    }

    impl Built {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
            for source in [
                "Cargo.toml",
                "Cargo.lock",
                "lab/Cargo.toml",
                "lab/src/main.rs",
            ] {
                let path = dir.path().join(source);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "source").unwrap();
                touch(&path, an_hour_ago);
            }
            touch(&dir.path().join("lab/src"), an_hour_ago);
            touch(&dir.path().join("lab"), an_hour_ago);
            let target = dir.path().join("target/debug");
            std::fs::create_dir_all(&target).unwrap();
            let mut binaries = Binaries::default();
            for name in LABS[0].binaries {
                std::fs::write(target.join(name), format!("{name} v1")).unwrap();
                touch(&target.join(name), an_hour_ago + Duration::from_secs(60));
                binaries.paths.insert(name.to_string(), target.join(name));
            }
            Self { dir, binaries }
        }

        fn spec(&self) -> BuildSpec<'static> {
            BuildSpec {
                lab: &LABS[0],
                workspace_manifest: self.dir.path().join("Cargo.toml"),
                crate_dir: self.dir.path().join("lab"),
                crate_name: "lab".into(),
                target_dir: Some(self.dir.path().join("target")),
                output: CompilerOutput::Capture,
                sealed: None,
            }
        }
    }

    fn touch(path: &Path, time: SystemTime) {
        std::fs::File::options()
            .write(!path.is_dir())
            .read(path.is_dir())
            .open(path)
            .and_then(|file| file.set_modified(time))
            .unwrap();
    }

    #[test]
    fn an_unchanged_build_is_graded_ahead_and_stands() {
        let built = Built::new();
        let spec = built.spec();
        remember(&spec, &built.binaries);
        let previous = Previous::load(&spec).expect("the last build, worth grading ahead");
        assert_eq!(previous.binaries.paths, built.binaries.paths);
        assert!(
            previous.is(&built.binaries),
            "cargo reported the same files"
        );
    }

    /// A change that cargo judged to need no new build (a comment in the
    /// manifest) is older than cargo's last word on the build: the lab is
    /// graded ahead again.
    #[test]
    fn a_change_cargo_has_since_checked_does_not_stop_grading_ahead() {
        let built = Built::new();
        let spec = built.spec();
        touch(
            &built.dir.path().join("Cargo.toml"),
            SystemTime::now() - Duration::from_secs(60),
        );
        remember(&spec, &built.binaries);
        assert!(Previous::load(&spec).is_some());
    }

    #[test]
    fn a_rebuilt_executable_voids_the_grade_ahead() {
        let built = Built::new();
        let spec = built.spec();
        remember(&spec, &built.binaries);
        let previous = Previous::load(&spec).expect("the last build");
        // As cargo does it: a new file in the old one's place.
        let (_, path) = built.binaries.paths.iter().next().unwrap();
        std::fs::remove_file(path).unwrap();
        std::fs::write(path, "rebuilt").unwrap();
        assert!(!previous.is(&built.binaries));
    }

    #[test]
    fn other_executables_void_the_grade_ahead() {
        let built = Built::new();
        let spec = built.spec();
        remember(&spec, &built.binaries);
        let previous = Previous::load(&spec).expect("the last build");
        let mut elsewhere = built.binaries.clone();
        let (_, path) = elsewhere.paths.iter_mut().next().unwrap();
        *path = built.dir.path().join("Cargo.lock");
        assert!(!previous.is(&elsewhere));
    }

    #[test]
    fn an_edited_or_added_source_is_not_graded_ahead() {
        for (what, edit) in [
            ("an edited source", "lab/src/main.rs"),
            ("a new module", "lab/src/new.rs"),
            ("an edited manifest", "Cargo.toml"),
        ] {
            let built = Built::new();
            let spec = built.spec();
            remember(&spec, &built.binaries);
            std::fs::write(built.dir.path().join(edit), "edited").unwrap();
            assert!(Previous::load(&spec).is_none(), "{what}");
        }
    }

    #[test]
    fn a_failed_build_leaves_nothing_to_grade_ahead() {
        let built = Built::new();
        let spec = built.spec();
        remember(&spec, &built.binaries);
        forget(&spec);
        assert!(Previous::load(&spec).is_none());
    }
}
