//! The handouts' addresses: the anchor a heading gets (GitHub's rule, which
//! `cargo xtask book` follows too, so a `README.md#anchor` link works on
//! GitHub and in the book alike), and where a handout section is in the
//! book.

/// The anchor GitHub gives a heading's text: lower case, every character
/// but letters, digits, spaces, `-` and `_` dropped, spaces turned into
/// `-`. (`Why write_all` gives `why-write_all`, `Lab 1 — echo` gives
/// `lab-1--echo`.) A second heading with the same anchor gets `-1`, a third
/// `-2`: see [`Anchors`].
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of one page's headings, in order, made unique as GitHub
/// does: the second `#notes` is `#notes-1`.
#[derive(Debug, Default)]
pub struct Anchors {
    taken: std::collections::HashSet<String>,
}

impl Anchors {
    /// The anchor of the next heading, whose text is `heading`.
    pub fn next(&mut self, heading: &str) -> String {
        let base = anchor(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while self.taken.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

/// A handout section (`labs/echo/README.md#the-half-close`) as its place in
/// the book (`echo.html#the-half-close`); anything else unchanged.
pub fn in_book(handout: &str) -> String {
    let (file, anchor) = handout.split_once('#').unwrap_or((handout, ""));
    match file
        .strip_prefix("labs/")
        .and_then(|rest| rest.strip_suffix("/README.md"))
    {
        Some(slug) if !slug.contains('/') && anchor.is_empty() => format!("{slug}.html"),
        Some(slug) if !slug.contains('/') => format!("{slug}.html#{anchor}"),
        _ => handout.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("Why write_all"), "why-write_all");
        assert_eq!(anchor("Lab 1 — echo: your first"), "lab-1--echo-your-first");
        assert_eq!(
            anchor("Step 4: only the server's reply"),
            "step-4-only-the-servers-reply"
        );
        assert_eq!(
            anchor("SO_REUSEADDR and TIME_WAIT"),
            "so_reuseaddr-and-time_wait"
        );
        let mut anchors = Anchors::default();
        assert_eq!(anchors.next("Notes"), "notes");
        assert_eq!(anchors.next("Notes"), "notes-1");
        assert_eq!(anchors.next("Notes"), "notes-2");
    }

    #[test]
    fn handout_sections_map_to_book_pages() {
        assert_eq!(
            in_book("labs/echo/README.md#the-half-close"),
            "echo.html#the-half-close"
        );
        assert_eq!(in_book("labs/client-list/README.md"), "client-list.html");
        assert_eq!(in_book("grader/rubric.toml"), "grader/rubric.toml");
    }
}
