//! A graded program is an untrusted guest: what it may touch, and how the
//! kernel enforces it.
//!
//! A student controls the sources of the program the grader runs. The
//! program must not be able to change a grade, read or alter anything of the
//! grader's or of another student's, keep a process alive after its check,
//! or reach any network but loopback. Each layer below is a kernel
//! mechanism, used wherever the machine allows it, and the report's details
//! say which were in force ([`Policy::describe`]):
//!
//! - **a guest uid per grade** (when the grader runs as root): the program
//!   runs as [`GUEST_UID`]` + N`/[`GUEST_GID`]` + N`, where N is a slot that
//!   no other grade running at the same time holds ([`uids`]), with no
//!   supplementary groups, in a fresh working folder private to it (0700).
//!   Signals and `ptrace` against the grader fail with EPERM.
//! - **a filesystem of its own** ([`mounts`]): the system's folders
//!   read-only, its own executables read-only, its working folder, and
//!   private temporary folders; the course, its solutions, the class folder
//!   and every home folder are not there at all.
//! - **PID, IPC and UTS namespaces per program**: its pid 1 is a small init
//!   of ours ([`child`]), so every descendant dies with it, whatever its
//!   session, group or environment, the grader's pid is not even visible,
//!   and System V shared memory dies with it too. As a non-root user this
//!   needs a user namespace (which maps only our own uid).
//! - **a network namespace per grade** ([`network`]): only loopback,
//!   brought up. As root, or without root in a user namespace of the
//!   grader's own ([`enter_own_user_namespace`], which `xtask` enters first
//!   thing), where the grader keeps its uid and may make namespaces.
//! - **cgroups** where they are writable ([`cgroups`]): a pids limit, a
//!   memory limit behind the resident-memory watcher, and `cgroup.kill` where
//!   no PID namespace ends every process with its init.
//! - **a cleared environment**: a fixed PATH of system directories,
//!   `LANG=C.UTF-8`, HOME set to the program's own folder, and only the
//!   variables the lab contract names.
//!
//! The *minimum* containment ([`Policy::minimum_missing`]) is, as root, the
//! uid drop and (where the kernel allows a mount namespace) the filesystem
//! view; always, the cleared environment, results written only by the
//! grader, and every descendant killed. `--contained` makes a missing
//! minimum an error. The rest is used when available and reported: platform
//! containers may deny it.
//!
//! # Layout
//!
//! Everything here is used by the process handle (`harness::process`) and
//! the runner; nothing here uses them.
//!
//! - [`policy`]: what is in force on this machine, and why; the guest's
//!   environment.
//! - [`child`]: the async-signal-safe code that runs between `clone` and
//!   `execve` (the init, the limits, the uid drop).
//! - [`seccomp`]: the system-call filter the child installs last.
//! - [`mounts`]: the mount plan, made before the clone, carried out by the
//!   child.
//! - [`cgroups`]: each program's cgroups.
//! - [`network`]: the grade's network namespace.
//! - [`uids`]: a uid per grade.
//! - [`folders`]: working folders and staged executables.

pub mod cgroups;
pub mod child;
pub mod folders;
pub mod mounts;
pub mod network;
pub mod policy;
pub mod seccomp;
pub mod uids;

use std::io;
use std::path::{Path, PathBuf};

pub use cgroups::{
    CGROUP_MEMORY_LIMIT_MIB, CgroupRoots, GRADE_MAX_TASKS, GradeCgroups, MAX_TASKS,
    MEMORY_LIMIT_MIB, ProgramCgroups,
};
pub use policy::{
    DISABLE_VARIABLE, GUEST_GID, GUEST_PATH, GUEST_UID, Policy, REPORT_FOLDER_VARIABLE,
    enable_test_reports, enter_own_user_namespace, guest_environment, protect_grader,
};

use folders::Staged;
use network::NetworkNamespace;
use uids::UidSlot;

/// What one grade's programs may see and who they run as: handed to every
/// program the grade starts.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The uid and gid its programs run as (root only).
    pub guest: Option<(u32, u32)>,
    /// The folders its programs see read-only besides the system's: the
    /// staged executables.
    pub read_only: Vec<PathBuf>,
    /// The folders they see writable besides their own working folder: only
    /// a test's `outbox/` ([`REPORT_FOLDER_VARIABLE`]), a build's target.
    pub writable: Vec<PathBuf>,
    /// Folders inside the ones above that must not be seen (a build's
    /// `solutions/`); the course itself is always hidden unless it is one of
    /// them.
    pub hidden: Vec<PathBuf>,
    /// The grade's cgroups, under which each program gets its own; `None`
    /// outside a grade (the machine's, from the policy).
    pub cgroups: Option<CgroupRoots>,
}

impl Grant {
    /// What a program started outside any grade gets: the first guest uid,
    /// and nothing to see but the system's folders (the process handle adds
    /// the program's own folder).
    pub fn outside_a_grade() -> Grant {
        Grant {
            guest: Policy::get().guest,
            read_only: Vec::new(),
            writable: Vec::new(),
            hidden: Vec::new(),
            cgroups: None,
        }
    }
}

/// What one grade runs in: a network namespace (when available) that every
/// check thread joins, a uid of its own, and the executables staged where
/// that uid may read and run them.
#[derive(Debug)]
pub struct Sandbox {
    network: Option<NetworkNamespace>,
    cgroups: GradeCgroups,
    slot: Option<UidSlot>,
    staged: Option<Staged>,
    writable: Vec<PathBuf>,
    /// What staging left out of a `--bin-dir` folder, for the report.
    pub notes: Vec<String>,
}

impl Sandbox {
    /// A sandbox for one grade, as the [`Policy`] allows.
    pub fn new() -> Sandbox {
        let policy = Policy::get();
        Sandbox {
            network: policy
                .network_namespace
                .then(|| NetworkNamespace::create().ok())
                .flatten(),
            cgroups: GradeCgroups::create(&policy.cgroups),
            slot: policy.guest.and_then(|_| UidSlot::take().ok()),
            staged: None,
            writable: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Moves the calling thread into the grade's network namespace (a check
    /// thread, before it starts anything). Threads it starts stay there.
    pub fn enter(&self) -> io::Result<()> {
        match &self.network {
            Some(namespace) => namespace.enter(),
            None => Ok(()),
        }
    }

    /// Whether the checks run in a network namespace of their own.
    pub fn isolated_network(&self) -> bool {
        self.network.is_some()
    }

    /// The uid and gid of this grade's programs.
    pub fn guest(&self) -> Option<(u32, u32)> {
        let (uid, gid) = Policy::get().guest?;
        let offset = self.slot.as_ref().map_or(0, UidSlot::index);
        Some((uid + offset, gid + offset))
    }

    /// What this grade's programs get.
    pub fn grant(&self) -> Grant {
        Grant {
            guest: self.guest(),
            read_only: self
                .staged
                .iter()
                .map(|staged| staged.path().to_path_buf())
                .collect(),
            writable: self.writable.clone(),
            hidden: Vec::new(),
            cgroups: Some(self.cgroups.roots().clone()),
        }
    }

    /// What was in force for this grade, for the report's header.
    pub fn describe(&self) -> String {
        let mut policy = Policy::get().clone();
        policy.network_namespace = self.isolated_network();
        policy.guest = self.guest();
        policy.describe()
    }

    /// Stages the named executables (`name → path`) where the guest may read
    /// and run them, and returns their new paths. With `whole_folder`, that
    /// folder is copied in whole first, so that a program keeps the files
    /// beside it; the executables are then found in the copy.
    pub fn stage(
        &mut self,
        executables: &[(String, PathBuf)],
        whole_folder: Option<&Path>,
    ) -> io::Result<Vec<(String, PathBuf)>> {
        let staged = Staged::new()?;
        let mut moved = Vec::new();
        if let Some(folder) = whole_folder {
            self.notes = staged.folder(folder)?;
            let outbox = folder.join("outbox");
            if policy::test_reports_enabled() && outbox.is_dir() {
                self.writable.push(outbox);
            }
        }
        for (name, path) in executables {
            let in_copy = staged.path().join(path.file_name().unwrap_or_default());
            let copy = match whole_folder {
                // A symbolic link was left out of the copy: what it points
                // to is staged under its name instead.
                Some(folder) if path.parent() == Some(folder) && in_copy.is_file() => in_copy,
                _ => staged.executable(name, path)?,
            };
            moved.push((name.clone(), copy));
        }
        self.staged = Some(staged);
        Ok(moved)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}
