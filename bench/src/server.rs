//! Starting a server under test the way the grader does: port 0, readiness
//! and address from its `Listening on ADDR` line, its log drained so it never
//! blocks on a full pipe, killed when dropped.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// How long a server may take to print `Listening on`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A program to start: `PROGRAM ARGS… 127.0.0.1 0`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The executable (or interpreter).
    pub program: PathBuf,
    /// Arguments before `127.0.0.1 0` (a script's path).
    pub args: Vec<String>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it printed.
    pub addr: SocketAddr,
    drain: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `launch` on 127.0.0.1 port 0 and waits for its `Listening on` line.
    pub fn start(launch: &Launch) -> Result<Self> {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .args(["127.0.0.1", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Errors about connections the bench dropped at the end of a cell
            // are noise here; a server that dies is reported by the table.
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only sets a flag of the child.
        unsafe {
            command.pre_exec(|| {
                // If the bench dies, its servers die with it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, address) = mpsc::channel();
        let drain = thread::spawn(move || drain(stdout, ready));
        let addr = match address.recv_timeout(READY_WITHIN) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} printed no `Listening on ADDR` line within {} s",
                    launch.program.display(),
                    READY_WITHIN.as_secs()
                );
            }
        };
        Ok(Self {
            child,
            addr,
            drain: Some(drain),
        })
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

/// Reads lines until `Listening on ADDR`, sends ADDR, then reads and drops
/// everything else until end of stream.
fn drain(stdout: impl Read, ready: mpsc::Sender<SocketAddr>) {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(addr) = line.trim().strip_prefix("Listening on ") {
            if let Ok(addr) = addr.parse() {
                let _ = ready.send(addr);
                break;
            }
        }
    }
    let _ = io::copy(&mut reader, &mut io::sink());
}

/// CPU time (user + system) `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?
        .1
        .split_whitespace()
        .collect();
    let ticks = |index: usize| -> Result<u64> {
        Ok(fields
            .get(index)
            .ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?
            .parse()?)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
}

/// Raises the soft limit on open files to the hard limit, so that 1000
/// connections fit (servers started afterwards inherit it). Returns the limit.
pub fn raise_open_files_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}
