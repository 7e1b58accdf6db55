//! `cargo xtask hint LAB [CHECK]`: the hint and handout section of a check.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use grader::Lab;

use crate::results;

/// Arguments of `cargo xtask hint`.
#[derive(Debug, Args)]
pub struct HintArgs {
    /// The lab (lab1, 1 or echo).
    lab: String,
    /// The check id (echo.hello) or its name (hello); default: the first check
    /// that failed in your last grade, or every check if there is none.
    check: Option<String>,
}

/// Prints the hint(s).
pub fn run(args: &HintArgs) -> Result<ExitCode> {
    let Some(lab) = Lab::find(&args.lab) else {
        bail!(
            "no lab is called `{}`; valid names: {}",
            args.lab,
            Lab::valid_names()
        );
    };
    let specs = grader::rubric::for_lab(lab);
    let chosen: Vec<_> = match &args.check {
        Some(name) => {
            let id = if name.contains('.') {
                name.clone()
            } else {
                format!("{}.{name}", lab.slug)
            };
            let Some(spec) = specs.iter().find(|spec| spec.id == id) else {
                let ids: Vec<&str> = specs.iter().map(|spec| spec.id.as_str()).collect();
                bail!(
                    "{} has no check `{name}`; its checks: {}",
                    lab.name(),
                    ids.join(", ")
                );
            };
            vec![*spec]
        }
        None => {
            let first_failing = results::load(lab.slug).and_then(|report| {
                report["checks"]
                    .as_array()?
                    .iter()
                    .find(|check| check["status"] != "passed")?["id"]
                    .as_str()
                    .map(str::to_owned)
            });
            match first_failing {
                Some(id) => specs.iter().filter(|spec| spec.id == id).copied().collect(),
                None => specs,
            }
        }
    };
    for spec in chosen {
        println!("{} — {}", spec.id, spec.title);
        println!("  hint: {}", spec.hint.trim());
        println!("  read: {}{}", lab.handout(), spec.handout);
        if !spec.manual.is_empty() {
            println!("  try it: {}", spec.manual.trim());
        }
    }
    Ok(ExitCode::SUCCESS)
}
