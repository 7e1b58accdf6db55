//! This crate holds only tests: `tests/framing.rs`, the grader's own tests of
//! lab 4's framing library. `cargo xtask grade lab4` builds them against the
//! graded crate (`cargo test --no-run -p framing-tests`) and runs the test
//! executable as a graded program (check `app.framing_tests`).
