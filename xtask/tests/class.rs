//! `grade-class` as an instructor uses it through a term: a class graded
//! once, then one student regraded in place (`--only`), and pages that can
//! be handed on.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use assert_cmd::Command;

fn xtask() -> Command {
    Command::cargo_bin("xtask").expect("the xtask binary")
}

fn root() -> PathBuf {
    grader::builder::workspace_root()
}

/// Copies the regular files under `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// `student`'s sources of lab 1 in `class`: a copy of `from` (`solutions`,
/// `labs`), or, with `None`, sources that do not compile.
fn submit(class: &Path, student: &str, from: Option<&str>) {
    let src = class.join(student).join("labs/echo/src");
    if src.exists() {
        std::fs::remove_dir_all(&src).unwrap();
    }
    match from {
        Some(from) => copy_dir(&root().join(from).join("echo/src"), &src),
        None => {
            std::fs::create_dir_all(src.join("bin")).unwrap();
            for binary in ["echo-server.rs", "echo-client.rs"] {
                std::fs::write(src.join("bin").join(binary), "fn main() { nope }").unwrap();
            }
        }
    }
}

/// The class's files beside the submissions: name, contents, modified.
fn outputs(class: &Path) -> Vec<(String, String, SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(class)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .map(|entry| {
            let name = entry.file_name().into_string().unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            (name, text, entry.metadata().unwrap().modified().unwrap())
        })
        .collect();
    files.sort();
    files
}

fn file<'a>(
    files: &'a [(String, String, SystemTime)],
    prefix: &str,
) -> &'a (String, String, SystemTime) {
    files
        .iter()
        .find(|(name, _, _)| name.starts_with(prefix))
        .unwrap_or_else(|| {
            panic!(
                "no {prefix}…: {:?}",
                files.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        })
}

fn row<'a>(csv: &'a str, student: &str) -> &'a str {
    csv.lines()
        .find(|line| line.starts_with(&format!("{student},")))
        .unwrap_or_else(|| panic!("no row of {student}:\n{csv}"))
}

/// A class of three is graded; carol, whose lab did not compile, hands in
/// a working one, and `--only carol` regrades her alone: her row, her page
/// and the class report change, and nothing of ada's or bob's is touched.
/// Every page is one to hand on: no temporary path of the grading, the
/// class report's link beside it, and handout links relative to the page.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn only_regrades_the_named_student_in_place() {
    // Inside the course's target dir: the pages' handout links can then be
    // relative to them (the course and its classes travel together).
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let class = tmp.path();
    submit(class, "ada", Some("solutions"));
    submit(class, "bob", Some("labs"));
    submit(class, "carol", None);
    let grade = |extra: &[&str]| {
        let run = xtask()
            .arg("grade-class")
            .arg(class)
            .args(["--lab", "echo", "--seed", "17", "--wide"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert_eq!(
            run.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        stdout
    };
    grade(&[]);
    // Lab 1's whole score, from the rubric.
    let max: u32 = grader::rubric::for_lab(grader::Lab::find("echo").unwrap())
        .iter()
        .map(|check| check.points)
        .sum();
    let before = outputs(class);
    let csv = &file(&before, "grades.csv").1;
    assert!(
        row(csv, "ada").starts_with(&format!("ada,lab1,graded,{max},{max},")),
        "{csv}"
    );
    assert!(
        row(csv, "carol").starts_with(&format!("carol,lab1,did_not_compile,0,{max},")),
        "{csv}"
    );
    let dashboard = &file(&before, "report.html").1;
    assert!(
        dashboard.contains("did_not_compile\"><strong>1</strong>"),
        "{dashboard}"
    );

    for (name, text, _) in &before {
        if !name.ends_with(".html") {
            continue;
        }
        // Nothing of the grading's temporary folders, nor of this machine's
        // layout: the handouts are relative to the page.
        for absent in ["/tmp/", "grade-class-", "file://", root().to_str().unwrap()] {
            assert!(!text.contains(absent), "{name} shows {absent}");
        }
        if name.starts_with("report-") {
            assert!(
                text.contains("<nav><a href=\"report.html\">← the class report</a></nav>"),
                "{name}"
            );
        }
    }
    // bob's checks failed: his page links their handout sections.
    let bob = &file(&before, "report-bob-").1;
    assert!(bob.contains("href=\"../../"), "{bob}");
    assert!(dashboard.contains("href=\"../../"), "{dashboard}");
    let carol = &file(&before, "report-carol-").1;
    assert!(
        carol.contains("labs/echo/src/bin/echo-server.rs"),
        "{carol}"
    );
    let json = &file(&before, "grades.json").1;
    assert!(
        !json.contains("/tmp/"),
        "grades.json shows a temporary path"
    );

    submit(class, "carol", Some("solutions"));
    let stdout = grade(&["--only", "carol"]);
    assert!(stdout.contains("regraded 1 of 3 students"), "{stdout}");
    let after = outputs(class);
    assert_eq!(
        before.iter().map(|f| &f.0).collect::<Vec<_>>(),
        after.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "the same files"
    );
    for prefix in ["report-ada-", "report-bob-"] {
        assert_eq!(
            file(&before, prefix),
            file(&after, prefix),
            "{prefix} was rewritten"
        );
    }
    let csv_after = &file(&after, "grades.csv").1;
    for student in ["ada", "bob"] {
        assert_eq!(row(csv, student), row(csv_after, student));
    }
    assert!(
        row(csv_after, "carol").starts_with(&format!("carol,lab1,graded,{max},{max},,")),
        "{csv_after}"
    );
    let wide = &file(&after, "grades-wide.csv").1;
    assert!(
        row(wide, "carol").starts_with(&format!("carol,{max},{max},graded,{max},")),
        "{wide}"
    );
    assert_eq!(
        row(&file(&before, "grades-wide.csv").1, "ada"),
        row(wide, "ada")
    );
    let carol = &file(&after, "report-carol-").1;
    assert!(!carol.contains("Did not compile"), "{carol}");
    let dashboard = &file(&after, "report.html").1;
    assert!(!dashboard.contains("did_not_compile"), "{dashboard}");
    assert!(
        dashboard.contains("graded\"><strong>2</strong>"),
        "{dashboard}"
    );
    assert!(dashboard.contains("seed 17"), "{dashboard}");
    // The checks' titles are markdown: their code spans are code.
    assert!(dashboard.contains("<code>"), "{dashboard}");
    assert!(!dashboard.contains('`'), "{dashboard}");

    // A name that is not a submission is a usage error, and nothing changes.
    let run = xtask()
        .arg("grade-class")
        .arg(class)
        .args(["--only", "mallory"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--only mallory: no submission folder"));
    assert_eq!(outputs(class), after);
}

/// `grade --html PAGE` writes a page that stands alone: no link to a class
/// report (there is none beside it), and handout links relative to the
/// page's folder when it shares one with the course below `/`, `file://`
/// URLs when it does not.
#[test]
fn a_grade_page_links_no_class_report_and_its_handouts_relative_to_it() {
    use std::os::unix::fs::PermissionsExt;
    // Programs that exit at once: every check runs, and fails.
    let bin = tempfile::tempdir().unwrap();
    for name in ["echo-server", "echo-client"] {
        let path = bin.path().join(name);
        std::fs::write(&path, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Inside the course (its target folder may be elsewhere, as in the
    // student edition's test), and outside it.
    let course_target = grader::builder::workspace_root().join("target");
    std::fs::create_dir_all(&course_target).unwrap();
    let inside = tempfile::tempdir_in(&course_target).unwrap();
    // A folder that shares nothing but `/` with the course (which, for the
    // student edition's own test, sits in the temporary folder).
    let elsewhere = if grader::builder::workspace_root().starts_with("/tmp") {
        "/var/tmp"
    } else {
        "/tmp"
    };
    let outside = tempfile::tempdir_in(elsewhere).unwrap();
    for (folder, link) in [
        (inside.path(), "href=\"../../"),
        (outside.path(), "href=\"file:///"),
    ] {
        let page = folder.join("page.html");
        xtask()
            .args(["grade", "echo", "--bin-dir"])
            .arg(bin.path())
            .arg("--html")
            .arg(&page)
            .assert()
            .code(1);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(html.contains("class=\"check failed"), "{html}");
        assert!(!html.contains("the class report"), "{html}");
        assert!(!html.contains("<nav>"), "{html}");
        assert!(html.contains(link), "{link}: {html}");
    }
}
