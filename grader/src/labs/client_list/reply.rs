//! The reply: a JSON object keyed by name, read in the order it was sent,
//! the checks of one entry, of the pretty-printed layout, and the canonical
//! form the snapshots show.

use serde_json::Value;

use crate::harness::show;
use crate::outcome::Failure;

/// A JSON object's members in the order they came, duplicates kept:
/// `serde_json::Value` would sort them (unless serde_json's `preserve_order`
/// feature is on, as lab 6 turns it on) and merge duplicate keys, hiding the
/// very mistakes these checks look for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pairs(pub(super) Vec<(String, Value)>);

impl Pairs {
    /// Parses one JSON object (with [`json_members`], optimised code: a
    /// grade parses megabytes of replies).
    pub(super) fn parse(bytes: &[u8]) -> Result<Pairs, serde_json::Error> {
        json_members::parse(bytes).map(Pairs)
    }

    pub(super) fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }

    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

/// A name as the report shows it: JSON string syntax, so quotes, newlines
/// and spaces at either end are visible.
pub(super) fn quoted(name: &str) -> String {
    let text = Value::from(name).to_string();
    if text.len() > 80 {
        let cut = (0..=60)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}… ({} bytes)", &text[..cut], name.len())
    } else {
        text
    }
}

pub(super) fn quoted_list(names: &[&str], max: usize) -> String {
    let mut shown: Vec<String> = names.iter().take(max).map(|name| quoted(name)).collect();
    if names.len() > max {
        shown.push(format!("… ({} in all)", names.len()));
    }
    format!("[{}]", shown.join(", "))
}

/// What a reply that is not JSON at all comes down to, whichever name was
/// registered: JSON written by hand.
const NOT_JSON: &str = "Build the reply with serde_json (`serde_json::to_vec(&*clients)`), never with `format!`: JSON strings must escape `\"`, `\\`, newlines and control characters.";

/// What a reply that stops in the middle of its JSON comes down to.
const CUT_SHORT: &str = "The reply stopped in the middle of the JSON: write all of it (`write_all`, not one `write`), and shut the connection down only after it.";

/// What valid JSON of another shape than the list comes down to.
const NOT_THE_LIST: &str = "The reply is the whole list as one JSON object keyed by name, each value an entry {\"name\", \"address\", \"port\"}: serialise the `BTreeMap<String, Entry>` itself.";

/// What an entry of another shape than the contract's comes down to.
const ENTRY_SHAPE: &str = "Each entry is {\"name\": NAME, \"address\": \"IP\", \"port\": PORT}: derive `Serialize` on an `Entry` with `name: String`, `address: String` and `port: u16`, so that the address is a string and the port a number.";

/// Parses a reply: a JSON object whose members are entries
/// `{"name": NAME, "address": "IP", "port": PORT}` keyed by their name.
///
/// What is wrong with a reply is the same whichever name was registered,
/// so each failure carries its diagnosis: the checks it costs are explained
/// once. A name whose entry is listed under another name is the exception:
/// that may be one name's (escaping, trimming), which the check knows.
pub(super) fn parse_list(bytes: &[u8]) -> Result<Pairs, Failure> {
    let pairs = Pairs::parse(bytes).map_err(|err| {
        let failure = Failure::new("the reply is not a valid JSON object")
            .expected("{\"NAME\": {\"name\": \"NAME\", \"address\": \"127.0.0.1\", \"port\": 41234}, …}")
            .actual(show::bytes(bytes, 300))
            .detail(format!("the JSON parser says: {err}"))
            .detail(if err.is_syntax() && bytes.contains(&b'\n') {
                "a raw newline inside a JSON string is invalid: build the reply with serde_json, which escapes it as \\n"
            } else {
                ""
            });
        match err.classify() {
            serde_json::error::Category::Syntax => failure.diagnosis(NOT_JSON, "#json-with-serde"),
            serde_json::error::Category::Eof => {
                failure.diagnosis(CUT_SHORT, "#reading-a-reply-to-the-end")
            }
            serde_json::error::Category::Data => failure.diagnosis(NOT_THE_LIST, "#the-protocol"),
            serde_json::error::Category::Io => failure,
        }
    })?;
    for (name, entry) in &pairs.0 {
        entry_problem(name, entry).map_or(Ok(()), |problem| {
            let failure = Failure::new(format!(
                "the entry for {} is not as the contract says",
                quoted(name)
            ))
            .expected(format!(
                "{{\"name\": {}, \"address\": \"IP\" (a string), \"port\": PORT (a number)}}",
                quoted(name)
            ))
            .actual(show::bytes(entry.to_string().as_bytes(), 300));
            Err(match problem {
                EntryProblem::Shape(problem) => failure
                    .detail(problem)
                    .diagnosis(ENTRY_SHAPE, "#step-2-register-and-reply"),
                EntryProblem::OtherName(problem) => failure.detail(problem),
            })
        })?;
    }
    Ok(pairs)
}

/// What is wrong with one entry.
enum EntryProblem {
    /// Not an object, or a key missing or of the wrong type.
    Shape(String),
    /// Its `"name"` is not the name it is listed under.
    OtherName(String),
}

/// What is wrong with one entry, if anything.
fn entry_problem(name: &str, entry: &Value) -> Option<EntryProblem> {
    let Some(object) = entry.as_object() else {
        return Some(EntryProblem::Shape(
            "the value under a name must be a JSON object".into(),
        ));
    };
    match object.get("name") {
        Some(Value::String(inner)) if inner == name => {}
        Some(Value::String(inner)) => {
            return Some(EntryProblem::OtherName(format!(
                "its \"name\" is {}, not the name it is listed under",
                quoted(inner)
            )));
        }
        Some(other) => {
            return Some(EntryProblem::Shape(format!(
                "its \"name\" is {other}, not a string"
            )));
        }
        None => return Some(EntryProblem::Shape("it has no \"name\"".into())),
    }
    if !object.get("address").is_some_and(Value::is_string) {
        return Some(EntryProblem::Shape(
            "its \"address\" must be a string such as \"127.0.0.1\"".into(),
        ));
    }
    if object
        .get("port")
        .and_then(Value::as_u64)
        .is_none_or(|port| u16::try_from(port).is_err())
    {
        return Some(EntryProblem::Shape(
            "its \"port\" must be a number from 0 to 65535".into(),
        ));
    }
    None
}

/// The list as the snapshot shows it: four-space JSON, names in the order
/// printed, keys inside an entry sorted, port numbers redacted.
pub(super) fn canonical(list: &Pairs) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    // Sorted here, not by serde_json: with its `preserve_order` feature on
    // (lab 6 turns it on, and `cargo test --workspace` builds the grader
    // with the labs' features) a `Value` keeps the order it was parsed in.
    let ordered: Vec<(String, Value)> = list
        .0
        .iter()
        .map(|(name, entry)| {
            let mut entry = entry.clone();
            entry.sort_all_objects();
            (name.clone(), entry)
        })
        .collect();
    serde::Serializer::collect_map(&mut serializer, ordered).expect("serializing to memory");
    let text = String::from_utf8(out).expect("serde_json writes UTF-8");
    text.lines()
        .map(|line| match line.split_once("\"port\": ") {
            Some((head, rest)) => {
                let tail = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                format!("{head}\"port\": [PORT]{tail}")
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
/// What is wrong with the layout of pretty-printed `text`, if anything:
/// each line indented by four spaces per level of nesting, and one member
/// per line (as many lines as a pretty-printer makes for `value`).
pub(super) fn layout_problem(text: &str, value: &Pairs) -> Option<String> {
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
    for (number, line) in lines.iter().enumerate() {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.starts_with('\t') {
            return Some(format!(
                "line {} is indented with a tab: {}",
                number + 1,
                show::bytes(line.as_bytes(), 80)
            ));
        }
        let closing = content.starts_with('}') || content.starts_with(']');
        let want = 4 * depth.saturating_sub(usize::from(closing));
        if !in_string && indent != want {
            return Some(format!(
                "line {} is indented by {indent} spaces where four per level makes {want}: {}",
                number + 1,
                show::bytes(line.as_bytes(), 80)
            ));
        }
        for c in content.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (false, _, '"') => in_string = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    let mut pretty = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut pretty);
    serde::Serializer::collect_map(&mut serializer, value.0.clone()).ok()?;
    let want_lines = String::from_utf8_lossy(&pretty).lines().count();
    if lines.len() != want_lines {
        return Some(format!(
            "the output has {} lines where a pretty-printer puts each member on its own line, {want_lines} lines",
            lines.len()
        ));
    }
    None
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(text: &str) -> Pairs {
        Pairs::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn pairs_keep_order_and_duplicates() {
        let list = pairs(r#"{"b": 1, "a": 2, "b": 3}"#);
        assert_eq!(list.names(), ["b", "a", "b"]);
    }

    #[test]
    fn entries_are_checked() {
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": "127.0.0.1", "port": 5})
            )
            .is_none()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "y", "address": "127.0.0.1", "port": 5})
            )
            .is_some()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": "127.0.0.1", "port": "5"})
            )
            .is_some()
        );
        assert!(
            entry_problem(
                "x",
                &json!({"name": "x", "address": ["127.0.0.1"], "port": 5})
            )
            .is_some()
        );
    }

    #[test]
    fn four_space_layout_passes_and_others_fail() {
        let list = pairs(r#"{"a {": {"name": "a {", "port": 1}, "b": {"name": "b", "port": 2}}"#);
        let four = "{\n    \"a {\": {\n        \"name\": \"a {\",\n        \"port\": 1\n    },\n    \"b\": {\n        \"port\": 2,\n        \"name\": \"b\"\n    }\n}\n";
        assert_eq!(layout_problem(four, &list), None);
        let two = four.replace("    ", "  ");
        assert!(layout_problem(&two, &list).is_some());
        let compact = serde_json::to_string(&json!({"a": 1})).unwrap();
        assert!(layout_problem(&compact, &pairs(r#"{"a": {"name": "a"}}"#)).is_some());
    }

    #[test]
    fn canonical_redacts_ports() {
        let list = pairs(r#"{"a": {"port": 41234, "name": "a", "address": "127.0.0.1"}}"#);
        assert_eq!(
            canonical(&list),
            "{\n    \"a\": {\n        \"address\": \"127.0.0.1\",\n        \"name\": \"a\",\n        \"port\": [PORT]\n    }\n}"
        );
    }
}
