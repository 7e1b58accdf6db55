//! `cargo xtask grade` as a user meets it: names, exit codes, messages.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn xtask() -> Command {
    Command::cargo_bin("xtask").expect("the xtask binary")
}

/// A target dir in the course's own `target/` for a test that builds a copy
/// of the course, kept across runs for its dependency builds. One per test:
/// two copies built in one target dir write their binaries to the same files.
fn copy_target(test: &str) -> PathBuf {
    grader::builder::workspace_root()
        .join("target/copies")
        .join(test)
}

/// The course's own target dir, as `cargo test` built it (`CARGO_TARGET_DIR`
/// when set, as cargo does).
fn course_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || grader::builder::workspace_root().join("target"),
        PathBuf::from,
    )
}

/// Seeds `target`, the target dir of a copy of the course, from the
/// course's own, as `grade-class` seeds a submission's: the dependencies'
/// builds (`deps`, `build`, `.fingerprint` of `debug/`) are copied with
/// their modification times, so that cargo builds only the copy's own
/// crates; a fresh clone (CI) then compiles the dependencies once, not
/// once more per copy. The workspace's own crates are left out (the copy
/// builds its own anyway). Copied under cargo's lock of that folder, so
/// that no build of the course writes a file while it is copied.
fn seed_target(target: &Path) {
    let debug = course_target().join("debug");
    let Ok(lock) = std::fs::File::open(debug.join(".cargo-lock")) else {
        return; // nothing built yet: the copy builds everything
    };
    // SAFETY: flock on a descriptor we own, released when `lock` drops.
    while unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_SH) } != 0 {
        assert_eq!(
            std::io::Error::last_os_error().kind(),
            std::io::ErrorKind::Interrupted,
            "locking {}",
            debug.display()
        );
    }
    let own = workspace_crates();
    for folder in ["deps", "build", ".fingerprint"] {
        let into = target.join("debug").join(folder);
        std::fs::create_dir_all(&into).unwrap();
        let Ok(entries) = std::fs::read_dir(debug.join(folder)) else {
            continue;
        };
        let kept: Vec<PathBuf> = entries
            .map(|entry| entry.unwrap())
            .filter(|entry| !of_own_crate(&entry.file_name().to_string_lossy(), &own))
            .map(|entry| entry.path())
            .collect();
        for chunk in kept.chunks(500) {
            let copied = std::process::Command::new("cp")
                .args(["-a", "--reflink=auto", "-t"])
                .arg(&into)
                .args(chunk)
                .status()
                .unwrap();
            assert!(
                copied.success(),
                "seeding {} from {}",
                into.display(),
                debug.display()
            );
        }
    }
    drop(lock);
}

/// The crate names of the course's workspace (packages and their targets),
/// as cargo names their files: `-` as `_`.
fn workspace_crates() -> std::collections::BTreeSet<String> {
    let metadata =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "metadata",
                "--no-deps",
                "--offline",
                "--format-version",
                "1",
            ])
            .current_dir(grader::builder::workspace_root())
            .output()
            .unwrap();
    assert!(metadata.status.success(), "{metadata:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        names.insert(package["name"].as_str().unwrap().replace('-', "_"));
        for target in package["targets"].as_array().unwrap() {
            names.insert(target["name"].as_str().unwrap().replace('-', "_"));
        }
    }
    names
}

/// Whether a file or folder of a target dir is of one of the `own` crates:
/// `libgrader-0123abcd.rlib`, `grader-0123abcd` and `grader-0123abcd.d`
/// are of `grader` (`liblibc-…` and `libc-…` of no crate of ours).
fn of_own_crate(file: &str, own: &std::collections::BTreeSet<String>) -> bool {
    let stem = file.split('.').next().unwrap_or(file);
    let name = stem
        .rsplit_once('-')
        .map_or(stem, |(name, _)| name)
        .replace('-', "_");
    own.contains(&name)
        || name
            .strip_prefix("lib")
            .is_some_and(|name| own.contains(name))
}

/// Copies the course's files (tracked, or new and not ignored) into `to`.
fn copy_course(to: &Path) {
    let root = grader::builder::workspace_root();
    let listing = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("git");
    assert!(listing.status.success(), "this test needs a git checkout");
    for path in String::from_utf8_lossy(&listing.stdout).split('\0') {
        let source = root.join(path);
        if path.is_empty() || path.starts_with("bench/") || !source.is_file() {
            continue;
        }
        let target = to.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
}

/// Runs a binary this test has just written. Another test's thread that
/// forks meanwhile holds the file's write descriptor until its child execs:
/// exec then fails with ETXTBSY for a moment, which is no failure of ours.
fn output_of_fresh_binary(command: &mut std::process::Command) -> std::process::Output {
    let mut attempts = 0;
    loop {
        match command.output() {
            Err(err) if err.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.expect("running the copied binary"),
        }
    }
}

/// What lab 1 is out of, from the rubric.
fn lab1_total() -> u32 {
    grader::rubric::total(grader::Lab::find("echo").unwrap())
}

#[test]
fn an_unknown_lab_is_a_usage_error_that_lists_the_valid_names() {
    xtask()
        .args(["grade", "lab9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no lab is called `lab9`"))
        .stderr(predicate::str::contains("lab3 | 3 | multiconn"))
        .stderr(predicate::str::contains("all"));
}

#[test]
fn an_unknown_check_is_a_usage_error_that_lists_the_labs_checks() {
    xtask()
        .args(["grade", "lab1", "--check", "echo.nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("echo.nope"))
        .stderr(predicate::str::contains("echo.ready, echo.hello"));
}

#[test]
fn a_check_is_found_by_a_short_name_only_it_has() {
    let empty = tempfile::tempdir().unwrap();
    let assert = xtask()
        .args(["grade", "lab1", "--check", "hello", "--bin-dir"])
        .arg(empty.path())
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("echo.hello"), "{stdout}");
    assert!(!stdout.contains("echo.ready"), "{stdout}");
    // The total says it is one check of the lab's, not the lab's total.
    let checks = grader::rubric::for_lab(grader::Lab::find("echo").unwrap()).len();
    assert!(
        stdout.contains(&format!("lab1: 1 check of {checks}: 0/4")),
        "{stdout}"
    );
    // A name several checks share is refused, naming them.
    xtask()
        .args(["grade", "lab1", "--check", "client"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "echo.client_output, echo.client_large",
        ));
}

#[test]
fn grade_without_a_lab_lists_the_labs() {
    let assert = xtask().arg("grade").assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for lab in grader::LABS {
        assert!(
            stderr.contains(&format!("{:<5} {}", lab.name(), lab.slug)),
            "{stderr}"
        );
    }
    assert!(stderr.contains("cargo xtask grade LAB"), "{stderr}");
}

/// A stand-in course root holding a hard link to the xtask binary and an
/// empty `.grades/`: `hint` and `status` read that root's grades, not this
/// checkout's. Returns the root and the binary.
fn stand_in_course() -> (tempfile::TempDir, PathBuf) {
    // Beside the binary, on its file system, for the hard link below.
    let target = assert_cmd::cargo::cargo_bin("xtask")
        .parent()
        .unwrap()
        .to_path_buf();
    let root = tempfile::tempdir_in(target).unwrap();
    for marker in ["Cargo.toml", "grader/Cargo.toml", "xtask/Cargo.toml"] {
        let path = root.path().join(marker);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    // A hard link, not a copy: writing a copy races with other tests' forks.
    let bin = root.path().join("bin/xtask");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::hard_link(assert_cmd::cargo::cargo_bin("xtask"), &bin).unwrap();
    std::fs::create_dir_all(root.path().join(".grades")).unwrap();
    (root, bin)
}

/// `hint` reads the last grade from the course's `.grades/`.
#[test]
fn hint_at_full_marks_says_there_is_nothing_to_fix() {
    let (root, bin) = stand_in_course();
    let total = lab1_total();
    let checks: Vec<serde_json::Value> =
        grader::rubric::for_lab(grader::Lab::find("echo").unwrap())
            .iter()
            .map(|spec| serde_json::json!({"id": spec.id, "status": "passed"}))
            .collect();
    let report = serde_json::json!({
        "lab": "lab1", "slug": "echo", "score": total, "max_score": total,
        "checks": checks, "graded_at_unix": 0,
    });
    std::fs::write(root.path().join(".grades/echo.json"), report.to_string()).unwrap();
    Command::new(&bin)
        .env_remove("CARGO_MANIFEST_DIR")
        .current_dir(root.path())
        .args(["hint", "lab1"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "full marks, {total}/{total}: nothing to fix"
        )))
        .stdout(predicate::str::contains("hint:").not());
}

/// After a compile error, `hint` and `status` say "did not compile" and
/// show the compiler's first error with its location, not the hint of the
/// first check nor a list of every check as failing.
#[test]
fn hint_and_status_after_a_compile_error_show_the_first_error() {
    let (root, bin) = stand_in_course();
    let message = "labs/echo did not compile:\n   Compiling echo v0.1.0 (/course/labs/echo)\n\
        error[E0308]: mismatched types\n  --> labs/echo/src/bin/echo-server.rs:28:18\n   |\n\
        28 |     let x: u32 = \"nope\";\n   |            ---   ^^^^^^ expected `u32`, found `&str`\n\n\
        error: could not compile `echo` (bin \"echo-server\") due to 1 previous error\n\
        warning: build failed, waiting for other jobs to finish...\n";
    let checks: Vec<serde_json::Value> =
        grader::rubric::for_lab(grader::Lab::find("echo").unwrap())
            .iter()
            .map(|spec| {
                serde_json::json!({"id": spec.id, "status": "not_run", "hint": spec.hint,
                    "failure": {"summary": grader::runner::not_run_because(message)}})
            })
            .collect();
    let report = serde_json::json!({
        "lab": "lab1", "slug": "echo", "score": 0, "max_score": lab1_total(),
        "checks": checks, "graded_at_unix": 0, "state": "did_not_compile",
        "build": {"state": "failed", "message": message},
    });
    std::fs::write(root.path().join(".grades/echo.json"), report.to_string()).unwrap();
    let run = |args: &[&str]| {
        let assert = Command::new(&bin)
            .env_remove("CARGO_MANIFEST_DIR")
            .current_dir(root.path())
            .args(args)
            .assert()
            .success();
        String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
    };
    let hint = run(&["hint", "lab1"]);
    assert!(
        hint.contains("lab1 in your last grade (")
            && hint.contains("did not compile, so no check ran"),
        "{hint}"
    );
    assert!(
        hint.contains(
            "error[E0308]: mismatched types\n  --> labs/echo/src/bin/echo-server.rs:28:18"
        ),
        "{hint}"
    );
    assert!(hint.contains("expected `u32`, found `&str`"), "{hint}");
    assert!(!hint.contains("hint:"), "{hint}");
    assert!(!hint.contains("echo.ready"), "{hint}");
    assert!(!hint.contains("waiting for other jobs"), "{hint}");
    // A check named still gets its hint.
    assert!(run(&["hint", "lab1", "ready"]).contains("hint:"));

    let status = run(&["status"]);
    let line = status
        .lines()
        .find(|line| line.starts_with("lab1"))
        .unwrap();
    assert!(
        line.ends_with(
            "did not compile: error[E0308]: mismatched types at labs/echo/src/bin/echo-server.rs:28:18"
        ),
        "{status}"
    );
    assert!(!line.contains("echo.ready"), "{status}");
}

/// The banner says what `watch` waits for once per grade: a hint, or any
/// other key, does not repeat it.
#[test]
fn watch_prints_its_banner_once() {
    let assert = xtask()
        .args(["watch", "lab1"])
        .write_stdin("hxq")
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert_eq!(stdout.matches("watching labs/echo").count(), 1, "{stdout}");
    assert!(stdout.contains("hint:"), "{stdout}");
}

/// Every command that grades takes `--time-scale` and `--seed` from one
/// parser: a bad value is a usage error before anything is built or run.
#[test]
fn bad_shared_options_are_usage_errors_in_every_grading_command() {
    let commands: [&[&str]; 6] = [
        &["grade", "lab1"],
        &["watch", "lab1"],
        &["verify", "lab1"],
        &["soak", "lab1"],
        &["grade-class", "."],
        &["bench"],
    ];
    for command in commands {
        for (option, value) in [
            ("--time-scale", "-1"),
            ("--time-scale", "0"),
            ("--time-scale", "nan"),
            ("--time-scale", "1e300"),
            ("--seed", "-1"),
            ("--seed", "x"),
        ] {
            xtask()
                .args(command)
                .args([option, value])
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!("`{value}` is not a")));
        }
    }
}

#[test]
fn solution_and_bin_dir_exclude_each_other() {
    xtask()
        .args(["grade", "1", "--solution", "--bin-dir", "."])
        .assert()
        .code(2);
}

#[test]
fn a_bin_dir_without_the_programs_scores_zero_and_exits_1() {
    let empty = tempfile::tempdir().unwrap();
    xtask()
        .args(["grade", "echo", "--bin-dir"])
        .arg(empty.path())
        .env("NO_COLOR", "1")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("✗ echo.hello"))
        .stdout(predicate::str::contains(
            "no executable named `echo-server`",
        ))
        .stdout(predicate::str::is_match(r"(?m)^lab1: 0/\d+$").unwrap());
}

/// `--html` writes the page; `report` finds the last grade's page (another
/// test's grade may be the last by then) and writes it where asked.
#[test]
fn grade_writes_an_html_page_and_report_finds_the_last_one() {
    let empty = tempfile::tempdir().unwrap();
    let page = empty.path().join("page.html");
    xtask()
        .args(["grade", "echo", "--bin-dir"])
        .arg(empty.path())
        .arg("--html")
        .arg(&page)
        .assert()
        .code(1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("id=\"echo.hello\""));
    let copy = empty.path().join("copy.html");
    xtask()
        .arg("report")
        .arg("--out")
        .arg(&copy)
        .assert()
        .success()
        .stdout(predicate::str::ends_with("copy.html\n"));
    assert!(
        std::fs::read_to_string(&copy)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
}

#[test]
fn json_output_is_one_object_per_lab_with_every_check() {
    let empty = tempfile::tempdir().unwrap();
    let output = xtask()
        .args(["grade", "lab1", "--format", "json", "--bin-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["lab"], "lab1");
    assert_eq!(report["score"], 0);
    for check in report["checks"].as_array().unwrap() {
        for key in [
            "id",
            "title",
            "status",
            "points",
            "max_points",
            "hint",
            "handout",
            "duration",
        ] {
            assert!(check.get(key).is_some(), "{key} missing in {check}");
        }
    }
}

#[test]
fn gradescope_and_junit_exports_are_valid() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("results.json");
    let junit = out.path().join("junit.xml");
    xtask()
        .args(["grade", "lab1", "--bin-dir"])
        .arg(empty.path())
        .arg("--gradescope")
        .arg(&results)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(1);

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(results["score"], 0);
    assert!(results["execution_time"].is_u64());
    assert!(results["output"].as_str().unwrap().contains("lab1: 0/"));
    let tests = results["tests"].as_array().unwrap();
    assert_eq!(
        tests.len(),
        grader::rubric::for_lab(grader::Lab::find("echo").unwrap()).len()
    );
    for test in tests {
        for key in [
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
        ] {
            assert!(test.get(key).is_some(), "{key} missing in {test}");
        }
        assert_eq!(test["status"], "failed");
    }

    let xml = std::fs::read_to_string(&junit).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut testcases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(tag) | quick_xml::events::Event::Empty(tag) => {
                match tag.name().as_ref() {
                    b"testcase" => testcases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(testcases, tests.len());
    assert_eq!(failures, tests.len());
}

#[test]
fn hint_names_the_handout_section() {
    xtask()
        .args(["hint", "lab1", "client_half_close"])
        .assert()
        .success()
        .stdout(predicate::str::contains("echo.client_half_close"))
        .stdout(predicate::str::contains(
            "labs/echo/README.md#the-half-close",
        ));
    xtask()
        .args(["hint", "lab1", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("its checks: echo.ready"));
    // The same short names as `grade --check`.
    xtask()
        .args(["hint", "lab1", "refused"])
        .assert()
        .success()
        .stdout(predicate::str::contains("echo.client_refused"));
    xtask()
        .args(["hint", "lab1", "half_close"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "could be any of echo.echo_before_half_close, echo.client_half_close",
        ));
}

#[test]
fn status_lists_all_six_labs() {
    let assert = xtask().arg("status").assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for lab in grader::LABS {
        assert!(stdout.contains(&lab.name()), "{stdout}");
    }
}

/// The student edition builds and grades lab 1 on its own: no solutions, no
/// test that needs them, and no Cargo file that names them.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn the_student_edition_builds_and_grades_lab1() {
    let out = tempfile::tempdir().unwrap();
    let dist = out.path().join("course");
    xtask().arg("dist").arg(&dist).assert().success();
    assert!(!dist.join("solutions").exists());
    // Of the grader's tests, only the kernel claims the handouts link.
    let tests: Vec<_> = std::fs::read_dir(dist.join("grader/tests"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(tests, ["kernel_claims.rs"]);
    assert!(dist.join("grader/snapshots/echo.server_log.snap").exists());
    assert!(dist.join(".github/workflows/classroom.yml").exists());
    for manifest in [
        "Cargo.toml",
        "grader/Cargo.toml",
        "xtask/Cargo.toml",
        "labs/echo/Cargo.toml",
    ] {
        let text = std::fs::read_to_string(dist.join(manifest)).unwrap();
        assert!(
            !text.contains("solutions"),
            "{manifest} names the solutions"
        );
    }
    let target = out.path().join("target");
    seed_target(&target);
    let grade =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["xtask", "grade", "lab1"])
            .current_dir(&dist)
            .env("CARGO_TARGET_DIR", &target)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&grade.stdout);
    assert_eq!(
        grade.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&grade.stderr)
    );
    let lab1 = format!("lab1: 0/{}", lab1_total());
    assert!(stdout.contains(&lab1), "{stdout}");
    assert!(stdout.contains("✗ echo.hello"), "{stdout}");
    assert!(!dist.join("grader/mutants-reviewed.toml").exists());
    assert!(!dist.join("xtask/tests/mutants.rs").exists());

    // The edition passes its own tests: those that need the solutions or
    // the course's own tests are ignored, and say why. In the target dir of
    // the grade above, seeded from the course's, so that only the edition's
    // own crates and what its tests add build.
    // As students get it: a repository (GitHub Classroom's template), which
    // `grade-class` and `dist` export their committed course from.
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "the student edition",
        ],
    ] {
        let git = std::process::Command::new("git")
            .args(args)
            .current_dir(&dist)
            .output()
            .unwrap();
        assert!(git.status.success(), "git {args:?}: {git:?}");
    }
    let started = std::time::Instant::now();
    let test =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["test", "--workspace"])
            .current_dir(&dist)
            .env("CARGO_TARGET_DIR", &target)
            .env("NO_COLOR", "1")
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("SOCKET_LABS_REQUIRE_CONTAINMENT")
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&test.stdout);
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success(), "{stdout}\n{stderr}");
    let ignored: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains("... ignored"))
        .collect();
    // What the seed did not spare: the edition's own crates, and any
    // dependency that had to be built again.
    let compiled: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Compiling "))
        .map(|what| what.split(" (").next().unwrap_or(what))
        .collect();
    eprintln!(
        "the edition's cargo test --workspace: {:.1} s; compiled {}: {}; ignored:\n{}",
        started.elapsed().as_secs_f64(),
        compiled.len(),
        compiled.join(", "),
        ignored.join("\n")
    );
    assert!(
        ignored.iter().any(
            |line| line.contains("every_seeded_bug_scores_what_it_predicts")
                && line.contains("needs the reference solutions")
        ),
        "{stdout}"
    );
    assert!(
        ignored
            .iter()
            .any(|line| line.contains("every_lab_has_its_classic_bugs_listed")),
        "{stdout}"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

/// A one-lab edition says how to check the lab it shipped, and its `grade`
/// lists only that lab, refusing another with a usage error.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "dist exports the committed course, which the student edition is not"
)]
fn a_one_lab_edition_checks_and_lists_only_its_lab() {
    // Beside the binary, on its file system, for the hard link below.
    let out =
        tempfile::tempdir_in(assert_cmd::cargo::cargo_bin("xtask").parent().unwrap()).unwrap();
    let dist = out.path().join("course");
    xtask()
        .args(["dist", "--lab", "lab3"])
        .arg(&dist)
        .assert()
        .success()
        .stdout(predicate::str::contains("cargo xtask grade lab3"))
        .stdout(predicate::str::contains("grade lab1").not());
    // The xtask, started inside the edition: the course is where it runs.
    let bin = dist.join("bin/xtask");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::hard_link(assert_cmd::cargo::cargo_bin("xtask"), &bin).unwrap();
    let listing = Command::new(&bin)
        .env_remove("CARGO_MANIFEST_DIR")
        .current_dir(&dist)
        .arg("grade")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&listing.get_output().stderr).into_owned();
    assert!(stderr.contains("lab3"), "{stderr}");
    assert!(!stderr.contains("lab1"), "{stderr}");
    Command::new(&bin)
        .env_remove("CARGO_MANIFEST_DIR")
        .current_dir(&dist)
        .args(["grade", "lab1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not in this edition"));
}

/// The course keeps its conventions (`cargo xtask course-check`, which is
/// course-only: the student edition has no such command).
#[test]
#[cfg_attr(
    student_edition,
    ignore = "course-check is course-only: the student edition has no such command"
)]
fn course_check_passes_on_the_course() {
    xtask()
        .arg("course-check")
        .assert()
        .success()
        .stdout(predicate::str::contains("course-check: ok"));
}

/// Calibration through the command instructors use (each lab's own test file
/// checks its solution and stub with the same library calls).
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn verify_reports_lab1_as_calibrated() {
    xtask().args(["verify", "lab1"]).assert().success().stdout(
        predicate::str::is_match(format!(r"lab1\s+echo\s+{0}/{0}\s+0/{0}\s+ok", lab1_total()))
            .unwrap(),
    );
}

/// A course moved with its `target/` grades its own files: the copied xtask
/// binary, started directly (no cargo to tell it where it is), builds and
/// grades the copy's lab 1, which holds the reference solution, while the
/// original's lab 1 is the stub.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn a_moved_course_grades_its_own_files() {
    let root = grader::builder::workspace_root();
    let moved = tempfile::tempdir().unwrap();
    let course = moved.path().join("course");
    copy_course(&course);
    let lab_src = course.join("labs/echo/src");
    std::fs::remove_dir_all(&lab_src).unwrap();
    copy_dir(&root.join("solutions/echo/src"), &lab_src);
    let binary = course.join("target/debug/xtask");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::copy(assert_cmd::cargo::cargo_bin("xtask"), &binary).unwrap();

    let output = output_of_fresh_binary(
        std::process::Command::new(&binary)
            .args(["grade", "lab1"])
            .env_remove("CARGO_MANIFEST_DIR")
            .env("CARGO_TARGET_DIR", copy_target("moved"))
            .env("NO_COLOR", "1")
            .current_dir(moved.path()),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let full = grader::rubric::for_lab(grader::Lab::find("echo").unwrap())
        .iter()
        .map(|spec| spec.points)
        .sum::<u32>();
    assert!(
        stdout.contains(&format!("lab1: {full}/{full}")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        course.join(".grades").exists(),
        "the grade was recorded outside the copy"
    );
}

/// Scripts take the lab list from `cargo xtask labs`: the lab table, in order.
#[test]
fn labs_lists_the_lab_table() {
    let slugs: Vec<&str> = grader::LABS.iter().map(|lab| lab.slug).collect();
    xtask()
        .arg("labs")
        .assert()
        .success()
        .stdout(format!("{}\n", slugs.join("\n")));
    let binaries = xtask().args(["labs", "--binaries"]).output().unwrap();
    let binaries = String::from_utf8_lossy(&binaries.stdout).into_owned();
    for lab in grader::LABS {
        for name in lab.binaries {
            assert!(binaries.lines().any(|line| line == *name), "{name}");
        }
    }
}

/// Runs `platforms/gradescope/run_autograder` on a simulated `/autograder`
/// tree under `root`, with the course's xtask at `xtask`; returns the
/// results.json it left.
fn run_autograder(root: &Path, xtask: &Path, labs: &str) -> serde_json::Value {
    let script = grader::builder::workspace_root().join("platforms/gradescope/run_autograder");
    let output = std::process::Command::new("bash")
        .arg(script)
        .env("AUTOGRADER_ROOT", root)
        .env("XTASK", xtask)
        .env("LABS", labs)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", copy_target("gradescope"))
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "run_autograder failed:\n{log}");
    let results = std::fs::read(root.join("results/results.json"))
        .unwrap_or_else(|err| panic!("no results.json ({err}):\n{log}"));
    serde_json::from_slice(&results).unwrap_or_else(|err| panic!("{err}:\n{log}"))
}

/// The Gradescope flow on a simulated `/autograder` tree: the course built in
/// `source/`, a submission zipped with an extra parent folder holding two
/// labs, and `LABS` selecting one. Only that lab is graded, from the
/// submission's files; a lab missing from the submission gets a results
/// file that says what was expected; a grader that dies leaves a results
/// file saying grading was interrupted, never the file it was writing.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn run_autograder_grades_the_selected_lab_of_a_submission_in_a_parent_folder() {
    let root = grader::builder::workspace_root();
    let autograder = tempfile::tempdir().unwrap();
    let ag = autograder.path();
    copy_course(&ag.join("source"));
    let xtask = ag.join("source/target/debug/xtask");
    std::fs::create_dir_all(xtask.parent().unwrap()).unwrap();
    std::fs::copy(assert_cmd::cargo::cargo_bin("xtask"), &xtask).unwrap();
    for slug in ["echo", "errors"] {
        copy_dir(
            &root.join("solutions").join(slug).join("src"),
            &ag.join("submission/Lab work/labs").join(slug).join("src"),
        );
    }
    // A results file planted before grading is never what Gradescope reads.
    std::fs::create_dir_all(ag.join("results")).unwrap();
    std::fs::write(ag.join("results/results.json"), r#"{"score": 999}"#).unwrap();

    let started = std::time::Instant::now();
    let results = run_autograder(ag, &xtask, "lab1");
    eprintln!(
        "simulated Gradescope run of lab1: {:.1} s, results.json:\n{results:#}",
        started.elapsed().as_secs_f64()
    );
    let echo = grader::rubric::for_lab(grader::Lab::find("echo").unwrap());
    let full: u32 = echo.iter().map(|spec| spec.points).sum();
    assert_eq!(results["score"], full, "{results:#}");
    let tests = results["tests"].as_array().unwrap();
    assert_eq!(tests.len(), echo.len(), "{results:#}");
    assert!(
        tests
            .iter()
            .all(|test| test["name"].as_str().unwrap().contains("echo.")),
        "{results:#}"
    );

    // A submission that does not compile: the compiler's first errors are
    // in the top-level output the student sees, and each test says so.
    let server = ag.join("submission/Lab work/labs/echo/src/bin/echo-server.rs");
    let good = std::fs::read_to_string(&server).unwrap();
    std::fs::write(
        &server,
        format!("{good}\nfn broken() -> u32 {{ \"not a number\" }}\n"),
    )
    .unwrap();
    let results = run_autograder(ag, &xtask, "lab1");
    assert_eq!(results["score"], 0, "{results:#}");
    assert_eq!(results["extra_data"]["state"]["lab1"], "did_not_compile");
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("Did not compile"), "{output}");
    assert!(
        output.contains("error[E0308]: mismatched types"),
        "{output}"
    );
    assert!(output.lines().count() < 60, "{output}");
    let test = results["tests"][0]["output"].as_str().unwrap();
    assert!(
        test.contains("did not compile; the compiler's messages are at the top of this report"),
        "{test}"
    );
    std::fs::write(&server, good).unwrap();

    // An assignment for lab 2 when only lab 1 was uploaded: never a silent 0.
    std::fs::remove_dir_all(ag.join("submission/Lab work/labs/errors")).unwrap();
    let results = run_autograder(ag, &xtask, "errors");
    assert_eq!(results["score"], 0);
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("no sources for lab2 (errors)"), "{output}");
    assert!(output.contains("`bin/socket-errors.rs`"), "{output}");
    assert!(
        output.contains("Lab work/labs/echo/src/bin/echo-server.rs"),
        "{output}"
    );

    // A grader killed while a graded program forges the results.
    let killed = ag.join("killed-xtask");
    std::fs::write(
        &killed,
        "#!/bin/sh\n[ \"$1\" = grade ] || exit 0\nshift 2\necho '{\"score\": 999}' > \"$2\"\nkill -9 $$\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&killed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let results = run_autograder(ag, &killed, "lab1");
    assert_eq!(results["score"], 0, "{results:#}");
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("interrupted"), "{output}");
    assert!(output.contains("status 137"), "{output}");
}

/// Copies the files of `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The commands in a "try it" line: its `backticked` parts, or the whole
/// line when it has none, split where the shell starts a new command.
fn commands_of(manual: &str) -> Vec<String> {
    let spans: Vec<&str> = if manual.contains('`') {
        manual.split('`').skip(1).step_by(2).collect()
    } else {
        vec![manual]
    };
    // A `$(…)` is a command of its own, and a word where it stands.
    let mut lines = Vec::new();
    for span in spans {
        let mut rest = span.to_owned();
        while let Some(start) = rest.rfind("$(") {
            let end = rest[start..].find(')').map_or(rest.len(), |at| start + at);
            lines.push(rest[start + 2..end].to_owned());
            rest.replace_range(start..(end + 1).min(rest.len()), "WORD");
        }
        lines.push(rest);
    }
    lines
        .iter()
        .flat_map(|span| {
            span.split([';', '|', '&'])
                .map(str::trim)
                .map(|command| {
                    ["do ", "then "]
                        .iter()
                        .fold(command, |c, keyword| c.strip_prefix(keyword).unwrap_or(c))
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .filter(|command| {
            command.chars().any(char::is_alphanumeric)
                && !["for ", "done", "wait"]
                    .iter()
                    .any(|keyword| command.starts_with(keyword))
        })
        .collect()
}

/// Every "try it" line runs as printed on a stock machine: each program it
/// names is installed here, or is cargo running one of the course's own
/// commands (`cargo xtask SUB`, `cargo run -p LAB --bin BIN`), or a lab
/// binary cargo built (`target/debug/BIN`). `nc` is not on a stock machine.
#[test]
fn every_try_it_line_names_programs_that_exist() {
    let root = grader::builder::workspace_root();
    let lab_binary = |package: &str, binary: &str| {
        grader::LABS.iter().any(|lab| {
            lab.slug == package && lab.binaries.contains(&binary)
                || (package.is_empty() && lab.binaries.contains(&binary))
        })
    };
    for lab in grader::LABS {
        for spec in grader::rubric::for_lab(lab) {
            for command in commands_of(&spec.manual) {
                let words: Vec<&str> = command.split_whitespace().collect();
                let ok = match words.as_slice() {
                    ["cargo", "xtask", sub, ..] => xtask()
                        .args([sub, "--help"])
                        .output()
                        .unwrap()
                        .status
                        .success(),
                    ["cargo", "run", rest @ ..] => {
                        let after = |flag: &str| {
                            rest.iter()
                                .position(|word| *word == flag)
                                .and_then(|at| rest.get(at + 1))
                                .copied()
                                .unwrap_or_default()
                        };
                        lab_binary(after("-p"), after("--bin"))
                    }
                    ["cargo", "build" | "test", ..] => true,
                    [program, ..] if program.starts_with("target/debug/") => {
                        let binary = program.trim_start_matches("target/debug/");
                        binary == "xtask" || lab_binary("", binary)
                    }
                    [program, ..] => std::process::Command::new("sh")
                        .args(["-c", &format!("command -v {program}")])
                        .current_dir(&root)
                        .output()
                        .unwrap()
                        .status
                        .success(),
                    [] => true,
                };
                assert!(
                    ok && !words.contains(&"nc"),
                    "{}: `{command}` does not run on a stock machine (in: {})",
                    spec.id,
                    spec.manual
                );
            }
        }
    }
}

/// `cargo xtask send` against a loopback echo server: what it sends comes
/// back on stdout once it half-closes.
#[test]
fn send_talks_to_a_tcp_server_and_half_closes() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        stream.write_all(&received).unwrap();
    });
    xtask()
        .args(["send", "127.0.0.1", &port.to_string(), "--half-close"])
        .write_stdin("Hello, world")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout("Hello, world");
    server.join().unwrap();
}

/// `cargo xtask send --udp`: one datagram out, the reply printed.
#[test]
fn send_udp_prints_the_reply() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut buffer = [0; 100];
        let (n, from) = socket.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"hi");
        socket.send_to(b"Got your message!", from).unwrap();
    });
    xtask()
        .args(["send", "--udp", "127.0.0.1", &port.to_string()])
        .write_stdin("hi")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout("Got your message!\n");
    server.join().unwrap();
}

/// The build of lab 4's framing tests shows cargo's progress: a first
/// build of them takes a while, and a grade that says nothing meanwhile
/// looks stuck. They build in the lab's own cargo run, whose output is
/// shown as it comes.
#[test]
fn the_framing_tests_build_shows_cargos_progress() {
    let assert = xtask()
        .args(["grade", "lab4", "--check", "app.framing_tests"])
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(600))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    // Cargo's last line of the build of the lab and its framing tests.
    assert!(stderr.contains("Finished `dev` profile"), "{stderr}");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("lab4: 1 check of "), "{stdout}");
}

/// A grade removes what it made in the temporary folder before it exits:
/// the staged copy of a `--bin-dir` folder (copied whole, here with a few
/// copies of the executables beside them, as a program's modules would
/// be), the programs' homes. The copy used to be left half removed about
/// once in 16 grades under load, by a check thread that let go of the
/// grade's sandbox last and was still removing it as the process exited:
/// a race this test can only sometimes catch; the runner now lets go
/// before it reports.
#[test]
#[cfg_attr(
    student_edition,
    ignore = "needs the reference solutions (solutions/), which the student edition leaves out"
)]
fn a_grade_leaves_nothing_in_the_temporary_folder() {
    use std::os::unix::fs::PermissionsExt;
    let lab = grader::Lab::find("lab6").unwrap();
    let built = grader::builder::build(
        lab,
        grader::builder::Edition::Solution,
        grader::builder::CompilerOutput::Capture,
    )
    .unwrap();
    let bins = tempfile::tempdir().unwrap();
    for (name, path) in &built.paths {
        std::fs::copy(path, bins.path().join(name)).unwrap();
        for module in 0..4 {
            std::fs::copy(path, bins.path().join(format!("{name}.module{module}"))).unwrap();
        }
    }
    // Programs run from the staged copy as another user: they must be able
    // to reach it.
    let temporary = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temporary.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for run in 1..=3 {
        xtask()
            .args(["grade", "lab6", "--bin-dir"])
            .arg(bins.path())
            .env("TMPDIR", temporary.path())
            .assert()
            .success();
        let left: Vec<_> = std::fs::read_dir(temporary.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "run {run} left {left:?}");
    }
}
