//! The events a conversation is made of, as a report keeps them: who
//! took part ([`Party`]), what happened ([`Kind`]), each [`Event`], timed,
//! and what a check recorded ([`Transcript`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who took part in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The grader: its own clients, peers and decisions.
    Grader,
    /// A graded server program.
    Server,
    /// A graded client program.
    Client,
}

impl Party {
    /// The party's name as the report shows it.
    pub fn name(self) -> &'static str {
        match self {
            Party::Grader => "grader",
            Party::Server => "server",
            Party::Client => "client",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `from` connected to `to` (TCP).
    Connect,
    /// `to` accepted a connection from `from` (TCP).
    Accept,
    /// `from` sent `bytes` to `to` on connection `conn`; `text` previews them.
    Data,
    /// `from` closed its sending side (FIN): a half-close or a close.
    Fin,
    /// The connection was reset (RST), as `to` saw it.
    Reset,
    /// A connection failed as `from` tried it (`text` says how: refused…).
    Refused,
    /// A UDP datagram of `bytes` from `from` to `to`; `text` holds the
    /// addresses and a preview.
    Datagram,
    /// A program started: `from` is its role, `text` its command line.
    Start,
    /// A line the program `from` printed on stdout.
    Stdout,
    /// A line the program `from` printed on stderr.
    Stderr,
    /// The program `from` ended: `text` says how (exit status or signal).
    Exit,
    /// What the grader decided: `waited 2.0 s for more bytes`.
    Note,
}

/// One event, timed from the start of its check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, since the check started (milliseconds in JSON).
    #[serde(
        rename = "at_ms",
        serialize_with = "as_millis",
        deserialize_with = "from_millis"
    )]
    pub at: Duration,
    /// For data coalesced from many writes or reads: when the last came.
    #[serde(
        rename = "until_ms",
        serialize_with = "as_millis_opt",
        deserialize_with = "from_millis_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Duration>,
    /// What happened.
    pub kind: Kind,
    /// Who did it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Party>,
    /// To whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Party>,
    /// The connection (numbered from 1 in each check), for TCP events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// How many bytes, for data and datagrams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// A preview of the bytes, an output line, a command, an exit status or
    /// the grader's note, escaped and short.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl Event {
    pub(super) fn new(kind: Kind) -> Self {
        Self {
            at: Duration::ZERO,
            until: None,
            kind,
            from: None,
            to: None,
            conn: None,
            bytes: None,
            text: String::new(),
        }
    }
}

/// What a check recorded: its events, first and last, and how many were
/// left out between them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The events, in order.
    pub events: Vec<Event>,
    /// How many events were left out (after the first [`HEAD`](super::HEAD) events) to
    /// keep the record bounded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub elided: u64,
    /// Where the left-out events were: the index in `events` they precede.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elided_at: Option<usize>,
}

impl Transcript {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

fn as_millis<S: serde::Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

fn from_millis_opt<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<u64>::deserialize(deserializer).map(|at| at.map(Duration::from_millis))
}

fn as_millis_opt<S: serde::Serializer>(
    at: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => as_millis(at, serializer),
        None => serializer.serialize_none(),
    }
}
