//! `cargo xtask report`: the page of the last grade, to open in a browser.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::results;

/// Arguments of `cargo xtask report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the page to FILE (default: it stays in `.grades/report.html`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Writes the last grade's page (to `--out`, or where every grade keeps
/// it) and prints its path.
pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    let kept = results::page_path();
    if !kept.is_file() {
        bail!("no grade yet: run `cargo xtask grade lab1` first, then `cargo xtask report`");
    }
    let path = match &args.out {
        Some(out) => {
            let page =
                std::fs::read(&kept).with_context(|| format!("reading {}", kept.display()))?;
            crate::files::write_atomically(out, &page)?;
            out.clone()
        }
        None => kept,
    };
    let path = path.canonicalize().unwrap_or(path);
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
