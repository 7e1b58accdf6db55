//! The class's grades as files: the CSV, the wide CSV (`--wide`), and
//! `grades.json`, which `--only` regrades from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use grader::{Lab, LabReport};
use serde::{Deserialize, Serialize};

use super::{ClassArgs, Graded};

/// The CSV: one row per (student, lab).
pub fn csv(results: &[Graded]) -> String {
    grader::render::csv::grades(
        results
            .iter()
            .map(|graded| (graded.student.as_str(), &graded.report)),
    )
}

/// The wide CSV (`--wide`): a row per student; for each lab its state and
/// score, then a column per check with the points it earned, headed by the
/// check's id and what it is out of (`echo.hello (6)`), for gradebook
/// imports (Canvas, Moodle).
pub fn wide_csv(results: &[Graded]) -> String {
    use grader::untrusted::csv_cell;
    let mut columns: Vec<(String, Vec<(String, u32)>)> = Vec::new();
    for graded in results {
        if !columns.iter().any(|(lab, _)| *lab == graded.report.lab) {
            columns.push((
                graded.report.lab.clone(),
                graded
                    .report
                    .checks
                    .iter()
                    .map(|check| (check.id.clone(), check.max_points))
                    .collect(),
            ));
        }
    }
    columns.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = vec!["student".to_owned(), "total".to_owned(), "max".to_owned()];
    for (lab, checks) in &columns {
        header.push(format!("{lab} state"));
        header.push(format!("{lab} score"));
        header.extend(checks.iter().map(|(id, max)| format!("{id} ({max})")));
    }
    let mut out = header.join(",") + "\n";
    let by_student = by_student(results);
    for (student, reports) in by_student {
        let total: u32 = reports.iter().map(|report| report.score).sum();
        let max: u32 = reports.iter().map(|report| report.max_score).sum();
        let mut row = vec![csv_cell(student), total.to_string(), max.to_string()];
        for (lab, checks) in &columns {
            let report = reports.iter().find(|report| report.lab == *lab);
            row.push(report.map_or(String::new(), |report| report.state.key().to_owned()));
            row.push(report.map_or(String::new(), |report| report.score.to_string()));
            for (id, _) in checks {
                row.push(
                    report
                        .and_then(|report| report.check(id))
                        .map_or(String::new(), |check| check.points.to_string()),
                );
            }
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Each student's reports, by name in order.
pub(super) fn by_student(results: &[Graded]) -> BTreeMap<&str, Vec<&LabReport>> {
    let mut by_student: BTreeMap<&str, Vec<&LabReport>> = BTreeMap::new();
    for graded in results {
        by_student
            .entry(&graded.student)
            .or_default()
            .push(&graded.report);
    }
    by_student
}

/// The file, in the class's folder, that keeps what its outputs are made
/// from.
pub const CLASS_FILE: &str = "grades.json";

/// What `grade-class` keeps beside its outputs, in `SUBMISSIONS/grades.json`:
/// the class's grades as data (every report, as `grade --format json`
/// writes it), and what `--only` rebuilds the CSV and the class report from
/// when it regrades some students.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClassFile {
    /// The seed every student was graded with.
    pub seed: u64,
    /// The labs of the class (`lab1` …), each student's graded in each.
    pub labs: Vec<String>,
    /// Whether the names are pseudonyms (`--anonymise`).
    pub anonymised: bool,
    /// `--handouts`, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handouts: Option<String>,
    /// `--csv`, when it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// Every student, by name.
    pub students: Vec<StudentGrades>,
}

/// One student's grades in [`ClassFile`].
#[derive(Debug, Serialize, Deserialize)]
pub struct StudentGrades {
    /// The folder's name, as the CSV shows it (or its pseudonym).
    pub student: String,
    /// A report per lab.
    pub reports: Vec<LabReport>,
}

impl ClassFile {
    /// The class file of `results`.
    pub(super) fn of(
        results: &[Graded],
        labs: &[&'static Lab],
        seed: u64,
        args: &ClassArgs,
    ) -> Self {
        let mut students: Vec<StudentGrades> = Vec::new();
        for graded in results {
            match students.last_mut() {
                Some(last) if last.student == graded.student => {
                    last.reports.push(graded.report.clone());
                }
                _ => students.push(StudentGrades {
                    student: graded.student.clone(),
                    reports: vec![graded.report.clone()],
                }),
            }
        }
        Self {
            seed,
            labs: labs.iter().map(|lab| lab.name()).collect(),
            anonymised: args.anonymise,
            handouts: args.handouts.clone(),
            csv: args
                .csv
                .as_ref()
                .map(|csv| std::path::absolute(csv).unwrap_or(csv.clone())),
            students,
        }
    }

    /// The class file of the class in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CLASS_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
                "--only regrades a class graded before, and {} is not there: grade the whole class first",
                path.display()
            ),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "reading {}: regrade the whole class to write it afresh",
                path.display()
            )
        })
    }

    /// Writes it into `dir`, in one rename.
    pub(super) fn save(&self, dir: &Path) -> Result<()> {
        crate::files::write_atomically(&dir.join(CLASS_FILE), &serde_json::to_vec(self)?)
    }

    /// The class's labs.
    pub(super) fn class_labs(&self) -> Result<Vec<&'static Lab>> {
        self.labs
            .iter()
            .map(|name| {
                Lab::find(name).with_context(|| {
                    format!("{CLASS_FILE} names a lab `{name}` this course has not")
                })
            })
            .collect()
    }

    /// Its rows.
    pub(super) fn graded(&self) -> Vec<Graded> {
        self.students
            .iter()
            .flat_map(|student| {
                student.reports.iter().map(|report| Graded {
                    student: student.student.clone(),
                    report: report.clone(),
                    state: report.state,
                })
            })
            .collect()
    }
}

/// The rows of `kept`, less those (student, lab) that `fresh` has anew,
/// and those of `fresh`, sorted.
pub(super) fn merge(kept: Vec<Graded>, fresh: Vec<Graded>) -> Vec<Graded> {
    let anew: BTreeSet<(String, String)> = fresh
        .iter()
        .map(|graded| (graded.student.clone(), graded.report.lab.clone()))
        .collect();
    let mut all: Vec<Graded> = kept
        .into_iter()
        .filter(|graded| !anew.contains(&(graded.student.clone(), graded.report.lab.clone())))
        .chain(fresh)
        .collect();
    all.sort_by(|a, b| (&a.student, &a.report.lab).cmp(&(&b.student, &b.report.lab)));
    all
}
