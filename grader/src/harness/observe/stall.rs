//! Failing fast: telling, while the grader waits, that a graded program will
//! never send what the grader waits for.
//!
//! A check waits for bytes, a line, a datagram, a connection or an exit up
//! to its time limit, which is set for slow machines. A program that has
//! stalled would make every student wait out that limit, so waits also
//! watch the check's programs and give up early, but only on evidence a slow
//! machine cannot fake: every process of every program has exited, or every
//! thread of them sleeps (state `S`, not runnable, not blocked writing its
//! output to the grader) while their CPU time, their I/O counters and the
//! queues of their sockets stay exactly the same for a whole
//! [`window`](Conversation::stall_window) (one second at `--time-scale 1`).
//! A program that is merely slow is runnable, or its counters move.
//!
//! A program can also spin: runnable, burning CPU, but making no read or
//! write of any kind (`syscr` and `syscw` of `/proc/PID/io` stay the same)
//! and holding the same memory, while nothing happens in the conversation. Once it has used
//! [`spin_threshold`] of CPU time that way (half a second at
//! `--time-scale 1`, scaled like every limit), it never will: the wait gives
//! up, saying it spins. The verdict rests on CPU time, not on the clock: a
//! loaded machine slows a spinning program down, and it then takes longer to
//! be told, never less.
//!
//! Checks that test timeouts expect a program to sleep on a timer: they wait
//! with [`patient`] in force, and only their time limit ends the wait.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::conversation::{self, Conversation, Party};
use crate::harness::observe::procfs;

/// How often a waiting loop looks at the programs.
pub const SLICE: Duration = Duration::from_millis(100);

/// A program's observable state: equal samples over the window mean that
/// nothing happened.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sample {
    /// Every process of it: pid, CPU ticks, syscalls of reading and writing.
    processes: Vec<(u32, u64, u64, u64)>,
    /// Its sockets' queues and states (`/proc/net/{tcp,udp}` rows, minus the
    /// timers that change by themselves).
    sockets: BTreeSet<procfs::Socket>,
    /// How many events the check's conversation had recorded: bytes moving
    /// either way, output, exits.
    activity: usize,
}

/// What stays the same while a program spins: its processes' reads and
/// writes and their resident memory (a program filling memory is doing
/// something, and the memory limit ends it), and the conversation's
/// activity (its CPU time is what grows).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Quiet {
    /// Every process: pid, syscalls of reading and writing, resident KiB.
    processes: Vec<(u32, u64, u64, u64)>,
    activity: usize,
}

/// Since when the programs have been quiet, and their CPU time then, per
/// party.
#[derive(Debug)]
struct Spin {
    quiet: Quiet,
    since: Instant,
    cpu: Vec<(Party, u64)>,
}

/// Watches the current check's programs during one wait.
#[derive(Debug)]
pub struct Watch {
    conversation: Option<Arc<Conversation>>,
    /// The last sample and since when it has been the same.
    steady: Option<(Sample, Instant)>,
    /// Since when nothing read or wrote, and the CPU time then.
    spin: Option<Spin>,
    next_look: Instant,
    /// Whether the conversation's events count as the programs' activity
    /// (see [`Watch::programs_only`]).
    counts_conversation: bool,
}

/// How much CPU time a program may use without a read or a write while
/// the grader waits, before it counts as spinning: half the stall window,
/// so scaled by `--time-scale` (0.5 s at 1).
pub fn spin_threshold(conversation: &Conversation) -> Duration {
    conversation.stall_window() / 2
}

impl Watch {
    /// A watch over the programs of the check this thread works for.
    pub fn new() -> Self {
        // Without `/proc` nothing can be told: such a watch never gives up.
        let proc_readable = std::path::Path::new("/proc/self/task").exists();
        Self {
            conversation: conversation::current().filter(|_| proc_readable),
            steady: None,
            spin: None,
            // A wait that ends within a slice never looks at `/proc`: the
            // many short waits of a passing check cost nothing.
            next_look: Instant::now() + SLICE,
            counts_conversation: true,
        }
    }

    /// A watch that judges the programs by their own processes and sockets
    /// only, not by the conversation: for a loop that asks a program again
    /// and again (a UDP probe every few hundred milliseconds), where the
    /// grader's own datagrams would look like progress. A program that
    /// receives one reads it (its read count moves), and one that answers
    /// writes.
    pub fn programs_only(mut self) -> Self {
        self.counts_conversation = false;
        self
    }

    /// Something moved that the waiting loop saw itself (bytes arrived):
    /// the program is alive, start over.
    pub fn progress(&mut self) {
        self.steady = None;
        self.spin = None;
    }

    /// Why waiting on is pointless, if it is: every program has exited, or
    /// all have slept without any change for the window. Cheap to call
    /// often: it looks at `/proc` at most every [`SLICE`].
    pub fn stalled(&mut self) -> Option<String> {
        let conversation = Arc::clone(self.conversation.as_ref()?);
        let now = Instant::now();
        if conversation.is_patient() {
            // Time spent patiently does not count towards a stall.
            self.steady = None;
            self.spin = None;
            return None;
        }
        if now < self.next_look {
            return None;
        }
        self.next_look = now + SLICE;
        let guests = conversation.guests();
        if guests.is_empty() {
            return None;
        }
        let mut sample = Sample {
            processes: Vec::new(),
            sockets: BTreeSet::new(),
            activity: if self.counts_conversation {
                conversation.activity()
            } else {
                0
            },
        };
        let mut alive = Vec::new();
        let mut busy = false;
        let mut cpu = Vec::new();
        for (pid, party) in &guests {
            let before = sample.processes.len();
            let observed = observe(*pid, &mut sample);
            let used = sample.processes[before..]
                .iter()
                .map(|(_, cpu, _, _)| cpu)
                .sum::<u64>();
            cpu.push((*party, used));
            match observed {
                Observed::Gone => {}
                Observed::Busy => busy = true,
                Observed::Asleep => alive.push(*party),
            }
        }
        sample.processes.sort_unstable();
        if let Some(reason) = self.spins(&conversation, &sample, cpu, now) {
            conversation.note(format!("stops waiting: {reason}"));
            return Some(reason);
        }
        if busy {
            self.steady = None;
            return None;
        }
        match &self.steady {
            Some((before, since)) if *before == sample => {
                let window = conversation.stall_window();
                // An exit shows at once in what the grader waits on (the
                // connection closes, the output ends, the exit is seen): a
                // quarter of the window lets that happen first.
                if alive.is_empty() && now.duration_since(*since) >= window / 4 {
                    let who = names(guests.iter().map(|(_, party)| *party));
                    let reason = format!("the {who} has exited");
                    conversation.note(format!("stops waiting: {reason}"));
                    return Some(reason);
                }
                if now.duration_since(*since) < window {
                    return None;
                }
                let who = names(alive.into_iter());
                let reason = format!(
                    "the {who} has been asleep for {:.1} s, doing nothing",
                    window.as_secs_f64()
                );
                conversation.note(format!("stops waiting: {reason}"));
                Some(reason)
            }
            _ => {
                self.steady = Some((sample, now));
                None
            }
        }
    }
}

impl Watch {
    /// Whether a program has spun: used [`spin_threshold`] of CPU time since
    /// the last read or write of any program of the check, with nothing
    /// recorded meanwhile. Says which, and how much in how long.
    fn spins(
        &mut self,
        conversation: &Conversation,
        sample: &Sample,
        cpu: Vec<(Party, u64)>,
        now: Instant,
    ) -> Option<String> {
        let mut processes: Vec<(u32, u64, u64, u64)> = sample
            .processes
            .iter()
            .map(|(pid, _, reads, writes)| (*pid, *reads, *writes, resident_kib(*pid)))
            .collect();
        processes.sort_unstable();
        let quiet = Quiet {
            processes,
            activity: sample.activity,
        };
        let spin = match &self.spin {
            Some(spin) if spin.quiet == quiet => spin,
            _ => {
                self.spin = Some(Spin {
                    quiet,
                    since: now,
                    cpu,
                });
                return None;
            }
        };
        let threshold = spin_threshold(conversation).as_micros() as u64;
        let (party, used) = cpu
            .iter()
            .filter_map(|(party, now)| {
                let then = spin
                    .cpu
                    .iter()
                    .find(|(earlier, _)| earlier == party)
                    .map_or(0, |(_, cpu)| *cpu);
                Some((*party, now.checked_sub(then)?))
            })
            .max_by_key(|(_, used)| *used)?;
        (used >= threshold).then(|| {
            format!(
                "the {} spins: it used {:.1} s of CPU in {:.1} s without reading or writing anything",
                party.name(),
                used as f64 / 1e6,
                now.duration_since(spin.since).as_secs_f64()
            )
        })
    }
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

/// "server", "client", or "server and client".
fn names(parties: impl Iterator<Item = Party>) -> String {
    let mut names: Vec<&str> = parties.map(Party::name).collect();
    names.sort_unstable();
    names.dedup();
    names.join(" and ")
}

enum Observed {
    /// Exited (or a zombie): it will do nothing more.
    Gone,
    /// Some thread is runnable, stopped, in the disk, or writing output to
    /// the grader: not a stall.
    Busy,
    /// Every thread sleeps; its counters went into the sample.
    Asleep,
}

/// Looks at `pid` and every process it started.
fn observe(pid: u32, sample: &mut Sample) -> Observed {
    let mut pending = vec![pid];
    let mut any = false;
    let mut busy = false;
    while let Some(pid) = pending.pop() {
        let Ok(threads) = procfs::thread_stats(pid) else {
            continue;
        };
        let mut sleeping = 0;
        for (tid, stat) in threads {
            match stat.state {
                _ if stat.ended() => continue,
                'S' => {
                    let wchan = procfs::thread_wchan(pid, tid).unwrap_or_default();
                    if wchan.contains("pipe") {
                        busy = true;
                    }
                }
                _ => busy = true,
            }
            sleeping += 1;
            pending.extend(procfs::thread_children(pid, tid).unwrap_or_default());
        }
        if sleeping == 0 {
            continue;
        }
        any = true;
        // In microseconds: the spin threshold is.
        let cpu = procfs::stat(pid).map_or(0, |stat| stat.cpu_time().as_micros() as u64);
        let (reads, writes) = procfs::io_calls(pid).unwrap_or((0, 0));
        sample.processes.push((pid, cpu, reads, writes));
        if !busy {
            // Only a sleeping program's queues tell a stall.
            sample
                .sockets
                .extend(procfs::sockets_held(pid, procfs::Table::ALL));
        }
    }
    match (any, busy) {
        (_, true) => Observed::Busy,
        (true, false) => Observed::Asleep,
        (false, false) => Observed::Gone,
    }
}

/// The resident memory of `pid` in KiB, 0 when unknown.
fn resident_kib(pid: u32) -> u64 {
    procfs::status(pid)
        .ok()
        .and_then(|status| status.resident_kib)
        .unwrap_or(0)
}

/// How an [`until`] wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// What the check waited for came.
    Came,
    /// The check's programs stalled or exited first: it never will. Why.
    Stalled(String),
    /// The deadline passed.
    TimedOut,
}

/// Looks every few milliseconds until `done()` holds or `deadline` passes,
/// as [`procfs::watch_until`] does, but also gives up once the check's
/// programs have stalled or exited: for waits on what only a program can
/// bring about (it accepts, it closes a socket), not on what the kernel does
/// by itself (an acknowledgement, a timer).
pub fn until(deadline: Instant, mut done: impl FnMut() -> bool) -> Waited {
    let mut watch = Watch::new();
    loop {
        if done() {
            return Waited::Came;
        }
        if Instant::now() >= deadline {
            return Waited::TimedOut;
        }
        if let Some(why) = watch.stalled() {
            // What the last look at `/proc` saw may have come meanwhile.
            return if done() {
                Waited::Came
            } else {
                Waited::Stalled(why)
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `ready()` holds and the program `pid` sleeps waiting for
/// readiness (in `poll`, `epoll_wait` or `select`): the moment to stop it so
/// that its continue interrupts that wait. Gives up at `until`, or once the
/// check's programs have exited or stalled (they will not get there); the
/// caller then goes on anyway. Returns whether the moment came.
pub fn until_asleep_in_poll(pid: u32, until: Instant, mut ready: impl FnMut() -> bool) -> bool {
    let mut watch = Watch::new();
    loop {
        if ready() && procfs::waits_for_readiness(pid).unwrap_or(false) {
            return true;
        }
        if Instant::now() >= until || watch.stalled().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether a program of the current check is asleep receiving on its end
/// of a TCP connection, the end at `local` connected to `remote`: the
/// process holding that socket has every thread asleep, one of them in a
/// receive (`read`, `recv`, …) on that socket's descriptor and any other in
/// a `futex` wait without a timeout. Nothing but the connection (or a
/// signal) wakes such a program: it has chosen to wait for the peer, and
/// will not write or close that socket before it hears from it. `false`
/// when anything else holds, the program waits in `poll` or `select` (whose
/// descriptors `/proc` does not show), or `/proc` does not say: callers
/// then wait as they would without it.
pub fn receiving_on(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> bool {
    let Some(conversation) = conversation::current() else {
        return false;
    };
    let Some(socket) = procfs::tcp_connection(local, remote).ok().flatten() else {
        return false;
    };
    let mut pending: Vec<u32> = conversation.guests().iter().map(|(pid, _)| *pid).collect();
    while let Some(pid) = pending.pop() {
        let Ok(threads) = procfs::thread_stats(pid) else {
            continue;
        };
        let held = procfs::socket_fds(pid).unwrap_or_default();
        let Some(&(fd, _)) = held.iter().find(|(_, inode)| *inode == socket.inode) else {
            for (tid, _) in &threads {
                pending.extend(procfs::thread_children(pid, *tid).unwrap_or_default());
            }
            continue;
        };
        let mut receiving = false;
        for (tid, stat) in threads {
            if stat.ended() {
                continue;
            }
            if stat.state != 'S' {
                return false;
            }
            match procfs::thread_blocked(pid, tid) {
                Some(blocked) if blocked.receives_on(fd) => receiving = true,
                Some(blocked) if blocked.untimed_futex() => {}
                _ => return false,
            }
        }
        return receiving;
    }
    false
}

/// While the returned guard lives, waits of this check do not give up early:
/// for checks where the program is meant to sleep on a timer (a timeout
/// the check measures).
pub fn patient() -> Patience {
    let conversation = conversation::current();
    if let Some(conversation) = &conversation {
        conversation.set_patient(true);
    }
    Patience { conversation }
}

/// Ends patience when dropped (see [`patient`]).
#[derive(Debug)]
pub struct Patience {
    conversation: Option<Arc<Conversation>>,
}

impl Drop for Patience {
    fn drop(&mut self) {
        if let Some(conversation) = &self.conversation {
            conversation.set_patient(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};
    use std::thread;

    use super::*;

    /// Watches `program` as the server of a fresh conversation with a short
    /// window, for up to `limit`; returns the verdict, if any.
    fn verdict(program: &Child, limit: Duration, patient_meanwhile: bool) -> Option<String> {
        let conversation = Conversation::new();
        conversation.scale_stall_window(0.3);
        let _entered = conversation::enter(Some(Arc::clone(&conversation)));
        let _patience = patient_meanwhile.then(patient);
        conversation.add_guest(program.id(), Party::Server);
        let mut watch = Watch::new();
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(why) = watch.stalled() {
                return Some(why);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn ended(mut program: Child) {
        let _ = program.kill();
        let _ = program.wait();
    }

    #[test]
    fn a_program_asleep_with_nothing_changing_has_stalled() {
        let sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let why = verdict(&sleeper, Duration::from_secs(20), false);
        ended(sleeper);
        assert!(why.is_some_and(|why| why.contains("asleep")));
    }

    #[test]
    fn a_busy_program_that_writes_never_stalls_nor_spins() {
        let busy = Command::new("sh")
            .args(["-c", "while :; do echo busy > /dev/null; done"])
            .spawn()
            .unwrap();
        let why = verdict(&busy, Duration::from_millis(1500), false);
        ended(busy);
        assert_eq!(why, None);
    }

    /// A loop with no system call: its CPU time grows, its reads and writes
    /// do not. The verdict comes once it has used the threshold of CPU time
    /// (0.15 s here, at a time scale of 0.3), however long that takes.
    #[test]
    fn a_program_that_burns_cpu_without_reading_or_writing_spins() {
        let spinner = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let started = Instant::now();
        let why = verdict(&spinner, Duration::from_secs(30), false);
        let cpu = crate::harness::observe::procfs::cpu_time(spinner.id()).unwrap();
        ended(spinner);
        let why = why.expect("a verdict");
        assert!(why.starts_with("the server spins: it used "), "{why}");
        assert!(
            why.ends_with("without reading or writing anything"),
            "{why}"
        );
        assert!(
            cpu >= Duration::from_millis(150),
            "{cpu:?} in {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn patience_waits_out_a_sleeping_program() {
        let sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let why = verdict(&sleeper, Duration::from_millis(1500), true);
        ended(sleeper);
        assert_eq!(why, None);
    }

    #[test]
    fn a_program_that_exited_is_seen_to_have_exited() {
        let mut quick = Command::new("true").spawn().unwrap();
        quick.wait().unwrap();
        let why = verdict(&quick, Duration::from_secs(20), false);
        assert!(why.is_some_and(|why| why.contains("exited")));
    }
}
