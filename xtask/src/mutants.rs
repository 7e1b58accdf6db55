//! `cargo xtask mutants LAB|all`: mutation testing of the reference
//! solutions, with the grader as the oracle.
//!
//! [cargo-mutants](https://mutants.rs) (`cargo install --locked
//! cargo-mutants`) copies `solutions/`, changes one thing in a lab's
//! solution (a mutant), builds it and runs its `tests/graded.rs`, which
//! grades the executables with a copy of this grader
//! (`solutions/grade_oracle.rs`). A mutant is caught when its grade drops below
//! full marks; one that keeps full marks survives, and shows either a
//! behaviour no check looks at or an equivalent mutant (the same observable
//! behaviour), recorded with a reason in [`REVIEWED`].
//!
//! This command runs cargo-mutants on the selected labs' packages, reads its
//! `outcomes.json`, prints a table per lab and writes the survivors with
//! their diffs to `target/mutants/survivors.md`. The goal is [`GOAL`] of the viable mutants
//! caught in every lab, not counting reviewed equivalents.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use grader::Lab;
use serde_json::Value;

use crate::grade::{Selection, parse_selection};
use crate::options::RunOptions;

/// The reviewed equivalent mutants, relative to the course root.
pub const REVIEWED: &str = "grader/mutants-reviewed.toml";

/// Where cargo-mutants' output (`mutants.out/`), the grader it uses and
/// [`SURVIVORS`] go by default, under the course root.
const OUTPUT: &str = "target/mutants";

/// The survivors with their diffs, in the output directory.
pub const SURVIVORS: &str = "survivors.md";

/// The share of viable mutants (less the reviewed equivalents) each lab's
/// checks must catch.
pub const GOAL: f64 = 0.95;

/// Arguments of `cargo xtask mutants`.
#[derive(Debug, Args)]
pub struct MutantsArgs {
    /// The lab, or all.
    #[arg(value_parser = parse_selection)]
    lab: Selection,
    /// Only mutants in files matching GLOB, relative to `solutions/`
    /// (cargo-mutants' `--file`): `echo/src/bin/echo-server.rs`.
    #[arg(long, value_name = "GLOB")]
    file: Vec<String>,
    /// Only mutants whose name matches REGEX (cargo-mutants' `--re`), as
    /// `cargo mutants --list` in `solutions/` names them.
    #[arg(long, value_name = "REGEX")]
    re: Vec<String>,
    /// How many mutants are built and graded at once.
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// Where the outcomes and the survivors go, inside the course (the
    /// grader copied there finds the course from where it is).
    #[arg(long, value_name = "DIR", default_value = OUTPUT)]
    output: PathBuf,
    #[command(flatten)]
    run: RunOptions,
}

/// What became of one mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// The grade dropped below full marks.
    Caught,
    /// Full marks all the same.
    Missed,
    /// It did not compile.
    Unviable,
    /// The grade did not finish within cargo-mutants' time limit.
    Timeout,
}

/// One mutant and its outcome, from `outcomes.json`.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Its name as `cargo mutants --list` prints it, without the line and
    /// column: `FILE: what changed in FUNCTION`.
    pub name: String,
    /// Where it is in the file.
    pub line: u64,
    /// The cargo package (the lab's).
    pub package: String,
    /// What became of it.
    pub fate: Fate,
    /// The diff, relative to cargo-mutants' output directory.
    pub diff_path: Option<String>,
}

/// One lab's mutants, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Grade below full marks.
    pub caught: usize,
    /// Full marks, and not a reviewed equivalent.
    pub missed: usize,
    /// Did not compile.
    pub unviable: usize,
    /// Did not finish.
    pub timeout: usize,
    /// Full marks, reviewed as equivalent.
    pub equivalent: usize,
}

impl Tally {
    /// The mutants that count: viable ones, less the reviewed equivalents.
    pub fn counted(&self) -> usize {
        self.caught + self.missed + self.timeout
    }

    /// Whether the share caught reaches [`GOAL`] (nothing to catch counts as met).
    pub fn meets_goal(&self) -> bool {
        self.caught as f64 >= GOAL * self.counted() as f64
    }
}

/// One reviewed equivalent mutant, from [`REVIEWED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivalent {
    /// The mutant's name, as cargo-mutants lists it.
    pub mutant: String,
    /// Why no program could tell it from the solution, in one line.
    pub reason: String,
}

/// Reads the reviewed equivalents: `[[equivalent]]` tables with `mutant`
/// and `reason`, each reason one line.
pub fn read_reviewed(text: &str) -> Result<Vec<Equivalent>> {
    let table: toml::Table = toml::from_str(text)?;
    let entries = match table.get("equivalent") {
        None => return Ok(Vec::new()),
        Some(entries) => entries
            .as_array()
            .context("`equivalent` must be an array of tables ([[equivalent]])")?,
    };
    let mut reviewed = Vec::new();
    for entry in entries {
        let field = |name: &str| -> Result<String> {
            let value = entry
                .get(name)
                .and_then(toml::Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .with_context(|| format!("an [[equivalent]] has no `{name}`: {entry:?}"))?;
            Ok(value.to_owned())
        };
        let (mutant, reason) = (field("mutant")?, field("reason")?);
        if reason.contains('\n') {
            bail!("the reason for `{mutant}` is more than one line");
        }
        if reviewed
            .iter()
            .any(|seen: &Equivalent| seen.mutant == mutant)
        {
            bail!("`{mutant}` is reviewed twice");
        }
        reviewed.push(Equivalent { mutant, reason });
    }
    Ok(reviewed)
}

/// The mutants of cargo-mutants' `outcomes.json` (the baseline left out).
pub fn read_outcomes(text: &str) -> Result<Vec<Mutant>> {
    let json: Value = serde_json::from_str(text)?;
    let outcomes = json["outcomes"]
        .as_array()
        .context("outcomes.json has no `outcomes`")?;
    let mut mutants = Vec::new();
    for outcome in outcomes {
        let Some(mutant) = outcome["scenario"].get("Mutant") else {
            continue;
        };
        let fate = match outcome["summary"].as_str() {
            Some("CaughtMutant") => Fate::Caught,
            Some("MissedMutant") => Fate::Missed,
            Some("Unviable") => Fate::Unviable,
            Some("Timeout") => Fate::Timeout,
            other => bail!("a mutant with the outcome {other:?} in outcomes.json"),
        };
        let text = |key: &str| {
            mutant[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("a mutant without a {key} in outcomes.json"))
        };
        let (name, file) = (text("name")?, text("file")?);
        // `FILE:LINE:COL: what changed`: without the position, the name
        // stays the same when lines above it change.
        let what = name
            .split_once(": ")
            .map_or(name.as_str(), |(_, what)| what);
        mutants.push(Mutant {
            name: format!("{file}: {what}"),
            line: mutant["span"]["start"]["line"].as_u64().unwrap_or_default(),
            package: text("package")?,
            fate,
            diff_path: outcome["diff_path"].as_str().map(str::to_owned),
        });
    }
    Ok(mutants)
}

/// Counts the mutants of `package`; a missed mutant that is reviewed
/// counts as equivalent.
pub fn tally(mutants: &[Mutant], package: &str, reviewed: &[Equivalent]) -> Tally {
    let mut tally = Tally::default();
    for mutant in mutants.iter().filter(|mutant| mutant.package == package) {
        match mutant.fate {
            Fate::Caught => tally.caught += 1,
            Fate::Missed if is_reviewed(mutant, reviewed) => tally.equivalent += 1,
            Fate::Missed => tally.missed += 1,
            Fate::Unviable => tally.unviable += 1,
            Fate::Timeout => tally.timeout += 1,
        }
    }
    tally
}

fn is_reviewed(mutant: &Mutant, reviewed: &[Equivalent]) -> bool {
    reviewed.iter().any(|entry| entry.mutant == mutant.name)
}

/// The table: a row per lab, then `LAB: caught X/Y (viable)` lines.
pub fn table(rows: &[(&Lab, Tally)]) -> String {
    let mut out = format!(
        "{:<6} {:<12} {:>7} {:>7} {:>9} {:>8} {:>11}\n",
        "lab", "name", "caught", "missed", "unviable", "timeout", "equivalent"
    );
    for (lab, tally) in rows {
        out += &format!(
            "{:<6} {:<12} {:>7} {:>7} {:>9} {:>8} {:>11}\n",
            lab.name(),
            lab.slug,
            tally.caught,
            tally.missed,
            tally.unviable,
            tally.timeout,
            tally.equivalent
        );
    }
    for (lab, tally) in rows {
        out += &format!(
            "{}: caught {}/{} (viable){}\n",
            lab.name(),
            tally.caught,
            tally.counted(),
            if tally.meets_goal() {
                String::new()
            } else {
                format!(", below the goal of {:.0}%", GOAL * 100.0)
            }
        );
    }
    out
}

/// The survivors file: every missed or timed-out mutant that is not a
/// reviewed equivalent, with its diff, then the reviewed ones with their
/// reasons.
pub fn survivors_report(mutants: &[Mutant], reviewed: &[Equivalent], out_dir: &Path) -> String {
    let mut report = String::from(
        "# Surviving mutants\n\n\
         Each one kept full marks (or hung). Either a check changes or is added \
         to catch it, or it is an equivalent mutant: record it with a one-line \
         reason in grader/mutants-reviewed.toml.\n",
    );
    let survivors: Vec<&Mutant> = mutants
        .iter()
        .filter(|mutant| {
            matches!(mutant.fate, Fate::Missed | Fate::Timeout) && !is_reviewed(mutant, reviewed)
        })
        .collect();
    if survivors.is_empty() {
        report += "\nNone.\n";
    }
    for mutant in survivors {
        let diff = mutant
            .diff_path
            .as_ref()
            .and_then(|path| std::fs::read_to_string(out_dir.join(path)).ok())
            .unwrap_or_else(|| "(no diff recorded)\n".to_owned());
        report += &format!(
            "\n## {}{}\n\nline {}\n\n```diff\n{diff}```\n",
            mutant.name,
            if mutant.fate == Fate::Timeout {
                " (timeout)"
            } else {
                ""
            },
            mutant.line
        );
    }
    let equivalents: Vec<(&Mutant, &Equivalent)> = mutants
        .iter()
        .filter(|mutant| mutant.fate == Fate::Missed)
        .filter_map(|mutant| {
            let entry = reviewed.iter().find(|entry| entry.mutant == mutant.name)?;
            Some((mutant, entry))
        })
        .collect();
    if !equivalents.is_empty() {
        report += "\n# Reviewed equivalents\n\n";
        for (mutant, entry) in equivalents {
            report += &format!("- {}: {}\n", mutant.name, entry.reason);
        }
    }
    report
}

/// `cargo mutants --version`, or how to install it.
fn cargo_mutants_version() -> Result<String> {
    let output = Command::new("cargo")
        .args(["mutants", "--version"])
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!(
            "cargo-mutants is not installed: install it with `cargo install --locked cargo-mutants` (https://mutants.rs/installation.html)"
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A copy of the running grader under `dir`, which the oracle runs: a
/// rebuild of `target/debug/xtask` during a long run cannot change it.
/// It stays under the course root, where it finds the course.
fn stable_grader(dir: &Path) -> Result<PathBuf> {
    let running = std::env::current_exe().context("finding the running xtask")?;
    std::fs::create_dir_all(dir)?;
    let copy = dir.join("grader");
    std::fs::copy(&running, &copy)
        .with_context(|| format!("copying {} to {}", running.display(), copy.display()))?;
    Ok(copy)
}

/// `cargo xtask mutants`.
pub fn run(args: &MutantsArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let root = crate::files::course_with_solutions("mutation testing mutates")?;
    let solutions = root.join("solutions");
    let version = cargo_mutants_version()?;
    let reviewed_path = root.join(REVIEWED);
    let reviewed = read_reviewed(
        &std::fs::read_to_string(&reviewed_path)
            .with_context(|| format!("reading {}", reviewed_path.display()))?,
    )
    .with_context(|| format!("in {}", reviewed_path.display()))?;
    let labs = args.lab.labs();
    let output = root.join(&args.output);
    let grader = stable_grader(&output)?;

    let mut command = Command::new("cargo");
    command
        .arg("mutants")
        .arg("--dir")
        .arg(&solutions)
        .arg("--output")
        .arg(&output)
        .args(["--colors", "never", "--jobs", &args.jobs.to_string()]);
    for lab in &labs {
        command.args(["--package", lab.package]);
    }
    for glob in &args.file {
        command.args(["--file", glob]);
    }
    for regex in &args.re {
        command.args(["--re", regex]);
    }
    command
        .env(grade_oracle_env::GRADER, &grader)
        .env(grade_oracle_env::GRADER_ARGS, args.run.to_args().join(" "));
    eprintln!(
        "{version}: mutating {} (the grader is the oracle; this takes a while)",
        labs.iter()
            .map(|lab| lab.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let status = command.status().context("running cargo mutants")?;
    // 0: all caught, 2: some missed, 3: some timed out; anything else means
    // no usable outcomes (1: usage, 4: the unmutated solution failed).
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        bail!(
            "cargo mutants failed ({status}); its log is in {}",
            output.join("mutants.out").display()
        );
    }
    let out_dir = output.join("mutants.out");
    let outcomes = std::fs::read_to_string(out_dir.join("outcomes.json"))
        .context("reading cargo-mutants' outcomes.json")?;
    let mutants = read_outcomes(&outcomes)?;

    let filtered = !args.file.is_empty() || !args.re.is_empty();
    let rows: Vec<(&Lab, Tally)> = labs
        .iter()
        .map(|lab| (*lab, tally(&mutants, lab.package, &reviewed)))
        // A filter may leave a lab without mutants: no row, rather than 0/0.
        .filter(|(_, tally)| !filtered || tally.counted() + tally.unviable + tally.equivalent > 0)
        .collect();
    println!();
    print!("{}", table(&rows));
    let survivors = output.join(SURVIVORS);
    crate::files::write_atomically(
        &survivors,
        survivors_report(&mutants, &reviewed, &out_dir).as_bytes(),
    )?;
    println!("survivors and their diffs: {}", survivors.display());
    if args.file.is_empty() && args.re.is_empty() {
        for entry in &reviewed {
            let in_selection = labs.iter().any(|lab| {
                entry.mutant.starts_with(&format!(
                    "{}/",
                    lab.solution_dir().trim_start_matches("solutions/")
                ))
            });
            if in_selection && !mutants.iter().any(|mutant| mutant.name == entry.mutant) {
                println!(
                    "note: {REVIEWED} reviews a mutant cargo-mutants no longer makes: {}",
                    entry.mutant
                );
            }
        }
    }
    println!("in {:.0} min", started.elapsed().as_secs_f64() / 60.0);
    Ok(if rows.iter().all(|(_, tally)| tally.meets_goal()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The environment variables of `solutions/grade_oracle.rs` (a crate of the
/// solutions' workspace, so its constants are repeated here).
mod grade_oracle_env {
    pub const GRADER: &str = "SOCKET_LABS_GRADER";
    pub const GRADER_ARGS: &str = "SOCKET_LABS_GRADER_ARGS";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, package: &str, summary: &str) -> Value {
        serde_json::json!({
            "scenario": {"Mutant": {
                "name": name.replacen(": ", ":7:5: ", 1),
                "package": package,
                "file": name.split_once(": ").unwrap().0,
                "span": {"start": {"line": 7, "column": 5}},
            }},
            "summary": summary,
            "diff_path": format!("diff/{package}.diff"),
        })
    }

    fn mutants() -> Vec<Mutant> {
        let json = serde_json::json!({"outcomes": [
            {"scenario": "Baseline", "summary": "Success"},
            outcome("echo/src/bin/echo-server.rs: a", "echo", "CaughtMutant"),
            outcome("echo/src/bin/echo-server.rs: b", "echo", "MissedMutant"),
            outcome("echo/src/bin/echo-server.rs: c", "echo", "MissedMutant"),
            outcome("echo/src/bin/echo-server.rs: d", "echo", "Unviable"),
            outcome("echo/src/bin/echo-server.rs: e", "echo", "Timeout"),
            outcome("udp/src/bin/udp-server.rs: f", "udp", "CaughtMutant"),
        ]});
        read_outcomes(&json.to_string()).unwrap()
    }

    fn reviewed() -> Vec<Equivalent> {
        read_reviewed(
            r#"
            [[equivalent]]
            mutant = "echo/src/bin/echo-server.rs: c"
            reason = "the same bytes go out either way"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn outcomes_are_read_without_the_baseline() {
        let mutants = mutants();
        assert_eq!(mutants.len(), 6);
        assert_eq!(mutants[1].fate, Fate::Missed);
        assert_eq!(mutants[1].diff_path.as_deref(), Some("diff/echo.diff"));
        assert_eq!(mutants[1].name, "echo/src/bin/echo-server.rs: b");
        assert_eq!(mutants[1].line, 7);
        let bad = serde_json::json!({"outcomes": [outcome("a.rs: a", "echo", "Failure")]});
        assert!(read_outcomes(&bad.to_string()).is_err());
    }

    #[test]
    fn reviewed_equivalents_are_subtracted_from_the_viable_mutants() {
        let tally = tally(&mutants(), "echo", &reviewed());
        assert_eq!(
            tally,
            Tally {
                caught: 1,
                missed: 1,
                unviable: 1,
                timeout: 1,
                equivalent: 1
            }
        );
        assert_eq!(tally.counted(), 3);
        assert!(!tally.meets_goal());
    }

    #[test]
    fn the_table_has_a_caught_line_per_lab() {
        let echo = Lab::find("echo").unwrap();
        let udp = Lab::find("udp").unwrap();
        let rows = [
            (echo, tally(&mutants(), "echo", &reviewed())),
            (udp, tally(&mutants(), "udp", &reviewed())),
        ];
        let table = table(&rows);
        assert!(
            table.contains("lab1: caught 1/3 (viable), below the goal of 95%\n"),
            "{table}"
        );
        assert!(table.contains("lab5: caught 1/1 (viable)\n"), "{table}");
        assert!(
            table.contains("lab1   echo               1       1         1        1           1\n"),
            "{table}"
        );
    }

    #[test]
    fn survivors_leave_out_the_reviewed_and_list_them_with_their_reasons() {
        let report = survivors_report(&mutants(), &reviewed(), Path::new("/nonexistent"));
        assert!(report.contains("## echo/src/bin/echo-server.rs: b\n"));
        assert!(report.contains("## echo/src/bin/echo-server.rs: e (timeout)\n"));
        assert!(!report.contains("## echo/src/bin/echo-server.rs: c"));
        assert!(
            report.contains("- echo/src/bin/echo-server.rs: c: the same bytes go out either way\n")
        );
    }

    #[test]
    fn a_review_needs_a_mutant_and_a_one_line_reason_once() {
        for bad in [
            "[[equivalent]]\nmutant = \"a\"\n",
            "[[equivalent]]\nreason = \"r\"\n",
            "[[equivalent]]\nmutant = \"a\"\nreason = \"\"\"two\nlines\"\"\"\n",
            "[[equivalent]]\nmutant = \"a\"\nreason = \"r\"\n[[equivalent]]\nmutant = \"a\"\nreason = \"r\"\n",
        ] {
            assert!(read_reviewed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "reads grader/mutants-reviewed.toml, which names the solutions' internals and stays out of the student edition"
    )]
    fn the_committed_reviews_parse() {
        let text =
            std::fs::read_to_string(grader::builder::workspace_root().join(REVIEWED)).unwrap();
        read_reviewed(&text).unwrap();
    }
}
