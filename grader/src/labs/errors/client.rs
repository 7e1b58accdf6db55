//! The `socket-errors` checks: a request that succeeds, then each stage
//! made to fail on purpose, timeouts, usage and the error messages.

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::net::{FullBacklog, Peer, RefusingPort};
use crate::harness::observe::stall;
use crate::harness::observe::{procfs, sockdiag};
use crate::harness::process::{Finished, Launch};
use crate::harness::snapshot::redact_after;
use crate::harness::{Ctx, show};
use crate::outcome::{CheckResult, Failure};

use super::support::{
    Request, client, expect_request_sent, expect_stage, grader_error, outputs, random_path,
    random_reply, read_request, replying_peer, silent_peer, stage_line, start_peer,
};
use super::{BIND_FAILED, CLIENT, CONNECT, CREATE, MARGIN, QUICK, RECEIVE, RESOLVE, SEND, SERVER};

pub(super) fn success(ctx: &Ctx) -> CheckResult {
    let reply = random_reply(ctx, 48 * 1024);
    let peer = replying_peer(ctx, reply.clone())?;
    let finished = ctx.run(
        &client(ctx, "127.0.0.1", peer.addr.port(), "/index.html", &[])?,
        QUICK,
    )?;
    let request = peer.join().unwrap_or_default();
    let seed = format!("the reply came from seed {}", ctx.seed());
    expect_request_sent(&request, "/index.html", &finished)?;
    if finished.code() == Some(0) && finished.stdout == reply {
        return Ok(());
    }
    let mut failure = Failure::new(format!(
        "{CLIENT} did not copy the server's {} byte binary reply to stdout exactly",
        reply.len()
    ))
    .expected("every byte of the reply on stdout, nothing else, then exit code 0")
    .actual(format!(
        "{} bytes on stdout, {}",
        finished.stdout.len(),
        finished.describe()
    ));
    if let Some(difference) = show::first_difference(&reply, &finished.stdout) {
        failure = failure.detail(difference);
    }
    if !finished.stderr.is_empty() {
        failure = failure.detail(format!(
            "stderr:\n{}",
            show::indent(&show::tail(&finished.stderr_text(), 6), 4)
        ));
    }
    Err(failure.detail(seed))
}

pub(super) fn request_line(ctx: &Ctx) -> CheckResult {
    let path = random_path(ctx);
    let peer = replying_peer(ctx, b"HTTP/1.0 200 OK\r\n\r\nhello\n".to_vec())?;
    let finished = ctx.run(
        &client(ctx, "127.0.0.1", peer.addr.port(), &path, &[])?,
        QUICK,
    )?;
    let request = peer.join().unwrap_or_default();
    if request.too_much.is_some() {
        return expect_request_sent(&request, &path, &finished);
    }
    let expected = format!("GET {path} HTTP/1.0\r\n\r\n");
    let Some(difference) = show::first_difference(expected.as_bytes(), &request.bytes) else {
        return Ok(());
    };
    let failure = Failure::new(format!(
        "the request {CLIENT} sent is not exactly `GET PATH HTTP/1.0` and a blank line"
    ))
    .expected(show::bytes(expected.as_bytes(), 200))
    .actual(show::bytes(&request.bytes, 200))
    .detail(difference)
    .detail(format!("{CLIENT}: {}", finished.describe()));
    let trimmed = format!("GET {} HTTP/1.0\r\n\r\n", path.trim());
    if request.bytes == trimmed.as_bytes() {
        return Err(failure.detail(
            "the path lost the space at its end: PATH goes out exactly as --file gave it, without trimming",
        ));
    }
    Err(failure)
}

pub(super) fn socket_create(ctx: &Ctx) -> CheckResult {
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let launch =
        client(ctx, "127.0.0.1", refusing.addr.port(), "/", &[])?.fail_socket_calls(libc::EMFILE);
    ctx.note_command(
        "(grader) the next program runs under a seccomp filter: socket() fails with EMFILE",
    );
    let process = ctx.spawn(&launch).map_err(|failure| {
        failure.detail(
            "the grader makes socket() fail with a seccomp filter; this system refused it \
             (a grader limitation, not your bug)",
        )
    })?;
    let finished = process.finish(ctx.within(QUICK));
    expect_stage(
        &finished,
        CREATE,
        "with socket() failing (EMFILE: too many open files)",
    )
}

pub(super) fn resolve(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out.
    let _patient = stall::patient();
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let launch = client(ctx, "nosuchhost.invalid", refusing.addr.port(), "/", &[])?;
    let finished = ctx.run(&launch, QUICK)?;
    expect_stage(
        &finished,
        RESOLVE,
        "with --host nosuchhost.invalid (a name that never resolves)",
    )?;
    // An address that is IPv6 only: the socket is IPv4, made before the
    // host is resolved, so there is no address to connect it to.
    let launch = client(ctx, "::1", refusing.addr.port(), "/", &[])?;
    let finished = ctx.run(&launch, QUICK)?;
    expect_stage(
        &finished,
        RESOLVE,
        "with --host ::1 (IPv6 only: no IPv4 address to connect the IPv4 socket to)",
    )
    .map_err(|failure| {
        failure.detail(
            "keep the first IPv4 address among those the host resolves to; none at all is an address error (connecting the IPv4 socket to ::1 fails at the connect stage instead)",
        )
    })
}

pub(super) fn refused(ctx: &Ctx) -> CheckResult {
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let launch = client(ctx, "127.0.0.1", refusing.addr.port(), "/", &[])?;
    let finished = ctx.run(&launch, QUICK)?;
    expect_stage(
        &finished,
        CONNECT,
        "with a port where nothing listens (connection refused)",
    )
}

/// Runs the client against a listener whose queue is full, with `--timeout
/// timeout`, and checks it gives up at the connect stage no later than the
/// timeout plus a margin.
fn hanging_connect(ctx: &Ctx, timeout: &str) -> CheckResult {
    let seconds: f64 = timeout.parse().expect("a timeout the grader chose");
    let full = FullBacklog::new(ctx.within(5.0))
        .map_err(|err| grader_error("fill a listener's accept queue", err))?;
    let launch = client(
        ctx,
        "127.0.0.1",
        full.addr.port(),
        "/",
        &["--timeout", timeout],
    )?;
    let limit = seconds + MARGIN;
    let mut process = ctx.spawn(&launch)?;
    let deadline = ctx.within(limit + 1.0);
    // Still running past its timeout: is it still in `connect`? Its socket
    // to the full listener is then in SYN_SENT, waiting for an answer.
    let connecting = process.wait_until(deadline).is_none() && syn_sent_to(full.addr);
    let finished = process.finish(deadline);
    let situation = format!(
        "with --timeout {timeout} against a listener whose accept queue is full (connect gets no answer)"
    );
    expect_stage(&finished, CONNECT, &situation).map_err(|failure| {
        if connecting {
            failure
                .detail(format!(
                    "when the grader stopped it, its connection to {} was still in SYN_SENT: `connect` was waiting for an answer, with no timeout of its own",
                    full.addr
                ))
                .diagnosis(
                    "Connect with `socket.connect_timeout(&addr.into(), timeout)`: a plain `connect` that gets no answer waits for the kernel to give up, which takes minutes.",
                    "#step-3-connect-with-a-timeout",
                )
        } else {
            failure
        }
    })?;
    check_elapsed(ctx, &finished, seconds)
}

/// Whether a socket of the grade's namespace is connecting to `addr` and
/// waits for its answer (TCP state SYN_SENT).
fn syn_sent_to(addr: std::net::SocketAddr) -> bool {
    const SYN_SENT: u8 = 0x02;
    let remote = procfs::proc_net_address(addr);
    procfs::tcp_sockets().is_ok_and(|sockets| {
        sockets
            .iter()
            .any(|socket| socket.state == SYN_SENT && socket.remote_address == remote)
    })
}

/// The program ended no sooner than its timeout allows and within `seconds`
/// plus the margin. Start-up only adds to the elapsed time, so the lower
/// bound is sound too: it catches a timeout that is a fixed value.
fn check_elapsed(ctx: &Ctx, finished: &Finished, seconds: f64) -> CheckResult {
    let elapsed = finished.elapsed.as_secs_f64();
    // Timers may fire a little early, never by a tenth.
    let earliest = seconds * 0.9;
    let latest = seconds + ctx.scaled(MARGIN).as_secs_f64();
    if (earliest..=latest).contains(&elapsed) {
        return Ok(());
    }
    let (when, why) = if elapsed < earliest {
        (
            "sooner than",
            "too early: is the timeout a fixed value instead of the one given?",
        )
    } else {
        (
            "later than",
            "too late: is --timeout parsed but not used for this step?",
        )
    };
    Err(Failure::new(format!(
        "{CLIENT} gave up after {elapsed:.2} s, {when} its --timeout of {seconds} s allows"
    ))
    .expected(format!(
        "it gives up after about {seconds} s (between {earliest:.2} and {latest:.1} s, start-up included)"
    ))
    .actual(finished.describe())
    .detail(why))
}

pub(super) fn connect_timeout(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out. A
    // necessary wait, not a fixed one: the contract is that the client
    // gives up after `--timeout` (1.5 s), and only the timer firing, seen
    // when the client reports and exits, proves it was honoured; nothing
    // observable earlier tells a 1.5 s timer from a longer one, or from none.
    let _patient = stall::patient();
    // Not the default and not a whole number: a fixed or whole-second
    // timeout shows.
    hanging_connect(ctx, "1.5")
}

pub(super) fn recv_timeout(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out. A
    // necessary wait (the contract's `--timeout 1`): see `connect_timeout`.
    let _patient = stall::patient();
    let (peer, _, silent) = silent_peer(ctx, Duration::ZERO, b"")?;
    let launch = client(ctx, "127.0.0.1", peer.addr.port(), "/", &["--timeout", "1"])?;
    let finished = ctx.run(&launch, 1.0 + MARGIN + 1.0)?;
    drop(silent);
    let request = peer.join().unwrap_or_default();
    expect_request_sent(&request, "/", &finished)?;
    expect_stage(
        &finished,
        RECEIVE,
        "with --timeout 1 against a server that accepts, reads the request and never answers",
    )?;
    check_elapsed(ctx, &finished, 1.0)?;
    // The cause says what happened, a timeout, not EAGAIN's words
    // ("Resource temporarily unavailable"), which is how the read reports it.
    let eagain = std::io::Error::from_raw_os_error(libc::EAGAIN).to_string();
    let eagain = eagain
        .split(" (os error")
        .next()
        .unwrap_or(&eagain)
        .to_ascii_lowercase();
    if !stage_line(&finished, RECEIVE)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains(&eagain)
    {
        return Ok(());
    }
    Err(Failure::new(
        "the receive timeout is reported in EAGAIN's words, which do not say that the wait ran out",
    )
    .expected("`Error receiving data: ` and a cause that says it timed out, e.g. `no data for 1 s`")
    .actual(outputs(&finished)))
}

/// How long the resetting peer gives a client to half-close after its
/// request before it resets the connection, in seconds (scaled), unless it
/// sees the client asleep in its receive first.
const HALF_CLOSE_GRACE: f64 = 0.5;

/// How often the resetting peer looks at the client while it waits.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// A peer that reads the request, sends the first part of a reply
/// (`partial`) and resets the connection (SO_LINGER 0 makes `close` send
/// RST instead of FIN). A client that half-closes after
/// its request (allowed; lab 1 teaches it) is given the time to do so
/// first, so that the reset always meets it in its receive stage: the peer
/// resets at the earliest evidence that the client is there, its end of
/// stream or more bytes arriving, or the client asleep in a receive on
/// this connection ([`stall::receiving_on`]: it will not half-close before
/// it hears from the peer), and otherwise once the grace has passed.
fn resetting_peer(ctx: &Ctx, partial: Vec<u8>) -> Result<Peer<Request>, Failure> {
    let grace = ctx.scaled(HALF_CLOSE_GRACE);
    let deadline = ctx.deadline();
    start_peer(ctx, move |mut stream| {
        let request = read_request(&mut stream);
        // The client waits for the reset while the grader waits its grace.
        let _patient = stall::patient();
        let until = Instant::now() + grace;
        let client = stream.peer_addr()?;
        let me = stream.local_addr()?;
        std::io::Write::write_all(&mut &stream, &partial)?;
        // A reset throws away what was not sent yet: the part of the reply
        // must have reached the client's kernel (acknowledged) first.
        procfs::watch_until(deadline, || {
            sockdiag::tcp_socket(me, client)
                .is_ok_and(|socket| socket.is_none_or(|socket| socket.tx_queue == 0))
        });
        let mut rest = [0; 64];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stream.set_read_timeout(Some(left.min(LOOK_EVERY)))?;
            match stream.read(&mut rest) {
                // End of stream or more bytes: the client is past its
                // sending, reset either way.
                Ok(_) => break,
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            if stall::receiving_on(client, me) {
                break;
            }
        }
        stream.reset()?;
        Ok(request)
    })
}

pub(super) fn reset(ctx: &Ctx) -> CheckResult {
    // It ends its line, so that an error line after it on stdout is a
    // line of its own (the stage is read from lines).
    let partial = [
        b"HTTP/1.0 200 OK\r\n\r\nthe first part of a reply, cut short by a reset: ".as_slice(),
        &random_reply(ctx, 64),
        b"\n",
    ]
    .concat();
    let peer = resetting_peer(ctx, partial.clone())?;
    let launch = client(ctx, "127.0.0.1", peer.addr.port(), "/", &[])?;
    let finished = ctx.run(&launch, QUICK)?;
    let request = peer.join().unwrap_or_default();
    expect_request_sent(&request, "/", &finished)?;
    expect_stage(
        &finished,
        RECEIVE,
        "against a server that reads the request, then resets the connection",
    )
    .map_err(|failure| {
        if finished.code() == Some(0) {
            failure.detail("a reset is an error, not the end of the reply: only a read of 0 bytes means the server closed normally")
        } else {
            failure
        }
    })?;
    // The cause says what happened: a reset, not a timeout. Its line may
    // be on either stream: which one is `stderr_not_stdout`'s business, and
    // a line on stdout costs that check, not this one too.
    if !stage_line(&finished, RECEIVE)
        .is_some_and(|line| line.to_ascii_lowercase().contains("reset"))
    {
        return Err(Failure::new(
            "against a server that resets the connection, the receive error does not say it was reset",
        )
        .expected("`Error receiving data: ` and the error the read returned, which names the reset (`Connection reset by peer`)")
        .actual(outputs(&finished)));
    }
    // What arrived before the reset is part of the reply: it is on stdout,
    // byte for byte (an error line may follow it there: that one costs
    // `stderr_not_stdout`).
    if finished.stdout.starts_with(&partial) {
        return Ok(());
    }
    let mut failure = Failure::new(format!(
        "the {} bytes the server sent before it reset the connection are not on stdout",
        partial.len()
    ))
    .expected("the part of the reply that arrived, byte for byte on stdout, then the receive error")
    .actual(format!("{} bytes on stdout", finished.stdout.len()));
    if let Some(difference) = show::first_difference(&partial, &finished.stdout) {
        failure = failure.detail(difference);
    }
    let hint = if !finished.stdout.is_empty() && partial.starts_with(&finished.stdout) {
        // The beginning is there, the end is not: written, never flushed.
        "The reply is there up to a point, then stops: what was still in stdout's buffer was lost when the program exited. Flush stdout before you exit on an error (`std::process::exit` does not flush what `print!` buffered; returning from `main` does)."
    } else {
        "Write each piece to stdout as soon as `read` returns it (`&buffer[..n]`): a reply cut short by an error is still shown up to where it stopped. Reading everything first (`read_to_end`) and printing at the end loses it all when a read fails."
    };
    Err(failure.diagnosis(hint, "#step-5-receive-the-reply"))
}

/// The `--timeout` of [`timeout_honoured`]: not a whole number, so that a
/// program that parses whole seconds only fails too.
pub(super) const ODD_TIMEOUT: f64 = 1.75;

/// How much longer than its timeout a program may take to give up and exit,
/// seen from its server (start-up excluded).
const EXIT_SLACK: f64 = 1.5;

/// How long `timeout_honoured`'s server waits before the first bytes of its
/// reply, as a fraction of the timeout: long enough that a deadline for the
/// whole reply shows, short enough not to lengthen the lab's floor much.
pub(super) const PAUSE_FRACTION: f64 = 0.25;

pub(super) fn timeout_honoured(ctx: &Ctx) -> CheckResult {
    // The program is meant to sleep on its timer here: wait it out. The
    // lab's floor, a necessary wait: the contract is that the client waits
    // `--timeout` (1.75 s here) for each read, no less (90% of it) and not
    // much more, so the check cannot end before the timer fires.
    let _patient = stall::patient();
    // The server sends the first bytes of its reply a quarter of a timeout
    // after the request, then goes silent: the timeout bounds each read, so
    // the wait is timed from those bytes to the moment the client exited. A
    // deadline for the whole reply ends a quarter of a timeout too soon,
    // well below the 90% allowed; start-up time, which a busy machine
    // stretches, does not count.
    let pause = Duration::from_secs_f64(ODD_TIMEOUT * PAUSE_FRACTION);
    let (peer, sent, silent) = silent_peer(ctx, pause, b"HTTP/1.0 200 OK\r\n")?;
    let timeout = ODD_TIMEOUT.to_string();
    let launch = client(
        ctx,
        "127.0.0.1",
        peer.addr.port(),
        "/",
        &["--timeout", timeout.as_str()],
    )?;
    let finished = ctx.run(&launch, ODD_TIMEOUT * (1.0 + PAUSE_FRACTION) + MARGIN + 1.0)?;
    // Seen no sooner than it exited, however long it took to start.
    let exited = finished.exit_seen;
    drop(silent);
    expect_stage(
        &finished,
        RECEIVE,
        &format!("with --timeout {timeout} against a server that sends a little, then goes silent"),
    )?;
    let answered = sent
        .recv_timeout(ctx.scaled(1.0))
        .map_err(|_| Failure::new("the grader's server never received the request"))?;
    let waited = exited.saturating_duration_since(answered).as_secs_f64();
    // Timers may fire a little early, never by a tenth.
    let earliest = ODD_TIMEOUT * 0.9;
    let latest = ODD_TIMEOUT + ctx.scaled(EXIT_SLACK).as_secs_f64();
    if (earliest..=latest).contains(&waited) {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{CLIENT} waited {waited:.2} s after the last bytes of the reply with --timeout {timeout}"
    ))
    .expected(format!(
        "the server sends its first bytes {:.2} s after the request, then nothing: the client gives up about {timeout} s after those bytes (between {earliest:.2} and {latest:.2} s)",
        pause.as_secs_f64()
    ))
    .actual(format!(
        "it exited {waited:.2} s after the last bytes left; {}",
        finished.describe()
    ))
    .detail(if waited < earliest {
        "too early: is the timeout a fixed value instead of the one given, or a deadline for the whole reply instead of a limit on each read?"
    } else {
        "too late: is --timeout parsed but not used for the reads?"
    }))
}

/// Runs `launch` and checks that its one error line went to stderr and
/// nothing to stdout.
fn expect_stderr_only(ctx: &Ctx, launch: &Launch, situation: &str) -> CheckResult {
    let finished = ctx.run(launch, QUICK)?;
    let stderr = finished.stderr_text();
    let stage_line = stderr.lines().any(|line| {
        [CONNECT, RECEIVE]
            .iter()
            .any(|s| line.starts_with(s.prefix))
    });
    if finished.stdout.is_empty() && stage_line {
        return Ok(());
    }
    Err(Failure::new(format!(
        "{situation}: the error message must go to stderr, and nothing to stdout"
    ))
    .expected("stderr: the stage's line; stdout: empty (stdout is for the server's reply only)")
    .actual(outputs(&finished)))
}

pub(super) fn stderr_not_stdout(ctx: &Ctx) -> CheckResult {
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let launch = client(ctx, "127.0.0.1", refusing.addr.port(), "/", &[])?;
    expect_stderr_only(ctx, &launch, "connection refused")?;
    let peer = resetting_peer(ctx, Vec::new())?;
    let launch = client(ctx, "127.0.0.1", peer.addr.port(), "/", &[])?;
    expect_stderr_only(ctx, &launch, "connection reset")
}

pub(super) fn usage(ctx: &Ctx) -> CheckResult {
    // Every other argument is valid and points at a refusing port, so a
    // program that ignores the bad one fails quickly with another code.
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let port = refusing.addr.port().to_string();
    let port = port.as_str();
    let cases: [(&str, Vec<&str>); 5] = [
        ("--host missing", vec!["--port", port, "--file", "/"]),
        (
            "a port that is not a number",
            vec!["--host", "127.0.0.1", "--port", "http", "--file", "/"],
        ),
        (
            "--timeout 0",
            vec![
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--file",
                "/",
                "--timeout",
                "0",
            ],
        ),
        (
            "--timeout soon",
            vec![
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--file",
                "/",
                "--timeout",
                "soon",
            ],
        ),
        (
            "bind-server with a port that is not a number",
            vec!["127.0.0.1", "port"],
        ),
    ];
    for (index, (what, args)) in cases.into_iter().enumerate() {
        let bin = if index == 4 { SERVER } else { CLIENT };
        let launch = ctx.launch(bin, args)?;
        let finished = ctx.run(&launch, QUICK)?;
        if finished.code() != Some(2) || finished.stderr.is_empty() {
            let failure = Failure::new(format!("{what}: not reported as a usage error"))
                .expected("a usage message on stderr and exit code 2, at once (clap does this)")
                .actual(outputs(&finished))
                .detail(format!("command: {}", launch.command_line()));
            return Err(if bin == SERVER {
                failure.diagnosis(
                    "bind-server's PORT is a u16 like socket-errors' --port: let clap parse it (a positional `port: u16` argument), and a PORT that is not a number ends the program with clap's usage message and exit code 2.",
                    "#the-bind-server",
                )
            } else if what.starts_with("--timeout") {
                // The Timeouts section says what --timeout accepts, and why 0
                // is refused: a zero timeout means "wait forever".
                failure.diagnosis(
                    "--timeout is a decimal number of seconds above 0: give clap a `value_parser` that refuses anything else (`0` included: a zero timeout means \"wait forever\" to the socket API), so that clap reports it with exit code 2.",
                    "#timeouts",
                )
            } else {
                failure
            });
        }
    }
    Ok(())
}

/// What the snapshot shows of one run: the command with its port redacted,
/// stderr with the OS's wording redacted, and the exit code.
fn transcript(launch: &Launch, finished: &Finished) -> String {
    let name = launch
        .program
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let args: Vec<String> = launch
        .args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let mut words = vec![name.clone()];
    for (index, arg) in args.iter().enumerate() {
        let is_port = if name == SERVER {
            index == 1
        } else {
            index > 0 && args[index - 1] == "--port"
        };
        words.push(if is_port {
            "[PORT]".to_owned()
        } else {
            arg.clone()
        });
    }
    let prefixes: Vec<&str> = [CREATE, RESOLVE, CONNECT, SEND, RECEIVE]
        .iter()
        .map(|stage| stage.prefix)
        .chain([BIND_FAILED])
        .collect();
    let stderr = redact_after(finished.stderr_text().trim_end(), &prefixes);
    let ended = match finished.code() {
        Some(code) => format!("exit code {code}"),
        None => finished.describe(),
    };
    format!("$ {}\n{stderr}\n[{ended}]\n", words.join(" "))
}

pub(super) fn messages(ctx: &Ctx) -> CheckResult {
    let refusing = RefusingPort::reserve().map_err(|err| grader_error("reserve a port", err))?;
    let port = refusing.addr.port();
    let taken = TcpListener::bind("127.0.0.1:0").map_err(|err| grader_error("listen", err))?;
    let taken_port = taken
        .local_addr()
        .map_err(|err| grader_error("listen", err))?
        .port()
        .to_string();
    let peer = resetting_peer(ctx, Vec::new())?;
    let runs = [
        (
            "socket() fails with EMFILE",
            client(ctx, "127.0.0.1", port, "/", &[])?.fail_socket_calls(libc::EMFILE),
        ),
        (
            "the name does not resolve",
            client(ctx, "nosuchhost.invalid", port, "/", &[])?,
        ),
        (
            "nothing listens on the port",
            client(ctx, "127.0.0.1", port, "/", &[])?,
        ),
        (
            "the server reads the request, then resets the connection",
            client(ctx, "127.0.0.1", peer.addr.port(), "/", &[])?,
        ),
        (
            "another socket listens on the port",
            ctx.launch(SERVER, ["127.0.0.1", taken_port.as_str()])?,
        ),
    ];
    let mut text = String::new();
    for (situation, launch) in &runs {
        let finished = ctx.run(launch, QUICK)?;
        text.push_str(&format!("# {situation}\n"));
        text.push_str(&transcript(launch, &finished));
        text.push('\n');
    }
    ctx.snapshot(&text).map_err(|failure| {
        failure.detail(
            "each failure prints exactly one line on stderr: the stage's words, `: `, then the \
             operating system's message (shown here as [OS ERROR], since its wording varies)",
        )
    })
}
