//! The grader's clients: registering a name with the graded server, reading
//! the reply, and what the server checks expect of it.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;

use crate::harness::net::{self, ReadEnd, SendPlan};
use crate::harness::{Ctx, Server, show};
use crate::outcome::{CheckResult, Failure};

use super::reply::{Pairs, parse_list, quoted, quoted_list};

/// One registration made by the grader.
#[derive(Debug)]
pub(super) struct Registration {
    /// The grader's end of the connection: the address the server sees.
    pub(super) local: SocketAddr,
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
    expect_entry(&list, name, registration.local).map_err(|f| {
        f.detail(format!(
            "the names in the reply: {}",
            quoted_list(&list.names(), 10)
        ))
    })?;
    Ok(list)
}

/// `list` has `name` with the address and port of `local`.
pub(super) fn expect_entry(list: &Pairs, name: &str, local: SocketAddr) -> CheckResult {
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
