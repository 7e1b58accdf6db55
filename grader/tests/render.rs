//! Golden tests of every writer over one fixed, hand-built grade that holds
//! every way a check can end: passed, failed with expected/actual/diff,
//! gated, skipped, and not run after a build failure. A change in any output
//! shows as a snapshot diff to review (`cargo insta review`).

use std::time::Duration;

use grader::harness::conversation::{Event, Kind, Party, Transcript};
use grader::outcome::{BuildState, SubmissionState};
use grader::render::{self, text::Style};
use grader::{CheckOutcome, Failure, LabReport, Status};

fn check(id: &str, status: Status, points: u32, max_points: u32) -> CheckOutcome {
    CheckOutcome {
        id: id.into(),
        title: format!("what {id} verifies"),
        status,
        points,
        max_points,
        failure: None,
        hint: format!("the hint of {id}"),
        handout: format!("labs/echo/README.md#{}", id.replace('.', "-")),
        manual: format!("cargo run -p echo -- try {id}"),
        duration: Duration::from_millis(120),
        time_limit: Duration::from_secs(10),
        commands: vec![format!("/grader/bin/echo-server 127.0.0.1 0 # {id}")],
        conversation: Default::default(),
    }
}

/// An event at `ms` milliseconds into the check.
fn event(ms: u64, kind: Kind, from: Party, to: Option<Party>, text: &str) -> Event {
    Event {
        at: Duration::from_millis(ms),
        until: None,
        kind,
        from: Some(from),
        to,
        conn: to.map(|_| 1),
        bytes: None,
        text: text.into(),
    }
}

/// `bytes` from `from` to `to` on connection 1.
fn data(ms: u64, from: Party, to: Party, bytes: u64, preview: &str) -> Event {
    Event {
        bytes: Some(bytes),
        ..event(ms, Kind::Data, from, Some(to), preview)
    }
}

/// The server echoes 6 of 59 bytes and closes: the conversation of a
/// server that echoes one `read` only.
fn echoes_one_read() -> Transcript {
    use Party::{Grader, Server};
    Transcript {
        events: vec![
            event(
                0,
                Kind::Start,
                Server,
                None,
                "/grader/bin/echo-server 127.0.0.1 0",
            ),
            event(
                4,
                Kind::Stdout,
                Server,
                None,
                "Listening on 127.0.0.1:40001",
            ),
            event(5, Kind::Connect, Grader, Some(Server), ""),
            data(6, Grader, Server, 3, "Hel"),
            data(9, Server, Grader, 3, "Hel"),
            data(110, Grader, Server, 56, "lo, world, in many small…"),
            data(111, Server, Grader, 3, "lo,"),
            event(113, Kind::Fin, Server, Some(Grader), ""),
            event(2013, Kind::Note, Grader, None, "got 6 of 59 bytes back"),
            event(
                2015,
                Kind::Exit,
                Server,
                None,
                "killed by SIGKILL (by the grader)",
            ),
        ],
        ..Transcript::default()
    }
}

/// Lab 1 ran: one check of each status a run can give. Lab 2 did not build.
fn reports() -> Vec<LabReport> {
    let passed = CheckOutcome {
        conversation: Transcript {
            events: echoes_one_read().events[..3].to_vec(),
            ..Transcript::default()
        },
        ..check("echo.ready", Status::Passed, 4, 4)
    };
    let failed = CheckOutcome {
        conversation: echoes_one_read(),
        failure: Some(
            Failure::new("the echo differs from what was sent")
                .expected("b\"Hello, world\"")
                .actual("b\"Hello, worl\"")
                .diff("-Hello, world\n+Hello, worl")
                .detail("stderr: nothing")
                .detail("exit status: 0"),
        ),
        ..check("echo.hello", Status::Failed, 0, 6)
    };
    let gated = CheckOutcome {
        failure: Some(Failure::new(
            "this check earns its points only once `echo.ready` passes (an unfinished program could pass it by accident)",
        )),
        manual: String::new(),
        commands: Vec::new(),
        ..check("echo.server_log", Status::Failed, 0, 2)
    };
    let skipped = CheckOutcome {
        failure: Some(Failure::new(
            "skipped: this check needs Linux (/proc or seccomp); the grade is not final",
        )),
        duration: Duration::ZERO,
        commands: Vec::new(),
        ..check("echo.fd_leak", Status::Skipped, 0, 0)
    };
    let lab1 = LabReport {
        lab: "lab1".into(),
        slug: "echo".into(),
        title: "Echo".into(),
        graded: "student".into(),
        build: BuildState::Ready,
        state: SubmissionState::Graded,
        notes: Vec::new(),
        score: 4,
        max_score: 12,
        checks: vec![passed, failed, gated, skipped],
        seed: 42,
        grader_version: "0123456789".into(),
        containment: "uid 64000 · pid ns · net ns (loopback only) · clean env".into(),
        duration: Duration::from_millis(1500),
    };
    let build_message = "labs/errors did not compile:\n   Compiling errors v0.1.0 (/course/labs/errors)\n\
        error[E0425]: cannot find value `port` in this scope\n --> labs/errors/src/main.rs:3:5\n\
        \x20 |\n3 |     port\n  |     ^^^^ not found in this scope\n\n\
        error: could not compile `errors` (bin \"errors-client\") due to 1 previous error\n";
    let not_run = |id: &str, max_points| CheckOutcome {
        failure: Some(Failure::new(grader::runner::not_run_because(build_message))),
        duration: Duration::ZERO,
        commands: Vec::new(),
        ..check(id, Status::NotRun, 0, max_points)
    };
    let lab2 = LabReport {
        lab: "lab2".into(),
        slug: "errors".into(),
        title: "Errors".into(),
        graded: "student".into(),
        build: BuildState::Failed {
            message: build_message.into(),
        },
        state: SubmissionState::DidNotCompile,
        notes: Vec::new(),
        score: 0,
        max_score: 8,
        checks: vec![not_run("errors.success", 5), not_run("errors.usage", 3)],
        seed: 42,
        grader_version: "0123456789".into(),
        containment: "uid 64000 · pid ns · net ns (loopback only) · clean env".into(),
        duration: Duration::from_millis(3),
    };
    vec![lab1, lab2]
}

#[test]
fn text_report() {
    let reports = reports();
    let style = Style::default();
    let mut out = String::new();
    for report in &reports {
        out.push_str(&render::text::lab(report, style));
    }
    out.push('\n');
    out.push_str(&render::text::totals(&reports, style));
    insta::assert_snapshot!("text", out);
}

#[test]
fn text_report_verbose_shows_the_commands_of_passed_checks_too() {
    let reports = reports();
    let style = Style {
        color: false,
        verbose: true,
    };
    insta::assert_snapshot!("text_verbose", render::text::lab(&reports[0], style));
}

#[test]
fn text_report_in_colour() {
    let reports = reports();
    let style = Style {
        color: true,
        verbose: false,
    };
    insta::assert_snapshot!("text_colour", render::text::lab(&reports[0], style));
}

/// An untouched stub: every server check fails alike (one `todo!()`
/// panic), and a client check ran with a 100 KiB argument.
fn stub_report() -> LabReport {
    let panic = |port: u16| {
        Failure::new("the server exited before printing `Listening on`").detail(format!(
            "stderr:\n    thread 'main' (2) panicked at labs/echo/src/bin/echo-server.rs:45:5:\n    not yet implemented: bind to (127.0.0.1, {port})"
        ))
    };
    let panicked = Transcript {
        events: vec![
            event(
                0,
                Kind::Start,
                Party::Server,
                None,
                "/grader/bin/echo-server 127.0.0.1 0",
            ),
            event(
                3,
                Kind::Stderr,
                Party::Server,
                None,
                "thread 'main' (2) panicked at labs/echo/src/bin/echo-server.rs:45:5:",
            ),
            event(
                3,
                Kind::Stderr,
                Party::Server,
                None,
                "not yet implemented: bind to (127.0.0.1, 0)",
            ),
            event(4, Kind::Exit, Party::Server, None, "exit code 101"),
        ],
        ..Transcript::default()
    };
    let failed = |id: &str, failure: Failure| CheckOutcome {
        failure: Some(failure),
        conversation: panicked.clone(),
        ..check(id, Status::Failed, 0, 4)
    };
    let mut mebibyte = echoes_one_read();
    mebibyte.events.truncate(3);
    let x = "xxxxxxxxxxxxxxxxxxxxxxxx…";
    mebibyte.events.extend((0..40).flat_map(|index| {
        [
            data(10 + 10 * index, Party::Grader, Party::Server, 65536, x),
            data(15 + 10 * index, Party::Server, Party::Grader, 65536, x),
        ]
    }));
    mebibyte.events.extend([
        event(412, Kind::Fin, Party::Server, Some(Party::Grader), ""),
        event(413, Kind::Exit, Party::Server, None, "exit code 1"),
    ]);
    // A client check with a failure of its own: no panic in its conversation.
    let long = CheckOutcome {
        conversation: Transcript {
            events: vec![
                event(
                    0,
                    Kind::Start,
                    Party::Client,
                    None,
                    "/grader/bin/echo-client",
                ),
                event(9, Kind::Exit, Party::Client, None, "exit code 0"),
            ],
            ..Transcript::default()
        },
        commands: vec![format!(
            "/grader/bin/echo-client 127.0.0.1 4000 {}",
            "x".repeat(100 * 1024)
        )],
        ..failed(
            "echo.client_large",
            Failure::new("echo-client did not print every byte the server sent back")
                .expected(format!("b\"Received b\\\"{}\\\"\"", "x".repeat(1000))),
        )
    };
    LabReport {
        lab: "lab1".into(),
        slug: "echo".into(),
        title: "Echo".into(),
        graded: "student".into(),
        build: BuildState::Ready,
        state: SubmissionState::Graded,
        notes: Vec::new(),
        score: 0,
        max_score: 16,
        checks: vec![
            failed("echo.ready", panic(1)),
            failed("echo.hello", panic(2)),
            CheckOutcome {
                conversation: mebibyte,
                ..failed(
                    "echo.one_mebibyte",
                    Failure::new("the server closed the connection after 2.6 MiB"),
                )
            },
            long,
        ],
        seed: 42,
        grader_version: "0123456789".into(),
        containment: String::new(),
        duration: Duration::from_millis(300),
    }
}

/// The stub's page: where to start, one explanation per cause with the
/// checks it costs, and no line longer than the limit.
#[test]
fn text_report_of_a_stub_is_short() {
    let out = render::text::lab(&stub_report(), Style::default());
    for line in out.lines() {
        assert!(
            line.chars().count() <= render::text::MAX_LINE,
            "{} characters: {line}",
            line.chars().count()
        );
    }
    // The panic is explained once, with its conversation; the long
    // conversation is cut to its start and end.
    assert_eq!(out.matches("conversation:").count(), 3, "{out}");
    assert!(out.contains("events left out"), "{out}");
    insta::assert_snapshot!("text_stub", out);
}

/// `--verbose` keeps every line whole, wrapped to the terminal's width, and
/// every failure in full.
#[test]
fn text_report_verbose_wraps_long_lines_whole() {
    let style = Style {
        color: false,
        verbose: true,
    };
    let out = render::text::lab(&stub_report(), style);
    let longest = out.lines().map(|line| line.chars().count()).max();
    assert!(longest <= Some(render::text::MAX_LINE), "{longest:?}");
    // Every byte of the long line is there: the lines joined again hold it.
    let joined: String = out.lines().map(str::trim_start).collect();
    let command = format!(
        "/grader/bin/echo-client 127.0.0.1 4000 {}",
        "x".repeat(100 * 1024)
    );
    assert!(joined.contains(&command));
    assert_eq!(out.matches("    stderr:\n").count(), 2, "{out}");
    assert!(!out.contains("the same panic as"), "{out}");
}

/// The page: every check with its status in words, a diagram of each
/// conversation, links into the handout, and nothing fetched.
#[test]
fn html_page() {
    let links = render::html::Links {
        handouts: "file:///course/",
        book: false,
        up: None,
    };
    let page = render::html::page(&reports(), links);
    assert!(page.contains(render::html::CONTENT_SECURITY_POLICY));
    for id in [
        "echo.ready",
        "echo.hello",
        "echo.server_log",
        "echo.fd_leak",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // A lab that did not compile says so once, with the compiler's first
    // error, not as a list of checks that fail.
    assert!(!page.contains("id=\"errors.usage\""));
    assert!(page.contains("did not compile: none of 2 checks ran"));
    assert!(page.contains("2 checks not run: they run once it compiles."));
    assert!(page.contains("--&gt; labs/errors/src/main.rs:3:5"));
    assert_eq!(page.matches("<svg class=\"seq\"").count(), 2);
    assert!(page.contains("href=\"file:///course/labs/echo/README.md#echo-hello\""));
    for fetch in ["src=", "http://", "https://", "<script", "url(http"] {
        assert!(!page.contains(fetch), "{fetch}");
    }
    insta::assert_snapshot!("html", page);
}

/// The stub's page explains the panic once, as the terminal does.
#[test]
fn html_page_of_a_stub_explains_a_shared_failure_once() {
    let page = render::html::page(&[stub_report()], render::html::Links::default());
    assert!(page.contains("Nothing passes yet"));
    // Where the handout begins its steps, not the rubric's first check.
    assert!(
        page.contains("read <a href=\"labs/echo/README.md#step-1-the-server-binds-and-listens\">")
    );
    assert!(page.contains("the same panic as echo.ready"));
    assert_eq!(page.matches("<svg class=\"seq\"").count(), 3);
    assert!(page.contains("events left out"));
}

#[test]
fn json() {
    let reports = reports();
    let out: Vec<String> = reports.iter().map(render::json::lab).collect();
    insta::assert_snapshot!("json", out.join("\n"));
}

#[test]
fn gradescope() {
    let results = render::gradescope::results(&reports());
    insta::assert_snapshot!(
        "gradescope",
        serde_json::to_string_pretty(&results).unwrap()
    );
}

#[test]
fn junit() {
    insta::assert_snapshot!("junit", render::junit::xml(&reports()));
}

#[test]
fn csv() {
    let reports = reports();
    let rows = [("ada", &reports[0]), ("bob, \"the builder\"", &reports[1])];
    insta::assert_snapshot!("csv", render::csv::grades(rows));
}

/// The same view feeds every writer: a check shows guidance only when it
/// ran and failed.
#[test]
fn only_failed_checks_carry_hints() {
    for report in reports() {
        let view = render::LabView::of(&report);
        for check in &view.checks {
            assert_eq!(
                check.guidance.is_some(),
                check.status == Status::Failed,
                "{}",
                check.id
            );
        }
    }
}

/// The class page: a histogram, every check's pass rate with the hardest
/// first, a row per student linking to the student's page, and the
/// grader's version and seed.
#[test]
fn class_dashboard() {
    let lab1 = reports().remove(0);
    let stub = stub_report();
    let students = [
        render::dashboard::Student {
            name: "ada",
            page: "students/ada.html",
            reports: vec![&lab1],
        },
        render::dashboard::Student {
            name: "bob <b>",
            page: "students/bob-b.html",
            reports: vec![&stub],
        },
    ];
    let page = render::dashboard::page(&students, render::html::Links::default());
    assert!(page.contains(render::html::CONTENT_SECURITY_POLICY));
    assert!(page.contains("aria-label=\"histogram of total scores: 1 at 0–9 %, 1 at 30–39 %\""));
    let hardest = page.find("<code>echo.hello</code>").unwrap();
    let easiest = page.find("<code>echo.ready</code>").unwrap();
    assert!(
        hardest < easiest,
        "echo.hello (0/2) comes before echo.ready (1/2)"
    );
    assert!(
        !page.contains("<code>echo.fd_leak</code>"),
        "skipped everywhere"
    );
    assert!(page.contains("<a href=\"students/bob-b.html\">bob &lt;b&gt;</a>"));
    assert!(page.contains("grader 0123456789 · seed 42"));
    insta::assert_snapshot!("dashboard", page);
}

/// A long hint wraps at spaces and keeps every word; a long argument is cut
/// in the middle.
#[test]
fn text_report_wraps_prose_and_cuts_arguments() {
    let mut report = stub_report();
    let hint = format!("{} the end.", "read until WouldBlock, then".repeat(12));
    for check in &mut report.checks {
        check.hint.clone_from(&hint);
    }
    let out = render::text::lab(&report, Style::default());
    let shown: String = out.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    assert!(shown.contains("the end."), "{out}");
    assert!(
        out.lines()
            .all(|line| line.chars().count() <= render::text::MAX_LINE)
    );
    assert!(out.contains("--verbose shows them"), "{out}");
}

/// Every control sequence of a hostile program, and bytes that are not
/// UTF-8 as the capture decodes them.
fn hostile_output() -> String {
    let mut bytes = "\x1b]0;title\x1b\\\x1b[2J\x1b[H\x1b[1;32m✓ echo.everything 42/42\x1b[0m \
        \x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\ \x1b[8mhidden \u{9b}2J \r\u{7f}"
        .as_bytes()
        .to_vec();
    bytes.extend_from_slice(b"\xff\xfe");
    grader::untrusted::decode(&bytes)
}

/// A lab report in which everything a student controls is hostile: what
/// the programs printed, the failure quoting it, the name, the build
/// message and a note.
fn hostile_report() -> LabReport {
    let hostile = hostile_output();
    let mut report = reports().remove(0);
    report.graded = hostile.clone();
    report.notes = vec![format!("src/{hostile} was left out")];
    for check in &mut report.checks {
        if let Some(failure) = &mut check.failure {
            failure.details.push(format!("stderr:\n    {hostile}"));
        }
        check
            .conversation
            .events
            .push(event(300, Kind::Stdout, Party::Server, None, &hostile));
        check.commands.push(format!("echo-server {hostile}"));
    }
    report
}

/// Whether `text` has a control character other than newline and tab.
fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// No control sequence a program printed reaches a terminal through any
/// writer; in colour, every escape sequence left is one of the report's own
/// colours.
#[test]
fn hostile_output_is_shown_and_never_obeyed() {
    let report = hostile_report();
    for verbose in [false, true] {
        let plain = render::text::lab(
            &report,
            Style {
                color: false,
                verbose,
            },
        );
        assert!(!has_control(&plain), "{plain}");
        assert!(plain.contains(r"\x1b]0;title\x1b\\x1b[2J"), "{plain}");
        assert!(plain.contains(r"\u{9b}2J \x0d\x7f\xff\xfe"), "{plain}");
        let colour = render::text::lab(
            &report,
            Style {
                color: true,
                verbose,
            },
        );
        let own = [
            "\x1b[1m",
            "\x1b[31m",
            "\x1b[32m",
            "\x1b[33m",
            "\x1b[36m",
            "\x1b[2m",
            "\x1b[1;32m",
            "\x1b[0m",
        ];
        let stripped = own.iter().fold(colour, |text, code| text.replace(code, ""));
        assert!(!has_control(&stripped), "{stripped}");
    }
    let reports = [report];
    for (what, text) in [
        ("json", render::json::lab(&reports[0])),
        ("gradescope", render::gradescope::file(&reports)),
        ("junit", render::junit::xml(&reports)),
        (
            "html",
            render::html::page(&reports, render::html::Links::default()),
        ),
        ("csv", render::csv::grades([("=1+1", &reports[0])])),
    ] {
        assert!(!has_control(&text), "{what}: {text}");
    }
    let csv = render::csv::grades([("=1+1", &reports[0])]);
    assert!(csv.lines().nth(1).unwrap().starts_with("'=1+1,"), "{csv}");
}

/// Every state says itself in every output: a lab found twice is "not
/// graded" in the CSV's `state` column with its whole reason, in
/// results.json's top-level output (which each test's output points at),
/// in JUnit's `system-out`, under a heading on the page and counted apart on
/// the dashboard, out of the pass rates; an untouched stub is labelled.
#[test]
fn each_state_says_itself_in_every_output() {
    use grader::outcome::NotGraded;
    let message = "not graded: lab1 (echo) is in the submission more than once: \
                   labs/echo/src/, old-backup/echo/src/; expected one copy";
    let mut twice = stub_report();
    twice.state = SubmissionState::NotGraded(NotGraded::FoundTwice);
    twice.build = BuildState::Failed {
        message: message.into(),
    };
    for check in &mut twice.checks {
        check.status = Status::NotRun;
        check.points = 0;
        check.failure = Some(Failure::new(grader::runner::not_run_because(message)));
    }
    let mut stub = stub_report();
    stub.state = SubmissionState::UntouchedStub;

    let csv = render::csv::grades([("erin", &twice), ("ada", &stub)]);
    assert!(csv.contains("erin,lab1,found_twice,0,16,"), "{csv}");
    assert!(
        csv.contains("old-backup/echo/src/; expected one copy"),
        "{csv}"
    );
    assert!(csv.contains("ada,lab1,untouched_stub,"), "{csv}");

    let results = render::gradescope::results(std::slice::from_ref(&twice));
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("Not graded: the lab's sources are in the submission more than once"));
    assert!(output.contains("old-backup/echo/src/"), "{output}");
    assert_eq!(results["extra_data"]["state"]["lab1"], "found_twice");
    let test = results["tests"][0]["output"].as_str().unwrap();
    assert!(test.starts_with("not run: not graded:"), "{test}");

    let junit = render::junit::xml(std::slice::from_ref(&twice));
    assert!(
        junit.contains("<system-out>found_twice: Not graded"),
        "{junit}"
    );
    assert!(junit.contains("<property name=\"state\" value=\"found_twice\"/>"));

    let links = render::html::Links {
        handouts: "",
        book: false,
        up: None,
    };
    let page = render::html::page([&twice], links);
    assert!(
        page.contains("<h3 class=\"state found_twice\">Not graded:"),
        "{page}"
    );
    let page = render::html::page([&stub], links);
    assert!(page.contains("<h3 class=\"state untouched_stub\">Untouched stub"));

    let students = [
        render::dashboard::Student {
            name: "erin",
            page: "e.html",
            reports: vec![&twice],
        },
        render::dashboard::Student {
            name: "ada",
            page: "a.html",
            reports: vec![&stub],
        },
    ];
    let dashboard = render::dashboard::page(&students, links);
    assert!(dashboard.contains("of 1 graded (1 that did not compile or were not graded left out)"));
    assert!(dashboard.contains("<strong>1</strong> not graded: found twice"));
    assert!(dashboard.contains("<strong>1</strong> untouched stub"));
    // The pass rates count the stub's checks alone: one student each.
    assert!(
        dashboard.contains("<td class=\"n\">0/1</td>"),
        "{dashboard}"
    );
    assert!(!dashboard.contains("<td class=\"n\">0/2</td>"));
}
