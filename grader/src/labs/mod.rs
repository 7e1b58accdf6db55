//! One module per lab: its checks, as plain functions listed, in rubric
//! order, by [`checks!`]: the function's name is the id's name, so an id is
//! written once in Rust. The [`Lab`](crate::lab::Lab) table holds each
//! lab's list. Points, hints and limits are in `grader/rubric.toml`.

/// A lab's checks in rubric order, each named by its function:
/// `checks!("echo"; self::ready, client::client_output)` is
/// `[("echo.ready", ready), ("echo.client_output", client::client_output)]`.
macro_rules! checks {
    ($slug:literal; $($module:ident :: $name:ident),+ $(,)?) => {
        &[$((
            concat!($slug, ".", stringify!($name)),
            $module::$name as crate::runner::CheckFn,
        )),+]
    };
}

pub mod app;
pub mod client_list;
pub mod echo;
pub mod errors;
pub mod multiconn;
pub mod udp;

#[cfg(test)]
mod tests {
    use crate::lab::LABS;
    use crate::rubric;

    #[test]
    fn every_rubric_entry_has_a_check_and_every_check_an_entry() {
        for lab in LABS {
            let functions = lab.checks;
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
