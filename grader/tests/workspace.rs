//! The course as a whole: the two workspaces agree, the solutions' own unit
//! tests pass, every hint points at a real handout section, and the layout
//! gives cargo no reason to confuse a student's binary with a solution's.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use grader::{LABS, Status};

fn root() -> PathBuf {
    grader::builder::workspace_root()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

fn toml_file(path: &Path) -> toml::Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    text.parse()
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn the_solutions_workspace_uses_the_same_dependencies_and_lints() {
    let course = toml_file(&root().join("Cargo.toml"));
    let solutions = toml_file(&root().join("solutions/Cargo.toml"));
    let course_ws = course["workspace"].as_table().unwrap();
    let solutions_ws = solutions["workspace"].as_table().unwrap();
    let course_deps = course_ws["dependencies"].as_table().unwrap();
    for (name, spec) in solutions_ws["dependencies"].as_table().unwrap() {
        assert_eq!(
            Some(spec),
            course_deps.get(name),
            "solutions/Cargo.toml: {name} differs from the root"
        );
    }
    assert_eq!(
        course_ws["lints"], solutions_ws["lints"],
        "the lints differ"
    );
    assert_eq!(
        course_ws["package"], solutions_ws["package"],
        "[workspace.package] differs"
    );
}

#[test]
fn the_solutions_own_unit_tests_pass() {
    let output = cargo()
        .args([
            "test",
            "--manifest-path",
            "solutions/Cargo.toml",
            "--workspace",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn building_the_workspace_gives_no_output_filename_collision() {
    let output = cargo()
        .args(["build", "--workspace", "--bins"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("collision"), "{stderr}");
}

#[test]
fn every_hint_points_at_a_section_of_its_handout() {
    for lab in LABS {
        let specs = grader::rubric::for_lab(lab);
        if specs.is_empty() {
            continue;
        }
        let handout =
            std::fs::read_to_string(root().join(lab.handout())).expect("the lab has a handout");
        let anchors: Vec<String> = handout
            .lines()
            .filter_map(|line| {
                line.trim_start_matches('#')
                    .strip_prefix(' ')
                    .filter(|_| line.starts_with('#'))
            })
            .map(grader::handout::anchor)
            .collect();
        for spec in specs {
            let anchor = spec.handout.trim_start_matches('#');
            assert!(
                anchors.iter().any(|a| a == anchor),
                "{}: no section #{anchor} in {}",
                spec.id,
                lab.handout()
            );
        }
        // A check's diagnosis names a section too: `"#edge-triggered-…"`.
        for (file, anchor) in diagnosis_anchors(lab.slug) {
            assert!(
                anchors.contains(&anchor),
                "{file}: no section #{anchor} in {}",
                lab.handout()
            );
        }
    }
}

/// The handout anchors (`"#some-section"` literals) in a lab's checks:
/// `grader/src/labs/SLUG.rs` or the files of `grader/src/labs/SLUG/`.
fn diagnosis_anchors(slug: &str) -> Vec<(String, String)> {
    let module = root().join("grader/src/labs").join(slug.replace('-', "_"));
    let files: Vec<std::path::PathBuf> = match std::fs::read_dir(&module) {
        Ok(entries) => entries.flatten().map(|entry| entry.path()).collect(),
        Err(_) => vec![module.with_extension("rs")],
    };
    let mut found = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("reading a lab's checks");
        for literal in source.split("\"#").skip(1) {
            let anchor: String = literal
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if literal[anchor.len()..].starts_with('"') && !anchor.is_empty() {
                found.push((file.display().to_string(), anchor));
            }
        }
    }
    found
}

#[test]
fn a_build_failure_lists_every_check_as_not_run_and_scores_zero() {
    for lab in LABS {
        let report = grader::grade(
            lab,
            Err("labs/x did not compile".into()),
            &support::options("student"),
        );
        assert_eq!(report.score, 0);
        assert_eq!(report.checks.len(), grader::rubric::for_lab(lab).len());
        assert!(
            report
                .checks
                .iter()
                .all(|check| check.status == Status::NotRun)
        );
        assert!(!report.full_marks());
    }
}

/// The headings of a handout, outside its code blocks.
fn headings(handout: &str) -> Vec<&str> {
    let mut in_code = false;
    handout
        .lines()
        .filter(|line| {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            !in_code && line.starts_with('#')
        })
        .filter_map(|line| line.trim_start_matches('#').strip_prefix(' '))
        .collect()
}

/// "Begin with …" follows the handout's order of steps, not the rubric's
/// order of checks: every lab's `[[lab]]` names the handout's Step 1, and the
/// report of a program that passes nothing says to begin there (lab 4: the
/// library first; lab 6: `serve()`).
#[test]
fn every_lab_begins_where_its_handout_begins() {
    use grader::outcome::{BuildState, SubmissionState};
    for lab in LABS {
        let start = grader::rubric::start(lab.slug)
            .unwrap_or_else(|| panic!("{}: no [[lab]] in the rubric", lab.slug));
        let handout =
            std::fs::read_to_string(root().join(lab.handout())).expect("the lab has a handout");
        let headings = headings(&handout);
        let first_step = headings
            .iter()
            .find(|heading| heading.starts_with("Step 1"))
            .unwrap_or_else(|| panic!("{}: no Step 1 in {}", lab.slug, lab.handout()));
        assert_eq!(
            start.begin_at,
            format!("#{}", grader::handout::anchor(first_step)),
            "{}: the handout's steps begin at {first_step:?}",
            lab.slug
        );
        assert!(start.begin.contains("Step 1"), "{}", lab.slug);
        if handout.contains("the library first") {
            assert!(start.begin.contains("the library first"), "{}", lab.slug);
        }

        // A program that passes nothing: every check ran and failed.
        let mut report = grader::grade(lab, Err("x".into()), &support::options("student"));
        report.build = BuildState::Ready;
        report.state = SubmissionState::Graded;
        for check in &mut report.checks {
            check.status = Status::Failed;
        }
        let text = grader::render::text::lab(&report, Default::default()).replace("\n    ", " ");
        let begin = format!(
            "Begin where the handout does, with {}: read {}{}, then grade again with --check {}.",
            start.begin,
            lab.handout(),
            start.begin_at,
            start.begin_with
        );
        assert!(text.contains(&begin), "{}: {text}", lab.slug);
    }
    let says = |slug: &str| grader::rubric::start(slug).unwrap().begin.as_str();
    assert!(says("app").starts_with("the library first"));
    assert!(says("client-list").contains("`serve()`"));
}
