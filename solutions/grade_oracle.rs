//! The oracle of `cargo xtask mutants`: the course's grader decides whether
//! a mutated reference solution still works.
//!
//! cargo-mutants copies this workspace, mutates one lab's sources, and runs
//! `cargo test --package LAB --test graded -- --ignored` in the copy. Each
//! lab's `tests/graded.rs` includes this file and hands [`assert_full_marks`]
//! the executables cargo has just built (`CARGO_BIN_EXE_*`), which are graded
//! with `grade LAB --bin-dir DIR`: the mutant is caught when they score less
//! than full marks. (A module, not a crate: a dev-dependency would follow the
//! lab's manifest wherever it is copied.)
//!
//! The copy cannot build a grader of its own (the grader lives in the course
//! workspace, outside this one), so `cargo xtask mutants` names a prebuilt
//! one in [`GRADER`]. In a plain `cargo test` the graded test is ignored;
//! run by hand without [`GRADER`], it fails and says how to run it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the grader: an executable that takes
/// `grade LAB --bin-dir DIR`, exits 0 on full marks and prints its report.
pub const GRADER: &str = "SOCKET_LABS_GRADER";

/// Further arguments for the grader, separated by spaces
/// (`--time-scale 2 --seed 7`).
pub const GRADER_ARGS: &str = "SOCKET_LABS_GRADER_ARGS";

/// Grades `lab` with the executables in the directory of `executable` (where
/// cargo puts all of a package's binaries), and panics with the grader's
/// report unless they score full marks.
pub fn assert_full_marks(lab: &str, executable: &str) {
    let Some(grader) = std::env::var_os(GRADER).map(PathBuf::from) else {
        panic!(
            "{GRADER} is not set: this test grades the executables with the course's grader, \
             and `cargo xtask mutants` runs it with {GRADER} naming the grader"
        );
    };
    let built = Path::new(executable)
        .parent()
        .expect("cargo puts executables in a directory");
    // The grader stages a `--bin-dir` whole, and cargo's `target/debug`
    // also holds every dependency (`deps/`, over the grader's limit for a
    // lab with serde): grade a folder of the executables alone.
    let bin_dir = executables_only(built);
    let extra = std::env::var(GRADER_ARGS).unwrap_or_default();
    let output = Command::new(&grader)
        .args(["grade", lab, "--bin-dir"])
        .arg(&bin_dir)
        .args(extra.split_whitespace())
        // The grader finds the course from its own executable; cargo's
        // variables here describe the copy of the solutions instead.
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap_or_else(|err| panic!("cannot run the grader {}: {err}", grader.display()));
    let _ = std::fs::remove_dir_all(&bin_dir);
    assert!(
        output.status.success(),
        "{lab} is below full marks ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh folder holding copies of the executables directly in `built`
/// (regular files with an execute bit), not its folders.
fn executables_only(built: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let folder = std::env::temp_dir().join(format!("grade-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", folder.display()));
    let entries = std::fs::read_dir(built)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", built.display()));
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            let to = folder.join(entry.file_name());
            std::fs::copy(entry.path(), &to)
                .unwrap_or_else(|err| panic!("cannot copy {}: {err}", entry.path().display()));
        }
    }
    folder
}
