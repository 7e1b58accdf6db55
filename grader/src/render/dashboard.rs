//! The class dashboard of `grade-class`: how the class did, and where it
//! struggled. A score histogram, the pass rate of every check (the hardest
//! first, each linking to its handout section), a row per student linking
//! to that student's page (the page of [`super::html`]), and the grader
//! version and seed. Self-contained like the student pages: charts are SVG
//! drawn here, nothing is fetched.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::{self, Links};
use crate::outcome::{LabReport, Status, SubmissionState};
use crate::untrusted::markup as escape;

/// One student of the class.
#[derive(Debug)]
pub struct Student<'a> {
    /// The submission's name.
    pub name: &'a str,
    /// Where the student's page is, relative to the dashboard.
    pub page: &'a str,
    /// The student's grades, one per lab.
    pub reports: Vec<&'a LabReport>,
}

impl Student<'_> {
    fn score(&self) -> (u32, u32) {
        self.reports.iter().fold((0, 0), |(score, max), report| {
            (score + report.score, max + report.max_score)
        })
    }
}

/// How one check went across the class.
#[derive(Debug, Default)]
struct CheckRate<'a> {
    title: &'a str,
    handout: &'a str,
    passed: usize,
    graded: usize,
}

/// Buckets of the histogram: 0–9 %, …, 90–99 %, 100 %.
const BUCKETS: usize = 11;

/// The dashboard of a class.
pub fn page(students: &[Student], links: Links) -> String {
    let first = students.iter().flat_map(|s| s.reports.first()).next();
    let labs: Vec<&str> = {
        let mut labs: Vec<&str> = students
            .iter()
            .flat_map(|s| s.reports.iter().map(|r| r.lab.as_str()))
            .collect();
        labs.sort_unstable();
        labs.dedup();
        labs
    };
    let mut page = String::new();
    html::head(
        &mut page,
        &format!(
            "Class report: {} students, {} — Socket Labs",
            students.len(),
            labs.join(", ")
        ),
    );
    let _ = writeln!(
        page,
        "<header><h1>Class report <span class=\"total\">{} students</span></h1>\n<p class=\"meta\">{} · grader {} · seed {}</p></header>\n<main>",
        students.len(),
        escape(&labs.join(", ")),
        escape(first.map_or("?", |r| r.grader_version.as_str())),
        first.map_or(0, |r| r.seed)
    );
    states(&mut page, students);
    histogram(&mut page, students);
    pass_rates(&mut page, students, links);
    student_rows(&mut page, students, &labs);
    page.push_str(
        "</main>\n<footer><p>Made by the Socket Labs grader; this page fetches nothing and runs no script.</p></footer>\n</body>\n</html>\n",
    );
    page
}

/// How many lab grades are in each state, when any is not plainly graded:
/// the stubs, the compile errors and each way of not being graded are
/// counted apart, not folded into "checks not passed".
fn states(page: &mut String, students: &[Student]) {
    let mut counts: BTreeMap<SubmissionState, usize> = BTreeMap::new();
    for report in students.iter().flat_map(|s| &s.reports) {
        *counts.entry(report.state).or_default() += 1;
    }
    if counts.keys().all(|state| *state == SubmissionState::Graded) {
        return;
    }
    page.push_str("<section id=\"states\"><h2>Submissions</h2>\n<ul class=\"states\">");
    for (state, count) in &counts {
        let _ = write!(
            page,
            "<li class=\"state {}\"><strong>{count}</strong> {}</li>",
            state.key(),
            escape(state.label())
        );
    }
    page.push_str(
        "</ul>\n<p class=\"counts\">Pass rates count only the labs whose checks ran \
         (graded, untouched stubs included); the rest are listed by state, not as failures.</p></section>\n",
    );
}

/// Students by total score, in buckets of 10 %.
fn histogram(page: &mut String, students: &[Student]) {
    let mut counts = [0usize; BUCKETS];
    let mut percents: Vec<usize> = students
        .iter()
        .map(|student| {
            let (score, max) = student.score();
            (score as usize * 100)
                .checked_div(max as usize)
                .unwrap_or(0)
        })
        .collect();
    for percent in &percents {
        counts[(percent / 10).min(BUCKETS - 1)] += 1;
    }
    percents.sort_unstable();
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1);
    let (bar, gap, plot_height, left, top) = (52, 8, 160, 40, 20);
    let width = left + BUCKETS * (bar + gap) + 10;
    let height = top + plot_height + 44;
    let label = |bucket: usize| match bucket {
        10 => "100".to_owned(),
        _ => format!("{}–{}", bucket * 10, bucket * 10 + 9),
    };
    let description: Vec<String> = counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(bucket, count)| format!("{count} at {} %", label(bucket)))
        .collect();
    let _ = write!(
        page,
        "<section id=\"scores\"><h2>Scores</h2>\n<p class=\"counts\">median {} % of the points · {} at full marks · {} at zero</p>\n<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"histogram of total scores: {}\"><title>Students per total score</title>",
        median(&percents),
        percents.iter().filter(|percent| **percent == 100).count(),
        percents.iter().filter(|percent| **percent == 0).count(),
        escape(&description.join(", "))
    );
    let base = top + plot_height;
    let _ = write!(
        page,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" class=\"axis\"/>",
        width - 10
    );
    for (bucket, count) in counts.iter().enumerate() {
        let x = left + bucket * (bar + gap);
        let bar_height = count * plot_height / tallest;
        let _ = write!(
            page,
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{bar_height}\" class=\"b{}\"><title>{count} student(s) at {} %</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"count\">{count}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">{}</text>",
            base - bar_height,
            if bucket == BUCKETS - 1 { " full" } else { "" },
            label(bucket),
            x + bar / 2,
            base - bar_height - 5,
            x + bar / 2,
            base + 16,
            label(bucket)
        );
    }
    let _ = writeln!(
        page,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">total score, % of the points</text>\
         <text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\" class=\"tick\">students</text></svg></section>",
        left + BUCKETS * (bar + gap) / 2,
        base + 36,
        top + plot_height / 2,
        top + plot_height / 2
    );
}

/// The middle of `sorted` (the mean of the two middle ones for an even
/// count), 0 when empty.
fn median(sorted: &[usize]) -> usize {
    match sorted.len() {
        0 => 0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]).div_ceil(2),
    }
}

/// Every check's pass rate, the class's hardest first.
fn pass_rates(page: &mut String, students: &[Student], links: Links) {
    let mut rates: BTreeMap<&str, CheckRate> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut graded = 0;
    let mut left_out = 0;
    for report in students.iter().flat_map(|s| &s.reports) {
        // A lab that did not compile or was not graded ran nothing: its
        // zeros say nothing about how hard a check is.
        if !report.state.ran() {
            left_out += 1;
            continue;
        }
        graded += 1;
        for check in &report.checks {
            if check.status == Status::Skipped {
                continue;
            }
            let rate = rates.entry(&check.id).or_insert_with(|| {
                order.push(&check.id);
                CheckRate {
                    title: &check.title,
                    handout: &check.handout,
                    ..CheckRate::default()
                }
            });
            rate.graded += 1;
            rate.passed += usize::from(check.passed());
        }
    }
    // Hardest first; among equals, in rubric order.
    order.sort_by(|a, b| {
        let share = |id: &str| {
            let rate = &rates[id];
            rate.passed as f64 / rate.graded.max(1) as f64
        };
        share(a).total_cmp(&share(b))
    });
    let _ = write!(
        page,
        "<section id=\"checks\"><h2>Checks, hardest first</h2>\n<p class=\"counts\">of {graded} graded{}</p>\n",
        if left_out > 0 {
            format!(" ({left_out} that did not compile or were not graded left out)")
        } else {
            String::new()
        }
    );
    page.push_str(
        "<table class=\"rates\"><thead><tr><th>check</th><th>passed</th><th>pass rate</th><th>handout</th></tr></thead><tbody>\n",
    );
    for id in order {
        let rate = &rates[id];
        // Rounded to the nearest: 20 of 30 is 67 %.
        let percent = (rate.passed * 200 + rate.graded)
            .checked_div(rate.graded * 2)
            .unwrap_or(0);
        let (file, anchor) = rate.handout.split_once('#').unwrap_or((rate.handout, ""));
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code><br><span class=\"title\">{}</span></td><td class=\"n\">{}/{}</td>\
             <td class=\"rate\"><svg class=\"rate\" width=\"204\" height=\"16\" role=\"img\" aria-label=\"{percent}% passed\"><rect x=\"1\" y=\"2\" width=\"200\" height=\"12\" class=\"track\"/><rect x=\"1\" y=\"2\" width=\"{}\" height=\"12\" class=\"b\"/></svg> {percent}%</td>\
             <td><a href=\"{}\">{}</a><br><span class=\"title\">{}</span></td></tr>",
            escape(id),
            html::inline(rate.title),
            rate.passed,
            rate.graded,
            percent * 2,
            escape(&links.href(rate.handout)),
            escape(&anchor.replace('-', " ")),
            escape(file)
        );
    }
    page.push_str("</tbody></table></section>\n");
}

/// A row per student: total, each lab's score, how many checks failed.
fn student_rows(page: &mut String, students: &[Student], labs: &[&str]) {
    page.push_str(
        "<section id=\"students\"><h2>Students</h2>\n<table class=\"students\"><thead><tr><th>student</th><th>total</th>",
    );
    for lab in labs {
        let _ = write!(page, "<th>{}</th>", escape(lab));
    }
    page.push_str("<th>checks not passed</th></tr></thead><tbody>\n");
    for student in students {
        let (score, max) = student.score();
        let _ = write!(
            page,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"n\">{score}/{max}</td>",
            escape(student.page),
            escape(student.name)
        );
        for lab in labs {
            match student.reports.iter().find(|report| report.lab == *lab) {
                Some(report) if report.state == SubmissionState::Graded => {
                    let _ = write!(
                        page,
                        "<td class=\"n\">{}/{}</td>",
                        report.score, report.max_score
                    );
                }
                Some(report) => {
                    let _ = write!(
                        page,
                        "<td class=\"n state {}\">{}/{}<br><span class=\"title\">{}</span></td>",
                        report.state.key(),
                        report.score,
                        report.max_score,
                        escape(report.state.label())
                    );
                }
                None => page.push_str("<td class=\"n\">–</td>"),
            }
        }
        // Checks that ran and failed; a lab that ran nothing says why
        // instead of counting its checks as failed.
        let failed: usize = student
            .reports
            .iter()
            .filter(|report| report.state.ran())
            .map(|report| report.failed_ids().len() - report.skipped())
            .sum();
        let mut states: Vec<&str> = student
            .reports
            .iter()
            .filter(|report| !report.state.ran())
            .map(|report| report.state.label())
            .collect();
        states.dedup();
        if states.is_empty() {
            let _ = writeln!(page, "<td class=\"n\">{failed}</td></tr>");
        } else {
            let _ = writeln!(
                page,
                "<td class=\"n\">{failed} · {}</td></tr>",
                escape(&states.join("; "))
            );
        }
    }
    page.push_str("</tbody></table></section>\n");
}
