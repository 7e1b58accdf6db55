//! Building the crate that is graded, and finding exactly its executables.
//!
//! Student crates build in the course workspace (`target/`), reference
//! solutions in their own workspace (`solutions/target/`), so an executable of
//! one can never stand in for the other. The paths come from cargo's own
//! report of what it built, not from guessing at `target/debug`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use serde::Deserialize;

use crate::harness::Binaries;
use crate::lab::Lab;

mod messages;
mod previous;
pub use messages::{
    FIRST_ERROR_LINES, SCREENFUL_BYTES, SCREENFUL_LINES, first_error_line, first_errors,
    strip_colours,
};
pub use previous::Previous;

/// Which crate of a lab to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// `labs/SLUG`, the student's crate.
    Student,
    /// `solutions/SLUG`, the reference crate.
    Solution,
}

impl Edition {
    /// `student` or `solution`, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Edition::Student => "student",
            Edition::Solution => "solution",
        }
    }
}

/// The root of the course workspace, found at run time.
///
/// A course is copied or moved with its `target/` (a Gradescope image is
/// prepared that way), and cargo does not rebuild after a move, so a path
/// fixed at compile time would grade the old folder. The root is the nearest
/// ancestor that holds the course's manifests, searched from, in order:
/// - `CARGO_MANIFEST_DIR` in the environment, which `cargo run`,
///   `cargo xtask` and `cargo test` set to the package being run;
/// - the running executable (`target/debug/xtask`, a test in
///   `target/debug/deps/`), for a binary started directly;
/// - the current directory.
///
/// Only when none of them is inside a course does the compile-time folder
/// stand in.
pub fn workspace_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let starts = [
            std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
            std::env::current_exe().ok(),
            std::env::current_dir().ok(),
        ];
        starts
            .into_iter()
            .flatten()
            .find_map(|start| course_root_above(&start))
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .expect("grader/ is inside the workspace")
                    .to_path_buf()
            })
    })
    .clone()
}

/// The nearest ancestor of `start` (itself included) that is a course root:
/// a workspace manifest next to `grader/` and `xtask/`. The solutions'
/// workspace and a lab crate are not, so a start inside them goes on up.
pub fn course_root_above(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            ["Cargo.toml", "grader/Cargo.toml", "xtask/Cargo.toml"]
                .iter()
                .all(|file| dir.join(file).is_file())
        })
        .map(Path::to_path_buf)
}

/// How compiler output reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompilerOutput {
    /// Shown on the terminal as the compiler prints it, and also kept in
    /// the error message: every report (results.json, JUnit, the page)
    /// shows the compiler's first errors, not only the terminal.
    Show,
    /// Kept, and returned in the error message (tests, batch grading).
    Capture,
}

/// Builds the lab's crate and returns its executables, or a message saying
/// why it did not build (the compiler's own output has already been shown,
/// or is in the message with [`CompilerOutput::Capture`]).
pub fn build(lab: &Lab, edition: Edition, output: CompilerOutput) -> Result<Binaries, String> {
    build_with(lab, edition, output, None)
}

/// [`build`], sealed ([`BuildSpec::sealed`]) when `sealed` is a time limit:
/// for platform grading, where the course and its crates were prepared
/// beforehand and nothing a student wrote may keep a build running.
pub fn build_with(
    lab: &Lab,
    edition: Edition,
    output: CompilerOutput,
    sealed: Option<Duration>,
) -> Result<Binaries, String> {
    build_crate(&spec_for(lab, edition, output, sealed)?)
}

/// What [`build_with`] builds: the crate of `lab` in `edition`.
pub fn spec_for(
    lab: &Lab,
    edition: Edition,
    output: CompilerOutput,
    sealed: Option<Duration>,
) -> Result<BuildSpec<'_>, String> {
    let root = workspace_root();
    if edition == Edition::Solution && !root.join("solutions/Cargo.toml").exists() {
        return Err(
            "this copy of the course has no reference solutions (it is the student edition)".into(),
        );
    }
    let (workspace_manifest, crate_dir) = match edition {
        Edition::Student => (root.join("Cargo.toml"), root.join(lab.student_dir())),
        Edition::Solution => (
            root.join("solutions/Cargo.toml"),
            root.join(lab.solution_dir()),
        ),
    };
    let crate_name = crate_dir
        .strip_prefix(&root)
        .unwrap_or(&crate_dir)
        .display()
        .to_string();
    Ok(BuildSpec {
        lab,
        workspace_manifest,
        crate_dir,
        crate_name,
        target_dir: None,
        output,
        sealed,
    })
}

/// Where and how to build one lab crate.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    /// The lab whose binaries to collect.
    pub lab: &'a Lab,
    /// The `Cargo.toml` of the workspace the crate belongs to.
    pub workspace_manifest: PathBuf,
    /// The crate's directory.
    pub crate_dir: PathBuf,
    /// How to name the crate in messages (`labs/echo`).
    pub crate_name: String,
    /// A target directory other than the workspace's.
    pub target_dir: Option<PathBuf>,
    /// Where compiler messages go.
    pub output: CompilerOutput,
    /// For platform grading (`grade-class`, Gradescope's
    /// `grade --build-timeout`): build `--locked --offline`, with
    /// the course's lock and crates already fetched, and stop the build (and
    /// every compiler it started) after this long. A student's own
    /// `cargo xtask grade` leaves it `None`: a first build on a fresh clone
    /// may need the registry, and its length depends on the laptop.
    pub sealed: Option<Duration>,
}

/// Builds the crate of `spec` and returns exactly the executables cargo
/// reports for it, remembered for the next grade ([`Previous`]).
///
/// A lab with tests of the grader's own (`Lab::grader_tests`, a member of
/// the same workspace that depends on the graded crate) builds them in the
/// same cargo run, without running them: they run later as a graded
/// program. One run instead of two saves a no-op build (a tenth of lab 4's
/// grade); `--keep-going` builds the binaries even when the tests do not
/// compile against the crate, so each gets its own verdict.
pub fn build_crate(spec: &BuildSpec<'_>) -> Result<Binaries, String> {
    let built = build_crate_once(spec);
    match &built {
        Ok(binaries) => previous::remember(spec, binaries),
        Err(_) => previous::forget(spec),
    }
    built
}

fn build_crate_once(spec: &BuildSpec<'_>) -> Result<Binaries, String> {
    let mut command = cargo_command(spec);
    command
        .args([
            "build",
            "--bins",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&spec.workspace_manifest)
        .args(["--package", spec.lab.package]);
    if let Some(package) = spec.lab.grader_tests {
        // The test target is named after its package, and is left out of
        // a plain `cargo test` (`test = false`): it is selected by name.
        command.args(["--package", package, "--test", package, "--keep-going"]);
    }
    common_args(&mut command, spec);
    let tee = spec.output == CompilerOutput::Show;
    if tee && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // Colours on the terminal, as cargo gives them to a terminal; the
        // kept copy is stripped of them.
        command.arg("--color=always");
    }
    command.stderr(Stdio::piped());
    let result = run_cargo(command, spec, tee)?;
    let compiler_output = || strip_colours(&String::from_utf8_lossy(&result.stderr));
    let did_not_compile = || {
        format!(
            "{} did not compile:\n{}",
            spec.crate_name,
            compiler_output()
        )
    };
    let messages = artifacts(&result.stdout);
    let manifest = spec.crate_dir.join("Cargo.toml");
    let mut binaries = Binaries {
        origin: spec.crate_name.clone(),
        crate_dir: Some(spec.crate_dir.clone()),
        target_dir: spec.target_dir.clone(),
        ..Binaries::default()
    };
    for message in &messages {
        if Path::new(&message.manifest_path) != manifest {
            continue;
        }
        if let (Some(executable), Some(target)) = (&message.executable, &message.target) {
            if spec.lab.binaries.contains(&target.name.as_str()) {
                binaries
                    .paths
                    .insert(target.name.clone(), executable.clone());
            }
        }
    }
    let missing = spec
        .lab
        .binaries
        .iter()
        .find(|name| !binaries.paths.contains_key(**name));
    if let Some(name) = missing {
        return Err(if result.status.success() {
            format!("{} built no binary named `{name}`", spec.crate_name)
        } else {
            did_not_compile()
        });
    }
    if let Some(package) = spec.lab.grader_tests {
        binaries.tests = Some(test_executable(&messages).ok_or_else(|| {
            if result.status.success() {
                format!("cargo built no test executable for `{package}`")
            } else {
                format!(
                    "the grader's tests of {} did not compile against it:\n{}",
                    spec.crate_name,
                    compiler_output()
                )
            }
        }));
    } else if !result.status.success() {
        return Err(did_not_compile());
    }
    Ok(binaries)
}

/// Builds only the grader's own tests of a crate (`package`, a member of
/// the same workspace that depends on it), as [`build_crate`] does with its
/// binaries: for a library whose package is not the lab's (the course's
/// tests of broken libraries). Returns the test executable, or the
/// compiler's messages when they do not compile against the crate.
pub fn build_grader_tests(spec: &BuildSpec<'_>, package: &str) -> Result<PathBuf, String> {
    let mut command = cargo_command(spec);
    command.args([
        "build",
        "--message-format=json-render-diagnostics",
        "--manifest-path",
    ]);
    command.arg(&spec.workspace_manifest);
    command.args(["--package", package, "--test", package]);
    common_args(&mut command, spec);
    command.stderr(Stdio::piped());
    let result = run_cargo(command, spec, spec.output == CompilerOutput::Show)?;
    if !result.status.success() {
        return Err(format!(
            "the grader's tests of {} did not compile against it:\n{}",
            spec.crate_name,
            strip_colours(&String::from_utf8_lossy(&result.stderr))
        ));
    }
    test_executable(&artifacts(&result.stdout))
        .ok_or_else(|| format!("cargo built no test executable for `{package}`"))
}

/// The artifacts cargo reports on its standard output.
fn artifacts(stdout: &[u8]) -> Vec<ArtifactMessage> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<ArtifactMessage>(line).ok())
        .filter(|message| message.reason == "compiler-artifact")
        .collect()
}

/// The test executable among the artifacts of a build.
fn test_executable(messages: &[ArtifactMessage]) -> Option<PathBuf> {
    messages
        .iter()
        .filter(|message| message.profile.as_ref().is_some_and(|p| p.test))
        .filter(|message| {
            message
                .target
                .as_ref()
                .is_some_and(|target| target.kind.iter().any(|kind| kind == "test"))
        })
        .find_map(|message| message.executable.clone())
}

/// `cargo`, in the workspace of `spec`, reading nothing from stdin.
fn cargo_command(spec: &BuildSpec<'_>) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(spec.workspace_manifest.parent().unwrap_or(Path::new(".")))
        .stdout(Stdio::piped())
        .stdin(Stdio::null());
    command
}

/// The target dir, and `--locked --offline` for a sealed build.
fn common_args(command: &mut Command, spec: &BuildSpec<'_>) {
    if let Some(target_dir) = &spec.target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    if spec.sealed.is_some() {
        command.args(["--locked", "--offline"]);
    }
}

/// Runs cargo to the end, or, for a sealed build, until its time limit: then
/// cargo and every compiler it started (its process group) are killed, and
/// the message says the build was stopped.
///
/// With `tee`, cargo's stderr reaches ours as it prints it (or, from a
/// contained build, when it ends) and is kept in the output as well.
fn run_cargo(mut command: Command, spec: &BuildSpec<'_>, tee: bool) -> Result<Output, String> {
    let could_not_run = |err: std::io::Error| format!("could not run cargo: {err}");
    let Some(limit) = spec.sealed else {
        let mut child = command.spawn().map_err(could_not_run)?;
        let stdout = read_all(child.stdout.take(), false);
        let stderr = read_all(child.stderr.take(), tee);
        let status = child.wait().map_err(could_not_run)?;
        return Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        });
    };
    if crate::build_sandbox::available() {
        let workspace = spec.workspace_manifest.parent().unwrap_or(Path::new("."));
        let target = spec
            .target_dir
            .clone()
            .unwrap_or_else(|| workspace.join("target/contained"));
        if spec.target_dir.is_none() {
            command.arg("--target-dir").arg(&target);
        }
        let output = crate::build_sandbox::run(&command, workspace, &target, limit);
        if let (true, Ok(output)) = (tee, &output) {
            use std::io::Write as _;
            let _ = std::io::stderr().write_all(&output.stderr);
        }
        return output.map_err(|err| {
            if err.contains("did not finish") {
                format!(
                    "{} did not finish building within {} s, so the build was stopped \
                     (a constant or macro that never finishes evaluating?)",
                    spec.crate_name,
                    limit.as_secs()
                )
            } else {
                err
            }
        });
    }
    command.process_group(0);
    let mut child = command.spawn().map_err(could_not_run)?;
    let group = child.id();
    let stdout = read_all(child.stdout.take(), false);
    let stderr = read_all(child.stderr.take(), tee);
    let (done, waited) = mpsc::channel();
    thread::spawn(move || done.send(child.wait()));
    let status = match waited.recv_timeout(limit) {
        Ok(status) => status.map_err(could_not_run)?,
        Err(_) => {
            // SAFETY: killpg only sends a signal; the group is cargo's own
            // (process_group(0) above), and cargo is not reaped yet.
            unsafe { libc::killpg(group as libc::pid_t, libc::SIGKILL) };
            let _ = waited.recv();
            return Err(format!(
                "{} did not finish building within {} s, so the build was stopped \
                 (a constant or macro that never finishes evaluating?)",
                spec.crate_name,
                limit.as_secs()
            ));
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reads a child's pipe to its end on a thread of its own; with `tee`,
/// each chunk also goes to our stderr as it arrives.
fn read_all(pipe: Option<impl Read + Send + 'static>, tee: bool) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        use std::io::Write as _;
        let mut bytes = Vec::new();
        let Some(mut pipe) = pipe else {
            return bytes;
        };
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if tee {
                        let _ = std::io::stderr().write_all(&chunk[..n]);
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        bytes
    })
}

#[derive(Deserialize)]
struct ArtifactMessage {
    reason: String,
    #[serde(default)]
    manifest_path: String,
    target: Option<ArtifactTarget>,
    profile: Option<ArtifactProfile>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct ArtifactTarget {
    name: String,
    #[serde(default)]
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct ArtifactProfile {
    test: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace shaped like lab 4's, without dependencies (it builds in
    /// a second): the crate `app` with its two binaries, and the grader's
    /// tests `framing-tests`; `lib` and `test` are their sources.
    fn workspace_like_lab_4(lib: &str, test: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("socket-labs-build-")
            .tempdir()
            .unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"app\", \"framing-tests\"]\n",
        );
        write(
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        );
        write("app/src/lib.rs", lib);
        for bin in ["app-server", "app-client"] {
            write(&format!("app/src/bin/{bin}.rs"), "fn main() {}\n");
        }
        write(
            "framing-tests/Cargo.toml",
            "[package]\nname = \"framing-tests\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             [dependencies]\napp = { path = \"../app\" }\n\
             [[test]]\nname = \"framing-tests\"\npath = \"driver.rs\"\nharness = false\ntest = false\n",
        );
        write("framing-tests/driver.rs", test);
        dir
    }

    fn build_like_lab_4(dir: &tempfile::TempDir) -> Result<Binaries, String> {
        let lab = Lab::find("app").unwrap();
        assert_eq!(lab.grader_tests, Some("framing-tests"));
        build_crate(&BuildSpec {
            lab,
            workspace_manifest: dir.path().join("Cargo.toml"),
            crate_dir: dir.path().join("app"),
            crate_name: "app".into(),
            // Its own: a shared one (`CARGO_TARGET_DIR`) would let these
            // workspaces, alike but for their sources, race for one build.
            target_dir: Some(dir.path().join("target")),
            output: CompilerOutput::Capture,
            sealed: None,
        })
    }

    #[test]
    fn a_lab_and_the_graders_tests_of_it_build_in_one_cargo_run() {
        let dir = workspace_like_lab_4(
            "pub fn answer() -> u32 { 42 }\n",
            "fn main() { assert_eq!(app::answer(), 42); }\n",
        );
        let binaries = build_like_lab_4(&dir).unwrap();
        assert_eq!(binaries.paths.len(), 2);
        assert!(binaries.paths.values().all(|path| path.is_file()));
        let tests = binaries.tests.unwrap().unwrap();
        assert!(tests.is_file(), "{}", tests.display());
    }

    #[test]
    fn tests_that_do_not_compile_against_the_lab_leave_its_binaries_graded() {
        let dir = workspace_like_lab_4(
            "pub fn answer() -> u32 { 42 }\n",
            "fn main() { let _: String = app::answer(); }\n",
        );
        let binaries = build_like_lab_4(&dir).unwrap();
        assert_eq!(binaries.paths.len(), 2);
        let why = binaries.tests.unwrap().unwrap_err();
        assert!(
            why.starts_with("the grader's tests of app did not compile against it:"),
            "{why}"
        );
        assert!(why.contains("mismatched types"), "{why}");
    }

    #[test]
    fn a_lab_that_does_not_compile_gets_the_compilers_messages() {
        let dir = workspace_like_lab_4(
            "pub fn answer() -> u32 { \"forty-two\" }\n",
            "fn main() { assert_eq!(app::answer(), 42); }\n",
        );
        let why = build_like_lab_4(&dir).unwrap_err();
        assert!(why.starts_with("app did not compile:"), "{why}");
        assert!(why.contains("mismatched types"), "{why}");
    }
}
