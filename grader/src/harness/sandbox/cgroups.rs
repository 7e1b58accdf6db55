//! cgroups for graded programs: a pids limit (a fork bomb stops at
//! [`MAX_TASKS`]), a memory limit behind the resident-memory watcher, and
//! cgroup v2's `cgroup.kill` to end every process at once where no PID
//! namespace does.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most processes and threads one graded program may have at once (lab 6
/// legitimately runs a few hundred threads).
pub const MAX_TASKS: u32 = 1024;
/// Resident memory a graded process may use before the grader's watcher
/// stops it and says so.
pub const MEMORY_LIMIT_MIB: u64 = 1024;
/// The cgroup memory limit, above the resident-memory watcher's: the
/// watcher stops the program and says so; the cgroup stops its children
/// too.
pub const CGROUP_MEMORY_LIMIT_MIB: u64 = MEMORY_LIMIT_MIB + 256;

/// The most tasks all the programs of one grade may have at once, added up:
/// a grade runs up to 8 checks at once, each with a program or two.
pub const GRADE_MAX_TASKS: u32 = 2048;
/// The most memory all the programs of one grade may use at once, added up:
/// a quarter of the machine's, at most 4 GiB, and never less than one
/// program's limit.
fn grade_memory_limit() -> u64 {
    const GIB: u64 = 1024 * 1024 * 1024;
    let program = CGROUP_MEMORY_LIMIT_MIB * 1024 * 1024;
    (machine_memory() / 4).min(4 * GIB).max(program)
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`); 8 GiB
/// where it cannot be read.
fn machine_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let kib = text
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))?;
            kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(8 << 30, |kib| kib * 1024)
}

/// What every grader on the machine may use together, set on the shared
/// `socket-labs` folders: half the machine's memory, and half its process
/// ids (at most 16384 tasks), so that graders side by side (`grade all`,
/// `grade-class -j`) can never take the machine with them.
fn cap_every_grade(roots: &CgroupRoots) {
    if let Some(dir) = &roots.pids {
        let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(32768);
        let _ = fs::write(dir.join("pids.max"), (pid_max / 2).min(16384).to_string());
    }
    if let Some(dir) = &roots.memory {
        let half = (machine_memory() / 2).to_string();
        let _ = fs::write(dir.join("memory.limit_in_bytes"), &half);
        let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &half);
    }
}

/// The cgroup folders under which each program gets one of its own.
#[derive(Debug, Clone, Default)]
pub struct CgroupRoots {
    /// cgroup v1 `pids` controller.
    pub pids: Option<PathBuf>,
    /// cgroup v1 `memory` controller.
    pub memory: Option<PathBuf>,
    /// cgroup v2, for `cgroup.kill`.
    pub unified: Option<PathBuf>,
}

impl CgroupRoots {
    /// The writable hierarchies: `socket-labs` folders made under our own
    /// cgroup in each.
    pub(super) fn detect() -> CgroupRoots {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let v1 = |controller: &str| {
            let mount = mountinfo.lines().find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let mut fields = after.split_whitespace();
                let (kind, _source, options) = (fields.next()?, fields.next()?, fields.next()?);
                (kind == "cgroup" && options.split(',').any(|o| o == controller))
                    .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
            })?;
            let path = own.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_owned())
            })?;
            usable(mount.join(path.trim_start_matches('/')).join("socket-labs"))
        };
        let unified = mountinfo
            .lines()
            .find_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                after
                    .starts_with("cgroup2 ")
                    .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
            })
            .and_then(|mount| {
                let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
                // The root cgroup has no cgroup.kill: look in ours.
                let dir = usable(mount.join(path.trim_start_matches('/')).join("socket-labs"))?;
                dir.join("cgroup.kill").exists().then_some(dir)
            });
        let roots = CgroupRoots {
            pids: v1("pids"),
            memory: v1("memory"),
            unified,
        };
        cap_every_grade(&roots);
        roots
    }
}

/// The cgroups of one grade, under which each of its programs gets its own:
/// limits on what its programs use together ([`GRADE_MAX_TASKS`],
/// [`grade_memory_limit`]), so that programs of checks running side by side,
/// each within its own limits, cannot together exhaust the machine's
/// processes or memory. Removed when the grade ends.
#[derive(Debug, Default)]
pub struct GradeCgroups {
    roots: CgroupRoots,
    dirs: Vec<PathBuf>,
}

impl GradeCgroups {
    /// New cgroups for one grade under `machine`'s, in every usable
    /// hierarchy; where one cannot be made, its programs go straight under
    /// `machine`'s.
    pub fn create(machine: &CgroupRoots) -> GradeCgroups {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-grade{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut dirs = Vec::new();
        let mut make = |root: &Option<PathBuf>, limits: &[(&str, &str)]| {
            let Some(root) = root else {
                return None;
            };
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_err() {
                return Some(root.clone());
            }
            for (file, value) in limits {
                let _ = fs::write(dir.join(file), value);
            }
            dirs.push(dir.clone());
            Some(dir)
        };
        let tasks = GRADE_MAX_TASKS.to_string();
        let memory = grade_memory_limit().to_string();
        let roots = CgroupRoots {
            pids: make(&machine.pids, &[("pids.max", &tasks)]),
            memory: make(
                &machine.memory,
                &[
                    ("memory.limit_in_bytes", &memory),
                    ("memory.memsw.limit_in_bytes", &memory),
                ],
            ),
            unified: make(&machine.unified, &[]),
        };
        GradeCgroups { roots, dirs }
    }

    /// The folders under which the grade's programs get theirs.
    pub fn roots(&self) -> &CgroupRoots {
        &self.roots
    }
}

impl Drop for GradeCgroups {
    fn drop(&mut self) {
        for dir in self.dirs.drain(..) {
            remove_when_empty(&dir);
        }
    }
}

/// Removes the cgroup `dir` once its processes are gone: a dead process
/// leaves its cgroup a moment after it is reaped, so this retries briefly;
/// a folder that stays busy is left for [`remove_left_behind`].
fn remove_when_empty(dir: &std::path::Path) {
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            _ => break,
        }
    }
}

/// `dir` if it exists or can be made, and we can make folders inside it.
fn usable(dir: PathBuf) -> Option<PathBuf> {
    fs::create_dir_all(&dir).ok()?;
    let probe = dir.join(format!("probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    fs::remove_dir(&probe).ok()?;
    remove_left_behind(&dir);
    Some(dir)
}

/// How old an empty cgroup under a root must be before [`remove_left_behind`]
/// takes it for one a grader left behind: far longer than any program runs
/// (the longest time limit is 300 s), so that a grader's cgroup made for a
/// program that has not joined it yet is never taken.
const LEFT_BEHIND_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Removes the empty cgroups under `root` that a grader left behind (one
/// that was killed, or whose last program's cgroup stayed busy a moment too
/// long). Another grader's, which may be running in another PID namespace
/// where its pid in the folder's name means nothing here, is never touched:
/// only a cgroup that holds no process can be removed (the kernel refuses
/// the others), and only one older than [`LEFT_BEHIND_AFTER`].
fn remove_left_behind(root: &std::path::Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        // Ours are named `PID-N` (a program's) or `PID-gradeN` (a grade's).
        let named_by_a_grader = entry.file_name().to_str().is_some_and(|name| {
            name.split_once('-')
                .is_some_and(|(pid, _)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        });
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > LEFT_BEHIND_AFTER);
        if named_by_a_grader && old {
            // A grade's folder holds its programs' (themselves old, since
            // the grade's is at least as old as its last change).
            if let Ok(inside) = fs::read_dir(entry.path()) {
                for program in inside.flatten().filter(|e| e.path().is_dir()) {
                    let _ = fs::remove_dir(program.path());
                }
            }
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The cgroups of one graded program: made before it starts, joined by the
/// program itself before it execs (its init stays out of them, see
/// `child::start_program`), removed after it is reaped.
#[derive(Debug, Default)]
pub struct ProgramCgroups {
    dirs: Vec<PathBuf>,
    memory: Option<PathBuf>,
    unified: Option<PathBuf>,
    /// Open `tasks` (v1) and `cgroup.procs` (v2) files: the child writes
    /// `0` to each to join.
    join: Vec<fs::File>,
}

impl ProgramCgroups {
    /// New cgroups for one program, in every usable hierarchy. A hierarchy
    /// that refuses is left out (the report still says what is in force
    /// from the policy; this is best effort on top of it).
    pub fn create(roots: &CgroupRoots) -> ProgramCgroups {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroups = ProgramCgroups::default();
        if let Some(root) = &roots.pids {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                let _ = fs::write(dir.join("pids.max"), MAX_TASKS.to_string());
                cgroups.add(dir);
            }
        }
        if let Some(root) = &roots.memory {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                let bytes = CGROUP_MEMORY_LIMIT_MIB * 1024 * 1024;
                let _ = fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string());
                // Swap included, where the kernel accounts it: a program
                // may not spill past the limit into swap.
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                cgroups.memory = Some(dir.clone());
                cgroups.add(dir);
            }
        }
        if let Some(root) = &roots.unified {
            let dir = root.join(&name);
            if fs::create_dir(&dir).is_ok() {
                cgroups.unified = Some(dir.clone());
                cgroups.add(dir);
            }
        }
        cgroups
    }

    fn add(&mut self, dir: PathBuf) {
        // v1 joins by `tasks`, v2 by `cgroup.procs` (a v2 domain cgroup
        // takes no single thread). The child that writes is a process of
        // one thread, so either moves all of it; but a move by
        // `cgroup.procs` takes the kernel's lock on every thread group for
        // writing, and waits out an RCU grace period for it: 6 to 20 ms on
        // this course's machines, on every program's start, where a move
        // by `tasks` of the writer itself takes 0.1 ms.
        let join = if self.unified.as_ref() == Some(&dir) {
            "cgroup.procs"
        } else {
            "tasks"
        };
        // Opened now, written by the child: it may not allocate or open paths.
        if let Ok(file) = fs::OpenOptions::new().write(true).open(dir.join(join)) {
            self.join.push(file);
        }
        self.dirs.push(dir);
    }

    /// The cgroups' folders.
    #[cfg(test)]
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The descriptors the child writes `0` to, joining every cgroup.
    pub fn join_fds(&self) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        self.join.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Kills every process in the program's cgroups (v2's `cgroup.kill`).
    pub fn kill_all(&self) {
        if let Some(dir) = &self.unified {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
        }
    }

    /// Whether the memory cgroup had to kill a process.
    pub fn hit_memory_limit(&self) -> bool {
        self.memory.as_ref().is_some_and(|dir| {
            fs::read_to_string(dir.join("memory.oom_control")).is_ok_and(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("oom_kill "))
                    .and_then(|count| count.trim().parse::<u64>().ok())
                    .is_some_and(|count| count > 0)
            })
        })
    }

    /// Removes the cgroups once their processes are gone (a dead process
    /// leaves its cgroup a moment after it is reaped, so this retries
    /// briefly; a folder that stays busy is left for the next run).
    pub fn remove(&mut self) {
        self.join.clear();
        for dir in self.dirs.drain(..) {
            remove_when_empty(&dir);
        }
    }
}

impl Drop for ProgramCgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty cgroup a grader left behind long ago is removed by the next
    /// grader; a recent one is kept (its grader may be about to use it),
    /// and so is one that holds a process, however old.
    #[test]
    fn a_programs_memory_limit_counts_its_swap_too() {
        let roots = CgroupRoots::detect();
        let mut cgroups = ProgramCgroups::create(&roots);
        let Some(dir) = cgroups.memory.clone() else {
            return; // no writable memory cgroup here
        };
        let read = |file: &str| fs::read_to_string(dir.join(file)).ok();
        let limit = (CGROUP_MEMORY_LIMIT_MIB * 1024 * 1024).to_string();
        assert_eq!(
            read("memory.limit_in_bytes").as_deref().map(str::trim),
            Some(&*limit)
        );
        if let Some(with_swap) = read("memory.memsw.limit_in_bytes") {
            assert_eq!(with_swap.trim(), limit);
        }
        cgroups.remove();
    }

    #[test]
    fn only_old_empty_cgroups_left_by_a_grader_are_removed() {
        let Some(root) = CgroupRoots::detect().pids else {
            return; // not writable here
        };
        let pid = std::process::id();
        let (old, recent, busy) = (
            root.join(format!("{pid}-old")),
            root.join(format!("{pid}-recent")),
            root.join(format!("{pid}-busy")),
        );
        for dir in [&old, &recent, &busy] {
            fs::create_dir_all(dir).expect("a cgroup");
        }
        let mut sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep runs");
        fs::write(busy.join("cgroup.procs"), sleeper.id().to_string()).expect("joined");
        let long_ago = std::time::SystemTime::now() - 2 * LEFT_BEHIND_AFTER;
        for dir in [&old, &busy] {
            fs::File::open(dir)
                .and_then(|folder| folder.set_modified(long_ago))
                .expect("an old cgroup");
        }
        CgroupRoots::detect();
        let kept = (old.exists(), recent.exists(), busy.exists());
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        for dir in [&old, &recent, &busy] {
            let _ = fs::remove_dir(dir);
        }
        assert_eq!(kept, (false, true, true), "(old, recent, busy) kept");
    }
}
