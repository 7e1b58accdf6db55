//! `cargo xtask bench`: how long grading takes, and how fast the reference
//! servers are.
//!
//! Grading (`cargo xtask bench`): for each lab, the warm time of
//! `cargo xtask grade LAB --solution` (median of several runs) next to a
//! no-op `cargo build` of the same crate, which is the floor any cargo-based
//! grade pays; the time of `grade all --solution`; `grade-class` over 30
//! seeded submissions of lab 1, with every score checked; and the cold time
//! of lab 1 from empty target directories, in a temporary copy of the course
//! so that the developer's builds are not touched.
//!
//! Servers (`cargo xtask bench servers`): builds the reference servers and the
//! bench in `bench/` (its own workspace: tokio is compiled only here) in
//! release mode, then runs its load generator. Benchmarks are commands, not
//! timed tests: the figures depend on the machine and its load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use grader::builder::workspace_root;
use grader::{LABS, Lab};
use serde_json::Value;

use crate::options::RunOptions;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Option<What>,
    /// Runs per measurement (the median is printed).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Labs to time (default: all).
    #[arg(long)]
    lab: Vec<String>,
    /// Skip the cold grade (it compiles everything from scratch: minutes on a small machine).
    #[arg(long)]
    no_cold: bool,
    /// Skip grading a class of 30 seeded submissions (it builds each one: minutes).
    #[arg(long)]
    no_class: bool,
    /// Skip grading every classic bug of each lab (about 100 grades: minutes).
    #[arg(long)]
    no_failing: bool,
    /// Passed on to every grade the bench times.
    #[command(flatten)]
    run: RunOptions,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Requests per second and latency of the reference servers and two
    /// baselines (tokio, Python selectors) at 1 to 1000 connections.
    Servers(ServersArgs),
}

/// Arguments of `cargo xtask bench servers`.
#[derive(Debug, Args)]
struct ServersArgs {
    /// Seconds measured per server and number of connections.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Concurrent connections, one measurement each.
    #[arg(long, default_value = "1,10,100,1000")]
    conns: String,
    /// Measure only these servers (echo-server, multiconn-server, app-server,
    /// client-list-server, tokio-echo, python-selectors).
    #[arg(long)]
    only: Vec<String>,
}

/// Labs whose warm grade should take at most [`WARM_GOAL`] and
/// [`RATIO_GOAL`] times a no-op build: those without built-in waits (labs 2
/// and 5 wait for the timeouts their checks test; lab 3 moves data through
/// its servers' buffers and has its serial checks).
const GOAL_LABS: &[&str] = &["echo", "app", "client-list"];
const WARM_GOAL: f64 = 1.5;
const RATIO_GOAL: f64 = 3.0;
const ALL_GOAL: f64 = 3.0;

/// How far above its floor a lab's warm grade should be at most, in seconds.
const FLOOR_GOAL: f64 = 0.3;

/// The floor of `lab` ([`Lab::floor`]): its slowest check's necessary
/// wait, and that check.
fn floor(lab: &Lab) -> Option<(&'static str, f64)> {
    lab.floor.map(|floor| (floor.check, floor.seconds))
}

/// Runs `cargo xtask bench` or `cargo xtask bench servers`.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    match &args.what {
        Some(What::Servers(servers)) => run_servers(servers),
        None => run_grading(args),
    }
}

fn run_grading(args: &BenchArgs) -> Result<ExitCode> {
    let root = crate::files::course_with_solutions("the bench grades")?;
    let labs: Vec<&'static Lab> = if args.lab.is_empty() {
        LABS.iter().collect()
    } else {
        args.lab
            .iter()
            .map(|name| Lab::find(name).with_context(|| format!("no lab is called `{name}`")))
            .collect::<Result<_>>()?
    };
    let runs = args.runs.max(1);
    let run_args = args.run.to_args();
    println!("machine: {}", machine());
    println!("warm: median of {runs} runs, after one run that builds");
    println!();
    // What every `cargo xtask …` pays before grading starts.
    let xtask_alone = median(runs, || Ok(cargo(&root, &["xtask", "--version"])?.0))?;
    println!(
        "`cargo xtask --version` (cargo run of xtask, nothing to build): {:.2} s",
        secs(xtask_alone)
    );
    println!();
    println!(
        "| lab | warm grade | checks | build + start | no-op build | ratio | floor | × floor | score | goal |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for lab in labs.iter().copied() {
        let name = lab.name();
        let grade_args = grade_command(&name, &run_args);
        cargo(&root, &grade_args)?;
        let mut reports = Vec::new();
        let grade = median(runs, || {
            let (took, output) = cargo(&root, &grade_args)?;
            reports.push(lab_reports(&output)?);
            Ok(took)
        })?;
        let checks = median_of(
            reports
                .iter()
                .flatten()
                .map(|report| report.duration)
                .collect(),
        );
        let score = reports
            .last()
            .and_then(|reports| reports.first())
            .map_or_else(|| "?".into(), |report| report.score.clone());
        let manifest = root.join("solutions/Cargo.toml");
        let manifest = manifest.to_string_lossy();
        let build_args = [
            "build",
            "--quiet",
            "--manifest-path",
            &manifest,
            "--package",
            lab.package,
            "--bins",
        ];
        let build = median(runs, || Ok(cargo(&root, &build_args)?.0))?;
        let ratio = secs(grade) / secs(build).max(0.001);
        let (floor_shown, over_floor) = match floor(lab) {
            Some((check, seconds)) => (
                format!("{seconds:.2} s ({check})"),
                format!("{:.2}×", secs(grade) / seconds),
            ),
            None => ("none".to_owned(), "—".to_owned()),
        };
        let floor_goal = format!(
            "≤ floor + {FLOOR_GOAL} s {}",
            mark(secs(grade) <= floor(lab).map_or(0.0, |(_, seconds)| seconds) + FLOOR_GOAL)
        );
        let goal = if GOAL_LABS.contains(&lab.slug) {
            format!(
                "≤ {WARM_GOAL} s {}, ≤ {RATIO_GOAL}× {}; {floor_goal}",
                mark(secs(grade) <= WARM_GOAL),
                mark(ratio <= RATIO_GOAL)
            )
        } else if floor(lab).is_some() {
            format!("waits for the timeouts it tests; {floor_goal}")
        } else {
            floor_goal
        };
        println!(
            "| {name} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {ratio:.1}× | {floor_shown} | {over_floor} | {score} | {goal} |",
            secs(grade),
            secs(checks),
            secs(grade.saturating_sub(checks)),
            secs(build),
        );
    }
    println!();
    println!("build + start: the warm grade less its checks (`cargo run` of xtask, the");
    println!("nested `cargo build` of the lab, reading the rubric, printing the report).");
    println!("floor: the longest wait the lab's contract requires of one check (a timeout the");
    println!("program must honour); × floor: the warm grade against it.");
    println!();

    let all_args = grade_command("all", &run_args);
    cargo(&root, &all_args)?;
    let mut per_lab: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let all = median(runs, || {
        let (took, output) = cargo(&root, &all_args)?;
        for report in lab_reports(&output)? {
            per_lab.entry(report.lab).or_default().push(report.duration);
        }
        Ok(took)
    })?;
    let labs_line: Vec<String> = per_lab
        .into_iter()
        .map(|(lab, times)| format!("{lab} {:.2} s", secs(median_of(times))))
        .collect();
    println!(
        "grade all --solution: {:.2} s (goal ≤ {ALL_GOAL} s {}); checks per lab: {}",
        secs(all),
        mark(secs(all) <= ALL_GOAL),
        labs_line.join(", ")
    );

    let mut all_predicted = true;
    if !args.no_class {
        println!();
        all_predicted = class_of_30(&args.run)?;
    }
    if !args.no_failing {
        println!();
        println!("failing grades: every classic bug (`LAB_BUG`) of the lab's Python fixtures");
        println!("| lab | bugs | median | slowest | goal |");
        println!("|---|---:|---:|---:|---|");
        for lab in &labs {
            crate::bench_failing::failing_grades(&root, lab)?;
        }
    }
    if !args.no_cold {
        println!();
        cold_lab1(&root, &run_args)?;
        println!();
        crate::bench_failing::cold_ratio(&root)?;
    }
    Ok(if all_predicted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many submissions the class row grades: a large lab section.
const CLASS_SIZE: usize = 30;

/// `grade-class` over 30 seeded submissions of lab 1, one and two at a time:
/// each is built and graded, and each score must be the one its seeded bug
/// predicts. Returns whether they all were.
fn class_of_30(run: &RunOptions) -> Result<bool> {
    let mut all_predicted = true;
    for jobs in [1, 2] {
        let run = crate::seeded_class::grade_seeded_class(CLASS_SIZE, jobs, run)?;
        let predicted = run.wrong.is_empty() && run.csv_rows == CLASS_SIZE;
        all_predicted &= predicted;
        println!(
            "grade-class, {CLASS_SIZE} seeded submissions of lab 1, -j {jobs}: {:.1} s; every score as predicted {}",
            secs(run.elapsed),
            mark(predicted)
        );
        for wrong in &run.wrong {
            println!("  {wrong}");
        }
    }
    Ok(all_predicted)
}

/// Grades lab 1's solution in a copy of the course whose target directories
/// are empty: what a fresh clone costs. The developer's `target/` and
/// `solutions/target/` are not touched.
fn cold_lab1(root: &Path, run_args: &[String]) -> Result<()> {
    let copy = tempfile::Builder::new()
        .prefix("socket-labs-cold-")
        .tempdir()
        .context("creating a temporary directory")?;
    crate::files::copy_tree(root, copy.path(), &["target", ".git", ".swap", ".grades"])?;
    println!(
        "cold: lab 1 in a copy of the course with empty target directories ({})",
        copy.path().display()
    );
    let (compile, _) = cargo_cold(copy.path(), &["build", "--quiet", "--package", "xtask"])?;
    let (grade, output) = cargo_cold(copy.path(), &grade_command("lab1", run_args))?;
    let report = lab_reports(&output)?
        .into_iter()
        .next()
        .context("the cold grade printed no report")?;
    println!(
        "| cold grade lab1 | compiling xtask and the grader | building solutions/echo + checks | of which checks | score |"
    );
    println!("|---:|---:|---:|---:|---|");
    println!(
        "| {:.1} s | {:.1} s | {:.1} s | {:.2} s | {} |",
        secs(compile + grade),
        secs(compile),
        secs(grade),
        secs(report.duration),
        report.score
    );
    Ok(())
}

/// What the bench reads from a JSON report.
#[derive(Debug)]
struct Reported {
    lab: String,
    score: String,
    duration: Duration,
}

/// The reports in `cargo xtask grade … --format json` output (one JSON
/// object per lab).
fn lab_reports(output: &Output) -> Result<Vec<Reported>> {
    let text = String::from_utf8_lossy(&output.stdout);
    let mut reports = Vec::new();
    for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let value = value.with_context(|| {
            format!(
                "the grade printed no JSON report:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        reports.push(Reported {
            lab: value["lab"].as_str().unwrap_or("?").to_owned(),
            score: format!("{}/{}", value["score"], value["max_score"]),
            duration: Duration::from_millis(value["duration"].as_u64().unwrap_or(0)),
        });
    }
    Ok(reports)
}

fn run_servers(args: &ServersArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let bench_manifest = root.join("bench/Cargo.toml");
    if !bench_manifest.is_file() || !root.join("solutions/Cargo.toml").is_file() {
        bail!("the server bench needs bench/ and solutions/, which are not in the student edition");
    }
    // The servers the bench loads, by the lab that builds them.
    let wanted = [
        "echo-server",
        "multiconn-server",
        "app-server",
        "client-list-server",
    ];
    let mut packages = Vec::new();
    for lab in LABS {
        let present = root.join(lab.solution_dir()).join("Cargo.toml").is_file();
        if present && lab.binaries.iter().any(|bin| wanted.contains(bin)) {
            packages.push(lab.package);
        }
    }
    println!("building the reference servers and the bench (release)…");
    let mut servers = Vec::new();
    if !packages.is_empty() {
        let solutions = root.join("solutions/Cargo.toml");
        let built = release_build(&solutions, &packages)?;
        for name in wanted {
            if let Some(path) = built.get(name) {
                servers.push(format!("{name}={}", path.display()));
            }
        }
    }
    let bench = release_build(&bench_manifest, &[])?;
    let generator = bench
        .get("socket-labs-bench")
        .context("cargo built no socket-labs-bench")?;
    // The machine line is printed here, not by the generator, so that one
    // function (and not a copy in bench/, a workspace of its own) says it.
    println!("machine: {} at the start", machine());
    println!();
    let mut command = Command::new(generator);
    for server in &servers {
        command.arg("--server").arg(server);
    }
    command
        .arg("--seconds")
        .arg(args.seconds.to_string())
        .arg("--conns")
        .arg(&args.conns);
    for only in &args.only {
        command.arg("--only").arg(only);
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", generator.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the binaries of `packages` (all of the workspace's when empty) in
/// release mode and returns the executables cargo reports, by name.
fn release_build(manifest: &Path, packages: &[&str]) -> Result<BTreeMap<String, PathBuf>> {
    let mut command = Command::new(cargo_program());
    command
        .args([
            "build",
            "--release",
            "--bins",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for package in packages {
        command.args(["--package", package]);
    }
    let output = command
        .output()
        .with_context(|| format!("building {}", manifest.display()))?;
    if !output.status.success() {
        bail!("{} did not build (see above)", manifest.display());
    }
    let mut executables = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let (Some(name), Some(path)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            executables.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    Ok(executables)
}

/// `cargo xtask grade LAB --solution --format json`, with the shared options.
fn grade_command<'a>(lab: &'a str, run_args: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["xtask", "grade", lab, "--solution", "--format", "json"];
    args.extend(run_args.iter().map(String::as_str));
    args
}

fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Runs `cargo ARGS` in the workspace, output captured, and returns how
/// long it took.
fn cargo(dir: &Path, args: &[&str]) -> Result<(Duration, Output)> {
    run_cargo(Command::new(cargo_program()).current_dir(dir), args)
}

/// [`cargo`] in a copy of the course, without a target directory set in the
/// environment, so that the copy builds into its own (empty) directories.
fn cargo_cold(dir: &Path, args: &[&str]) -> Result<(Duration, Output)> {
    run_cargo(
        Command::new(cargo_program())
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR"),
        args,
    )
}

fn run_cargo(command: &mut Command, args: &[&str]) -> Result<(Duration, Output)> {
    let started = Instant::now();
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let took = started.elapsed();
    // `grade` exits 1 below full marks: the report says so, the time still counts.
    if !output.status.success() && args.first() != Some(&"xtask") {
        bail!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((took, output))
}

fn median(runs: usize, mut measure: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let times = (0..runs.max(1))
        .map(|_| measure())
        .collect::<Result<Vec<_>>>()?;
    Ok(median_of(times))
}

fn median_of(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

/// Cores, CPU model and load average: figures mean little without them.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, {model}; load average {}", load.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run() {
        let ms = Duration::from_millis;
        assert_eq!(median_of(vec![ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median_of(Vec::new()), Duration::ZERO);
    }

    #[test]
    fn reports_are_read_from_concatenated_json_objects() {
        let total = grader::rubric::total(Lab::find("echo").unwrap());
        let output = Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            stdout: format!(
                "{{\"lab\": \"lab1\", \"score\": {total}, \"max_score\": {total}, \"duration\": 390}}\n\
                 {{\"lab\": \"lab2\", \"score\": 0, \"max_score\": 0, \"duration\": 0}}"
            )
            .into_bytes(),
            stderr: Vec::new(),
        };
        let reports = lab_reports(&output).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].score, format!("{total}/{total}"));
        assert_eq!(reports[0].duration, Duration::from_millis(390));
    }
}
