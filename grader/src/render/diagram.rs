//! A check's conversation drawn as an SVG sequence diagram, for the HTML
//! page ([`super::html`]): a lifeline per party, time running down.

use std::fmt::Write as _;

use super::timeline::{self, Row, Timeline};
use crate::harness::conversation::{Event, Kind, Party};
use crate::untrusted::markup as escape;

/// Geometry of the diagram, in pixels.
const ROW: usize = 22;
const TOP: usize = 44;
const FIRST_LIFELINE: usize = 120;
/// Where the times end (they are right-aligned).
const TIME_END: usize = 62;
const LANE: usize = 150;
/// The widest a diagram gets (the page's width less its padding): the
/// "what happened" column takes what the lifelines leave of it, and the
/// diagram shrinks to fit a narrower window rather than scroll.
const DIAGRAM_WIDTH: usize = 1050;
/// The width of a character of the diagram's 12 px monospace font.
const CHAR_WIDTH: usize = 7;

/// A check's conversation as an SVG sequence diagram: a lifeline per
/// party, a row per event (times at the left, words at the right), arrows
/// between lifelines for connections, bytes, FIN and RST, marks on one
/// lifeline for a program's start, output and exit and the grader's notes.
pub fn sequence_diagram(timeline: &Timeline, id: &str) -> String {
    let parties = timeline.parties();
    let x_of = |party: Party| {
        let index = parties.iter().position(|p| *p == party).unwrap_or(0);
        FIRST_LIFELINE + index * LANE
    };
    let text_x = FIRST_LIFELINE + parties.len().saturating_sub(1) * LANE + 56;
    // As wide as its longest row, up to the page's width: then rows are cut.
    let longest = timeline
        .rows
        .iter()
        .map(|row| match row {
            Row::Gap(left_out) => timeline::gap(*left_out).chars().count(),
            _ => format!("{}  {}", timeline.who_of(row), timeline::what_of(row))
                .chars()
                .count(),
        })
        .max()
        .unwrap_or(0)
        .max("what happened".len());
    let text_chars = longest.min((DIAGRAM_WIDTH - text_x - 10) / CHAR_WIDTH);
    let width = text_x + text_chars * CHAR_WIDTH + 10;
    let height = TOP + timeline.rows.len() * ROW + 10;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"seq\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"sequence diagram of {}\">",
        escape(id)
    );
    let _ = write!(
        svg,
        "<text x=\"{TIME_END}\" y=\"20\" class=\"h\" text-anchor=\"end\">time (s)</text>"
    );
    for party in &parties {
        let x = x_of(*party);
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"6\" width=\"80\" height=\"22\" rx=\"4\" class=\"p\"/><text x=\"{x}\" y=\"21\" text-anchor=\"middle\" class=\"h\">{}</text><line x1=\"{x}\" y1=\"28\" x2=\"{x}\" y2=\"{}\" class=\"life\"/>",
            x - 40,
            party.name(),
            height - 4
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{text_x}\" y=\"20\" class=\"h\">what happened</text>"
    );
    for (index, row) in timeline.rows.iter().enumerate() {
        let y = TOP + index * ROW + ROW / 2;
        match row {
            Row::Gap(left_out) => {
                for party in &parties {
                    let x = x_of(*party);
                    let _ = write!(
                        svg,
                        "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" class=\"gap\"/>",
                        x - 6,
                        y - 6
                    );
                }
                let _ = write!(
                    svg,
                    "<text x=\"{text_x}\" y=\"{}\" class=\"g\">{}</text>",
                    y + 4,
                    escape(&timeline::gap(*left_out))
                );
            }
            Row::Event(event) | Row::Quoted(event, _) | Row::Repeated(event, _, _) => {
                let what = timeline::what_of(row);
                let who = timeline.who_of(row);
                let words = format!("{who}  {what}");
                let shown = clip(&words, text_chars);
                // The whole text on hover, only where it is cut: a row's
                // markup is most of a page.
                let title = if shown == words {
                    String::new()
                } else {
                    format!("<title>{}</title>", escape(&words))
                };
                let _ = write!(
                    svg,
                    "<g class=\"{}\">{title}<text x=\"{TIME_END}\" y=\"{}\" text-anchor=\"end\" class=\"t\">{}</text>",
                    kind_class(event.kind),
                    y + 4,
                    timeline::seconds(event.at)
                );
                let times = match row {
                    Row::Repeated(_, _, count) => Some(*count),
                    _ => None,
                };
                draw_event(&mut svg, event, times, y, &x_of);
                let _ = write!(
                    svg,
                    "<text x=\"{text_x}\" y=\"{}\" class=\"w\">{}</text></g>",
                    y + 4,
                    escape(&shown)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The arrow or mark of one event (done `times` times, on as many
/// connections) at height `y`.
fn draw_event(
    svg: &mut String,
    event: &Event,
    times: Option<usize>,
    y: usize,
    x_of: &impl Fn(Party) -> usize,
) {
    match (event.from, event.to) {
        (Some(from), Some(to)) if from != to => {
            let (x1, x2) = (x_of(from), x_of(to));
            let label = match event.kind {
                Kind::Data | Kind::Datagram => {
                    timeline::byte_count(event.bytes.unwrap_or_default())
                }
                Kind::Connect | Kind::Accept => "connect".to_owned(),
                Kind::Fin => "FIN".to_owned(),
                Kind::Reset => "RST".to_owned(),
                Kind::Refused => "refused".to_owned(),
                _ => String::new(),
            };
            let label = match times {
                Some(times) => format!("{label} ×{times}"),
                None => label,
            };
            let ends_in_cross = matches!(event.kind, Kind::Reset | Kind::Refused);
            // Short of the lifeline, so that the head (or cross) shows.
            let x2_end = if x2 > x1 { x2 - 3 } else { x2 + 3 };
            let _ = write!(
                svg,
                "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2_end}\" y2=\"{y}\" class=\"a\"{}/>",
                if ends_in_cross {
                    ""
                } else {
                    " marker-end=\"url(#head)\""
                }
            );
            if ends_in_cross {
                let _ = write!(
                    svg,
                    "<path d=\"M{} {}l10 10m0 -10l-10 10\" class=\"x\"/>",
                    x2 - 5,
                    y - 5
                );
            }
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"l\">{}</text>",
                (x1 + x2) / 2,
                y - 4,
                escape(&label)
            );
        }
        (Some(party), _) | (None, Some(party)) => {
            let x = x_of(party);
            let mark = match event.kind {
                Kind::Start => {
                    format!("<path d=\"M{} {}l10 6l-10 6z\" class=\"m\"/>", x - 4, y - 6)
                }
                Kind::Exit => format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" class=\"m\"/>",
                    x - 5,
                    y - 5
                ),
                Kind::Note => format!("<path d=\"M{x} {}l6 6l-6 6l-6 -6z\" class=\"m\"/>", y - 6),
                _ => format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"3.5\" class=\"m\"/>"),
            };
            svg.push_str(&mark);
        }
        (None, None) => {}
    }
}

fn kind_class(kind: Kind) -> &'static str {
    match kind {
        Kind::Connect | Kind::Accept => "conn",
        Kind::Data | Kind::Datagram => "data",
        Kind::Fin => "fin",
        Kind::Reset | Kind::Refused => "rst",
        Kind::Start | Kind::Exit => "proc",
        Kind::Stdout => "out",
        Kind::Stderr => "err",
        Kind::Note => "note",
    }
}

/// `text` cut to `max` characters, with `…`.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max - 1).collect();
    kept.push('…');
    kept
}
