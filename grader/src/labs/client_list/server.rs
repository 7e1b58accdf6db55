//! Server checks: the graded server against the grader's clients.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::harness::conversation::Party;
use crate::harness::net::conn::Conn;
use crate::harness::net::{self, SendPlan};
use crate::harness::observe::procfs::TcpBuffers;
use crate::harness::observe::{procfs, stall};
use crate::harness::payload;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::registration::{
    Registration, expect_entry, expect_names, expect_refused, expect_refused_before_the_end,
    register, register_with, reply_list, send_name, still_serving, until_taken_up,
};
use super::reply::{quoted, quoted_list};
use super::{MAX_NAME, SERVER};

pub(super) fn sees_itself(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let (list, _) = register(ctx, &mut server, "alice")?;
    expect_names(&list, &["alice"], "the first client of a fresh server")
}

/// How many clients register at once in [`many_at_once`]: the contract's
/// 200. Every client's reply is the whole list, so the server's work grows
/// with the square of the crowd (20,100 entries serialised); 100 caught the
/// lost updates measured as well and would halve lab 6's grade, but the
/// curriculum names 200.
const CROWD: usize = 200;

pub(super) fn many_at_once(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let deadline = ctx.within(20.0);
    let names: Vec<String> = (1..=CROWD).map(|i| format!("client {i:03}")).collect();
    ctx.note_command(format!(
        "(grader) open {CROWD} connections to {}, then send every name and half-close, then read every reply",
        server.addr
    ));
    // Every connection is open before any name is sent, so the server's
    // threads all register at nearly the same moment.
    let mut streams = Vec::with_capacity(CROWD);
    let mut crowd = net::Crowd::new(server.addr);
    for name in &names {
        let stream = crowd.connect(deadline).map_err(|f| {
            server.explain(f.detail(format!(
                "{} of {CROWD} connections were open",
                streams.len()
            )))
        })?;
        let local = stream
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        streams.push((name.as_str(), stream, local));
    }
    // All names first, then every half-close in a tight loop: the server's
    // threads see their end of stream, and update the list, nearly at once,
    // so a lost update (copy, modify, store back) has every chance to show.
    for (name, stream, _) in &streams {
        let mut writer = stream;
        if let Err(err) = net::write_all_until(&mut writer, name.as_bytes(), deadline) {
            return Err(server.explain(Failure::new(format!(
                "sending {} failed: {err}",
                quoted(name)
            ))));
        }
    }
    for (name, stream, _) in &streams {
        if let Err(err) = stream.shutdown(Shutdown::Write) {
            return Err(server.explain(Failure::new(format!(
                "sending {} failed: {err}",
                quoted(name)
            ))));
        }
    }
    for (name, stream, local) in &streams {
        let (received, end) = net::read_until(stream, None, deadline);
        let registration = Registration {
            local: *local,
            server: server.addr,
            received,
            end,
            write_error: None,
        };
        reply_list(&registration, name).map_err(|f| {
            server.explain(f.detail(format!("{CROWD} clients were registering at the same time")))
        })?;
    }
    drop(streams);
    let (list, _) = register(ctx, &mut server, "the last one")?;
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| list.get(name).is_none())
        .collect();
    if !missing.is_empty() {
        let failure = Failure::new(format!(
            "{} of the {CROWD} clients that registered at the same time are missing from the list",
            missing.len()
        ))
        .expected(format!("all {CROWD} names, each client got its reply"))
        .actual(format!("missing {}", quoted_list(&missing, 8)));
        return Err(lost_or_forgotten(ctx, &mut server, failure));
    }
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("the last one");
    expect_names(&list, &all, &format!("after {} registrations", CROWD + 1))
}

/// `failure` (names missing after many registrations at once), explained:
/// two clients register one after the other, the first served and gone
/// before the second connects. If the second's list lacks the first, no
/// race is needed to lose a name: the server forgets a client once it is
/// served (the list is of every client that registered, not of those
/// still connected). Otherwise updates were lost to the race.
fn lost_or_forgotten(ctx: &Ctx, server: &mut Server, failure: Failure) -> Failure {
    const FIRST: &str = "served first";
    let lost = "updates were lost: two threads read the list, each added its name to its own copy, and the second write wiped out the first; change the shared map in place while holding its lock";
    let Ok(_) = register(ctx, server, FIRST) else {
        return failure.detail(lost);
    };
    let Ok((list, _)) = register(ctx, server, "served after it") else {
        return failure.detail(lost);
    };
    if list.get(FIRST).is_some() {
        return failure.detail(lost);
    }
    failure
        .detail(format!(
            "no race is needed: the grader registered {} and, once it had its list and had \
             closed, another client, whose list no longer holds {}. The server forgets a \
             client once it has served it",
            quoted(FIRST),
            quoted(FIRST)
        ))
        .diagnosis(
            "The list holds every client that has registered so far, not just those still connected: insert each client and never remove it when its connection ends (a second registration under the same name replaces the first).",
            "#step-2-register-and-reply",
        )
}

pub(super) fn silent_client(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let pid = server.process.pid();
    // Before any client: a thread per connection shows as a count that
    // grows with them (`/proc`, so Linux only; elsewhere no evidence).
    let idle = procfs::tree_threads(pid).ok();
    let silent = server.connect(ctx.deadline())?;
    until_taken_up(&server, ctx.within(1.0));
    ctx.note_command(format!(
        "(grader) connect to {} and send nothing, then register another client",
        server.addr
    ));
    let registration = send_name(
        ctx,
        &mut server,
        b"not blocked",
        SendPlan::ALL_THEN_CLOSE,
        ctx.within(1.0),
    )?;
    if registration.received.is_empty() && registration.end.gave_up() {
        let failure = Failure::new("while one client stayed connected without sending anything, another got no reply within a second")
            .expected("every connection is served by its own thread, which waits for its client without holding the list's lock: a silent client holds up only itself")
            .actual("no reply: the server was still busy with the silent client");
        let failure = match idle {
            Some(idle) => held_up_despite_threads(failure, pid, idle, ctx.within(1.0)),
            None => failure,
        };
        return Err(server.explain(failure));
    }
    reply_list(&registration, "not blocked").map_err(|f| server.explain(f))?;
    drop(silent);
    Ok(())
}

/// What a server that has a thread per connection, yet was held up by a
/// silent client, comes down to: the other thread waits for something the
/// silent client's thread holds while it waits for a name.
const LOCK_WHILE_READING: &str = "Each connection has its thread, yet one waited for another: read the name first, without the lock, then take the list's lock only to change and serialise the list. A guard taken before reading the name makes every other thread wait for a client that sends nothing.";

/// `failure` of [`silent_client`], explained when the server's thread
/// count, `idle` before any client, grew with the two connections (by
/// `deadline`): the server does run a thread per connection, so what held
/// the second client up is something the silent client's thread held,
/// not the accept loop.
fn held_up_despite_threads(failure: Failure, pid: u32, idle: usize, deadline: Instant) -> Failure {
    match wait_threads(pid, deadline, |count| count >= idle + 2) {
        Ok((count, true)) => failure
            .detail(format!(
                "the server does run a thread per connection: {count} threads with the two clients connected, {idle} before; the second client's thread was held up while the silent client's thread waited for a name, as by a lock taken before reading it"
            ))
            .diagnosis(LOCK_WHILE_READING, "#sharing-the-list-arc-and-mutex"),
        // No more threads than before (the accept loop serves the clients
        // itself), or none left to count: no evidence of anything else.
        Ok((_, false)) | Err(_) => failure,
    }
}

/// Polls the server's thread count until `done` says yes or `deadline`
/// passes; returns the last count.
fn wait_threads(
    pid: u32,
    deadline: Instant,
    done: impl Fn(usize) -> bool,
) -> Result<(usize, bool), Failure> {
    // A server asleep with nothing changing will not start or end a thread.
    let mut watch = stall::Watch::new();
    loop {
        let count = procfs::tree_threads(pid)
            .map_err(|err| Failure::new(format!("reading /proc/{pid}/status: {err}")))?;
        if done(count) {
            return Ok((count, true));
        }
        if Instant::now() >= deadline || watch.stalled().is_some() {
            return Ok((count, false));
        }
        // /proc cannot be waited on: look again shortly.
        thread::sleep(Duration::from_millis(5));
    }
}

pub(super) fn thread_per_connection(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let pid = server.process.pid();
    let idle = procfs::tree_threads(pid)
        .map_err(|err| Failure::new(format!("reading /proc/{pid}/status: {err}")))?;
    ctx.note_command(format!(
        "(grader) read Threads: in /proc/{pid}/status, open two connections that send nothing yet, read it again"
    ));
    // Both stay silent: reading a name blocks until its client half-closes,
    // so each holds on to its thread.
    let first = server.connect(ctx.deadline())?;
    let second = server.connect(ctx.deadline())?;
    let (stalled, rose) = wait_threads(pid, ctx.within(5.0), |count| count >= idle + 2)?;
    if !rose {
        return Err(server.explain(
            Failure::new("the server's thread count did not rise while two clients were connected")
                .expected(format!(
                    "at least {} threads: {idle} when idle, plus one per stalled client",
                    idle + 2
                ))
                .actual(format!("threads: {stalled}"))
                .detail("spawn a thread for each accepted connection and move the stream into it"),
        ));
    }
    // Both stalled clients now finish their names; their threads must end
    // once they are served.
    for (mut stream, name) in [(first, "first stalled"), (second, "second stalled")] {
        stream
            .write_all(name.as_bytes())
            .and_then(|()| stream.shutdown(Shutdown::Write))
            .map_err(|err| Failure::new(format!("finishing a stalled client: {err}")))?;
        let local = stream
            .local_addr()
            .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
        let (received, end) = net::read_until(&stream, None, ctx.within(5.0));
        let registration = Registration {
            local,
            server: server.addr,
            received,
            end,
            write_error: None,
        };
        reply_list(&registration, name).map_err(|f| server.explain(f))?;
    }
    // Back to idle, give or take a thread a runtime may have started on the
    // way (a JVM does); a leak keeps both connection threads.
    let settled = (idle + 1).max(stalled - 2);
    let (after, dropped) = wait_threads(pid, ctx.within(5.0), |count| count <= settled)?;
    if !dropped {
        return Err(server.explain(
            Failure::new("the connection threads did not end after their clients were served")
                .expected(format!("threads: at most {settled} (idle: {idle}; with the two stalled clients: {stalled})"))
                .actual(format!("threads: {after}, 5 s after both clients got their lists ({stalled} while they were stalled)"))
                .detail("a thread must return once its client is served; a thread that waits forever is a leak that grows with every client"),
        ));
    }
    Ok(())
}

/// How many of the longest names fill the list before a client that does
/// not read registers, in [`slow_reader`], with the machine's TCP buffers: a
/// reply of about 150 KiB, over three times what the kernel buffers (about
/// 42 KiB, measured) between a server and a client whose receive buffer and
/// segment size are the smallest there are. The list's lock is then held,
/// by a server that writes under it, for as long as that client does not
/// read.
const FILLERS: usize = 256;

/// [`FILLERS`] in a grade's network namespace, whose send buffers stay at
/// 16 KiB: the kernel then buffers 6.5 to 7.5 KiB (measured with `ss`:
/// the server's queue is made of segments of that client's tiny size, each
/// counted at several times its bytes) between the server and that client,
/// and 32 names make a reply of about 18 KiB: over twice as much, and more
/// than both buffers' sizes added up. Every filler's reply
/// is the whole list, so the bytes the fillers move grow with the square of
/// their number: 32 move a sixtieth of what 256 do (0.3 MB of JSON instead
/// of 18 MB).
const FILLERS_SMALL_BUFFERS: usize = 32;

/// The fillers of [`slow_reader`] where the check runs: fewer where the
/// send buffers are small (see [`FILLERS_SMALL_BUFFERS`]).
fn fillers(buffers: &TcpBuffers) -> usize {
    if buffers.largest_send() <= SMALL_SEND_BUFFERS {
        FILLERS_SMALL_BUFFERS
    } else {
        FILLERS
    }
}

/// The largest `tcp_wmem` maximum for which [`FILLERS_SMALL_BUFFERS`] were
/// measured (the grade namespace's).
const SMALL_SEND_BUFFERS: usize = 16384;

/// The most a reply of the list holds, once `fillers` names and a few more
/// are in it: each entry names its key twice, plus an address and a port.
fn long_list(fillers: usize) -> u64 {
    ((fillers + 8) * (2 * MAX_NAME + 100)) as u64
}

/// A client that reads nothing: the smallest receive buffer and segment
/// size there are, so that the server's reply fills the buffers between
/// them, and its `write_all` waits, at once.
fn connect_without_reading(addr: SocketAddr, deadline: Instant) -> Result<Conn, Failure> {
    let connect = || -> std::io::Result<Conn> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_recv_buffer_size(1)?;
        socket.set_tcp_mss(88)?;
        let began = Instant::now();
        socket.connect_timeout(&addr.into(), net::remaining(deadline))?;
        Ok(Conn::connected(socket.into(), Party::Server, began))
    };
    connect().map_err(|err| Failure::new(format!("could not connect to {addr}: {err}")))
}

/// A client that registers and then does not read its reply (a long list)
/// holds up nobody: the server holds the list's lock only to change and
/// serialise it, never while it writes to a client.
pub(super) fn slow_reader(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let deadline = ctx.within(20.0);
    let buffers = TcpBuffers::here();
    let fillers = fillers(&buffers);
    let long_list = long_list(fillers);
    ctx.note_command(format!(
        "(grader) register {fillers} names of {MAX_NAME} bytes with {}, one after another ({})",
        server.addr,
        buffers.describe()
    ));
    for index in 0..fillers {
        let name = format!("{index:03} {}", "x".repeat(MAX_NAME - 4));
        let stream = server.connect(deadline)?;
        stream.expect_at_most(long_list);
        let exchange = net::exchange(
            &stream,
            name.as_bytes(),
            SendPlan::ALL_THEN_CLOSE,
            None,
            deadline,
        );
        if exchange.received.is_empty() || exchange.end != net::ReadEnd::Eof {
            let summary = format!(
                "registering the long name number {} of {fillers}: got {} bytes back, then {}",
                index + 1,
                exchange.received.len(),
                exchange.end
            );
            // What any registration's reply may show (a connection left
            // open, an entry not as the contract says) is explained as in
            // every other check.
            let registration = Registration {
                local: stream
                    .local_addr()
                    .map_err(|err| Failure::new(format!("local_addr: {err}")))?,
                server: server.addr,
                received: exchange.received,
                end: exchange.end,
                write_error: exchange.write_error,
            };
            let failure = match reply_list(&registration, &name) {
                Err(failure) => failure.detail(format!(
                    "that was the long name number {} of {fillers}",
                    index + 1
                )),
                Ok(_) => Failure::new(summary),
            };
            return Err(server.explain(failure));
        }
    }
    ctx.note_command(format!(
        "(grader) register `does not read` with {} and read nothing, then register `not held up`",
        server.addr
    ));
    let slow = connect_without_reading(server.addr, deadline).map_err(|f| server.explain(f))?;
    let mut writer = &slow;
    net::write_all_until(&mut writer, b"does not read", deadline)
        .and_then(|()| slow.shutdown(Shutdown::Write))
        .map_err(|err| {
            server.explain(Failure::new(format!("registering `does not read`: {err}")))
        })?;
    let slow_local = slow
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    // The server is writing its reply once the first bytes wait unread.
    let writing = procfs::watch_until(ctx.within(5.0), || {
        procfs::tcp_connection(slow_local, server.addr)
            .is_ok_and(|socket| socket.is_some_and(|socket| socket.rx_queue > 0))
    });
    let other = server.connect(deadline)?;
    other.expect_at_most(long_list);
    let other_local = other
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    let exchange = net::exchange(
        &other,
        b"not held up",
        SendPlan::ALL_THEN_CLOSE,
        None,
        ctx.within(1.0),
    );
    let unread = procfs::tcp_connection(slow_local, server.addr)
        .ok()
        .flatten()
        .map_or(0, |socket| socket.rx_queue);
    drop(slow);
    if exchange.received.is_empty() && exchange.end.gave_up() {
        let mut failure = Failure::new(
            "while one client did not read its reply (a long list), another got no reply within a second",
        )
        .expected("the list's lock is released before the reply is written: a client that reads slowly holds up only itself")
        .actual("no reply: the server was still writing to the client that did not read");
        if writing {
            failure = failure.detail(format!(
                "{unread} bytes of the reply to the client that did not read were waiting for it, and the server was still writing the rest"
            ));
        }
        return Err(server.explain(failure));
    }
    let registration = Registration {
        local: other_local,
        server: server.addr,
        received: exchange.received,
        end: exchange.end,
        write_error: exchange.write_error,
    };
    reply_list(&registration, "not held up").map_err(|f| server.explain(f))?;
    Ok(())
}

pub(super) fn awkward_names(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let names = [
        "say \"hi\"",
        "back\\slash",
        "two\nlines",
        "tab\there",
        "dog 🐶 paws 🐾",
        "bell \u{7} and nul \u{0}",
        "{\"not\": \"json\"}",
    ];
    let mut last = None;
    for name in names {
        last = Some(register(ctx, &mut server, name)?.0);
    }
    let list = last.expect("names is not empty");
    expect_names(
        &list,
        &names,
        "after registering names that need escaping in JSON",
    )
}

pub(super) fn duplicate_replaces(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let (_, first) = register(ctx, &mut server, "twice")?;
    register(ctx, &mut server, "someone else")?;
    let (list, second) = register(ctx, &mut server, "twice")?;
    expect_names(
        &list,
        &["twice", "someone else"],
        "after registering \"twice\" two times",
    )
    .map_err(|f| f.detail("a later registration under the same name replaces the earlier entry"))?;
    expect_entry(&list, "twice", second, server.addr).map_err(|f| {
        f.detail(format!(
            "the first registration came from {first}, the second from {second}: the list must show the second"
        ))
    })
}

pub(super) fn name_limit(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let longest = format!("{:x<width$}", "exactly 256 bytes ", width = MAX_NAME);
    register(ctx, &mut server, &longest).map_err(|f| {
        f.detail("a name of exactly 256 bytes is the longest allowed, and is accepted")
    })?;
    let too_long = format!("{:y<width$}", "257 bytes ", width = MAX_NAME + 1);
    expect_refused(
        ctx,
        &mut server,
        too_long.as_bytes(),
        "is 257 bytes long",
        0,
    )?;
    still_serving(ctx, &mut server, &[&longest], "a 257-byte name")?;
    expect_refused_before_the_end(ctx, &mut server)
}

pub(super) fn name_limit_multibyte(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // 64 four-byte characters: 256 bytes, accepted.
    let dogs = "🐶".repeat(MAX_NAME / 4);
    register(ctx, &mut server, &dogs).map_err(|f| {
        f.detail("64 × 🐶 is 64 characters but 256 bytes: the limit counts bytes, and this name is within it")
    })?;
    // 65 of them: only 65 characters, but 260 bytes.
    let too_many = "🐶".repeat(MAX_NAME / 4 + 1);
    expect_refused(
        ctx,
        &mut server,
        too_many.as_bytes(),
        "is 65 × 🐶: 65 characters, 260 bytes",
        0,
    )
    .map_err(|f| {
        // A name cut to the limit (diagnosed) counts bytes all right.
        if f.diagnosis.is_some() {
            f
        } else {
            f.detail("the limit is 256 bytes of UTF-8, not 256 characters")
        }
    })?;
    // 128 two-byte characters and one more byte: 257 bytes.
    let accents = format!("{}!", "é".repeat(MAX_NAME / 2));
    expect_refused(
        ctx,
        &mut server,
        accents.as_bytes(),
        "is 128 × é and \"!\": 257 bytes",
        1,
    )?;
    still_serving(ctx, &mut server, &[&dogs], "names over 256 bytes")
}

pub(super) fn empty_name(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    register(ctx, &mut server, "first")?;
    expect_refused(
        ctx,
        &mut server,
        b"",
        "is empty (the client half-closed at once)",
        0,
    )?;
    still_serving(ctx, &mut server, &["first"], "an empty name")
}

pub(super) fn whitespace_kept(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let names = [
        "  two spaces either side  ",
        "ends with a newline\n",
        "\tstarts with a tab",
    ];
    let mut last = None;
    for name in names {
        last = Some(register(ctx, &mut server, name).map_err(|f| {
            f.detail("the name is every byte the client sent, spaces and newlines included: do not trim it")
        })?.0);
    }
    expect_names(
        &last.expect("names is not empty"),
        &names,
        "after registering names with surrounding whitespace",
    )
}

pub(super) fn name_in_pieces(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Three bytes at a time also splits the four-byte 🧩 between writes.
    let name = "piece by piece 🧩 name";
    let plan = SendPlan {
        piece: Some(3),
        pause: ctx.scaled(0.005),
        half_close: true,
        // Each piece is read before the next is sent: a server that decodes
        // each read separately sees the split emoji, however loaded the
        // machine.
        wait_until_read: true,
    };
    let (list, _) = register_with(ctx, &mut server, name, plan).map_err(|f| {
        f.detail("the grader sent the name 3 bytes at a time with pauses: read until end of stream, then decode the bytes once")
    })?;
    expect_names(&list, &[name], "after a name sent in pieces")
}

pub(super) fn non_utf8(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    register(ctx, &mut server, "first")?;
    // "café crème" in Latin-1: é and è are single bytes that UTF-8 rejects.
    expect_refused(ctx, &mut server, b"caf\xe9 cr\xe8me", "is not UTF-8", 0)?;
    still_serving(ctx, &mut server, &["first"], "a name that is not UTF-8")
        .map_err(|f| f.detail("decode with `String::from_utf8` and refuse the name on error; a lossy decode registers a different name"))
}

pub(super) fn sorted(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let mut rng = ctx.rng();
    // Names whose byte order surprises: capitals before small letters,
    // digits compared one at a time, accents and emoji after ASCII.
    let mut names: Vec<String> = [
        "Zoe", "adam", "Adam", "10", "9", "a b", "ab", "émile", "Émile", "zoë", "🐶", "_", "~",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    while names.len() < 32 {
        let len = rng.usize(3..9);
        let name = payload::alphanumeric(&mut rng, len);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    rng.shuffle(&mut names);
    ctx.note_command(format!(
        "(grader) register {} names in this order: {}",
        names.len(),
        quoted_list(&names.iter().map(String::as_str).collect::<Vec<_>>(), 40)
    ));
    let mut last = None;
    for name in &names {
        last = Some(register(ctx, &mut server, name)?.0);
    }
    let list = last.expect("names is not empty");
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    expect_names(&list, &all, "after registering 32 names")?;
    let mut want = all.clone();
    want.sort_unstable();
    let got = list.names();
    if got != want {
        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        return Err(Failure::new("the names in the reply are not sorted by name")
            .expected(quoted_list(&want, 40))
            .actual(quoted_list(&got, 40))
            .detail(format!(
                "the first difference is at position {at}: {} where {} belongs",
                quoted(got[at]),
                quoted(want[at])
            ))
            .detail(format!("the names were registered in another order (seed {}); keep them in a BTreeMap, which sorts Strings by their UTF-8 bytes", ctx.seed())));
    }
    Ok(())
}

pub(super) fn server_log(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let mut expected = Vec::new();
    for name in ["alice", "bob"] {
        let (_, local) = register(ctx, &mut server, name)?;
        expected.push(format!("Registered {name} from {local}"));
    }
    for line in &expected {
        if server
            .wait_for_line(ctx.within(5.0), |got| got == line)
            .is_none()
        {
            return Err(server.explain(
                Failure::new("the server did not log a registration as the contract says")
                    .expected(format!(
                        "{line}   (the client's address and port, as accept returned them)"
                    ))
                    .actual(show::head(&server.stdout(), 10)),
            ));
        }
    }
    // Threads may log in either order: compare the registrations as a set.
    let lines = server.lines();
    let listening = lines
        .iter()
        .filter(|line| line.starts_with("Listening on "));
    let mut registered: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("Registered "))
        .collect();
    registered.sort();
    let shown: Vec<&str> = listening.chain(registered).map(String::as_str).collect();
    ctx.snapshot(&redact(&shown.join("\n")))
}
