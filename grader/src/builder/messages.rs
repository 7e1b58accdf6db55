//! The compiler's messages as a report shows them: without the terminal's
//! colours, the first error whole, then a screenful.

/// `text` without the terminal's colour sequences (`ESC [ … m`) that cargo
/// prints with `--color=always`.
pub fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The compiler's first errors in `message` (a "did not compile" message):
/// the first error whole, with its location (however long it is, up to
/// [`FIRST_ERROR_LINES`]), then what follows it bounded to a screenful (at
/// most [`SCREENFUL_LINES`] lines and [`SCREENFUL_BYTES`] bytes in all),
/// ending with how many lines were left out. Cargo's own "waiting for other
/// jobs" is left out. `None` when it holds no compiler output.
pub fn first_errors(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('\n')?;
    let lines: Vec<&str> = rest
        .lines()
        .filter(|line| !line.starts_with("warning: build failed, waiting for other jobs"))
        .collect();
    let start = lines
        .iter()
        .position(|line| line.starts_with("error"))
        .unwrap_or_else(|| {
            // No `error` line (a build stopped): what cargo said, without
            // its progress.
            lines
                .iter()
                .position(|line| {
                    let line = line.trim_start();
                    !["Compiling", "Checking", "Building", "Blocking", "Locking"]
                        .iter()
                        .any(|progress| line.starts_with(progress))
                })
                .unwrap_or(lines.len())
        });
    let lines = &lines[start..];
    if lines.iter().all(|line| line.trim().is_empty()) {
        return None;
    }
    // The first error runs to the next diagnostic (`error`, `warning`) or
    // to rustc's closing `For more information`.
    let first_len = 1 + lines[1..]
        .iter()
        .position(|line| {
            ["error", "warning", "For more information"]
                .iter()
                .any(|next| line.starts_with(next))
        })
        .unwrap_or(lines.len() - 1);
    let first_len = first_len.min(FIRST_ERROR_LINES);
    let mut shown = String::new();
    let mut count = 0;
    for (index, line) in lines.iter().enumerate() {
        let whole = index < first_len;
        // One line longer than a screen is cut, not left out.
        let mut end = line.len().min(SCREENFUL_BYTES - 1);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let line = &line[..end];
        if !whole && (count >= SCREENFUL_LINES || shown.len() + line.len() + 1 > SCREENFUL_BYTES) {
            break;
        }
        shown.push_str(line);
        shown.push('\n');
        count += 1;
    }
    let left = lines.len() - count;
    if left > 0 {
        shown.push_str(&format!(
            "… and {left} more line(s) of the compiler's messages\n"
        ));
    }
    Some(shown.trim_end().to_owned())
}

/// The compiler's first error in one line, with where it is:
/// `error[E0308]: mismatched types at labs/echo/src/bin/echo-server.rs:28:18`
/// (for `cargo xtask status`); `None` when `message` holds no error.
pub fn first_error_line(message: &str) -> Option<String> {
    let mut lines = message
        .lines()
        .skip(1)
        .skip_while(|line| !line.starts_with("error"));
    let headline = lines.next()?.trim_end();
    let location = lines
        .take_while(|line| !line.starts_with("error") && !line.starts_with("warning"))
        .find_map(|line| line.trim_start().strip_prefix("--> "));
    Some(match location {
        Some(location) => format!("{headline} at {}", location.trim()),
        None => headline.to_owned(),
    })
}

/// The most lines of the first compiler error a report shows: it is shown
/// whole, unless it is longer than this.
pub const FIRST_ERROR_LINES: usize = 200;
/// A screenful of compiler messages: lines.
pub const SCREENFUL_LINES: usize = 40;
/// A screenful of compiler messages: bytes.
pub const SCREENFUL_BYTES: usize = 4000;

#[cfg(test)]
mod tests {
    use super::*;

    /// A build of lab 1 whose server has one long error, then a second.
    fn message(first_error_lines: usize) -> String {
        let mut message =
            "labs/echo did not compile:\n   Compiling echo v0.1.0 (/course/labs/echo)\n\
            warning: unused import: `std::io`\n --> labs/echo/src/bin/echo-client.rs:6:5\n\n\
            error[E0308]: mismatched types\n  --> labs/echo/src/bin/echo-server.rs:28:18\n   |\n"
                .to_owned();
        for line in 0..first_error_lines {
            message.push_str(&format!("{line} |     let x: u32 = \"nope\";\n"));
        }
        message.push_str("help: try this\n   |\n\n");
        for line in 0..100 {
            message.push_str(&format!(
                "error[E0425]: cannot find value `y{line}`\n --> labs/echo/src/bin/echo-server.rs:{line}:1\n"
            ));
        }
        message.push_str(
            "error: could not compile `echo` (bin \"echo-server\") due to 101 previous errors\n\
             warning: build failed, waiting for other jobs to finish...\n",
        );
        message
    }

    #[test]
    fn the_first_error_is_shown_whole_with_its_location_then_a_screenful() {
        let shown = first_errors(&message(60)).unwrap();
        assert!(
            shown.starts_with(
                "error[E0308]: mismatched types\n  --> labs/echo/src/bin/echo-server.rs:28:18"
            ),
            "{shown}"
        );
        // Longer than a screenful, and whole: its last line, its help.
        assert!(shown.contains("59 |     let x"), "{shown}");
        assert!(shown.contains("help: try this"), "{shown}");
        // What follows is cut, and the cut said.
        assert!(!shown.contains("`y99`"), "{shown}");
        assert!(
            shown.ends_with("more line(s) of the compiler's messages"),
            "{shown}"
        );
        assert!(!shown.contains("waiting for other jobs"), "{shown}");
        assert!(!shown.contains("unused import"), "{shown}");
    }

    #[test]
    fn a_short_first_error_is_followed_by_the_next_ones_within_a_screenful() {
        let shown = first_errors(&message(2)).unwrap();
        assert!(shown.contains("`y0`"), "{shown}");
        assert!(shown.lines().count() <= SCREENFUL_LINES + 1, "{shown}");
        assert!(shown.len() <= SCREENFUL_BYTES + 100, "{shown}");
    }

    #[test]
    fn the_first_error_in_one_line_says_where_it_is() {
        assert_eq!(
            first_error_line(&message(2)).as_deref(),
            Some("error[E0308]: mismatched types at labs/echo/src/bin/echo-server.rs:28:18")
        );
        assert_eq!(
            first_error_line("labs/echo built no binary named `x`"),
            None
        );
    }
}
