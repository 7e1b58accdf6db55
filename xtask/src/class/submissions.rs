//! The class's submissions: its folders (a symbolic link listed, never
//! followed), the ones `--only` names, and where each holds a lab's
//! sources (of a lab found more than once, the copy `--prefer` matches).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use grader::Lab;
use grader::outcome::NotGraded;

use super::anonymise::pseudonym;
use crate::grade::Selection;
use crate::intake::NotTaken;

/// One submission folder of the class.
#[derive(Debug)]
pub(super) struct Submission {
    /// The folder's name, as [`grader::untrusted::name`] shows it (or its
    /// pseudonym, with `--anonymise`).
    pub(super) student: String,
    /// The folder's name.
    pub(super) raw: OsString,
    /// The folder.
    pub(super) path: PathBuf,
    /// Whether the folder is a symbolic link to a folder (not followed).
    pub(super) symlink: bool,
}

/// The submissions in `dir`, sorted by name: its folders, and its symbolic
/// links to folders, which are listed to be reported, not followed. Files
/// beside them (`grades.csv`, the pages) are not submissions.
pub(super) fn submissions(dir: &Path, anonymise: Option<&[u8; 16]>) -> Result<Vec<Submission>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
    {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let symlink = kind.is_symlink();
        if kind.is_dir() || (symlink && entry.path().is_dir()) {
            let student = match anonymise {
                Some(salt) => pseudonym(salt, entry.file_name().as_encoded_bytes()),
                None => grader::untrusted::name(&entry.file_name()),
            };
            found.push(Submission {
                student,
                raw: entry.file_name(),
                path: entry.path(),
                symlink,
            });
        }
    }
    found.sort_by(|a, b| a.student.cmp(&b.student));
    Ok(found)
}

/// The submissions `only` names, in the order of `submissions`: each name
/// matches a folder's name byte for byte or, failing that, as
/// [`grader::untrusted::name`] shows it (`bob\xff`). A name that matches
/// no folder is an error.
pub(super) fn select(
    submissions: Vec<Submission>,
    only: &[OsString],
    dir: &Path,
) -> Result<Vec<Submission>> {
    let mut wanted = BTreeSet::new();
    for name in only {
        let found = submissions
            .iter()
            .position(|submission| submission.raw == *name)
            .or_else(|| {
                let raw = grader::untrusted::name_bytes(name.to_str()?)?;
                submissions
                    .iter()
                    .position(|submission| submission.raw == raw)
            });
        match found {
            Some(index) => {
                wanted.insert(index);
            }
            None => bail!(
                "--only {}: no submission folder of that name in {}",
                grader::untrusted::name(name),
                dir.display()
            ),
        }
    }
    Ok(submissions
        .into_iter()
        .enumerate()
        .filter(|(index, _)| wanted.contains(index))
        .map(|(_, submission)| submission)
        .collect())
}

/// Where a submission's sources of a lab are, and what to note about
/// them, or why they are not taken.
pub(super) type Sources = Result<(PathBuf, Vec<String>), NotTaken>;

/// Finds the sources of `lab` in `submission`: of a lab found more than
/// once, the one copy `prefer` matches, or else an error that lists the
/// copies and says how to choose.
pub(super) fn locate(submission: &Submission, lab: &'static Lab, prefer: Option<&str>) -> Sources {
    if submission.symlink {
        return Err(NotTaken {
            why: NotGraded::SymbolicLink,
            message: NotGraded::SymbolicLink.reason().to_owned(),
        });
    }
    match crate::intake::find_sources(&submission.path, lab) {
        Ok(src) => Ok((src, Vec::new())),
        Err(mut not_taken) if not_taken.why == NotGraded::FoundTwice => {
            let found = crate::intake::find_all_sources(&submission.path, lab);
            let shown = |dir: &PathBuf| crate::intake::relative(dir, &submission.path);
            if let Some(glob) = prefer {
                let matching: Vec<&PathBuf> = found
                    .iter()
                    .filter(|dir| path_glob_matches(glob, shown(dir).trim_end_matches('/')))
                    .collect();
                if let [chosen] = matching.as_slice() {
                    let others: Vec<String> = found
                        .iter()
                        .filter(|dir| dir != chosen)
                        .map(shown)
                        .collect();
                    let note = format!(
                        "{lab} is in the submission more than once: took {} (--prefer {}), left out {}",
                        shown(chosen),
                        grader::untrusted::terminal(glob),
                        others.join(", ")
                    );
                    return Ok(((*chosen).clone(), vec![note]));
                }
                not_taken.message.push_str(&format!(
                    "; --prefer {} matches {} of them, not one",
                    grader::untrusted::terminal(glob),
                    matching.len()
                ));
            }
            not_taken.message.push_str(
                "; say which to grade with --prefer PATH-GLOB (e.g. --prefer 'labs/*'), and regrade",
            );
            Err(not_taken)
        }
        Err(not_taken) => Err(not_taken),
    }
}

/// Whether `glob` matches the leading folders of `path` (`labs/echo/src`):
/// `*` and `?` within one name, `**` for any number of folders. `labs`,
/// `labs/*` and `**/labs` all match `labs/echo/src`; `old*` matches
/// `old-backup/echo/src`.
pub fn path_glob_matches(glob: &str, path: &str) -> bool {
    fn name_matches(glob: &[char], name: &[char]) -> bool {
        match (glob.first(), name.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                name_matches(&glob[1..], name)
                    || (!name.is_empty() && name_matches(glob, &name[1..]))
            }
            (Some('?'), Some(_)) => name_matches(&glob[1..], &name[1..]),
            (Some(g), Some(n)) if g == n => name_matches(&glob[1..], &name[1..]),
            _ => false,
        }
    }
    fn leading(globs: &[Vec<char>], names: &[Vec<char>]) -> bool {
        let Some((first, rest)) = globs.split_first() else {
            return true;
        };
        if first.iter().collect::<String>() == "**" {
            return (0..=names.len()).any(|skip| leading(rest, &names[skip..]));
        }
        names
            .split_first()
            .is_some_and(|(name, names)| name_matches(first, name) && leading(rest, names))
    }
    let split = |text: &str| -> Vec<Vec<char>> {
        text.split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .map(|part| part.chars().collect())
            .collect()
    };
    leading(&split(glob), &split(path))
}

/// The labs to grade when none was named: those that some submission
/// holds (once, or more than once), in lab order; every lab of the course
/// when none holds any (each row then says what was not found). Returns
/// them with how many submissions hold each.
pub(super) fn labs_found(submissions: &[Submission]) -> Vec<(&'static Lab, usize)> {
    let present = Selection::All.labs();
    let found: Vec<(&'static Lab, usize)> = present
        .iter()
        .map(|lab| {
            let holding = submissions
                .iter()
                .filter(|submission| {
                    !submission.symlink
                        && !crate::intake::find_all_sources(&submission.path, lab).is_empty()
                })
                .count();
            (*lab, holding)
        })
        .filter(|(_, holding)| *holding > 0)
        .collect();
    if found.is_empty() {
        present.into_iter().map(|lab| (lab, 0)).collect()
    } else {
        found
    }
}
