//! The harness every lab's checks share, by concern: running a graded
//! program (here: `process`, `capture`, `ready`, `finished`, `limits`, and
//! its containment in `sandbox/`), talking to it (`net/`: TCP and UDP with
//! deadlines, the grader's peers), observing it (`observe/`: `/proc`,
//! sock_diag, stalls), drawing what to send (`payload`), recording and
//! showing what happened (`conversation`, `show`, `snapshot`), and the
//! [`Ctx`] that ties them to one check.

pub mod capture;
pub mod conversation;
mod ctx;
mod finished;
pub mod fixtures;
pub mod ipv6;
pub mod last_words;
mod launch;
pub mod limits;
pub mod net;
pub mod observe;
pub mod payload;
pub mod process;
pub mod ready;
pub mod sandbox;
pub mod show;
pub mod snapshot;

pub use ctx::{Binaries, Ctx, Evidence, Server};
