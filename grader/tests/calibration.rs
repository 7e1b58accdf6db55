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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use support::*;

/// Runs `check` for every lab of the lab table but lab 4, one lab after the
/// other (their checks are timed: running them all at once would load the
/// machine), and fails naming every lab it failed for.
fn for_every_lab(check: impl Fn(&str)) {
    let failed: Vec<&str> = grader::LABS
        .iter()
        .map(|lab| lab.slug)
        .filter(|slug| *slug != "app")
        .filter(|slug| catch_unwind(AssertUnwindSafe(|| check(slug))).is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "failed for {failed:?} (their messages are above)"
    );
}

#[test]
fn the_solution_gets_full_marks() {
    for_every_lab(|slug| assert_full_marks(&grade_solution(slug)));
}

#[test]
fn the_untouched_stub_gets_zero_with_every_check_reported() {
    for_every_lab(|slug| {
        let started = Instant::now();
        let report = grade_stub(slug);
        assert_zero_with_every_check(&report);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{slug} took {:?}",
            started.elapsed()
        );
    });
}

#[test]
fn an_independent_python_implementation_gets_full_marks() {
    for_every_lab(|slug| {
        let dir = fixture_bin_dir(slug, &[]);
        assert_full_marks(&grade_dir(slug, dir.path()));
        assert_nothing_left(dir.path());
    });
}
