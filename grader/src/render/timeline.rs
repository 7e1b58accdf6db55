//! A check's conversation as every writer shows it: which events, and each
//! in words. The terminal draws it as aligned lines, the HTML page as a
//! sequence diagram; both show the same rows, worded alike.
//!
//! A long conversation is cut to its relevant part: how it began (the first
//! connection, or the first event) and the events that led to the failure
//! (its end), with one row saying how many were left out between.

use std::time::Duration;

use crate::harness::conversation::{Event, Kind, Party, Transcript};

/// Events a failed check shows from the end of its conversation.
pub const RELEVANT_TAIL: usize = 12;
/// Events before the first connection that are shown with it (the program
/// starting, its `Listening on` line).
const LEAD_IN: usize = 3;

/// One row of a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row<'a> {
    /// An event.
    Event(&'a Event),
    /// Events left out here: by the recording (bounded per check) or by
    /// the cut to the relevant part.
    Gap(u64),
    /// Lines a program printed (this one first) that the failure already
    /// quotes, and how many.
    Quoted(&'a Event, usize),
    /// Alike events in a row, differing only in their connection: the
    /// first, the last, and how many.
    Repeated(&'a Event, &'a Event, usize),
}

/// The rows of one check's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline<'a> {
    /// The rows, in time order.
    pub rows: Vec<Row<'a>>,
    /// Whether the conversation had more than one TCP connection (rows then
    /// name theirs: `#2`).
    pub many_connections: bool,
}

/// Alike events in a row (the same thing done on many connections, the
/// same note made again), shown as one row.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    first: &'a Event,
    last: &'a Event,
    count: usize,
    /// Events the recording left out just before.
    left_out_before: u64,
}

impl<'a> Run<'a> {
    fn row(&self) -> Row<'a> {
        if self.count == 1 {
            Row::Event(self.first)
        } else {
            Row::Repeated(self.first, self.last, self.count)
        }
    }
}

/// Whether `b` does what `a` did, but for the connection.
fn alike(a: &Event, b: &Event) -> bool {
    (a.kind, a.from, a.to, a.bytes, &a.text) == (b.kind, b.from, b.to, b.bytes, &b.text)
}

/// The events of `transcript` in time order, alike ones in a row as one
/// run, and how many the recording left out at the end.
fn runs(transcript: &Transcript) -> (Vec<Run<'_>>, u64) {
    // In time order: an event is recorded when its call returns, which can
    // be after events that came later (a long write, and the reset that
    // ended it). The recording's gap stays where it was.
    let segment = |index: usize| transcript.elided_at.is_some_and(|at| index >= at);
    let mut order: Vec<(usize, &Event)> = transcript.events.iter().enumerate().collect();
    order.sort_by_key(|(index, event)| (segment(*index), event.at));
    let mut runs: Vec<Run> = Vec::new();
    for (index, (_, event)) in order.into_iter().enumerate() {
        let left_out_before = if transcript.elided_at == Some(index) {
            transcript.elided
        } else {
            0
        };
        match runs.last_mut() {
            Some(run) if left_out_before == 0 && alike(run.last, event) => {
                run.last = event;
                run.count += 1;
            }
            _ => runs.push(Run {
                first: event,
                last: event,
                count: 1,
                left_out_before,
            }),
        }
    }
    let left_out_after = if transcript.elided_at == Some(transcript.events.len()) {
        transcript.elided
    } else {
        0
    };
    (runs, left_out_after)
}

impl<'a> Timeline<'a> {
    /// Every recorded event, with a gap where the recording left some out.
    pub fn whole(transcript: &'a Transcript) -> Self {
        Self::keeping(transcript, |_, _| true)
    }

    /// How it began (up to the first connection, when that comes early;
    /// else the first connection, or the first event) and the last `tail`
    /// rows; what lies between is one gap.
    pub fn relevant(transcript: &'a Transcript, tail: usize) -> Self {
        Self::keeping(transcript, |index, runs| {
            let first = runs
                .iter()
                .position(|run| matches!(run.first.kind, Kind::Connect | Kind::Datagram))
                .unwrap_or(0);
            let lead_in = if first <= LEAD_IN { 0 } else { first };
            let tail_from = runs.len().saturating_sub(tail);
            // A gap of one row would hide no more than it takes: show it.
            let tail_from = if tail_from == first + 2 {
                first + 1
            } else {
                tail_from
            };
            (lead_in..=first).contains(&index) || index >= tail_from
        })
    }

    fn keeping(transcript: &'a Transcript, keep: impl Fn(usize, &[Run]) -> bool) -> Self {
        let (runs, left_out_after) = runs(transcript);
        let mut rows = Vec::new();
        let mut left_out = 0;
        for (index, run) in runs.iter().enumerate() {
            left_out += run.left_out_before;
            if keep(index, &runs) {
                if left_out > 0 {
                    rows.push(Row::Gap(left_out));
                    left_out = 0;
                }
                rows.push(run.row());
            } else {
                left_out += run.count as u64;
            }
        }
        left_out += left_out_after;
        if left_out > 0 {
            rows.push(Row::Gap(left_out));
        }
        let mut connections = transcript.events.iter().filter_map(|event| event.conn);
        let many_connections = connections
            .next()
            .is_some_and(|first| connections.any(|conn| conn != first));
        Self {
            rows,
            many_connections,
        }
    }

    /// The same rows, with each run of a program's output lines that
    /// `shown` (the failure's text) already quotes folded into one row.
    #[must_use]
    pub fn folding_lines_quoted_in(self, shown: &str) -> Self {
        let quoted = |event: &Event| {
            matches!(event.kind, Kind::Stdout | Kind::Stderr) && shown.contains(event.text.trim())
        };
        let mut rows: Vec<Row<'a>> = Vec::with_capacity(self.rows.len());
        for row in self.rows {
            match (rows.last_mut(), row) {
                (Some(Row::Quoted(first, lines)), Row::Event(event))
                    if quoted(event) && event.kind == first.kind && event.from == first.from =>
                {
                    *lines += 1;
                }
                (_, Row::Event(event)) if quoted(event) => rows.push(Row::Quoted(event, 1)),
                (_, row) => rows.push(row),
            }
        }
        Self { rows, ..self }
    }

    /// The parties that take part, in the order their lifelines are drawn:
    /// the grader, then the server, then the client.
    pub fn parties(&self) -> Vec<Party> {
        [Party::Grader, Party::Server, Party::Client]
            .into_iter()
            .filter(|party| {
                self.events()
                    .any(|event| event.from == Some(*party) || event.to == Some(*party))
            })
            .collect()
    }

    /// The events shown.
    pub fn events(&self) -> impl Iterator<Item = &'a Event> + '_ {
        self.rows.iter().filter_map(|row| match row {
            Row::Event(event) | Row::Quoted(event, _) | Row::Repeated(event, _, _) => Some(*event),
            Row::Gap(_) => None,
        })
    }

    /// Who did what a row shows: [`Timeline::who`] of its event, and for
    /// alike events on many connections their range (`#191–#200`).
    pub fn who_of(&self, row: &Row) -> String {
        match row {
            Row::Repeated(first, last, _) => match (first.conn, last.conn) {
                (Some(from), Some(to)) if self.many_connections && from != to => {
                    format!("{}–{to}", self.who(first))
                }
                _ => self.who(first),
            },
            Row::Event(event) | Row::Quoted(event, _) => self.who(event),
            Row::Gap(_) => String::new(),
        }
    }

    /// Who: `grader → server`, `server`, with the connection when there are
    /// several (`grader → server #2`).
    pub fn who(&self, event: &Event) -> String {
        let mut who = match (event.from, event.to) {
            (Some(from), Some(to)) => format!("{} → {}", from.name(), to.name()),
            (Some(party), None) | (None, Some(party)) => party.name().to_owned(),
            (None, None) => String::new(),
        };
        if let (true, Some(conn)) = (self.many_connections, event.conn) {
            who.push_str(&format!(" #{conn}"));
        }
        who
    }
}

/// `0.013`: seconds since the check started, three decimals.
pub fn seconds(at: Duration) -> String {
    format!("{:.3}", at.as_secs_f64())
}

/// `3 B`, `12.5 KiB`, `2.5 MiB`.
pub fn byte_count(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    match bytes {
        0..10_240 => format!("{bytes} B"),
        10_240..1_048_576 => format!("{:.1} KiB", bytes as f64 / KIB),
        _ => format!("{:.1} MiB", bytes as f64 / KIB / KIB),
    }
}

/// What happened, in words: `3 B  "Hel"`, `FIN (closed its sending side)`,
/// `exited: exit code 1`.
pub fn what(event: &Event) -> String {
    let text = event.text.as_str();
    let with = |label: &str| {
        if text.is_empty() {
            label.to_owned()
        } else {
            format!("{label}: {text}")
        }
    };
    match event.kind {
        Kind::Connect => "connected".to_owned(),
        Kind::Accept => "connected (accepted)".to_owned(),
        Kind::Data => format!(
            "{}  \"{text}\"",
            byte_count(event.bytes.unwrap_or_default())
        ),
        Kind::Fin => with("FIN (closed its sending side)"),
        Kind::Reset => with("RST (connection reset)"),
        Kind::Refused => with("connection failed"),
        Kind::Datagram => format!(
            "datagram {}  {text}",
            byte_count(event.bytes.unwrap_or_default())
        ),
        Kind::Start => with("started"),
        Kind::Stdout | Kind::Stderr if text.is_empty() => {
            format!("{}: (an empty line)", stream(event.kind))
        }
        Kind::Stdout => with("stdout"),
        Kind::Stderr => with("stderr"),
        Kind::Exit => with("exited"),
        Kind::Note => text.to_owned(),
    }
}

/// What a row shows happened: [`what`] of its event, `stderr: 3 lines
/// (quoted above)`, or `FIN (closed its sending side)  ×10`.
pub fn what_of(row: &Row) -> String {
    match row {
        Row::Event(event) => what(event),
        Row::Quoted(event, lines) => quoted(event, *lines),
        Row::Repeated(event, _, count) => format!("{}  ×{count}", what(event)),
        Row::Gap(left_out) => gap(*left_out),
    }
}

/// `stderr: 3 lines (quoted above)`.
pub fn quoted(event: &Event, lines: usize) -> String {
    let stream = stream(event.kind);
    let lines = if lines == 1 {
        "1 line".to_owned()
    } else {
        format!("{lines} lines")
    };
    format!("{stream}: {lines} (quoted above)")
}

fn stream(kind: Kind) -> &'static str {
    if kind == Kind::Stdout {
        "stdout"
    } else {
        "stderr"
    }
}

/// `… 40 events left out …`.
pub fn gap(left_out: u64) -> String {
    let events = if left_out == 1 { "event" } else { "events" };
    format!("… {left_out} {events} left out …")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(index: usize) -> Event {
        Event {
            at: Duration::from_millis(index as u64),
            until: None,
            kind: Kind::Note,
            from: Some(Party::Grader),
            to: None,
            conn: None,
            bytes: None,
            text: format!("step {index}"),
        }
    }

    fn transcript(count: usize) -> Transcript {
        Transcript {
            events: (0..count).map(note).collect(),
            ..Transcript::default()
        }
    }

    fn shown(timeline: &Timeline) -> Vec<String> {
        timeline
            .rows
            .iter()
            .map(|row| match row {
                Row::Event(event) => event.text.clone(),
                Row::Gap(left_out) => format!("gap {left_out}"),
                Row::Quoted(event, lines) => format!("{} quoted {lines}", event.text),
                Row::Repeated(event, _, count) => format!("{} ×{count}", event.text),
            })
            .collect()
    }

    #[test]
    fn a_short_conversation_is_shown_whole() {
        let transcript = transcript(5);
        let timeline = Timeline::relevant(&transcript, RELEVANT_TAIL);
        assert_eq!(timeline, Timeline::whole(&transcript));
        assert_eq!(timeline.rows.len(), 5);
    }

    #[test]
    fn a_long_conversation_keeps_its_start_and_its_end() {
        let transcript = transcript(40);
        let rows = shown(&Timeline::relevant(&transcript, 3));
        assert_eq!(rows, ["step 0", "gap 36", "step 37", "step 38", "step 39"]);
    }

    #[test]
    fn output_the_failure_quotes_folds_into_one_row() {
        let mut transcript = transcript(4);
        for (index, text) in [(1, "panicked at x"), (2, "")] {
            transcript.events[index].kind = Kind::Stderr;
            transcript.events[index].text = text.into();
        }
        let timeline =
            Timeline::whole(&transcript).folding_lines_quoted_in("stderr: panicked at x");
        assert_eq!(
            shown(&timeline),
            ["step 0", "panicked at x quoted 2", "step 3"]
        );
    }

    #[test]
    fn alike_events_in_a_row_are_one_row_and_count_as_many_when_cut() {
        let mut transcript = transcript(12);
        for event in &mut transcript.events[2..10] {
            event.text = "closed".into();
        }
        assert_eq!(
            shown(&Timeline::whole(&transcript)),
            ["step 0", "step 1", "closed ×8", "step 10", "step 11"]
        );
        assert_eq!(
            shown(&Timeline::relevant(&transcript, 2)),
            ["step 0", "gap 9", "step 10", "step 11"]
        );
    }

    #[test]
    fn rows_run_in_time_order() {
        let mut transcript = transcript(3);
        transcript.events[0].at = Duration::from_millis(5);
        let rows = shown(&Timeline::whole(&transcript));
        assert_eq!(rows, ["step 1", "step 2", "step 0"]);
    }

    #[test]
    fn what_the_recording_left_out_is_counted_in_the_gap() {
        let mut transcript = transcript(10);
        transcript.elided = 1000;
        transcript.elided_at = Some(5);
        assert_eq!(
            shown(&Timeline::whole(&transcript))[4..7],
            ["step 4", "gap 1000", "step 5"]
        );
        assert_eq!(
            shown(&Timeline::relevant(&transcript, 2)),
            ["step 0", "gap 1007", "step 8", "step 9"]
        );
    }
}
