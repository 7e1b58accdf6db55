//! What the grader observes of a running program besides its output: what
//! `/proc` says ([`procfs`]), a listener's backlog ([`sockdiag`]), and
//! whether it has stalled ([`stall`]).

pub mod procfs;
pub mod sockdiag;
pub mod stall;
