//! The class's pages: the class report (the dashboard) and each
//! student's page beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Graded;
use super::exports::by_student;

/// The class's pages in `dir`: the dashboard `report.html`, and for each
/// student `report-STEM.html` (STEM from [`page_stems`]), the page
/// `grade --html` writes, linking back to the dashboard beside it. Files,
/// not a folder: every folder of `dir` is a submission. Without
/// `handouts`, the handout links are relative to `dir` where they can be
/// ([`crate::book::links_from`]). With `only`, of the students' pages only
/// theirs are written (the dashboard always is).
pub fn write_pages(
    dir: &Path,
    results: &[Graded],
    handouts: Option<&str>,
    only: Option<&BTreeSet<String>>,
) -> Result<PathBuf> {
    use grader::render::{dashboard, html};
    let (handouts, book) = match handouts {
        Some(url) if url.ends_with('/') => (url.to_owned(), true),
        Some(url) => (format!("{url}/"), true),
        None => crate::book::links_from(dir),
    };
    let by_student = by_student(results);
    let pages: Vec<(String, String)> = page_stems(by_student.keys().copied())
        .into_iter()
        .map(|stem| {
            let file = format!("report-{stem}.html");
            (html::url_path(&file), file)
        })
        .collect();
    for ((student, reports), (_, file)) in by_student.iter().zip(&pages) {
        if only.is_some_and(|only| !only.contains(*student)) {
            continue;
        }
        let page = html::page(
            reports.iter().copied(),
            html::Links {
                handouts: &handouts,
                book,
                up: Some(("report.html", "the class report")),
            },
        );
        let path = dir.join(file);
        crate::files::write_atomically(&path, page.as_bytes())
            .with_context(|| format!("writing the page of {student}"))?;
    }
    let students: Vec<dashboard::Student> = by_student
        .iter()
        .zip(&pages)
        .map(|((name, reports), (href, _))| dashboard::Student {
            name,
            page: href,
            reports: reports.clone(),
        })
        .collect();
    let path = dir.join("report.html");
    let page = dashboard::page(
        &students,
        html::Links {
            handouts: &handouts,
            book,
            up: None,
        },
    );
    crate::files::write_atomically(&path, page.as_bytes())?;
    Ok(path)
}

/// The stem of each student's page, in the order of `students`: a readable
/// prefix of the name and a hash of it, so that a name of any length makes
/// a file name well under the 255-byte limit and two students never share
/// a page (`bob\xff` and `bob\xfe` included).
pub fn page_stems<'a>(students: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    grader::untrusted::unique_file_stems(students)
}
