//! A class of seeded submissions: lab 1 copied from the solution or the
//! stub, some with one known bug, each with the score it must get. The
//! class tests grade a few of them; `cargo xtask bench` grades thirty and
//! times it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use grader::builder::workspace_root;
use grader::{Lab, Options};

use crate::class::{Graded, csv, grade_class};
use crate::files::copy_tree;
use crate::options::RunOptions;

/// The score a seeded submission must get.
#[derive(Debug, Clone, Copy)]
enum Predicted {
    /// Every point of the lab, from the rubric.
    FullMarks,
    /// This many points.
    Points(u32),
}

/// A seeded submission: lab 1 from the solution or the stub, with one
/// text substitution, and the score that bug predicts.
#[derive(Debug)]
struct Seeded {
    name: &'static str,
    from: &'static str,
    file: &'static str,
    replace: (&'static str, &'static str),
    /// A file added to the crate: its path and contents, where `{MARKER}`
    /// stands for a path in the class folder that must never be written.
    added: Option<(&'static str, &'static str)>,
    predicted: Predicted,
    /// Whether a real class hands in the like: the README's pictures of a
    /// class ([`pictured`]) show only these, not the attacks on the grader
    /// or the build that hangs (which also makes them slow to draw).
    everyday: bool,
}

/// The kinds of submission, in the order a class cycles through them.
const SEEDED: &[Seeded] = &[
    Seeded {
        name: "correct",
        from: "solutions",
        file: "",
        replace: ("", ""),
        added: None,
        predicted: Predicted::FullMarks,
        everyday: true,
    },
    Seeded {
        name: "untouched",
        from: "labs",
        file: "",
        replace: ("", ""),
        added: None,
        predicted: Predicted::Points(0),
        everyday: true,
    },
    Seeded {
        name: "no-half-close",
        from: "solutions",
        file: "src/bin/echo-client.rs",
        replace: (".shutdown(Shutdown::Write)", ".flush()"),
        // Every client check waits for the server to close; the refused
        // check is gated on the client's output. The server checks (30
        // points, `echo_before_half_close` and `ipv6` included) pass.
        added: None,
        predicted: Predicted::Points(30),
        everyday: true,
    },
    Seeded {
        name: "whole-buffer",
        from: "solutions",
        file: "src/bin/echo-server.rs",
        replace: ("write_all(&buffer[..received])", "write_all(&buffer)"),
        // Only `ready` of the server checks survives stale bytes.
        added: None,
        predicted: Predicted::Points(22),
        everyday: true,
    },
    Seeded {
        name: "kills-its-grader",
        from: "solutions",
        file: "src/bin/echo-server.rs",
        replace: ("fn main()", GRADER_KILLER),
        // Contained, the attack changes nothing: the program serves as the
        // solution does, and every other row is still right.
        added: None,
        predicted: Predicted::FullMarks,
        everyday: false,
    },
    Seeded {
        name: "runs-a-build-script",
        from: "solutions",
        file: "Cargo.toml",
        replace: ("[package]", "[package]\nbuild = \"build.rs\""),
        // Only the sources under src/ come in: the script never runs, and
        // the solution earns its marks.
        added: Some((
            "build.rs",
            "fn main() { std::fs::write(r\"{MARKER}\", \"the build script ran\").unwrap(); }",
        )),
        predicted: Predicted::FullMarks,
        everyday: false,
    },
    Seeded {
        name: "hangs-its-build",
        from: "solutions",
        file: "src/bin/echo-server.rs",
        replace: ("fn main()", HANGING_CONST),
        added: None,
        predicted: Predicted::Points(0),
        everyday: false,
    },
    Seeded {
        name: "does-not-compile",
        from: "solutions",
        file: "src/bin/echo-server.rs",
        replace: ("fn main()", "fn main() -> oops"),
        added: None,
        predicted: Predicted::Points(0),
        everyday: true,
    },
];

/// A constant the compiler evaluates for ever (the lint that would stop
/// it is allowed): a build that hangs with nothing but sources.
const HANGING_CONST: &str = "#[allow(long_running_const_eval)]
const SPIN: u64 = {
    let mut i: u64 = 1;
    while i != 0 {
        i = i.wrapping_mul(3);
    }
    i
};

fn main()";

/// A server that first tries to end its grading: it SIGKILLs its parent and
/// every process whose command line names xtask, then serves as the
/// solution does.
const GRADER_KILLER: &str = "fn main() -> ExitCode {
    let mut targets = vec![std::os::unix::process::parent_id()];
    for entry in std::fs::read_dir(\"/proc\").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join(\"cmdline\")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(\"xtask\") {
            targets.extend(entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()));
        }
    }
    for pid in targets {
        let _ = std::process::Command::new(\"kill\")
            .args([\"-KILL\", &pid.to_string()])
            .status();
    }
    solution_main()
}

fn solution_main()";

/// How long a seeded submission's build may take: long enough for a build
/// under load, short for the one that hangs.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(45);

/// How students upload: a clone, an extra parent folder, a zip of `labs/`,
/// a zip of the crate alone. The class cycles through them.
const LAYOUTS: &[&str] = &["labs/echo", "Lab 1 final/labs/echo", "echo", ""];

/// A time long past, as unzip leaves the files' modification times.
fn unzipped_long_ago(dir: &Path) -> Result<()> {
    let long_ago = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for file in crate::files::list_files(dir)? {
        std::fs::File::options()
            .write(true)
            .open(dir.join(file))?
            .set_modified(long_ago)?;
    }
    Ok(())
}

/// How many kinds of seeded submission there are: a class this size has
/// one of each.
#[cfg(test)]
pub const KINDS: usize = SEEDED.len();

/// What grading a seeded class gave.
#[derive(Debug)]
pub struct ClassRun {
    /// Wall time of `grade_class` (building and grading).
    pub elapsed: Duration,
    /// One line per submission whose score differs from its prediction.
    pub wrong: Vec<String>,
    /// Data rows in the CSV.
    pub csv_rows: usize,
}

/// A submission of a seeded class: its student, what it is made from, and
/// the score it must get.
struct Planned {
    student: String,
    seeded: &'static Seeded,
    layout: &'static str,
    predicted: u32,
}

/// The class of `count` submissions cycling through `kinds`: each one's
/// student (numbered by its place in the class), kind, layout and predicted
/// score. Nothing is written.
fn plan(count: usize, kinds: &[&'static Seeded]) -> Vec<Planned> {
    let full_marks = grader::rubric::total(echo());
    (0..count)
        .map(|index| {
            let seeded = kinds[index % kinds.len()];
            Planned {
                student: format!("student-{index:02}-{}", seeded.name),
                seeded,
                layout: LAYOUTS[index % LAYOUTS.len()],
                predicted: match seeded.predicted {
                    Predicted::FullMarks => full_marks,
                    Predicted::Points(points) => points,
                },
            }
        })
        .collect()
}

/// Every kind, the killer replaced by a correct submission where graded
/// programs cannot be contained (uncontained, it would succeed).
fn every_kind() -> Vec<&'static Seeded> {
    SEEDED
        .iter()
        .map(|seeded| match seeded {
            killer if killer.name == "kills-its-grader" && !can_contain() => &SEEDED[0],
            seeded => seeded,
        })
        .collect()
}

/// The class of `count` everyday submissions (no attack, no hung build)
/// that the README's pictures show: each student's name and predicted
/// score, the same on every machine.
pub fn pictured(count: usize) -> Vec<(String, u32)> {
    plan(count, &everyday_kinds())
        .into_iter()
        .map(|planned| (planned.student, planned.predicted))
        .collect()
}

fn everyday_kinds() -> Vec<&'static Seeded> {
    SEEDED.iter().filter(|seeded| seeded.everyday).collect()
}

/// Writes the class of [`pictured`] under `dir`.
pub fn make_pictured_submissions(dir: &Path, count: usize) -> Result<Vec<(String, u32)>> {
    write_submissions(dir, plan(count, &everyday_kinds()))
}

/// Writes `count` submissions of every kind under `dir`; returns each
/// student's name and predicted score.
pub fn make_submissions(dir: &Path, count: usize) -> Result<Vec<(String, u32)>> {
    write_submissions(dir, plan(count, &every_kind()))
}

/// Writes the planned submissions under `dir`; returns each student's name
/// and predicted score.
fn write_submissions(dir: &Path, planned: Vec<Planned>) -> Result<Vec<(String, u32)>> {
    let root = workspace_root();
    planned
        .into_iter()
        .map(|planned| {
            let Planned {
                student,
                seeded,
                layout,
                predicted,
            } = planned;
            let crate_dir = dir.join(&student).join(layout);
            copy_tree(
                &root.join(seeded.from).join("echo"),
                &crate_dir,
                &["target"],
            )?;
            if !seeded.file.is_empty() {
                let path = crate_dir.join(seeded.file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                ensure!(
                    text.contains(seeded.replace.0),
                    "{} no longer contains the seeded line",
                    seeded.file
                );
                std::fs::write(&path, text.replacen(seeded.replace.0, seeded.replace.1, 1))?;
            }
            if let Some((file, contents)) = seeded.added {
                let marker = build_script_marker(dir);
                let contents = contents.replace("{MARKER}", &marker.display().to_string());
                std::fs::write(crate_dir.join(file), contents)?;
            }
            unzipped_long_ago(&crate_dir)?;
            Ok((student, predicted))
        })
        .collect()
}

/// Where a submission's build script would leave its mark, were it run.
fn build_script_marker(class: &Path) -> std::path::PathBuf {
    class.join("build-script-ran")
}

/// Whether graded programs are kept from signalling the grader.
fn can_contain() -> bool {
    let policy = grader::harness::sandbox::Policy::get();
    policy.pid_namespace || policy.guest.is_some()
}

fn echo() -> &'static Lab {
    Lab::find("echo").expect("lab 1 is echo")
}

/// The options a seeded class is graded with: `run`'s time scale and seed,
/// 7 unless given.
pub fn options(run: &RunOptions) -> Options {
    Options {
        seed: run.seed.unwrap_or(7),
        ..run.grader_options("class")
    }
}

/// One line for each of `predicted`'s students whose grade in `results` is
/// not the predicted score, or whose state is wrong (the untouched stub is
/// labelled so, and nothing else is).
pub fn unpredicted(predicted: &[(String, u32)], results: &[Graded]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (student, score) in predicted {
        match results.iter().find(|graded| &graded.student == student) {
            Some(graded) if graded.report.score == *score => {}
            Some(graded) => wrong.push(format!(
                "{student}: {} where {score} was predicted:\n{}",
                graded.report.score,
                grader::render::text::lab(&graded.report, grader::render::text::Style::default())
            )),
            None => wrong.push(format!("{student}: not graded")),
        }
    }
    for graded in results {
        let stub = graded.report.state == grader::outcome::SubmissionState::UntouchedStub;
        if stub != graded.student.ends_with("-untouched") {
            wrong.push(format!("{}: state {}", graded.student, graded.report.state));
        }
    }
    wrong
}

/// Grades a class of `count` seeded submissions, `jobs` at a time, with
/// [`options`], and compares every score with its prediction.
pub fn grade_seeded_class(count: usize, jobs: usize, run: &RunOptions) -> Result<ClassRun> {
    let dir = tempfile::Builder::new()
        .prefix("seeded-class-")
        .tempdir()
        .context("creating a temporary directory")?;
    let predicted = make_submissions(dir.path(), count)?;
    let started = Instant::now();
    let results = grade_class(dir.path(), &[echo()], jobs, BUILD_TIMEOUT, &options(run))?;
    let elapsed = started.elapsed();
    let mut wrong = unpredicted(&predicted, &results);
    let csv = csv(&results);
    for row in csv.lines().filter(|row| row.contains("-hangs-its-build,")) {
        if !row.contains(&format!(
            "did not finish building within {} s",
            BUILD_TIMEOUT.as_secs()
        )) {
            wrong.push(format!("the row of a hung build does not say so: {row}"));
        }
    }
    if build_script_marker(dir.path()).exists() {
        wrong.push("a submission's build script ran".to_owned());
    }
    // Records, not lines: a reason may hold the compiler's lines, quoted.
    let mut quoted = false;
    let records = csv
        .chars()
        .filter(|c| {
            if *c == '"' {
                quoted = !quoted;
            }
            *c == '\n' && !quoted
        })
        .count();
    let csv_rows = records.saturating_sub(1);
    Ok(ClassRun {
        elapsed,
        wrong,
        csv_rows,
    })
}
