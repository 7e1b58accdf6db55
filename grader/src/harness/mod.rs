//! The harness every lab's checks share: processes, readiness, sockets,
//! `/proc`, snapshots, and the [`Ctx`] that ties them to one check.

pub mod capture;
pub mod conn;
pub mod conversation;
mod ctx;
pub mod descriptors;
mod finished;
pub mod limits;
pub mod net;
pub mod process;
pub mod procfs;
pub mod ready;
pub mod sandbox;
pub mod show;
pub mod snapshot;
pub mod sockdiag;
pub mod stall;
pub mod udp;

pub use ctx::{Binaries, Ctx, Evidence, Server};
