//! The HTML pages in a real browser: headless Chromium loads a student's
//! page and a class dashboard made from real grades (lab 1's Python
//! fixtures, correct and with a classic bug), and the test reads back the
//! DOM it built, a screenshot, and every request it tried to make.
//!
//! Chromium is required, not optional: `.ci/run` installs it. Without it
//! these tests fail and say how to install it.

mod support;

use support::chromium;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use grader::LabReport;
use grader::render::headless::Headless;
use grader::render::{dashboard, html};

/// How long one page may take to load and draw.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// Where the browser's requests go: a proxy on loopback that answers
/// nothing. Chromium fetches things of its own (the time, account state);
/// none of it may leave the machine.
struct Sink {
    port: u16,
}

impl Sink {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the sink");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || listener.incoming().for_each(drop));
        Self { port }
    }
}

/// What a page loaded in Chromium did.
struct Visit {
    /// Chromium's stdout (`--dump-dom` prints the DOM).
    stdout: String,
    /// The requests the page itself started (the browser's own have no
    /// origin as initiator), from Chromium's network log.
    page_requests: Vec<String>,
}

/// The requests of `net_log` (Chromium's `--log-net-log` JSON) that a page
/// started: those whose initiator is an origin (`null` for a file page).
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("reading the network log");
    // Chromium may be stopped before it closes the JSON: close it here.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("the network log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    log["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["type"] == start_job)
        .filter(|event| {
            event["params"]["initiator"]
                .as_str()
                .is_some_and(|initiator| initiator != "not an origin")
        })
        .map(|event| event["params"]["url"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Runs headless Chromium on `page` with `action` (`--dump-dom`,
/// `--screenshot=…`), every request into `sink`.
fn browse(page: &Path, action: &str, sink: &Sink) -> Visit {
    let mut browser = Headless::new(&chromium()).expect("a profile dir");
    let net_log = browser.profile().join("net-log.json");
    browser
        .arg("--hide-scrollbars")
        .arg("--window-size=1200,1600")
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", sink.port))
        // Loopback too: nothing may be fetched from anywhere.
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(action);
    let browsed = browser.run(page, BROWSER_LIMIT).expect("starting chromium");
    let status = browsed
        .status
        .unwrap_or_else(|| panic!("chromium took over {BROWSER_LIMIT:?} on {}", page.display()));
    assert!(
        status.success(),
        "chromium {action} {}: {status}",
        page.display()
    );
    Visit {
        stdout: browsed.stdout,
        page_requests: page_requests(&net_log),
    }
}

/// How much of a PNG is not background: the share of pixels that differ
/// from the top-left one, and how many colours it has (Python's zlib
/// decodes it; Python is already needed by the grader's tests).
fn ink(png: &Path) -> (f64, usize) {
    const DECODE: &str = r#"
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    length, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b'IHDR':
        width, height, depth, colour = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + length
assert depth == 8 and colour in (2, 6), (depth, colour)
bpp = 3 if colour == 2 else 4
raw, stride = zlib.decompress(idat), width * bpp
rows, prev, pos = [], bytearray(stride), 0
for _ in range(height):
    kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
    pos += 1 + stride
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if kind == 1: line[i] = (line[i] + a) & 255
        elif kind == 2: line[i] = (line[i] + b) & 255
        elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line))
    prev = line
background = rows[0][:3]
pixels = [row[i:i + 3] for row in rows for i in range(0, stride, bpp * 4)]
print(sum(p != background for p in pixels) / len(pixels), len(set(pixels)))
"#;
    let output = Command::new("python3")
        .args(["-c", DECODE])
        .arg(png)
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "decoding {}: {}",
        png.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let share = fields.next().and_then(|f| f.parse().ok()).expect("a share");
    let colours = fields.next().and_then(|f| f.parse().ok()).expect("a count");
    (share, colours)
}

/// Lab 1 graded twice: the Python fixtures as they are, and with a server
/// that reads once (it fails two checks, with conversations worth seeing).
fn grades() -> (LabReport, LabReport) {
    let correct = support::grade_dir("echo", &support::fixtures("echo"));
    let buggy_dir = support::fixture_bin_dir("echo", &[("echo-server", "reads_once")]);
    let buggy = support::grade_dir("echo", buggy_dir.path());
    support::assert_fails(&buggy, "echo.small_pieces");
    (correct, buggy)
}

fn write(dir: &Path, name: &str, page: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, page).expect("writing a page");
    path
}

fn assert_drawn(png: &Path) {
    let (share, colours) = ink(png);
    assert!(
        share > 0.01 && colours > 4,
        "{} looks blank: {:.2}% of it is not background, {colours} colours",
        png.display(),
        share * 100.0
    );
}

#[test]
fn a_student_page_and_a_class_dashboard_render_offline_in_chromium() {
    let (correct, buggy) = grades();
    let dir = tempfile::tempdir().expect("temp dir");
    let links = html::Links {
        handouts: "file:///course/",
        book: false,
        up: Some(("report.html", "the class report")),
    };
    let student = write(dir.path(), "report-ada.html", &html::page([&buggy], links));
    write(
        dir.path(),
        "report-bob.html",
        &html::page([&correct], links),
    );
    let students = [
        dashboard::Student {
            name: "ada",
            page: "report-ada.html",
            reports: vec![&buggy],
        },
        dashboard::Student {
            name: "bob",
            page: "report-bob.html",
            reports: vec![&correct],
        },
    ];
    let class = write(
        dir.path(),
        "report.html",
        &dashboard::page(&students, html::Links::default()),
    );
    let sink = Sink::new();
    let mut requests = Vec::new();
    let mut dom_of = |page: &Path| {
        let visit = browse(page, "--dump-dom", &sink);
        requests.extend(visit.page_requests);
        visit.stdout
    };

    let dom = dom_of(&student);
    for check in &buggy.checks {
        assert!(
            dom.contains(&format!("id=\"{}\"", check.id)),
            "{} missing",
            check.id
        );
    }
    assert!(dom.contains("<svg class=\"seq\""), "no sequence diagram");
    assert!(dom.contains(">FIN</text>"), "the server's FIN is not drawn");
    assert!(dom.contains("✗</span> <span class=\"status\">failed</span>"));

    let dom = dom_of(&class);
    assert!(dom.contains("aria-label=\"histogram of total scores"));
    assert!(dom.contains("<table class=\"rates\">"));
    let hardest = dom.find("<code>echo.").expect("a check row");
    assert!(
        dom[hardest..].starts_with("<code>echo.one_mebibyte</code>")
            || dom[hardest..].starts_with("<code>echo.small_pieces</code>"),
        "a check half the class failed comes first"
    );
    assert!(dom.contains("<a href=\"report-ada.html\">ada</a>"));

    for page in [&student, &class] {
        let png = page.with_extension("png");
        let visit = browse(page, &format!("--screenshot={}", png.display()), &sink);
        requests.extend(visit.page_requests);
        assert_drawn(&png);
    }
    assert_eq!(requests, Vec::<String>::new(), "the pages fetched these");
}

/// The markup itself fetches nothing, even without the policy that forbids
/// it; and a page that fetches is caught (in the sink, on loopback).
#[test]
fn the_pages_fetch_nothing_even_without_their_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, buggy) = grades();
    let policy = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        html::CONTENT_SECURITY_POLICY
    );
    let page = html::page([&buggy], html::Links::default());
    assert!(page.contains(&policy));
    let bare = write(dir.path(), "bare.html", &page.replace(&policy, ""));
    let sink = Sink::new();
    let visit = browse(&bare, "--dump-dom", &sink);
    assert_eq!(
        visit.page_requests,
        Vec::<String>::new(),
        "the markup fetches these"
    );

    let fetching = write(
        dir.path(),
        "fetching.html",
        "<!DOCTYPE html><title>x</title><img src=\"http://example.com/x.png\">",
    );
    let visit = browse(&fetching, "--dump-dom", &sink);
    assert_eq!(
        visit.page_requests,
        ["http://example.com/x.png"],
        "a fetch was missed"
    );
}
