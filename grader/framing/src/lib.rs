//! This crate holds only the driver, `tests/driver.rs`, of lab 4's framing
//! library. `cargo xtask grade lab4` builds it against the graded crate
//! (`cargo test --no-run -p framing-tests`) and runs it as a graded program
//! (check `app.framing_tests`): the grader sends it calls, it writes back
//! what the library returned, and the grader judges the answers.
