//! `cargo xtask book`: the six handouts as one offline HTML book.
//!
//! Each `labs/SLUG/README.md` becomes `SLUG.html`, with the same heading
//! anchors as GitHub gives them ([`grader::handout::anchor`]), so that a
//! report's `labs/echo/README.md#why-read-returns-less-than-you-asked` is
//! `echo.html#why-read-returns-less-than-you-asked` in the book. Links are
//! rewritten into the book (another handout: its page; a kernel-claims test:
//! its place on `kernel-claims.html`; any other file of the course: the
//! course's folder, or `--source-url`), the SVG diagrams are put inline,
//! and every page has the table of contents. Nothing is fetched and no
//! script runs: the pages say so in their Content-Security-Policy.
//!
//! The markdown is read with pulldown-cmark, a library, rather than mdBook, a
//! tool: nothing to install, and the anchors and links are ours to compute.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use grader::handout::Anchors;
use grader::untrusted::markup as escape;
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use grader::builder::workspace_root;

#[derive(Debug, Args)]
pub struct BookArgs {
    /// Where to write the book (default: target/book, where the reports
    /// look for it).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where the course's files are on the web (`https://…/socket-labs/`),
    /// for the links from the book to source files when it is hosted
    /// (default: this course's folder, as a file:// URL).
    #[arg(long, value_name = "URL")]
    source_url: Option<String>,
}

/// The page of the kernel-claims tests.
const CLAIMS_PAGE: &str = "kernel-claims.html";
const CLAIMS_SOURCE: &str = "grader/tests/kernel_claims.rs";

/// Where the book is when it was built in this course: the reports link
/// into it when its first page is there.
pub fn default_dir() -> PathBuf {
    workspace_root().join("target/book")
}

/// The base URL of report links and whether it is the book: the book when
/// it has been built, the course's folder otherwise.
pub fn local_links() -> (String, bool) {
    let (folder, book) = local_handouts();
    (grader::render::html::folder_url(&folder), book)
}

/// The folder the reports' handout links go into, and whether it is the
/// book: the book when it has been built, the course's folder otherwise.
fn local_handouts() -> (PathBuf, bool) {
    let book = default_dir();
    if book.join("index.html").is_file() {
        (book, true)
    } else {
        (workspace_root(), false)
    }
}

/// As [`local_links`], for a page written in the folder `page_dir`: the
/// links relative to it (`../target/book/`) when the page and the book
/// share a folder below the root, so that the page keeps working wherever
/// the two are moved together (a course folder with its classes, handed on
/// whole, or served from one place); a `file://` URL otherwise. Never a
/// path of a temporary folder of the grader's.
pub fn links_from(page_dir: &Path) -> (String, bool) {
    let (folder, book) = local_handouts();
    let relative = match (page_dir.canonicalize(), folder.canonicalize()) {
        (Ok(from), Ok(to)) => relative_path(&from, &to),
        _ => None,
    };
    match relative {
        Some(path) => (grader::render::html::url_path(&path), book),
        None => (grader::render::html::folder_url(&folder), book),
    }
}

/// The path of the folder `to` relative to the folder `from`, ending in
/// `/` (`../target/book/`, or `` for the same folder), when both are
/// absolute and share a folder below the root; `None` otherwise.
pub fn relative_path(from: &Path, to: &Path) -> Option<String> {
    use std::path::Component;
    let parts = |path: &Path| -> Option<Vec<String>> {
        let mut components = path.components();
        if components.next() != Some(Component::RootDir) {
            return None;
        }
        components
            .map(|component| match component {
                Component::Normal(name) => name.to_str().map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    let (from, to) = (parts(from)?, parts(to)?);
    let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if shared == 0 {
        return None;
    }
    let mut relative = String::new();
    for _ in shared..from.len() {
        relative.push_str("../");
    }
    for name in &to[shared..] {
        relative.push_str(name);
        relative.push('/');
    }
    Some(relative)
}

pub fn run(args: &BookArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(default_dir);
    let source = match &args.source_url {
        Some(url) if url.ends_with('/') => url.clone(),
        Some(url) => format!("{url}/"),
        None => grader::render::html::folder_url(&workspace_root()),
    };
    let index = write(&out, &source)?;
    println!("{}", index.display());
    Ok(())
}

/// One handout, read and rendered.
struct Chapter {
    slug: &'static str,
    title: String,
    /// (level, anchor, text) of each `##` and `###` heading.
    sections: Vec<(u8, String, String)>,
    body: String,
}

/// Writes the book into `out`; returns the path of its first page.
pub fn write(out: &Path, source: &str) -> Result<PathBuf> {
    let root = workspace_root();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut chapters = Vec::new();
    for lab in grader::LABS {
        let path = root.join(lab.handout());
        let markdown = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        chapters.push(chapter(lab.slug, &markdown, &root, source)?);
    }
    let toc = contents(&chapters);
    for (i, chapter) in chapters.iter().enumerate() {
        let mut body = String::new();
        let _ = write!(body, "<article>{}", chapter.body);
        body.push_str("<nav class=\"pager\">");
        if let Some(previous) = i.checked_sub(1).map(|i| &chapters[i]) {
            let _ = write!(
                body,
                "<a href=\"{}.html\">← {}</a>",
                previous.slug,
                escape(&previous.title)
            );
        }
        if let Some(next) = chapters.get(i + 1) {
            let _ = write!(
                body,
                "<a class=\"next\" href=\"{}.html\">{} →</a>",
                next.slug,
                escape(&next.title)
            );
        }
        body.push_str("</nav></article>");
        let page = page(&chapter.title, &toc, chapter.slug, &body);
        std::fs::write(out.join(format!("{}.html", chapter.slug)), page)?;
    }
    let mut index = String::from(
        "<article><h1 id=\"socket-labs\">Socket Labs: the handouts</h1>\
         <p>Six labs, each a pair of programs you write and a grader that runs them. \
         Every report links to a section of these pages.</p>",
    );
    for chapter in &chapters {
        let _ = write!(
            index,
            "<h2><a href=\"{}.html\">{}</a></h2><ul class=\"toc\">",
            chapter.slug,
            escape(&chapter.title)
        );
        for (level, anchor, text) in &chapter.sections {
            if *level == 2 {
                let _ = write!(
                    index,
                    "<li><a href=\"{}.html#{}\">{}</a></li>",
                    chapter.slug,
                    escape(anchor),
                    escape(text)
                );
            }
        }
        index.push_str("</ul>");
    }
    let _ = write!(
        index,
        "<h2><a href=\"{CLAIMS_PAGE}\">What the kernel does: the tests</a></h2></article>"
    );
    std::fs::write(
        out.join("index.html"),
        page("Socket Labs", &toc, "", &index),
    )?;
    let claims = std::fs::read_to_string(root.join(CLAIMS_SOURCE))
        .with_context(|| format!("reading {CLAIMS_SOURCE}"))?;
    std::fs::write(
        out.join(CLAIMS_PAGE),
        page(
            "What the kernel does: the tests",
            &toc,
            "kernel-claims",
            &claims_page(&claims, source),
        ),
    )?;
    Ok(out.join("index.html"))
}

/// The table of contents every page shows: the labs, and the sections of
/// the current one (marked with `CURRENT` for [`page`] to open).
fn contents(chapters: &[Chapter]) -> Vec<(String, String)> {
    chapters
        .iter()
        .map(|chapter| {
            let mut html = format!(
                "<li><a href=\"{}.html\">{}</a><ul>",
                chapter.slug,
                escape(&chapter.title)
            );
            for (level, anchor, text) in &chapter.sections {
                let _ = write!(
                    html,
                    "<li class=\"l{level}\"><a href=\"{}.html#{}\">{}</a></li>",
                    chapter.slug,
                    escape(anchor),
                    escape(text)
                );
            }
            html.push_str("</ul></li>");
            (chapter.slug.to_owned(), html)
        })
        .collect()
}

/// A whole page: the table of contents beside `body`.
fn page(title: &str, toc: &[(String, String)], current: &str, body: &str) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <title>{} — Socket Labs</title><style>{STYLE}</style></head><body>\
         <nav class=\"contents\" aria-label=\"Contents\"><p><a href=\"index.html\">Socket Labs</a></p><ol>",
        escape(grader::render::html::CONTENT_SECURITY_POLICY),
        escape(title)
    );
    for (slug, entry) in toc {
        if slug == current {
            html.push_str(&entry.replacen("<li>", "<li class=\"current\">", 1));
        } else {
            html.push_str(entry);
        }
    }
    let _ = writeln!(
        html,
        "<li><a href=\"{CLAIMS_PAGE}\">What the kernel does</a></li></ol></nav><main>{body}</main></body></html>"
    );
    html
}

/// Renders one handout: anchors on its headings, its links into the book,
/// its diagrams inline.
fn chapter(slug: &'static str, markdown: &str, root: &Path, source: &str) -> Result<Chapter> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events: Vec<Event> = Parser::new_ext(markdown, options).collect();
    let mut anchors = Anchors::default();
    let mut sections = Vec::new();
    let mut title = slug.to_owned();
    // Headings: the text between the start and the end gives the anchor.
    let mut i = 0;
    while i < events.len() {
        if let Event::Start(Tag::Heading { level, .. }) = &events[i] {
            let level = *level;
            let end = (i..events.len())
                .find(|&j| matches!(events[j], Event::End(TagEnd::Heading(_))))
                .context("a heading without an end")?;
            let text: String = events[i + 1..end]
                .iter()
                .filter_map(|event| match event {
                    Event::Text(text) | Event::Code(text) => Some(text.as_ref()),
                    _ => None,
                })
                .collect();
            let anchor = anchors.next(&text);
            match level {
                HeadingLevel::H1 => title = text.clone(),
                HeadingLevel::H2 => sections.push((2, anchor.clone(), text.clone())),
                HeadingLevel::H3 => sections.push((3, anchor.clone(), text.clone())),
                _ => {}
            }
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                *id = Some(CowStr::from(anchor));
            }
            i = end;
        }
        i += 1;
    }
    // Links and images.
    let handout_dir = format!("labs/{slug}/");
    let mut rendered: Vec<Event> = Vec::with_capacity(events.len());
    let mut iter = events.into_iter().peekable();
    while let Some(event) = iter.next() {
        match event {
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let next_code = match iter.peek() {
                    Some(Event::Code(code)) => Some(code.to_string()),
                    _ => None,
                };
                let dest = link(&dest_url, &handout_dir, source, next_code.as_deref());
                rendered.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url: CowStr::from(dest),
                    title,
                    id,
                }));
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                let mut alt = String::new();
                for inner in iter.by_ref() {
                    match inner {
                        Event::End(TagEnd::Image) => break,
                        Event::Text(text) | Event::Code(text) => alt.push_str(&text),
                        _ => {}
                    }
                }
                let path = root.join(&handout_dir).join(dest_url.as_ref());
                rendered.push(Event::Html(CowStr::from(diagram(&path, &alt)?)));
            }
            other => rendered.push(other),
        }
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, rendered.into_iter());
    // Every heading links to itself, for copying its address.
    Ok(Chapter {
        slug,
        title,
        sections,
        body,
    })
}

/// Where a handout's link goes in the book.
fn link(dest: &str, handout_dir: &str, source: &str, code: Option<&str>) -> String {
    if dest.starts_with('#') || dest.contains("://") || dest.starts_with("mailto:") {
        return dest.to_owned();
    }
    let (file, anchor) = dest.split_once('#').unwrap_or((dest, ""));
    let path = normalize(&format!("{handout_dir}{file}"));
    if path == CLAIMS_SOURCE {
        return match code {
            Some(test) => format!("{CLAIMS_PAGE}#{test}"),
            None => CLAIMS_PAGE.to_owned(),
        };
    }
    let in_book = grader::handout::in_book(&path);
    if in_book != path {
        return if anchor.is_empty() {
            in_book
        } else {
            format!("{in_book}#{anchor}")
        };
    }
    if anchor.is_empty() {
        format!("{source}{path}")
    } else {
        format!("{source}{path}#{anchor}")
    }
}

/// `labs/echo/../../grader/x.rs` as `grader/x.rs`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// An SVG file of the course as markup to put inline, with its alt text as
/// its label and caption.
fn diagram(path: &Path, alt: &str) -> Result<String> {
    let svg =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let start = svg
        .find("<svg")
        .with_context(|| format!("{} is not an SVG file", path.display()))?;
    // Inline SVG needs no namespace declaration: the page names nothing
    // on the network, not even a namespace.
    let svg = svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    let svg = svg.replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{}\"", escape(alt)),
        1,
    );
    Ok(format!(
        "<span class=\"diagram\">{}<span class=\"caption\">{}</span></span>",
        svg.trim_end(),
        escape(alt)
    ))
}

/// The kernel-claims tests as a page: their source, each test's place
/// marked with its name as the anchor, so that the handouts' links land on
/// the test they cite.
fn claims_page(source_text: &str, source: &str) -> String {
    let lines: Vec<&str> = source_text.lines().collect();
    let mut marks: Vec<(usize, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("fn ")
            && i > 0
            && lines[i - 1].trim() == "#[test]"
        {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The anchor goes above the test's documentation.
            let mut first = i - 1;
            while first > 0 && lines[first - 1].starts_with("///") {
                first -= 1;
            }
            marks.push((first, name));
        }
    }
    let mut html = format!(
        "<article><h1 id=\"what-the-kernel-does\">What the kernel does: the tests</h1>\
         <p>Each claim the handouts make about the kernel is a test in \
         <a href=\"{}{CLAIMS_SOURCE}\"><code>{CLAIMS_SOURCE}</code></a>, run by \
         <code>cargo test -p grader --test kernel_claims</code>: if a kernel behaves \
         otherwise, the test fails. The handouts link each test by name.</p><ul class=\"toc\">",
        escape(source)
    );
    for (_, name) in &marks {
        let _ = write!(
            html,
            "<li><a href=\"#{0}\"><code>{0}</code></a></li>",
            escape(name)
        );
    }
    html.push_str("</ul><pre class=\"source\"><code>");
    for (i, line) in lines.iter().enumerate() {
        if let Some((_, name)) = marks.iter().find(|(first, _)| *first == i) {
            let _ = write!(html, "<span class=\"mark\" id=\"{}\"></span>", escape(name));
        }
        html.push_str(&escape(line));
        html.push('\n');
    }
    html.push_str("</code></pre></article>");
    html
}

const STYLE: &str = "\
:root{--ink:#1f2328;--mute:#59636e;--line:#d0d7de;--code:#f3f5f7;--accent:#0969da}\
*{box-sizing:border-box}\
body{font:16px/1.55 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);margin:0;display:grid;grid-template-columns:17em minmax(0,1fr)}\
nav.contents{position:sticky;top:0;height:100vh;overflow:auto;border-right:1px solid var(--line);padding:1em;font-size:.88em;background:#fafbfc}\
nav.contents ol,nav.contents ul{list-style:none;margin:0;padding:0}\
nav.contents ul{display:none;margin:.2em 0 .6em .8em}\
nav.contents li.current>ul{display:block}\
nav.contents li.current>a{font-weight:600}\
nav.contents li.l3{margin-left:.9em}\
nav.contents a{text-decoration:none;color:var(--ink);display:block;padding:.1em 0}\
nav.contents a:hover{color:var(--accent)}\
main{min-width:0;padding:1em 2.5em 4em}\
article{max-width:48em}\
h1{font-size:1.8em;line-height:1.25}h2{font-size:1.35em;margin-top:2em;border-bottom:1px solid var(--line);padding-bottom:.2em}h3{font-size:1.1em;margin-top:1.6em}\
h1,h2,h3,h4{scroll-margin-top:.5em}\
:target{background:#fff3b0;border-radius:4px}\
a{color:var(--accent)}\
code{font:.88em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);border-radius:4px;padding:.1em .3em}\
pre{background:var(--code);border-radius:6px;padding:.8em 1em;overflow-x:auto;line-height:1.35}\
pre code{background:none;padding:0;font-size:.85em}\
table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto}\
th,td{border:1px solid var(--line);padding:.3em .6em;vertical-align:top;text-align:left}\
th{background:#f6f8fa}\
blockquote{margin:1em 0;padding:.5em 1em;border-left:4px solid var(--accent);background:#f6f8fa}\
blockquote>:first-child{margin-top:0}blockquote>:last-child{margin-bottom:0}\
.diagram{display:block;margin:1.2em 0}\
.diagram svg{max-width:100%;height:auto;display:block}\
.caption{display:block;color:var(--mute);font-size:.9em;margin-top:.3em}\
.pager{display:flex;justify-content:space-between;margin-top:3em;border-top:1px solid var(--line);padding-top:1em}\
.source .mark{display:block;scroll-margin-top:.5em}\
.source .mark:target{height:0}\
ul.toc{columns:2}\
@media (max-width:800px){body{display:block}nav.contents{position:static;height:auto;border-right:0;border-bottom:1px solid var(--line)}main{padding:1em}ul.toc{columns:1}}\
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_link_relative_to_their_folder_below_a_shared_one() {
        let rel = |from: &str, to: &str| relative_path(Path::new(from), Path::new(to));
        assert_eq!(
            rel("/c/course/classes/week1", "/c/course/target/book").as_deref(),
            Some("../../target/book/")
        );
        assert_eq!(rel("/c/course", "/c/course").as_deref(), Some(""));
        assert_eq!(
            rel("/c", "/c/course/target/book").as_deref(),
            Some("course/target/book/")
        );
        // Only the root in common: a relative link would spell out the
        // whole path anyway, and it travels no better.
        assert_eq!(rel("/tmp/class", "/c/course"), None);
        assert_eq!(rel("class", "/c/course"), None);
    }

    #[test]
    fn links_go_into_the_book() {
        let source = "file:///course/";
        let dir = "labs/app/";
        assert_eq!(link("#a", dir, source, None), "#a");
        assert_eq!(
            link("../multiconn/README.md#x-y", dir, source, None),
            "multiconn.html#x-y"
        );
        assert_eq!(
            link(
                "../../grader/tests/kernel_claims.rs",
                dir,
                source,
                Some("connect_completes_before_accept")
            ),
            "kernel-claims.html#connect_completes_before_accept"
        );
        assert_eq!(
            link("src/bin/app-server.rs", dir, source, None),
            "file:///course/labs/app/src/bin/app-server.rs"
        );
        assert_eq!(
            link("https://docs.rs/mio", dir, source, None),
            "https://docs.rs/mio"
        );
    }
}
