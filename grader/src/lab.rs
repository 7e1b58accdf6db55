//! The lab table: the one place that says which labs exist.
//!
//! The grader, `cargo xtask` and the tests all read this table, so adding a lab
//! is one row here (its `checks` naming the lab's list), one checks module
//! in [`crate::labs`] with its `CHECKS`, and its entries in
//! `grader/rubric.toml`; then the student crate `labs/SLUG/`, its handout,
//! the solution `solutions/SLUG/`, and its tests (`cargo xtask course-check`
//! names what is missing).

use std::fmt;

use crate::labs;
use crate::runner::CheckFn;

/// A lab's check functions by rubric id, in rubric order (made by the
/// `checks!` macro of [`crate::labs`]).
pub type Checks = &'static [(&'static str, CheckFn)];

/// One lab of the course: how it is named, where its crates live, and its
/// checks.
#[derive(Debug, Clone, Copy)]
pub struct Lab {
    /// Its place in the course, 1 to 6: `cargo xtask grade 3`.
    pub number: u8,
    /// The short name used everywhere: crate directories, check ids, `grade multiconn`.
    pub slug: &'static str,
    /// A title for reports.
    pub title: &'static str,
    /// The cargo package name, the same in `labs/` and `solutions/` so that
    /// sources can be swapped between them.
    pub package: &'static str,
    /// The binaries the contract names; `--bin-dir` looks for exactly these.
    pub binaries: &'static [&'static str],
    /// The package of the grader's own tests of the lab's library, built
    /// against the graded crate (`grader/framing` for lab 4), if any; its
    /// test target has the package's name.
    pub grader_tests: Option<&'static str>,
    /// Its check functions, by rubric id, in rubric order.
    pub checks: Checks,
    /// The longest wait its contract requires of one check, if any: a
    /// timeout the program must honour, which no evidence can end sooner.
    /// Its grade takes at least that long, so `grade all` starts it first
    /// and counts it apart from the cores (the lab spends it asleep).
    pub floor: Option<Floor>,
    /// The handout section where its server binds and prints `Listening
    /// on`: a server that never gets that far went wrong there, whichever
    /// check started it.
    pub server_starts: &'static str,
}

/// A wait a lab's contract requires: the check that waits, and how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// The check's name within the lab (`timeout_honoured`).
    pub check: &'static str,
    /// Seconds.
    pub seconds: f64,
}

/// A lab is its number: two rows never share one (a test says so).
impl PartialEq for Lab {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}

impl Eq for Lab {}

impl Lab {
    /// `lab3`: the name reports use.
    pub fn name(&self) -> String {
        format!("lab{}", self.number)
    }

    /// The student crate, relative to the workspace root.
    pub fn student_dir(&self) -> String {
        format!("labs/{}", self.slug)
    }

    /// The reference crate, relative to the workspace root.
    pub fn solution_dir(&self) -> String {
        format!("solutions/{}", self.slug)
    }

    /// The handout, relative to the workspace root.
    pub fn handout(&self) -> String {
        format!("labs/{}/README.md", self.slug)
    }

    /// Finds a lab by any of the names students use: `lab3`, `3` or `multiconn`.
    pub fn find(name: &str) -> Option<&'static Lab> {
        let name = name.trim().to_ascii_lowercase();
        let number = name.strip_prefix("lab").unwrap_or(&name);
        LABS.iter()
            .find(|lab| lab.slug == name || number.parse::<u8>().ok() == Some(lab.number))
    }

    /// Every accepted spelling, for error messages.
    pub fn valid_names() -> String {
        let mut names: Vec<String> = LABS
            .iter()
            .map(|lab| format!("{} | {} | {}", lab.name(), lab.number, lab.slug))
            .collect();
        names.push("all".to_owned());
        names.join(", ")
    }
}

impl fmt::Display for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.slug)
    }
}

/// The six labs, in course order.
pub const LABS: &[Lab] = &[
    Lab {
        number: 1,
        slug: "echo",
        title: "TCP echo: socket, bind, listen, accept, connect",
        package: "echo",
        binaries: &["echo-server", "echo-client"],
        grader_tests: None,
        checks: labs::echo::CHECKS,
        floor: None,
        server_starts: "#step-1-the-server-binds-and-listens",
    },
    Lab {
        number: 2,
        slug: "errors",
        title: "Socket errors, stage by stage",
        package: "errors",
        binaries: &["socket-errors", "bind-server"],
        grader_tests: None,
        checks: labs::errors::CHECKS,
        floor: Some(labs::errors::FLOOR),
        server_starts: "#the-bind-server",
    },
    Lab {
        number: 3,
        slug: "multiconn",
        title: "Many clients, one thread: an event loop",
        package: "multiconn",
        binaries: &["multiconn-server", "multiconn-client"],
        grader_tests: None,
        checks: labs::multiconn::CHECKS,
        floor: None,
        server_starts: "#step-1-listen-and-register",
    },
    Lab {
        number: 4,
        slug: "app",
        title: "An application protocol with framing",
        package: "app",
        binaries: &["app-server", "app-client"],
        grader_tests: Some("framing-tests"),
        checks: labs::app::CHECKS,
        floor: None,
        server_starts: "#step-4-the-server-answers",
    },
    Lab {
        number: 5,
        slug: "udp",
        title: "UDP: datagrams, no connection, timeouts",
        package: "udp",
        binaries: &["udp-server", "udp-client"],
        grader_tests: None,
        checks: labs::udp::CHECKS,
        floor: Some(labs::udp::FLOOR),
        server_starts: "#step-1-the-server-binds",
    },
    Lab {
        number: 6,
        slug: "client-list",
        title: "A thread per connection and a shared client list",
        package: "client-list",
        binaries: &["client-list-server", "client-list-client"],
        grader_tests: None,
        checks: labs::client_list::CHECKS,
        floor: None,
        server_starts: "#step-1-a-thread-per-connection",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_finds_the_lab() {
        for spelling in ["lab3", "3", "multiconn", "LAB3", " multiconn "] {
            assert_eq!(
                Lab::find(spelling).map(|lab| lab.number),
                Some(3),
                "{spelling}"
            );
        }
        assert_eq!(Lab::find("client-list").map(|lab| lab.number), Some(6));
    }

    #[test]
    fn unknown_names_find_nothing() {
        for spelling in ["lab7", "0", "", "lab", "echoes"] {
            assert!(Lab::find(spelling).is_none(), "{spelling}");
        }
    }

    #[test]
    fn every_floor_names_a_check_of_its_lab() {
        for lab in LABS {
            if let Some(floor) = lab.floor {
                let id = format!("{}.{}", lab.slug, floor.check);
                assert!(lab.checks.iter().any(|(check, _)| *check == id), "{id}");
                assert!(floor.seconds > 0.0, "{id}");
            }
        }
    }

    #[test]
    fn slugs_and_binaries_are_unique() {
        let mut seen = std::collections::HashSet::new();
        let numbers: std::collections::HashSet<u8> = LABS.iter().map(|lab| lab.number).collect();
        assert_eq!(numbers.len(), LABS.len(), "two labs share a number");
        for lab in LABS {
            assert!(seen.insert(lab.slug));
            for bin in lab.binaries {
                assert!(seen.insert(bin), "{bin} named twice");
            }
        }
    }
}
