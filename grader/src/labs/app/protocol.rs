//! The protocol, grader side: the encoder that builds requests (well-formed
//! or broken on purpose), the decoder that reads a message by its framing, the
//! reference answers of the contract, and `judge`, which checks a response
//! against them.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::harness::net::conn::Conn;
use crate::harness::net::{self, ReadEnd};
use crate::harness::show;
use crate::outcome::Failure;

use super::{CLIENT_BINARY_TYPE, MAX_CONTENT_LENGTH, REQUIRED_KEYS, SERVER_BINARY_TYPE, TABLE};

/// Frames `header` (sent exactly as given) and `content`.
pub(super) fn frame_raw(header: &str, content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(header.len()).expect("the grader's headers are short");
    let mut bytes = len.to_be_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(content);
    bytes
}

/// A JSON header for `content`.
pub(super) fn header_for(content_type: &str, encoding: &str, content: &[u8]) -> Value {
    json!({
        "byteorder": "little",
        "content-type": content_type,
        "content-encoding": encoding,
        "content-length": content.len(),
    })
}

pub(super) fn frame(header: &Value, content: &[u8]) -> Vec<u8> {
    frame_raw(&header.to_string(), content)
}

/// The content of a JSON request.
pub(super) fn request_content(action: &str, value: &str) -> Vec<u8> {
    json!({"action": action, "value": value})
        .to_string()
        .into_bytes()
}

/// A whole `text/json` request.
pub(super) fn json_request(action: &str, value: &str) -> Vec<u8> {
    let content = request_content(action, value);
    frame(&header_for("text/json", "utf-8", &content), &content)
}

/// A whole binary request.
pub(super) fn binary_request_bytes(content: &[u8]) -> Vec<u8> {
    frame(&header_for(CLIENT_BINARY_TYPE, "binary", content), content)
}

/// A message read off the wire.
#[derive(Debug)]
pub(super) struct Received {
    pub(super) header: Map<String, Value>,
    pub(super) content: Vec<u8>,
    /// Where the message ended in the bytes read.
    pub(super) end: usize,
}

/// How far some bytes are into a message.
#[derive(Debug)]
pub(super) enum Parsed {
    /// Not a whole message yet.
    Incomplete(String),
    /// A whole message.
    Complete(Received),
    /// Bytes that can never become a valid message.
    Invalid(String),
}

/// Parses the message at the start of `bytes` as the contract defines it.
pub(super) fn parse_message(bytes: &[u8]) -> Parsed {
    let Some(&[high, low]) = bytes.get(..2) else {
        return Parsed::Incomplete(format!(
            "{} of the 2 bytes of the header length",
            bytes.len()
        ));
    };
    let header_len = usize::from(u16::from_be_bytes([high, low]));
    if header_len == 0 {
        return Parsed::Invalid("the JSON header length is 0".into());
    }
    let header_end = 2 + header_len;
    let Some(header_bytes) = bytes.get(2..header_end) else {
        return Parsed::Incomplete(format!(
            "the 2-byte length announced a JSON header of {header_len} bytes; only {} arrived",
            bytes.len() - 2
        ));
    };
    let header = match serde_json::from_slice::<Value>(header_bytes) {
        Ok(Value::Object(header)) => header,
        Ok(_) => return Parsed::Invalid("the JSON header is not a JSON object".into()),
        Err(err) => {
            return Parsed::Invalid(format!(
                "the JSON header is not valid UTF-8 JSON ({err}): {}",
                show::bytes(header_bytes, 200)
            ));
        }
    };
    if let Some(key) = REQUIRED_KEYS.iter().find(|key| !header.contains_key(**key)) {
        return Parsed::Invalid(format!(
            "the JSON header has no \"{key}\" key: {}",
            Value::Object(header.clone())
        ));
    }
    let Some(length) = header["content-length"].as_u64() else {
        return Parsed::Invalid(format!(
            "the JSON header's content-length is not a whole number: {}",
            header["content-length"]
        ));
    };
    if length > MAX_CONTENT_LENGTH {
        return Parsed::Invalid(format!(
            "content-length {length} is above the limit of 1 MiB"
        ));
    }
    let end = header_end + length as usize;
    let Some(content) = bytes.get(header_end..end) else {
        return Parsed::Incomplete(format!(
            "the JSON header announced {length} bytes of content; only {} arrived",
            bytes.len() - header_end
        ));
    };
    Parsed::Complete(Received {
        content: content.to_vec(),
        header,
        end,
    })
}

/// What teaches a length in the wrong byte order.
pub(super) const BYTE_ORDER_HINT: &str = "The 2-byte length is big-endian (network byte order) on every machine: write it with `u16::to_be_bytes` and read it with `u16::from_be_bytes`. The JSON header's `byteorder` key does not change it.";

/// A message framed with its length little-endian: the two length bytes
/// of `bytes`, reversed, are the length of the JSON object that follows,
/// which they are not in network order. The lengths `(announced,
/// reversed)`, or `None` when the bytes show no such thing.
pub(super) fn reversed_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let &[high, low] = bytes.first_chunk::<2>()?;
    let announced = usize::from(u16::from_be_bytes([high, low]));
    let reversed = usize::from(u16::from_le_bytes([high, low]));
    if reversed == announced || reversed == 0 {
        return None;
    }
    json_object_at(bytes, 2, reversed).then_some((announced, reversed))
}

/// Whether the `length` bytes of `bytes` from `start` are one JSON object:
/// the JSON header a length prefix read some other way frames.
fn json_object_at(bytes: &[u8], start: usize, length: usize) -> bool {
    start
        .checked_add(length)
        .and_then(|end| bytes.get(start..end))
        .is_some_and(|header| {
            matches!(
                serde_json::from_slice::<Value>(header),
                Ok(Value::Object(_))
            )
        })
}

/// What teaches a binary answer that went through a lossy `String`.
const LOSSY_BINARY_ANSWER: &str = "The binary answer is bytes: the request's first 10 bytes as they came, even when they cut a character in half or are not UTF-8 at all. Build it as a `Vec<u8>` (`extend_from_slice(&content[..content.len().min(10)])`); `String::from_utf8_lossy` and `format!` turn such bytes into U+FFFD (EF BF BD).";

/// What teaches a length prefix wider than two bytes.
const LENGTH_WIDTH_HINT: &str = "The length prefix is exactly 2 bytes, a `u16` in network byte order: convert the JSON header's length with `u16::try_from(header.len())` (an error when it does not fit) and write its `to_be_bytes()`. A `usize` or `u32` writes 8 or 4 bytes, and the receiver reads the first 2 of them as the length.";

/// A message framed with a length prefix of 4 or 8 bytes (a `u32`, a
/// `usize`) instead of 2: those bytes, read in either byte order, are the
/// length of the JSON object that follows them. The prefix's width, or
/// `None` when the bytes show no such thing.
pub(super) fn wide_length(bytes: &[u8]) -> Option<usize> {
    [4, 8].into_iter().find(|&width| {
        let Some(prefix) = bytes.get(..width) else {
            return false;
        };
        let big = prefix.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
        let little = prefix
            .iter()
            .rev()
            .fold(0u64, |n, &b| n << 8 | u64::from(b));
        [big, little].into_iter().any(|length| {
            usize::try_from(length)
                .is_ok_and(|length| length > 0 && json_object_at(bytes, width, length))
        })
    })
}

/// `failure`, about a message the `sender` framed (`bytes`), sent to the
/// network-byte-order section when its length is little-endian, and to
/// step 1 when its length prefix is wider than 2 bytes.
pub(super) fn byte_order_evidence(failure: Failure, bytes: &[u8], sender: &str) -> Failure {
    if let Some(width) = wide_length(bytes) {
        return failure
            .detail(format!(
                "the {sender}'s message starts with a {width}-byte length, {}, and the JSON \
                 header follows it: the length was written as a {}-bit number, not as the \
                 2-byte u16 the contract says",
                show::bytes(&bytes[..width], 40),
                width * 8
            ))
            .diagnosis(LENGTH_WIDTH_HINT, "#step-1-encode-a-message");
    }
    match reversed_length(bytes) {
        Some((announced, reversed)) => failure
            .detail(format!(
                "the {sender}'s 2-byte length {} reads {announced} in network byte order \
                 (big-endian), but the JSON header that follows it is {reversed} bytes long: \
                 the two bytes reversed, so the {sender} wrote the length little-endian",
                show::bytes(&bytes[..2], 20)
            ))
            .diagnosis(BYTE_ORDER_HINT, "#network-byte-order"),
        None => failure,
    }
}

fn is_complete_or_invalid(bytes: &[u8]) -> bool {
    !matches!(parse_message(bytes), Parsed::Incomplete(_))
}

/// What the reference server answers to a request: `None` for bad input
/// (it would log an error and close).
pub(super) fn reference_answer(request: &Received) -> Option<Vec<u8>> {
    let content_type = request.header["content-type"].as_str()?;
    if content_type != "text/json" {
        let mut answer = b"First 10 bytes of request: ".to_vec();
        answer.extend_from_slice(&request.content[..request.content.len().min(10)]);
        return Some(frame(
            &header_for(SERVER_BINARY_TYPE, "binary", &answer),
            &answer,
        ));
    }
    let object: Map<String, Value> = serde_json::from_slice(&request.content).ok()?;
    let action = object.get("action")?.as_str()?;
    let value = object.get("value")?.as_str()?;
    let content = json!({"result": expected_result(action, value)})
        .to_string()
        .into_bytes();
    Some(frame(&header_for("text/json", "utf-8", &content), &content))
}

/// The `result` the contract gives for `action` and `value`.
pub(super) fn expected_result(action: &str, value: &str) -> String {
    if action != "search" {
        return format!("Error: invalid action \"{action}\".");
    }
    TABLE.iter().find(|(key, _)| *key == value).map_or_else(
        || format!("No match for \"{value}\"."),
        |(_, answer)| (*answer).into(),
    )
}

/// What a response must be.
#[derive(Debug, Clone)]
pub(super) enum Expected {
    /// `text/json`, `utf-8`, content `{"result": …}`.
    Result(String),
    /// The server's binary type, encoding `binary`, these bytes.
    Binary(Vec<u8>),
}

impl Expected {
    pub(super) fn for_search(action: &str, value: &str) -> Self {
        Expected::Result(expected_result(action, value))
    }

    pub(super) fn for_binary(content: &[u8]) -> Self {
        let mut answer = b"First 10 bytes of request: ".to_vec();
        answer.extend_from_slice(&content[..content.len().min(10)]);
        Expected::Binary(answer)
    }

    fn describe(&self) -> String {
        match self {
            Expected::Result(result) => format!(
                "a text/json response in utf-8 with content {}",
                json!({ "result": result })
            ),
            Expected::Binary(bytes) => format!(
                "a {SERVER_BINARY_TYPE} response, encoding binary, content {}",
                show::bytes(bytes, 120)
            ),
        }
    }
}

/// How a wait for the response ended, in words.
pub(super) fn ending(end: &ReadEnd) -> String {
    match end {
        ReadEnd::Eof => "the server closed the connection".into(),
        ReadEnd::Enough => "the grader stopped reading".into(),
        ReadEnd::Deadline => "nothing more arrived before the time limit".into(),
        ReadEnd::Stalled(_) => "nothing more arrived: the server sat idle, asleep".into(),
        ReadEnd::Error(_) => "the connection failed (reset by the server?)".into(),
        ReadEnd::TooMuch(too_much) => format!("{too_much}, and the grader stopped reading"),
    }
}

/// Checks a response against what the contract expects: framing, every
/// header key, content-length agreeing with the bytes sent, and the content.
pub(super) fn judge(received: &[u8], end: &ReadEnd, expected: &Expected) -> Result<(), Failure> {
    if let ReadEnd::TooMuch(too_much) = end {
        return Err(Failure::from(too_much.clone())
            .expected(expected.describe())
            .actual(show::bytes(received, 300)));
    }
    let message = match parse_message(received) {
        Parsed::Complete(message) => message,
        Parsed::Incomplete(why) => {
            let summary = if received.is_empty() {
                format!("no response: {}", ending(end))
            } else {
                format!("the response is incomplete ({why}), then {}", ending(end))
            };
            return Err(byte_order_evidence(
                Failure::new(summary)
                    .expected(expected.describe())
                    .actual(show::bytes(received, 300)),
                received,
                "server",
            ));
        }
        Parsed::Invalid(why) => {
            return Err(byte_order_evidence(
                Failure::new(format!("the response is not a valid message: {why}"))
                    .expected(expected.describe())
                    .actual(show::bytes(received, 300)),
                received,
                "server",
            ));
        }
    };
    let header = Value::Object(message.header.clone());
    let bad_header = |what: String| {
        Err(
            Failure::new(format!("the response's JSON header is wrong: {what}"))
                .expected(expected.describe())
                .actual(format!(
                    "header {header}, content {}",
                    show::bytes(&message.content, 200)
                )),
        )
    };
    if !matches!(header["byteorder"].as_str(), Some("little" | "big")) {
        return bad_header(format!(
            "\"byteorder\" is {}, not \"little\" or \"big\"",
            header["byteorder"]
        ));
    }
    if received.len() > message.end {
        let failure = Failure::new(format!(
            "content-length says {} bytes, but {} more bytes followed them",
            message.content.len(),
            received.len() - message.end
        ))
        .expected("content-length equal to the number of content bytes (bytes, not characters)")
        .actual(show::bytes(received, 300));
        // The whole content, from the JSON header to the close: when its
        // characters are exactly as many as content-length says, the length
        // counted characters, not bytes.
        let content = &received[message.end - message.content.len()..];
        let characters = std::str::from_utf8(content).map(|text| text.chars().count());
        return Err(match characters {
            Ok(count) if count == message.content.len() && count < content.len() => failure
                .detail(format!(
                    "the content is {} bytes of UTF-8, {count} characters: content-length counted characters",
                    content.len()
                ))
                .diagnosis(
                    "content-length counts bytes, not characters: encode the content first, then take the length of the bytes you send (`String::len()` counts bytes; `chars().count()` does not).",
                    "#text-bytes-and-content-length",
                ),
            _ => failure,
        });
    }
    let (content_type, encoding) = (
        header["content-type"].as_str().unwrap_or_default(),
        header["content-encoding"].as_str().unwrap_or_default(),
    );
    match expected {
        Expected::Result(result) => {
            if content_type != "text/json" || !encoding.eq_ignore_ascii_case("utf-8") {
                return bad_header(format!(
                    "content-type {} and content-encoding {} (expected \"text/json\" and \"utf-8\")",
                    header["content-type"], header["content-encoding"]
                ));
            }
            let want = json!({ "result": result });
            match serde_json::from_slice::<Value>(&message.content) {
                Ok(got) if got == want => Ok(()),
                Ok(got) => Err(Failure::new("the response has the wrong result")
                    .expected(want.to_string())
                    .actual(got.to_string())),
                Err(err) => Err(Failure::new(format!(
                    "the response's content is not UTF-8 JSON ({err}); if it looks cut short, content-length may count characters instead of bytes"
                ))
                .expected(want.to_string())
                .actual(show::bytes(&message.content, 300))),
            }
        }
        Expected::Binary(bytes) => {
            if content_type != SERVER_BINARY_TYPE || encoding != "binary" {
                return bad_header(format!(
                    "content-type {} and content-encoding {} (expected \"{SERVER_BINARY_TYPE}\" and \"binary\")",
                    header["content-type"], header["content-encoding"]
                ));
            }
            match show::first_difference(bytes, &message.content) {
                None => Ok(()),
                Some(difference) => {
                    let failure = Failure::new("the response has the wrong content")
                        .expected(show::bytes(bytes, 200))
                        .actual(show::bytes(&message.content, 200))
                        .detail(difference);
                    // U+FFFD where the request had bytes that are not
                    // UTF-8: the answer went through a lossy String.
                    Err(
                        if show::holds_replacement(&message.content)
                            && !show::holds_replacement(bytes)
                        {
                            failure.diagnosis(LOSSY_BINARY_ANSWER, "#the-application")
                        } else {
                            failure
                        },
                    )
                }
            }
        }
    }
}

/// Reads one response off `stream`: until it is complete (or can never be),
/// the server closes, or `deadline`.
pub(super) fn read_response(stream: &Conn, deadline: Instant) -> (Vec<u8>, ReadEnd) {
    net::read_until_done(stream, deadline, is_complete_or_invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_written_little_endian_is_the_real_one_reversed() {
        let request = json_request("search", "morpheus");
        let header_len = request.len() - 2 - request_content("search", "morpheus").len();
        // In network order, as the contract says: nothing reversed.
        assert_eq!(reversed_length(&request), None);
        let mut little = request.clone();
        little.swap(0, 1);
        let announced = usize::from(u16::from_be_bytes([little[0], little[1]]));
        assert_eq!(reversed_length(&little), Some((announced, header_len)));
        // Reversed, the bytes must still frame a JSON object: a header that
        // is not one, or is cut short, shows nothing.
        let mut broken = little.clone();
        broken[2] = b'[';
        assert_eq!(reversed_length(&broken), None);
        assert_eq!(reversed_length(&little[..header_len]), None);
        // Two equal bytes read the same either way.
        assert_eq!(reversed_length(b"\x01\x01{}"), None);
    }

    #[test]
    fn a_length_written_in_four_or_eight_bytes_shows_its_width() {
        let request = json_request("search", "morpheus");
        assert_eq!(wide_length(&request), None, "the contract's 2 bytes");
        let header_len = request.len() - 2 - request_content("search", "morpheus").len();
        let rest = &request[2..];
        for (width, prefix) in [
            (8, (header_len as u64).to_be_bytes().to_vec()),
            (8, (header_len as u64).to_le_bytes().to_vec()),
            (4, (header_len as u32).to_be_bytes().to_vec()),
            (4, (header_len as u32).to_le_bytes().to_vec()),
        ] {
            let wide = [prefix.as_slice(), rest].concat();
            assert_eq!(wide_length(&wide), Some(width), "{prefix:?}");
        }
        // A prefix whose length frames no JSON object shows nothing.
        let mut broken = [(header_len as u64).to_be_bytes().as_slice(), rest].concat();
        broken[8] = b'[';
        assert_eq!(wide_length(&broken), None);
        assert_eq!(wide_length(b"\0\0\0\0"), None);
    }
}
