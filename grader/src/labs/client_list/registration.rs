//! The grader's clients: registering a name with the graded server, reading
//! the reply, and what the server checks expect of it.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;

use crate::harness::net::{self, ReadEnd, SendPlan};
use crate::harness::observe::{procfs, sockdiag};
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::MAX_NAME;
use super::reply::{Pairs, parse_list, quoted, quoted_list};

/// What an entry whose address and port are the server's own comes down
/// to, whichever check registered it.
const PEER_ADDRESS: &str = "An entry's address and port are the client's: the peer address `accept` returned with the stream (`peer.ip().to_string()`, `peer.port()`), not the server's own end of the connection (`stream.local_addr()`).";

/// What an entry with the client's port but another address comes down to.
const PEER_IP: &str = "An entry's \"address\" is the client's IP address alone, as a string: `peer.ip().to_string()` of the peer address `accept` returned (no port, no host name).";

/// What a list sent on a connection that then stays open comes down to.
const SHUT_DOWN_AFTER_THE_LIST: &str = "After `write_all` of the list, shut the connection down (`stream.shutdown(Shutdown::Both)`): the client reads until end of stream, the only sign that the list is complete. Dropping the stream closes the connection only if no other handle on it (a `try_clone`) is left.";

/// What a name registered cut to the limit comes down to.
const CUT_NAME: &str = "Read at most 257 bytes (`Read::take(stream, 257)`): one byte over the limit is how you know a name is too long. A name of more than 256 bytes is refused, never cut down to 256.";

/// The handout section that says what an entry holds and how the server
/// replies.
const REGISTER_AND_REPLY: &str = "#step-2-register-and-reply";

/// One registration made by the grader.
#[derive(Debug)]
pub(super) struct Registration {
    /// The grader's end of the connection: the address the server sees.
    pub(super) local: SocketAddr,
    /// The server's end: the address the grader connected to.
    pub(super) server: SocketAddr,
    pub(super) received: Vec<u8>,
    pub(super) end: ReadEnd,
    pub(super) write_error: Option<String>,
}

/// Connects, sends `name` as `plan` says, and reads the reply until the
/// server closes or `deadline` passes.
pub(super) fn send_name(
    ctx: &Ctx,
    server: &mut Server,
    name: &[u8],
    plan: SendPlan,
    deadline: Instant,
) -> Result<Registration, Failure> {
    let stream = server.connect(deadline)?;
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
        server: server.addr,
        received: exchange.received,
        end: exchange.end,
        write_error: exchange.write_error,
    })
}

/// Registers `name` (sent as `plan` says) and returns the list the server
/// sent back, checking that the server closed the connection after it.
pub(super) fn register_with(
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
pub(super) fn register(
    ctx: &Ctx,
    server: &mut Server,
    name: &str,
) -> Result<(Pairs, SocketAddr), Failure> {
    register_with(ctx, server, name, SendPlan::ALL_THEN_CLOSE)
}

/// The list in a registration's reply, which must contain `name` with the
/// address and port the grader's client used.
pub(super) fn reply_list(registration: &Registration, name: &str) -> Result<Pairs, Failure> {
    let what = format!("registering {}", quoted(name));
    match &registration.end {
        ReadEnd::Eof | ReadEnd::Enough => {}
        ReadEnd::Deadline | ReadEnd::Stalled(_) if registration.received.is_empty() => {
            return Err(Failure::new(format!(
                "{what}: no reply, and the connection stayed open"
            ))
            .expected("the list as JSON, then the server shuts the connection down")
            .detail("the grader half-closed after the name: reading until end of stream tells the server the name is complete"));
        }
        ReadEnd::Deadline | ReadEnd::Stalled(_) => {
            let failure = Failure::new(format!(
                "{what}: the server sent {} bytes but never closed the connection",
                registration.received.len()
            ))
            .expected("after the list, the server shuts the connection down (that is how the client knows the list is complete)")
            .actual(show::bytes(&registration.received, 200));
            // A whole list came, and nothing after it: what is missing is
            // the end of stream, whatever the check. (A list cut short may
            // be a server stuck writing it.)
            return Err(if Pairs::parse(&registration.received).is_ok() {
                failure
                    .detail("the bytes that came are a whole JSON list: only the end of stream was missing")
                    .diagnosis(SHUT_DOWN_AFTER_THE_LIST, REGISTER_AND_REPLY)
            } else {
                failure
            });
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
        ReadEnd::TooMuch(too_much) => {
            return Err(Failure::new(format!(
                "{what}: {too_much}; the grader stopped reading there"
            ))
            .expected(
                "the list of clients as a JSON object, then the server shuts the connection down",
            )
            .actual(show::bytes(&registration.received, 200)));
        }
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
    expect_entry(&list, name, registration.local, registration.server).map_err(|f| {
        f.detail(format!(
            "the names in the reply: {}",
            quoted_list(&list.names(), 10)
        ))
    })?;
    Ok(list)
}

/// `list` has `name` with the address and port of `local`, the grader's
/// end of a connection to `server`.
pub(super) fn expect_entry(
    list: &Pairs,
    name: &str,
    local: SocketAddr,
    server: SocketAddr,
) -> CheckResult {
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
            let failure = Failure::new(format!(
                "the entry for {} does not have the address and port the server saw",
                quoted(name)
            ))
            .expected(expected.to_string())
            .actual(entry.to_string())
            .detail(format!(
                "the grader's client connected from {local}: use the peer address `accept` returned"
            ));
            Err(explain_address(failure, entry, local, server))
        }
        Some(_) => Ok(()),
    }
}

/// What a wrong address or port in an entry points at, when the entry
/// itself shows it: the server's own address and port, or the client's
/// port with another address. Either is the same mistake whichever check
/// registered the name. Another port may be an earlier registration's,
/// which only the check knows.
fn explain_address(
    failure: Failure,
    entry: &serde_json::Value,
    local: SocketAddr,
    server: SocketAddr,
) -> Failure {
    let port = entry.get("port").and_then(serde_json::Value::as_u64);
    let address = entry.get("address").and_then(serde_json::Value::as_str);
    if port == Some(u64::from(server.port())) {
        let own = if address == Some(server.ip().to_string().as_str()) {
            format!("{server} is the server's own address and port")
        } else {
            format!("{} is the server's own port", server.port())
        };
        return failure
            .detail(format!(
                "{own} (where the grader connected), not the client's ({local})"
            ))
            .diagnosis(PEER_ADDRESS, REGISTER_AND_REPLY);
    }
    if port == Some(u64::from(local.port())) {
        return failure.diagnosis(PEER_IP, REGISTER_AND_REPLY);
    }
    failure
}

/// `list` holds exactly `names` (in any order).
pub(super) fn expect_names(list: &Pairs, names: &[&str], what: &str) -> CheckResult {
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
pub(super) fn expect_refused(
    ctx: &Ctx,
    server: &mut Server,
    name: &[u8],
    why: &str,
    errors_before: usize,
) -> CheckResult {
    let registration = send_name(ctx, server, name, SendPlan::ALL_THEN_CLOSE, ctx.within(5.0))?;
    let what = format!("a name that {why} ({})", show::bytes(name, 60));
    if registration.end.gave_up() {
        return Err(server.explain(
            Failure::new(format!(
                "{what}: the server neither answered nor closed the connection"
            ))
            .expected("the server logs an `error:` line and closes the connection"),
        ));
    }
    if let Ok(list) = Pairs::parse(&registration.received) {
        let failure = Failure::new(format!(
            "{what} was answered with a list, as if it were fine"
        ))
        .expected("no list: the server logs an `error:` line and closes the connection")
        .actual(show::bytes(&registration.received, 200))
        .detail(format!(
            "names in that list: {}",
            quoted_list(&list.names(), 8)
        ));
        return Err(match registered_cut(&list, name, registration.local) {
            Some(cut) => failure
                .detail(format!(
                    "the list holds the name cut to its first {MAX_NAME} bytes, {}, registered from this very connection ({}): the server cut the name instead of refusing it",
                    quoted(cut),
                    registration.local
                ))
                .diagnosis(CUT_NAME, "#step-3-reading-the-name"),
            None => failure,
        });
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

/// The name `sent` cut to [`MAX_NAME`] bytes, when `list` holds it with
/// the port of `local`: the connection that sent the longer name.
fn registered_cut<'a>(list: &Pairs, sent: &'a [u8], local: SocketAddr) -> Option<&'a str> {
    let cut = std::str::from_utf8(sent.get(..MAX_NAME).filter(|_| sent.len() > MAX_NAME)?).ok()?;
    let port = list.get(cut)?.get("port")?.as_u64()?;
    (port == u64::from(local.port())).then_some(cut)
}

fn is_error_line(line: &str) -> bool {
    line.trim_start().starts_with("error:")
}

/// How much of a name that never ends the grader sends before it concludes
/// that the server reads it whole: far more than 257 bytes plus what the
/// socket buffers between them hold.
const ENDLESS_NAME: usize = 4 * 1024 * 1024;

/// A name that goes on and on, never half-closed: the server must stop
/// reading after 257 bytes, refuse it and close the connection, so that
/// the grader's writes fail (a reset, a broken pipe) long before
/// [`ENDLESS_NAME`]. A server that reads to the end before it checks the
/// length buffers whatever a client sends.
pub(super) fn expect_refused_before_the_end(ctx: &Ctx, server: &mut Server) -> CheckResult {
    ctx.note_command(format!(
        "(grader) connect to {} and send a name of `z`s without end, up to {}, without half-closing",
        server.addr,
        show::size(ENDLESS_NAME as u64)
    ));
    let stream = server.connect(ctx.deadline())?;
    let chunk = vec![b'z'; 64 * 1024];
    let deadline = ctx.within(5.0);
    let mut writer = &stream;
    let mut sent = 0;
    while sent < ENDLESS_NAME {
        match net::write_all_until(&mut writer, &chunk, deadline) {
            Ok(()) => sent += chunk.len(),
            // The server closed the connection: refused.
            Err(err) if err.kind() != std::io::ErrorKind::TimedOut => return Ok(()),
            Err(_) => {
                return Err(server.explain(
                    Failure::new(format!(
                        "a name sent without end stopped being read after {} of it, but the server neither refused it nor closed the connection within 5 s",
                        show::size(sent as u64)
                    ))
                    .expected("past 257 bytes, the server refuses the name (an `error:` log line) and closes the connection"),
                ));
            }
        }
    }
    Err(server.explain(
        Failure::new(format!(
            "the server read {} of a name that never ended, and went on waiting for its end",
            show::size(sent as u64)
        ))
        .expected("the server stops reading after 257 bytes, refuses the name and closes the connection: a client cannot make it buffer more")
        .diagnosis(
            "Read the name through `Read::take(stream, 257)`: 257 bytes are enough to know it is too long, and then the server refuses it without waiting for the client to finish. `read_to_end` on the stream itself buffers whatever the client sends.",
            "#step-3-reading-the-name",
        ),
    ))
}

/// Waits, until `deadline` at most, for the server to take up a client
/// that just connected: its listen queue is empty and every thread of it
/// sleeps (the connection's own thread, as the accept loop, waits for its
/// client). Whatever the server does first with a connection (take a lock,
/// read) is then done before the grader's next client comes, whichever
/// thread the kernel would have run first.
pub(super) fn until_taken_up(server: &Server, deadline: Instant) {
    let (pid, port) = (server.process.pid(), server.addr.port());
    procfs::watch_until(deadline, || {
        sockdiag::accept_queue(port).is_ok_and(|queued| queued.unwrap_or(0) == 0)
            && procfs::thread_stats(pid)
                .is_ok_and(|threads| threads.iter().all(|(_, stat)| stat.state == 'S'))
    });
}

/// After a refusal: the server still answers a valid client, and its list
/// holds exactly `names` plus that client.
pub(super) fn still_serving(
    ctx: &Ctx,
    server: &mut Server,
    names: &[&str],
    refused: &str,
) -> CheckResult {
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
