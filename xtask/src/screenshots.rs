//! `cargo xtask screenshots`: the README's pictures, drawn again from the
//! current course. A class of 30 everyday seeded submissions of lab 1 (the
//! solution, the stub, two classic bugs, a compile error; see
//! [`crate::seeded_class::pictured`]) is graded with seed 7, every score
//! checked against its prediction; its dashboard becomes
//! `docs/class-report.png` and one student's page `docs/student-page.png`,
//! in headless Chromium.
//!
//! Beside each picture, `docs/NAME.json` holds what it is drawn from: the
//! lab's checks and points, the seed, the students and their scores. That
//! data is cheap to compute from the rubric and the seeded kinds, and a test
//! compares it with the file, so that a picture cannot go stale silently
//! (pixels would differ from machine to machine; the data does not).
//!
//! Course-only: it grades the reference solutions, which the student
//! edition does not have.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use grader::Lab;
use grader::render::headless::Headless;
use serde_json::{Value, json};

use crate::options::RunOptions;
use crate::seeded_class::{self, BUILD_TIMEOUT};

/// How many submissions the pictured class has: a large lab section.
const CLASS_SIZE: usize = 30;

/// The seed every pictured grade uses.
const SEED: u64 = 7;

/// The kind of submission whose page is pictured: a classic bug, so that
/// the page shows failed checks and their conversations.
const PICTURED_STUDENT_KIND: &str = "-whole-buffer";

/// A picture of the README, its data file beside it, and the window it is
/// drawn in.
struct Picture {
    png: &'static str,
    data: &'static str,
    window: (u32, u32),
    page: Page,
}

/// Which of the class's pages a picture shows.
#[derive(Clone, Copy)]
enum Page {
    /// The class report, `report.html`.
    Dashboard,
    /// The pictured student's page.
    Student,
}

const CLASS_REPORT: Picture = Picture {
    png: "docs/class-report.png",
    data: "docs/class-report.json",
    window: (1100, 1400),
    page: Page::Dashboard,
};

const STUDENT_PAGE: Picture = Picture {
    png: "docs/student-page.png",
    data: "docs/student-page.json",
    window: (1200, 1400),
    page: Page::Student,
};

/// How long Chromium may take to draw one page.
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

fn echo() -> &'static Lab {
    Lab::find("echo").expect("lab 1 is echo")
}

/// Lab 1 as the pictures show it: its checks, with their points, in rubric
/// order, and its total.
fn lab_data() -> Value {
    let lab = echo();
    let checks: Vec<Value> = grader::rubric::for_lab(lab)
        .iter()
        .map(|check| json!({ "id": check.id, "points": check.points }))
        .collect();
    json!({
        "lab": lab.name(),
        "points": grader::rubric::total(lab),
        "checks": checks.len(),
        "per_check": checks,
    })
}

/// The pictured student: the first of the class's kind
/// [`PICTURED_STUDENT_KIND`], and the score predicted for them.
fn pictured_student() -> (String, u32) {
    seeded_class::pictured(CLASS_SIZE)
        .into_iter()
        .find(|(student, _)| student.ends_with(PICTURED_STUDENT_KIND))
        .expect("the pictured class has a student of the pictured kind")
}

/// What each picture is drawn from, computed without grading: the picture
/// and its data.
fn data() -> [(&'static Picture, Value); 2] {
    let class: Vec<Value> = seeded_class::pictured(CLASS_SIZE)
        .into_iter()
        .map(|(student, score)| json!({ "student": student, "score": score }))
        .collect();
    let (student, score) = pictured_student();
    let drawn_by = "cargo xtask screenshots";
    [
        (
            &CLASS_REPORT,
            json!({
                "drawn_by": drawn_by,
                "picture": CLASS_REPORT.png,
                "seed": SEED,
                "lab": lab_data(),
                "students": class,
            }),
        ),
        (
            &STUDENT_PAGE,
            json!({
                "drawn_by": drawn_by,
                "picture": STUDENT_PAGE.png,
                "seed": SEED,
                "lab": lab_data(),
                "student": student,
                "score": score,
            }),
        ),
    ]
}

/// The data as its file holds it: pretty JSON with its keys sorted, and a
/// newline. Sorted here, since serde_json keeps insertion order instead
/// when a crate of the same build enables `preserve_order` (lab 6 does, in
/// a workspace-wide build).
fn data_file(data: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(data)).expect("JSON values serialise");
    text.push('\n');
    text
}

/// `value` with the keys of every object in sorted order.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), sorted(&map[key])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Runs `cargo xtask screenshots`.
pub fn run() -> Result<ExitCode> {
    let root = crate::files::course_with_solutions("the pictures grade")?;
    let Some(chromium) = grader::render::headless::chromium() else {
        bail!("drawing the pictures needs headless Chromium: `apt-get install chromium`");
    };
    let class = tempfile::Builder::new()
        .prefix("screenshots-class-")
        .tempdir()
        .context("creating a temporary directory")?;
    let predicted = seeded_class::make_pictured_submissions(class.path(), CLASS_SIZE)?;
    eprintln!(
        "grading a class of {CLASS_SIZE} seeded submissions of lab 1 (seed {SEED}): a minute or two"
    );
    let options = seeded_class::options(&RunOptions {
        seed: Some(SEED),
        ..RunOptions::default()
    });
    let results = crate::class::grade_class(class.path(), &[echo()], 2, BUILD_TIMEOUT, &options)?;
    let wrong = seeded_class::unpredicted(&predicted, &results);
    if !wrong.is_empty() {
        bail!(
            "the pictured class did not grade as predicted, so the pictures would not match their data:\n{}",
            wrong.join("\n")
        );
    }
    let dashboard = crate::class::write_pages(class.path(), &results, None, None)?;
    let (student, _) = pictured_student();
    let names: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|graded| graded.student.as_str())
        .collect();
    let stems = crate::class::page_stems(names.iter().copied());
    let stem = names
        .iter()
        .zip(&stems)
        .find(|(name, _)| **name == student)
        .map(|(_, stem)| stem)
        .context("the pictured student has a page")?;
    let student_page = class.path().join(format!("report-{stem}.html"));
    for (picture, data) in data() {
        let page = match picture.page {
            Page::Dashboard => &dashboard,
            Page::Student => &student_page,
        };
        let png = root.join(picture.png);
        screenshot(&chromium, page, &png, picture.window)?;
        crate::files::write_atomically(&root.join(picture.data), data_file(&data).as_bytes())?;
        println!("{} (its data: {})", png.display(), picture.data);
    }
    Ok(ExitCode::SUCCESS)
}

/// Draws `page` into `png` in headless Chromium, in a window of `size`.
fn screenshot(chromium: &Path, page: &Path, png: &Path, size: (u32, u32)) -> Result<()> {
    let mut browser = Headless::new(chromium).context("creating Chromium's profile folder")?;
    let drawn: PathBuf = browser.profile().join("drawn.png");
    browser
        .arg("--hide-scrollbars")
        .arg("--force-device-scale-factor=1")
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", drawn.display()));
    let browsed = browser
        .run(page, BROWSER_LIMIT)
        .with_context(|| format!("starting {}", chromium.display()))?;
    match browsed.status {
        None => bail!(
            "Chromium took over {BROWSER_LIMIT:?} to draw {}",
            page.display()
        ),
        Some(status) if !status.success() || !drawn.is_file() => {
            bail!("Chromium could not draw {} ({status})", page.display())
        }
        Some(_) => {}
    }
    std::fs::copy(&drawn, png).with_context(|| format!("writing {}", png.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pictures' data, computed from the current rubric and seeded
    /// class, is the data they were drawn from: a check added, or points
    /// changed, and the picture is stale.
    #[test]
    fn the_readme_pictures_are_drawn_from_the_current_course() {
        let root = grader::builder::workspace_root();
        for (picture, data) in data() {
            let kept = std::fs::read_to_string(root.join(picture.data)).unwrap_or_default();
            // Compared as data: the order of keys is not what a picture shows.
            let kept_data: Option<Value> = serde_json::from_str(&kept).ok();
            assert!(
                kept_data.as_ref() == Some(&data),
                "{} is stale: run cargo xtask screenshots\n(what it shows, {}:\n{kept}\nwhat the course has now:\n{})",
                picture.png,
                picture.data,
                data_file(&data)
            );
        }
    }

    #[test]
    fn the_pictured_student_has_failed_checks_to_show() {
        let (_, score) = pictured_student();
        assert!(score > 0 && score < grader::rubric::total(echo()));
    }
}
