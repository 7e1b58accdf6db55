//! Client checks: the graded client against a grader peer that follows
//! the contract, or one that answers strangely.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::net::conn::{Conn, TooMuch};
use crate::harness::net::{self, Peer};
use crate::harness::payload;
use crate::harness::process::Finished;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::reply::{Pairs, canonical, layout_problem, quoted, quoted_list};
use super::{CLIENT, MAX_NAME};

/// What the grader's peer got from the client.
#[derive(Debug)]
struct PeerSaw {
    name: Vec<u8>,
    client: SocketAddr,
    /// Whether the client sent more than a name can be.
    too_much: Option<TooMuch>,
    /// When the name ended: the client's half-close (or its exit).
    ended: Instant,
}

/// A grader server that follows the contract for one client: it reads the
/// name until the client half-closes, then sends a list holding `others`
/// and the client itself (sorted, as `BTreeMap` keeps it), in pieces of
/// `piece` bytes, each sent once the client has read the one before (so
/// that every read returns one piece, however loaded the machine), and
/// shuts down.
///
/// What it read comes through the channel as soon as it has it, so a check
/// never waits for a client that crashed before connecting; the peer
/// itself gives up at the check's deadline.
fn list_peer(
    ctx: &Ctx,
    others: Vec<(String, u16)>,
    piece: usize,
    reversed: bool,
) -> Result<(Peer<()>, mpsc::Receiver<PeerSaw>), Failure> {
    let (sender, receiver) = mpsc::channel();
    let deadline = ctx.deadline();
    let peer = Peer::serve_one(deadline, move |mut stream: Conn| {
        let client = stream.peer_addr()?;
        stream.expect_at_most(MAX_NAME as u64);
        let name = net::read_to_eof(&mut stream).inspect_err(|err| {
            let _ = sender.send(PeerSaw {
                name: Vec::new(),
                client,
                too_much: TooMuch::of(err).cloned(),
                ended: Instant::now(),
            });
        })?;
        let _ = sender.send(PeerSaw {
            name: name.clone(),
            client,
            too_much: None,
            ended: Instant::now(),
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
        let reply = in_order(list, reversed).into_bytes();
        for (index, chunk) in reply.chunks(piece.max(1)).enumerate() {
            if index > 0 {
                net::wait_until_read(&stream, deadline);
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
) -> Result<ClientRun, Failure> {
    run_client_in_order(ctx, args, others, piece, false)
}

/// The list as JSON, its members sorted by name (as the reference server
/// sends them) or in the reverse order: the contract asks a client to keep
/// the server's order, whatever it is.
fn in_order(list: BTreeMap<String, Value>, reversed: bool) -> String {
    let mut members: Vec<String> = list
        .iter()
        .map(|(name, entry)| format!("{}:{entry}", Value::String(name.clone())))
        .collect();
    if reversed {
        members.reverse();
    }
    format!("{{{}}}", members.join(","))
}

/// `failure`, for a client the grader had to stop, explained by when its
/// name ended (`ended`): only as the grader stopped it (its exit closed the
/// connection), not when it sent the name. It never half-closed: the server
/// waited for the rest of the name, the client for the list.
fn never_half_closed(ctx: &Ctx, failure: Failure, finished: &Finished, ended: Instant) -> Failure {
    if finished.exit_seen.saturating_duration_since(ended) >= ctx.scaled(0.5) {
        return failure;
    }
    failure
        .detail(format!(
            "the grader's server had the name, but its end (the client's half-close) came only \
             when the grader stopped {CLIENT}: it never shut down its sending side, so the \
             server waited for more of the name while the client waited for the list"
        ))
        .diagnosis(
            "After writing the name, call `stream.shutdown(Shutdown::Write)`: the end of stream is how the server knows the name is complete, and it answers only then. Then read the list to the end.",
            "#the-half-close-im-done-sending",
        )
}

/// [`run_client`], the peer's list in reverse order when `reversed`.
fn run_client_in_order(
    ctx: &Ctx,
    args: &[&str],
    others: Vec<(String, u16)>,
    piece: usize,
    reversed: bool,
) -> Result<ClientRun, Failure> {
    let (peer, saw) = list_peer(ctx, others.clone(), piece, reversed)?;
    let port = peer.addr.port().to_string();
    let mut all_args = vec!["127.0.0.1", port.as_str()];
    all_args.extend_from_slice(args);
    let finished = ctx.run(&ctx.launch(CLIENT, all_args)?, 5.0)?;
    // The client has ended: whatever it sent has reached the peer already.
    // An empty name is no name: the grader never asks for one.
    let saw = saw.recv_timeout(ctx.scaled(1.0)).ok();
    if let Some(too_much) = saw.as_ref().and_then(|saw| saw.too_much.clone()) {
        return Err(Failure::from(too_much)
            .expected(format!(
                "{CLIENT} sends the name it is given (at most {MAX_NAME} bytes), then half-closes"
            ))
            .actual(finished.describe())
            .detail(finished.stderr_detail()));
    }
    let Some(saw) = saw.filter(|saw| !saw.name.is_empty()) else {
        return Err(finished.sent_nothing(
            format!("{CLIENT} did not send a name to the grader's server"),
            format!("{CLIENT} connects to HOST PORT, sends the name, half-closes and reads the list"),
            "Send the name, half-close, then print the list the server sent back: the grader's servers note what they receive, and their lists vary.",
            "#step-4-the-client",
        ));
    };
    if finished.timed_out {
        let failure = Failure::new(format!("{CLIENT} did not finish: {}", finished.describe()))
            .expected(format!("{CLIENT} half-closes, reads the list until the server closes, prints it and exits"))
            .detail("the grader's server sends the list only once the client has shut down its sending side")
            .detail(finished.stderr_detail());
        return Err(never_half_closed(ctx, failure, &finished, saw.ended));
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
    let reply_len = in_order(sent.clone(), reversed).len();
    let mut sent: Vec<(String, Value)> = sent.into_iter().collect();
    if reversed {
        sent.reverse();
    }
    let sent = Pairs(sent);
    let stdout = finished.stdout_text();
    let printed = Pairs::parse(stdout.trim().as_bytes()).map_err(|err| {
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
        let reordered = sorted_sent == sorted_printed;
        let failure = Failure::new(if reordered {
            "the client printed the names in another order than the server sent them"
        } else {
            "the client did not print the names the server sent"
        })
        .expected(quoted_list(&sent_names, 40))
        .actual(quoted_list(&printed_names, 40))
        .detail("keep the members in the order they arrived: parse into a serde_json Map with its `preserve_order` feature on (a HashMap forgets the order, and changing it is not the client's job)");
        return Err(if reordered {
            failure.diagnosis(
                "Print the members in the order the server sent them: parse into a serde_json Map, which keeps that order with the `preserve_order` feature on, and do not sort.",
                "#printing-json-in-the-servers-order",
            )
        } else {
            failure
        });
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

/// A few other clients for the peer's list, with ports drawn from the
/// seed: only a client that read the list can print it.
fn some_others(ctx: &Ctx) -> Vec<(String, u16)> {
    let mut rng = ctx.rng();
    ["alice", "zoë", "Bob"]
        .into_iter()
        .map(|name| (name.to_owned(), rng.u16(1024..)))
        .collect()
}

pub(super) fn client_output(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, &[], some_others(ctx), usize::MAX)?;
    expect_same_list(&run)?;
    ctx.snapshot(&canonical(&run.printed))
}

pub(super) fn client_indent(ctx: &Ctx) -> CheckResult {
    let run = run_client(ctx, &["--name", "indented"], some_others(ctx), usize::MAX)?;
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
    expect_same_list(&run)
}

pub(super) fn client_long_list(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let others: Vec<(String, u16)> = (1..=60)
        .map(|i| (format!("long list member {i:02}"), rng.u16(1024..)))
        .collect();
    let run = run_client(ctx, &["--name", "reader"], others, 700)
        .map_err(|f| f.detail("the reply was about 5 KB, sent in pieces of 700 bytes, each once the client had read the one before: a single read of 1024 bytes gets only the first piece"))?;
    expect_same_list(&run)
}

pub(super) fn client_name(ctx: &Ctx) -> CheckResult {
    let name = "  Zoë \"zo\" 🐶  ";
    let run = run_client(ctx, &["--name", name], some_others(ctx), usize::MAX)?;
    let own: Vec<&str> = run
        .sent
        .names()
        .into_iter()
        .filter(|n| !some_others(ctx).iter().any(|(other, _)| other == n))
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

pub(super) fn client_order(ctx: &Ctx) -> CheckResult {
    let mut rng = ctx.rng();
    let mut others: Vec<(String, u16)> = [
        "Zed", "adam", "Bea", "bea", "Émile", "emile", "zoë", "Zoë", "10", "9", "🐶",
    ]
    .iter()
    .map(|name| ((*name).to_owned(), rng.u16(1024..)))
    .collect();
    while others.len() < 30 {
        let name = payload::alphanumeric(&mut rng, 6);
        if !others.iter().any(|(other, _)| *other == name) {
            others.push((name, rng.u16(1024..)));
        }
    }
    // Sorted, as the reference server sends it, a list would not show a
    // client that sorts it again by itself: this server sends it reversed.
    let run = run_client_in_order(ctx, &["--name", "orderly"], others, usize::MAX, true)?;
    expect_same_list(&run)
}

pub(super) fn client_empty_reply(ctx: &Ctx) -> CheckResult {
    // This server reads the name and closes without a word, as a server
    // that refused the name would.
    let peer = Peer::serve_one(ctx.deadline(), |mut stream: Conn| {
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
