//! Helpers shared by the lab test files: grade the solution, the stub, or a
//! directory of fixture programs, and look for processes left behind.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::Binaries;
use grader::harness::snapshot::{self, SnapshotMode};
use grader::{Lab, LabReport, Options, Status};
use tempfile::TempDir;

/// The lab called `slug`.
pub fn lab(slug: &str) -> &'static Lab {
    Lab::find(slug).unwrap_or_else(|| panic!("no lab {slug}"))
}

/// Options for the project's tests: a fixed seed unless one is given, so a
/// failure can be replayed.
pub fn options(graded: &str) -> Options {
    let seed = std::env::var("GRADER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261125);
    Options {
        seed,
        graded: graded.into(),
        ..Options::default()
    }
}

/// Grades the reference solution, recording its snapshots with insta (new
/// or changed snapshots go to `.snap.new` files for `cargo insta review`).
pub fn grade_solution(slug: &str) -> LabReport {
    let lab = lab(slug);
    let binaries = builder::build(lab, Edition::Solution, CompilerOutput::Capture);
    let options = Options {
        snapshot_mode: SnapshotMode::Record(record_snapshot),
        ..options("solution")
    };
    grader::grade(lab, binaries, &options)
}

/// Asserts `actual` against snapshot `name` in `grader/snapshots/` with insta,
/// which records it when it is new or changed.
fn record_snapshot(name: &str, actual: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot::snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, actual));
}

/// Grades the untouched student stub.
pub fn grade_stub(slug: &str) -> LabReport {
    let lab = lab(slug);
    grader::grade(
        lab,
        builder::build(lab, Edition::Student, CompilerOutput::Capture),
        &options("stub"),
    )
}

/// Grades the executables in `dir`, as `--bin-dir` does.
pub fn grade_dir(slug: &str, dir: &Path) -> LabReport {
    let lab = lab(slug);
    grader::grade(
        lab,
        Ok(Binaries::from_dir(lab, dir)),
        &options(&dir.display().to_string()),
    )
}

/// Grades only check `id` of the programs in `dir`: for tests about one
/// check whose program misbehaves in every check (eating memory, say), so
/// that the checks running in parallel do not all misbehave at once.
pub fn grade_dir_check(slug: &str, dir: &Path, id: &str) -> LabReport {
    grade_dir_check_scaled(slug, dir, id, 1.0)
}

/// [`grade_dir_check`] with every time limit multiplied by `time_scale`
/// (`--time-scale`): for programs slow by design, whose test is about
/// something else than speed.
pub fn grade_dir_check_scaled(slug: &str, dir: &Path, id: &str, time_scale: f64) -> LabReport {
    let lab = lab(slug);
    let options = Options {
        only: Some(id.into()),
        time_scale,
        ..options(&dir.display().to_string())
    };
    grader::grade(lab, Ok(Binaries::from_dir(lab, dir)), &options)
}

/// The fixture programs of a lab: `grader/tests/fixtures/SLUG/`.
pub fn fixtures(slug: &str) -> PathBuf {
    grader::harness::fixtures::folder(lab(slug))
}

/// A temporary bin dir with the lab's fixture programs, where the programs
/// named in `bugs` run with `LAB_BUG` set to switch on one classic mistake
/// ([`grader::harness::fixtures::bin_dir`]); programs may write to its
/// `outbox/` ([`outbox`]).
pub fn fixture_bin_dir(slug: &str, bugs: &[(&str, &str)]) -> TempDir {
    grader::harness::sandbox::enable_test_reports();
    grader::harness::fixtures::bin_dir(lab(slug), bugs).expect("a bin dir of fixtures")
}

/// A readable summary of a report for assertion messages.
pub fn summary(report: &LabReport) -> String {
    grader::render::text::lab(report, grader::render::text::Style::default())
}

/// Asserts full marks, showing the report otherwise.
pub fn assert_full_marks(report: &LabReport) {
    assert!(
        report.full_marks(),
        "expected full marks:\n{}",
        summary(report)
    );
}

/// Asserts that check `id` failed (it ran and earned nothing).
pub fn assert_fails(report: &LabReport, id: &str) {
    let check = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
    assert_eq!(
        check.status,
        Status::Failed,
        "expected {id} to fail:\n{}",
        summary(report)
    );
    assert_eq!(check.points, 0);
}

/// Asserts that check `id` passed.
pub fn assert_passes(report: &LabReport, id: &str) {
    let check = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
    assert_eq!(
        check.status,
        Status::Passed,
        "expected {id} to pass:\n{}",
        summary(report)
    );
}

/// Asserts a stub's report: zero points, and every check reported.
pub fn assert_zero_with_every_check(report: &LabReport) {
    assert_eq!(report.score, 0, "{}", summary(report));
    let rubric = grader::rubric::for_lab(lab(&report.slug));
    assert_eq!(report.checks.len(), rubric.len(), "{}", summary(report));
    assert!(
        report.checks.iter().all(|check| check.failure.is_some()),
        "{}",
        summary(report)
    );
}

/// Live processes whose command line or environment mentions `needle`
/// (e.g. a fixture dir).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if (cmdline.contains(needle) || environ.contains(needle)) && !state.contains(") Z") {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Where the fixtures of a [`fixture_bin_dir`] may write.
pub fn outbox(dir: &TempDir) -> PathBuf {
    dir.path().join("outbox")
}

/// Asserts that nothing started from `dir` is still running (SIGKILLed
/// processes may take a moment to disappear, so this waits a little).
pub fn assert_nothing_left(dir: &Path) {
    assert_no_process_mentioning(&dir.display().to_string());
}

/// Asserts that no live process mentions `needle` on its command line or in
/// its environment (waiting a little for SIGKILLed ones to go).
pub fn assert_no_process_mentioning(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that the report sends the student to the handout section that
/// teaches the fix of `bug`: its first failed check links `section` (an
/// anchor of the lab's README, `#the-half-close`) or names it in its
/// message. Prints the row `diagnosis: SLUG BUG → expected → linked` for
/// the table of every classic bug (`--nocapture`).
pub fn assert_diagnosis(report: &LabReport, bug: &str, section: &str) {
    let first = report
        .checks
        .iter()
        .find(|check| check.status == Status::Failed);
    let linked = first.map_or("(nothing failed)", |check| {
        check
            .handout
            .rfind('#')
            .map_or(check.handout.as_str(), |at| &check.handout[at..])
    });
    let named = first
        .and_then(|check| check.failure.as_ref())
        .is_some_and(|failure| failure.to_string().contains(section));
    eprintln!(
        "diagnosis: {} {bug} → {section} → {linked}{} (first failed: {})",
        report.slug,
        if named { " (named)" } else { "" },
        first.map_or("-", |check| check.id.as_str())
    );
    // The grader's own words (not a program's stderr) name no internal type.
    for check in report
        .checks
        .iter()
        .filter(|check| check.status == Status::Failed)
    {
        let Some(failure) = &check.failure else {
            continue;
        };
        let own_words = [
            &failure.summary,
            failure.expected.as_ref().unwrap_or(&String::new()),
            failure.actual.as_ref().unwrap_or(&String::new()),
        ]
        .map(|text| text.to_string())
        .join("\n");
        for internal in [
            "Deadline", "Eof", "Enough", "ReadEnd", "Some(", "None", "Ok(", "Err(",
        ] {
            assert!(
                !own_words
                    .split(|c: char| !c.is_alphanumeric() && c != '(')
                    .any(|word| word == internal),
                "{}: `{internal}` is a name from the grader's code:\n{own_words}",
                check.id
            );
        }
    }
    assert!(
        linked == section || named,
        "the first failed check should send the student to {section}, it links {linked}:\n{}",
        summary(report)
    );
}

/// Whether the grader runs with the containment these tests are about;
/// otherwise says on stderr why the calling test checks nothing.
pub fn contained(test: &str) -> bool {
    let policy = grader::harness::sandbox::Policy::get();
    let required = std::env::var_os(REQUIRE_CONTAINMENT).is_some();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            !required,
            "{test}: containment is tested as root, and {REQUIRE_CONTAINMENT} says it must be"
        );
        eprintln!("{test}: skipped: containment is tested as root (CI runs as root)");
        return false;
    }
    if required {
        assert!(
            policy.minimum_missing().is_empty() && policy.filesystem_view,
            "{test}: {REQUIRE_CONTAINMENT} is set, but this machine cannot contain graded \
             programs: {} ({:?})",
            policy.describe(),
            policy.minimum_missing()
        );
    }
    true
}

/// Set by `.ci/run`: a containment test that cannot do what it checks (not
/// root, no namespaces) fails instead of passing with nothing checked.
pub const REQUIRE_CONTAINMENT: &str = "SOCKET_LABS_REQUIRE_CONTAINMENT";

/// Headless Chromium, for the tests of the HTML pages and the book
/// (`.ci/run` installs it).
pub fn chromium() -> PathBuf {
    grader::render::headless::chromium().unwrap_or_else(|| {
        panic!(
            "Chromium is needed to test the HTML pages and the book: `apt-get install chromium` (.ci/run installs it)"
        )
    })
}
