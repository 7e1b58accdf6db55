//! `cargo xtask watch [LAB]`: grade again whenever a file of the lab is saved.
//!
//! File events are debounced (an editor's save is often several events:
//! write a temp file, rename it over the original), grading runs on the main
//! thread only, so a build is never started twice nor fights another for the
//! cargo lock, and saves made during a grade lead to one more grade after it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use grader::builder::{self, CompilerOutput, Edition, workspace_root};
use grader::outcome::{BuildState, SubmissionState};
use grader::render::text::{self, Style};
use grader::{LABS, Lab, LabReport};

use crate::options::RunOptions;
use crate::results;

/// How long the files must stay quiet before a grade starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Arguments of `cargo xtask watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The lab to watch (default: the first lab not yet at full marks).
    lab: Option<String>,
    #[command(flatten)]
    run: RunOptions,
}

/// Something the watch loop reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A file of the lab changed.
    Changed,
    /// A key was pressed.
    Key(u8),
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Grade again.
    Regrade,
    /// A key was pressed.
    Key(u8),
    /// The inputs are gone: stop.
    Stop,
}

/// How often the lab's files are looked at: shorter than [`DEBOUNCE`], so
/// the steps of one save fall into one burst.
const POLL: Duration = Duration::from_millis(250);

/// Watches `dir` recursively (but not its `target/`), sending
/// [`Input::Changed`] whenever a file appears, disappears, or changes its
/// size or modification time. Keep the returned watcher alive.
///
/// A lab crate is a handful of files: looking at them a few times a second
/// costs nothing, needs no file-notification library (one less dependency
/// to compile on a fresh clone's first grade) and works on every file system.
pub fn watch_files(dir: &Path, inputs: Sender<Input>) -> Result<FileWatcher> {
    let dir = dir.to_path_buf();
    let mut seen = file_states(&dir).with_context(|| format!("watching {}", dir.display()))?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
            // A look that fails (a folder deleted while it was read) counts
            // as a change; the next one sees what is left.
            let now = file_states(&dir).unwrap_or_default();
            if now != seen {
                seen = now;
                if inputs.send(Input::Changed).is_err() {
                    return;
                }
            }
        }
    });
    Ok(FileWatcher { _stop: stop })
}

/// Stops watching when dropped.
#[derive(Debug)]
pub struct FileWatcher {
    _stop: Sender<()>,
}

/// Size and modification time of every file under `dir`, except `dir/target`.
fn file_states(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, (u64, SystemTime)>> {
    fn visit(
        folder: &Path,
        skip: &Path,
        states: &mut BTreeMap<PathBuf, (u64, SystemTime)>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                continue; // gone since read_dir listed it
            };
            if metadata.is_dir() {
                if path != skip {
                    visit(&path, skip, states)?;
                }
            } else {
                states.insert(path, (metadata.len(), metadata.modified()?));
            }
        }
        Ok(())
    }
    let mut states = BTreeMap::new();
    visit(dir, &dir.join("target"), &mut states)?;
    Ok(states)
}

/// Waits for the next action, or `None` at `deadline`: a burst of changes
/// becomes one [`Action::Regrade`] once the files have been quiet for
/// `quiet`; a key is reported at once.
pub fn next_action(
    inputs: &Receiver<Input>,
    quiet: Duration,
    deadline: Option<Instant>,
) -> Option<Action> {
    let first = match deadline {
        None => inputs.recv().ok(),
        Some(deadline) => {
            match inputs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => None,
            }
        }
    };
    match first {
        None => Some(Action::Stop),
        Some(Input::Key(key)) => Some(Action::Key(key)),
        Some(Input::Changed) => loop {
            match inputs.recv_timeout(quiet) {
                Ok(Input::Changed) => {}
                Ok(Input::Key(b'q')) => return Some(Action::Key(b'q')),
                Ok(Input::Key(_)) | Err(RecvTimeoutError::Timeout) => return Some(Action::Regrade),
                Err(RecvTimeoutError::Disconnected) => return Some(Action::Regrade),
            }
        },
    }
}

/// Drops the changes that arrived while grading; returns whether there were any.
fn changed_meanwhile(inputs: &Receiver<Input>) -> bool {
    let mut changed = false;
    while let Ok(input) = inputs.try_recv() {
        changed |= input == Input::Changed;
    }
    changed
}

/// The first lab that is not at full marks in the saved results.
fn first_unfinished() -> &'static Lab {
    LABS.iter()
        .find(|lab| {
            results::load(lab.slug).is_none_or(|report| report["score"] != report["max_score"])
        })
        .unwrap_or(&LABS[0])
}

fn grade(lab: &'static Lab, run: &RunOptions) -> LabReport {
    print!("\x1b[2J\x1b[H");
    println!("grading {} …", lab.name());
    let binaries = builder::build(lab, Edition::Student, CompilerOutput::Show);
    let report = grader::grade(lab, binaries, &run.grader_options("student"));
    print!("{}", text::lab(&report, Style::for_stdout(false)));
    if let Err(err) = results::save(&report) {
        eprintln!("note: could not save the result: {err:#}");
    }
    report
}

/// Says what the loop waits for: once after every grade, never again
/// until the next (a hint or a stray key does not repeat it).
fn banner(lab: &Lab) {
    println!(
        "\nwatching {} — save a file to grade again; h: hint, q: quit",
        lab.student_dir()
    );
}

/// Raw terminal input (one key at a time, no echo) while alive.
struct RawTerminal(Option<libc::termios>);

impl RawTerminal {
    fn enable() -> Self {
        // SAFETY: termios is plain data; tcgetattr/tcsetattr on stdin.
        unsafe {
            let mut original: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut original) != 0 {
                return Self(None);
            }
            let mut raw = original;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw);
            Self(Some(original))
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(original) = &self.0 {
            // SAFETY: restores the settings read in `enable`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, original) };
        }
    }
}

fn read_keys(inputs: Sender<Input>) {
    let mut stdin = std::io::stdin();
    let mut byte = [0u8];
    while let Ok(1) = stdin.read(&mut byte) {
        if inputs
            .send(Input::Key(byte[0].to_ascii_lowercase()))
            .is_err()
        {
            return;
        }
    }
}

/// `cargo xtask watch`.
pub fn run(args: &WatchArgs) -> Result<ExitCode> {
    let follow = args.lab.is_none();
    let mut lab = match &args.lab {
        Some(name) => Lab::find(name).with_context(|| {
            format!(
                "no lab is called `{name}`; valid names: {}",
                Lab::valid_names()
            )
        })?,
        None => first_unfinished(),
    };
    let (sender, inputs) = mpsc::channel();
    let _raw = RawTerminal::enable();
    let keys = sender.clone();
    std::thread::spawn(move || read_keys(keys));
    loop {
        let crate_dir: PathBuf = workspace_root().join(lab.student_dir());
        let _watcher = watch_files(&crate_dir, sender.clone())?;
        let mut report = grade(lab, &args.run);
        let mut bannered = false;
        loop {
            if follow && report.full_marks() {
                let next = first_unfinished();
                if next != lab {
                    println!("\n{} is done: on to {}.", lab.name(), next.name());
                    lab = next;
                    break;
                }
            }
            if !bannered {
                banner(lab);
                bannered = true;
            }
            match next_action(&inputs, DEBOUNCE, None) {
                Some(Action::Regrade) => {
                    report = grade(lab, &args.run);
                    while changed_meanwhile(&inputs) {
                        report = grade(lab, &args.run);
                    }
                    bannered = false;
                }
                Some(Action::Key(b'q')) | Some(Action::Stop) | None => {
                    return Ok(ExitCode::SUCCESS);
                }
                Some(Action::Key(b'h')) => match report.checks.iter().find(|check| !check.passed())
                {
                    // No check ran: the compiler's first error is the hint.
                    _ if report.state == SubmissionState::DidNotCompile => {
                        let message = match &report.build {
                            BuildState::Failed { message } => message.as_str(),
                            BuildState::Ready => "it did not compile",
                        };
                        print!(
                            "\n{}",
                            crate::hint::did_not_compile(
                                lab,
                                "",
                                message,
                                "save: it is graded again"
                            )
                        );
                    }
                    Some(check) => println!(
                        "\n{}: {}\n  hint: {}\n  read: {}",
                        check.id, check.title, check.hint, check.handout
                    ),
                    None => println!("\nevery check passes: nothing to hint at"),
                },
                Some(Action::Key(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_by_rename_triggers_exactly_one_regrade() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let (sender, inputs) = mpsc::channel();
        let _watcher = watch_files(dir.path(), sender).unwrap();

        // An editor's save: write a temp file, then rename it over the original.
        let temp = dir.path().join("src/.main.rs.swp");
        std::fs::write(&temp, "fn main() { println!(\"hi\"); }\n").unwrap();
        std::fs::rename(&temp, dir.path().join("src/main.rs")).unwrap();

        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            next_action(&inputs, DEBOUNCE, Some(deadline)),
            Some(Action::Regrade)
        );
        // The burst was one save: nothing more is pending.
        let after = Instant::now() + Duration::from_millis(500);
        assert_eq!(next_action(&inputs, DEBOUNCE, Some(after)), None);
    }

    #[test]
    fn changes_under_target_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("target")).unwrap();
        let (sender, inputs) = mpsc::channel();
        let _watcher = watch_files(dir.path(), sender).unwrap();
        std::fs::write(dir.path().join("target/output"), "built").unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        assert_eq!(next_action(&inputs, DEBOUNCE, Some(deadline)), None);
    }

    #[test]
    fn keys_are_reported_at_once() {
        let (sender, inputs) = mpsc::channel();
        sender.send(Input::Key(b'h')).unwrap();
        assert_eq!(
            next_action(&inputs, DEBOUNCE, None),
            Some(Action::Key(b'h'))
        );
        drop(sender);
        assert_eq!(next_action(&inputs, DEBOUNCE, None), Some(Action::Stop));
    }
}
