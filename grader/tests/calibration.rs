//! Calibration of every lab: the reference solution gets full marks, the
//! untouched stub gets zero with every check reported (in bounded time), and
//! an independent implementation in Python (stdlib only, under
//! `grader/tests/fixtures/SLUG/`) gets full marks through `--bin-dir`, which
//! shows the checks follow the contract rather than our solution.
//!
//! Each lab's own test file adds a classic bug per check and its specifics.
//! Lab 4 (app) keeps these three in its own file, with assertions about its
//! framing-tests check (run for a crate, skipped for `--bin-dir`).

mod support;

use std::time::{Duration, Instant};

use rstest::rstest;
use support::*;

#[rstest]
fn the_solution_gets_full_marks(
    #[values("echo", "errors", "multiconn", "udp", "client-list")] slug: &str,
) {
    assert_full_marks(&grade_solution(slug));
}

#[rstest]
fn the_untouched_stub_gets_zero_with_every_check_reported(
    #[values("echo", "errors", "multiconn", "udp", "client-list")] slug: &str,
) {
    let started = Instant::now();
    let report = grade_stub(slug);
    assert_zero_with_every_check(&report);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[rstest]
fn an_independent_python_implementation_gets_full_marks(
    #[values("echo", "errors", "multiconn", "udp", "client-list")] slug: &str,
) {
    let dir = fixture_bin_dir(slug, &[]);
    assert_full_marks(&grade_dir(slug, dir.path()));
    assert_nothing_left(dir.path());
}
