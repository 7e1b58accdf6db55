//! A filesystem of its own for every graded program, as bubblewrap and
//! nsjail build one: default deny.
//!
//! In its new mount namespace the program's init builds a root on an empty
//! tmpfs and `pivot_root`s into it. That root holds only:
//!
//! - the system's folders (`/usr`, `/etc`, and `/bin`, `/lib`… or their
//!   links), read-only, no set-uid, no devices;
//! - a `/dev` of six harmless devices, and a private `/dev/shm`;
//! - a `/proc` of its own PID namespace (showing only its own processes), and
//!   a `/sys` of its own network namespace where the kernel allows;
//! - private, size-bounded tmpfs folders at `/tmp` (`/var/tmp` links to it)
//!   and `/run`, which vanish with the program;
//! - the folders of its [`View`], at the same paths as on the machine: its
//!   staged executables read-only, its working folder writable.
//!
//! Everything else (the course and its `solutions/`, the grader, the class
//! folder, other students' folders, home folders, `/opt`, `/srv`, `/mnt`,
//! `/work`…) simply is not there. A hidden folder that happens to sit inside
//! a visible one (the course inside a system folder, `solutions/` inside a
//! build's course) is covered by an empty read-only tmpfs.
//!
//! The plan is made before the clone, as C strings, and carried out by the
//! child with plain system calls ([`MountPlan::apply`]): the child of a
//! multithreaded grader may not allocate.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::policy::c_path;

/// The system folders every program sees, read-only (each a folder or, on a
/// merged-/usr system, a symbolic link into `/usr`).
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];
/// The devices a program may use. Not `tty`: a program has no terminal (it
/// runs in a session of its own), and the grader's is not its business.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];
/// Bounds on the private temporary folders, which live in memory.
const TMP_OPTIONS: &CStr = c"mode=1777,size=64m,nr_inodes=16k";
/// A working folder's bounds (its owner is added to them).
const HOME_OPTIONS: &str = "mode=0700,size=64m,nr_inodes=16k";
const SHM_OPTIONS: &CStr = c"mode=1777,size=16m,nr_inodes=1k";
const RUN_OPTIONS: &CStr = c"mode=0755,size=1m,nr_inodes=1k";
/// The root holds only folders to mount on (its owner writes them before
/// the program starts; it is read-only after).
const ROOT_OPTIONS: &CStr = c"mode=0755,size=1m,nr_inodes=4k";
const DEV_OPTIONS: &CStr = c"mode=0755,size=64k,nr_inodes=64";

// Mount attributes for mount_setattr(2), from <linux/mount.h>.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A step of the plan failed; errno says why (the child reports it).
#[derive(Debug)]
pub struct MountFailed;

/// The folders one program sees besides the system's.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Seen read-only: its staged executables.
    pub read_only: Vec<PathBuf>,
    /// Seen writable: in the containment tests, the folder attacks report
    /// into; a build's target folder.
    pub writable: Vec<PathBuf>,
    /// Seen writable but held in memory, with the uid and gid that own it:
    /// its working folder, a tmpfs of [`HOME_OPTIONS`]. What the program
    /// writes there counts against its memory limit, is bounded, and never
    /// reaches the machine's disk (which a program filling it with files of
    /// the largest size allowed would fill, and with it the grader's).
    pub in_memory: Vec<(PathBuf, Option<(u32, u32)>)>,
    /// Covered by an empty tmpfs if they sit inside a visible folder.
    pub hidden: Vec<PathBuf>,
}

#[derive(Debug)]
enum Step {
    Dir(CString),
    File(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Tmpfs {
        at: CString,
        options: CString,
    },
    /// A bind mount, with mount attributes set on it and below it.
    Bind {
        from: CString,
        at: CString,
        attributes: u64,
    },
    Proc(CString),
    /// Best effort: a sysfs of the program's network namespace.
    Sysfs(CString),
    /// An empty read-only tmpfs over a folder that must not be seen.
    Cover(CString),
}

/// What the child mounts, in order, prepared before the clone.
#[derive(Debug)]
pub struct MountPlan {
    root: CString,
    steps: Vec<Step>,
}

impl MountPlan {
    /// The plan for a program seeing `view`, built on the empty folder
    /// `root`.
    pub fn new(root: &Path, view: &View) -> io::Result<MountPlan> {
        let mut plan = MountPlan {
            root: c_path(root.as_os_str())?,
            steps: Vec::new(),
        };
        let inside = |path: &Path| -> io::Result<CString> {
            let mut bytes = root.as_os_str().as_bytes().to_vec();
            bytes.extend_from_slice(path.as_os_str().as_bytes());
            CString::new(bytes).map_err(|_| io::Error::other("a path with a NUL byte"))
        };
        let system_attributes = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        for folder in SYSTEM.iter().map(Path::new) {
            let Ok(meta) = fs::symlink_metadata(folder) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                plan.steps.push(Step::Symlink {
                    target: c_path(fs::read_link(folder)?.as_os_str())?,
                    link: inside(folder)?,
                });
            } else if meta.is_dir() {
                plan.steps.push(Step::Dir(inside(folder)?));
                plan.steps.push(Step::Bind {
                    from: c_path(folder.as_os_str())?,
                    at: inside(folder)?,
                    attributes: system_attributes,
                });
            }
        }
        let dev = Path::new("/dev");
        plan.steps.push(Step::Dir(inside(dev)?));
        plan.steps.push(Step::Tmpfs {
            at: inside(dev)?,
            options: DEV_OPTIONS.to_owned(),
        });
        for device in DEVICES {
            let path = dev.join(device);
            if fs::metadata(&path).is_ok() {
                plan.steps.push(Step::File(inside(&path)?));
                plan.steps.push(Step::Bind {
                    from: c_path(path.as_os_str())?,
                    at: inside(&path)?,
                    attributes: MOUNT_ATTR_NOSUID,
                });
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            plan.steps.push(Step::Symlink {
                target: c_path(target.as_ref())?,
                link: inside(&dev.join(name))?,
            });
        }
        for (folder, options) in [
            ("/dev/shm", SHM_OPTIONS),
            ("/tmp", TMP_OPTIONS),
            ("/run", RUN_OPTIONS),
        ] {
            plan.steps.push(Step::Dir(inside(Path::new(folder))?));
            plan.steps.push(Step::Tmpfs {
                at: inside(Path::new(folder))?,
                options: options.to_owned(),
            });
        }
        plan.steps.push(Step::Dir(inside(Path::new("/var"))?));
        plan.steps.push(Step::Symlink {
            target: c"/tmp".to_owned(),
            link: inside(Path::new("/var/tmp"))?,
        });
        plan.steps.push(Step::Dir(inside(Path::new("/proc"))?));
        plan.steps.push(Step::Proc(inside(Path::new("/proc"))?));
        plan.steps.push(Step::Dir(inside(Path::new("/sys"))?));
        plan.steps.push(Step::Sysfs(inside(Path::new("/sys"))?));
        for (folder, owner) in &view.in_memory {
            let folder = folder.canonicalize()?;
            for ancestor in down_to(&folder) {
                plan.steps.push(Step::Dir(inside(ancestor)?));
            }
            let owner = owner.map_or(String::new(), |(uid, gid)| format!(",uid={uid},gid={gid}"));
            plan.steps.push(Step::Tmpfs {
                at: inside(&folder)?,
                options: c_path(format!("{HOME_OPTIONS}{owner}").as_ref())?,
            });
        }
        let folders = view
            .read_only
            .iter()
            .map(|folder| {
                (
                    folder,
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                )
            })
            .chain(
                view.writable
                    .iter()
                    .map(|folder| (folder, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)),
            );
        for (folder, attributes) in folders {
            let folder = folder.canonicalize()?;
            let read_only = attributes & MOUNT_ATTR_RDONLY != 0;
            if read_only && SYSTEM.iter().any(|system| folder.starts_with(system)) {
                continue; // Seen already.
            }
            for ancestor in down_to(&folder) {
                plan.steps.push(Step::Dir(inside(ancestor)?));
            }
            plan.steps.push(Step::Bind {
                from: c_path(folder.as_os_str())?,
                at: inside(&folder)?,
                attributes,
            });
        }
        let visible: Vec<PathBuf> = SYSTEM
            .iter()
            .map(PathBuf::from)
            .chain(view.read_only.iter().chain(&view.writable).cloned())
            .chain(view.in_memory.iter().map(|(folder, _)| folder.clone()))
            .collect();
        for folder in &view.hidden {
            let Ok(folder) = folder.canonicalize() else {
                continue;
            };
            if visible.iter().any(|shown| folder.starts_with(shown)) {
                plan.steps.push(Step::Cover(inside(&folder)?));
            }
        }
        Ok(plan)
    }

    /// Builds the root and moves into it. In the child, in its new mount
    /// namespace, before the program starts; `Err` leaves the reason in
    /// errno.
    ///
    /// # Safety
    ///
    /// Only in the child of [`super::child::raw_clone`] made with
    /// `CLONE_NEWNS`: plain system calls on prepared strings.
    pub unsafe fn apply(&self) -> Result<(), MountFailed> {
        // SAFETY: mount(2), mkdir(2), symlink(2), open(2), pivot_root(2) and
        // umount2(2) with prepared, NUL-terminated strings, in a mount
        // namespace that only this process and its children use.
        unsafe {
            // Nothing we mount may propagate back to the machine's namespace.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            tmpfs(&self.root, ROOT_OPTIONS)?;
            for step in &self.steps {
                self.apply_step(step)?;
            }
            check(libc::chdir(self.root.as_ptr()))?;
            // Stack the old root under the new one, then detach it: the
            // program cannot reach the machine's filesystem by any path.
            check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as i32)?;
            check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
            check(libc::chdir(c"/".as_ptr()))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                std::ptr::null(),
            ))
        }
    }

    unsafe fn apply_step(&self, step: &Step) -> Result<(), MountFailed> {
        // SAFETY: as in `apply`.
        unsafe {
            match step {
                Step::Dir(path) => {
                    if libc::mkdir(path.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
                        return Err(MountFailed);
                    }
                    Ok(())
                }
                Step::File(path) => {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd < 0 {
                        return Err(MountFailed);
                    }
                    libc::close(fd);
                    Ok(())
                }
                Step::Symlink { target, link } => {
                    check(libc::symlink(target.as_ptr(), link.as_ptr()))
                }
                Step::Tmpfs { at, options } => tmpfs(at, options),
                Step::Bind {
                    from,
                    at,
                    attributes,
                } => {
                    check(libc::mount(
                        from.as_ptr(),
                        at.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                    set_attributes(at, *attributes)
                }
                Step::Proc(at) => check(libc::mount(
                    c"proc".as_ptr(),
                    at.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    // The program sees its own processes only, not its init
                    // (a clone of the grader that never execs).
                    c"hidepid=2".as_ptr().cast(),
                )),
                Step::Sysfs(at) => {
                    // Allowed to root only (it shows the network namespace
                    // the program is in); elsewhere /sys stays empty.
                    libc::mount(
                        c"sysfs".as_ptr(),
                        at.as_ptr(),
                        c"sysfs".as_ptr(),
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    );
                    Ok(())
                }
                Step::Cover(at) => {
                    tmpfs(at, c"mode=0555,size=4k,nr_inodes=8")?;
                    set_attributes(at, MOUNT_ATTR_RDONLY)
                }
            }
        }
    }
}

/// `folder` and the folders above it, from the root's child down: those to
/// make in the new root before something can be mounted at `folder`.
fn down_to(folder: &Path) -> impl Iterator<Item = &Path> {
    let mut ancestors: Vec<&Path> = folder.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().skip(1)
}

unsafe fn tmpfs(at: &CStr, options: &CStr) -> Result<(), MountFailed> {
    // SAFETY: mount(2) with prepared strings.
    check(unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            at.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    })
}

/// Sets mount attributes on the mount at `at` and every mount below it
/// (mount_setattr(2), Linux 5.12); on older kernels, on `at` alone.
unsafe fn set_attributes(at: &CStr, attributes: u64) -> Result<(), MountFailed> {
    let attr = MountAttr {
        attr_set: attributes,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads the struct we own; mount(2) with
    // prepared strings.
    unsafe {
        let done = libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            at.as_ptr(),
            AT_RECURSIVE,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        );
        if done == 0 {
            return Ok(());
        }
        let mut flags = libc::MS_REMOUNT | libc::MS_BIND;
        if attributes & MOUNT_ATTR_RDONLY != 0 {
            flags |= libc::MS_RDONLY;
        }
        if attributes & MOUNT_ATTR_NOSUID != 0 {
            flags |= libc::MS_NOSUID;
        }
        if attributes & MOUNT_ATTR_NODEV != 0 {
            flags |= libc::MS_NODEV;
        }
        check(libc::mount(
            std::ptr::null(),
            at.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ))
    }
}

fn check(result: i32) -> Result<(), MountFailed> {
    if result == 0 {
        Ok(())
    } else {
        Err(MountFailed)
    }
}

fn errno() -> i32 {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The empty folder views are built on: one per machine for root (in a
/// root-only place), one per user otherwise. Each program mounts over it in
/// a namespace of its own, so it stays empty here and is shared safely.
pub fn view_root(root: bool) -> io::Result<PathBuf> {
    let (folder, owner) = if root {
        (PathBuf::from("/run/socket-labs/view"), 0)
    } else {
        let uid = rustix::process::getuid().as_raw();
        (
            std::env::temp_dir().join(format!("socket-labs-view-{uid}")),
            uid,
        )
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&folder)?;
    let meta = fs::symlink_metadata(&folder)?;
    if !meta.is_dir() || meta.uid() != owner || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "{} is not a folder of ours that only we may write",
            folder.display()
        )));
    }
    Ok(folder)
}
