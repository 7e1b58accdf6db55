//! `socket-labs-bench`: requests per second and latency of the reference
//! servers at 1, 10, 100 and 1000 concurrent connections, next to two
//! baselines: an echo server written with tokio (what a Rust programmer would
//! pick) and a Python `selectors` echo server like the tutorials' (what the
//! course grew from).
//!
//! Run it through `cargo xtask bench servers`, which builds the reference
//! servers in release mode and passes them as `--server NAME=PATH`. Loopback
//! only; every measurement is bounded in time and in requests.

mod load;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

use load::{Config, Exchange, Stats, Workload};
use server::{Launch, Server};

/// Measure the reference servers and the baselines under load.
#[derive(Debug, Parser)]
#[command(name = "socket-labs-bench")]
struct Cli {
    /// A reference server: NAME=PATH, NAME one of echo-server,
    /// multiconn-server, app-server, client-list-server.
    #[arg(long = "server", value_name = "NAME=PATH", value_parser = parse_server)]
    servers: Vec<(String, PathBuf)>,
    /// Concurrent connections, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    conns: Vec<usize>,
    /// Seconds measured per cell (after the warmup).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 0.3)]
    warmup: f64,
    /// Stop a cell early after this many requests.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: usize,
    /// Measure only these servers (names as in the table).
    #[arg(long)]
    only: Vec<String>,
    /// The Python interpreter for the selectors baseline.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
}

fn parse_server(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=PATH"))?;
    Ok((name.to_owned(), PathBuf::from(path)))
}

/// A server the bench knows how to load.
#[derive(Debug)]
struct Target {
    name: &'static str,
    /// Where it comes from, for the note when it is absent.
    origin: &'static str,
    workload: Workload,
    /// Whether the 1000-connection goal applies (servers that serve clients
    /// at once; `echo-server` serves one after another by design).
    concurrent: bool,
}

const ECHO_ONCE: Exchange = Exchange {
    request: load::ping_message,
    half_close: true,
    check: |request, reply| {
        if reply == request {
            Ok(())
        } else {
            Err(format!(
                "the echo differs from the message ({} of {} bytes)",
                reply.len(),
                request.len()
            ))
        }
    },
};

/// Lab 4's wire format: 2-byte big-endian length of a JSON header, the
/// header, the content.
fn app_search(_slot: usize, _sequence: u64) -> Vec<u8> {
    let content = br#"{"action": "search", "value": "morpheus"}"#;
    let header = format!(
        r#"{{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", "content-length": {}}}"#,
        content.len()
    );
    let mut frame = u16::try_from(header.len())
        .expect("a short header")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(content);
    frame
}

const APP_SEARCH: Exchange = Exchange {
    request: app_search,
    // The protocol frames its request: the server answers without waiting
    // for the end of the stream, then closes.
    half_close: false,
    check: |_, reply| {
        let header_len = reply
            .get(..2)
            .map_or(0, |len| usize::from(u16::from_be_bytes([len[0], len[1]])));
        let found = reply
            .windows(b"Follow the white rabbit".len())
            .any(|window| window == b"Follow the white rabbit");
        if header_len > 0 && reply.len() > 2 + header_len && found {
            Ok(())
        } else {
            Err(format!(
                "not the answer to `search morpheus` ({} bytes)",
                reply.len()
            ))
        }
    },
};

/// Eight names, reused: the list (and so each reply) stays the same size
/// whatever the number of connections.
fn client_list_name(slot: usize, _sequence: u64) -> Vec<u8> {
    format!("bench-{}", slot % 8).into_bytes()
}

const CLIENT_LIST: Exchange = Exchange {
    request: client_list_name,
    half_close: true,
    check: |request, reply| {
        let mut quoted = b"\"".to_vec();
        quoted.extend_from_slice(request);
        quoted.push(b'"');
        let listed = reply.windows(quoted.len()).any(|window| window == quoted);
        if reply.first() == Some(&b'{') && listed {
            Ok(())
        } else {
            Err(format!(
                "the reply is not a list with our name ({} bytes)",
                reply.len()
            ))
        }
    },
};

const TARGETS: &[Target] = &[
    Target {
        name: "echo-server",
        origin: "lab 1, solutions/echo",
        workload: Workload::PerConnection(ECHO_ONCE),
        concurrent: false,
    },
    Target {
        name: "multiconn-server",
        origin: "lab 3, solutions/multiconn",
        workload: Workload::PingPong,
        concurrent: true,
    },
    Target {
        name: "app-server",
        origin: "lab 4, solutions/app",
        workload: Workload::PerConnection(APP_SEARCH),
        concurrent: true,
    },
    Target {
        name: "client-list-server",
        origin: "lab 6, solutions/client-list",
        workload: Workload::PerConnection(CLIENT_LIST),
        concurrent: true,
    },
    Target {
        name: "tokio-echo",
        origin: "the bench's tokio baseline",
        workload: Workload::PingPong,
        concurrent: true,
    },
    Target {
        name: "python-selectors",
        origin: "the bench's Python baseline",
        workload: Workload::PingPong,
        concurrent: true,
    },
];

/// One measured cell of the table.
#[derive(Debug)]
struct Cell {
    stats: Stats,
    /// Share of one core the server used while loaded.
    server_cpu: f64,
    /// CPU time the server spent per completed request, in microseconds:
    /// unlike requests per second, it hardly depends on what else the
    /// machine is running.
    server_us_per_request: f64,
    /// Share of one core the load generator used.
    load_cpu: f64,
    died: bool,
}

fn main() -> std::process::ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let known = |name: &str| TARGETS.iter().any(|target| target.name == name);
    for (name, _) in &cli.servers {
        if !known(name) {
            bail!("--server {name}=…: not a server the bench knows");
        }
    }
    for name in &cli.only {
        if !known(name) {
            let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
            bail!(
                "--only {name}: not a server the bench knows ({})",
                names.join(", ")
            );
        }
    }
    let open_files = server::raise_open_files_limit().context("raising RLIMIT_NOFILE")?;
    let needed = cli.conns.iter().max().copied().unwrap_or(0) as u64 + 64;
    if open_files < needed {
        bail!("the open-file limit is {open_files}, below the {needed} the largest cell needs");
    }
    let config = |conns| Config {
        conns,
        warmup: Duration::from_secs_f64(cli.warmup),
        duration: Duration::from_secs_f64(cli.seconds),
        max_requests: cli.max_requests,
        timeout: Duration::from_secs(5),
    };
    println!(
        "| server | workload | conns | req/s | p50 ms | p99 ms | errors | server CPU | CPU µs/req | load CPU |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    let mut results: BTreeMap<(&str, usize), Cell> = BTreeMap::new();
    for target in TARGETS {
        if !cli.only.is_empty() && !cli.only.iter().any(|only| only == target.name) {
            continue;
        }
        let Some(launch) = launch_of(target, cli, &mut notes) else {
            continue;
        };
        for &conns in &cli.conns {
            let cell = measure(&launch, target.workload, &config(conns))
                .with_context(|| format!("{} at {conns} connections", target.name))?;
            print_row(target, conns, &cell);
            results.insert((target.name, conns), cell);
        }
    }
    println!();
    for note in &notes {
        println!("note: {note}");
    }
    print_errors(&results);
    print_goals(&results);
    Ok(())
}

/// How to start `target`, or `None` with a note saying why it is skipped.
fn launch_of(target: &Target, cli: &Cli, notes: &mut Vec<String>) -> Option<Launch> {
    match target.name {
        "tokio-echo" => {
            let exe = std::env::current_exe().ok()?;
            let program = exe.with_file_name("tokio-echo-server");
            if !program.is_file() {
                notes.push(format!(
                    "tokio-echo skipped: {} is not built (`cargo build --release --manifest-path bench/Cargo.toml`)",
                    program.display()
                ));
                return None;
            }
            Some(Launch {
                program,
                args: Vec::new(),
            })
        }
        "python-selectors" => {
            let script = bench_file("selectors_echo_server.py");
            let runs = std::process::Command::new(&cli.python)
                .arg("--version")
                .output()
                .is_ok_and(|output| output.status.success());
            if !runs {
                notes.push(format!(
                    "python-selectors skipped: no Python at `{}`",
                    cli.python.display()
                ));
                return None;
            }
            Some(Launch {
                program: cli.python.clone(),
                args: vec![script.display().to_string()],
            })
        }
        name => match cli.servers.iter().find(|(server, _)| server == name) {
            Some((_, path)) => Some(Launch {
                program: path.clone(),
                args: Vec::new(),
            }),
            None => {
                notes.push(format!(
                    "{name} skipped: not built ({} is not in this copy)",
                    target.origin
                ));
                None
            }
        },
    }
}

/// Starts a fresh server, loads it, stops it.
fn measure(launch: &Launch, workload: Workload, config: &Config) -> Result<Cell> {
    let mut server = Server::start(launch)?;
    let pid = server.pid().to_string();
    let server_before = server::cpu_time(&pid)?;
    let load_before = server::cpu_time("self")?;
    let started = Instant::now();
    let stats = load::run(server.addr, workload, config)?;
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let died = !server.is_running();
    let server_seconds = if died {
        f64::NAN
    } else {
        (server::cpu_time(&pid)? - server_before).as_secs_f64()
    };
    let load_cpu = (server::cpu_time("self")? - load_before).as_secs_f64() / wall;
    Ok(Cell {
        server_cpu: server_seconds / wall,
        server_us_per_request: server_seconds * 1e6 / stats.completed.max(1) as f64,
        stats,
        load_cpu,
        died,
    })
}

fn print_row(target: &Target, conns: usize, cell: &Cell) {
    let workload = match target.workload {
        Workload::PingPong => "ping-pong",
        Workload::PerConnection(_) => "conn/request",
    };
    let ms = |q| {
        cell.stats
            .latency_ms(q)
            .map_or_else(|| "-".into(), |ms| format!("{ms:.2}"))
    };
    let errors = cell.stats.error_count();
    let errors = if cell.died {
        format!("{errors}, server died")
    } else {
        errors.to_string()
    };
    println!(
        "| {} | {} | {} | {:.0} | {} | {} | {} | {:.0}% | {:.1} | {:.0}% |",
        target.name,
        workload,
        conns,
        cell.stats.rate(),
        ms(0.5),
        ms(0.99),
        errors,
        cell.server_cpu * 100.0,
        cell.server_us_per_request,
        cell.load_cpu * 100.0
    );
}

fn print_errors(results: &BTreeMap<(&str, usize), Cell>) {
    for ((name, conns), cell) in results {
        for (what, count) in &cell.stats.errors {
            println!("errors: {name} at {conns} connections: {count} × {what}");
        }
    }
}

fn print_goals(results: &BTreeMap<(&str, usize), Cell>) {
    println!();
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    for (baseline, factor) in [("tokio-echo", 0.8), ("python-selectors", 10.0)] {
        let goal = format!("goal: multiconn-server ≥ {factor}× {baseline} at 100 connections");
        let (Some(ours), Some(theirs)) = (
            results.get(&("multiconn-server", 100)),
            results.get(&(baseline, 100)),
        ) else {
            println!("{goal}: not measured");
            continue;
        };
        let ratio = ours.stats.rate() / theirs.stats.rate().max(1e-9);
        println!(
            "{goal}: {:.0} vs {:.0} req/s = {ratio:.2}× {} (server CPU per request: {:.1} vs {:.1} µs)",
            ours.stats.rate(),
            theirs.stats.rate(),
            mark(ratio >= factor),
            ours.server_us_per_request,
            theirs.server_us_per_request
        );
    }
    for target in TARGETS.iter().filter(|target| target.concurrent) {
        if let Some(cell) = results.get(&(target.name, 1000)) {
            let errors = cell.stats.error_count();
            println!(
                "goal: {} serves 1000 connections without error: {errors} errors, {} requests {}",
                target.name,
                cell.stats.requests,
                mark(errors == 0 && !cell.died && cell.stats.requests > 0)
            );
        }
    }
}

/// A file of `bench/`, found next to the running executable
/// (`bench/target/release/…`), so that a course moved with its `target/`
/// uses its own copy; the compile-time folder only when that fails.
fn bench_file(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name))
}
