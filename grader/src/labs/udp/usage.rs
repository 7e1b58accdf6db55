//! `udp.client_usage`: a `--timeout` that is not a number of seconds above
//! 0 is a usage error. A zero timeout would mean "wait for ever" to the
//! socket API (or be refused by it), the opposite of what was asked.

use crate::harness::Ctx;
use crate::harness::show;
use crate::outcome::{CheckResult, Failure};

use super::client::client_facing_socket;
use super::server::local_addr;
use super::{CLIENT, CLIENT_MESSAGE};

/// How long a usage error may take: clap answers at once.
const QUICK: f64 = 5.0;

pub(super) fn client_usage(ctx: &Ctx) -> CheckResult {
    // A silent server: a client that takes the bad timeout waits, or fails
    // in its own way, but does not say "usage".
    let silent = client_facing_socket()?;
    let port = local_addr(&silent)?.port().to_string();
    for timeout in ["0", "0.0", "nan", "soon"] {
        let args = ["127.0.0.1", &port, CLIENT_MESSAGE, "--timeout", timeout];
        let launch = ctx.launch(CLIENT, args)?;
        let finished = ctx.run(&launch, QUICK)?;
        if finished.code() != Some(2) || finished.stderr.is_empty() {
            return Err(
                Failure::new(format!("--timeout {timeout}: not reported as a usage error"))
                    .expected("a usage message on stderr and exit code 2, at once (clap does this with the `value_parser` in main)")
                    .actual(finished.describe())
                    .detail(format!("stderr: {}", show::tail(&finished.stderr_text(), 4)))
                    .detail(format!("command: {}", launch.command_line())),
            );
        }
    }
    Ok(())
}
