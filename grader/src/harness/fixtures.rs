//! The course's fixture programs (`grader/tests/fixtures/SLUG/`): stand-ins
//! for a lab's executables, each classic bug switched on by `LAB_BUG`,
//! laid out as a bin dir a grade runs. The grader's tests and `cargo xtask
//! bench` grade them the same way.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tempfile::TempDir;

use crate::builder::workspace_root;
use crate::lab::Lab;

/// The fixture programs of `lab`: `grader/tests/fixtures/SLUG/` (not in
/// the student edition).
pub fn folder(lab: &Lab) -> PathBuf {
    workspace_root()
        .join("grader/tests/fixtures")
        .join(lab.slug)
}

/// A temporary bin dir with the fixture programs of `lab`, where those
/// named in `bugs` (program, bug) run with `LAB_BUG` set.
///
/// A graded program sees only its own bin dir, so each fixture is copied in
/// (`fixture/NAME`) beside a wrapper `NAME` that runs it. Graded programs
/// run as another uid when the grader runs as root: the folder is readable
/// by all, and its `outbox/` writable by all, for fixtures that leave word
/// for a test (where the grader lets them,
/// [`enable_test_reports`](crate::harness::sandbox::enable_test_reports)).
/// `course` holds where the course is, for attacks that aim at it; every
/// wrapper sets `SOCKET_LABS_FIXTURE` to the folder, a marker that finds
/// every process started from it, even after exec, fork or setsid.
pub fn bin_dir(lab: &Lab, bugs: &[(&str, &str)]) -> io::Result<TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("socket-labs-fixture-")
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let outbox = dir.path().join("outbox");
    std::fs::create_dir(&outbox)?;
    std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o777))?;
    let course = workspace_root().display().to_string();
    std::fs::write(dir.path().join("course"), course)?;
    let copies = dir.path().join("fixture");
    std::fs::create_dir(&copies)?;
    for name in lab.binaries {
        let bug = bugs
            .iter()
            .find(|(program, _)| program == name)
            .map_or("", |(_, bug)| bug);
        std::fs::copy(folder(lab).join(name), copies.join(name))?;
        let script = format!(
            "#!/bin/sh\nLAB_BUG='{bug}' SOCKET_LABS_FIXTURE='{}' exec \"$(dirname \"$0\")/fixture/{name}\" \"$@\"\n",
            dir.path().display(),
        );
        let wrapper = dir.path().join(name);
        std::fs::write(&wrapper, script)?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir)
}
