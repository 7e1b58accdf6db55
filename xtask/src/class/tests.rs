//! The tests of `grade-class`.

use grader::{Lab, Options};

/// The reference vectors of SipHash-2-4 (key 00..0f, messages 00..).
#[test]
fn pseudonyms_are_siphash_keyed_by_the_salt_and_stable() {
    let key: [u8; 16] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        super::anonymise::siphash24(&key, b""),
        0x726f_db47_dd0e_0e31
    );
    let message: Vec<u8> = (0..15).collect();
    assert_eq!(
        super::anonymise::siphash24(&key, &message),
        0xa129_ca61_49be_45e5
    );
    let a = super::anonymise::pseudonym(&key, b"ada");
    assert_eq!(a, super::anonymise::pseudonym(&key, b"ada"));
    assert_ne!(a, super::anonymise::pseudonym(&key, b"bob"));
    assert_ne!(a, super::anonymise::pseudonym(&[0; 16], b"ada"));
    assert!(a.starts_with("anon-") && a.len() == 21, "{a}");
}

#[test]
fn prefer_globs_match_the_leading_folders() {
    use super::submissions::path_glob_matches as matches;
    assert!(matches("labs", "labs/echo/src"));
    assert!(matches("labs/*", "labs/echo/src"));
    assert!(matches("labs/*/src", "labs/echo/src"));
    assert!(matches("**/labs", "Lab 1/labs/echo/src"));
    assert!(matches("old*", "old-backup/echo/src"));
    assert!(!matches("labs", "old-backup/echo/src"));
    assert!(!matches("labs/echo/src/bin", "labs/echo/src"));
    assert!(matches("l?bs", "labs/echo/src"));
}

use super::{csv, grade_class};
use crate::options::RunOptions;
use crate::seeded_class::{BUILD_TIMEOUT, KINDS, grade_seeded_class, make_submissions};

/// Every seeded bug scores what it predicts, whichever way the
/// submission is laid out; every file has an old modification time and
/// the untouched stub comes right after the correct solution, so each
/// submission must get executables of its own. The build that hangs
/// gets a row that says so, and the rows after it are still right.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn every_seeded_bug_scores_what_it_predicts() {
    let run = grade_seeded_class(KINDS, 2, &RunOptions::default()).unwrap();
    assert!(run.wrong.is_empty(), "{}", run.wrong.join("\n"));
    assert_eq!(run.csv_rows, KINDS);
}

/// The same class graded twice with the same seed gets the same rows.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn grading_a_class_twice_with_one_seed_gives_the_same_grades() {
    let dir = tempfile::tempdir().unwrap();
    make_submissions(dir.path(), 3).unwrap();
    let grade = || {
        grade_class(
            dir.path(),
            &[Lab::find("echo").unwrap()],
            2,
            BUILD_TIMEOUT,
            &Options {
                seed: 11,
                ..Options::default()
            },
        )
        .unwrap()
    };
    let rows =
        |results: &[super::Graded]| csv(results).lines().map(str::to_owned).collect::<Vec<_>>();
    let results = grade();
    let first = rows(&results);
    assert_eq!(first.len(), 4, "{first:#?}");
    assert_eq!(first, rows(&grade()));

    // The class's pages: the dashboard links every student's page.
    // --handouts is a hosted copy of the book: its pages are SLUG.html.
    let url = "https://example.edu/socket-labs/book";
    let dashboard = super::pages::write_pages(dir.path(), &results, Some(url), None).unwrap();
    let dashboard = std::fs::read_to_string(dashboard).unwrap();
    assert!(dashboard.contains("href=\"https://example.edu/socket-labs/book/echo.html#"));
    let students: Vec<&str> = results
        .iter()
        .map(|graded| graded.student.as_str())
        .collect();
    let mut students = students;
    students.dedup();
    for (student, stem) in students
        .iter()
        .zip(super::pages::page_stems(students.iter().copied()))
    {
        let page = dir.path().join(format!("report-{stem}.html"));
        let page = std::fs::read_to_string(&page).unwrap();
        assert!(page.contains("href=\"report.html\""), "{student}");
        assert!(dashboard.contains(&format!("href=\"report-{stem}.html\"")));
    }
}
