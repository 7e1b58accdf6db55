//! Contained builds: a submission's `cargo build` runs as an unprivileged
//! uid, in a world of its own.
//!
//! A build runs the student's code too: `build.rs`, procedural macros, and
//! `include_str!`, `include_bytes!`, `env!`, which read whatever the
//! compiler can at compile time and put it in the program (or quote it in a
//! compile error). A sealed build (grade-class, a platform's `--contained`
//! grade) therefore runs, wherever the grader is root and the kernel allows
//! a mount namespace:
//!
//! - as [`BUILD_UID`], which no graded program uses, with no supplementary
//!   groups;
//! - in the filesystem view of a graded program
//!   ([`crate::harness::sandbox::mounts`]) that shows, besides the system's
//!   folders, only the toolchain and the cargo registry (read-only), this
//!   submission's copy of the course (read-only, without `solutions/`), and
//!   its own target folder, the one thing it may write;
//! - with a cleared environment, no network (a namespace with no interface
//!   up), the cgroups' memory and task limits, and the build's time limit.
//!
//! So `include_str!("/root/secret")` fails to compile: rustc cannot read the
//! file, and so cannot quote it. Elsewhere (a container that denies
//! namespaces) a sealed build runs as today: `--locked --offline` under a
//! time limit; the README says so.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::harness::process::{Launch, Process};
use crate::harness::sandbox::{GUEST_PATH, Grant, Policy};

/// The uid and gid contained builds run as: below the graded programs'
/// range, so a build can reach no graded program's files and none of them
/// a build's.
pub const BUILD_UID: u32 = 63_999;
/// The gid that goes with [`BUILD_UID`].
pub const BUILD_GID: u32 = 63_999;
/// The most a build may print (its JSON messages on stdout, the compiler's
/// messages on stderr).
const OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// The toolchain a contained build uses: found outside, before the build.
#[derive(Debug)]
struct Toolchain {
    /// `rustc --print sysroot`: `bin/cargo`, `bin/rustc` and the standard
    /// library.
    sysroot: PathBuf,
    /// The folders of `$CARGO_HOME` a locked, offline build reads.
    registry: Vec<PathBuf>,
    cargo_home: PathBuf,
}

fn toolchain() -> Option<&'static Toolchain> {
    static TOOLCHAIN: OnceLock<Option<Toolchain>> = OnceLock::new();
    TOOLCHAIN
        .get_or_init(|| {
            let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
            let output = Command::new(rustc)
                .args(["--print", "sysroot"])
                .output()
                .ok()?;
            let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
            let cargo_home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
            let registry = ["registry", "git"]
                .iter()
                .map(|name| cargo_home.join(name))
                .filter(|folder| folder.is_dir())
                .collect();
            sysroot.join("bin/cargo").exists().then_some(Toolchain {
                sysroot,
                registry,
                cargo_home,
            })
        })
        .as_ref()
}

/// Whether sealed builds run contained on this machine.
pub fn available() -> bool {
    let policy = Policy::get();
    policy.guest.is_some() && policy.filesystem_view && toolchain().is_some()
}

/// Runs the cargo `command` contained, writing only into `target`, for at
/// most `limit`: the build's output, or why there is none.
pub fn run(
    command: &Command,
    workspace: &Path,
    target: &Path,
    limit: Duration,
) -> Result<Output, String> {
    let toolchain = toolchain().ok_or("no toolchain to build with")?;
    let could_not = |err: io::Error| format!("could not start the contained build: {err}");
    std::fs::create_dir_all(target).map_err(could_not)?;
    give_to_build_uid(target).map_err(could_not)?;
    let bin = toolchain.sysroot.join("bin");
    let mut path = OsString::from(bin.as_os_str());
    path.push(":");
    path.push(GUEST_PATH);
    let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
    let mut launch = Launch::new(bin.join("cargo"), args)
        .env("PATH", path)
        .env("RUSTC", bin.join("rustc"))
        .env("CARGO_HOME", &toolchain.cargo_home);
    launch.output_cap = OUTPUT_CAP;
    launch.grace = Duration::from_millis(100);
    launch.own_network = true;
    launch.current_dir = Some(workspace.to_path_buf());
    let mut read_only = vec![toolchain.sysroot.clone(), workspace.to_path_buf()];
    read_only.extend(toolchain.registry.iter().cloned());
    launch.grant = Some(Grant {
        guest: Some((BUILD_UID, BUILD_GID)),
        read_only,
        writable: vec![target.to_path_buf()],
        hidden: vec![workspace.join("solutions")],
        cgroups: None,
    });
    let mut process = Process::spawn(&launch, Arc::default()).map_err(could_not)?;
    let status = process.wait_until(Instant::now() + limit);
    process.terminate();
    let Some(status) = status else {
        return Err(format!(
            "the build did not finish within {} s",
            limit.as_secs()
        ));
    };
    let _ = process
        .stdout()
        .wait_closed(Instant::now() + Duration::from_secs(1));
    let _ = process
        .stderr()
        .wait_closed(Instant::now() + Duration::from_secs(1));
    Ok(Output {
        status: ExitStatus::from_raw(status.into_raw()),
        stdout: process.stdout().bytes(),
        stderr: process.stderr().bytes(),
    })
}

/// Makes the build uid own `folder` and everything in it (a copy of the
/// dependency seed, made by root), never following symbolic links.
fn give_to_build_uid(folder: &Path) -> io::Result<()> {
    std::os::unix::fs::lchown(folder, Some(BUILD_UID), Some(BUILD_GID))?;
    if std::fs::symlink_metadata(folder)?.is_dir() {
        for entry in std::fs::read_dir(folder)? {
            give_to_build_uid(&entry?.path())?;
        }
    }
    Ok(())
}
