//! The framing check: the grader's driver (`grader/framing/tests/driver.rs`),
//! built against the graded crate's library, runs as a graded program; the
//! grader sends it seeded calls (`framing_cases`) on stdin and reads what
//! the library returned, as data, on descriptor 3, a pipe only the driver
//! and the grader hold. The grader judges every answer against its own
//! knowledge of the protocol.
//!
//! Nothing the process prints counts: a library may print what it likes on
//! stdout and stderr, including a test harness's verdict, and earns only
//! what its answers earn. A call that panics costs that call (the driver
//! catches the panic); a call that ends or hangs the driver costs that call,
//! and the driver is started again for the calls after it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::framing_cases::{self, Call, Case};
use super::framing_judge;
use crate::harness::process::{Finished, Launch, Process};
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

/// How long one run of the driver may take, at `--time-scale 1`: the
/// reference answers every call in milliseconds.
const RUN_SECONDS: f64 = 10.0;

/// How many runs may hang before the calls left are given up.
const MAX_HUNG_RUNS: usize = 2;

/// How many failed cases the report lists one by one.
const LISTED: usize = 8;

/// What the driver gave for one call.
#[derive(Debug, Clone)]
enum Answer {
    /// A line it wrote on descriptor 3, parsed.
    Given(Value),
    /// Not a JSON line.
    Garbled(String),
    /// Nothing: the driver ended, or was stopped, during this call.
    Lost(String),
    /// Never asked: too many runs hung, or the check ran out of time.
    NotRun(String),
}

/// Runs the grader's driver against the graded crate's library, and judges
/// its answers to the seeded cases.
pub(super) fn framing_tests(ctx: &Ctx) -> CheckResult {
    let Some(tests) = ctx.binaries().tests.clone() else {
        return Err(ctx.skip(format!(
            "not applicable: {} holds executables, not a cargo crate with the framing library",
            ctx.binaries().origin
        )));
    };
    let executable = tests.map_err(|message| {
        Failure::new(format!(
            "the grader's framing driver does not compile against your library: keep the public API of src/lib.rs as the stub declares it\n{}",
            show::tail(&message, 30)
        ))
    })?;
    let mut launch = Launch::new(executable, Vec::<String>::new());
    launch.shown_as = ctx.binaries().shown.get("grader-tests").cloned();
    launch.grant = ctx.binaries().grant.clone();
    launch.output_cap = ctx.spec().output_cap();
    launch.piped_stdin = true;
    launch.answers = true;
    ctx.note_command(format!("{} < calls 3> answers", launch.command_line()));
    let cases = framing_cases::cases(&mut ctx.rng());
    let calls: Vec<(&Case, &Call)> = cases
        .iter()
        .flat_map(|case| case.calls.iter().map(move |call| (case, call)))
        .collect();
    let (answers, runs) = ask(ctx, &launch, &calls);
    judge(&cases, &answers, &runs)
}

/// Asks the driver every call, starting it again after a call that ended
/// it; returns an answer per call, and the runs that ended early.
fn ask(
    ctx: &Ctx,
    launch: &Launch,
    calls: &[(&Case, &Call)],
) -> (Vec<Answer>, Vec<(String, Finished)>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(calls.len());
    let mut ended = Vec::new();
    let mut hung = 0;
    while answers.len() < calls.len() {
        if hung >= MAX_HUNG_RUNS || Instant::now() >= ctx.deadline() {
            let why = if hung >= MAX_HUNG_RUNS {
                format!("not run: the driver hung {hung} times before this call")
            } else {
                "not run: the check's time ran out".to_owned()
            };
            answers.resize(calls.len(), Answer::NotRun(why));
            break;
        }
        let pending = &calls[answers.len()..];
        let (given, finished) = match run(ctx, launch, pending) {
            Ok(run) => run,
            Err(err) => {
                let why = format!("not run: the driver could not start: {err}");
                answers.resize(calls.len(), Answer::NotRun(why));
                break;
            }
        };
        let complete = given.len() >= pending.len();
        answers.extend(given.into_iter().take(pending.len()));
        if complete {
            break;
        }
        // The driver answers in order, each answer as soon as it is known:
        // the first call without one ended the run.
        if finished.timed_out {
            hung += 1;
        }
        let how = finished.describe();
        let (case, call) = calls[answers.len()];
        let during = format!("`{}` of case \"{}\"", call_name(call), case.name);
        answers.push(Answer::Lost(if finished.timed_out {
            format!("no answer: the call did not return ({how})")
        } else {
            format!("no answer: the driver ended during this call ({how})")
        }));
        ended.push((during, finished));
    }
    (answers, ended)
}

/// One run of the driver on `calls`: the answers it wrote, and how it ended.
fn run(
    ctx: &Ctx,
    launch: &Launch,
    calls: &[(&Case, &Call)],
) -> std::io::Result<(Vec<Answer>, Finished)> {
    let mut input = String::new();
    for (_, call) in calls {
        input.push_str(&call.request.to_string());
        input.push('\n');
    }
    let mut process = Process::spawn(launch, Arc::clone(ctx.registry()))?;
    let channel = Arc::clone(process.answers().expect("launched with answers"));
    if let Some(mut stdin) = process.take_stdin() {
        // On a thread of its own: the driver reads all its calls before it
        // makes one, but a pipe holds only so much.
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    let finished = process.finish(ctx.within(RUN_SECONDS));
    channel.wait_closed(Instant::now() + Duration::from_secs(1));
    let bytes = channel.bytes();
    // Only whole lines: a line cut short by the end of the run, or by the
    // capture's cap, is no answer.
    let whole = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    let answers = bytes[..whole]
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| match serde_json::from_slice::<Value>(line) {
            Ok(value) => Answer::Given(value),
            Err(_) => Answer::Garbled(show::bytes(line, 200)),
        })
        .collect();
    Ok((answers, finished))
}

/// The library function a call makes, as the report names it.
fn call_name(call: &Call) -> &'static str {
    match call.request["call"].as_str() {
        Some("encode") => "Message::encode",
        Some("header_length") => "header_length",
        Some("check") => "check",
        Some("decode") => "check, then parse",
        Some("request") => "Request::from_message",
        _ => "a call",
    }
}

/// One failed case: its first wrong call, and how many of its calls were.
struct Wrong<'a> {
    case: &'a Case,
    call: &'a Call,
    expected: String,
    actual: String,
    calls_wrong: usize,
}

fn judge(cases: &[Case], answers: &[Answer], ended: &[(String, Finished)]) -> CheckResult {
    let mut answers = answers.iter();
    let mut wrong = Vec::new();
    for case in cases {
        let mut first = None;
        let mut calls_wrong = 0;
        for call in &case.calls {
            let answer = answers
                .next()
                .cloned()
                .unwrap_or_else(|| Answer::NotRun("not run".into()));
            let verdict = match answer {
                Answer::Given(value) => framing_judge::judge(&call.expect, &value),
                Answer::Garbled(line) => Err((
                    framing_judge::shown_expected(&call.expect),
                    format!("not an answer of the driver's: {line}"),
                )),
                Answer::Lost(why) | Answer::NotRun(why) => {
                    Err((framing_judge::shown_expected(&call.expect), why))
                }
            };
            if let Err((expected, actual)) = verdict {
                calls_wrong += 1;
                first.get_or_insert((call, expected, actual));
            }
        }
        if let Some((call, expected, actual)) = first {
            wrong.push(Wrong {
                case,
                call,
                expected,
                actual,
                calls_wrong,
            });
        }
    }
    let Some(first) = wrong.first() else {
        return Ok(());
    };
    let listed: Vec<String> = wrong
        .iter()
        .skip(1)
        .take(LISTED)
        .map(|wrong| {
            let more = if wrong.case.calls.len() > 1 {
                format!(
                    " ({} of its {} calls wrong)",
                    wrong.calls_wrong,
                    wrong.case.calls.len()
                )
            } else {
                String::new()
            };
            format!(
                "✗ {} (handout: {}){more}\n    call:     {}\n    expected: {}\n    actual:   {}",
                wrong.case.name, wrong.case.section, wrong.call.shown, wrong.expected, wrong.actual
            )
        })
        .collect();
    let mut failure = Failure::new(format!(
        "{} of the grader's {} framing cases failed; the first: {} (handout: {})",
        wrong.len(),
        cases.len(),
        first.case.name,
        first.case.section
    ))
    .expected(first.expected.clone())
    .actual(first.actual.clone())
    .diagnosis(
        "Fix the first failing case first: the same cases are the tests at the bottom of src/lib.rs (`cargo test -p app -- --include-ignored`), with the grader's own values.",
        first.case.section,
    )
    .detail(format!("call: {}", first.call.shown));
    if first.calls_wrong > 1 {
        failure = failure.detail(format!(
            "({} of the case's {} calls were wrong; this is the first)",
            first.calls_wrong,
            first.case.calls.len()
        ));
    }
    if !listed.is_empty() {
        failure = failure.detail(format!("the other failed cases:\n{}", listed.join("\n")));
    }
    if wrong.len() > LISTED + 1 {
        failure = failure.detail(format!("… and {} more", wrong.len() - LISTED - 1));
    }
    if let Some((call, finished)) = ended.first() {
        failure = failure
            .detail(format!(
                "the driver ended {} time(s) without answering, first in {call}: {}; it was started again for the calls after each",
                ended.len(),
                finished.describe()
            ))
            .detail(finished.stderr_detail());
    }
    Err(failure)
}
