//! Attacks on what the grader writes and on the grader process itself, run
//! through `cargo xtask grade` as a platform runs it. Each graded program is
//! lab 1's independent Python server attempting one attack before it serves
//! correctly; the grade must be the true one.
//!
//! The guarantees hold when the grader runs as root (CI does); as another
//! user the tests say why they are skipped.

// The grader's test support: lab 1's fixtures in a `--bin-dir`, with an
// outbox the attacks report to.
#[path = "../../grader/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use assert_cmd::Command;
use support::{contained, fixture_bin_dir, outbox};
use tempfile::TempDir;

fn xtask() -> Command {
    let mut command = Command::cargo_bin("xtask").expect("the xtask binary");
    // The attacks write down what they managed in their bin dir's outbox.
    command.env(grader::harness::sandbox::REPORT_FOLDER_VARIABLE, "1");
    command
}

/// A folder anyone may write in: the attacker's best case.
fn open_results_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let results = dir.path().join("results.json");
    (dir, results)
}

#[test]
fn a_server_that_forges_results_and_kills_its_grader_changes_nothing() {
    if !contained("forge and kill") {
        return;
    }
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_forge_and_kill")]);
    let (_results_dir, results) = open_results_dir();
    let bin_dir = programs.path().to_str().unwrap();
    let output = xtask()
        .args(["grade", "lab1", "--contained", "--bin-dir", bin_dir])
        .arg("--gradescope")
        .arg(&results)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    // The grader lived to the end and gave the true grade: full marks.
    assert_eq!(output.status.code(), Some(0), "{report}");
    // Contained under a uid of the grade's own: 64000 plus the first free
    // slot, which depends on how many grades run at once.
    let uid = report
        .split_once("containment: uid ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|uid| uid.parse::<u32>().ok());
    assert!(
        uid.is_some_and(|uid| (64000..65000).contains(&uid)),
        "{report}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert!(written.get("forged").is_none(), "{written}");
    let checks = grader::rubric::for_lab(support::lab("echo")).len();
    assert_eq!(
        written["tests"].as_array().unwrap().len(),
        checks,
        "{written}"
    );
    let attempts = std::fs::read_to_string(outbox(&programs).join("attack_forge_and_kill"))
        .expect("the attack ran");
    assert!(!attempts.contains("killed"), "{attempts}");
    // It could not even find the grader's command line, which names the
    // results file.
    assert!(!attempts.contains("forged"), "{attempts}");
}

/// A grade run from a terminal, as a student runs one: the program must not
/// reach that terminal. In the grader's session it could open `/dev/tty`
/// and type commands into the grader's shell (`TIOCSTI`), or take the
/// terminal's foreground and stop the grader when it prints its report.
#[test]
fn a_program_cannot_reach_the_terminal_its_grader_runs_in() {
    use std::os::unix::process::CommandExt;
    if !contained("terminal") {
        return;
    }
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_terminal")]);
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors into our variables and reads
    // no name, settings or size (null pointers).
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("xtask"));
    command
        .env(grader::harness::sandbox::REPORT_FOLDER_VARIABLE, "1")
        .args(["grade", "lab1", "--contained", "--check", "echo.hello"])
        .arg("--bin-dir")
        .arg(programs.path());
    // SAFETY: between fork and exec, two async-signal-safe system calls: a
    // session of its own, whose controlling terminal is the new one.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(terminal, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    // SAFETY: our own descriptors, closed once.
    unsafe {
        libc::close(terminal);
        libc::close(master);
    }
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let attempts =
        std::fs::read_to_string(outbox(&programs).join("attack_terminal")).expect("the attack ran");
    assert!(attempts.contains("refused /dev/tty"), "{attempts}");
    // A session of its own: its leader is in the program's namespace.
    assert!(!attempts.contains("session 0\n"), "{attempts}");
}

#[test]
fn a_secret_in_the_graders_environment_stays_secret() {
    if !contained("secret environment variable") {
        return;
    }
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_secrets")]);
    let secret = "correct-horse-battery-staple";
    let output = xtask()
        .env("SOCKET_LABS_TEST_SECRET", secret)
        .args(["grade", "lab1", "--contained", "--check", "echo.hello"])
        .args(["--bin-dir", programs.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let seen =
        std::fs::read_to_string(outbox(&programs).join("attack_secrets")).expect("the attack ran");
    assert!(seen.contains("own: "), "{seen}");
    assert!(!seen.contains(secret), "{seen}");
}

/// A build runs the student's code too (`include_str!`, `include!`,
/// `env!`, build scripts): in grade-class it sees only its own submission,
/// the toolchain and the registry, so nothing else can be compiled into a
/// program or quoted in a compile error, and a build that eats memory stops
/// at the cgroup's limit.
#[test]
fn a_build_reads_nothing_the_submission_could_not() {
    if !contained("contained builds") {
        return;
    }
    let secret = "correct-horse-battery-staple-at-build-time";
    let vault = tempfile::tempdir().unwrap();
    std::fs::set_permissions(vault.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret_file = vault.path().join("secret.rs");
    std::fs::write(&secret_file, format!("\"{secret}\"")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let class = tempfile::tempdir().unwrap();
    let solution = grader::builder::workspace_root().join("solutions/echo/src");
    let neighbour = class.path().join("alice/echo/src/bin/echo-server.rs");
    let attacks = [
        ("alice", String::new()),
        (
            "reader",
            format!("const STOLEN: &str = include_str!({:?});", secret_file),
        ),
        (
            "quoter",
            format!("const STOLEN: &str = include!({:?});", secret_file),
        ),
        (
            "peer",
            format!("const STOLEN: &str = include_str!({:?});", neighbour),
        ),
        (
            "environment",
            "const STOLEN: &str = env!(\"SOCKET_LABS_TEST_SECRET\");".to_owned(),
        ),
        (
            "zeros",
            "const STOLEN: &[u8] = include_bytes!(\"/dev/zero\");".to_owned(),
        ),
    ];
    for (student, attack) in &attacks {
        let src = class.path().join(student).join("echo/src");
        copy_folder(&solution, &src);
        let server = src.join("bin/echo-server.rs");
        let code = std::fs::read_to_string(&server).unwrap();
        let used = if attack.is_empty() {
            String::new()
        } else {
            format!("{attack}\n#[used]\nstatic KEEP: &[u8] = STOLEN.as_ref();\n")
        };
        // After the file's inner doc comment, which must come first.
        let doc_end = code
            .lines()
            .take_while(|line| line.starts_with("//!") || line.trim().is_empty())
            .map(|line| line.len() + 1)
            .sum::<usize>();
        let (doc, rest) = code.split_at(doc_end);
        std::fs::write(&server, format!("{doc}{used}{rest}")).unwrap();
    }
    let output = xtask()
        .env("SOCKET_LABS_TEST_SECRET", secret)
        .args(["grade-class", "--lab", "lab1", "-j", "2"])
        .arg(class.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stdout}\n{stderr}"
    );
    let grades = std::fs::read_to_string(class.path().join("grades.csv")).unwrap();
    let columns: Vec<&str> = grades.lines().next().unwrap().split(',').collect();
    let column = |name: &str| columns.iter().position(|column| *column == name).unwrap();
    // A row starts with a student's name (a reason may span lines).
    let rows: Vec<&str> = grades
        .lines()
        .filter(|line| {
            attacks
                .iter()
                .any(|(student, _)| line.starts_with(&format!("{student},")))
        })
        .collect();
    assert_eq!(rows.len(), attacks.len(), "{grades}");
    for line in rows {
        let cells: Vec<&str> = line.split(',').collect();
        let (student, score, max) = (cells[0], cells[column("score")], cells[column("max")]);
        let expected = if student == "alice" { max } else { "0" };
        assert_eq!(score, expected, "{student}: {line}\n{stdout}\n{stderr}");
    }
    for entry in std::fs::read_dir(class.path()).unwrap().flatten() {
        if entry.path().is_file() {
            let written = std::fs::read(entry.path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&written).contains(secret),
                "{} shows the secret",
                entry.path().display()
            );
        }
    }
    // The compiler said why: it could not read the files, which for it do
    // not exist, nor the grader's variable.
    let page_of = |student: &str| {
        let page = std::fs::read_dir(class.path())
            .unwrap()
            .flatten()
            .find(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("report-{student}-"))
            })
            .unwrap_or_else(|| panic!("{student}'s page"));
        std::fs::read_to_string(page.path()).unwrap()
    };
    for (student, why) in [
        ("reader", "No such file or directory"),
        ("quoter", "No such file or directory"),
        ("peer", "No such file or directory"),
        ("environment", "SOCKET_LABS_TEST_SECRET"),
    ] {
        let page = page_of(student);
        assert!(page.contains(why), "{student}: {page}");
    }
}

/// A student's grader runs without root: in a user namespace of its own it
/// still gives the grade a network namespace (loopback only, small socket
/// buffers), and grades as a root grader does, a server that tries to kill
/// it included. Here root becomes `nobody` to see it.
#[test]
fn without_root_a_grade_still_gets_a_network_namespace_of_its_own() {
    use std::os::unix::process::CommandExt;
    if !grader::harness::sandbox::policy::is_root() {
        eprintln!("skipped: becoming another user needs root");
        return;
    }
    const NOBODY: u32 = 65534;
    // Where `nobody` may run it from: the build folder may be private.
    let tools = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tools.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let xtask = tools.path().join("xtask");
    std::fs::copy(assert_cmd::cargo::cargo_bin("xtask"), &xtask).unwrap();
    // The server tries to kill its grader and forge results first.
    let programs = fixture_bin_dir("echo", &[("echo-server", "attack_forge_and_kill")]);
    let output = std::process::Command::new(&xtask)
        .args([
            "grade",
            "lab1",
            "--bin-dir",
            programs.path().to_str().unwrap(),
        ])
        .env(grader::harness::sandbox::REPORT_FOLDER_VARIABLE, "1")
        .env("HOME", tools.path())
        .env("TMPDIR", tools.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    let containment = report
        .lines()
        .find(|line| line.starts_with("containment: "))
        .unwrap_or_else(|| panic!("no containment line:\n{report}"));
    if !containment.contains("user ns") {
        eprintln!("skipped: this machine gives no user namespace to a user: {containment}");
        return;
    }
    assert!(containment.contains("net ns (loopback only)"), "{report}");
    assert_eq!(output.status.code(), Some(0), "{report}");
    let attempts = std::fs::read_to_string(outbox(&programs).join("attack_forge_and_kill"))
        .expect("the attack ran");
    assert!(!attempts.contains("killed"), "{attempts}");
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
