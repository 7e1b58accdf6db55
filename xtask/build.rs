//! Tells the xtask's tests which edition of the course they are built in:
//! in the student edition (`cargo xtask dist`, no `solutions/`), the cfg
//! `student_edition` is set, and the tests that need the reference
//! solutions or the grader's Python fixtures are `#[ignore]`d with a reason
//! (`cargo test` lists them as ignored, rather than passing them silently).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(student_edition)");
    // `dist` rewrites the root manifest (without its course-only lines), so
    // a change of edition reruns this script.
    println!("cargo::rerun-if-changed=../Cargo.toml");
    println!("cargo::rerun-if-changed=build.rs");
    if !std::path::Path::new("../solutions/Cargo.toml").is_file() {
        println!("cargo::rustc-cfg=student_edition");
    }
}
