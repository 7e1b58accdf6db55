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
            let id = crate::grade::resolve_check(&[lab], name).map_err(anyhow::Error::msg)?;
            specs.into_iter().filter(|spec| spec.id == id).collect()
        }
        None => {
            // A lab that did not compile ran no check: the compiler's first
            // error is the hint.
            if let Some(report) = results::load(lab.slug) {
                if let Some(message) = results::build_failure(&report) {
                    let when = format!(" in your last grade ({})", results::age(&report));
                    let then = format!("grade again: cargo xtask grade {}", lab.name());
                    print!("{}", did_not_compile(lab, &when, message, &then));
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let first_failing = results::load(lab.slug).and_then(|report| {
                report["checks"]
                    .as_array()?
                    .iter()
                    .find(|check| check["status"] != "passed")?["id"]
                    .as_str()
                    .map(str::to_owned)
            });
            let last = results::load(lab.slug);
            let full_marks = last.as_ref().is_some_and(|report| {
                report["max_score"].as_u64().unwrap_or(0) > 0
                    && report["score"] == report["max_score"]
            });
            match (first_failing, last) {
                (Some(id), _) => specs.iter().filter(|spec| spec.id == id).copied().collect(),
                (None, Some(report)) if full_marks => {
                    println!(
                        "{}: your last grade ({}) had full marks, {}/{}: nothing to fix.",
                        lab.name(),
                        results::age(&report),
                        report["score"],
                        report["max_score"]
                    );
                    println!(
                        "`cargo xtask hint {} CHECK` shows the hint of any check.",
                        lab.name()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                _ => {
                    println!(
                        "{} has no grade yet (`cargo xtask grade {}`): the hints of every check.\n",
                        lab.name(),
                        lab.name()
                    );
                    specs
                }
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

/// What `hint` (and `watch`'s `h`) says about a lab that did not compile
/// (`when`: ` in your last grade (5 min ago)`, or empty): so, the
/// compiler's first error whole with its location, then a bounded
/// screenful, then what to do (`then`).
pub fn did_not_compile(lab: &Lab, when: &str, message: &str, then: &str) -> String {
    let errors =
        grader::builder::first_errors(message).unwrap_or_else(|| message.trim_end().to_owned());
    format!(
        "{}{when} did not compile, so no check ran. The compiler's first error:\n\n{}\n\n\
         Fix it, then {then}.\n\
         `cargo xtask hint {} CHECK` shows the hint of any check.\n",
        lab.name(),
        grader::untrusted::terminal(&errors),
        lab.name()
    )
}
