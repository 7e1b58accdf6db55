//! The course's grader as this lab's test oracle, for `cargo xtask
//! mutants` (see `solutions/grade_oracle.rs`): ignored in a plain `cargo test`.

#[path = "../../grade_oracle.rs"]
mod grade_oracle;

#[test]
#[ignore = "grades with the course's grader: `cargo xtask mutants` runs it"]
fn the_grader_gives_full_marks() {
    grade_oracle::assert_full_marks("echo", env!("CARGO_BIN_EXE_echo-server"));
}
