//! `cargo xtask`: the course's commands, in plain Rust.
//!
//! Students run `cargo xtask grade lab1`, `status`, `report`, `hint` and `watch`;
//! instructors add `--solution` or `--bin-dir DIR`, and use `verify`, `swap`,
//! `reset`, `dist`, `grade-class`, `soak`, `bench`, `mutants` and `bugs`;
//! maintainers run `course-check` and `screenshots` (course-only); scripts read the lab table
//! with `labs`. Each subcommand lives in a module of its own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_failing;
mod book;
mod bugs;
mod class;
// course-only: begin (`cargo xtask dist` leaves these lines out)
mod course_check;
// course-only: end
mod dist;
mod files;
mod grade;
mod hint;
mod intake;
mod labs;
mod mutants;
mod options;
mod report;
mod results;
// course-only: begin
mod screenshots;
// course-only: end
mod seeded_class;
mod send;
mod soak;
mod status;
mod swap;
mod verify;
mod watch;

/// Socket Labs: grade your labs and run the course's tools.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a lab and run its checks: `cargo xtask grade lab1`.
    Grade(grade::GradeArgs),
    /// Grade again whenever you save a file of the lab.
    Watch(watch::WatchArgs),
    /// Your score in every lab, from your last grades.
    Status,
    /// The last grade as a page (each check's conversation drawn): prints its path.
    Report(report::ReportArgs),
    /// The hint and handout section for a check.
    Hint(hint::HintArgs),
    /// Check calibration: solutions at full marks, untouched stubs at zero.
    Verify(verify::VerifyArgs),
    /// Put the reference solution in place of your files, or back.
    Swap(swap::SwapArgs),
    /// Restore a lab's stub (your files are kept in .swap/).
    Reset(swap::ResetArgs),
    /// Grade every submission in a directory and write a CSV.
    GradeClass(class::ClassArgs),
    /// Write the student edition (no solutions) to a directory.
    Dist(dist::DistArgs),
    /// Grade many times (optionally under load) and report flaky checks.
    Soak(soak::SoakArgs),
    /// Time grading (warm and cold) and print the figures.
    Bench(bench::BenchArgs),
    /// Put a submission's sources of a lab in place of this course's.
    Intake(intake::IntakeArgs),
    /// List the labs' slugs (or `--binaries`), one a line, for scripts.
    Labs(labs::LabsArgs),
    /// Mutation testing of a lab's reference solution, with the grader as
    /// the oracle (needs cargo-mutants).
    Mutants(mutants::MutantsArgs),
    /// The realistic-bug suite: each bug patched into a copy of the
    /// solutions, graded, and its first failed check's section compared
    /// with the one a teacher would name.
    Bugs(bugs::BugsArgs),
    /// Send a file (or what you type) to HOST PORT and print the answer, as
    /// the handouts' "try it" lines do: a small `nc`.
    Send(send::SendArgs),
    /// The handouts as one offline HTML book (target/book), which the
    /// reports then link into: prints the path of its first page.
    Book(book::BookArgs),
    // course-only: begin
    /// Check the course's conventions (every check has a function, a hint,
    /// a handout section and a classic bug; stubs name their sections; …):
    /// prints the first thing missing and the file to edit.
    CourseCheck,
    /// Draw the README's pictures again (docs/*.png) from a seeded class,
    /// in headless Chromium, with the data each is drawn from beside it.
    Screenshots,
    // course-only: end
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // While xtask has one thread: without root, a user namespace of its own
    // lets a grade have a network namespace of its own, as a root grader's.
    if matches!(
        cli.command,
        Command::Grade(_)
            | Command::Watch(_)
            | Command::Verify(_)
            | Command::GradeClass(_)
            | Command::Soak(_)
            | Command::Bench(_)
            | Command::Bugs(_)
    ) {
        grader::harness::sandbox::enter_own_user_namespace();
    }
    // The rubric is compiled in: a typo in it is a clean error, with its
    // file and line, before any command needs it.
    if let Err(err) = grader::rubric::validate() {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Grade(args) => grade::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Status => status::run(),
        Command::Report(args) => report::run(&args),
        Command::Hint(args) => hint::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Swap(args) => swap::run(&args),
        Command::Reset(args) => swap::run_reset(&args),
        Command::GradeClass(args) => class::run(&args),
        Command::Dist(args) => dist::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Send(args) => send::run(&args),
        Command::Labs(args) => labs::run(&args),
        Command::Mutants(args) => mutants::run(&args),
        Command::Bugs(args) => bugs::run(&args),
        Command::Intake(args) => intake::run(&args),
        Command::Book(args) => book::run(&args).map(|()| ExitCode::SUCCESS),
        // course-only: begin
        Command::CourseCheck => course_check::run(),
        Command::Screenshots => screenshots::run(),
        // course-only: end
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
