//! One module per lab: its checks, as plain functions listed with their
//! rubric ids. Points, hints and limits are in `grader/rubric.toml`.

use crate::lab::Lab;
use crate::runner::CheckFn;

pub mod app;
pub mod client_list;
pub mod echo;
pub mod errors;
pub mod multiconn;
pub mod udp;

/// The check functions of `lab`, by rubric id.
pub fn checks(lab: &Lab) -> &'static [(&'static str, CheckFn)] {
    match lab.slug {
        "echo" => echo::CHECKS,
        "udp" => udp::CHECKS,
        "client-list" => client_list::CHECKS,
        "errors" => errors::CHECKS,
        "multiconn" => multiconn::CHECKS,
        "app" => app::CHECKS,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use crate::lab::LABS;
    use crate::rubric;

    #[test]
    fn every_rubric_entry_has_a_check_and_every_check_an_entry() {
        for lab in LABS {
            let functions = super::checks(lab);
            // Commands iterate over every lab: none may be without checks.
            assert!(!functions.is_empty(), "{} has no checks", lab.slug);
            for spec in rubric::for_lab(lab) {
                assert!(
                    functions.iter().any(|(id, _)| *id == spec.id),
                    "{} has no function",
                    spec.id
                );
            }
            for (id, _) in functions {
                assert!(
                    rubric::find(id).is_some(),
                    "{id} is not in grader/rubric.toml"
                );
            }
        }
    }
}
