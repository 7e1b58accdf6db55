//! Checks that run a program on the IPv6 loopback, `::1`.

use std::net::Ipv6Addr;

use super::{Ctx, Server};
use crate::outcome::Failure;

/// Skips the check where there is no IPv6 loopback: the check threads are
/// in the grade's network namespace, whose loopback has `::1` unless the
/// kernel runs without IPv6, and then no program could pass.
pub fn require_loopback(ctx: &Ctx) -> Result<(), Failure> {
    match std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => Ok(()),
        Err(err) => Err(ctx.skip(format!(
            "this machine has no IPv6 loopback (the grader could not bind [::1]:0: {err}), so the IPv6 check cannot run here"
        ))),
    }
}

/// Starts the server `bin` with HOST `::1` and port 0, and checks that it
/// announced `Listening on [::1]:PORT`. Its failure to start or to listen
/// there carries `how` and the handout section `handout`.
pub fn server(ctx: &Ctx, bin: &str, how: &str, handout: &str) -> Result<Server, Failure> {
    require_loopback(ctx)?;
    let launch = ctx.launch(bin, ["::1", "0"])?;
    let server = ctx
        .start_server(&launch)
        .map_err(|failure| failure.diagnosis(how, handout))?;
    if server.addr.ip() != Ipv6Addr::LOCALHOST {
        return Err(Failure::new(format!(
            "started with HOST `::1`, the server announced {}",
            server.addr
        ))
        .expected("Listening on [::1]:PORT")
        .actual(format!("Listening on {}", server.addr))
        .diagnosis(how, handout));
    }
    Ok(server)
}
