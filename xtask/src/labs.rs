//! `cargo xtask labs`: the lab table, for scripts.
//!
//! The platform scripts and CI read the list of labs from here rather than
//! keeping copies of it: `run_autograder` takes the slugs, `.ci/run` the
//! binary names for its leftover-process check.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use grader::LABS;

/// Arguments of `cargo xtask labs`.
#[derive(Debug, Args)]
pub struct LabsArgs {
    /// Print the binaries the labs' contracts name instead of the slugs.
    #[arg(long)]
    binaries: bool,
}

/// The lines `cargo xtask labs` prints: one slug, or one binary name, a line.
pub fn listing(args: &LabsArgs) -> Vec<&'static str> {
    if args.binaries {
        LABS.iter()
            .flat_map(|lab| lab.binaries.iter().copied())
            .collect()
    } else {
        LABS.iter().map(|lab| lab.slug).collect()
    }
}

/// `cargo xtask labs`.
pub fn run(args: &LabsArgs) -> Result<ExitCode> {
    for line in listing(args) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
