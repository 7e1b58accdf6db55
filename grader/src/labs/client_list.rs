//! Lab 6 — client list: a thread per connection, a shared list behind a
//! mutex, and a reply read to its end. Contract: "Lab 6" in the handout,
//! `labs/client-list/README.md`.
//!
//! The server checks talk to the graded server with the grader's own
//! clients; the client checks run the graded client against a grader peer
//! that follows the contract. Replies are compared as parsed JSON: the
//! order of the names matters (the contract sorts them), the order of the
//! keys inside an entry does not.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};

use crate::harness::net::{self, Peer, ReadEnd, SendPlan};
use crate::harness::process::Finished;
use crate::harness::snapshot::redact;
use crate::harness::{Ctx, Server, procfs, show};
use crate::outcome::{CheckResult, Failure};
use crate::runner::CheckFn;

const SERVER: &str = "client-list-server";
const CLIENT: &str = "client-list-client";
/// The longest name the contract accepts, in bytes.
const MAX_NAME: usize = 256;

/// The checks of lab 6, in rubric order.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("client-list.sees_itself", sees_itself),
    ("client-list.many_at_once", many_at_once),
    ("client-list.silent_client", silent_client),
    ("client-list.thread_per_connection", thread_per_connection),
    ("client-list.awkward_names", awkward_names),
    ("client-list.duplicate_replaces", duplicate_replaces),
    ("client-list.name_limit", name_limit),
    ("client-list.name_limit_multibyte", name_limit_multibyte),
    ("client-list.empty_name", empty_name),
    ("client-list.whitespace_kept", whitespace_kept),
    ("client-list.name_in_pieces", name_in_pieces),
    ("client-list.non_utf8", non_utf8),
    ("client-list.sorted", sorted),
    ("client-list.server_log", server_log),
    ("client-list.client_output", client_output),
    ("client-list.client_indent", client_indent),
    ("client-list.client_long_list", client_long_list),
    ("client-list.client_name", client_name),
    ("client-list.client_order", client_order),
    ("client-list.client_empty_reply", client_empty_reply),
];

// ---------------------------------------------------------------------------
// The reply: a JSON object keyed by name, read in the order it was sent
// ---------------------------------------------------------------------------

/// A JSON object's members in the order they came, duplicates kept:
/// `serde_json::Value` would sort them and merge duplicate keys, hiding the
/// very mistakes these checks look for.
#[derive(Debug, Clone, PartialEq)]
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;

        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object keyed by client name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }

        deserializer.deserialize_map(PairsVisitor)
    }
}

impl Pairs {
    fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

/// A name as the report shows it: JSON string syntax, so quotes, newlines
/// and spaces at either end are visible.
fn quoted(name: &str) -> String {
    let text = Value::from(name).to_string();
    if text.len() > 80 {
        let cut = (0..=60)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}… ({} bytes)", &text[..cut], name.len())
    } else {
        text
    }
}

fn quoted_list(names: &[&str], max: usize) -> String {
    let mut shown: Vec<String> = names.iter().take(max).map(|name| quoted(name)).collect();
    if names.len() > max {
        shown.push(format!("… ({} in all)", names.len()));
    }
    format!("[{}]", shown.join(", "))
}

/// Parses a reply: a JSON object whose members are entries
/// `{"name": NAME, "address": "IP", "port": PORT}` keyed by their name.
fn parse_list(bytes: &[u8]) -> Result<Pairs, Failure> {
    let pairs: Pairs = serde_json::from_slice(bytes).map_err(|err| {
        Failure::new("the reply is not a valid JSON object")
            .expected("{\"NAME\": {\"name\": \"NAME\", \"address\": \"127.0.0.1\", \"port\": 41234}, …}")
            .actual(show::bytes(bytes, 300))
            .detail(format!("the JSON parser says: {err}"))
            .detail(if err.is_syntax() && bytes.contains(&b'\n') {
                "a raw newline inside a JSON string is invalid: build the reply with serde_json, which escapes it as \\n"
            } else {
                ""
            })
    })?;
    for (name, entry) in &pairs.0 {
        entry_problem(name, entry).map_or(Ok(()), |problem| {
            Err(Failure::new(format!(
                "the entry for {} is not as the contract says",
                quoted(name)
            ))
            .expected(format!(
                "{{\"name\": {}, \"address\": \"IP\" (a string), \"port\": PORT (a number)}}",
                quoted(name)
            ))
            .actual(show::bytes(entry.to_string().as_bytes(), 300))
            .detail(problem))
        })?;
    }
    Ok(pairs)
}

/// What is wrong with one entry, if anything.
fn entry_problem(name: &str, entry: &Value) -> Option<String> {
    let Some(object) = entry.as_object() else {
        return Some("the value under a name must be a JSON object".into());
    };
    match object.get("name") {
        Some(Value::String(inner)) if inner == name => {}
        Some(other) => {
            return Some(format!(
                "its \"name\" is {other}, not the name it is listed under"
            ));
        }
        None => return Some("it has no \"name\"".into()),
    }
    if !object.get("address").is_some_and(Value::is_string) {
        return Some("its \"address\" must be a string such as \"127.0.0.1\"".into());
    }
    if object
        .get("port")
        .and_then(Value::as_u64)
        .is_none_or(|port| u16::try_from(port).is_err())
    {
        return Some("its \"port\" must be a number from 0 to 65535".into());
    }
    None
}

// ---------------------------------------------------------------------------
// The grader's clients
// ---------------------------------------------------------------------------

/// One registration made by the grader.
#[derive(Debug)]
struct Registration {
    /// The grader's end of the connection: the address the server sees.
    local: SocketAddr,
    received: Vec<u8>,
    end: ReadEnd,
    write_error: Option<String>,
}

/// Connects, sends `name` as `plan` says, and reads the reply until the
/// server closes or `deadline` passes.
fn send_name(
    ctx: &Ctx,
    server: &mut Server,
    name: &[u8],
    plan: SendPlan,
    deadline: Instant,
) -> Result<Registration, Failure> {
    let stream = net::connect(server.addr, deadline).map_err(|f| server.explain(f))?;
    let local = stream
        .local_addr()
        .map_err(|err| Failure::new(format!("local_addr: {err}")))?;
    ctx.note_command(format!(
        "(grader) from {local}: send the name {} to {}, then half-close",
        show::bytes(name, 60),
        server.addr
    ));
    let exchange = net::exchange(&stream, name, plan, None, deadline);
    Ok(Registration {
        local,
        received: exchange.received,
        end: exchange.end,
        write_error: exchange.write_error,
    })
}

/// Registers `name` (sent as `plan` says) and returns the list the server
/// sent back, checking that the server closed the connection after it.
fn register_with(
    ctx: &Ctx,
    server: &mut Server,
    name: &str,
    plan: SendPlan,
) -> Result<(Pairs, SocketAddr), Failure> {
    let registration = send_name(ctx, server, name.as_bytes(), plan, ctx.within(5.0))?;
    let list = reply_list(&registration, name).map_err(|f| server.explain(f))?;
    Ok((list, registration.local))
}

/// [`register_with`] with the whole name at once.
fn register(ctx: &Ctx, server: &mut Server, name: &str) -> Result<(Pairs, SocketAddr), Failure> {
    register_with(ctx, server, name, SendPlan::ALL_THEN_CLOSE)
}

/// The list in a registration's reply, which must contain `name` with the
/// address and port the grader's client used.
fn reply_list(registration: &Registration, name: &str) -> Result<Pairs, Failure> {
    let what = format!("registering {}", quoted(name));
    match &registration.end {
        ReadEnd::Eof | ReadEnd::Enough => {}
        ReadEnd::Deadline if registration.received.is_empty() => {
            return Err(Failure::new(format!(
                "{what}: no reply, and the connection stayed open"
            ))
            .expected("the list as JSON, then the server shuts the connection down")
            .detail("the grader half-closed after the name: reading until end of stream tells the server the name is complete"));
        }
        ReadEnd::Deadline => {
            return Err(Failure::new(format!(
                "{what}: the server sent {} bytes but never closed the connection",
                registration.received.len()
            ))
            .expected("after the list, the server shuts the connection down (that is how the client knows the list is complete)")
            .actual(show::bytes(&registration.received, 200)));
        }
        ReadEnd::Error(err) if registration.received.is_empty() => {
            return Err(Failure::new(format!(
                "{what}: the connection failed before any reply: {err}"
            ))
            .detail(
                registration
                    .write_error
                    .as_deref()
                    .map_or(String::new(), |e| format!("sending the name failed: {e}")),
            ));
        }
        ReadEnd::Error(_) => {}
    }
    if registration.received.is_empty() {
        return Err(Failure::new(format!(
            "{what}: the server closed the connection without a reply"
        ))
        .expected("the list of clients as a JSON object"));
    }
    let list = parse_list(&registration.received).map_err(|f| {
        let summary = format!("{what}: {}", f.summary);
        Failure { summary, ..f }
    })?;
    expect_entry(&list, name, registration.local).map_err(|f| {
        f.detail(format!(
            "the names in the reply: {}",
            quoted_list(&list.names(), 10)
        ))
    })?;
    Ok(list)
}

/// `list` has `name` with the address and port of `local`.
fn expect_entry(list: &Pairs, name: &str, local: SocketAddr) -> CheckResult {
    let expected = json!({"name": name, "address": local.ip().to_string(), "port": local.port()});
    match list.get(name) {
        None => Err(Failure::new(format!(
            "{} is not in the list the server sent back",
            quoted(name)
        ))
        .expected(format!("an entry {}: {expected}", quoted(name)))),
        // Only the three keys the contract names are compared: a server may
        // add others.
        Some(entry)
            if ["name", "address", "port"]
                .iter()
                .any(|key| entry.get(key) != expected.get(key)) =>
        {
            Err(Failure::new(format!(
                "the entry for {} does not have the address and port the server saw",
                quoted(name)
            ))
            .expected(expected.to_string())
            .actual(entry.to_string())
            .detail(format!(
                "the grader's client connected from {local}: use the peer address `accept` returned"
            )))
        }
        Some(_) => Ok(()),
    }
}

/// `list` holds exactly `names` (in any order).
fn expect_names(list: &Pairs, names: &[&str], what: &str) -> CheckResult {
    let mut want: Vec<&str> = names.to_vec();
    want.sort_unstable();
    let mut got = list.names();
    got.sort_unstable();
    if want == got {
        return Ok(());
    }
    let missing: Vec<&str> = want.iter().filter(|n| !got.contains(n)).copied().collect();
    let extra: Vec<&str> = got.iter().filter(|n| !want.contains(n)).copied().collect();
    let mut failure = Failure::new(format!("{what}: the list does not hold the expected names"))
        .expected(quoted_list(&want, 12))
        .actual(quoted_list(&list.names(), 12));
    if !missing.is_empty() {
        failure = failure.detail(format!("missing: {}", quoted_list(&missing, 12)));
    }
    if !extra.is_empty() {
        failure = failure.detail(format!("not expected: {}", quoted_list(&extra, 12)));
    }
    if got.len() > want.len() && extra.is_empty() {
        failure = failure.detail("a name appears more than once");
    }
    Err(failure)
}

/// Sends a name the server must refuse, and checks that it did: no list in
/// reply, the connection closed, and one more `error:` log line than the
/// `errors_before` already printed. The caller then checks that the server
/// still serves others.
fn expect_refused(
    ctx: &Ctx,
    server: &mut Server,
    name: &[u8],
    why: &str,
    errors_before: usize,
) -> CheckResult {
    let registration = send_name(ctx, server, name, SendPlan::ALL_THEN_CLOSE, ctx.within(5.0))?;
    let what = format!("a name that {why} ({})", show::bytes(name, 60));
    if registration.end == ReadEnd::Deadline {
        return Err(server.explain(
            Failure::new(format!(
                "{what}: the server neither answered nor closed the connection"
            ))
            .expected("the server logs an `error:` line and closes the connection"),
        ));
    }
    if let Ok(list) = serde_json::from_slice::<Pairs>(&registration.received) {
        return Err(Failure::new(format!(
            "{what} was answered with a list, as if it were fine"
        ))
        .expected("no list: the server logs an `error:` line and closes the connection")
        .actual(show::bytes(&registration.received, 200))
        .detail(format!(
            "names in that list: {}",
            quoted_list(&list.names(), 8)
        )));
    }
    let logged = server.wait_for_lines_on_either(ctx.within(5.0), |lines| {
        (lines.iter().filter(|line| is_error_line(line)).count() > errors_before).then_some(())
    });
    if logged.is_none() {
        return Err(server.explain(
            Failure::new(format!("{what}: the server did not log an `error:` line"))
                .expected("a line starting with `error:` on stdout or stderr, saying why the name was refused")
                .actual(format!("stdout so far:\n{}", show::indent(&show::tail(&server.stdout(), 6), 4))),
        ));
    }
    Ok(())
}

fn is_error_line(line: &str) -> bool {
    line.trim_start().starts_with("error:")
}

/// After a refusal: the server still answers a valid client, and its list
/// holds exactly `names` plus that client.
fn still_serving(ctx: &Ctx, server: &mut Server, names: &[&str], refused: &str) -> CheckResult {
    let after = "still here after a refusal";
    let (list, _) = register(ctx, server, after).map_err(|f| Failure {
        summary: format!(
            "after refusing {refused}, the server no longer serves clients: {}",
            f.summary
        ),
        ..f
    })?;
    let mut all = names.to_vec();
    all.push(after);
    expect_names(&list, &all, &format!("after refusing {refused}"))
}

// ---------------------------------------------------------------------------
// Server checks
// ---------------------------------------------------------------------------

fn sees_itself(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let (list, _) = register(ctx, &mut server, "alice")?;
    expect_names(&list, &["alice"], "the first client of a fresh server")
}

/// How many clients register at once in [`many_at_once`].
const CROWD: usize = 200;

fn many_at_once(ctx: &Ctx) -> CheckResult {
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
    for name in &names {
        let stream = net::connect(server.addr, deadline).map_err(|f| {
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
        return Err(Failure::new(format!(
            "{} of the {CROWD} clients that registered at the same time are missing from the list",
            missing.len()
        ))
        .expected(format!("all {CROWD} names, each client got its reply"))
        .actual(format!("missing {}", quoted_list(&missing, 8)))
        .detail("updates were lost: two threads read the list, each added its name to its own copy, and the second write wiped out the first; change the shared map in place while holding its lock"));
    }
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("the last one");
    expect_names(&list, &all, "after 200 registrations")
}

fn silent_client(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let silent = net::connect(server.addr, ctx.deadline())?;
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
    if registration.received.is_empty() && registration.end == ReadEnd::Deadline {
        return Err(server.explain(
            Failure::new("while one client stayed connected without sending anything, another got no reply within a second")
                .expected("every connection is served by its own thread, so a silent client holds up only itself")
                .actual("no reply: the server was still busy with the silent client"),
        ));
    }
    reply_list(&registration, "not blocked").map_err(|f| server.explain(f))?;
    drop(silent);
    Ok(())
}

/// Polls the server's thread count until `done` says yes or `deadline`
/// passes; returns the last count.
fn wait_threads(
    pid: u32,
    deadline: Instant,
    done: impl Fn(usize) -> bool,
) -> Result<(usize, bool), Failure> {
    loop {
        let count = procfs::threads(pid)
            .map_err(|err| Failure::new(format!("reading /proc/{pid}/status: {err}")))?;
        if done(count) {
            return Ok((count, true));
        }
        if Instant::now() >= deadline {
            return Ok((count, false));
        }
        // /proc cannot be waited on: look again shortly.
        thread::sleep(Duration::from_millis(5));
    }
}

fn thread_per_connection(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    let pid = server.process.pid();
    let idle = procfs::threads(pid)
        .map_err(|err| Failure::new(format!("reading /proc/{pid}/status: {err}")))?;
    ctx.note_command(format!(
        "(grader) read Threads: in /proc/{pid}/status, open two connections that send nothing yet, read it again"
    ));
    // Both stay silent: reading a name blocks until its client half-closes,
    // so each holds on to its thread.
    let first = net::connect(server.addr, ctx.deadline())?;
    let second = net::connect(server.addr, ctx.deadline())?;
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

fn awkward_names(ctx: &Ctx) -> CheckResult {
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

fn duplicate_replaces(ctx: &Ctx) -> CheckResult {
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
    expect_entry(&list, "twice", second).map_err(|f| {
        f.detail(format!(
            "the first registration came from {first}, the second from {second}: the list must show the second"
        ))
    })
}

fn name_limit(ctx: &Ctx) -> CheckResult {
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
    still_serving(ctx, &mut server, &[&longest], "a 257-byte name")
}

fn name_limit_multibyte(ctx: &Ctx) -> CheckResult {
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
    .map_err(|f| f.detail("the limit is 256 bytes of UTF-8, not 256 characters"))?;
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

fn empty_name(ctx: &Ctx) -> CheckResult {
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

fn whitespace_kept(ctx: &Ctx) -> CheckResult {
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

fn name_in_pieces(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    // Three bytes at a time also splits the four-byte 🧩 between writes.
    let name = "piece by piece 🧩 name";
    let plan = SendPlan {
        piece: Some(3),
        pause: Duration::from_millis(5),
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

fn non_utf8(ctx: &Ctx) -> CheckResult {
    let mut server = ctx.server(SERVER)?;
    register(ctx, &mut server, "first")?;
    // "café crème" in Latin-1: é and è are single bytes that UTF-8 rejects.
    expect_refused(ctx, &mut server, b"caf\xe9 cr\xe8me", "is not UTF-8", 0)?;
    still_serving(ctx, &mut server, &["first"], "a name that is not UTF-8")
        .map_err(|f| f.detail("decode with `String::from_utf8` and refuse the name on error; a lossy decode registers a different name"))
}

fn sorted(ctx: &Ctx) -> CheckResult {
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
        let name: String = std::iter::repeat_with(|| rng.alphanumeric())
            .take(len)
            .collect();
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

fn server_log(ctx: &Ctx) -> CheckResult {
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

// ---------------------------------------------------------------------------
// Client checks: the graded client against a grader peer
// ---------------------------------------------------------------------------

/// What the grader's peer got from the client.
#[derive(Debug)]
struct PeerSaw {
    name: Vec<u8>,
    client: SocketAddr,
}

/// A grader server that follows the contract for one client: it reads the
/// name until the client half-closes, then sends a list holding `others`
/// and the client itself (sorted, as `BTreeMap` keeps it), in pieces of
/// `piece` bytes with `pause` between them, and shuts down.
///
/// What it read comes through the channel as soon as it has it, so a check
/// never waits for a client that crashed before connecting; the peer
/// itself gives up at the check's deadline.
fn list_peer(
    ctx: &Ctx,
    others: Vec<(String, u16)>,
    piece: usize,
    pause: Duration,
) -> Result<(Peer<()>, mpsc::Receiver<PeerSaw>), Failure> {
    let (sender, receiver) = mpsc::channel();
    let peer = Peer::serve_one(ctx.deadline(), move |mut stream: TcpStream| {
        let client = stream.peer_addr()?;
        let name = net::read_to_eof(&mut stream)?;
        let _ = sender.send(PeerSaw {
            name: name.clone(),
            client,
        });
        let mut list: BTreeMap<String, Value> = others
            .into_iter()
            .map(|(name, port)| {
                let entry = json!({"name": name, "address": "127.0.0.1", "port": port});
                (name, entry)
            })
            .collect();
        if let Ok(text) = String::from_utf8(name) {
            let entry =
                json!({"name": text, "address": client.ip().to_string(), "port": client.port()});
            list.insert(text, entry);
        }
        let reply = serde_json::to_vec(&list).map_err(io::Error::other)?;
        for (index, chunk) in reply.chunks(piece.max(1)).enumerate() {
            if index > 0 {
                thread::sleep(pause);
            }
            stream.write_all(chunk)?;
        }
        stream.shutdown(Shutdown::Write)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    Ok((peer, receiver))
}

/// A client run against a [`list_peer`]: what it printed, and the list the
/// peer sent it (in the peer's order).
#[derive(Debug)]
struct ClientRun {
    finished: Finished,
    sent: Pairs,
    printed: Pairs,
}

/// Runs the client with `args` after `HOST PORT` against a peer holding
/// `others`, and checks it printed exactly the list the peer sent, names in
/// the same order.
fn run_client(
    ctx: &Ctx,
    args: &[&str],
    others: Vec<(String, u16)>,
    piece: usize,
    pause: Duration,
) -> Result<ClientRun, Failure> {
    let (peer, saw) = list_peer(ctx, others.clone(), piece, pause)?;
    let port = peer.addr.port().to_string();
    let mut all_args = vec!["127.0.0.1", port.as_str()];
    all_args.extend_from_slice(args);
    let finished = ctx.run(&ctx.launch(CLIENT, all_args)?, 5.0)?;
    // The client has ended: whatever it sent has reached the peer already.
    let Ok(saw) = saw.recv_timeout(ctx.scaled(1.0)) else {
        return Err(Failure::new(format!(
            "{CLIENT} did not send a name to the grader's server"
        ))
        .expected(format!(
            "{CLIENT} connects to HOST PORT, sends the name, half-closes and reads the list"
        ))
        .actual(format!(
            "{}; stdout: {}",
            finished.describe(),
            show::bytes(&finished.stdout, 100)
        ))
        .detail(finished.stderr_detail()));
    };
    if finished.timed_out {
        return Err(Failure::new(format!("{CLIENT} did not finish: {}", finished.describe()))
            .expected(format!("{CLIENT} half-closes, reads the list until the server closes, prints it and exits"))
            .detail("the grader's server sends the list only once the client has shut down its sending side")
            .detail(finished.stderr_detail()));
    }
    let mut sent: BTreeMap<String, Value> = others
        .into_iter()
        .map(|(name, port)| {
            (
                name.clone(),
                json!({"name": name, "address": "127.0.0.1", "port": port}),
            )
        })
        .collect();
    let own = String::from_utf8_lossy(&saw.name).into_owned();
    sent.insert(
        own.clone(),
        json!({"name": own, "address": saw.client.ip().to_string(), "port": saw.client.port()}),
    );
    let reply_len = serde_json::to_vec(&sent).map_or(0, |reply| reply.len());
    let sent = Pairs(sent.into_iter().collect());
    let stdout = finished.stdout_text();
    let printed: Pairs = serde_json::from_str(stdout.trim()).map_err(|err| {
        Failure::new(format!("{CLIENT} did not print the list as one JSON object"))
            .expected("the server's reply, pretty-printed as JSON with four spaces of indentation, and nothing else on stdout")
            .actual(format!("{}, then {}", show::bytes(&finished.stdout, 300), finished.describe()))
            .detail(format!("the JSON parser says: {err}"))
            .detail(if reply_len > 1024 && err.is_eof() {
                "the JSON stops short: the reply was longer than 1024 bytes, and one read returns only what has arrived so far; read until the server closes"
            } else {
                ""
            })
            .detail(finished.stderr_detail())
    })?;
    if finished.code() != Some(0) {
        return Err(Failure::new(format!(
            "{CLIENT} printed the list but did not exit cleanly"
        ))
        .expected("exit code 0")
        .actual(finished.describe())
        .detail(finished.stderr_detail()));
    }
    Ok(ClientRun {
        finished,
        sent,
        printed,
    })
}

/// The printed list holds what the peer sent, names in the same order.
fn expect_same_list(run: &ClientRun) -> CheckResult {
    let sent_names = run.sent.names();
    let printed_names = run.printed.names();
    if sent_names != printed_names {
        let mut sorted_sent = sent_names.clone();
        sorted_sent.sort_unstable();
        let mut sorted_printed = printed_names.clone();
        sorted_printed.sort_unstable();
        let what = if sorted_sent == sorted_printed {
            "the client printed the names in another order than the server sent them"
        } else {
            "the client did not print the names the server sent"
        };
        return Err(Failure::new(what)
            .expected(quoted_list(&sent_names, 40))
            .actual(quoted_list(&printed_names, 40))
            .detail("keep the members in the order they arrived: deserialize into a Vec of pairs (a HashMap forgets the order, and changing it is not the client's job)"));
    }
    for ((name, sent), (_, printed)) in run.sent.0.iter().zip(&run.printed.0) {
        if sent != printed {
            return Err(
                Failure::new(format!("the client changed the entry for {}", quoted(name)))
                    .expected(sent.to_string())
                    .actual(printed.to_string()),
            );
        }
    }
    Ok(())
}

/// A few other clients, with made-up ports, for the peer's list.
fn some_others() -> Vec<(String, u16)> {
    vec![
        ("alice".into(), 40001),
        ("zoë".into(), 40002),
        ("Bob".into(), 40003),
    ]
}

/// The list as the snapshot shows it: four-space JSON, names in the order
/// printed, keys inside an entry sorted, port numbers redacted.
fn canonical(list: &Pairs) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    let ordered: Vec<(String, Value)> = list.0.clone();
    serde::Serializer::collect_map(&mut serializer, ordered).expect("serializing to memory");
    let text = String::from_utf8(out).expect("serde_json writes UTF-8");
    text.lines()
        .map(|line| match line.split_once("\"port\": ") {
            Some((head, rest)) => {
                let tail = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                format!("{head}\"port\": [PORT]{tail}")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn client_output(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, &[], some_others(), usize::MAX, Duration::ZERO)?;
    expect_same_list(&run)?;
    ctx.snapshot(&canonical(&run.printed))
}

/// What is wrong with the layout of pretty-printed `text`, if anything:
/// each line indented by four spaces per level of nesting, and one member
/// per line (as many lines as a pretty-printer makes for `value`).
fn layout_problem(text: &str, value: &Pairs) -> Option<String> {
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
    for (number, line) in lines.iter().enumerate() {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.starts_with('\t') {
            return Some(format!(
                "line {} is indented with a tab: {}",
                number + 1,
                show::bytes(line.as_bytes(), 80)
            ));
        }
        let closing = content.starts_with('}') || content.starts_with(']');
        let want = 4 * depth.saturating_sub(usize::from(closing));
        if !in_string && indent != want {
            return Some(format!(
                "line {} is indented by {indent} spaces where four per level makes {want}: {}",
                number + 1,
                show::bytes(line.as_bytes(), 80)
            ));
        }
        for c in content.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (false, _, '"') => in_string = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    let mut pretty = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut pretty);
    serde::Serializer::collect_map(&mut serializer, value.0.clone()).ok()?;
    let want_lines = String::from_utf8_lossy(&pretty).lines().count();
    if lines.len() != want_lines {
        return Some(format!(
            "the output has {} lines where a pretty-printer puts each member on its own line, {want_lines} lines",
            lines.len()
        ));
    }
    None
}

fn client_indent(ctx: &Ctx) -> CheckResult {
    let run = run_client(
        ctx,
        &["--name", "indented"],
        some_others(),
        usize::MAX,
        Duration::ZERO,
    )?;
    let text = run.finished.stdout_text();
    if let Some(problem) = layout_problem(&text, &run.printed) {
        return Err(
            Failure::new("the list is not pretty-printed with four spaces of indentation")
                .expected(
                    canonical(&run.sent)
                        .replace("[PORT]", "41234")
                        .lines()
                        .take(8)
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
                .actual(show::head(&text, 8))
                .detail(problem)
                .detail(
                    "serde_json's PrettyFormatter::with_indent(b\"    \") lays JSON out this way",
                ),
        );
    }
    Ok(())
}

fn client_long_list(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let others: Vec<(String, u16)> = (1..=60)
        .map(|i| (format!("long list member {i:02}"), rng.u16(1024..)))
        .collect();
    let run = run_client(ctx, &["--name", "reader"], others, 700, Duration::from_millis(20))
        .map_err(|f| f.detail("the reply was about 5 KB, sent in pieces of 700 bytes: a single read of 1024 bytes gets only the first piece"))?;
    expect_same_list(&run)
}

fn client_name(ctx: &Ctx) -> CheckResult {
    let name = "  Zoë \"zo\" 🐶  ";
    let run = run_client(
        ctx,
        &["--name", name],
        some_others(),
        usize::MAX,
        Duration::ZERO,
    )?;
    let own: Vec<&str> = run
        .sent
        .names()
        .into_iter()
        .filter(|n| !some_others().iter().any(|(other, _)| other == n))
        .collect();
    if own != [name] {
        let got = own.first().copied().unwrap_or("");
        return Err(Failure::new("the client did not send exactly the name it was given")
            .expected(show::bytes(name.as_bytes(), 80))
            .actual(show::bytes(got.as_bytes(), 80))
            .detail(show::first_difference(name.as_bytes(), got.as_bytes()).unwrap_or_default())
            .detail("send the bytes of --name as they are (no newline, no trimming), then half-close"));
    }
    expect_same_list(&run)
}

fn client_order(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let mut others: Vec<(String, u16)> = [
        "Zed", "adam", "Bea", "bea", "Émile", "emile", "zoë", "Zoë", "10", "9", "🐶",
    ]
    .iter()
    .map(|name| ((*name).to_owned(), rng.u16(1024..)))
    .collect();
    while others.len() < 30 {
        let name: String = std::iter::repeat_with(|| rng.alphanumeric())
            .take(6)
            .collect();
        if !others.iter().any(|(other, _)| *other == name) {
            others.push((name, rng.u16(1024..)));
        }
    }
    let run = run_client(
        ctx,
        &["--name", "orderly"],
        others,
        usize::MAX,
        Duration::ZERO,
    )?;
    expect_same_list(&run)
}

fn client_empty_reply(ctx: &Ctx) -> CheckResult {
    // This server reads the name and closes without a word, as a server
    // that refused the name would.
    let peer = Peer::serve_one(ctx.deadline(), |mut stream: TcpStream| {
        net::read_to_eof(&mut stream)?;
        stream.shutdown(Shutdown::Both)
    })
    .map_err(|err| Failure::new(format!("the grader could not start its server: {err}")))?;
    let port = peer.addr.port().to_string();
    let finished = ctx.run(
        &ctx.launch(CLIENT, ["127.0.0.1", port.as_str(), "--name", "refused"])?,
        5.0,
    )?;
    // Not joined: if the client never connected, the peer waits until the
    // check's deadline, and the check need not wait with it.
    drop(peer);
    let stderr = finished.stderr_text();
    let error_lines = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .count();
    let crashed = finished.crashed(|line: &str| line.starts_with("error: "));
    if finished.code() == Some(1) && error_lines == 1 && !crashed && finished.stdout.is_empty() {
        return Ok(());
    }
    Err(Failure::new(format!("{CLIENT} did not report an empty reply cleanly"))
        .expected("one line `error: …` on stderr saying the server sent nothing, nothing on stdout, exit code 1")
        .actual(finished.brief()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Pairs {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn pairs_keep_order_and_duplicates() {
        let list = pairs(r#"{"b": 1, "a": 2, "b": 3}"#);
        assert_eq!(list.names(), ["b", "a", "b"]);
    }

    #[test]
    fn entries_are_checked() {
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": "127.0.0.1", "port": 5})
            )
            .is_none()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "y", "address": "127.0.0.1", "port": 5})
            )
            .is_some()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": "127.0.0.1", "port": "5"})
            )
            .is_some()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": ["127.0.0.1"], "port": 5})
            )
            .is_some()
        );
    }

    #[test]
    fn four_space_layout_passes_and_others_fail() {
        let list = pairs(r#"{"a {": {"name": "a {", "port": 1}, "b": {"name": "b", "port": 2}}"#);
        let four = "{\n    \"a {\": {\n        \"name\": \"a {\",\n        \"port\": 1\n    },\n    \"b\": {\n        \"port\": 2,\n        \"name\": \"b\"\n    }\n}\n";
        assert_eq!(layout_problem(four, &list), None);
        let two = four.replace("    ", "  ");
        assert!(layout_problem(&two, &list).is_some());
        let compact = serde_json::to_string(&json!({"a": 1})).unwrap();
        assert!(layout_problem(&compact, &pairs(r#"{"a": {"name": "a"}}"#)).is_some());
    }

    #[test]
    fn canonical_redacts_ports() {
        let list = pairs(r#"{"a": {"port": 41234, "name": "a", "address": "127.0.0.1"}}"#);
        assert_eq!(
            canonical(&list),
            "{\n    \"a\": {\n        \"address\": \"127.0.0.1\",\n        \"name\": \"a\",\n        \"port\": [PORT]\n    }\n}"
        );
    }
}
