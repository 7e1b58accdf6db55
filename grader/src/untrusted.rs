//! Text a student controls, made safe for each place it is shown.
//!
//! A grade shows what a student's programs printed and what the student
//! named their folder, and either may hold anything: terminal control
//! sequences that retitle the window, clear the screen and draw a fake pass
//! line; a spreadsheet formula; bytes that are not UTF-8; a name longer
//! than a file name may be. Every writer passes such text through this
//! module, one function per sink, so that every output stays the grader's
//! own:
//!
//! | sink | function | what it does |
//! |---|---|---|
//! | a program's output, as text | [`decode`] | valid UTF-8 as it is, each invalid byte as `\xff` |
//! | a folder name, as text | [`name`] | lossless: `\` as `\\`, invalid bytes and controls escaped; [`name_bytes`] reverses it |
//! | the terminal | [`terminal`] | controls shown escaped (`\x1b`, `\u{9b}`), newline and tab kept |
//! | a CSV cell | [`csv_cell`] | controls escaped, a formula made text by a leading `'`, quoted when needed |
//! | HTML and XML | [`markup`] | markup as entities, controls shown escaped |
//! | JSON | [`json`] | the few characters serde leaves raw that a terminal obeys, as `\u` escapes |
//! | a file name | [`file_stem`] | a short readable prefix and a hash: bounded, and one per name |
//!
//! The escapes are one notation everywhere, Rust's: `\xNN` for a byte
//! below 0x80 (a C0 control, DEL) or one that is not UTF-8, `\u{N}` for a
//! character above (a C1 control, a bidirectional override).

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether a terminal could obey `c` rather than show it: a C0 control
/// (ESC starts every escape sequence; BS and CR overwrite what is shown)
/// other than newline and tab, DEL, a C1 control (U+009B is CSI on its
/// own), a bidirectional control or mark, which reorders what follows it on
/// the line, or a line or paragraph separator, which some break the line at.
fn obeyed(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{200e}' | '\u{200f}' | '\u{61c}' | '\u{2028}' | '\u{2029}' => true,
        _ => false,
    }
}

/// `c` in the escape notation: `\x1b`, `\u{9b}`.
fn push_escaped(out: &mut String, c: char) {
    if c.is_ascii() {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// Text for the terminal: every character a terminal would obey instead of
/// show (a C0 control but newline and tab, DEL, a C1 control, a
/// bidirectional control) is shown escaped, `\x1b[2J` for the bytes
/// ESC [ 2 J; newline and tab are kept, so that output keeps its lines. Escaping ESC
/// and CSI leaves every escape sequence (CSI, OSC, DCS …) plain text.
/// Invalid UTF-8 cannot reach a `str`: [`decode`] made it `\xff` already.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(obeyed) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if obeyed(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A program's output as text: valid UTF-8 as it is, each byte that is not
/// part of valid UTF-8 as `\xNN` (where a lossy decoding would make both
/// `\xff` and `\xfe` the same `�`). Controls stay: each sink escapes them
/// its own way, and JSON keeps them exact. A backslash the program printed
/// stays one backslash: this is for reading, not for reversing.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A folder name as text, losslessly, in one notation for the CSV, JSON,
/// the pages and the terminal: printable UTF-8 as it is; a backslash as
/// `\\`; each byte that is not UTF-8 as `\xNN` (`bob\xff`); a control,
/// newline and tab included, as `\xNN` or `\u{N}` (a name is one line, and
/// a CSV read with `cat` must not obey it). [`name_bytes`] is its inverse.
pub fn name(raw: &OsStr) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' | '\t' => push_escaped(&mut out, c),
                c if obeyed(c) => push_escaped(&mut out, c),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// The raw name that [`name`] made `text` from: `\\` is a backslash, `\xNN`
/// the byte NN, `\u{N}` the character N; `None` when `text` is not in that
/// notation.
pub fn name_bytes(text: &str) -> Option<OsString> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut utf8 = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => bytes.push(b'\\'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                bytes.push(
                    u8::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 2)?,
                );
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut utf8 = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
            _ => return None,
        }
    }
    Some(OsString::from_vec(bytes))
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP's
/// "CSV injection"), and `'` itself, so that the inverse, removing one
/// leading `'`, is exact.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// A CSV cell: controls shown escaped as on the terminal; a cell that
/// begins with `=`, `+`, `-`, `@`, tab, carriage return or `'` gets a
/// leading `'`, so that Excel, LibreOffice and Google Sheets show it as
/// text rather than evaluate it (quoting does not stop them); then quoted
/// when it holds a comma, a quote or a line break. To recover the text,
/// remove one leading `'` when there is one.
pub fn csv_cell(text: &str) -> String {
    let mut cell = terminal(text).into_owned();
    if cell.starts_with(FORMULA_STARTS) {
        cell.insert(0, '\'');
    }
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// Text for HTML, SVG or XML, in an element or an attribute: markup as
/// entities; controls, bidirectional overrides and the noncharacters
/// U+FFFE and U+FFFF shown escaped (XML 1.0 cannot carry most of them at
/// all, and a page has no use for them). Newline and tab are kept.
pub fn markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{fffe}' | '\u{ffff}' => push_escaped(&mut out, c),
            c if obeyed(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Serialized JSON that a terminal shows rather than obeys: serde escapes
/// the C0 controls already, and this writes DEL, the C1 controls and the
/// bidirectional overrides as `\u` escapes too. Those characters can only
/// stand inside strings, where the escape means exactly the same
/// character: the JSON's value does not change.
pub fn json(serialized: String) -> String {
    if !serialized.chars().any(obeyed) {
        return serialized;
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        // `obeyed` only keeps a raw newline or tab, which serde never
        // writes inside a string.
        if obeyed(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The most bytes of a name that a file name keeps, before its hash.
pub const FILE_PREFIX_MAX: usize = 60;

/// FNV-1a, 64 bits: a small, stable hash (the same on every machine and
/// in every version, unlike `std`'s hashers), enough to tell names apart.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// A file name's stem for `name` (a [`name`] text, or any text): its
/// letters, digits, `-`, `.` and `_` up to [`FILE_PREFIX_MAX`] bytes, every
/// other run of characters as one `_`, then `-` and 8 hex digits of the
/// hash of the whole name: `bob_xff-1c2d3e4f`. Readable, at most 69 bytes
/// whatever the name, and different names get different stems (but for a
/// hash collision, which [`unique_file_stems`] settles).
pub fn file_stem(name: &str) -> String {
    let mut prefix = String::new();
    for c in name.chars() {
        if prefix.len() == FILE_PREFIX_MAX {
            break;
        }
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
            prefix.push(c);
        } else if !prefix.ends_with('_') {
            prefix.push('_');
        }
    }
    // No hidden file, no option-like name, no stray `_` at either end.
    let prefix = prefix.trim_matches(['_', '.', '-']);
    let hash = fnv1a_64(name.as_bytes());
    let short = (hash ^ (hash >> 32)) as u32;
    if prefix.is_empty() {
        format!("{short:08x}")
    } else {
        format!("{prefix}-{short:08x}")
    }
}

/// The [`file_stem`] of each name, made distinct: should two names' stems
/// ever collide, the later one gets `-2` (`-3`, …). `names` must be
/// distinct, as folder names are.
pub fn unique_file_stems<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut taken = HashSet::new();
    names
        .into_iter()
        .map(|name| {
            let stem = file_stem(name);
            let mut unique = stem.clone();
            let mut count = 1;
            while !taken.insert(unique.clone()) {
                count += 1;
                unique = format!("{stem}-{count}");
            }
            unique
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every control sequence the issue tried, and the 8-bit CSI.
    const HOSTILE: &str = "\x1b]0;title\x1b\\\x1b[2J\x1b[H\x1b[1;32m✓ 42/42\x1b[0m\
        \x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\\x1b[8m\u{9b}31m\u{7}\u{8}\r\u{7f}\u{202e}";

    #[test]
    fn the_terminal_sees_no_control_but_newline_and_tab() {
        let shown = terminal(HOSTILE);
        assert!(!shown.chars().any(obeyed), "{shown}");
        assert!(shown.starts_with("\\x1b]0;title\\x1b\\\\x1b[2J"), "{shown}");
        assert!(shown.contains("\\u{9b}31m"), "{shown}");
        assert!(shown.ends_with("\\x07\\x08\\x0d\\x7f\\u{202e}"), "{shown}");
        // The marks and separators that reorder or break a line, too.
        assert_eq!(
            terminal("a\u{200e}b\u{200f}c\u{61c}d\u{2028}e\u{2029}f"),
            "a\\u{200e}b\\u{200f}c\\u{61c}d\\u{2028}e\\u{2029}f"
        );
        assert_eq!(terminal("line\n\tindented ✓"), "line\n\tindented ✓");
        assert!(matches!(terminal("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn output_keeps_each_invalid_byte_visible() {
        assert_eq!(decode(b"bob\xff"), "bob\\xff");
        assert_ne!(decode(b"bob\xff"), decode(b"bob\xfe"));
        assert_eq!(decode("é\u{9b}".as_bytes()), "é\u{9b}");
        // A truncated sequence is its bytes, then the text goes on.
        assert_eq!(decode(b"a\xe2\x9cb"), "a\\xe2\\x9cb");
    }

    #[test]
    fn a_name_as_text_is_one_line_and_reversible() {
        let names: [&[u8]; 8] = [
            b"alice",
            b"bob\xff",
            b"bob\xfe",
            b"back\\slash\\xff",
            b"mallory\n\x1b[1;32mALL STUDENTS 42/42",
            "csi\u{9b}2J and é".as_bytes(),
            b"=HYPERLINK(\"x\",\"grade 42/42\")",
            b"tab\there",
        ];
        let mut seen = HashSet::new();
        for raw in names {
            let raw = OsStr::from_bytes(raw);
            let text = name(raw);
            assert!(!text.chars().any(|c| obeyed(c) || c == '\n'), "{text}");
            assert_eq!(name_bytes(&text).as_deref(), Some(raw), "{text}");
            assert!(seen.insert(text));
        }
        assert_eq!(name(OsStr::from_bytes(b"bob\xff")), "bob\\xff");
        assert_eq!(name(OsStr::new("a\\b")), "a\\\\b");
        assert_eq!(
            name(OsStr::new("mallory\n\x1b[1;32mALL")),
            "mallory\\x0a\\x1b[1;32mALL"
        );
        assert_eq!(name_bytes("bad\\q"), None);
        assert_eq!(name_bytes("bad\\x4"), None);
    }

    #[test]
    fn a_formula_becomes_text_and_the_inverse_is_one_quote() {
        for (text, cell) in [
            (
                "=HYPERLINK(\"x\",\"grade 42/42\")",
                "\"'=HYPERLINK(\"\"x\"\",\"\"grade 42/42\"\")\"",
            ),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("\tx", "'\tx"),
            ("'quoted", "''quoted"),
            ("alice", "alice"),
            ("a, b", "\"a, b\""),
            ("esc\x1b[2J", "esc\\x1b[2J"),
        ] {
            assert_eq!(csv_cell(text), cell, "{text:?}");
        }
    }

    #[test]
    fn markup_escapes_entities_and_shows_controls() {
        assert_eq!(markup("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(markup("bell\u{7}"), "bell\\x07");
        assert_eq!(markup("]]>\u{fffe}"), "]]&gt;\\u{fffe}");
        assert_eq!(markup("🐶\n\t"), "🐶\n\t");
        assert!(!markup(HOSTILE).chars().any(obeyed));
    }

    #[test]
    fn json_keeps_its_value_and_loses_what_a_terminal_obeys() {
        let value = serde_json::json!({ "out": HOSTILE });
        let safe = json(serde_json::to_string(&value).unwrap());
        assert!(!safe.chars().any(obeyed), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn file_stems_are_short_readable_and_distinct() {
        let long = "x".repeat(245);
        let names = [
            "alice",
            "bob\\xff",
            "bob\\xfe",
            long.as_str(),
            "=HYPERLINK(\"x\",\"grade 42/42\")",
            "@SUM(1+1)",
            "..",
            "",
        ];
        let stems = unique_file_stems(names);
        assert_eq!(stems.iter().collect::<HashSet<_>>().len(), names.len());
        for stem in &stems {
            assert!(stem.len() <= FILE_PREFIX_MAX + 9, "{stem}");
            assert!(!stem.starts_with(['.', '-']), "{stem}");
            assert!(
                stem.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
                "{stem}"
            );
        }
        assert!(stems[0].starts_with("alice-"), "{}", stems[0]);
        assert!(
            stems[4].starts_with("HYPERLINK_x_grade_42_42-"),
            "{}",
            stems[4]
        );
        assert_eq!(file_stem("alice"), stems[0], "stable");
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn colliding_stems_are_told_apart() {
        assert_eq!(
            unique_file_stems(["a", "a"]),
            [file_stem("a"), format!("{}-2", file_stem("a"))]
        );
    }
}
