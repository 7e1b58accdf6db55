//! The conversation a check had with the programs it graded: who connected,
//! who sent how many bytes, who closed first, what the programs printed and
//! when they exited, and what the grader decided while it waited.
//!
//! Sockets are about who sends what, when, and who closes first: a failed
//! check shows this as a timeline (`render::text`) and a sequence diagram
//! (`render::html`), drawn from the events recorded here.
//!
//! Recording is cheap and bounded. The harness records as it goes (its
//! connections, peers, datagram sockets and processes record themselves);
//! bytes moving in one direction of a connection coalesce into one event; a
//! check keeps its first and last events up to a cap, and notes how many it
//! left out in between.
//!
//! Each check thread has its conversation as the thread's current one
//! ([`enter`]); threads the harness starts for a check (its peers, its
//! writers, the readers of a program's output) carry it over ([`current`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sync::Unpoison;

mod event;

pub use event::{Event, Kind, Party, Transcript};

/// Set (to anything) to grade without recording conversations, which also
/// turns off failing fast: for measuring what recording costs.
pub const DISABLE_VARIABLE: &str = "SOCKET_LABS_NO_RECORDING";

/// Events kept from the start of a check.
const HEAD: usize = 80;
/// Events kept from the end of a check.
const TAIL: usize = 120;
/// Bytes of a message shown in its event's preview.
const PREVIEW: usize = 24;
/// Characters kept of an output line.
const LINE: usize = 160;
/// How far back a data event looks for one to coalesce with.
const COALESCE_WINDOW: usize = 8;

/// The conversation of one check, as it is being recorded.
#[derive(Debug)]
pub struct Conversation {
    started: Instant,
    state: Mutex<State>,
    /// The graded programs of the check: their pids and roles (see
    /// [`super::observe::stall`]).
    guests: Mutex<Vec<(u32, Party)>>,
    /// How many reasons there are not to give up early (see
    /// [`super::observe::stall::patient`]).
    patience: AtomicUsize,
    /// How long programs must sleep without any change to count as stalled.
    stall_window: Mutex<Duration>,
    /// How many events were recorded: anything moving counts as progress.
    activity: AtomicUsize,
}

/// How long a stall must last at `--time-scale 1`.
const STALL_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    head: Vec<Event>,
    tail: VecDeque<Event>,
    elided: u64,
    connections: u32,
}

impl Conversation {
    /// A conversation starting now.
    pub fn new() -> Arc<Self> {
        Self::starting_at(Instant::now())
    }

    /// A conversation whose clock started at `started` (the check's start).
    pub fn starting_at(started: Instant) -> Arc<Self> {
        Arc::new(Self {
            started,
            state: Mutex::default(),
            guests: Mutex::default(),
            patience: AtomicUsize::new(0),
            stall_window: Mutex::new(STALL_WINDOW),
            activity: AtomicUsize::new(0),
        })
    }

    /// Scales the stall window with the grade's `--time-scale`.
    pub fn scale_stall_window(&self, time_scale: f64) {
        *self.stall_window.lock().unpoison() = STALL_WINDOW.mul_f64(time_scale.max(0.01));
    }

    /// How long programs must sleep without any change to count as stalled.
    pub fn stall_window(&self) -> Duration {
        *self.stall_window.lock().unpoison()
    }

    /// A graded program started: waits watch it.
    pub fn add_guest(&self, pid: u32, party: Party) {
        self.guests.lock().unpoison().push((pid, party));
    }

    /// A graded program is gone (reaped): waits stop watching it.
    pub fn remove_guest(&self, pid: u32) {
        self.guests
            .lock()
            .unpoison()
            .retain(|(guest, _)| *guest != pid);
    }

    /// The graded programs running for the check.
    pub fn guests(&self) -> Vec<(u32, Party)> {
        self.guests.lock().unpoison().clone()
    }

    /// Adds (`true`) or removes a reason to wait out the time limit.
    pub fn set_patient(&self, patient: bool) {
        if patient {
            self.patience.fetch_add(1, Ordering::SeqCst);
        } else {
            self.patience.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether waits must not give up early now.
    pub fn is_patient(&self) -> bool {
        self.patience.load(Ordering::SeqCst) > 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unpoison()
    }

    /// A fresh connection number.
    pub fn next_connection(&self) -> u32 {
        let mut state = self.lock();
        state.connections += 1;
        state.connections
    }

    /// How many events were recorded so far (coalesced ones included).
    pub fn activity(&self) -> usize {
        self.activity.load(Ordering::SeqCst)
    }

    fn push(&self, mut event: Event, at: Instant) {
        if event.kind != Kind::Note {
            self.activity.fetch_add(1, Ordering::SeqCst);
        }
        event.at = at.saturating_duration_since(self.started);
        let mut state = self.lock();
        if state.before_reset(&mut event) {
            return;
        }
        if event.kind == Kind::Reset {
            state.after_what_came_first(&mut event);
        }
        if event.kind == Kind::Data && state.coalesce(&event) {
            return;
        }
        if state.head.len() < HEAD {
            state.head.push(event);
            return;
        }
        if state.tail.len() == TAIL {
            state.tail.pop_front();
            state.elided += 1;
        }
        state.tail.push_back(event);
    }

    /// What was recorded so far.
    pub fn transcript(&self) -> Transcript {
        let state = self.lock();
        let mut events = state.head.clone();
        let elided_at = (state.elided > 0).then_some(events.len());
        events.extend(state.tail.iter().cloned());
        Transcript {
            events,
            elided: state.elided,
            elided_at,
        }
    }

    /// Records a connection `from` → `to` (`Connect`, or `Accept` when the
    /// grader accepted it), begun `at`.
    pub fn connected(&self, kind: Kind, from: Party, to: Party, conn: u32, at: Instant) {
        self.push(
            Event {
                from: Some(from),
                to: Some(to),
                conn: Some(conn),
                ..Event::new(kind)
            },
            at,
        );
    }

    /// Records `data` moving `from` → `to` on `conn`, coalesced with the
    /// bytes that moved the same way just before.
    pub fn data(&self, from: Party, to: Party, conn: u32, data: &[u8]) {
        self.data_at(from, to, conn, data, Instant::now());
    }

    /// [`Conversation::data`] for bytes that began to move `at` (a write
    /// that blocked until the peer read).
    pub fn data_at(&self, from: Party, to: Party, conn: u32, data: &[u8], at: Instant) {
        self.push(
            Event {
                from: Some(from),
                to: Some(to),
                conn: Some(conn),
                bytes: Some(data.len() as u64),
                text: preview(data),
                ..Event::new(Kind::Data)
            },
            at,
        );
    }

    /// Records a connection event without bytes: `Fin`, `Reset`, `Refused`.
    pub fn signal(&self, kind: Kind, from: Party, to: Party, conn: Option<u32>, text: &str) {
        self.push(
            Event {
                from: Some(from),
                to: Some(to),
                conn,
                text: text.to_owned(),
                ..Event::new(kind)
            },
            Instant::now(),
        );
    }

    /// Records a datagram `from` → `to` of `data`, between the two addresses.
    pub fn datagram(&self, from: Party, to: Party, route: &str, data: &[u8]) {
        self.push(
            Event {
                from: Some(from),
                to: Some(to),
                bytes: Some(data.len() as u64),
                text: format!("{route}  {}", preview(data)),
                ..Event::new(Kind::Datagram)
            },
            Instant::now(),
        );
    }

    /// Records something about the program playing `party`: its start
    /// (`text` = command line), an output line, or its end.
    pub fn program(&self, kind: Kind, party: Party, text: &str, at: Instant) {
        self.push(
            Event {
                from: Some(party),
                text: crate::harness::show::shorten(text, LINE),
                ..Event::new(kind)
            },
            at,
        );
    }

    /// Records a decision of the grader's.
    pub fn note(&self, text: impl Into<String>) {
        self.push(
            Event {
                from: Some(Party::Grader),
                text: text.into(),
                ..Event::new(Kind::Note)
            },
            Instant::now(),
        );
    }
}

impl State {
    /// Puts data or a FIN that the grader read from a program after it
    /// noted that program's reset (a write of the grader's failed first)
    /// before that reset, at its time at the latest: the kernel takes
    /// nothing on a connection after its RST, so they arrived before it.
    /// False when `event` is not such an event, or its connection was not
    /// reset.
    fn before_reset(&mut self, event: &mut Event) -> bool {
        if !matches!(event.kind, Kind::Data | Kind::Fin) || event.to != Some(Party::Grader) {
            return false;
        }
        let (conn, from) = (event.conn, event.from);
        let is_reset = |earlier: &Event| {
            earlier.kind == Kind::Reset
                && earlier.conn == conn
                && earlier.from == from
                && earlier.to == Some(Party::Grader)
        };
        let place = |events: &mut dyn EventsMut, event: &mut Event| -> bool {
            let Some(index) = (0..events.len()).rev().find(|i| is_reset(events.get(*i))) else {
                return false;
            };
            event.at = event.at.min(events.get(index).at);
            if index > 0 {
                let earlier = events.get_mut(index - 1);
                if event.kind == Kind::Data
                    && earlier.kind == Kind::Data
                    && earlier.conn == event.conn
                    && earlier.from == event.from
                {
                    merge(earlier, event);
                    return true;
                }
            }
            events.insert(index, event.clone());
            true
        };
        if place(&mut self.tail, event) {
            if self.tail.len() > TAIL {
                self.tail.pop_front();
                self.elided += 1;
            }
            return true;
        }
        if place(&mut self.head, event) {
            if self.head.len() > HEAD {
                if let Some(last) = self.head.pop() {
                    self.tail.push_front(last);
                }
                if self.tail.len() > TAIL {
                    self.tail.pop_front();
                    self.elided += 1;
                }
            }
            return true;
        }
        false
    }

    /// Keeps a program's reset, noted by the grader's writer, no earlier
    /// than the data and FIN from that program the grader's reader noted
    /// first: a reader that read the clock before the writer may take the
    /// lock after it, and a timeline in time order would then show the
    /// reset before what the kernel received ahead of it.
    fn after_what_came_first(&self, reset: &mut Event) {
        let first = self
            .head
            .iter()
            .chain(self.tail.iter())
            .filter(|earlier| {
                matches!(earlier.kind, Kind::Data | Kind::Fin)
                    && earlier.conn == reset.conn
                    && earlier.from == reset.from
                    && earlier.to == reset.to
            })
            .map(|earlier| earlier.until.unwrap_or(earlier.at).max(earlier.at))
            .max();
        if let Some(first) = first {
            reset.at = reset.at.max(first);
        }
    }

    /// Adds `event`'s bytes to the latest data event of the same connection
    /// and direction, if nothing closed or reset that connection since.
    fn coalesce(&mut self, event: &Event) -> bool {
        let recent = self
            .tail
            .iter_mut()
            .rev()
            .chain(self.head.iter_mut().rev())
            .take(COALESCE_WINDOW);
        for earlier in recent {
            if earlier.conn != event.conn {
                continue;
            }
            if earlier.kind == Kind::Data && earlier.from == event.from {
                merge(earlier, event);
                return true;
            }
            if earlier.kind != Kind::Data {
                return false;
            }
        }
        false
    }
}

/// Adds the bytes of data `event` to the `earlier` data of the same
/// connection and direction.
fn merge(earlier: &mut Event, event: &Event) {
    let before = earlier.bytes.unwrap_or(0);
    earlier.bytes = Some(before + event.bytes.unwrap_or(0));
    earlier.until = Some(event.at.max(earlier.at));
    if before < PREVIEW as u64 {
        let joined = format!("{}{}", earlier.text, event.text);
        earlier.text = clip(&joined, PREVIEW * 2);
    } else if !earlier.text.ends_with('…') {
        earlier.text.push('…');
    }
}

/// The head's `Vec` and the tail's `VecDeque` of events, alike.
trait EventsMut {
    fn len(&self) -> usize;
    fn get(&self, index: usize) -> &Event;
    fn get_mut(&mut self, index: usize) -> &mut Event;
    fn insert(&mut self, index: usize, event: Event);
}

impl EventsMut for Vec<Event> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn get(&self, index: usize) -> &Event {
        &self[index]
    }
    fn get_mut(&mut self, index: usize) -> &mut Event {
        &mut self[index]
    }
    fn insert(&mut self, index: usize, event: Event) {
        Vec::insert(self, index, event);
    }
}

impl EventsMut for VecDeque<Event> {
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn get(&self, index: usize) -> &Event {
        &self[index]
    }
    fn get_mut(&mut self, index: usize) -> &mut Event {
        &mut self[index]
    }
    fn insert(&mut self, index: usize, event: Event) {
        VecDeque::insert(self, index, event);
    }
}

/// The bytes as a short escaped preview (`Hel\n…`).
fn preview(data: &[u8]) -> String {
    let mut text = data[..data.len().min(PREVIEW)].escape_ascii().to_string();
    if data.len() > PREVIEW {
        text.push('…');
    }
    text
}

/// `text` cut to `max` characters, marked with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    let text = text.trim_end_matches('…');
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max).collect();
    kept.push('…');
    kept
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Conversation>>> = const { RefCell::new(None) };
}

/// The conversation of the check this thread works for, if any.
pub fn current() -> Option<Arc<Conversation>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Makes `conversation` this thread's current one until the guard drops.
pub fn enter(conversation: Option<Arc<Conversation>>) -> Entered {
    let previous = CURRENT.with(|current| current.replace(conversation));
    Entered { previous }
}

/// Restores the thread's previous conversation when dropped.
#[derive(Debug)]
pub struct Entered {
    previous: Option<Arc<Conversation>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Records through the current conversation, if the thread has one.
pub fn record(action: impl FnOnce(&Conversation)) {
    if let Some(conversation) = current() {
        action(&conversation);
    }
}

/// Spawns a thread that works for the same check as this one: it records
/// into the same conversation.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    let conversation = current();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _entered = enter(conversation);
            work()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_in_one_direction_coalesces_and_the_other_direction_does_not() {
        let conversation = Conversation::new();
        let conn = conversation.next_connection();
        conversation.connected(
            Kind::Connect,
            Party::Grader,
            Party::Server,
            conn,
            Instant::now(),
        );
        conversation.data(Party::Grader, Party::Server, conn, b"Hel");
        conversation.data(Party::Server, Party::Grader, conn, b"Hel");
        conversation.data(Party::Grader, Party::Server, conn, b"lo");
        conversation.signal(Kind::Fin, Party::Grader, Party::Server, Some(conn), "");
        conversation.data(Party::Server, Party::Grader, conn, b"lo");
        let events = conversation.transcript().events;
        let kinds: Vec<Kind> = events.iter().map(|event| event.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Connect, Kind::Data, Kind::Data, Kind::Fin, Kind::Data]
        );
        assert_eq!(events[1].bytes, Some(5));
        assert_eq!(events[1].text, "Hello");
        // The server's "lo" came after the grader's FIN: it stays apart.
        assert_eq!(events[2].bytes, Some(3));
        assert_eq!(events[4].bytes, Some(2));
    }

    /// The server echoed, closed (FIN), and reset the connection when the
    /// grader's next write reached it: the grader's writer noted the reset
    /// before its reader read the echo and the FIN, which had arrived
    /// first. The timeline shows them as the kernel received them.
    #[test]
    fn data_and_fin_read_after_a_reset_come_before_it() {
        let conversation = Conversation::new();
        let conn = conversation.next_connection();
        let start = Instant::now();
        conversation.connected(Kind::Connect, Party::Grader, Party::Server, conn, start);
        conversation.data(Party::Grader, Party::Server, conn, b"Hello");
        conversation.data(Party::Server, Party::Grader, conn, b"He");
        std::thread::sleep(Duration::from_millis(5));
        conversation.signal(
            Kind::Reset,
            Party::Server,
            Party::Grader,
            Some(conn),
            "the grader's write failed",
        );
        std::thread::sleep(Duration::from_millis(5));
        conversation.program(Kind::Stdout, Party::Server, "Disconnected", Instant::now());
        conversation.data(Party::Server, Party::Grader, conn, b"llo");
        conversation.signal(Kind::Fin, Party::Server, Party::Grader, Some(conn), "");
        let events = conversation.transcript().events;
        let kinds: Vec<Kind> = events.iter().map(|event| event.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Connect,
                Kind::Data,
                Kind::Data,
                Kind::Fin,
                Kind::Reset,
                Kind::Stdout
            ]
        );
        // The echo read after the reset joins the echo read before it.
        assert_eq!(events[2].bytes, Some(5));
        assert_eq!(events[2].text, "Hello");
        // No later than the reset, so that a timeline in time order keeps them.
        let reset = events[4].at;
        assert!(events[2].until.unwrap() <= reset && events[3].at <= reset);
        let transcript = conversation.transcript();
        let timeline = crate::render::timeline::Timeline::whole(&transcript);
        let shown: Vec<Kind> = timeline.events().map(|event| event.kind).collect();
        assert_eq!(shown, kinds);
    }

    /// The reader read the FIN and the clock first, the writer its failed
    /// write and the clock next, but the writer took the lock first: the
    /// reset comes after the FIN all the same.
    #[test]
    fn a_reset_noted_with_an_earlier_clock_stays_after_the_fin_read_first() {
        let conversation = Conversation::new();
        let conn = conversation.next_connection();
        let read_at = Instant::now();
        conversation.data(Party::Server, Party::Grader, conn, b"Hello");
        let fin = |at| {
            conversation.push(
                Event {
                    from: Some(Party::Server),
                    to: Some(Party::Grader),
                    conn: Some(conn),
                    ..Event::new(Kind::Fin)
                },
                at,
            );
        };
        std::thread::sleep(Duration::from_millis(5));
        fin(Instant::now());
        let reset = Event {
            from: Some(Party::Server),
            to: Some(Party::Grader),
            conn: Some(conn),
            ..Event::new(Kind::Reset)
        };
        conversation.push(reset, read_at);
        let transcript = conversation.transcript();
        let timeline = crate::render::timeline::Timeline::whole(&transcript);
        let shown: Vec<Kind> = timeline.events().map(|event| event.kind).collect();
        assert_eq!(shown, [Kind::Data, Kind::Fin, Kind::Reset]);
    }

    #[test]
    fn a_long_conversation_keeps_its_start_and_end_and_counts_the_rest() {
        let conversation = Conversation::new();
        for index in 0..1000 {
            conversation.note(format!("step {index}"));
        }
        let transcript = conversation.transcript();
        assert_eq!(transcript.events.len(), HEAD + TAIL);
        assert_eq!(transcript.elided, 1000 - (HEAD + TAIL) as u64);
        assert_eq!(transcript.elided_at, Some(HEAD));
        assert_eq!(transcript.events[0].text, "step 0");
        assert_eq!(transcript.events.last().unwrap().text, "step 999");
    }

    #[test]
    fn spawned_threads_record_into_the_same_conversation() {
        let conversation = Conversation::new();
        let _entered = enter(Some(Arc::clone(&conversation)));
        spawn("test", || record(|c| c.note("from a peer")))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(conversation.transcript().events[0].text, "from a peer");
    }
}
