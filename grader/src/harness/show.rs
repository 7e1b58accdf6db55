//! Showing bytes and differences the way students can read them.

use std::fmt::Write as _;

/// Bytes as a Rust byte-string literal, `b"Hello\n"`, shortened to about
/// `max` bytes with a note of how many were left out.
pub fn bytes(data: &[u8], max: usize) -> String {
    if data.len() <= max {
        return format!("b\"{}\"", data.escape_ascii());
    }
    let head = max * 2 / 3;
    let tail = max - head;
    format!(
        "b\"{}\" … ({} bytes left out) … b\"{}\" ({} bytes in all)",
        data[..head].escape_ascii(),
        data.len() - head - tail,
        data[data.len() - tail..].escape_ascii(),
        data.len()
    )
}

/// A byte count as a student reads it: `12 bytes`, `64 KiB`, `1.1 MiB`,
/// `2 GiB`.
pub fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    let (unit, name) = match bytes {
        0..KIB => return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" }),
        KIB..0x10_0000 => (KIB, "KiB"),
        0x10_0000..0x4000_0000 => (KIB * KIB, "MiB"),
        _ => (KIB * KIB * KIB, "GiB"),
    };
    let shown = format!("{:.1}", bytes as f64 / unit as f64);
    format!("{} {name}", shown.strip_suffix(".0").unwrap_or(&shown))
}

/// The bytes a byte-string literal body stands for: the inverse of
/// `escape_ascii` (`\n`, `\t`, `\r`, `\\`, `\"`, `\'`, `\xNN`, and plain
/// ASCII). `None` if the text holds anything else, e.g. a Python `\u`
/// escape or a raw non-ASCII character. Checks use it to say how many bytes
/// a program logged, not just that its text differs.
pub fn unescape_ascii(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        if first != b'\\' {
            if !first.is_ascii() {
                return None;
            }
            bytes.push(first);
            continue;
        }
        let (&kind, tail) = rest.split_first()?;
        rest = tail;
        bytes.push(match kind {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'\\' | b'"' | b'\'' => kind,
            b'x' => {
                let hex = std::str::from_utf8(rest.get(..2)?).ok()?;
                rest = &rest[2..];
                u8::from_str_radix(hex, 16).ok()?
            }
            _ => return None,
        });
    }
    Some(bytes)
}

/// The UTF-8 bytes of U+FFFD, what a lossy decoding into text puts in
/// place of each byte that is not UTF-8: bytes that passed through text.
pub const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Whether `bytes` hold a U+FFFD ([`REPLACEMENT`]).
pub fn holds_replacement(bytes: &[u8]) -> bool {
    bytes
        .windows(REPLACEMENT.len())
        .any(|window| window == REPLACEMENT)
}

/// The first index below both lengths where `a` and `b` differ, if any.
///
/// Compared a page at a time with slice equality (the standard library's
/// `memcmp`, optimised even in the grader's unoptimised build, where a
/// byte-by-byte loop over the megabytes of an echo is slow), then byte by
/// byte inside the page that differs.
pub fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    const PAGE: usize = 4096;
    let common = a.len().min(b.len());
    (0..common).step_by(PAGE).find_map(|start| {
        let end = (start + PAGE).min(common);
        (a[start..end] != b[start..end]).then(|| {
            let within = a[start..end].iter().zip(&b[start..end]);
            start + within.take_while(|(x, y)| x == y).count()
        })
    })
}

/// Where two byte strings first differ, shown around that point, or `None`
/// when they are equal.
pub fn first_difference(expected: &[u8], actual: &[u8]) -> Option<String> {
    let at = first_mismatch(expected, actual);
    let at = match at {
        Some(at) => at,
        None if expected.len() == actual.len() => return None,
        None => expected.len().min(actual.len()),
    };
    let from = at.saturating_sub(8);
    let window = |data: &[u8]| {
        let end = (at + 24).min(data.len());
        if from >= data.len() {
            "(nothing: it ends before this point)".to_owned()
        } else {
            format!(
                "{}{}",
                if from > 0 { "…" } else { "" },
                bytes(&data[from..end], 64)
            )
        }
    };
    let mut text = format!(
        "first difference at byte {at} (expected {} bytes in all, got {})",
        expected.len(),
        actual.len()
    );
    let _ = write!(
        text,
        "\n    expected: {}\n    actual:   {}",
        window(expected),
        window(actual)
    );
    Some(text)
}

/// One line of text shortened to about `max` characters, with a note of how
/// much was left out.
pub fn shorten(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", count - max)
}

/// Text shortened to its first `max_lines` lines.
pub fn head(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max_lines {
        return text.trim_end().to_owned();
    }
    format!(
        "{}\n… ({} more lines)",
        lines[..max_lines].join("\n"),
        lines.len() - max_lines
    )
}

/// Text shortened to its last `max_lines` lines (where errors usually are),
/// without leading blank lines.
pub fn tail(text: &str, max_lines: usize) -> String {
    let text = text.trim_start_matches(['\n', '\r']);
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= max_lines {
        return text.trim_end().to_owned();
    }
    format!(
        "… ({} lines before)\n{}",
        lines.len() - max_lines,
        lines[lines.len() - max_lines..].join("\n")
    )
}

/// A duration as a student reads it: `40 ms`, `2.5 s`.
pub fn duration(duration: std::time::Duration) -> String {
    if duration < std::time::Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// A failure detail with the end of a program's stderr: `LABEL:` then its
/// last `max_lines` lines, indented; empty when it printed nothing there
/// (which [`Failure::detail`](crate::outcome::Failure::detail) then skips).
pub fn stderr_tail(label: &str, stderr: &str, max_lines: usize) -> String {
    if stderr.trim().is_empty() {
        return String::new();
    }
    format!("{label}:\n{}", indent(&tail(stderr, max_lines), 4))
}

/// Indents every line of `text` by `width` spaces.
pub fn indent(text: &str, width: usize) -> String {
    let pad = " ".repeat(width);
    text.lines()
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Quotes a word for a POSIX shell when it needs quoting.
pub fn shell_quote(word: &std::ffi::OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_escaped_like_rust_literals() {
        assert_eq!(bytes(b"Hello, world", 100), r#"b"Hello, world""#);
        assert_eq!(bytes("🐶".as_bytes(), 100), r#"b"\xf0\x9f\x90\xb6""#);
        assert_eq!(bytes(b"a\n\"", 100), r#"b"a\n\"""#);
    }

    #[test]
    fn unescaping_inverts_escape_ascii() {
        let all: Vec<u8> = (0..=255).collect();
        let text = all.escape_ascii().to_string();
        assert_eq!(unescape_ascii(&text), Some(all));
        assert_eq!(unescape_ascii(r"\u{1f436}"), None);
        assert_eq!(unescape_ascii(r"\x4"), None);
        assert_eq!(unescape_ascii("é"), None);
    }

    #[test]
    fn long_bytes_are_shortened() {
        let shown = bytes(&[b'x'; 1000], 30);
        assert!(shown.contains("970 bytes left out"), "{shown}");
        assert!(shown.ends_with("(1000 bytes in all)"));
    }

    #[test]
    fn sizes_read_like_a_person_says_them() {
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(12), "12 bytes");
        assert_eq!(size(64 * 1024), "64 KiB");
        assert_eq!(size(1024 * 1024 + 100 * 1024), "1.1 MiB");
        assert_eq!(size(2 << 30), "2 GiB");
        assert_eq!(size(64 * 1024 + 12), "64 KiB");
    }

    #[test]
    fn long_lines_are_shortened() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghij", 4), "abcd… (6 more characters)");
    }

    #[test]
    fn first_mismatch_finds_the_first_differing_byte_across_pages() {
        let a: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(first_mismatch(&a, &a), None);
        assert_eq!(first_mismatch(&a, &a[..100]), None, "only the common part");
        assert_eq!(first_mismatch(b"", &a), None);
        for at in [0, 1, 4095, 4096, 4097, 12_345, 19_999] {
            let mut b = a.clone();
            b[at] ^= 0xff;
            b[19_999] ^= 0x0f; // a later difference too
            assert_eq!(first_mismatch(&a, &b), Some(at), "{at}");
        }
    }

    #[test]
    fn first_difference_points_at_the_byte() {
        assert_eq!(first_difference(b"same", b"same"), None);
        let text = first_difference(b"Hello, world", b"Hello, w0rld").unwrap();
        assert!(text.starts_with("first difference at byte 8"), "{text}");
        let text = first_difference(b"Hello, world", b"Hello").unwrap();
        assert!(
            text.starts_with("first difference at byte 5 (expected 12 bytes in all, got 5)"),
            "{text}"
        );
    }
}
