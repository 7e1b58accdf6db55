//! `cargo xtask grade LAB`: build, run the checks, report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use grader::builder::{self, CompilerOutput, Edition};
use grader::harness::Binaries;
use grader::outcome::SubmissionState;
use grader::render::{self, text::Style};
use grader::sync::Unpoison;
use grader::{LABS, Lab, LabReport, Options};

use crate::options::RunOptions;

/// Which labs to grade: one, or `all`.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every lab, in order.
    All,
    /// One lab.
    One(&'static Lab),
}

impl Selection {
    /// The labs selected; `all` means the labs this copy of the course has
    /// (a one-lab edition from `dist --lab` has one).
    pub fn labs(&self) -> Vec<&'static Lab> {
        match self {
            Selection::All => {
                let root = builder::workspace_root();
                LABS.iter()
                    .filter(|lab| root.join(lab.student_dir()).is_dir())
                    .collect()
            }
            Selection::One(lab) => vec![lab],
        }
    }
}

/// Parses `lab3`, `3`, `multiconn` or `all`; anything else is a usage error
/// that lists the valid names.
pub fn parse_selection(name: &str) -> Result<Selection, String> {
    if name.trim().eq_ignore_ascii_case("all") {
        return Ok(Selection::All);
    }
    Lab::find(name).map(Selection::One).ok_or_else(|| {
        format!(
            "no lab is called `{name}`; valid names: {}",
            Lab::valid_names()
        )
    })
}

/// How the results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The report for people.
    Text,
    /// One JSON object per lab (see the README's "Machine-readable results").
    Json,
}

/// Arguments of `cargo xtask grade`.
#[derive(Debug, Args)]
pub struct GradeArgs {
    /// The lab: lab1..lab6, 1..6, its name (echo, errors, multiconn, app, udp, client-list), or all
    /// (without one, the labs are listed).
    #[arg(value_parser = parse_selection)]
    lab: Option<Selection>,
    /// Grade the reference solution instead of your crate.
    #[arg(long, conflicts_with = "bin_dir")]
    solution: bool,
    /// Grade executables already built in DIR (any language), named as in the handout.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Run only this check: its id from the report (echo.hello), or a part
    /// of its name that only it has (hello).
    #[arg(long, value_name = "ID")]
    check: Option<String>,
    #[command(flatten)]
    run: RunOptions,
    /// How many labs `all` grades side by side (by default as many as the
    /// machine has cores, plus the labs that wait out timeouts: they start
    /// first); `-j 1` grades one lab after another.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// How many checks of a lab run at once (1: one after another).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    checks_at_once: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Show the commands each check ran, to reproduce it by hand.
    #[arg(long, short)]
    verbose: bool,
    /// Also write Gradescope's results.json to PATH.
    #[arg(long, value_name = "PATH")]
    gradescope: Option<PathBuf>,
    /// Also write JUnit XML to PATH.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE, each
    /// check's conversation drawn (`cargo xtask report` finds the last one).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Build `--locked --offline` and stop the build after SECONDS (platform
    /// grading, where the course's crates were fetched beforehand).
    #[arg(long, value_name = "SECONDS", conflicts_with = "bin_dir")]
    build_timeout: Option<u64>,
    /// Refuse to grade without the minimum containment of graded programs
    /// (for grades of record: platforms pass it when they run as root).
    #[arg(long)]
    contained: bool,
}

/// The labs this copy of the course has: all six, or those of a one-lab
/// edition (`dist --lab`).
pub fn present_labs() -> Vec<&'static Lab> {
    Selection::All.labs()
}

/// The labs, one a line, for `grade` without a lab: those this copy of the
/// course has.
pub fn lab_list() -> String {
    let mut list = String::from("which lab? `cargo xtask grade LAB`, where LAB is one of:\n");
    for lab in present_labs() {
        list += &format!("  {:<5} {:<12} {}\n", lab.name(), lab.slug, lab.title);
    }
    list += "  all                every lab, side by side (-j 1: one after another)\n";
    list
}

/// The check `name` names among the checks of `labs`: its id (`echo.hello`),
/// its name (`hello`), or a part of its name that no other check has
/// (`half_close`). Otherwise an error that lists the candidates, or every id.
pub fn resolve_check(labs: &[&'static Lab], name: &str) -> Result<String, String> {
    let ids: Vec<&str> = labs
        .iter()
        .flat_map(|lab| grader::rubric::for_lab(lab))
        .map(|spec| spec.id.as_str())
        .collect();
    let short = |id: &str| id.split_once('.').map_or(id, |(_, short)| short).to_owned();
    let name = name.trim();
    let matching: Vec<&str> = [
        |id: &str, name: &str, short: &str| id == name || short == name,
        |_: &str, name: &str, short: &str| short.starts_with(name),
        |_: &str, name: &str, short: &str| short.contains(name),
    ]
    .iter()
    .map(|rule| {
        ids.iter()
            .copied()
            .filter(|id| rule(id, name, &short(id)))
            .collect::<Vec<_>>()
    })
    .find(|found| !found.is_empty())
    .unwrap_or_default();
    match matching.as_slice() {
        [id] => Ok((*id).to_owned()),
        [] => Err(format!(
            "no check `{name}` in {}; its checks: {}",
            labs.iter()
                .map(|lab| lab.name())
                .collect::<Vec<_>>()
                .join(", "),
            ids.join(", ")
        )),
        several => Err(format!(
            "`{name}` could be any of {}: say which",
            several.join(", ")
        )),
    }
}

/// Grades the selected labs and prints the report; exit 0 on full marks only.
pub fn run(args: &GradeArgs) -> Result<ExitCode> {
    let Some(selection) = &args.lab else {
        eprint!("{}", lab_list());
        return Ok(ExitCode::from(2));
    };
    if let Selection::One(lab) = selection {
        if !builder::workspace_root().join(lab.student_dir()).is_dir() {
            eprintln!(
                "{lab} is not in this edition of the course (no {}/)",
                lab.student_dir()
            );
            eprint!("{}", lab_list());
            return Ok(ExitCode::from(2));
        }
    }
    let only = match &args.check {
        Some(name) => Some(resolve_check(&selection.labs(), name).map_err(anyhow::Error::msg)?),
        None => None,
    };
    if let Some(dir) = &args.bin_dir {
        if !dir.is_dir() {
            bail!("--bin-dir {}: no such directory", dir.display());
        }
    }
    if args.contained {
        let missing = grader::harness::sandbox::Policy::get().minimum_missing();
        if !missing.is_empty() {
            bail!(
                "--contained: graded programs cannot be contained here: {}",
                missing.join("; ")
            );
        }
    }
    // What the machine allows graded programs (namespaces, cgroups, a
    // view of the filesystem) is probed once, 6 to 11 ms of clones and
    // folders: meanwhile cargo checks that the lab is built.
    std::thread::spawn(grader::harness::sandbox::Policy::get);
    let style = Style::for_stdout(args.verbose);
    let mut reports = Vec::new();
    grade_side_by_side(&selection.labs(), args, only, |report| match args.format {
        Format::Text => print!("{}", render::text::lab(report, style)),
        Format::Json => println!("{}", render::json::lab(report)),
    })?
    .into_iter()
    .for_each(|report| reports.push(report));
    if matches!(selection, Selection::All) && args.format == Format::Text {
        println!();
        print!("{}", render::text::totals(&reports, style));
    }
    // Written only now that every check has ended, each in one rename: a
    // file a graded program left at the path is replaced, never trusted.
    if let Some(path) = &args.gradescope {
        let results = render::gradescope::file(&reports);
        crate::files::write_atomically(path, results.as_bytes())?;
    }
    if let Some(path) = &args.junit {
        crate::files::write_atomically(path, render::junit::xml(&reports).as_bytes())?;
    }
    // Kept for `cargo xtask report`, which may copy it anywhere: its links
    // are file:// URLs. The page of --html links relative to its folder.
    let page = crate::results::page(&reports, None);
    if let Some(path) = &args.html {
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let page = crate::results::page(&reports, Some(folder));
        crate::files::write_atomically(path, page.as_bytes())?;
    }
    // `cargo xtask report` reads it; failing to save is not worth failing the grade.
    if let Err(err) = crate::results::save_page(&page) {
        eprintln!("note: could not save the page for `cargo xtask report`: {err:#}");
    }
    if !args.solution && args.bin_dir.is_none() && args.check.is_none() {
        for report in &reports {
            // `cargo xtask status` reads these; failing to save is not worth failing the grade.
            if let Err(err) = crate::results::save(report) {
                eprintln!("note: could not save the result for `cargo xtask status`: {err:#}");
            }
        }
    }
    let full_marks = reports.iter().all(LabReport::full_marks);
    Ok(if full_marks {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many labs are graded at once: `-j`, or as many as the machine has
/// cores, plus one for each lab that waits out a timeout its contract
/// requires ([`Lab::floor`]): such a lab spends that time asleep, not on a
/// core. Never more than there are labs.
fn labs_at_once(jobs: Option<u16>, labs: &[&'static Lab]) -> usize {
    let cores = || std::thread::available_parallelism().map_or(1, usize::from);
    let sleepers = labs.iter().filter(|lab| lab.floor.is_some()).count();
    jobs.map_or_else(|| cores() + sleepers, usize::from)
        .clamp(1, labs.len().max(1))
}

/// The order in which labs start when `workers` grade side by side: those
/// with the longest floor first (the whole takes at least as long as they
/// do), then the others in course order. One at a time, course order: the
/// total is the same, and the first report comes soonest. Reports are
/// shown in course order whatever this is.
fn start_order(labs: &[&'static Lab], workers: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..labs.len()).collect();
    if workers > 1 {
        let floor = |index: &usize| labs[*index].floor.map_or(0.0, |floor| floor.seconds);
        order.sort_by(|a, b| floor(b).total_cmp(&floor(a)));
    }
    order
}

/// Grades `labs`, [`labs_at_once`] at a time in [`start_order`], and hands
/// each report to `show` in the labs' order as soon as it and every report
/// before it are done; returns the reports in that order. Builds take turns
/// (cargo would make them wait for its lock anyway, and say so), each lab's
/// checks start as soon as its build is done.
fn grade_side_by_side(
    labs: &[&'static Lab],
    args: &GradeArgs,
    only: Option<String>,
    mut show: impl FnMut(&LabReport),
) -> Result<Vec<LabReport>> {
    let workers = labs_at_once(args.jobs, labs);
    let order = start_order(labs, workers);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let building = std::sync::Mutex::new(());
    let (done, finished) = std::sync::mpsc::channel();
    let mut results: Vec<Option<Result<LabReport>>> = labs.iter().map(|_| None).collect();
    let mut reports = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers {
            let (done, next, building, only, order) =
                (done.clone(), &next, &building, only.clone(), &order);
            scope.spawn(move || {
                loop {
                    let started = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&index) = order.get(started) else {
                        break;
                    };
                    let report = grade_lab(labs[index], args, only.clone(), building);
                    if done.send((index, report)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for (index, report) in finished {
            results[index] = Some(report);
            while let Some(slot) = results.get_mut(reports.len()) {
                let Some(report) = slot.take() else {
                    break;
                };
                let report = report?;
                show(&report);
                reports.push(report);
            }
        }
        Ok(())
    })?;
    Ok(reports)
}

fn grade_lab(
    lab: &'static Lab,
    args: &GradeArgs,
    only: Option<String>,
    building: &std::sync::Mutex<()>,
) -> Result<LabReport> {
    // What `intake` found (Gradescope runs it first), while the sources
    // are still as it left them.
    let intake = (!args.solution && args.bin_dir.is_none())
        .then(|| crate::intake::IntakeState::load(&builder::workspace_root(), lab))
        .flatten()
        .filter(|intake| intake.state != SubmissionState::Graded);
    let options = |graded: String| Options {
        only: only.clone(),
        jobs: usize::from(args.checks_at_once),
        ..args.run.grader_options(graded)
    };
    let mut report = match &args.bin_dir {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--bin-dir {}", dir.display()))?;
            let options = options(format!("--bin-dir {}", dir.display()));
            grader::grade(lab, Ok(Binaries::from_dir(lab, &dir)), &options)
        }
        // A lab that `intake` did not find is not graded (the stub in its
        // place is not the student's), and says why.
        None if intake.as_ref().is_some_and(|intake| !intake.state.graded()) => {
            let message = intake.as_ref().map_or("", |intake| &intake.message);
            let why = format!("not graded: {message}");
            grader::grade(lab, Err(why), &options("student".to_owned()))
        }
        None => {
            let edition = if args.solution {
                Edition::Solution
            } else {
                Edition::Student
            };
            let sealed = args.build_timeout.map(std::time::Duration::from_secs);
            let options = options(edition.name().to_owned());
            match builder::spec_for(lab, edition, CompilerOutput::Show, sealed) {
                Ok(spec) => build_and_grade(lab, &spec, &options, building),
                Err(message) => grader::grade(lab, Err(message), &options),
            }
        }
    };
    if let Some(intake) = intake {
        report.state = intake.state;
    }
    Ok(report)
}

/// Builds the crate of `spec` and grades it. When its last build is worth
/// grading ahead ([`builder::Previous`]), the grade starts on it while cargo
/// checks the build, and stands if cargo reports those very files;
/// otherwise the lab is graded once the build is done. Builds take turns
/// (`building`); a sealed build (platform grading) is always waited for.
fn build_and_grade(
    lab: &'static Lab,
    spec: &builder::BuildSpec<'_>,
    options: &Options,
    building: &std::sync::Mutex<()>,
) -> LabReport {
    let build = || {
        let _turn = building.lock().unpoison();
        builder::build_crate(spec)
    };
    let ahead = spec
        .sealed
        .is_none()
        .then(|| builder::Previous::load(spec))
        .flatten();
    let Some(previous) = ahead else {
        return grader::grade(lab, build(), options);
    };
    std::thread::scope(|scope| {
        let building = scope.spawn(build);
        let report = grader::grade(lab, Ok(previous.binaries.clone()), options);
        let built = building
            .join()
            .unwrap_or_else(|_| Err("the build of the lab panicked".to_owned()));
        match &built {
            Ok(binaries) if previous.is(binaries) => report,
            _ => grader::grade(lab, built, options),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<&'static Lab> {
        grader::LABS.iter().collect()
    }

    /// Side by side, the labs that wait out timeouts start first, longest
    /// first, and run beside the cores; one at a time, in course order.
    #[test]
    fn the_labs_that_wait_start_first_and_beside_the_cores() {
        let labs = all();
        let slugs = |order: Vec<usize>| -> Vec<&str> {
            order.into_iter().map(|index| labs[index].slug).collect()
        };
        assert_eq!(
            slugs(start_order(&labs, 4)),
            ["errors", "udp", "echo", "multiconn", "app", "client-list"]
        );
        assert_eq!(
            slugs(start_order(&labs, 1)),
            ["echo", "errors", "multiconn", "app", "udp", "client-list"]
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(labs_at_once(None, &labs), (cores + 2).min(labs.len()));
        assert_eq!(labs_at_once(Some(1), &labs), 1);
        assert_eq!(labs_at_once(Some(9), &labs[..3]), 3);
    }
}
