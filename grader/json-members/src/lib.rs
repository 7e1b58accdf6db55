//! A JSON object's members in the order they came, duplicates kept.
//!
//! `serde_json::Value` would sort an object's members (unless serde_json's
//! `preserve_order` feature is on) and merge duplicate keys, hiding the very
//! mistakes a grader looks for: a list out of order, a name listed twice.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// Parses `bytes` as one JSON object: its members, in order, duplicates
/// kept. Anything else (not JSON, JSON of another shape, bytes after the
/// object) is serde_json's error.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, Value)>, serde_json::Error> {
    serde_json::from_slice::<Members>(bytes).map(|members| members.0)
}

struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object keyed by client name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_order_and_duplicates() {
        let members = parse(br#"{"b": 1, "a": {"x": [2]}, "b": 3}"#).unwrap();
        let keys: Vec<&str> = members.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b"]);
        assert_eq!(members[1].1, serde_json::json!({"x": [2]}));
    }

    #[test]
    fn anything_but_one_object_is_an_error() {
        assert!(parse(b"[1, 2]").unwrap_err().is_data());
        assert!(parse(b"{\"a\": 1").unwrap_err().is_eof());
        assert!(parse(b"{\"a\": 1} {}").unwrap_err().is_syntax());
        assert!(parse(b"{\"a\": \"\xff\"}").unwrap_err().is_syntax());
    }
}
