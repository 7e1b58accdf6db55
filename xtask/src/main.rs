//! `cargo xtask`: the course's commands, in plain Rust.
//!
//! Students run `cargo xtask grade lab1`; instructors add `--solution` or
//! `--bin-dir DIR`. Each subcommand lives in a module of its own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod grade;

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
    /// Time grading (warm and cold) and print the figures.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Grade(args) => grade::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
