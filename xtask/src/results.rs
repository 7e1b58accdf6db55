//! Saved grades: the last report of each lab, kept in the git-ignored
//! `.grades/` directory for `cargo xtask status`, and the page of the last
//! grade for `cargo xtask report`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use grader::LabReport;
use grader::builder::workspace_root;
use serde_json::Value;

fn dir() -> PathBuf {
    workspace_root().join(".grades")
}

/// Saves the report of a student grade.
pub fn save(report: &LabReport) -> Result<()> {
    let mut value = serde_json::to_value(report)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    value["graded_at_unix"] = now.into();
    std::fs::create_dir_all(dir())?;
    let path = dir().join(format!("{}.json", report.slug));
    std::fs::write(&path, serde_json::to_vec_pretty(&value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Where the page of the last grade is kept.
pub fn page_path() -> PathBuf {
    dir().join("report.html")
}

/// Keeps `page` as the page of the last grade.
pub fn save_page(page: &str) -> Result<()> {
    std::fs::create_dir_all(dir())?;
    crate::files::write_atomically(&page_path(), page.as_bytes())
}

/// The page of `reports`, its handout links into this course: as
/// `file://` URLs, or, for a page written in the folder `at`, relative to
/// it where they can be (see [`crate::book::links_from`]). No link goes up
/// to a class report: this page is not beside one.
pub fn page<'a>(reports: impl IntoIterator<Item = &'a LabReport>, at: Option<&Path>) -> String {
    let (handouts, book) = match at {
        Some(dir) => crate::book::links_from(dir),
        None => crate::book::local_links(),
    };
    grader::render::html::page(
        reports,
        grader::render::html::Links {
            handouts: &handouts,
            book,
            up: None,
        },
    )
}

/// The last saved report of lab `slug`, if any.
pub fn load(slug: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir().join(format!("{slug}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// The build failure of a saved report that did not compile: its message
/// (`labs/echo did not compile:` and the compiler's output), or `None` when
/// the lab compiled.
pub fn build_failure(report: &Value) -> Option<&str> {
    if report["state"] != "did_not_compile" {
        return None;
    }
    Some(
        report["build"]["message"]
            .as_str()
            .unwrap_or("it did not compile"),
    )
}

/// "5 min ago" for a saved report.
pub fn age(report: &Value) -> String {
    let Some(then) = report["graded_at_unix"].as_u64() else {
        return "?".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seconds = now.saturating_sub(then);
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86400),
    }
}
