//! Untrusted names and bytes: whatever a student's program prints and
//! whatever a student names their folder, every output stays the grader's
//! own. The assertions are on bytes, not on how a terminal would draw them.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;

fn xtask() -> Command {
    Command::cargo_bin("xtask").expect("the xtask binary")
}

/// Every control sequence a hostile program tries: an OSC title, clear
/// screen, cursor home, a fake pass line in bold green, an OSC 8
/// hyperlink, concealed text, the 8-bit CSI (`\xc2\x9b`, U+009B in UTF-8),
/// and bytes that are not UTF-8; as `printf` octal escapes.
const HOSTILE_PRINTF: &str = r"\033]0;pwned title\033\\\033[2J\033[H\033[1;32m✓ echo.everything 42/42\033[0m\n\033]8;;https://example.com/grade\033\\click me\033]8;;\033\\\n\033[8mhidden from here on\n\302\2332J 8-bit CSI, then bytes that are not UTF-8: \377\376\n";

/// A `--bin-dir` whose server and client print [`HOSTILE_PRINTF`] on stdout
/// and stderr and exit 1. Self-contained: the scripts need only `sh`.
fn hostile_bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script =
        format!("#!/bin/sh\nprintf '{HOSTILE_PRINTF}'\nprintf '{HOSTILE_PRINTF}' >&2\nexit 1\n");
    for name in ["echo-server", "echo-client"] {
        let path = dir.path().join(name);
        std::fs::write(&path, &script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The graded programs run as another user, which must reach them.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `bytes` are fit for a terminal: valid UTF-8, and no control character
/// but newline and tab (no ESC, no C1 such as the 8-bit CSI, no DEL, no
/// CR that would overwrite a line).
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|err| {
        panic!(
            "{what}: not UTF-8 at byte {}: {:?}",
            err.valid_up_to(),
            String::from_utf8_lossy(bytes)
        )
    });
    if let Some((at, c)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\n' && c != '\t')
    {
        let from = text[..at].rfind('\n').map_or(0, |line| line + 1);
        panic!(
            "{what}: the control character {c:?} at byte {at}, in the line {:?}",
            &text[from..(at + 40).min(text.len())]
        );
    }
}

/// The report of a program that prints every control sequence shows them
/// escaped, in every format, and is still a grade: the failures say what
/// the program printed.
#[test]
fn a_program_that_prints_control_sequences_does_not_reach_the_terminal() {
    let bin_dir = hostile_bin_dir();
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("results.json");
    let junit = out.path().join("junit.xml");
    let page = out.path().join("page.html");
    let text = xtask()
        .args(["grade", "lab1", "--bin-dir"])
        .arg(bin_dir.path())
        .arg("--gradescope")
        .arg(&results)
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1), "{text:?}");
    assert_terminal_safe("grade", &text.stdout);
    let stdout = String::from_utf8_lossy(&text.stdout);
    // Shown, escaped: the reader sees what the program tried.
    assert!(stdout.contains(r"\x1b]0;pwned title\x1b\"), "{stdout}");
    assert!(stdout.contains(r"\u{9b}2J 8-bit CSI"), "{stdout}");
    assert!(stdout.contains(r"not UTF-8: \xff\xfe"), "{stdout}");
    // Not a TTY: no colour of our own either.
    assert!(!stdout.contains('\x1b'));

    let verbose = xtask()
        .args(["grade", "lab1", "--verbose", "--bin-dir"])
        .arg(bin_dir.path())
        .output()
        .unwrap();
    assert_terminal_safe("grade --verbose", &verbose.stdout);

    let json = xtask()
        .args(["grade", "lab1", "--format", "json", "--bin-dir"])
        .arg(bin_dir.path())
        .output()
        .unwrap();
    assert_terminal_safe("grade --format json", &json.stdout);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    // JSON keeps the characters exact: escaped by JSON, not replaced.
    assert!(report.to_string().contains("\\u001b[2J"), "{report}");
    assert!(report.to_string().contains('\u{9b}'), "{report}");

    let results = std::fs::read(&results).unwrap();
    assert_terminal_safe("results.json", &results);
    serde_json::from_slice::<serde_json::Value>(&results).expect("valid JSON");
    let junit = std::fs::read(&junit).unwrap();
    assert_terminal_safe("junit.xml", &junit);
    let mut reader = quick_xml::Reader::from_reader(junit.as_slice());
    let mut buffer = Vec::new();
    while reader
        .read_event_into(&mut buffer)
        .expect("well-formed XML")
        != quick_xml::events::Event::Eof
    {
        buffer.clear();
    }
    assert_terminal_safe("the page", &std::fs::read(&page).unwrap());
}

/// One name of every kind a careless or hostile student gives a folder.
/// A file name cannot hold `/`: the fake lines use U+2215 (∕), which looks
/// like it.
fn hostile_names() -> Vec<OsString> {
    let names: [&[u8]; 9] = [
        "mallory\n\x1b[1;32mALL STUDENTS 42\u{2215}42".as_bytes(),
        "=HYPERLINK(\"x\",\"grade 42\u{2215}42\")".as_bytes(),
        b"@SUM(1+1)",
        b"+1",
        b"-rf",
        b"bob\xff",
        b"bob\xfe",
        b"csi\xc2\x9b2J and \\ a backslash",
        b"tab\there",
    ];
    let mut names: Vec<OsString> = names
        .iter()
        .map(|name| OsStr::from_bytes(name).into())
        .collect();
    names.push(OsString::from("x".repeat(245)));
    names
}

/// The CSV's cells of one row, unquoted (a cell may hold commas and
/// quotes, never a line break: the name notation has none).
fn cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// A class of hostile names, an empty folder, a lab found twice and a
/// submission folder that is a symbolic link to a solution outside the
/// class: `grade-class` finishes, every student gets one row and one page
/// of a bounded name, the CSV gives back every raw name exactly, and
/// nothing a student named reaches the terminal.
#[test]
fn grade_class_finishes_whatever_the_names() {
    let class = tempfile::tempdir().unwrap();
    let names = hostile_names();
    for name in &names {
        let folder = class.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("notes.txt"), "my lab is on the other laptop").unwrap();
    }
    std::fs::create_dir(class.path().join("empty")).unwrap();
    for copy in ["labs/echo/src/bin", "old/echo/src/bin"] {
        let bin = class.path().join("twice").join(copy);
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("echo-server.rs"), "fn main() {}").unwrap();
    }
    let outside = tempfile::tempdir().unwrap();
    let bin = outside.path().join("labs/echo/src/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("echo-server.rs"), "fn main() {}").unwrap();
    std::os::unix::fs::symlink(outside.path(), class.path().join("linked")).unwrap();

    let run = xtask()
        .arg("grade-class")
        .arg(class.path())
        .args(["--lab", "echo"])
        .output()
        .unwrap();
    assert_terminal_safe("grade-class stdout", &run.stdout);
    assert_terminal_safe("grade-class stderr", &run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(1),
        "some could not be graded:\n{stdout}"
    );
    assert!(stdout.contains(r"mallory\x0a\x1b[1;32mALL"), "{stdout}");
    assert!(stdout.contains(r"bob\xff "), "{stdout}");

    let mut students: Vec<OsString> = names.clone();
    students.extend(["empty", "twice", "linked"].map(OsString::from));
    let csv = std::fs::read_to_string(class.path().join("grades.csv")).unwrap();
    assert_terminal_safe("grades.csv", csv.as_bytes());
    let rows: Vec<Vec<String>> = csv.lines().skip(1).map(cells).collect();
    assert_eq!(rows.len(), students.len(), "one row per student:\n{csv}");
    let mut raw_names = BTreeSet::new();
    for (row, line) in rows.iter().zip(csv.lines().skip(1)) {
        // A spreadsheet reads no formula: a cell that would begin one
        // begins with `'`, and so does the line.
        assert!(
            !line.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{line}"
        );
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{line}"
            );
        }
        let name = row[0].strip_prefix('\'').unwrap_or(&row[0]);
        let raw = grader::untrusted::name_bytes(name)
            .unwrap_or_else(|| panic!("{name} is in the name notation"));
        assert!(raw_names.insert(raw), "{name} has two rows");
        assert!(row[8].starts_with("not graded: "), "{line}");
        assert!(
            ["not_found", "empty", "symbolic_link", "found_twice"].contains(&row[2].as_str()),
            "{line}"
        );
    }
    assert_eq!(raw_names, students.iter().cloned().collect::<BTreeSet<_>>());
    let linked = rows.iter().find(|row| row[0] == "linked").unwrap();
    assert_eq!(
        linked[8],
        "not graded: the submission folder is a symbolic link"
    );
    let empty = rows.iter().find(|row| row[0] == "empty").unwrap();
    assert!(
        empty[8].contains("the submission folder is empty"),
        "{empty:?}"
    );
    let twice = rows.iter().find(|row| row[0] == "twice").unwrap();
    assert!(twice[8].contains("more than once"), "{twice:?}");

    // A page per student, each name within the file system's limit of 255
    // bytes, each once; and the dashboard links every one.
    let pages: Vec<OsString> = std::fs::read_dir(class.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| {
            let name = name.as_bytes();
            name.starts_with(b"report-") && name.ends_with(b".html")
        })
        .collect();
    assert_eq!(pages.len(), students.len(), "{pages:?}");
    let dashboard = std::fs::read_to_string(class.path().join("report.html")).unwrap();
    assert_terminal_safe("report.html", dashboard.as_bytes());
    for page in &pages {
        assert!(page.len() <= 100, "{page:?} is {} bytes", page.len());
        let file = page.to_str().expect("page names are ASCII");
        assert!(dashboard.contains(&format!("href=\"{file}\"")), "{file}");
        let html = std::fs::read(class.path().join(page)).unwrap();
        assert_terminal_safe(file, &html);
    }
    let mallory = pages
        .iter()
        .find(|page| page.as_bytes().starts_with(b"report-mallory"))
        .unwrap();
    let html = std::fs::read_to_string(class.path().join(mallory)).unwrap();
    assert!(
        html.contains(r"mallory\x0a\x1b[1;32mALL STUDENTS"),
        "{html}"
    );
}

/// A class where every submission was graded exits 0, a program that did
/// not compile included; what the intake left out of a student's sources
/// (a symbolic link, a FIFO) is said in the student's row and page.
#[test]
fn grade_class_exits_0_when_every_submission_was_graded_and_keeps_the_intake_notes() {
    let class = tempfile::tempdir().unwrap();
    let stub = grader::builder::workspace_root().join("labs/echo/src/bin");
    let carol = class.path().join("carol/src/bin");
    std::fs::create_dir_all(&carol).unwrap();
    for binary in ["echo-server.rs", "echo-client.rs"] {
        std::fs::copy(stub.join(binary), carol.join(binary)).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", carol.join("secrets.rs")).unwrap();
    let fifo = std::ffi::CString::new(carol.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid, NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let dave = class.path().join("dave/src/bin");
    std::fs::create_dir_all(&dave).unwrap();
    for binary in ["echo-server.rs", "echo-client.rs"] {
        std::fs::write(dave.join(binary), "fn main() { this does not compile }").unwrap();
    }

    let run = xtask()
        .arg("grade-class")
        .arg(class.path())
        .args(["--lab", "echo"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let csv = std::fs::read_to_string(class.path().join("grades.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv.lines().skip(1).map(cells).collect();
    let carol = rows.iter().find(|row| row[0] == "carol").expect(&csv);
    assert_eq!(carol[2], "graded", "{csv}");
    assert_eq!(carol[8], "", "carol was graded: {csv}");
    assert!(
        carol[9].contains("src/bin/secrets.rs was left out: it is a symbolic link"),
        "{csv}"
    );
    assert!(
        carol[9].contains("src/bin/pipe was left out: it is not a regular file"),
        "{csv}"
    );
    let dave = rows.iter().find(|row| row[0] == "dave").expect(&csv);
    assert_eq!(dave[2], "did_not_compile", "{csv}");
    assert!(dave[8].contains("did not compile"), "{csv}");
    // The compiler's first errors, whole, in the quoted cell.
    assert!(csv.contains("\nerror: expected one of"), "{csv}");
    let page = std::fs::read_dir(class.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .as_bytes()
                .starts_with(b"report-carol-")
        })
        .expect("carol's page");
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("src/bin/secrets.rs was left out"), "{page}");
}
