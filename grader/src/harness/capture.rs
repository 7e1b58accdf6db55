//! Draining a child's output into a capped buffer.
//!
//! A graded program may print nothing, print forever, or keep its pipe open
//! after it exits. A reader thread per stream drains the pipe continuously, so
//! the program never blocks on a full pipe, keeps the first `cap` bytes, and
//! only counts the rest, so the grader's memory stays bounded.

use std::io::{BufRead, ErrorKind, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

use super::conversation::{Conversation, Kind, Party};
use crate::sync::Unpoison;

/// How many of the last bytes past the cap a capture keeps.
pub const TAIL: usize = 64 * 1024;

/// The captured output of one stream.
#[derive(Debug)]
pub struct Capture {
    state: Mutex<State>,
    changed: Condvar,
    cap: usize,
}

#[derive(Debug, Default)]
struct State {
    kept: Vec<u8>,
    /// The last [`TAIL`] bytes past the cap: what a program said last,
    /// after a flood (evidence such as an error line at the end of a log).
    tail: std::collections::VecDeque<u8>,
    total: u64,
    closed: bool,
    /// When the stream closed: for a program's stdout, (almost always) the
    /// moment it exited.
    closed_at: Option<Instant>,
}

impl Capture {
    /// An empty capture that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            changed: Condvar::new(),
            cap,
        })
    }

    /// Starts a thread that drains `source` into this capture until end of
    /// stream. The thread is not joined: it ends when every holder of the
    /// pipe's write end is gone.
    pub fn drain_in_background(self: &Arc<Self>, source: impl Read + Send + 'static) {
        self.drain_recording(source, None);
    }

    /// [`Capture::drain_in_background`], also recording each line in the
    /// check's conversation as `lines` says.
    pub fn drain_recording(
        self: &Arc<Self>,
        source: impl Read + Send + 'static,
        lines: Option<LineRecorder>,
    ) {
        let capture = Arc::clone(self);
        thread::Builder::new()
            .name("grader-capture".into())
            .spawn(move || capture.drain(source, lines))
            .expect("spawning a capture thread");
    }

    fn drain(&self, mut source: impl Read, mut lines: Option<LineRecorder>) {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    // The lines are recorded before the bytes are pushed:
                    // a push wakes whoever waits for them (the `Listening
                    // on` line lets the grader connect), and the timeline
                    // must show the line before what it caused.
                    if let Some(lines) = &mut lines {
                        lines.feed(&buffer[..n]);
                    }
                    self.push(&buffer[..n]);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(lines) = &mut lines {
            lines.finish();
        }
        {
            let mut state = self.lock();
            state.closed = true;
            state.closed_at = Some(Instant::now());
        }
        self.changed.notify_all();
    }

    /// Appends bytes as if the program had printed them.
    pub fn push(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let room = self.cap.saturating_sub(state.kept.len());
        let kept = room.min(bytes.len());
        state.kept.extend_from_slice(&bytes[..kept]);
        let rest = &bytes[kept..];
        let rest = &rest[rest.len().saturating_sub(TAIL)..];
        state.tail.extend(rest);
        let over = state.tail.len().saturating_sub(TAIL);
        state.tail.drain(..over);
        state.total += bytes.len() as u64;
        drop(state);
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned capture still holds valid bytes: a panic elsewhere must
        // not hide the program's output from the report.
        self.state.lock().unpoison()
    }

    /// The bytes kept so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().kept.clone()
    }

    /// The bytes kept so far, as text (a byte that is not UTF-8 as `\xNN`).
    pub fn text(&self) -> String {
        crate::untrusted::decode(&self.lock().kept)
    }

    /// The complete lines of the last bytes past the cap (up to [`TAIL`]),
    /// decoded as [`Capture::text`] does; empty when nothing was cut.
    pub fn tail_lines(&self) -> Vec<String> {
        let state = self.lock();
        let tail: Vec<u8> = state.tail.iter().copied().collect();
        drop(state);
        // The first line may have lost its beginning: it is left out.
        match tail.iter().position(|&byte| byte == b'\n') {
            Some(first) => complete_lines(&tail[first + 1..]),
            None => Vec::new(),
        }
    }

    /// How many bytes the program wrote in all, kept or not.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// Whether the program wrote more than was kept.
    pub fn truncated(&self) -> bool {
        let state = self.lock();
        state.total > state.kept.len() as u64
    }

    /// Whether the stream has reached its end.
    pub fn closed(&self) -> bool {
        self.lock().closed
    }

    /// When the stream closed, if it did.
    pub fn closed_at(&self) -> Option<Instant> {
        self.lock().closed_at
    }

    /// Waits until `probe` finds what it looks for in the kept bytes, the
    /// stream closes, or `deadline` passes. `probe` sees the bytes and whether
    /// the stream is closed; `None` from it means "keep waiting".
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        mut probe: impl FnMut(&[u8], bool) -> Option<T>,
    ) -> Option<T> {
        let mut watch = super::observe::stall::Watch::new();
        let mut state = self.lock();
        let mut seen = state.total;
        loop {
            if let Some(found) = probe(&state.kept, state.closed) {
                return Some(found);
            }
            if state.closed {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if state.total != seen {
                seen = state.total;
                watch.progress();
            }
            // The programs are looked at without holding the lock, so that
            // the reader thread can go on draining meanwhile.
            drop(state);
            if watch.stalled().is_some() {
                return None;
            }
            state = self.lock();
            let slice = (deadline - now).min(super::observe::stall::SLICE);
            state = self.changed.wait_timeout(state, slice).unpoison().0;
        }
    }

    /// Waits until the stream is closed or `deadline` passes; returns whether
    /// it closed.
    pub fn wait_closed(&self, deadline: Instant) -> bool {
        self.wait_for(deadline, |_, closed| closed.then_some(()))
            .is_some()
    }
}

/// Records a program's output in its check's conversation, a line at a
/// time as it arrives, up to [`LineRecorder::MAX_LINES`] lines.
#[derive(Debug)]
pub struct LineRecorder {
    conversation: Arc<Conversation>,
    party: Party,
    kind: Kind,
    partial: Vec<u8>,
    recorded: usize,
}

impl LineRecorder {
    /// The most lines recorded of one stream: a program that floods its
    /// output is shown by its first lines and a note.
    pub const MAX_LINES: usize = 200;
    /// The longest partial line kept while waiting for its newline.
    const MAX_PARTIAL: usize = 1024;

    /// Records the lines of `party`'s stdout (`Kind::Stdout`) or stderr.
    pub fn new(conversation: Arc<Conversation>, party: Party, kind: Kind) -> Self {
        Self {
            conversation,
            party,
            kind,
            partial: Vec::new(),
            recorded: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.recorded > Self::MAX_LINES {
            return;
        }
        let now = Instant::now();
        let mut rest = bytes;
        while !rest.is_empty() {
            // Through the next newline, or to the end: `read_until` finds
            // it with the C library's memchr, where a search byte by byte
            // costs the unoptimised grader a program's every line.
            // Reading a slice cannot fail.
            let _ = rest.read_until(b'\n', &mut self.partial);
            let complete = self.partial.ends_with(b"\n");
            self.partial.truncate(Self::MAX_PARTIAL);
            if complete {
                self.line(now);
            }
        }
    }

    fn line(&mut self, at: Instant) {
        let text = crate::untrusted::decode(&self.partial);
        let text = text.trim_end_matches(['\n', '\r']);
        self.recorded += 1;
        if self.recorded <= Self::MAX_LINES {
            self.conversation.program(self.kind, self.party, text, at);
        } else if self.recorded == Self::MAX_LINES + 1 {
            let stream = if self.kind == Kind::Stderr {
                "stderr"
            } else {
                "stdout"
            };
            self.conversation.note(format!(
                "the {} printed more than {} lines on {stream}: the rest are not shown here",
                self.party.name(),
                Self::MAX_LINES
            ));
        }
        self.partial.clear();
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() && self.recorded <= Self::MAX_LINES {
            self.line(Instant::now());
        }
    }
}

/// The complete lines in `bytes` (without their `\n` or `\r\n`), decoded
/// with each byte that is not UTF-8 as `\xNN`; a last line still waiting
/// for its newline is left out.
pub fn complete_lines(bytes: &[u8]) -> Vec<String> {
    let Some(last_newline) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    bytes[..last_newline]
        .split(|&b| b == b'\n')
        .map(|line| crate::untrusted::decode(line.strip_suffix(b"\r").unwrap_or(line)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_counts_the_rest() {
        let capture = Capture::new(4);
        capture.push(b"abc");
        capture.push(b"defgh");
        assert_eq!(capture.bytes(), b"abcd");
        assert_eq!(capture.total(), 8);
        assert!(capture.truncated());
    }

    #[test]
    fn a_flood_is_drained_to_the_end() {
        let capture = Capture::new(1024);
        let flood = std::io::repeat(b'x').take(10 * 1024 * 1024);
        capture.drain_in_background(flood);
        assert!(capture.wait_closed(Instant::now() + Duration::from_secs(10)));
        assert_eq!(capture.total(), 10 * 1024 * 1024);
        assert_eq!(capture.bytes().len(), 1024);
    }

    #[test]
    fn wait_for_gives_up_at_the_deadline() {
        let capture = Capture::new(64);
        let started = Instant::now();
        let found = capture.wait_for(started + Duration::from_millis(50), |_, _| None::<()>);
        assert!(found.is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    /// The grader connects as soon as it sees `Listening on`: the
    /// timeline must show the line first, at a time no later than the
    /// connection (run many times, since a wrong order is a race).
    #[test]
    fn a_line_is_recorded_before_whoever_it_wakes_acts() {
        use std::io::Write;

        use crate::harness::conversation::{Conversation, Kind, Party};

        for _ in 0..100 {
            let conversation = Conversation::new();
            let capture = Capture::new(1024);
            let (reader, mut writer) = std::io::pipe().unwrap();
            let lines = LineRecorder::new(Arc::clone(&conversation), Party::Server, Kind::Stdout);
            capture.drain_recording(reader, Some(lines));
            writer.write_all(b"Listening on 127.0.0.1:9\n").unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            capture
                .wait_for(deadline, |bytes, _| bytes.ends_with(b"\n").then_some(()))
                .unwrap();
            let woke = Instant::now();
            conversation.connected(Kind::Connect, Party::Grader, Party::Server, 1, woke);
            drop(writer);
            assert!(capture.wait_closed(deadline));
            let events = conversation.transcript().events;
            let kinds: Vec<Kind> = events.iter().map(|event| event.kind).collect();
            assert_eq!(kinds, [Kind::Stdout, Kind::Connect], "{events:?}");
            assert!(events[0].at <= events[1].at, "{events:?}");
        }
    }

    /// Lines split across reads are recorded whole, several in one read
    /// one by one, and a line longer than the recorder keeps is cut.
    #[test]
    fn lines_are_recorded_however_the_reads_cut_them() {
        use crate::harness::conversation::{Conversation, Kind, Party};

        let conversation = Conversation::new();
        let mut lines = LineRecorder::new(Arc::clone(&conversation), Party::Server, Kind::Stdout);
        let long = "x".repeat(3 * LineRecorder::MAX_PARTIAL);
        let output = format!("Listening on 127.0.0.1:9\nConnected\r\nEcho{long}\n\nlast");
        for piece in output.as_bytes().chunks(7) {
            lines.feed(piece);
        }
        lines.finish();
        let recorded: Vec<String> = conversation
            .transcript()
            .events
            .into_iter()
            .map(|event| event.text)
            .collect();
        assert_eq!(recorded.len(), 5, "{recorded:?}");
        assert_eq!(recorded[..2], ["Listening on 127.0.0.1:9", "Connected"]);
        // The conversation shortens a long line further, saying by how much.
        let kept = recorded[2].chars().take_while(|&c| c != '…').count();
        let more: usize = recorded[2]
            .split(['(', ' '])
            .find_map(|word| word.parse().ok())
            .expect("how many characters were left out");
        assert_eq!(kept + more, LineRecorder::MAX_PARTIAL, "{}", recorded[2]);
        assert_eq!(recorded[3..], ["", "last"]);
    }

    #[test]
    fn complete_lines_ignore_a_partial_last_line() {
        assert_eq!(complete_lines(b"one\r\ntwo\n\nthr"), ["one", "two", ""]);
        assert!(complete_lines(b"").is_empty());
        assert!(complete_lines(b"partial").is_empty());
    }
}
