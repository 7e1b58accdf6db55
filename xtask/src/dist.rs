//! `cargo xtask dist OUTDIR`: the student edition of the course.
//!
//! The committed course (`git archive HEAD`, never the working folder), without
//! the reference solutions, the performance bench, the course's own tests
//! (they grade the solutions) and the reviewed mutants of the solutions,
//! plus a GitHub Classroom workflow that grades
//! each check with its points. `--lab LAB` (repeatable) makes an edition for
//! a one-lab assignment: only those labs, and a workflow that grades only them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use grader::builder::workspace_root;
use grader::{LABS, Lab};

use crate::files::{export_committed, git};
use crate::swap::swapped_labs;

/// Arguments of `cargo xtask dist`.
#[derive(Debug, Args)]
pub struct DistArgs {
    /// Where to write the student edition (must not exist, or be empty).
    outdir: PathBuf,
    /// Only this lab (repeatable): an edition whose workflow grades only it.
    #[arg(long = "lab", value_name = "LAB", value_parser = parse_lab)]
    labs: Vec<&'static Lab>,
}

fn parse_lab(name: &str) -> Result<&'static Lab, String> {
    Lab::find(name).ok_or_else(|| {
        format!(
            "no lab is called `{name}`; valid names: {}",
            Lab::valid_names()
        )
    })
}

/// Minutes a Classroom step may take. The first step of a run fetches the
/// dependencies and builds the grader and the lab from a clean cargo home:
/// for a one-lab edition, 2 min 53 s and 4 min 15 s in two measurements on 2
/// cores shared with other builds (load 4 to 7), slower than a hosted runner.
/// Ten minutes is the slower of the two with a margin of more than 2x, plus
/// the check itself (its own limits end it in well under a minute); the
/// later steps take seconds.
const STEP_TIMEOUT_MINUTES: u32 = 10;

/// Paths left out of the student edition: the solutions, the bench, CI, and
/// the course's tests that grade the grader with its fixtures
/// (`grader/tests/fixtures/`) or need Chromium (the book's). The
/// kernel-claims tests stay: the handouts link them, and the book shows them.
pub fn left_out(path: &str) -> bool {
    path != "grader/tests/kernel_claims.rs"
        && [
            "solutions/",
            "grader/tests/",
            "xtask/tests/containment.rs",
            "xtask/tests/book.rs",
            // Mutation testing mutates the solutions: its test, and the
            // reviewed mutants that name the solutions' functions and guards.
            "xtask/tests/mutants.rs",
            "grader/mutants-reviewed.toml",
            "xtask/src/course_check/",
            "xtask/src/screenshots.rs",
            ".ci/",
            "bench/",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// A file without its `course-only` blocks: in the root manifest, the
/// lines that name the solutions' workspace; in `xtask/src/main.rs`, the
/// course-only commands (`course-check`). A block is the lines between
/// `# course-only: begin` (or `// course-only: begin`, either followed by
/// a remark) and `# course-only: end`.
fn without_course_only(manifest: &str) -> String {
    let mut out = String::new();
    let mut course_only = false;
    for line in manifest.lines() {
        let marker = line
            .trim()
            .trim_start_matches('#')
            .trim_start_matches("//")
            .trim_start();
        match marker {
            _ if marker.starts_with("course-only: begin") => course_only = true,
            "course-only: end" => course_only = false,
            _ if !course_only => {
                let _ = writeln!(out, "{line}");
            }
            _ => {}
        }
    }
    out
}

/// Writes the student edition of the committed course into `outdir`, with
/// the labs in `labs` (every lab when empty); returns how many files it wrote.
pub fn write(root: &Path, outdir: &Path, labs: &[&'static Lab]) -> Result<usize> {
    let labs: Vec<&'static Lab> = if labs.is_empty() {
        LABS.iter().collect()
    } else {
        LABS.iter().filter(|lab| labs.contains(lab)).collect()
    };
    let swapped = swapped_labs(root);
    if !swapped.is_empty() {
        let names: Vec<String> = swapped.iter().map(|lab| lab.to_string()).collect();
        bail!(
            "{} {} the reference solution in place of the stub; swap back first \
             (`cargo xtask swap LAB --to student`), so that no solution reaches students",
            names.join(", "),
            if swapped.len() == 1 { "holds" } else { "hold" }
        );
    }
    if outdir.exists() && std::fs::read_dir(outdir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; choose a new directory",
            outdir.display()
        );
    }
    let committed = git(root, &["ls-tree", "-r", "-z", "--name-only", "HEAD"])
        .context("dist exports the committed course, and needs a git checkout of it")?;
    refuse_committed_solutions(root)?;
    let paths: Vec<&str> = committed
        .split('\0')
        .filter(|path| !path.is_empty() && !left_out(path))
        .filter(|path| {
            !path.starts_with("labs/")
                || labs
                    .iter()
                    .any(|lab| path.starts_with(&format!("{}/", lab.student_dir())))
        })
        .collect();
    std::fs::create_dir_all(outdir)?;
    export_committed(root, &paths, outdir)?;
    let mut manifest = without_course_only(&std::fs::read_to_string(outdir.join("Cargo.toml"))?);
    let left: Vec<&Lab> = LABS.iter().filter(|lab| !labs.contains(lab)).collect();
    for member in members_needing(outdir, &manifest, &left)? {
        std::fs::remove_dir_all(outdir.join(&member))?;
        manifest = without_member(&manifest, &member);
    }
    std::fs::write(outdir.join("Cargo.toml"), manifest)?;
    // The course-only commands' modules are left out: so are their lines.
    let main = outdir.join("xtask/src/main.rs");
    std::fs::write(&main, without_course_only(&std::fs::read_to_string(&main)?))?;
    if left.iter().any(|lab| root.join(lab.student_dir()).exists()) {
        prune_lock(outdir);
    }
    let workflow = outdir.join(".github/workflows/classroom.yml");
    std::fs::create_dir_all(workflow.parent().expect("has a parent"))?;
    std::fs::write(workflow, classroom_workflow(&labs))?;
    Ok(paths.len() + 1)
}

/// Takes the left-out crates out of the edition's `Cargo.lock`, keeping every
/// version as it is (any resolving cargo command does that), so that
/// `--locked` builds (Gradescope's setup) accept it.
fn prune_lock(outdir: &Path) {
    let resolved =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["metadata", "--offline", "--format-version=1"])
            .current_dir(outdir)
            .stdout(std::process::Stdio::null())
            .output();
    if !resolved.is_ok_and(|output| output.status.success()) {
        eprintln!(
            "note: could not update the edition's Cargo.lock offline; run `cargo update --workspace` in it before a --locked build"
        );
    }
}

/// The workspace members (not globs) of `manifest` in `outdir` that depend
/// on the crate of a lab in `left` (lab 4's grader tests depend on
/// `labs/app`): in an edition without that lab they cannot load, and would
/// stop cargo loading the workspace at all.
fn members_needing(outdir: &Path, manifest: &str, left: &[&Lab]) -> Result<Vec<String>> {
    let manifest: toml::Table = manifest.parse()?;
    let members = manifest
        .get("workspace")
        .and_then(|workspace| workspace.get("members"))
        .and_then(|members| members.as_array())
        .cloned()
        .unwrap_or_default();
    let mut needing = Vec::new();
    for member in members.iter().filter_map(|member| member.as_str()) {
        let Ok(text) = std::fs::read_to_string(outdir.join(member).join("Cargo.toml")) else {
            continue;
        };
        let crate_manifest: toml::Table = text.parse()?;
        let needs_a_left_lab = ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .filter_map(|section| crate_manifest.get(*section)?.as_table())
            .flat_map(|deps| deps.values())
            .filter_map(|dep| dep.get("path")?.as_str())
            .any(|path| {
                let target = normalize(&Path::new(member).join(path));
                left.iter()
                    .any(|lab| target == Path::new(&lab.student_dir()))
            });
        if needs_a_left_lab {
            needing.push(member.to_owned());
        }
    }
    Ok(needing)
}

/// `path` with its `..` resolved lexically (`grader/framing/../../labs/app`
/// is `labs/app`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The manifest with `"member"` taken out of its `members` line.
fn without_member(manifest: &str, member: &str) -> String {
    let quoted = format!("\"{member}\"");
    manifest
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("members") {
                line.replace(&format!("{quoted}, "), "")
                    .replace(&format!(", {quoted}"), "")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Refuses when a committed file under `labs/` is a committed solution file,
/// byte for byte: a swap committed by mistake.
fn refuse_committed_solutions(root: &Path) -> Result<()> {
    let blobs = |tree: &str| -> Result<Vec<(String, String)>> {
        let listing = git(root, &["ls-tree", "-r", "HEAD", "--", tree])?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let (meta, path) = line.split_once('\t')?;
                Some((meta.split_whitespace().nth(2)?.to_owned(), path.to_owned()))
            })
            .collect())
    };
    let solutions = blobs("solutions/")?;
    let leaked: Vec<String> = blobs("labs/")?
        .into_iter()
        .filter(|(blob, path)| {
            path.contains("/src/") && solutions.iter().any(|(other, _)| other == blob)
        })
        .map(|(_, path)| path)
        .collect();
    if !leaked.is_empty() {
        bail!(
            "the committed {} equal a reference solution's file; commit the stubs back first",
            leaked.join(", ")
        );
    }
    Ok(())
}

/// The id of a check's workflow step: letters and digits only, because the
/// reporter rejects any other character in its `runners` list.
fn step_id(check: &str) -> String {
    let mut id = String::new();
    let mut upper = false;
    for c in check.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    id
}

/// A GitHub Classroom autograding workflow for `labs`: one graded step per
/// check, worth its rubric points.
///
/// Every step builds what it grades (`cargo xtask grade` compiles the grader
/// and the lab's crate), so a lab that does not compile costs only its own
/// checks, and the reporter runs whatever happened before it. A step that
/// grades one check runs the check's gate too (`requires` in the rubric).
pub fn classroom_workflow(labs: &[&'static Lab]) -> String {
    let mut steps = String::new();
    let mut reporter_env = String::new();
    let mut ids = Vec::new();
    let mut total = 0;
    for lab in labs {
        for spec in grader::rubric::for_lab(lab) {
            let id = step_id(&spec.id);
            let _ = write!(
                steps,
                "      - name: {check}\n        id: {id}\n        uses: classroom-resources/autograding-command-grader@v1\n        with:\n          test-name: \"{check}\"\n          command: cargo xtask grade {lab} --check {check}\n          timeout: {STEP_TIMEOUT_MINUTES}\n          max-score: {points}\n",
                check = spec.id,
                lab = lab.name(),
                points = spec.points,
            );
            let _ = writeln!(
                reporter_env,
                "          {}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"",
                id.to_uppercase()
            );
            ids.push(id);
            total += spec.points;
        }
    }
    let names: Vec<String> = labs.iter().map(|lab| lab.name()).collect();
    format!(
        "# Generated by `cargo xtask dist`: grades {labs} ({total} points), a check a step.\n\
         # Each step builds what it grades, so a lab that does not compile costs only its checks.\n\
         # The grader runs from this repository; see the course README (\"What the grader trusts\").\n\
         name: Autograding Tests\n\
         on: [push, workflow_dispatch, repository_dispatch]\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n    if: github.actor != 'github-classroom[bot]'\n    steps:\n\
         \x20     - name: Checkout code\n        uses: actions/checkout@v4\n\
         {steps}\
         \x20     - name: Autograding Reporter\n        if: always()\n        uses: classroom-resources/autograding-grading-reporter@v1\n        env:\n{reporter_env}\
         \x20       with:\n          runners: {}\n",
        ids.join(","),
        labs = names.join(", "),
    )
}

/// `cargo xtask dist`.
pub fn run(args: &DistArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let written = write(&root, &args.outdir, &args.labs)?;
    if let Ok(changed) = git(&root, &["status", "--porcelain"]) {
        let count = changed.lines().count();
        if count > 0 {
            println!(
                "note: {count} uncommitted change(s) in the working folder are not in the edition (it is the committed HEAD)"
            );
        }
    }
    println!(
        "wrote the student edition ({written} files) to {}",
        args.outdir.display()
    );
    // A check of a lab the edition has: the first it shipped.
    let first = args
        .labs
        .iter()
        .min_by_key(|lab| LABS.iter().position(|other| other == **lab))
        .map_or_else(|| LABS[0].name(), |lab| lab.name());
    println!(
        "check it: cd {} && cargo xtask grade {first}",
        args.outdir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_student_manifest_does_not_name_the_solutions() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        let student = without_course_only(&manifest);
        assert!(!student.to_lowercase().contains("solutions"));
        assert!(student.contains("[workspace]") && student.contains("members"));
        let parsed: toml::Table = student.parse().expect("still valid TOML");
        assert!(parsed["workspace"]["dependencies"].get("clap").is_some());
        // The bench's exclude line goes with the bench.
        assert!(!student.contains("bench"));
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "reads the course's xtask, whose course-only lines the student edition leaves out"
    )]
    fn the_student_xtask_has_no_course_only_command() {
        let main = std::fs::read_to_string(workspace_root().join("xtask/src/main.rs")).unwrap();
        assert!(main.contains("mod course_check;"));
        let student = without_course_only(&main);
        assert!(!student.contains("course_check") && !student.contains("CourseCheck"));
        assert!(main.contains("mod screenshots;"));
        assert!(!student.contains("mod screenshots") && !student.contains("Screenshots"));
        assert!(student.contains("Command::Book(args)"));
        assert!(left_out("xtask/src/course_check/mod.rs"));
        assert!(left_out("xtask/src/screenshots.rs"));
    }

    #[test]
    fn the_course_only_directories_are_left_out() {
        for path in [
            "solutions/echo/src/main.rs",
            "grader/tests/echo.rs",
            ".ci/run",
            "bench/Cargo.toml",
            "xtask/tests/containment.rs",
            "xtask/tests/mutants.rs",
            "grader/mutants-reviewed.toml",
        ] {
            assert!(left_out(path), "{path}");
        }
        assert!(!left_out("labs/echo/src/main.rs"));
        assert!(!left_out("grader/tests/kernel_claims.rs"));
        assert!(left_out("xtask/tests/book.rs"));
        assert!(!left_out("grader/src/lib.rs"));
    }

    /// A committed course with labs 1, 2 and 4 and their solutions.
    fn course() -> tempfile::TempDir {
        crate::files::committed_copy(&[
            "Cargo.toml",
            "Cargo.lock",
            "grader/Cargo.toml",
            "grader/src",
            "grader/framing",
            "grader/json-members",
            "xtask/Cargo.toml",
            "xtask/src",
            "labs/echo",
            "labs/errors",
            "labs/app",
            "solutions/echo",
            "solutions/errors",
        ])
    }

    /// Every file under `dir` whose bytes equal a source file of the
    /// solutions (their manifests are the stubs' on purpose).
    fn solution_files_in(dir: &Path, root: &Path) -> Vec<PathBuf> {
        let solutions: Vec<Vec<u8>> = crate::files::list_files(&root.join("solutions"))
            .unwrap()
            .into_iter()
            .filter(|file| file.components().any(|part| part.as_os_str() == "src"))
            .map(|file| std::fs::read(root.join("solutions").join(file)).unwrap())
            .collect();
        if !dir.exists() {
            return Vec::new();
        }
        crate::files::list_files(dir)
            .unwrap()
            .into_iter()
            .filter(|file| solutions.contains(&std::fs::read(dir.join(file)).unwrap()))
            .collect()
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn dist_refuses_while_lab1_is_swapped_and_names_it() {
        let course = course();
        let root = course.path();
        let echo = Lab::find("echo").unwrap();
        crate::swap::swap_in(root, echo, false).unwrap();
        let out = tempfile::tempdir().unwrap();
        let edition = out.path().join("edition");
        let err = write(root, &edition, &[]).unwrap_err().to_string();
        assert!(err.contains("lab1 (echo)"), "{err}");
        assert!(!err.contains("lab2"), "{err}");
        assert_eq!(solution_files_in(&edition, root), Vec::<PathBuf>::new());
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn dist_exports_the_committed_stub_not_the_working_folder() {
        let course = course();
        let root = course.path();
        // The solution copied over the stub by hand, not committed.
        for name in ["echo-server.rs", "echo-client.rs"] {
            std::fs::copy(
                root.join("solutions/echo/src/bin").join(name),
                root.join("labs/echo/src/bin").join(name),
            )
            .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let edition = out.path().join("edition");
        write(root, &edition, &[]).unwrap();
        assert!(edition.join("labs/echo/src/bin/echo-server.rs").is_file());
        assert_eq!(solution_files_in(&edition, root), Vec::<PathBuf>::new());
        assert!(!edition.join("solutions").exists());

        // Committed by mistake: refused, naming the files.
        crate::files::commit_everything(root, "oops");
        let again = out.path().join("again");
        let err = write(root, &again, &[]).unwrap_err().to_string();
        assert!(err.contains("labs/echo/src/bin/echo-server.rs"), "{err}");
    }

    #[test]
    #[cfg_attr(
        student_edition,
        ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
    )]
    fn a_one_lab_edition_holds_and_grades_only_that_lab() {
        let course = course();
        let errors = Lab::find("errors").unwrap();
        let out = tempfile::tempdir().unwrap();
        let edition = out.path().join("edition");
        write(course.path(), &edition, &[errors]).unwrap();
        assert!(edition.join("labs/errors/Cargo.toml").is_file());
        assert!(!edition.join("labs/echo").exists());
        let workflow =
            std::fs::read_to_string(edition.join(".github/workflows/classroom.yml")).unwrap();
        assert!(
            workflow.contains("grade lab2 --check errors."),
            "{workflow}"
        );
        assert!(!workflow.contains("echo."), "{workflow}");
        // Lab 4's grader tests depend on labs/app: they go with it, cargo
        // still loads the workspace, and the lock fits it (--locked builds).
        assert!(!edition.join("grader/framing").exists());
        let metadata =
            std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["metadata", "--locked", "--offline", "--format-version=1"])
                .current_dir(&edition)
                .output()
                .unwrap();
        assert!(
            metadata.status.success(),
            "{}",
            String::from_utf8_lossy(&metadata.stderr)
        );

        // With lab 4, they stay.
        let with_app = out.path().join("with-app");
        write(course.path(), &with_app, &[Lab::find("app").unwrap()]).unwrap();
        assert!(with_app.join("grader/framing/Cargo.toml").is_file());
        let manifest = std::fs::read_to_string(with_app.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\"grader/framing\""), "{manifest}");
    }

    /// The inputs of `classroom-resources/autograding-command-grader@v1`,
    /// from its action.yml (commit 7712c71): (name, required).
    const COMMAND_GRADER_INPUTS: &[(&str, bool)] = &[
        ("test-name", true),
        ("setup-command", false),
        ("command", true),
        ("timeout", false), // minutes; default 10, at most 6 hours
        ("max-score", false),
    ];

    /// The inputs of `classroom-resources/autograding-grading-reporter@v1`,
    /// from its action.yml (commit 43c2d9f). Its src/main.js reads each
    /// runner's result from the environment variable `RUNNER_RESULTS`
    /// (upper case) and accepts runner ids matching
    /// `^([a-zA-Z0-9]+,)*[a-zA-Z0-9]+$`.
    const REPORTER_INPUTS: &[(&str, bool)] = &[("token", false), ("runners", true)];

    fn check_inputs(step: &Yaml, documented: &[(&str, bool)]) {
        let with = step["with"].as_hash().expect("a `with` block");
        for key in with.keys() {
            let key = key.as_str().unwrap();
            assert!(
                documented.iter().any(|(name, _)| *name == key),
                "undocumented input `{key}` in {step:?}"
            );
        }
        for (name, required) in documented {
            assert!(
                !required || with.contains_key(&Yaml::String((*name).into())),
                "required input `{name}` missing in {step:?}"
            );
        }
    }

    fn text(value: &Yaml) -> String {
        match value {
            Yaml::String(text) => text.clone(),
            Yaml::Integer(number) => number.to_string(),
            other => panic!("expected a string or a number, got {other:?}"),
        }
    }

    use yaml_rust2::{Yaml, YamlLoader};

    /// The workflow as GitHub would read it: every step's inputs are the
    /// actions' documented ones, each check of the labs is a step worth its
    /// points that builds what it grades, and the reporter always runs and
    /// reads every step.
    #[test]
    fn the_classroom_workflow_gives_the_actions_only_their_documented_inputs() {
        let echo = Lab::find("echo").unwrap();
        for labs in [LABS.iter().collect::<Vec<_>>(), vec![echo]] {
            let workflow = classroom_workflow(&labs);
            let docs = YamlLoader::load_from_str(&workflow).expect("valid YAML");
            let steps = docs[0]["jobs"]["run-autograding-tests"]["steps"]
                .as_vec()
                .expect("steps");
            let specs: Vec<_> = labs
                .iter()
                .flat_map(|lab| {
                    grader::rubric::for_lab(lab)
                        .into_iter()
                        .map(move |s| (lab, s))
                })
                .collect();
            let mut graded = Vec::new();
            for step in steps {
                let uses = text(&step["uses"]);
                assert!(
                    step["run"].is_badvalue(),
                    "a plain `run` step stops the job when it fails"
                );
                if uses.starts_with("actions/checkout@") {
                    continue;
                } else if uses == "classroom-resources/autograding-command-grader@v1" {
                    check_inputs(step, COMMAND_GRADER_INPUTS);
                    let id = text(&step["id"]);
                    let check = text(&step["with"]["test-name"]);
                    let (lab, spec) = specs
                        .iter()
                        .find(|(_, spec)| spec.id == check)
                        .unwrap_or_else(|| panic!("{check} is no check of {labs:?}"));
                    assert_eq!(
                        text(&step["with"]["command"]),
                        format!("cargo xtask grade {} --check {check}", lab.name())
                    );
                    assert_eq!(text(&step["with"]["max-score"]), spec.points.to_string());
                    let timeout: f64 = text(&step["with"]["timeout"]).parse().unwrap();
                    assert!((1.0..=360.0).contains(&timeout), "{timeout} minutes");
                    graded.push(id);
                } else if uses == "classroom-resources/autograding-grading-reporter@v1" {
                    check_inputs(step, REPORTER_INPUTS);
                    assert_eq!(text(&step["if"]), "always()");
                    let runners = text(&step["with"]["runners"]);
                    assert_eq!(runners, graded.join(","));
                    for id in &graded {
                        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
                        assert_eq!(
                            text(&step["env"][format!("{}_RESULTS", id.to_uppercase()).as_str()]),
                            format!("${{{{steps.{id}.outputs.result}}}}")
                        );
                    }
                } else {
                    panic!("unexpected action {uses}");
                }
            }
            assert_eq!(graded.len(), specs.len(), "a step for every check");
            let mut unique = graded.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), graded.len(), "step ids are unique");
            assert!(workflow.contains("autograding-grading-reporter"));
        }
    }
}
