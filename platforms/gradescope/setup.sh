#!/usr/bin/env bash
# Gradescope autograder image setup: a Rust toolchain, Python 3 (not needed to
# grade, but handy), and a warm build of the course's clean copy.
set -euo pipefail
apt-get update -qq
apt-get install -y -qq curl build-essential git
if ! command -v cargo >/dev/null 2>&1; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
source "$HOME/.cargo/env"
cd /autograder/source
# Fetch and build the grader and the dependencies once, so that grading a
# submission compiles only the student's crate, offline (run_autograder builds
# with --locked --offline).
cargo fetch --locked
cargo build --workspace --locked
