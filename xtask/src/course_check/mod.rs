//! `cargo xtask course-check`: the conventions a maintainer would otherwise
//! keep by memory, checked (rustlings' `dev check`, for this course).
//!
//! For every lab:
//! - each check of `grader/rubric.toml` has a function in the grader, a
//!   hint, a handout section that exists, and at least one classic bug in
//!   its tests (`a_classic_bug_fails_its_check` in `grader/tests/SLUG.rs`,
//!   whose bug the fixture program knows); each function has a rubric entry;
//! - each `todo!` of the stub is in a function whose doc comment names
//!   handout sections that exist (`Handout: "Step 2: the echo loop"`);
//! - the stub and the solution expose the lab table's binaries;
//!
//! and the snapshot files are the ones `SNAPSHOTS` compiles in, and no
//! file of `grader/src` or `xtask/src` is over [`MAX_LINES`] lines. It
//! prints the first thing missing, with the file to edit, and exits 1.
//!
//! The sources are read by [`sources`]. Course-only: the student edition has neither solutions nor tests to check,
//! and `cargo xtask dist` leaves this module out.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use grader::rubric::CheckSpec;
use grader::{LABS, Lab};

mod sources;

use sources::{classic_bugs, section_anchors, todos};

/// The first convention the course breaks: what is missing, and the file to
/// edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The file to edit, relative to the course's root (`:LINE` when known).
    pub file: String,
    /// What is missing, as a sentence.
    pub what: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  edit: {}", self.what, self.file)
    }
}

fn missing(file: impl Into<String>, what: impl Into<String>) -> Option<Missing> {
    Some(Missing {
        file: file.into(),
        what: what.into(),
    })
}

/// What course-check reads of one lab.
#[derive(Debug, Clone)]
pub struct LabFiles {
    pub lab: &'static Lab,
    /// The ids of the lab's check functions, from the compiled grader.
    pub functions: Vec<String>,
    /// `labs/SLUG/README.md`.
    pub handout: String,
    /// `grader/tests/SLUG.rs` (`_` for `-`), empty when there is none.
    pub tests: String,
    /// `(program, source)` of `grader/tests/fixtures/SLUG/`.
    pub fixtures: Vec<(String, String)>,
    /// `(path, source)` of every `.rs` file of the stub's `src/`.
    pub stub_sources: Vec<(String, String)>,
    /// The binaries of the stub's `src/bin/`.
    pub stub_binaries: BTreeSet<String>,
    /// The binaries of the solution's `src/bin/`.
    pub solution_binaries: BTreeSet<String>,
}

/// What course-check reads of the course.
#[derive(Debug, Clone)]
pub struct Course {
    /// `grader/rubric.toml`, as on disk.
    pub rubric: Vec<CheckSpec>,
    pub labs: Vec<LabFiles>,
    /// The names of the files in `grader/snapshots/` (without `.snap`).
    pub snapshot_files: BTreeSet<String>,
    /// The names `SNAPSHOTS` compiles into the grader.
    pub snapshots_listed: BTreeSet<String>,
    /// `(path, lines)` of every `.rs` file of `grader/src` and `xtask/src`.
    pub source_lines: Vec<(String, usize)>,
}

/// The most lines a file of `grader/src` or `xtask/src` may have: a longer
/// one holds more than one concern, and is split by concern.
pub const MAX_LINES: usize = 700;

/// The rubric ids of a lab's check functions, as the grader runs them.
fn check_ids(lab: &Lab) -> Vec<String> {
    lab.checks.iter().map(|(id, _)| (*id).to_owned()).collect()
}

/// The test file of a lab: `grader/tests/client_list.rs`.
pub fn tests_file(lab: &Lab) -> String {
    format!("grader/tests/{}.rs", lab.slug.replace('-', "_"))
}

/// The file that lists a lab's checks: `grader/src/labs/SLUG/mod.rs`, or
/// `grader/src/labs/SLUG.rs` for a lab of one file.
pub fn checks_file(root: &Path, lab: &Lab) -> String {
    let module = format!("grader/src/labs/{}", lab.slug.replace('-', "_"));
    if root.join(&module).is_dir() {
        format!("{module}/mod.rs")
    } else {
        format!("{module}.rs")
    }
}

fn read(root: &Path, path: &str) -> Result<String> {
    std::fs::read_to_string(root.join(path)).with_context(|| format!("reading {path}"))
}

/// The `.rs` files under `dir`, relative to `root`, sorted.
fn rust_files(root: &Path, dir: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if name.ends_with(".rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The binaries of a crate: the files of `src/bin/` and `src/main.rs` as the
/// package's name.
fn binaries(root: &Path, krate: &str, package: &str) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    if root.join(krate).join("src/main.rs").exists() {
        names.insert(package.to_owned());
    }
    for path in rust_files(root, &format!("{krate}/src/bin"))? {
        let file = path.rsplit('/').next().unwrap_or(&path);
        names.insert(file.trim_end_matches(".rs").to_owned());
    }
    Ok(names)
}

impl Course {
    /// Reads the course at `root`; the check functions and the compiled
    /// snapshots come from the grader this xtask links.
    pub fn load(root: &Path) -> Result<Course> {
        let rubric = grader::rubric::parse(&read(root, "grader/rubric.toml")?)
            .map_err(anyhow::Error::msg)?;
        let mut labs = Vec::new();
        for lab in LABS {
            let fixtures_dir = format!("grader/tests/fixtures/{}", lab.slug);
            let mut fixtures = Vec::new();
            if let Ok(entries) = std::fs::read_dir(root.join(&fixtures_dir)) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Ok(source) = std::fs::read_to_string(entry.path()) {
                        fixtures.push((name, source));
                    }
                }
            }
            fixtures.sort();
            let mut stub_sources = Vec::new();
            for path in rust_files(root, &format!("{}/src", lab.student_dir()))? {
                let source = read(root, &path)?;
                stub_sources.push((path, source));
            }
            labs.push(LabFiles {
                lab,
                functions: check_ids(lab),
                handout: read(root, &lab.handout())?,
                tests: std::fs::read_to_string(root.join(tests_file(lab))).unwrap_or_default(),
                fixtures,
                stub_sources,
                stub_binaries: binaries(root, &lab.student_dir(), lab.package)?,
                solution_binaries: binaries(root, &lab.solution_dir(), lab.package)?,
            });
        }
        let mut snapshot_files = BTreeSet::new();
        for entry in std::fs::read_dir(root.join("grader/snapshots"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(name) = name.strip_suffix(".snap") {
                snapshot_files.insert(name.to_owned());
            }
        }
        let snapshots_listed = grader::harness::snapshot::SNAPSHOTS
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        let mut source_lines = Vec::new();
        for dir in ["grader/src", "xtask/src"] {
            for path in rust_files(root, dir)? {
                let lines = read(root, &path)?.lines().count();
                source_lines.push((path, lines));
            }
        }
        Ok(Course {
            rubric,
            labs,
            snapshot_files,
            snapshots_listed,
            source_lines,
        })
    }
}

/// The first convention the course breaks, or `None` when it keeps them all.
/// `root` only names files in the answer; everything is read from `course`.
pub fn first_missing(course: &Course, root: &Path) -> Option<Missing> {
    for files in &course.labs {
        if let Some(found) = lab_missing(course, files, root) {
            return Some(found);
        }
    }
    for listed in &course.snapshots_listed {
        if !course.snapshot_files.contains(listed) {
            return missing(
                format!("grader/snapshots/{listed}.snap"),
                format!(
                    "the snapshot {listed} is in SNAPSHOTS but not in grader/snapshots/: record it \
                     (INSTA_UPDATE=always cargo test -p grader)"
                ),
            );
        }
    }
    for file in &course.snapshot_files {
        if !course.snapshots_listed.contains(file) {
            return missing(
                "grader/src/harness/snapshot.rs",
                format!(
                    "grader/snapshots/{file}.snap is not listed in SNAPSHOTS, so the grader \
                     never compares with it"
                ),
            );
        }
        if !course.rubric.iter().any(|spec| spec.id == *file) {
            return missing(
                format!("grader/snapshots/{file}.snap"),
                format!("the snapshot {file} names no check of grader/rubric.toml"),
            );
        }
    }
    for (path, lines) in &course.source_lines {
        if *lines > MAX_LINES {
            return missing(
                path.clone(),
                format!(
                    "{path} has {lines} lines, more than the {MAX_LINES} a file of grader/src or \
                     xtask/src may have: split it by concern, and name the new modules in the \
                     map (grader/src/lib.rs's # Layout, or the module's doc)"
                ),
            );
        }
    }
    None
}

fn lab_missing(course: &Course, files: &LabFiles, root: &Path) -> Option<Missing> {
    let lab = files.lab;
    let specs: Vec<&CheckSpec> = course
        .rubric
        .iter()
        .filter(|spec| spec.lab_slug() == lab.slug)
        .collect();
    let handout = lab.handout();
    if specs.is_empty() {
        return missing(
            "grader/rubric.toml",
            format!("{lab} has no check in the rubric"),
        );
    }
    let anchors = section_anchors(&files.handout);
    let starts = lab.server_starts.trim_start_matches('#');
    if !anchors.iter().any(|a| a == starts) {
        return missing(
            handout.clone(),
            format!(
                "{lab}'s server starts at #{starts} (grader/src/lab.rs), a section {handout} \
                 does not have"
            ),
        );
    }
    let tests = tests_file(lab);
    let bugs = classic_bugs(&files.tests);
    for spec in &specs {
        let id = &spec.id;
        if !files.functions.contains(id) {
            return missing(
                checks_file(root, lab),
                format!(
                    "{id} is in grader/rubric.toml but has no check function: write `fn {}(ctx: \
                     &Ctx) -> CheckResult` and list it in CHECKS",
                    id.split_once('.').map_or(id.as_str(), |(_, name)| name)
                ),
            );
        }
        if spec.hint.trim().is_empty() {
            return missing("grader/rubric.toml", format!("{id} has no hint"));
        }
        let anchor = spec.handout.trim_start_matches('#');
        if anchor.is_empty() {
            return missing(
                "grader/rubric.toml",
                format!("{id} names no handout section"),
            );
        }
        if !anchors.iter().any(|a| a == anchor) {
            return missing(
                handout.clone(),
                format!("{id} points at #{anchor}, a section {handout} does not have"),
            );
        }
        if !bugs.iter().any(|bug| bug.check == *id) {
            return missing(
                tests.clone(),
                format!(
                    "{id} has no classic bug: add a case to a_classic_bug_fails_its_check, \
                     and the bug to its fixture in grader/tests/fixtures/{}/",
                    lab.slug
                ),
            );
        }
    }
    for id in &files.functions {
        if !specs.iter().any(|spec| spec.id == *id) {
            return missing(
                "grader/rubric.toml",
                format!("the check function {id} has no [[check]] in the rubric"),
            );
        }
    }
    for bug in &bugs {
        if let Some(program) = &bug.program {
            let fixture = files.fixtures.iter().find(|(name, _)| name == program);
            let fixture_file = format!("grader/tests/fixtures/{}/{program}", lab.slug);
            match fixture {
                None => {
                    return missing(
                        fixture_file,
                        format!("{tests} names the program {program}, which has no fixture"),
                    );
                }
                Some((_, source)) if !source.contains(&format!("\"{}\"", bug.bug)) => {
                    return missing(
                        fixture_file,
                        format!(
                            "the classic bug {} of {program} (for {}) is not in its fixture",
                            bug.bug, bug.check
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        if !specs.iter().any(|spec| spec.id == bug.check) {
            return missing(
                tests.clone(),
                format!(
                    "the classic bug {} fails {}, a check that does not exist",
                    bug.bug, bug.check
                ),
            );
        }
    }
    for (path, source) in &files.stub_sources {
        for todo in todos(source) {
            let place = format!("{path}:{}", todo.line);
            if todo.sections.is_empty() {
                return missing(
                    place,
                    format!(
                        "the todo! in fn {} names no handout section (its doc comment needs \
                         `Handout: \"Section\"`)",
                        todo.function
                    ),
                );
            }
            for section in &todo.sections {
                let anchor = grader::handout::anchor(section);
                if !anchors.contains(&anchor) {
                    return missing(
                        place,
                        format!(
                            "the todo! in fn {} names the section \"{section}\", which {handout} \
                             does not have",
                            todo.function
                        ),
                    );
                }
            }
        }
    }
    let contract: BTreeSet<String> = lab.binaries.iter().map(|b| (*b).to_owned()).collect();
    for (dir, found) in [
        (lab.student_dir(), &files.stub_binaries),
        (lab.solution_dir(), &files.solution_binaries),
    ] {
        if *found != contract {
            return missing(
                format!("{dir}/src/bin/"),
                format!(
                    "{dir} exposes the binaries {}, the lab table (grader/src/lab.rs) names {}",
                    list(found),
                    list(&contract)
                ),
            );
        }
    }
    None
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// `cargo xtask course-check`.
pub fn run() -> Result<ExitCode> {
    let root = grader::builder::workspace_root();
    let course = Course::load(&root)?;
    match first_missing(&course, &root) {
        None => {
            let todos: usize = course
                .labs
                .iter()
                .flat_map(|lab| &lab.stub_sources)
                .map(|(_, source)| todos(source).len())
                .sum();
            println!(
                "course-check: ok: {} checks in {} labs, each with a function, a hint, a handout \
                 section and a classic bug; {todos} todo!s name their sections; binaries and \
                 snapshots in step; {} source files of at most {MAX_LINES} lines",
                course.rubric.len(),
                course.labs.len(),
                course.source_lines.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(found) => {
            eprintln!("course-check: {found}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> (Course, std::path::PathBuf) {
        let root = grader::builder::workspace_root();
        (Course::load(&root).expect("the course loads"), root)
    }

    fn lab2(course: &mut Course) -> &mut LabFiles {
        course
            .labs
            .iter_mut()
            .find(|files| files.lab.slug == "errors")
            .expect("lab 2")
    }

    #[test]
    fn the_course_keeps_its_conventions() {
        let (course, root) = course();
        assert_eq!(first_missing(&course, &root), None);
        assert!(course.labs.iter().all(|lab| !lab.stub_sources.is_empty()));
    }

    #[test]
    fn a_check_without_a_function_names_the_checks_module() {
        let (mut course, root) = course();
        lab2(&mut course)
            .functions
            .retain(|id| id != "errors.reset");
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "grader/src/labs/errors/mod.rs");
        assert!(found.what.contains("errors.reset"), "{found}");
    }

    #[test]
    fn a_check_without_a_classic_bug_names_the_test_file() {
        let (mut course, root) = course();
        let files = lab2(&mut course);
        files.tests = files
            .tests
            .replace("\"errors.reset\"", "\"errors.success\"");
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "grader/tests/errors.rs");
        assert!(
            found.what.contains("errors.reset has no classic bug"),
            "{found}"
        );
    }

    #[test]
    fn a_bug_the_fixture_does_not_know_names_the_fixture() {
        let (mut course, root) = course();
        let files = lab2(&mut course);
        files.tests = files.tests.replace("\"no_reuseaddr\"", "\"no_such_bug\"");
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "grader/tests/fixtures/errors/bind-server");
    }

    #[test]
    fn a_missing_section_names_the_handout() {
        let (mut course, root) = course();
        let files = lab2(&mut course);
        files.handout = files.handout.replace("## Timeouts", "## Time limits");
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "labs/errors/README.md");
        assert!(found.what.contains("#timeouts"), "{found}");
    }

    #[test]
    fn a_todo_without_a_section_names_the_stub_line() {
        let (mut course, root) = course();
        let files = lab2(&mut course);
        let (path, source) = &mut files.stub_sources[0];
        let before = todos(source).len();
        assert!(before > 0, "{path} has a todo!");
        *source = source.replacen("Handout:", "See:", 1);
        let path = path.clone();
        let found = first_missing(&course, &root).expect("missing");
        assert!(found.file.starts_with(path.as_str()), "{found}");
        assert!(found.what.contains("names no handout section"), "{found}");
    }

    #[test]
    fn binaries_out_of_step_name_the_crate() {
        let (mut course, root) = course();
        lab2(&mut course).solution_binaries.insert("extra".into());
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "solutions/errors/src/bin/");
    }

    #[test]
    fn an_unlisted_snapshot_names_snapshot_rs() {
        let (mut course, root) = course();
        course.snapshots_listed.remove("udp.server_log");
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "grader/src/harness/snapshot.rs");
    }

    #[test]
    fn a_file_over_the_line_limit_is_named() {
        let (mut course, root) = course();
        assert!(
            course
                .source_lines
                .iter()
                .any(|(path, _)| path == "grader/src/lib.rs")
        );
        course
            .source_lines
            .push(("xtask/src/long.rs".into(), MAX_LINES + 1));
        let found = first_missing(&course, &root).expect("missing");
        assert_eq!(found.file, "xtask/src/long.rs");
        assert!(found.what.contains("701 lines"), "{found}");
    }
}
