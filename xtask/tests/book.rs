//! `cargo xtask book`: the handouts as an offline HTML book that the
//! reports link into. A report whose every check failed links every
//! handout section the rubric names: each link must land on a heading of
//! the book, and in headless Chromium a link opens its page scrolled to
//! that heading. No page of the book runs a script or fetches anything.
//!
//! Chromium is required, as for the grader's `browser` tests.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command as Xtask;
use grader::render::headless::Headless;
use grader::render::html;
use grader::{Failure, LabReport, Status};
use support::chromium;

#[path = "../../grader/tests/support/mod.rs"]
mod support;

/// Builds the book into `dir`; returns its folder's `file://` URL.
fn build_book(dir: &Path) -> String {
    Xtask::cargo_bin("xtask")
        .unwrap()
        .args(["book", "--out"])
        .arg(dir)
        .assert()
        .success();
    html::folder_url(dir)
}

/// A grade of `lab` in which every check failed: its page links every
/// handout section of the rubric.
fn every_check_failed(lab: &'static grader::Lab) -> LabReport {
    let mut report = grader::grade(lab, Err("not built".into()), &grader::Options::default());
    for check in &mut report.checks {
        check.status = Status::Failed;
        check.failure = Some(Failure::new(format!("{} failed", check.id)));
    }
    report.build = grader::outcome::BuildState::Ready;
    report.state = grader::outcome::SubmissionState::Graded;
    report
}

/// The `href`s of a page that start with `base`.
fn links_into(page: &str, base: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with(base))
        .map(|href| href.replace("&amp;", "&"))
        .collect()
}

#[test]
fn every_report_link_lands_on_a_heading_of_the_book() {
    let dir = tempfile::tempdir().unwrap();
    let base = build_book(dir.path());
    let mut checked = 0;
    for lab in grader::LABS {
        let report = every_check_failed(lab);
        let page = html::page(
            [&report],
            html::Links {
                handouts: &base,
                book: true,
                up: None,
            },
        );
        for check in &report.checks {
            let href = format!("{base}{}", grader::handout::in_book(&check.handout));
            assert!(
                links_into(&page, &base).contains(&href),
                "{}: the page does not link {href}",
                check.id
            );
            let (file, anchor) = href[base.len()..].split_once('#').unwrap();
            let book_page = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(
                book_page.contains(&format!(" id=\"{anchor}\"")),
                "{}: {file} has no heading #{anchor}",
                check.id
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} links");
}

#[test]
fn the_book_fetches_nothing_and_runs_no_script() {
    let dir = tempfile::tempdir().unwrap();
    build_book(dir.path());
    let mut pages = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(
            "http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;"
        ));
        for forbidden in ["<script", "<link", "<img", "http://", "src=\"http"] {
            assert!(
                !text.contains(forbidden),
                "{} contains {forbidden}",
                path.display()
            );
        }
        pages += 1;
    }
    // Six handouts, the contents, the kernel-claims tests.
    assert_eq!(pages, 8);
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for lab in grader::LABS {
        assert!(index.contains(&format!("href=\"{}.html\"", lab.slug)));
    }
    let claims = std::fs::read_to_string(dir.path().join("kernel-claims.html")).unwrap();
    assert!(claims.contains("id=\"connect_completes_before_accept\""));
}

/// Where `url` leaves the page, measured in Chromium: see [`probe`]. The
/// frame's scroll position, and where the heading `anchor` is in it.
fn where_it_opens(dir: &Path, url: &str, anchor: &str) -> (f64, f64) {
    let result = probe(
        dir,
        url,
        1200,
        &format!(
            "w.scrollY + ' ' + (w.document.getElementById('{anchor}') ? \
             w.document.getElementById('{anchor}').getBoundingClientRect().top : 'none')"
        ),
    );
    let (scroll, top) = result.split_once(' ').unwrap();
    (
        scroll.parse().unwrap(),
        top.parse()
            .unwrap_or_else(|_| panic!("no heading #{anchor} at {url}")),
    )
}

/// Loads `url` in Chromium, in a frame `width` px wide of a page of the
/// test's own (the pages under test have no script), and returns the value
/// of the JavaScript `expression` over the frame's window `w`.
fn probe(dir: &Path, url: &str, width: u32, expression: &str) -> String {
    let probe = dir.join("probe.html");
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\">\
             <iframe id=\"f\" style=\"width:{width}px;height:800px;border:0\" src=\"{url}\"></iframe>\
             <pre id=\"out\">pending</pre><script>\
             document.getElementById('f').addEventListener('load', function () {{\
               setTimeout(function () {{\
                 var w = document.getElementById('f').contentWindow;\
                 document.getElementById('out').textContent = 'at ' + ({expression}) + ' end';\
               }}, 300);\
             }});</script></body></html>"
        ),
    )
    .unwrap();
    let mut browser = Headless::new(&chromium()).unwrap();
    // The probe reads the frame's document: both are files.
    browser
        .arg("--allow-file-access-from-files")
        .arg("--virtual-time-budget=5000")
        .arg("--window-size=1200,1000")
        .arg("--proxy-server=http://127.0.0.1:9")
        .arg("--proxy-bypass-list=<-loopback>")
        .arg("--dump-dom");
    let browsed = browser
        .run(&probe, Duration::from_secs(90))
        .expect("starting chromium");
    assert!(
        browsed.status.is_some(),
        "Chromium did not finish within 90 s"
    );
    let dom = browsed.stdout;
    dom.split("<pre id=\"out\">at ")
        .nth(1)
        .and_then(|rest| rest.split(" end").next())
        .unwrap_or_else(|| panic!("no measure in the probe's DOM: {dom}"))
        .to_owned()
}

#[test]
fn a_link_from_a_report_opens_the_book_scrolled_to_its_heading() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    let base = build_book(&book);
    let report = every_check_failed(grader::Lab::find("echo").unwrap());
    let page = html::page(
        [&report],
        html::Links {
            handouts: &base,
            book: true,
            up: None,
        },
    );
    // A section far down the page, so that landing on it means scrolling.
    let url = links_into(&page, &base)
        .into_iter()
        .find(|href| href.ends_with("echo.html#the-half-close"))
        .expect("the report links the half-close");
    let (scroll, top) = where_it_opens(dir.path(), &url, "the-half-close");
    assert!(scroll > 500.0, "the page is not scrolled: {scroll}");
    assert!(
        (0.0..60.0).contains(&top),
        "the heading is {top} px from the top of the window"
    );
}

/// A student's page in a 900 px window: nothing is wider than the window.
#[test]
fn a_student_page_has_no_horizontal_scroll_at_900_px() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports: Vec<LabReport> = grader::LABS.iter().map(every_check_failed).collect();
    // A long line of a program's output, as a failure quotes it.
    reports[0].checks[0].failure = Some(Failure::new(format!(
        "the server printed {}",
        "x".repeat(400)
    )));
    let page = dir.path().join("page.html");
    std::fs::write(
        &page,
        html::page(
            &reports,
            html::Links {
                handouts: "file:///course/",
                book: false,
                up: None,
            },
        ),
    )
    .unwrap();
    let url = format!("file://{}", page.display());
    let widths = probe(
        dir.path(),
        &url,
        900,
        "w.document.documentElement.scrollWidth + ' ' + w.document.documentElement.clientWidth",
    );
    let (scroll, client) = widths.split_once(' ').unwrap();
    let (scroll, client): (u32, u32) = (scroll.parse().unwrap(), client.parse().unwrap());
    assert!(
        scroll <= client,
        "the page is {scroll} px wide in a {client} px window"
    );
}
