//! Judging the framing check's calls: whether an answer of the driver is
//! what the contract says ([`judge`]), and both shown as a student reads
//! them, as Rust values rather than JSON.

use serde_json::{Value, json};

use super::REQUIRED_KEYS;
use super::framing_cases::Expect;
use super::protocol::{self, Parsed};
use crate::harness::show;

/// Whether `answer` (a line the driver wrote) is what `expect` says: `Ok`,
/// or what was expected and what came, as a student reads them.
pub(super) fn judge(expect: &Expect, answer: &Value) -> Result<(), (String, String)> {
    let fits = match expect {
        Expect::Ok(value) => answer.get("ok") == Some(value),
        Expect::Err { kind, field } => {
            let error = &answer["err"];
            error["kind"] == json!(kind)
                && field
                    .as_ref()
                    .is_none_or(|(name, value)| &error[*name] == value)
        }
        Expect::Encoded { header, content } => {
            return judge_encoded(header, content, answer);
        }
        Expect::AnyErr { .. } => answer.get("err").is_some(),
    };
    if fits {
        Ok(())
    } else {
        Err((shown_expected(expect), shown_answer(answer)))
    }
}

/// Reads the bytes `encode` returned with the grader's own decoder.
fn judge_encoded(header: &Value, content: &[u8], answer: &Value) -> Result<(), (String, String)> {
    let expected = shown_expected(&Expect::Encoded {
        header: Value::Null,
        content: Vec::new(),
    });
    let Some(bytes) = answer.get("ok").and_then(bytes_of) else {
        return Err((expected, shown_answer(answer)));
    };
    let wrong = |why: String| {
        Err((
            expected.clone(),
            format!("Ok({}): {why}", show::bytes(&bytes, 160)),
        ))
    };
    match protocol::parse_message(&bytes) {
        Parsed::Complete(received) => {
            let mut differ = REQUIRED_KEYS
                .iter()
                .filter(|key| received.header.get(**key) != header.get(**key));
            if let Some(key) = differ.next() {
                return wrong(format!(
                    "its JSON header's \"{key}\" is {}, not {}",
                    received.header.get(*key).unwrap_or(&Value::Null),
                    header[*key]
                ));
            }
            if received.content != content {
                return wrong(format!(
                    "its content is {}",
                    show::bytes(&received.content, 80)
                ));
            }
            if received.end != bytes.len() {
                return wrong(format!(
                    "{} bytes follow the message",
                    bytes.len() - received.end
                ));
            }
            Ok(())
        }
        Parsed::Incomplete(why) => wrong(format!("not a whole message: {why}")),
        Parsed::Invalid(why) => wrong(format!("not a valid message: {why}")),
    }
}

fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    value
        .as_array()?
        .iter()
        .map(|byte| byte.as_u64().and_then(|byte| u8::try_from(byte).ok()))
        .collect()
}

/// What `expect` says, as a student reads it.
pub(super) fn shown_expected(expect: &Expect) -> String {
    match expect {
        Expect::Ok(value) => shown_answer(&json!({"ok": value})),
        Expect::Err { kind, field } => match (kind, field) {
            (&"EmptyHeader", _) => "Err(FrameError::EmptyHeader)".into(),
            (kind, Some((_, value))) => format!("Err(FrameError::{kind}({value}))"),
            (&"BadKey", None) => "Err(FrameError::BadKey { key: \"content-length\", .. })".into(),
            (kind, None) => format!("Err(FrameError::{kind}(…)), in your own words"),
        },
        Expect::Encoded { .. } => "Ok(bytes): the JSON header's length as 2 big-endian bytes, a JSON header with the message's four values (key order and spacing are yours), then its content".into(),
        Expect::AnyErr { why } => format!("Err(FrameError::…), of your choice: {why}"),
    }
}

/// An answer of the driver as a student reads it: Rust values, not JSON.
pub(super) fn shown_answer(answer: &Value) -> String {
    if let Some(panic) = answer.get("panic").and_then(Value::as_str) {
        return format!("panicked: {}", show::shorten(panic, 300));
    }
    if let Some(error) = answer.get("err") {
        let kind = error["kind"].as_str().unwrap_or("?");
        let detail = match kind {
            "EmptyHeader" => String::new(),
            "MissingKey" => format!("({})", error["key"]),
            "TooLarge" => format!("({})", error["length"]),
            "BadKey" => format!(
                " {{ key: {}, expected: {} }}",
                error["key"], error["expected"]
            ),
            _ => format!("({})", error["why"]),
        };
        return format!("Err(FrameError::{kind}{detail})");
    }
    let Some(value) = answer.get("ok") else {
        return format!("not an answer: {}", show::shorten(&answer.to_string(), 200));
    };
    let inner = match value {
        Value::Null => return "Ok(None) (incomplete: read more)".into(),
        Value::Array(_) => {
            bytes_of(value).map_or_else(|| value.to_string(), |b| show::bytes(&b, 160))
        }
        Value::Object(object) => {
            if let Some(message) = object.get("message") {
                format!(
                    "Some((Message {{ header: {}, content: {} }}, {}))",
                    message["header"],
                    bytes_of(&message["content"])
                        .map_or_else(|| message["content"].to_string(), |b| show::bytes(&b, 80)),
                    object["consumed"]
                )
            } else if let (Some(header), Some(range)) =
                (object.get("header"), object.get("content"))
            {
                format!(
                    "Some(Frame {{ header: {header}, content: {}..{} }})",
                    range[0], range[1]
                )
            } else if let Some(request) = object.get("json") {
                format!(
                    "Request::Json {{ action: {}, value: {}, .. }}",
                    request["action"], request["value"]
                )
            } else if let Some(request) = object.get("binary") {
                format!(
                    "Request::Binary {{ content_type: {}, content: {} }}",
                    request["content-type"],
                    bytes_of(&request["content"])
                        .map_or_else(|| request["content"].to_string(), |b| show::bytes(&b, 80))
                )
            } else {
                value.to_string()
            }
        }
        other => other.to_string(),
    };
    format!("Ok({})", show::shorten(&inner, 400))
}
