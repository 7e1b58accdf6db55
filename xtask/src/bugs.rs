//! `cargo xtask bugs [LAB|all]`: the realistic-bug suite, graded.
//!
//! cargo-mutants changes operators and return values; students make design
//! mistakes: a client that reads once, a buffer shared by every connection,
//! a lock held across a write. The suite (`solutions/bugs/`) holds such
//! mistakes as patches to the reference solutions, one file per bug
//! (`LAB/NAME.patch`, paths relative to `solutions/`), and their metadata in
//! one place, [`MANIFEST`]: the lab, what the student did, and the handout
//! section a teacher would send them to, decided from the handout before
//! grading.
//!
//! This command copies `solutions/` once into a temporary folder, and for
//! each bug applies its patch there (never in the working tree), builds the
//! lab into a target folder shared by every bug and kept between runs
//! ([`TARGET`]), grades the executables like `grade LAB --bin-dir DIR`, and
//! undoes the patch. A bug is named *right* when the first failed check
//! links the expected section (a diagnosis from evidence counts: it is the
//! link the student reads); full marks are a miss. It prints the table
//! bug → first failed check → linked section → right?, the totals, and the
//! failing grades' median and slowest time; writes it to
//! `target/bugs/table.md` and each bug's report to `target/bugs/reports/`;
//! and exits 1 below [`GOAL`] right. Course-only: the student edition has
//! no `solutions/`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use grader::harness::Binaries;
use grader::render::text::Style;
use grader::{LABS, Lab};
use grader::{LabReport, Status};

use crate::grade::{Selection, parse_selection};
use crate::options::RunOptions;

/// The suite's folder, relative to the course root.
pub const SUITE: &str = "solutions/bugs";

/// The suite's metadata, one `[[bug]]` per patch.
pub const MANIFEST: &str = "solutions/bugs/bugs.toml";

/// Where the shared target folder, the table and the reports go, under the
/// course root.
const TARGET: &str = "target/bugs";

/// The share of bugs whose first failed check must link the expected section.
pub const GOAL: f64 = 0.9;

/// Arguments of `cargo xtask bugs`.
#[derive(Debug, Args)]
pub struct BugsArgs {
    /// The lab, or all.
    #[arg(value_parser = parse_selection, default_value = "all")]
    lab: Selection,
    /// Only the bugs whose name contains TEXT (repeatable).
    #[arg(long, value_name = "TEXT")]
    only: Vec<String>,
    #[command(flatten)]
    run: RunOptions,
}

/// One bug of the suite, as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bug {
    /// Its name: the patch is `LAB/NAME.patch`.
    pub name: String,
    /// The lab whose solution it patches.
    pub lab: &'static Lab,
    /// The mistake, in the student's terms.
    pub description: String,
    /// The handout section a teacher would send the student to: an anchor
    /// of `labs/SLUG/README.md` (`#the-half-close`).
    pub section: String,
}

impl Bug {
    /// Its patch, relative to the course root.
    pub fn patch(&self) -> String {
        format!("{SUITE}/{}/{}.patch", self.lab.slug, self.name)
    }
}

/// Reads the manifest: `[[bug]]` tables with `name`, `lab` (a slug),
/// `description` and `section` (an anchor, `#…`), each name once per lab.
pub fn read_manifest(text: &str) -> Result<Vec<Bug>> {
    let table: toml::Table = toml::from_str(text)?;
    let entries = table
        .get("bug")
        .and_then(toml::Value::as_array)
        .context("the manifest has no [[bug]] tables")?;
    let mut bugs: Vec<Bug> = Vec::new();
    for entry in entries {
        let field = |name: &str| -> Result<String> {
            entry
                .get(name)
                .and_then(toml::Value::as_str)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .with_context(|| format!("a [[bug]] has no `{name}`: {entry:?}"))
        };
        let name = field("name")?;
        let slug = field("lab")?;
        let lab = LABS
            .iter()
            .find(|lab| lab.slug == slug)
            .with_context(|| format!("{name}: no lab has the slug `{slug}`"))?;
        let section = field("section")?;
        if !section.starts_with('#') {
            bail!("{name}: the section `{section}` is not an anchor (`#…`)");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            bail!("{name}: a name is lowercase letters, digits and `-` (it names a file)");
        }
        if bugs.iter().any(|bug| bug.lab == lab && bug.name == name) {
            bail!("{slug}/{name} is in the manifest twice");
        }
        bugs.push(Bug {
            name,
            lab,
            description: field("description")?,
            section,
        });
    }
    Ok(bugs)
}

/// What the grade of one bug said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A check failed: the first one, and the section its failure links.
    Failed {
        /// The first failed check's id, in rubric order.
        check: String,
        /// The anchor its failure links (a diagnosis's, or the rubric's).
        section: String,
    },
    /// Every check passed: the bug went unnoticed.
    FullMarks,
    /// The patched solution did not build (or the patch did not apply):
    /// the suite needs fixing.
    Broken(String),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The bug.
    pub bug: Bug,
    /// What its grade said.
    pub verdict: Verdict,
    /// Its score, `12/48`.
    pub score: String,
    /// How long the grade took (the build not included).
    pub duration: Duration,
}

impl Row {
    /// Whether the first failed check links the section the manifest expects.
    pub fn right(&self) -> bool {
        matches!(&self.verdict, Verdict::Failed { section, .. } if *section == self.bug.section)
    }
}

/// The first failed check of a report and the section its failure links.
pub fn verdict(report: &LabReport) -> Verdict {
    match report
        .checks
        .iter()
        .find(|check| check.status == Status::Failed)
    {
        Some(check) => Verdict::Failed {
            check: check.id.clone(),
            section: check
                .handout
                .find('#')
                .map_or_else(String::new, |at| check.handout[at..].to_owned()),
        },
        None if report.full_marks() => Verdict::FullMarks,
        None => Verdict::Broken(format!(
            "no check failed, yet {}/{}",
            report.score, report.max_score
        )),
    }
}

/// The table: a row per bug, then the totals and the failing grades' times.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| lab | bug | first failed check | linked section | expected section | right? | time |\n\
         |---|---|---|---|---|---|---:|\n",
    );
    for row in rows {
        let (check, section) = match &row.verdict {
            Verdict::Failed { check, section } => (check.as_str(), section.as_str()),
            Verdict::FullMarks => ("(full marks)", "—"),
            Verdict::Broken(_) => ("(did not build)", "—"),
        };
        out += &format!(
            "| {} | {} | {check} | {section} | {} | {} | {:.1} s |\n",
            row.bug.lab.name(),
            row.bug.name,
            if row.right() { "—" } else { &row.bug.section },
            if row.right() { "✓" } else { "✗" },
            row.duration.as_secs_f64()
        );
    }
    out += "\n";
    out += &totals(rows);
    out
}

/// `right 40/44 (91%)`, the full-marks count, and the failing grades'
/// median and slowest time.
pub fn totals(rows: &[Row]) -> String {
    let right = rows.iter().filter(|row| row.right()).count();
    let full = rows
        .iter()
        .filter(|row| row.verdict == Verdict::FullMarks)
        .count();
    let broken = rows
        .iter()
        .filter(|row| matches!(row.verdict, Verdict::Broken(_)))
        .count();
    let mut out = format!(
        "right {right}/{} ({:.0}%), goal {:.0}%; full marks (missed): {full}; did not build: {broken}\n",
        rows.len(),
        share(right, rows.len()) * 100.0,
        GOAL * 100.0
    );
    let mut failing: Vec<Duration> = rows
        .iter()
        .filter(|row| matches!(row.verdict, Verdict::Failed { .. }))
        .map(|row| row.duration)
        .collect();
    failing.sort();
    if let (Some(median), Some(max)) = (failing.get(failing.len() / 2), failing.last()) {
        out += &format!(
            "failing grades: median {:.1} s, slowest {:.1} s (over {})\n",
            median.as_secs_f64(),
            max.as_secs_f64(),
            failing.len()
        );
    }
    out
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// The files a unified diff changes (`+++ b/PATH`), relative to where it applies.
pub fn patched_files(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|line| line.strip_prefix("+++ b/"))
        .map(|path| path.split('\t').next().unwrap_or(path).trim().to_owned())
        .collect()
}

/// A copy of `solutions/` in which bugs are applied one at a time.
struct Workbench {
    /// The working tree's solutions, where pristine files come from.
    original: PathBuf,
    /// The temporary copy.
    copy: tempfile::TempDir,
    /// The target folder every bug's build shares.
    target: PathBuf,
}

impl Workbench {
    fn new(root: &Path) -> Result<Self> {
        let original = root.join("solutions");
        let copy = tempfile::Builder::new()
            .prefix("socket-labs-bugs-")
            .tempdir()
            .context("creating a temporary directory")?;
        crate::files::copy_tree(&original, copy.path(), &["target", "bugs", ".swap"])?;
        Ok(Self {
            original,
            copy,
            target: root.join(TARGET).join("target"),
        })
    }

    /// Applies `bug`, builds its lab and copies the lab's executables into a
    /// folder of their own; undoes the patch whatever happens.
    fn build(&self, root: &Path, bug: &Bug) -> Result<Result<PathBuf, String>> {
        let patch_path = root.join(bug.patch());
        let patch = std::fs::read_to_string(&patch_path)
            .with_context(|| format!("reading {}", patch_path.display()))?;
        let files = patched_files(&patch);
        if files.is_empty() {
            return Ok(Err(format!("{} changes no file", bug.patch())));
        }
        let applied = Command::new("patch")
            .args([
                "-p1",
                "--batch",
                "--forward",
                "--quiet",
                "--no-backup-if-mismatch",
            ])
            .arg("-d")
            .arg(self.copy.path())
            .arg("-i")
            .arg(&patch_path)
            .output()
            .context("running patch (GNU patch)")?;
        let built = if applied.status.success() {
            self.build_applied(bug)
        } else {
            Ok(Err(format!(
                "the patch does not apply: {}{}",
                String::from_utf8_lossy(&applied.stdout),
                String::from_utf8_lossy(&applied.stderr)
            )))
        };
        for file in &files {
            let (from, to) = (self.original.join(file), self.copy.path().join(file));
            std::fs::copy(&from, &to)
                .with_context(|| format!("restoring {} after {}", to.display(), bug.name))?;
            // The same file, newer: the next build of this lab compiles it again.
            let file = std::fs::File::options().append(true).open(&to)?;
            file.set_modified(std::time::SystemTime::now())?;
        }
        built
    }

    fn build_applied(&self, bug: &Bug) -> Result<Result<PathBuf, String>> {
        let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(self.copy.path())
            .env("CARGO_TARGET_DIR", &self.target)
            .args(["build", "--offline", "--quiet", "--bins", "--package"])
            .arg(bug.lab.package)
            .output()
            .context("running cargo build")?;
        if !output.status.success() {
            return Ok(Err(format!(
                "cargo build failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let bin = self.copy.path().join("bin").join(bug.lab.slug);
        if bin.exists() {
            std::fs::remove_dir_all(&bin)?;
        }
        std::fs::create_dir_all(&bin)?;
        for name in bug.lab.binaries {
            let built = self.target.join("debug").join(name);
            std::fs::copy(&built, bin.join(name))
                .with_context(|| format!("copying {}", built.display()))?;
        }
        Ok(Ok(bin))
    }
}

/// `cargo xtask bugs`.
pub fn run(args: &BugsArgs) -> Result<ExitCode> {
    let root = crate::files::course_with_solutions("the realistic bugs patch")?;
    let manifest = root.join(MANIFEST);
    let bugs = read_manifest(
        &std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?,
    )
    .with_context(|| format!("in {}", manifest.display()))?;
    let labs = args.lab.labs();
    let selected: Vec<&Bug> = bugs
        .iter()
        .filter(|bug| labs.contains(&bug.lab))
        .filter(|bug| args.only.is_empty() || args.only.iter().any(|only| bug.name.contains(only)))
        .collect();
    if selected.is_empty() {
        bail!("no bug of the suite matches");
    }
    let out_dir = root.join(TARGET);
    let reports = out_dir.join("reports");
    std::fs::create_dir_all(&reports)?;
    let started = Instant::now();
    let bench = Workbench::new(&root)?;
    eprintln!(
        "grading {} realistic bugs (the first build of the solutions' dependencies into {} takes a while)",
        selected.len(),
        bench.target.display()
    );
    let mut rows = Vec::new();
    for bug in selected {
        let built = bench.build(&root, bug)?;
        let row = match built {
            Err(message) => Row {
                bug: bug.clone(),
                verdict: Verdict::Broken(message),
                score: "—".into(),
                duration: Duration::ZERO,
            },
            Ok(bin) => {
                let binaries = Binaries::from_dir(bug.lab, &bin);
                let options = args
                    .run
                    .grader_options(format!("bug {}/{}", bug.lab.slug, bug.name));
                let graded = Instant::now();
                let report = grader::grade(bug.lab, Ok(binaries), &options);
                let duration = graded.elapsed();
                let text = grader::render::text::lab(
                    &report,
                    Style {
                        color: false,
                        verbose: false,
                    },
                );
                let file = reports.join(format!("{}-{}.txt", bug.lab.slug, bug.name));
                crate::files::write_atomically(&file, text.as_bytes())?;
                Row {
                    bug: bug.clone(),
                    verdict: verdict(&report),
                    score: format!("{}/{}", report.score, report.max_score),
                    duration,
                }
            }
        };
        eprintln!(
            "{} {}/{}: {} ({}, {:.1} s)",
            if row.right() { "✓" } else { "✗" },
            bug.lab.slug,
            bug.name,
            match &row.verdict {
                Verdict::Failed { check, section } => format!("{check} {section}"),
                Verdict::FullMarks => "full marks".into(),
                Verdict::Broken(message) => message.lines().take(12).collect::<Vec<_>>().join("\n"),
            },
            row.score,
            row.duration.as_secs_f64()
        );
        rows.push(row);
    }
    let table = table(&rows);
    println!();
    print!("{table}");
    crate::files::write_atomically(&out_dir.join("table.md"), table.as_bytes())?;
    println!(
        "reports: {}; in {:.1} min",
        reports.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    let right = rows.iter().filter(|row| row.right()).count();
    Ok(if share(right, rows.len()) >= GOAL {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Vec<Bug> {
        let root = grader::builder::workspace_root();
        let text = std::fs::read_to_string(root.join(MANIFEST)).unwrap();
        read_manifest(&text).unwrap()
    }

    #[test]
    fn a_bug_needs_every_field_a_known_lab_and_an_anchor() {
        let good = "[[bug]]\nname = \"a\"\nlab = \"echo\"\ndescription = \"d\"\nsection = \"#x\"\n";
        assert_eq!(read_manifest(good).unwrap().len(), 1);
        for bad in [
            good.replace("name = \"a\"\n", ""),
            good.replace("echo", "ech"),
            good.replace("#x", "x"),
            good.replace("description = \"d\"\n", ""),
            good.replace("\"a\"", "\"A b\""),
            format!("{good}{good}"),
            String::new(),
        ] {
            assert!(read_manifest(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_suite_has_thirty_bugs_over_every_lab_each_with_its_patch() {
        let root = grader::builder::workspace_root();
        if !root.join(MANIFEST).exists() {
            eprintln!("skipped: this edition has no solutions");
            return;
        }
        let bugs = suite();
        assert!(bugs.len() >= 30, "{} bugs", bugs.len());
        for lab in LABS {
            assert!(
                bugs.iter().filter(|bug| bug.lab == lab).count() >= 3,
                "{lab} has fewer than 3 bugs"
            );
        }
        for bug in &bugs {
            let patch = std::fs::read_to_string(root.join(bug.patch()))
                .unwrap_or_else(|err| panic!("{}: {err}", bug.patch()));
            let files = patched_files(&patch);
            assert!(!files.is_empty(), "{} changes nothing", bug.patch());
            for file in files {
                assert!(
                    file.starts_with(&format!("{}/src/", bug.lab.slug)),
                    "{} changes {file}, outside its lab's sources",
                    bug.patch()
                );
            }
        }
        // Every patch has its entry.
        for lab in LABS {
            let dir = root.join(SUITE).join(lab.slug);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".patch").unwrap_or(&name);
                assert!(
                    bugs.iter().any(|bug| bug.lab == lab && bug.name == name),
                    "{}/{name}.patch has no [[bug]] in {MANIFEST}",
                    lab.slug
                );
            }
        }
    }

    /// A patch that no longer applies (its solution changed since) is a
    /// bug the suite cannot grade: found here, in milliseconds, rather than
    /// by a row "did not build" minutes into `cargo xtask bugs`.
    #[test]
    fn every_patch_applies_to_the_solutions_as_they_are() {
        let root = grader::builder::workspace_root();
        if !root.join(MANIFEST).exists() {
            return;
        }
        if Command::new("patch").arg("--version").output().is_err() {
            eprintln!("skipped: GNU patch is not installed (.ci/run installs it)");
            return;
        }
        for bug in suite() {
            let checked = Command::new("patch")
                .args(["-p1", "--dry-run", "--batch", "--forward", "--quiet"])
                .arg("-d")
                .arg(root.join("solutions"))
                .arg("-i")
                .arg(root.join(bug.patch()))
                .output()
                .unwrap();
            assert!(
                checked.status.success(),
                "{} does not apply to solutions/: {}{}",
                bug.patch(),
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }

    #[test]
    fn every_expected_section_is_a_heading_of_its_handout() {
        let root = grader::builder::workspace_root();
        if !root.join(MANIFEST).exists() {
            return;
        }
        for bug in suite() {
            let handout = std::fs::read_to_string(root.join(bug.lab.handout())).unwrap();
            let anchors: Vec<String> = handout
                .lines()
                .filter(|line| line.starts_with('#'))
                .map(|line| grader::handout::anchor(line.trim_start_matches('#')))
                .collect();
            assert!(
                anchors.contains(&bug.section[1..].to_owned()),
                "{}/{}: no section {} in {}",
                bug.lab.slug,
                bug.name,
                bug.section,
                bug.lab.handout()
            );
        }
    }

    fn row(section: &str, verdict: Verdict, seconds: u64) -> Row {
        Row {
            bug: Bug {
                name: "b".into(),
                lab: &LABS[0],
                description: "d".into(),
                section: section.into(),
            },
            verdict,
            score: "0/4".into(),
            duration: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn right_is_the_expected_section_and_full_marks_a_miss() {
        let failed = |section: &str| Verdict::Failed {
            check: "echo.hello".into(),
            section: section.into(),
        };
        let rows = [
            row("#a", failed("#a"), 1),
            row("#a", failed("#b"), 3),
            row("#a", Verdict::FullMarks, 2),
            row("#a", Verdict::Broken("no".into()), 0),
        ];
        assert!(rows[0].right() && !rows[1].right() && !rows[2].right() && !rows[3].right());
        let table = table(&rows);
        assert!(
            table.contains("right 1/4 (25%), goal 90%; full marks (missed): 1; did not build: 1"),
            "{table}"
        );
        assert!(
            table.contains("failing grades: median 3.0 s, slowest 3.0 s (over 2)"),
            "{table}"
        );
        assert!(
            table.contains("| lab1 | b | echo.hello | #b | #a | ✗ | 3.0 s |"),
            "{table}"
        );
    }

    #[test]
    fn the_files_of_a_patch_are_its_new_names() {
        let patch = "--- a/echo/src/x.rs\n+++ b/echo/src/x.rs\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(patched_files(patch), ["echo/src/x.rs"]);
    }
}
