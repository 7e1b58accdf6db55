//! `cargo xtask swap` and `cargo xtask reset`: put the reference solution in
//! a student's place and back, or go back to the stub, without ever losing a
//! student's file.
//!
//! Before anything under `labs/SLUG` changes, the whole crate (but `target/`)
//! is copied to `.swap/SLUG/TIMESTAMP-REASON/` (git-ignored). Copies are
//! never overwritten or deleted by these commands. The file
//! `.swap/SLUG/SWAPPED` names the copy to restore while a solution is in place.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use grader::builder::workspace_root;
use grader::{LABS, Lab};

use crate::files::{clear_dir, copy_tree, git, timestamp, uncommitted};

/// Which sources a lab should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    /// The reference solution's sources.
    Solution,
    /// The student's own sources, as they were before the swap.
    Student,
}

/// Arguments of `cargo xtask swap`.
#[derive(Debug, Args)]
pub struct SwapArgs {
    /// The lab (lab3, 3 or multiconn).
    #[arg(required_unless_present = "status")]
    lab: Option<String>,
    /// Swap the solution in, or the student's files back.
    #[arg(long, required_unless_present = "status")]
    to: Option<Side>,
    /// Swap even with uncommitted or untracked files (a copy is kept anyway).
    #[arg(long)]
    force: bool,
    /// List which labs are swapped.
    #[arg(long, conflicts_with_all = ["lab", "to"])]
    status: bool,
}

/// Arguments of `cargo xtask reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The lab (lab3, 3 or multiconn).
    lab: String,
    /// The git revision whose stub to restore.
    #[arg(long, default_value = "HEAD")]
    from: String,
}

fn find_lab(name: &str) -> Result<&'static Lab> {
    Lab::find(name).with_context(|| {
        format!(
            "no lab is called `{name}`; valid names: {}",
            Lab::valid_names()
        )
    })
}

fn swap_dir(root: &Path, lab: &Lab) -> PathBuf {
    root.join(".swap").join(lab.slug)
}

fn marker(root: &Path, lab: &Lab) -> PathBuf {
    swap_dir(root, lab).join("SWAPPED")
}

/// The labs that hold the reference solution now, in course order.
pub fn swapped_labs(root: &Path) -> Vec<&'static Lab> {
    LABS.iter()
        .filter(|lab| marker(root, lab).exists())
        .collect()
}

/// Copies the student's crate (without `target/`) aside; returns where.
pub fn keep_copy(root: &Path, lab: &Lab, reason: &str) -> Result<PathBuf> {
    let copy = swap_dir(root, lab).join(format!("{}-{reason}", timestamp()));
    copy_tree(&root.join(lab.student_dir()), &copy, &["target"])?;
    Ok(copy)
}

fn refuse_uncommitted(root: &Path, lab: &Lab, force: bool, command: &str) -> Result<()> {
    if force {
        return Ok(());
    }
    let changed = uncommitted(root, &lab.student_dir()).with_context(|| {
        format!("cannot tell whether {} has uncommitted work (not a git checkout?); add --force to go on: a copy is kept anyway", lab.student_dir())
    })?;
    if !changed.is_empty() {
        bail!(
            "{} has uncommitted or untracked files:\n  {}\ncommit them first, or add --force to {command} anyway (a copy is kept in .swap/{}/)",
            lab.student_dir(),
            changed.join("\n  "),
            lab.slug
        );
    }
    Ok(())
}

/// Puts the solution's `src/` in place of the student's, keeping a copy.
pub fn swap_in(root: &Path, lab: &Lab, force: bool) -> Result<PathBuf> {
    if let Ok(kept) = std::fs::read_to_string(marker(root, lab)) {
        bail!(
            "{} is already swapped to the solution; your files are kept in {}",
            lab.name(),
            kept.trim()
        );
    }
    refuse_uncommitted(root, lab, force, "swap")?;
    let kept = keep_copy(root, lab, "student")?;
    let src = root.join(lab.student_dir()).join("src");
    if src.exists() {
        std::fs::remove_dir_all(&src)?;
    }
    copy_tree(&root.join(lab.solution_dir()).join("src"), &src, &[])?;
    std::fs::write(marker(root, lab), kept.display().to_string())?;
    Ok(kept)
}

/// Restores the student's files kept by [`swap_in`], byte for byte.
pub fn swap_out(root: &Path, lab: &Lab) -> Result<PathBuf> {
    let marker = marker(root, lab);
    let kept = std::fs::read_to_string(&marker).with_context(|| {
        format!(
            "{} is not swapped to the solution (see cargo xtask swap --status)",
            lab.name()
        )
    })?;
    let kept = PathBuf::from(kept.trim());
    if !kept.is_dir() {
        bail!(
            "the kept copy {} is missing; nothing was changed",
            kept.display()
        );
    }
    // Edits made to the swapped-in solution are kept too.
    keep_copy(root, lab, "solution-as-left")?;
    let crate_dir = root.join(lab.student_dir());
    clear_dir(&crate_dir, &["target"])?;
    copy_tree(&kept, &crate_dir, &[])?;
    std::fs::remove_file(&marker)?;
    Ok(kept)
}

/// Restores the stub's sources from git, keeping a copy of the student's.
pub fn reset(root: &Path, lab: &Lab, revision: &str) -> Result<PathBuf> {
    if marker(root, lab).exists() {
        bail!(
            "{} is swapped to the solution: run `cargo xtask swap {} --to student` first",
            lab.name(),
            lab.name()
        );
    }
    let kept = keep_copy(root, lab, "before-reset")?;
    let src = format!("{}/src", lab.student_dir());
    git(
        root,
        &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
    )?;
    std::fs::remove_dir_all(root.join(&src)).ok();
    git(root, &["checkout", revision, "--", &src])?;
    Ok(kept)
}

/// `cargo xtask swap`.
pub fn run(args: &SwapArgs) -> Result<ExitCode> {
    let root = workspace_root();
    if args.status {
        for lab in LABS {
            let state = match std::fs::read_to_string(marker(&root, lab)) {
                Ok(kept) => format!("swapped to the solution (your files: {})", kept.trim()),
                Err(_) => "your files".to_owned(),
            };
            println!("{:<6} {:<12} {state}", lab.name(), lab.slug);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lab = find_lab(args.lab.as_deref().unwrap_or_default())?;
    match args.to {
        Some(Side::Solution) => {
            let kept = swap_in(&root, lab, args.force)?;
            println!(
                "{} now holds the reference solution; your files are kept in {}",
                lab.student_dir(),
                kept.display()
            );
            println!(
                "swap back with: cargo xtask swap {} --to student",
                lab.name()
            );
        }
        Some(Side::Student) => {
            let kept = swap_out(&root, lab)?;
            println!(
                "{} holds your files again (restored from {})",
                lab.student_dir(),
                kept.display()
            );
        }
        None => bail!("say --to solution or --to student"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask reset`.
pub fn run_reset(args: &ResetArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let lab = find_lab(&args.lab)?;
    let kept = reset(&root, lab, &args.from)?;
    println!(
        "{}/src is the stub again; your files are kept in {}",
        lab.student_dir(),
        kept.display()
    );
    println!(
        "to get them back: cp -r {}/src {}/",
        kept.display(),
        lab.student_dir()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{committed_copy, list_files};

    /// A temp copy of lab 1 (stub and solution) in a git repository of its own.
    fn course_copy() -> tempfile::TempDir {
        committed_copy(&["labs/echo", "solutions/echo"])
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        list_files(dir)
            .unwrap()
            .into_iter()
            .map(|file| (file.clone(), std::fs::read(dir.join(file)).unwrap()))
            .collect()
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn a_round_trip_restores_the_students_files_byte_for_byte() {
        let course = course_copy();
        let root = course.path();
        let lab = Lab::find("echo").unwrap();
        let crate_dir = root.join("labs/echo");
        std::fs::write(
            crate_dir.join("src/bin/echo-server.rs"),
            "// my work in progress\n",
        )
        .unwrap();
        std::fs::write(crate_dir.join("src/notes.txt"), [0xff, 0x00, b'\n']).unwrap();
        let before = snapshot(&crate_dir);

        let err = swap_in(root, lab, false).unwrap_err().to_string();
        assert!(
            err.contains("uncommitted or untracked") && err.contains("notes.txt"),
            "{err}"
        );
        assert_eq!(
            snapshot(&crate_dir),
            before,
            "a refused swap changes nothing"
        );

        let kept = swap_in(root, lab, true).unwrap();
        assert_eq!(
            snapshot(&crate_dir.join("src")),
            snapshot(&root.join("solutions/echo/src"))
        );
        assert_eq!(snapshot(&kept), before);
        let again = swap_in(root, lab, true).unwrap_err().to_string();
        assert!(again.contains("already swapped"), "{again}");

        swap_out(root, lab).unwrap();
        assert_eq!(snapshot(&crate_dir), before);
        assert!(swap_out(root, lab).is_err(), "nothing to swap back");
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn reset_restores_the_stub_and_keeps_the_students_files() {
        let course = course_copy();
        let root = course.path();
        let lab = Lab::find("echo").unwrap();
        let server = root.join("labs/echo/src/bin/echo-server.rs");
        let stub = std::fs::read(&server).unwrap();
        std::fs::write(&server, "fn main() {} // mine\n").unwrap();
        let kept = reset(root, lab, "HEAD").unwrap();
        assert_eq!(std::fs::read(&server).unwrap(), stub);
        assert_eq!(
            std::fs::read(kept.join("src/bin/echo-server.rs")).unwrap(),
            b"fn main() {} // mine\n"
        );
    }
}
