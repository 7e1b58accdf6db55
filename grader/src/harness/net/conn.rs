//! The grader's end of a TCP connection, recording as it goes.
//!
//! A [`Conn`] is a `TcpStream` (it derefs to one, for timeouts and
//! addresses) whose reads, writes and shutdowns are recorded in the check's
//! [`conversation`](crate::harness::conversation): the bytes each way, who closed
//! first, and a reset. Every connection the harness makes or accepts is a
//! `Conn`, so a check's conversation is complete without the check doing
//! anything.
//!
//! Every read is bounded: a `Conn` reads at most what its check expects the
//! program to send on it (see [`Conn::expect_at_most`]; 64 KiB unless the
//! check says otherwise) plus a margin ([`MARGIN`]). A program that sends
//! more gets no further: the next read fails with [`TooMuch`] (inside an
//! `io::Error`, see [`TooMuch::of`]), the conversation notes it once, and the
//! program's writes block on the grader's full socket. So a client that
//! streams at a grader's server costs the grader a bounded buffer, not its
//! memory.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::harness::conversation::{self, Conversation, Kind, Party};
use crate::harness::show;

/// What a connection may carry from the program, unless its check expects
/// more or less ([`Conn::expect_at_most`]).
pub const DEFAULT_EXPECTED: u64 = 64 * 1024;

/// How much more than it expects the grader reads before it gives up: room
/// for a program that sends a little too much, so that the check can show
/// the difference rather than just the excess.
pub const MARGIN: u64 = 64 * 1024;

/// A graded program sent more on a connection than its check reads: the
/// bytes it expected at most, plus [`MARGIN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooMuch {
    /// The program that sent it.
    pub from: Party,
    /// What the check expected at most.
    pub expected: u64,
    /// What the grader read before it stopped reading.
    pub read: u64,
}

impl TooMuch {
    /// The `TooMuch` an I/O error carries, if it is one.
    pub fn of(err: &io::Error) -> Option<&TooMuch> {
        err.get_ref()?.downcast_ref()
    }
}

/// `the client sent more than 128 KiB where at most 64 KiB was expected`.
impl std::fmt::Display for TooMuch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} sent more than {} where at most {} was expected",
            self.from.name(),
            show::size(self.read),
            show::size(self.expected)
        )
    }
}

impl std::error::Error for TooMuch {}

impl From<TooMuch> for io::Error {
    fn from(too_much: TooMuch) -> Self {
        io::Error::other(too_much)
    }
}

impl From<TooMuch> for crate::outcome::Failure {
    fn from(too_much: TooMuch) -> Self {
        crate::outcome::Failure::new(format!("{too_much}; the grader stopped reading there"))
    }
}

/// A recorded connection between the grader and a graded program.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    tag: Arc<Tag>,
    poke: bool,
}

/// What all clones of one connection share: where it records, and which of
/// its one-time events (FIN each way, reset) were recorded already.
#[derive(Debug)]
struct Tag {
    conversation: Option<Arc<Conversation>>,
    id: u32,
    /// The graded program at the other end.
    theirs: Party,
    we_closed: AtomicBool,
    they_closed: AtomicBool,
    reset: AtomicBool,
    /// Bytes read from the program so far, by all clones.
    read: AtomicU64,
    /// Bytes the grader wrote to the program so far (its kernel took them),
    /// by all clones.
    written: AtomicU64,
    /// Bytes the check expects the program to send in all.
    expected: AtomicU64,
    /// Whether the program sent more than `expected` plus the margin.
    exceeded: AtomicBool,
}

impl Conn {
    /// A connection the grader began to open `at` to `theirs` (a graded
    /// server).
    pub fn connected(stream: TcpStream, theirs: Party, at: Instant) -> Self {
        Self::recorded(stream, theirs, Kind::Connect, at)
    }

    /// A connection the grader accepted from `theirs` (a graded client).
    pub fn accepted(stream: TcpStream, theirs: Party) -> Self {
        Self::recorded(stream, theirs, Kind::Accept, Instant::now())
    }

    /// A connection of the grader's own (a [`poke`](crate::harness::net::poke)),
    /// which the conversation leaves out.
    pub fn unrecorded(stream: TcpStream) -> Self {
        let mut conn = Self::with(stream, Party::Client, Kind::Accept, Instant::now(), None);
        conn.poke = true;
        conn
    }

    /// Whether this is the grader's own [`poke`](crate::harness::net::poke), which
    /// woke a peer whose client never connected: nothing a program sent.
    pub fn is_poke(&self) -> bool {
        self.poke
    }

    fn recorded(stream: TcpStream, theirs: Party, kind: Kind, at: Instant) -> Self {
        Self::with(stream, theirs, kind, at, conversation::current())
    }

    fn with(
        stream: TcpStream,
        theirs: Party,
        kind: Kind,
        at: Instant,
        conversation: Option<Arc<Conversation>>,
    ) -> Self {
        let id = conversation.as_ref().map_or(0, |c| c.next_connection());
        if let Some(conversation) = &conversation {
            match kind {
                Kind::Accept => conversation.connected(kind, theirs, Party::Grader, id, at),
                _ => conversation.connected(kind, Party::Grader, theirs, id, at),
            }
        }
        Self {
            stream,
            tag: Arc::new(Tag {
                conversation,
                id,
                theirs,
                we_closed: AtomicBool::new(false),
                they_closed: AtomicBool::new(false),
                reset: AtomicBool::new(false),
                read: AtomicU64::new(0),
                written: AtomicU64::new(0),
                expected: AtomicU64::new(DEFAULT_EXPECTED),
                exceeded: AtomicBool::new(false),
            }),
            poke: false,
        }
    }

    /// Another handle to the same connection (for a writer thread), recording
    /// into the same conversation.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            stream: self.stream.try_clone()?,
            tag: Arc::clone(&self.tag),
            poke: self.poke,
        })
    }

    /// Shuts down reading, writing or both; shutting down writing sends a
    /// FIN, which the conversation shows.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let result = self.stream.shutdown(how);
        if result.is_ok() && how != Shutdown::Read {
            self.tag.we_close("");
        }
        result
    }

    /// Closes the connection with a reset (RST) rather than a FIN: linger
    /// with a zero timeout, then close.
    pub fn reset(self) -> io::Result<()> {
        socket2::SockRef::from(&self.stream).set_linger(Some(std::time::Duration::ZERO))?;
        if !self.tag.reset.swap(true, Ordering::SeqCst) {
            self.tag.record(|c| {
                c.signal(
                    Kind::Reset,
                    Party::Grader,
                    self.tag.theirs,
                    Some(self.tag.id),
                    "",
                )
            });
        }
        Ok(())
    }

    /// Says that the program sends at most `bytes` on this connection, in
    /// all: the grader reads that plus [`MARGIN`], and a read after that
    /// fails with [`TooMuch`]. Every connection starts at
    /// [`DEFAULT_EXPECTED`]; a check that expects more (or less) says so
    /// before it reads.
    pub fn expect_at_most(&self, bytes: u64) {
        self.tag.expected.store(bytes, Ordering::SeqCst);
    }

    /// Says that the program sends up to `bytes` more than it has sent so
    /// far: the budget grows to fit them, if it must.
    pub fn expect_more(&self, bytes: u64) {
        let wanted = self.tag.read.load(Ordering::SeqCst).saturating_add(bytes);
        self.tag.expected.fetch_max(wanted, Ordering::SeqCst);
    }

    /// How many bytes the grader read from the program on this connection.
    pub fn bytes_read(&self) -> u64 {
        self.tag.read.load(Ordering::SeqCst)
    }

    /// How many bytes the grader wrote on this connection: the sum of its
    /// data events in the conversation.
    pub fn bytes_written(&self) -> u64 {
        self.tag.written.load(Ordering::SeqCst)
    }

    /// Whether the program sent more than this connection's budget, and so
    /// how much (see [`Conn::expect_at_most`]).
    pub fn too_much(&self) -> Option<TooMuch> {
        self.tag
            .exceeded
            .load(Ordering::SeqCst)
            .then(|| self.tag.too_much())
    }

    /// Which connection of the check this is (from 1), as the conversation
    /// numbers it; 0 when nothing records.
    pub fn id(&self) -> u32 {
        self.tag.id
    }
}

impl Tag {
    /// How many more bytes the grader reads before the budget is spent.
    fn room(&self) -> u64 {
        let limit = self.expected.load(Ordering::SeqCst).saturating_add(MARGIN);
        limit.saturating_sub(self.read.load(Ordering::SeqCst))
    }

    fn too_much(&self) -> TooMuch {
        TooMuch {
            from: self.theirs,
            expected: self.expected.load(Ordering::SeqCst),
            read: self.read.load(Ordering::SeqCst),
        }
    }

    /// The program sent more than the budget: noted once, and the error
    /// every read returns from now on.
    fn exceed(&self) -> io::Error {
        if !self.exceeded.swap(true, Ordering::SeqCst) {
            let too_much = self.too_much();
            self.record(|c| c.note(format!("stops reading: {too_much}")));
        }
        self.too_much().into()
    }

    fn record(&self, action: impl FnOnce(&Conversation)) {
        if let Some(conversation) = &self.conversation {
            action(conversation);
        }
    }

    fn we_close(&self, how: &str) {
        if !self.we_closed.swap(true, Ordering::SeqCst) {
            self.record(|c| c.signal(Kind::Fin, Party::Grader, self.theirs, Some(self.id), how));
        }
    }

    fn read(&self, result: &io::Result<usize>, buffer: &[u8]) {
        match result {
            Ok(0) if !buffer.is_empty() => {
                if !self.they_closed.swap(true, Ordering::SeqCst) {
                    self.record(|c| {
                        c.signal(Kind::Fin, self.theirs, Party::Grader, Some(self.id), "")
                    });
                }
            }
            Ok(n) => self.record(|c| c.data(self.theirs, Party::Grader, self.id, &buffer[..*n])),
            Err(err) => self.failed(err),
        }
    }

    fn wrote(&self, result: &io::Result<usize>, buffer: &[u8], began: Instant) {
        match result {
            Ok(n) => self
                .record(|c| c.data_at(Party::Grader, self.theirs, self.id, &buffer[..*n], began)),
            Err(err) => self.failed(err),
        }
    }

    fn failed(&self, err: &io::Error) {
        if matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        ) && !self.reset.swap(true, Ordering::SeqCst)
        {
            let how = if err.kind() == ErrorKind::BrokenPipe {
                "the grader's write failed: the program had closed the connection"
            } else {
                ""
            };
            self.record(|c| c.signal(Kind::Reset, self.theirs, Party::Grader, Some(self.id), how));
        }
    }
}

impl Drop for Tag {
    /// The last handle gone closes the socket: a FIN unless one went already.
    fn drop(&mut self) {
        if !self.reset.load(Ordering::SeqCst) {
            self.we_close("");
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Deref for Conn {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl Read for &Conn {
    /// Reads at most what is left of the connection's budget: once it is
    /// spent, an end of stream is still an end of stream, but a byte more
    /// is [`TooMuch`].
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.tag.exceeded.load(Ordering::SeqCst) {
            return Err(self.tag.exceed());
        }
        let room = usize::try_from(self.tag.room()).unwrap_or(usize::MAX);
        if room == 0 {
            let mut byte = [0; 1];
            return match self.stream.peek(&mut byte) {
                Ok(0) => {
                    self.tag.read(&Ok(0), &byte);
                    Ok(0)
                }
                Ok(_) => Err(self.tag.exceed()),
                Err(err) => {
                    self.tag.failed(&err);
                    Err(err)
                }
            };
        }
        let take = room.min(buffer.len());
        let buffer = &mut buffer[..take];
        let result = (&self.stream).read(buffer);
        if let Ok(n) = result {
            self.tag.read.fetch_add(n as u64, Ordering::SeqCst);
        }
        self.tag.read(&result, buffer);
        result
    }
}

impl Read for Conn {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buffer)
    }
}

impl Write for &Conn {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let began = Instant::now();
        let result = (&self.stream).write(buffer);
        if let Ok(n) = result {
            self.tag.written.fetch_add(n as u64, Ordering::SeqCst);
        }
        self.tag.wrote(&result, buffer, began);
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        (&self.stream).flush()
    }
}

impl Write for Conn {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        (&*self).write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}
