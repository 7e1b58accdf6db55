//! `cargo xtask bench`: how long grading takes, measured and printed.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use grader::builder::workspace_root;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs per measurement (the median is printed).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Labs to time (default: those that have checks).
    #[arg(long)]
    lab: Vec<String>,
}

/// Times `cargo xtask grade LAB --solution` (warm) and a no-op build.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    let labs: Vec<String> = if args.lab.is_empty() {
        grader::LABS
            .iter()
            .filter(|lab| !grader::rubric::for_lab(lab).is_empty())
            .map(|lab| lab.name())
            .collect()
    } else {
        args.lab.clone()
    };
    println!(
        "{:<8} {:>14} {:>16} {:>8}",
        "lab", "warm grade (s)", "no-op build (s)", "ratio"
    );
    for lab in &labs {
        // One run to warm the build, then the measured runs.
        time_command(&["xtask", "grade", lab, "--solution"])?;
        let grade = median(args.runs, || {
            time_command(&["xtask", "grade", lab, "--solution"])
        })?;
        let package = grader::Lab::find(lab).map_or("", |lab| lab.package);
        let manifest = workspace_root().join("solutions/Cargo.toml");
        let manifest = manifest.to_string_lossy();
        let build = median(args.runs, || {
            time_command(&[
                "build",
                "--manifest-path",
                &manifest,
                "-p",
                package,
                "--bins",
            ])
        })?;
        println!(
            "{:<8} {:>14.2} {:>16.2} {:>8.1}",
            lab,
            grade.as_secs_f64(),
            build.as_secs_f64(),
            grade.as_secs_f64() / build.as_secs_f64().max(0.001)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn median(runs: usize, mut measure: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut times = (0..runs.max(1))
        .map(|_| measure())
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// Runs `cargo ARGS` in the workspace and returns how long it took.
fn time_command(args: &[&str]) -> Result<Duration> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    Ok(started.elapsed())
}
