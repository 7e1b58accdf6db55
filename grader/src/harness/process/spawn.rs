//! Starting a graded program as an untrusted guest: everything the child
//! needs is prepared first (its command line, environment, descriptors,
//! cgroups and filesystem: a [`ChildPlan`]), then one clone, then the
//! captures of its output.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ChildStdin;
use std::sync::Arc;
use std::time::Instant;

use super::super::capture::{Capture, LineRecorder};
use super::super::conversation::{self, Kind, Party};
use super::super::launch::Launch;
use super::super::limits;
use super::super::sandbox::child::{
    ChildPlan, InitStack, UserNamespacePlan, child_main, clone_init, init_child, null_terminated,
    pipe, raw_clone, read_exec_error,
};
use super::super::sandbox::mounts::{MountPlan, View};
use super::super::sandbox::policy::c_path;
use super::super::sandbox::{self, Grant, Policy, ProgramCgroups, folders};
use super::{Process, Registry, reap};
use crate::sync::Unpoison;
use rustix::process::{Pid, PidfdFlags};

impl Process {
    /// Starts `launch` as an untrusted guest (see [`sandbox`]): its own
    /// process group, namespaces, filesystem, uid, cgroups and environment,
    /// as far as the machine allows.
    ///
    /// The program lives no longer than the thread that calls this: its
    /// parent-death signal follows that thread, not the grader's process
    /// (a check's programs end with the check's thread).
    pub fn spawn(launch: &Launch, registry: Arc<Registry>) -> io::Result<Self> {
        let policy = Policy::get();
        let token = format!("{:016x}", fastrand::u64(..));
        let grant = launch.grant.clone().unwrap_or_else(|| {
            // Started by the grader's own code (a test's reference server,
            // say): the program is trusted, and sees its own folder.
            let mut grant = Grant::outside_a_grade();
            grant
                .read_only
                .extend(launch.program.parent().map(PathBuf::from));
            grant
        });
        let home = folders::guest_home(grant.guest)?;
        let mut extra = vec![(
            OsString::from(limits::TOKEN_VARIABLE),
            OsString::from(&token),
        )];
        extra.extend(launch.env.iter().cloned());
        let environment: Vec<CString> = sandbox::guest_environment(&home, &extra)
            .into_iter()
            .map(|(key, value)| {
                let mut entry = key;
                entry.push("=");
                entry.push(value);
                c_path(&entry)
            })
            .collect::<io::Result<_>>()?;
        let program = c_path(launch.program.as_os_str())?;
        let arguments: Vec<CString> = std::iter::once(Ok(program.clone()))
            .chain(launch.args.iter().map(|arg| c_path(arg)))
            .collect::<io::Result<_>>()?;
        let cwd = c_path(launch.current_dir.as_deref().unwrap_or(&home).as_os_str())?;
        let argv = null_terminated(&arguments);
        let envp = null_terminated(&environment);

        let (stdin_read, stdin_write) = if launch.piped_stdin {
            let (read, write) = pipe()?;
            (read, Some(write))
        } else {
            (File::open("/dev/null")?.into(), None)
        };
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let (exec_error_read, mut exec_error_write) = pipe()?;
        let (status_read, status_write) = pipe()?;
        let answers = if launch.answers {
            // The child dups the answers to 3 just before exec: the
            // descriptor it reports exec errors on must not be that one.
            if exec_error_write.as_raw_fd() == sandbox::child::ANSWERS_FD {
                exec_error_write = exec_error_write.try_clone()?;
            }
            Some(pipe()?)
        } else {
            None
        };
        let cgroups = ProgramCgroups::create(grant.cgroups.as_ref().unwrap_or(&policy.cgroups));
        let join_cgroups = cgroups.join_fds();
        let user_namespace = policy.user_namespace.then(UserNamespacePlan::new);
        let mounts = match &policy.view_root {
            Some(root) if policy.filesystem_view => {
                let mut hidden = grant.hidden.clone();
                if !grant.read_only.contains(&policy.protected) {
                    hidden.push(policy.protected.clone());
                }
                let view = View {
                    read_only: grant.read_only.clone(),
                    writable: grant.writable.clone(),
                    in_memory: vec![(home.clone(), grant.guest)],
                    hidden,
                };
                Some(MountPlan::new(root, &view).inspect_err(|_| folders::remove_tree(&home))?)
            }
            _ => None,
        };
        // An init that shares our memory rather than copying it (see
        // `clone_init`); not with a user namespace, whose init makes the
        // memory it is in dumpable to write its uid maps.
        let init_stack = if policy.pid_namespace && !policy.user_namespace {
            Some(InitStack::new()?)
        } else {
            None
        };
        let plan = ChildPlan {
            program: &program,
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: &cwd,
            stdin: stdin_read.as_raw_fd(),
            stdout: stdout_write.as_raw_fd(),
            stderr: stderr_write.as_raw_fd(),
            answers: answers.as_ref().map(|(_, write)| write.as_raw_fd()),
            exec_error: exec_error_write.as_raw_fd(),
            status: status_write.as_raw_fd(),
            join_cgroups: &join_cgroups,
            guest: grant.guest,
            fail_socket_calls: launch.fail_socket_calls,
            open_files: launch.open_files,
            pid_namespace: policy.pid_namespace,
            user_namespace: user_namespace.as_ref(),
            program_stack: init_stack.as_ref().map(InitStack::program_stack),
            mounts: mounts.as_ref(),
        };
        let mut flags = 0;
        if policy.pid_namespace {
            flags |=
                libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
        }
        if policy.user_namespace {
            flags |= libc::CLONE_NEWUSER;
        }
        if launch.own_network {
            flags |= libc::CLONE_NEWNET;
        }
        // The answers' write end is the child's; its read end is captured
        // once the program has started.
        let (answers_read, answers_write) = answers.unzip();
        // Taken before the clone: the program may run (and finish a timed
        // wait) while the grader is still setting up its capture threads.
        let started = Instant::now();
        let pid = {
            // Shared: many checks spawn at once; the orphan sweep waits.
            let _spawning = limits::spawn_lock().read().unpoison();
            let pid = match &init_stack {
                // SAFETY: the plan lives until this function returns, and
                // `read_exec_error` below returns once the init is done
                // with it; until then this thread writes no errno (see
                // below); the stack is unmapped only once the init is
                // reaped.
                Some(stack) => unsafe { clone_init(flags, &plan, stack) },
                None => {
                    // SAFETY: the child runs `child_main`, which makes only
                    // async-signal-safe system calls and ends in exec or exit.
                    let pid = unsafe { raw_clone(flags) };
                    if pid == 0 {
                        // SAFETY: we are the child; see above.
                        unsafe { child_main(&plan) }
                    }
                    pid
                }
            };
            if pid < 0 {
                let err = io::Error::last_os_error();
                if let Some(stack) = init_stack {
                    stack.unmap(); // No child ever ran on it.
                }
                folders::remove_tree(&home);
                return Err(err);
            }
            // Until the init is done with the plan, it shares this thread's
            // errno, and reads it: this thread only closes the child's ends
            // and waits with rustix's read, neither of which writes errno.
            drop((
                stdin_read,
                stdout_write,
                stderr_write,
                exec_error_write,
                status_write,
                answers_write,
            ));
            if let Some(errno) = read_exec_error(exec_error_read) {
                reap(pid); // Our own child, which is exiting.
                if let Some(stack) = init_stack {
                    stack.unmap();
                }
                folders::remove_tree(&home);
                return Err(io::Error::from_raw_os_error(errno));
            }
            limits::leader_started(pid as u32);
            pid
        };
        let answers = answers_read.map(|read| {
            let capture = Capture::new(launch.output_cap);
            capture.drain_in_background(File::from(read));
            capture
        });
        let program_pid = if policy.pid_namespace {
            init_child(pid).unwrap_or(pid as u32)
        } else {
            pid as u32
        };
        registry.add(pid);
        let name = launch
            .program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        limits::watch_memory(program_pid, pid, name, Arc::clone(&registry));
        let party = role_of(launch);
        let conversation = conversation::current();
        if let Some(conversation) = &conversation {
            conversation.program(Kind::Start, party, &launch.command_line(), started);
            conversation.add_guest(program_pid, party);
        }
        let lines = |kind| {
            let conversation = Arc::clone(conversation.as_ref()?);
            Some(LineRecorder::new(conversation, party, kind))
        };
        let stdout = Capture::new(launch.output_cap);
        let stderr = Capture::new(launch.output_cap);
        stdout.drain_recording(File::from(stdout_read), lines(Kind::Stdout));
        stderr.drain_recording(File::from(stderr_read), lines(Kind::Stderr));
        Ok(Self {
            pidfd: open_pidfd(pid),
            pid,
            program_pid,
            status_report: policy.pid_namespace.then(|| File::from(status_read)),
            exit: None,
            reaped: false,
            stdin: stdin_write.map(ChildStdin::from),
            stdout,
            stderr,
            answers,
            command_line: launch.command_line(),
            registry,
            token,
            grace: launch.grace,
            started,
            cgroups,
            home,
            pid_namespace: policy.pid_namespace,
            party,
            conversation,
            exit_recorded: false,
            init_stack,
        })
    }
}

/// The program's part in a conversation, from its name: the labs' servers
/// are named `…-server`; everything else graded is a client.
fn role_of(launch: &Launch) -> Party {
    let program = launch.shown_as.as_ref().unwrap_or(&launch.program);
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    if name.contains("server") {
        Party::Server
    } else {
        Party::Client
    }
}

fn open_pidfd(pid: i32) -> Option<OwnedFd> {
    rustix::process::pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}
