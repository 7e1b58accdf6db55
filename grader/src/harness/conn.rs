//! The grader's end of a TCP connection, recording as it goes.
//!
//! A [`Conn`] is a `TcpStream` (it derefs to one, for timeouts and
//! addresses) whose reads, writes and shutdowns are recorded in the check's
//! [`conversation`](super::conversation): the bytes each way, who closed
//! first, and a reset. Every connection the harness makes or accepts is a
//! `Conn`, so a check's conversation is complete without the check doing
//! anything.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::conversation::{self, Conversation, Kind, Party};

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

    /// A connection of the grader's own (a [`poke`](super::net::poke)),
    /// which the conversation leaves out.
    pub fn unrecorded(stream: TcpStream) -> Self {
        let mut conn = Self::with(stream, Party::Client, Kind::Accept, Instant::now(), None);
        conn.poke = true;
        conn
    }

    /// Whether this is the grader's own [`poke`](super::net::poke), which
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

    /// Which connection of the check this is (from 1), as the conversation
    /// numbers it; 0 when nothing records.
    pub fn id(&self) -> u32 {
        self.tag.id
    }
}

impl Tag {
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
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let result = (&self.stream).read(buffer);
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
