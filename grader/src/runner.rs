//! Running a lab's checks: in parallel where they cannot interfere, each
//! bounded by its time limit, one failure never stopping the others.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::conversation::{self, Conversation, Transcript};
use crate::harness::sandbox::{self, Sandbox};
use crate::harness::snapshot::SnapshotMode;
use crate::harness::{Binaries, Ctx};
use crate::lab::Lab;
use crate::outcome::{
    BuildState, CheckOutcome, CheckResult, Failure, LabReport, Status, SubmissionState,
};
use crate::rubric::{self, CheckSpec};
use crate::sync::Unpoison;

/// A check: a plain function from its context to pass or a [`Failure`].
pub type CheckFn = fn(&Ctx) -> CheckResult;

/// How to run a grade.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed for every random payload.
    pub seed: u64,
    /// Multiplies every time limit (for slow machines).
    pub time_scale: f64,
    /// Run only this check (`--check ID`).
    pub only: Option<String>,
    /// Compare snapshots (grading) or record them (project tests).
    pub snapshot_mode: SnapshotMode,
    /// How many checks run at once.
    pub jobs: usize,
    /// What is graded, for the report: `student`, `solution`, a `--bin-dir`.
    pub graded: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: fresh_seed(),
            time_scale: 1.0,
            only: None,
            snapshot_mode: SnapshotMode::Compare,
            jobs: 8,
            graded: "student".into(),
        }
    }
}

/// A seed from the clock, for runs that were not given one.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// Extra time the runner gives a check past its limit before it gives up on
/// it: the check's own deadlines should have ended it already.
const OVERRUN_GRACE: Duration = Duration::from_secs(2);

/// Grades `lab`: runs its checks if the binaries are there, or lists every
/// check as not run when the build failed.
pub fn grade(
    lab: &'static Lab,
    binaries: Result<Binaries, String>,
    options: &Options,
) -> LabReport {
    let started = Instant::now();
    // Asking git takes as long as a short check: meanwhile the checks run.
    let version = std::thread::spawn(crate::version);
    // Orphans of graded programs come back to us, to be swept after each check.
    crate::harness::limits::become_subreaper();
    sandbox::protect_grader();
    let mut sandbox = Sandbox::new();
    let binaries = binaries.and_then(|binaries| {
        stage(&mut sandbox, binaries).map_err(|err| {
            format!("the grader could not stage the executables for the checks: {err}")
        })
    });
    let sandbox = Arc::new(sandbox);
    let asked = |id: &str| options.only.as_ref().is_none_or(|only| id == only);
    // `--check ID` runs the check's gate too, so that grading one check at a
    // time (a Classroom step per check) awards exactly what a full grade does.
    let gate_of_only = options
        .only
        .as_ref()
        .and_then(|only| rubric::find(only)?.requires.clone());
    let specs: Vec<&'static CheckSpec> = rubric::for_lab(lab)
        .into_iter()
        .filter(|spec| asked(&spec.id) || gate_of_only.as_ref() == Some(&spec.id))
        .collect();
    let (build, state, checks) = match binaries {
        Ok(binaries) => (
            BuildState::Ready,
            SubmissionState::Graded,
            run_checks(lab, &specs, Arc::new(binaries), &sandbox, options),
        ),
        Err(message) => {
            // Each check says why in one line, and where the whole is: the
            // compiler's messages are shown once, at the top of every report.
            let why = not_run_because(&message);
            let not_run = specs
                .iter()
                .map(|spec| {
                    outcome(
                        spec,
                        lab,
                        Status::NotRun,
                        Some(Failure::new(why.clone())),
                        Duration::ZERO,
                        options,
                    )
                })
                .collect();
            (
                BuildState::Failed { message },
                SubmissionState::DidNotCompile,
                not_run,
            )
        }
    };
    // Each check swept its orphans as the kernel lists our children; the
    // grade ends with a look at every process.
    crate::harness::limits::sweep_orphans_thoroughly();
    let mut checks = apply_gates(checks);
    checks.retain(|check| asked(&check.id));
    LabReport {
        lab: lab.name(),
        slug: lab.slug.into(),
        title: lab.title.into(),
        graded: options.graded.clone(),
        build,
        state,
        notes: sandbox.notes.clone(),
        score: checks.iter().map(|check| check.points).sum(),
        max_score: checks.iter().map(|check| check.max_points).sum(),
        checks,
        seed: options.seed,
        grader_version: version.join().unwrap_or_else(|_| crate::version()),
        containment: sandbox.describe(),
        duration: started.elapsed(),
    }
}

/// Why a check did not run, in one line, when the binaries are missing:
/// the first line of `message`, and, when the rest is the compiler's
/// messages, where a report shows them (at its top, once, for every check).
pub fn not_run_because(message: &str) -> String {
    let mut lines = message.trim_end().lines();
    let first = lines.next().unwrap_or("the executables are missing");
    if lines.next().is_some() {
        format!(
            "not run: {}; the compiler's messages are at the top of this report",
            first.trim_end_matches(':')
        )
    } else {
        format!("not run: {first}")
    }
}

/// Stages the executables (and the grader's own tests of the lab's
/// library) in the grade's sandbox: the checks run the copies, and reports
/// name the originals.
fn stage(sandbox: &mut Sandbox, mut binaries: Binaries) -> std::io::Result<Binaries> {
    const TESTS: &str = "grader-tests";
    let mut executables: Vec<(String, std::path::PathBuf)> = binaries
        .paths
        .iter()
        .map(|(name, path)| (name.clone(), path.clone()))
        .collect();
    if let Some(Ok(tests)) = &binaries.tests {
        executables.push((TESTS.to_owned(), tests.clone()));
    }
    for (name, path) in sandbox.stage(&executables, binaries.folder.as_deref())? {
        let original = if name == TESTS {
            binaries.tests.replace(Ok(path))
        } else {
            binaries.paths.insert(name.clone(), path).map(Ok)
        };
        // How the caller names a program (grade-class: as the student
        // runs it) wins over where it was staged from.
        if let Some(Ok(original)) = original {
            binaries.shown.entry(name).or_insert(original);
        }
    }
    binaries.grant = Some(sandbox.grant());
    Ok(binaries)
}

fn run_checks(
    lab: &'static Lab,
    specs: &[&'static CheckSpec],
    bins: Arc<Binaries>,
    sandbox: &Arc<Sandbox>,
    options: &Options,
) -> Vec<CheckOutcome> {
    let functions = lab.checks;
    let find = |spec: &CheckSpec| {
        functions
            .iter()
            .find(|(id, _)| *id == spec.id)
            .map(|(_, f)| *f)
    };
    let results: Mutex<Vec<Option<CheckOutcome>>> = Mutex::new(vec![None; specs.len()]);
    // The check that waits out the lab's floor starts first, then those
    // given the longest time limits (the rubric gives more time to the
    // checks that move the most data): the short ones fill in around
    // them, and the lab takes little longer than its longest check.
    let floor_id = lab
        .floor
        .map(|floor| format!("{}.{}", lab.slug, floor.check));
    let mut parallel: Vec<usize> = (0..specs.len())
        .filter(|&index| !specs[index].serial)
        .collect();
    parallel.sort_by_key(|&index| {
        let spec = specs[index];
        (
            Some(&spec.id) != floor_id.as_ref(),
            std::cmp::Reverse(spec.time_limit(1.0)),
        )
    });
    let queue: Mutex<VecDeque<usize>> = Mutex::new(parallel.into());
    let run_one = |index: usize| {
        let spec = specs[index];
        let result = match find(spec) {
            _ if spec.linux_only && !cfg!(target_os = "linux") => outcome(
                spec,
                lab,
                Status::Skipped,
                Some(Failure::new(
                    "skipped: this check needs Linux (/proc or seccomp); the grade is not final",
                )),
                Duration::ZERO,
                options,
            ),
            Some(check) => execute(spec, lab, check, &bins, sandbox, options),
            None => outcome(
                spec,
                lab,
                Status::Failed,
                Some(Failure::new(format!(
                    "the grader has no check function for {} (a grader bug)",
                    spec.id
                ))),
                Duration::ZERO,
                options,
            ),
        };
        results.lock().unpoison()[index] = Some(result);
    };
    thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    // Take the lock only to pop: a guard in a `while let`
                    // condition would live through the body and run the
                    // checks one at a time.
                    let next = queue.lock().unpoison().pop_front();
                    let Some(index) = next else { break };
                    run_one(index);
                }
            });
        }
    });
    // Checks that measure time or CPU run alone, so the others cannot skew them.
    for index in (0..specs.len()).filter(|&index| specs[index].serial) {
        run_one(index);
    }
    results
        .into_inner()
        .unpoison()
        .into_iter()
        .flatten()
        .collect()
}

fn execute(
    spec: &'static CheckSpec,
    lab: &Lab,
    check: CheckFn,
    bins: &Arc<Binaries>,
    sandbox: &Arc<Sandbox>,
    options: &Options,
) -> CheckOutcome {
    let ctx = Arc::new(Ctx::new(
        spec,
        Arc::clone(bins),
        options.time_scale,
        options.seed,
        options.snapshot_mode,
    ));
    let started = Instant::now();
    let conversation = Conversation::starting_at(started);
    conversation.scale_stall_window(options.time_scale);
    let (sender, receiver) = mpsc::channel();
    let worker_ctx = Arc::clone(&ctx);
    let worker_conversation = Arc::clone(&conversation);
    let worker_sandbox = Arc::clone(sandbox);
    let spawned = thread::Builder::new().name(spec.id.clone()).spawn(move || {
        // `SOCKET_LABS_NO_RECORDING=1` grades without recording (and so
        // without failing fast), to measure what recording costs.
        let recording = std::env::var_os(conversation::DISABLE_VARIABLE).is_none();
        let _recording = conversation::enter(recording.then_some(worker_conversation));
        // The check, its programs and its peers share the grade's network.
        let result = match worker_sandbox.enter() {
            Ok(()) => catch_unwind(AssertUnwindSafe(|| check(&worker_ctx))),
            Err(err) => Ok(Err(Failure::new(format!(
                "the grader could not enter its network namespace: {err}"
            )))),
        };
        // Let go of the grade's sandbox before reporting: the grade drops
        // it last, and removes its staged copies with it, only once every
        // check has. A check thread that still held it after its result
        // was in would remove them itself, after the grade had returned,
        // and a process that exits meanwhile leaves them half removed.
        drop((worker_sandbox, worker_ctx));
        let _ = sender.send(result);
    });
    if let Err(err) = spawned {
        let failure = Failure::new(format!("the grader could not start a thread: {err}"));
        return outcome(
            spec,
            lab,
            Status::Failed,
            Some(failure),
            Duration::ZERO,
            options,
        );
    }
    let limit = spec.time_limit(options.time_scale);
    let result = match receiver.recv_timeout(limit + OVERRUN_GRACE) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(Failure::new(format!(
            "the check itself failed: {} (a grader bug, please report it)",
            panic_message(&*panic)
        ))),
        Err(_) => {
            // Killing the check's processes makes its blocked reads return.
            ctx.registry().kill_all();
            let _ = receiver.recv_timeout(OVERRUN_GRACE);
            Err(Failure::new(format!(
                "the check did not finish within its time limit of {:.0} s",
                limit.as_secs_f64()
            )))
        }
    };
    // The check's processes are gone; their orphans, if any, came to us.
    crate::harness::limits::sweep_orphans();
    let (status, failure) = match result {
        Ok(()) => (Status::Passed, None),
        Err(failure) if ctx.was_skipped() => (Status::Skipped, Some(failure)),
        // Limits a program hit explain many failures better than the symptom.
        Err(failure) => (
            Status::Failed,
            Some(
                ctx.registry()
                    .notes()
                    .into_iter()
                    .fold(failure, Failure::detail),
            ),
        ),
    };
    let mut result = outcome(spec, lab, status, failure, started.elapsed(), options);
    result.commands = ctx.commands();
    if let Some(note) = ctx.try_it_note() {
        result.manual = if result.manual.is_empty() {
            note
        } else {
            format!("{} ({note})", result.manual)
        };
    }
    result.conversation = conversation.transcript();
    result
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

fn outcome(
    spec: &CheckSpec,
    lab: &Lab,
    status: Status,
    failure: Option<Failure>,
    duration: Duration,
    options: &Options,
) -> CheckOutcome {
    // Evidence of a specific cause beats the rubric's general advice.
    let (hint, handout) = match failure.as_ref().and_then(|f| f.diagnosis.as_ref()) {
        Some(diagnosis) => (diagnosis.hint.clone(), diagnosis.handout.clone()),
        None => (spec.hint.trim().to_owned(), spec.handout.clone()),
    };
    CheckOutcome {
        id: spec.id.clone(),
        title: spec.title.clone(),
        status,
        points: if status == Status::Passed {
            spec.points
        } else {
            0
        },
        // A skipped check could not be run here: it neither earns nor
        // costs points, so full marks stay reachable.
        max_points: if status == Status::Skipped {
            0
        } else {
            spec.points
        },
        failure,
        hint,
        handout: format!("{}{handout}", lab.handout()),
        manual: spec.manual.trim().to_owned(),
        duration,
        time_limit: spec.time_limit(options.time_scale),
        commands: Vec::new(),
        conversation: Transcript::default(),
    }
}

/// A gated check keeps its points only when its gate passed too.
fn apply_gates(mut checks: Vec<CheckOutcome>) -> Vec<CheckOutcome> {
    let failed_gates: Vec<(String, String, String)> = checks
        .iter()
        .filter_map(|check| {
            let gate = rubric::find(&check.id)?.requires.clone()?;
            let gate_outcome = checks.iter().find(|other| other.id == gate)?;
            (check.passed() && !gate_outcome.passed())
                .then(|| (check.id.clone(), gate, gate_outcome.handout.clone()))
        })
        .collect();
    for (id, gate, gate_handout) in failed_gates {
        if let Some(check) = checks.iter_mut().find(|check| check.id == id) {
            check.status = Status::Failed;
            check.points = 0;
            check.failure = Some(Failure::new(format!(
                "this check earns its points only once `{gate}` passes (an unfinished program could pass it by accident)"
            )));
            // Nothing is wrong here: what to do is what the gate says.
            check.hint = format!(
                "This check passed on its own: nothing to fix here. Make `{gate}` pass (its failure says how) and these points count."
            );
            check.handout = gate_handout;
            check.manual.clear();
        }
    }
    checks
}
