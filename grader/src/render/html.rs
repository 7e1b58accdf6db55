//! The HTML report: one self-contained page per grade (`grade --html`,
//! `cargo xtask report`, a student's page of `grade-class`).
//!
//! Everything is inline: the style sheet, and each check's conversation
//! drawn as an SVG sequence diagram (one lifeline per party, time running
//! down). Nothing is fetched, no script runs: the Content-Security-Policy
//! says so, and the page reads the same offline. A status is a shape and a
//! word as well as a colour.

use std::fmt::Write as _;

use super::diagram::sequence_diagram;
use super::timeline::Timeline;
use super::{CheckView, LabView, Same, same_as, same_failures, where_to_start};
use crate::outcome::{LabReport, Status};
// Every string a page shows goes through the one escape of HTML, SVG and
// XML, which also shows a student's control characters escaped.
use crate::untrusted::markup as escape;

/// Events a failed check's diagram shows from the end of its conversation
/// (a page has room for more than a terminal).
const DIAGRAM_TAIL: usize = 40;
/// … and a passed check's, folded away under its line.
const PASSED_DIAGRAM_TAIL: usize = 12;

/// Forbids every fetch (no script, font, image or style from anywhere)
/// while keeping the inline style sheet.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Where a page's links go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Links<'a> {
    /// What handout paths (`labs/echo/README.md#the-half-close`) are
    /// relative to: the course's folder as a `file://` URL, or its web
    /// address; ends with `/`.
    pub handouts: &'a str,
    /// Whether `handouts` is the book of `cargo xtask book` (a section
    /// `labs/echo/README.md#the-half-close` is then `echo.html#the-half-close`
    /// in it) rather than the course's folder.
    pub book: bool,
    /// The page to go back to (a class's dashboard), and what it is called.
    pub up: Option<(&'a str, &'a str)>,
}

impl Links<'_> {
    /// Where a handout section (`labs/echo/README.md#the-half-close`) is:
    /// in the course's folder, or in the book.
    pub fn href(&self, handout: &str) -> String {
        if self.book {
            format!("{}{}", self.handouts, crate::handout::in_book(handout))
        } else {
            format!("{}{handout}", self.handouts)
        }
    }
}

/// The page of one grade: every lab in `reports`.
pub fn page<'a>(reports: impl IntoIterator<Item = &'a LabReport>, links: Links) -> String {
    let views: Vec<LabView> = reports.into_iter().map(LabView::of).collect();
    let score: u32 = views.iter().map(|view| view.score).sum();
    let max: u32 = views.iter().map(|view| view.max_score).sum();
    let labs = views
        .iter()
        .map(|view| view.lab)
        .collect::<Vec<_>>()
        .join(", ");
    let graded = views.first().map_or("", |view| view.graded);
    let mut html = String::new();
    head(
        &mut html,
        &format!("{labs}: {score}/{max} — {graded} — Socket Labs"),
    );
    if let Some((href, label)) = links.up {
        let _ = writeln!(
            html,
            "<nav><a href=\"{}\">← {}</a></nav>",
            escape(href),
            escape(label)
        );
    }
    // One lab's score is shown once, by its section; several labs get a
    // total as well.
    let total = if views.len() > 1 {
        format!(" <span class=\"total\">{score}/{max}</span>")
    } else {
        String::new()
    };
    let _ = writeln!(
        html,
        "<header><h1>{}{total}</h1>",
        escape(&format!("{labs} — {graded}"))
    );
    if let Some(view) = views.first() {
        let _ = writeln!(
            html,
            "<p class=\"meta\">grader {} · seed {}</p>",
            escape(view.grader_version),
            view.seed,
        );
    }
    html.push_str("</header>\n<main>\n");
    for view in &views {
        lab(&mut html, view, links);
    }
    html.push_str("</main>\n");
    // How the programs were contained matters to an instructor, not to a
    // student fixing a check: folded away at the foot of the page.
    let containment = views
        .first()
        .map(|view| view.containment)
        .filter(|containment| !containment.is_empty())
        .map(|containment| {
            format!(
                "<details class=\"run\"><summary>How the grader ran your programs</summary><p>{}</p></details>",
                escape(containment)
            )
        })
        .unwrap_or_default();
    html.push_str(&LEGEND.replacen("<footer>", &format!("<footer>{containment}"), 1));
    html.push_str("</body>\n</html>\n");
    html
}

/// The document up to `<body>`: the policy, the title and the style sheet.
pub(super) fn head(html: &mut String, title: &str) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
}

fn lab(html: &mut String, view: &LabView, links: Links) {
    let passed = view.checks.iter().filter(|check| check.passed()).count();
    let _ = writeln!(
        html,
        "<section class=\"lab\" id=\"{}\">\n<h2>{} ({}) — {} <span class=\"score\">{}/{}</span></h2>",
        escape(view.lab),
        escape(view.lab),
        escape(view.slug),
        escape(view.title),
        view.score,
        view.max_score
    );
    let percent = (view.score * 100).checked_div(view.max_score).unwrap_or(0);
    let _ = writeln!(
        html,
        "<div class=\"scorebar\" role=\"img\" aria-label=\"{percent}% of the points\"><div style=\"width:{percent}%\"></div></div>\n\
         <p class=\"counts\">{}{}</p>",
        if view.did_not_compile() {
            format!("did not compile: none of {} checks ran", view.checks.len())
        } else {
            format!("{passed} of {} checks passed", view.checks.len())
        },
        if view.skipped > 0 {
            format!(
                " · {} skipped, not counted (on another platform than Linux the grade is not final)",
                view.skipped
            )
        } else {
            String::new()
        }
    );
    if !view.notes.is_empty() {
        html.push_str("<ul class=\"notes\">");
        for note in view.notes {
            let _ = write!(html, "<li>{}</li>", escape(note));
        }
        html.push_str("</ul>\n");
    }
    // A heading per state (not graded, did not compile, untouched stub),
    // then why: the message, or the compiler's first errors.
    if let Some(heading) = view.state.heading() {
        let _ = writeln!(
            html,
            "<h3 class=\"state {}\">{}</h3>",
            view.state.key(),
            escape(&heading)
        );
    }
    if let Some(reason) = view.reason() {
        let _ = writeln!(html, "<pre class=\"build\">{}</pre>", escape(&reason));
    }
    if let Some((start, handout)) = where_to_start(view) {
        // The handout section it names is a link, as everywhere on the page.
        let handout = handout.as_str();
        let mut start = inline(&start);
        if !handout.is_empty() {
            let link = format!(
                "<a href=\"{}\">{}</a>",
                escape(&links.href(handout)),
                escape(handout)
            );
            start = start.replacen(&escape(handout), &link, 1);
        }
        let _ = writeln!(html, "<p class=\"start\">{start}</p>");
    }
    if view.did_not_compile() {
        // Nothing ran: one line, not a list of checks that fail for no
        // reason of their own.
        let _ = writeln!(
            html,
            "<p class=\"not-run\">{}</p>\n</section>",
            escape(&view.not_run_line())
        );
        return;
    }
    // Every row's status and points line up in columns of their own; the
    // id comes after them, as wide as it is, and its title right after it
    // (a column as wide as the longest id left a gap after every short one).
    html.push_str("<ol class=\"checks\">\n");
    let same = same_failures(&view.checks);
    for (check, same) in view.checks.iter().zip(&same) {
        self::check(html, check, same, links);
    }
    html.push_str("</ol>\n</section>\n");
}

/// The mark and word of a status: never colour alone.
pub(super) fn status_label(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Passed => ("✓", "passed"),
        Status::Failed => ("✗", "failed"),
        Status::NotRun => ("·", "not run"),
        Status::Skipped => ("–", "skipped"),
    }
}

pub(super) fn status_class(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::NotRun => "not-run",
        Status::Skipped => "skipped",
    }
}

fn check(html: &mut String, check: &CheckView, same: &Same, links: Links) {
    let (mark, word) = status_label(check.status);
    // A check that did not run says why once, in the build failure above.
    let shows_failure = check.failure.is_some() && check.status != Status::NotRun;
    let has_body = shows_failure || !check.conversation.is_empty();
    // A failure is shown open; a passed check folds its conversation away.
    let open = if check.status == Status::Failed && !matches!(same, Same::AsAbove(_)) {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        html,
        "<li class=\"check {}\" id=\"{}\">",
        status_class(check.status),
        escape(check.id)
    );
    let summary = format!(
        "<span class=\"mark\" aria-hidden=\"true\">{mark}</span> <span class=\"status\">{word}</span> \
         <span class=\"points\">{}</span> <code class=\"id\">{}</code> <span class=\"title\">{}</span>",
        check.points(),
        escape(check.id),
        inline(check.title)
    );
    if !has_body {
        let _ = writeln!(html, "<div class=\"line\">{summary}</div>\n</li>");
        return;
    }
    let _ = writeln!(html, "<details{open}><summary>{summary}</summary>");
    if let Same::AsAbove(first) = same {
        let _ = writeln!(
            html,
            "<p class=\"same\"><a href=\"#{}\">{}</a></p>\n</details>\n</li>",
            escape(first),
            escape(&same_as(first, check))
        );
        return;
    }
    if let Some(failure) = check.failure.filter(|_| shows_failure) {
        let _ = writeln!(
            html,
            "<pre class=\"failure\">{}</pre>",
            escape(&failure.to_string())
        );
    }
    if let Same::AlsoCosts(others) = same {
        let list: Vec<String> = others
            .iter()
            .map(|id| format!("<a href=\"#{0}\">{0}</a>", escape(id)))
            .collect();
        let _ = writeln!(
            html,
            "<p class=\"same\">The same cause costs {} more check(s): {}</p>",
            others.len(),
            list.join(", ")
        );
    }
    if let Some(guidance) = check.guidance {
        let _ = writeln!(
            html,
            "<dl class=\"guidance\"><dt>hint</dt><dd>{}</dd><dt>read</dt><dd>{}</dd>",
            inline(guidance.hint),
            handout_link(guidance.handout, links)
        );
        if let Some(try_it) = guidance.try_it {
            // A command as code; words around commands in code spans.
            let shown = if try_it.contains('`') {
                inline(try_it)
            } else {
                format!("<code>{}</code>", escape(try_it))
            };
            let _ = writeln!(html, "<dt>try it</dt><dd>{shown}</dd>");
        }
        html.push_str("</dl>\n");
    }
    if !check.conversation.is_empty() && matches!(check.status, Status::Passed | Status::Failed) {
        let tail = if check.passed() {
            PASSED_DIAGRAM_TAIL
        } else {
            DIAGRAM_TAIL
        };
        let quoted = check
            .failure
            .filter(|_| shows_failure)
            .map(ToString::to_string)
            .unwrap_or_default();
        let timeline =
            Timeline::relevant(check.conversation, tail).folding_lines_quoted_in(&quoted);
        let _ = writeln!(
            html,
            "<figure>{}<figcaption>The conversation of {}: time runs down; each arrow is a connection, bytes, FIN or RST between two parties.</figcaption></figure>",
            sequence_diagram(&timeline, check.id),
            escape(check.id)
        );
    }
    html.push_str("</details>\n</li>\n");
}

/// `labs/echo/README.md#the-half-close` as a link that says where it goes:
/// `the half close (labs/echo/README.md)`, or `the half close (echo.html
/// in the book)` when it goes into the book.
fn handout_link(handout: &str, links: Links) -> String {
    let (file, anchor) = handout.split_once('#').unwrap_or((handout, ""));
    let page = if links.book {
        format!("{} in the book", crate::handout::in_book(file))
    } else {
        file.to_owned()
    };
    let section = if anchor.is_empty() {
        page
    } else {
        format!("{} ({page})", anchor.replace('-', " "))
    };
    format!(
        "<a href=\"{}\">{}</a>",
        escape(&links.href(handout)),
        escape(&section)
    )
}

/// `text` as HTML, its markdown code spans (`` `read` ``) as `<code>`: the
/// rubric's titles and hints are written in markdown. An unpaired backtick
/// is shown as it is.
pub fn inline(text: &str) -> String {
    let pieces: Vec<&str> = text.split('`').collect();
    let pairs = (pieces.len() - 1) / 2;
    let mut html = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 && i <= pairs * 2 {
            html.push_str(if i % 2 == 1 { "<code>" } else { "</code>" });
        } else if i > 0 {
            html.push('`');
        }
        html.push_str(&escape(piece));
    }
    html
}

/// `path` as a link's address: characters other than letters, digits and
/// `/-._~` percent-encoded (a student's directory may be called anything).
pub fn url_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(char::from(byte));
            }
            _ => {
                let _ = write!(encoded, "%{byte:02X}");
            }
        }
    }
    encoded
}

/// A folder as the `file://` URL handout links start with (ends with `/`).
pub fn folder_url(folder: &std::path::Path) -> String {
    let path = folder.to_string_lossy();
    format!("file://{}/", url_path(path.trim_end_matches('/')))
}

/// The arrowhead every diagram's arrows share, and what the marks mean.
const LEGEND: &str = "<footer><svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0 0L10 5L0 10z\" fill=\"#333\"/></marker></defs></svg>\
<p>In the diagrams: ▶ a program started, ● it printed a line, ■ it exited, ◆ the grader noted something; an arrow → carries bytes, a connection, or FIN (a side closed); ✕ a reset (RST) or a refused connection. Hover a row cut short (…) for its whole text.</p>\
<p>Made by the Socket Labs grader; this page fetches nothing and runs no script.</p></footer>\n";

/// The style sheet of every page: system fonts, and status shown by a
/// mark and a word as well as colour.
pub(super) const STYLE: &str = "\
:root{--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--ink:#1f2328;--mute:#59636e;--line:#d0d7de}\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);margin:0 auto;max-width:1100px;padding:16px 24px}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.2em 0 .3em}\
.total,.score{font-variant-numeric:tabular-nums;background:#eef1f4;border-radius:6px;padding:0 .4em}\
.meta,.counts,footer{color:var(--mute);font-size:.9em}\
.scorebar{height:10px;background:#eef1f4;border:1px solid var(--line);border-radius:5px;max-width:420px}\
.scorebar div{height:100%;background:var(--ok);border-radius:5px}\
.start{border-left:4px solid var(--warn);padding:.3em .8em;background:#fff8e5}\
ol.checks{list-style:none;padding:0;margin:.5em 0}\
.check{border-left:5px solid var(--line);margin:4px 0;padding:2px 10px;background:#fafbfc}\
.check.passed{border-color:var(--ok)}.check.failed{border-color:var(--bad);border-left-style:double;border-left-width:7px}\
.check.not-run,.check.skipped{border-color:var(--warn);border-left-style:dashed}\
summary,.line{cursor:default;padding:3px 0}summary{cursor:pointer}\
.check>details>summary,.check>.line{display:grid;grid-template-columns:.8em 1.2em 5.5em 3.2em max-content minmax(0,1fr);align-items:baseline;column-gap:.4em}\
.check>details>summary::before{content:'▸';color:var(--mute);font-size:.8em}.check>details[open]>summary::before{content:'▾'}.check>.line::before{content:''}\
.title code{font-size:12px}
.mark{display:inline-block;width:1.2em;text-align:center;font-weight:bold}\
.passed .mark,.passed .status{color:var(--ok)}.failed .mark,.failed .status{color:var(--bad)}\
.not-run .mark,.not-run .status,.skipped .mark,.skipped .status{color:var(--warn)}\
.status{font-size:.8em;text-transform:uppercase;letter-spacing:.04em;display:inline-block;width:5.5em}\
.points{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}\
.id{white-space:nowrap}\
details.run summary{cursor:pointer}\
code,pre{font:13px/1.4 ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace}\
pre{background:#f3f4f6;padding:8px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere;max-height:24em}\
.same{color:var(--mute)}\
dl.guidance{display:grid;grid-template-columns:5em 1fr;gap:2px 8px;margin:.4em 0}dt{color:var(--mute)}dd{margin:0}\
figure{margin:.5em 0;overflow-x:auto}figcaption{color:var(--mute);font-size:.85em}\
svg.seq{font:12px ui-monospace,Menlo,Consolas,monospace;background:#fff;border:1px solid var(--line);max-width:100%;height:auto;box-sizing:border-box;display:block}\
.seq .h{font-weight:bold;fill:var(--ink)}.seq .p{fill:#eef1f4;stroke:#8c959f}\
.seq .life{stroke:#8c959f;stroke-dasharray:4 3}.seq .t{fill:var(--mute)}.seq .w{fill:var(--ink)}.seq .g{fill:var(--mute);font-style:italic}\
.seq .gap{fill:#fff;stroke:#8c959f;stroke-dasharray:2 2}\
.seq .a{stroke:#333;stroke-width:1.5}.seq .l{fill:#333;font-size:11px}\
.seq .conn .a{stroke-dasharray:5 3}.seq .fin .a{stroke:#6f42c1;stroke-width:2.5}.seq .fin .l{fill:#6f42c1;font-weight:bold}\
.seq .rst .a{stroke:var(--bad);stroke-dasharray:2 2}.seq .x{stroke:var(--bad);stroke-width:2.5}.seq .rst .l{fill:var(--bad);font-weight:bold}\
.seq .m{fill:#333}.seq .err .m,.seq .err .w{fill:var(--bad)}.seq .note .m{fill:var(--warn)}\
.seq g:hover{font-weight:bold}\
table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.title{color:var(--mute);font-size:.9em}td .title{font-size:.85em}\
svg.chart{font:12px system-ui,sans-serif;max-width:100%;height:auto}.chart .b{fill:#4c6ef5}.chart .b.full{fill:var(--ok)}\
.chart .axis{stroke:#57606a}.chart .count{font-weight:bold;fill:var(--ink)}.chart .tick{fill:var(--mute)}\
td.rate{white-space:nowrap}svg.rate{vertical-align:middle}.rate .track{fill:#eef1f4;stroke:#d0d7de}.rate .b{fill:#4c6ef5}\
@media print{details{display:block}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_become_code_and_the_rest_is_escaped() {
        assert_eq!(
            inline("prints `Listening on <ADDR>` & flushes"),
            "prints <code>Listening on &lt;ADDR&gt;</code> &amp; flushes"
        );
        assert_eq!(inline("`a` and `b`"), "<code>a</code> and <code>b</code>");
        assert_eq!(inline("one ` alone"), "one ` alone");
        assert_eq!(inline("`a` then ` alone"), "<code>a</code> then ` alone");
    }

    #[test]
    fn handout_links_go_into_the_book_when_there_is_one() {
        let mut links = Links {
            handouts: "file:///c/",
            book: false,
            up: None,
        };
        let section = "labs/echo/README.md#the-half-close";
        assert_eq!(
            links.href(section),
            "file:///c/labs/echo/README.md#the-half-close"
        );
        assert!(
            handout_link(section, links).ends_with(">the half close (labs/echo/README.md)</a>")
        );
        links.book = true;
        assert_eq!(links.href(section), "file:///c/echo.html#the-half-close");
        assert_eq!(
            handout_link(section, links),
            "<a href=\"file:///c/echo.html#the-half-close\">the half close (echo.html in the book)</a>"
        );
    }
}
