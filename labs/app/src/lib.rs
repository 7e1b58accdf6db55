//! Lab 4: the framing of the application protocol — your library.
//!
//! Your task, step by step, is in the handout: labs/app/README.md. The tests
//! at the bottom of this file are part of the lab: they are marked
//! `#[ignore]` so that the course's `cargo test` passes before you start;
//! run them with `cargo test -p app -- --include-ignored`. The grader does
//! not run them: it calls your library with the same kinds of cases, with
//! values of its own, and judges what your functions return (check
//! `app.framing_tests`), so editing these tests changes nothing about the
//! grade.
//!
//! TCP delivers a stream of bytes, not messages: one `write` may arrive in
//! several reads, and two writes may arrive in one. This protocol marks where
//! a message ends with two length prefixes:
//!
//! ```text
//! +--------+---------------------------+---------------------------+
//! | 2 bytes| JSON header               | content                   |
//! | length | (that many bytes, UTF-8)  | (content-length bytes)    |
//! | of the | {"byteorder": "little",   |                           |
//! | header | "content-type": …,        |                           |
//! | (big-  | "content-encoding": …,    |                           |
//! | endian)| "content-length": 42}     |                           |
//! +--------+---------------------------+---------------------------+
//! ```
//!
//! Decoding works on a buffer that grows as bytes arrive: [`check`] says
//! whether the buffer holds a whole message yet (not yet is not an error) or
//! can never become one (an error), and [`parse`] takes the message out. The
//! server and the client both use them; only what they do with a message
//! differs.

use std::ops::Range;

use serde_json::{Map, Value, json};

/// Size of the fixed-length header that gives the JSON header's length.
pub const PROTO_HEADER_LEN: usize = 2;

/// The most content a peer may announce. Anything above is refused as soon
/// as the JSON header is read: otherwise one peer could make us buffer
/// gigabytes, or wait forever for content that never comes.
pub const MAX_CONTENT_LENGTH: usize = 1024 * 1024;

/// The keys every JSON header must have.
pub const REQUIRED_KEYS: [&str; 4] = [
    "byteorder",
    "content-type",
    "content-encoding",
    "content-length",
];

/// Content-type of JSON requests and responses.
pub const TEXT_JSON: &str = "text/json";

/// Why bytes received can never become a valid message. Incomplete input is
/// not an error: [`check`] answers `Ok(None)` and the caller reads more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The 2-byte length was 0: there is no JSON header to read.
    #[error("the JSON header length is 0")]
    EmptyHeader,
    /// The JSON header is not UTF-8, not JSON, or not a JSON object.
    #[error("invalid JSON header: {0}")]
    BadHeader(String),
    /// A required key is missing from the JSON header.
    #[error("the JSON header has no \"{0}\" key")]
    MissingKey(&'static str),
    /// A key has a value of the wrong kind.
    #[error("the JSON header's \"{key}\" must be {expected}")]
    BadKey {
        /// The key.
        key: &'static str,
        /// What its value should be.
        expected: &'static str,
    },
    /// The announced content is larger than [`MAX_CONTENT_LENGTH`].
    #[error("content-length {0} is above the limit of {MAX_CONTENT_LENGTH} bytes")]
    TooLarge(u64),
    /// The content does not fit its content-type.
    #[error("invalid content: {0}")]
    BadContent(String),
}

/// The JSON header: it describes the content that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonHeader {
    /// The sender's byte order (`little` or `big`); informational only,
    /// because the 2-byte length is always big-endian.
    pub byteorder: String,
    /// What the content is: `text/json`, or anything else for bytes.
    pub content_type: String,
    /// How text content is encoded (`utf-8`), or `binary`.
    pub content_encoding: String,
    /// How many bytes of content follow the JSON header.
    pub content_length: usize,
}

impl JsonHeader {
    /// A header for `content_length` bytes of content, with this host's
    /// byte order.
    pub fn new(content_type: &str, content_encoding: &str, content_length: usize) -> Self {
        let byteorder = if cfg!(target_endian = "little") {
            "little"
        } else {
            "big"
        };
        Self {
            byteorder: byteorder.to_owned(),
            content_type: content_type.to_owned(),
            content_encoding: content_encoding.to_owned(),
            content_length,
        }
    }

    /// The header as one line of JSON.
    pub fn to_json(&self) -> String {
        json!({
            "byteorder": self.byteorder,
            "content-type": self.content_type,
            "content-encoding": self.content_encoding,
            "content-length": self.content_length,
        })
        .to_string()
    }
}

/// One message: a JSON header and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What the content is.
    pub header: JsonHeader,
    /// The content bytes (exactly `header.content_length` of them).
    pub content: Vec<u8>,
}

impl Message {
    /// A message carrying `content`, its length filled in.
    pub fn new(content_type: &str, content_encoding: &str, content: Vec<u8>) -> Self {
        Self {
            header: JsonHeader::new(content_type, content_encoding, content.len()),
            content,
        }
    }

    /// A `text/json` message in UTF-8 carrying `value`.
    pub fn json(value: &Value) -> Self {
        Self::new(TEXT_JSON, "utf-8", value.to_string().into_bytes())
    }

    /// The bytes on the wire: 2-byte big-endian header length, JSON header,
    /// content. Fails only if the JSON header is longer than 65535 bytes.
    ///
    /// Handout: "Step 1: encode a message" and "Network byte order".
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        todo!(
            "write the JSON header's length as 2 big-endian bytes (u16::to_be_bytes), then the header ({}), then the content ({} bytes)",
            self.header.to_json(),
            self.content.len()
        )
    }
}

/// Reads the fixed-length header: the JSON header's length, big-endian.
///
/// Handout: "Step 2: read the headers" and "Network byte order".
pub fn header_length(proto_header: [u8; PROTO_HEADER_LEN]) -> Result<usize, FrameError> {
    todo!(
        "turn {proto_header:?} into the JSON header's length: big-endian (u16::from_be_bytes); 0 is an error"
    )
}

/// Parses and validates a JSON header: an object with every required key,
/// and a content-length no larger than [`MAX_CONTENT_LENGTH`].
///
/// Handout: "Step 2: read the headers", "The JSON header" and "Limits on
/// what a peer may make you allocate".
pub fn parse_json_header(bytes: &[u8]) -> Result<JsonHeader, FrameError> {
    todo!(
        "parse {} bytes as a UTF-8 JSON object, check the required keys and the content-length limit",
        bytes.len()
    )
}

/// Where a complete message lies in a buffer, as found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message's JSON header, already validated.
    pub header: JsonHeader,
    /// The content's bytes in the buffer; `content.end` is where the next
    /// message would start.
    pub content: Range<usize>,
}

/// Looks at the start of `buffer`: `Ok(None)` if it does not hold a whole
/// message yet (read more and call again), `Ok(Some(frame))` if it does, or
/// an error as soon as the bytes can never become a valid message. A JSON
/// header is judged as soon as it is complete, before any content arrives.
///
/// Handout: "Step 3: check, then parse".
pub fn check(buffer: &[u8]) -> Result<Option<Frame>, FrameError> {
    todo!(
        "look at the {} bytes received: 2-byte length, then JSON header, then content; Ok(None) while incomplete",
        buffer.len()
    )
}

/// Takes the message that [`check`] found out of `buffer`.
///
/// Handout: "Step 3: check, then parse".
pub fn parse(buffer: &[u8], frame: Frame) -> Message {
    todo!(
        "copy the content at {:?} out of the {}-byte buffer into a Message with {:?}",
        frame.content,
        buffer.len(),
        frame.header
    )
}

/// [`check`] then [`parse`]: the first message in `buffer` and how many bytes
/// it took, `None` while it is incomplete.
pub fn decode(buffer: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    Ok(check(buffer)?.map(|frame| {
        let end = frame.content.end;
        (parse(buffer, frame), end)
    }))
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A `text/json` request: `{"action": …, "value": …}`.
    Json {
        /// `search`, or anything else (which the server refuses politely).
        action: String,
        /// What to search for.
        value: String,
        /// The whole content object, as received (for the server's log).
        object: Map<String, Value>,
    },
    /// Any other content-type: bytes the server does not interpret.
    Binary {
        /// The content-type the client gave.
        content_type: String,
        /// The content.
        content: Vec<u8>,
    },
}

impl Request {
    /// Interprets a received message as a request. `text/json` content must
    /// be UTF-8 JSON: an object whose `action` and `value` are strings.
    ///
    /// Handout: "Step 3: check, then parse" and "When the input is bad".
    pub fn from_message(message: Message) -> Result<Self, FrameError> {
        todo!(
            "text/json content must be a UTF-8 JSON object with string \"action\" and \"value\"; anything else is a binary request: {message:?}"
        )
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn search(value: &str) -> Message {
        Message::json(&json!({"action": "search", "value": value}))
    }

    fn binary(content: &[u8]) -> Message {
        Message::new(
            "binary/custom-client-binary-type",
            "binary",
            content.to_vec(),
        )
    }

    /// A raw message: `header` sent as is after its 2-byte length.
    fn raw(header: &str, content: &[u8]) -> Vec<u8> {
        let mut bytes = u16::try_from(header.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(content);
        bytes
    }

    #[rstest]
    #[case::search(search("morpheus"))]
    #[case::unicode(search("🐶"))]
    #[case::binary(binary(b"doublex\x00\xff"))]
    #[case::empty_content(binary(b""))]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn a_whole_message_decodes_to_itself(#[case] message: Message) {
        let bytes = message.encode().unwrap();
        assert_eq!(decode(&bytes), Ok(Some((message, bytes.len()))));
    }

    #[test]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn a_header_too_long_for_its_length_is_an_error() {
        let mut message = binary(b"x");
        message.header.content_type = format!("binary/x-{}", "y".repeat(usize::from(u16::MAX)));
        assert!(message.encode().is_err());
    }

    #[test]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn the_length_is_big_endian() {
        let bytes = search("ring").encode().unwrap();
        let header = search("ring").header.to_json();
        assert_eq!(
            bytes[..2],
            u16::try_from(header.len()).unwrap().to_be_bytes()
        );
        assert_eq!(header_length([0x02, 0x01]), Ok(513));
    }

    #[rstest]
    #[case::search(search("ring"))]
    #[case::binary(binary(b"abc"))]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn every_split_point_is_incomplete_until_the_last_byte(#[case] message: Message) {
        let bytes = message.encode().unwrap();
        for split in 0..bytes.len() {
            assert_eq!(check(&bytes[..split]), Ok(None), "split at byte {split}");
        }
        assert_eq!(decode(&bytes), Ok(Some((message, bytes.len()))));
    }

    #[rstest]
    #[case::two_searches(search("ring"), search("🐶"))]
    #[case::json_then_binary(search("morpheus"), binary(b"\x00\x01"))]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn coalesced_messages_come_out_one_by_one(#[case] first: Message, #[case] second: Message) {
        let mut bytes = first.encode().unwrap();
        let first_len = bytes.len();
        bytes.extend(second.encode().unwrap());
        assert_eq!(decode(&bytes), Ok(Some((first, first_len))));
        let rest = &bytes[first_len..];
        assert_eq!(decode(rest), Ok(Some((second, rest.len()))));
    }

    const GOOD: &str = r#"{"byteorder": "little", "content-type": "text/json", "content-encoding": "utf-8", "content-length": 2}"#;

    #[rstest]
    #[case::zero_length(vec![0, 0, b'{'], FrameError::EmptyHeader)]
    #[case::not_json(raw("{not json}", b""), FrameError::BadHeader(String::new()))]
    #[case::not_an_object(raw("[1, 2]", b""), FrameError::BadHeader(String::new()))]
    #[case::not_utf8(vec![0, 1, 0xff], FrameError::BadHeader(String::new()))]
    #[case::no_byteorder(raw(&GOOD.replace("\"byteorder\"", "\"x\""), b"{}"), FrameError::MissingKey("byteorder"))]
    #[case::no_content_type(raw(&GOOD.replace("\"content-type\"", "\"x\""), b"{}"), FrameError::MissingKey("content-type"))]
    #[case::no_encoding(raw(&GOOD.replace("\"content-encoding\"", "\"x\""), b"{}"), FrameError::MissingKey("content-encoding"))]
    #[case::no_length(raw(&GOOD.replace("\"content-length\"", "\"x\""), b"{}"), FrameError::MissingKey("content-length"))]
    #[case::negative_length(raw(&GOOD.replace(": 2}", ": -2}"), b"{}"), FrameError::BadKey { key: "content-length", expected: "" })]
    #[case::text_length(raw(&GOOD.replace(": 2}", ": \"2\"}"), b"{}"), FrameError::BadKey { key: "content-length", expected: "" })]
    #[case::too_large_refused_before_the_content(raw(&GOOD.replace(": 2}", ": 1048577}"), b""), FrameError::TooLarge(1_048_577))]
    #[case::huge(raw(&GOOD.replace(": 2}", ": 1000000000000}"), b""), FrameError::TooLarge(1_000_000_000_000))]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn bad_input_is_an_error(#[case] bytes: Vec<u8>, #[case] expected: FrameError) {
        let error = check(&bytes).unwrap_err();
        // Compare the kind of error; the wording of the details is free.
        assert_eq!(
            std::mem::discriminant(&error),
            std::mem::discriminant(&expected),
            "{error}"
        );
        if matches!(
            expected,
            FrameError::MissingKey(_) | FrameError::TooLarge(_)
        ) {
            assert_eq!(error, expected);
        }
    }

    #[test]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn the_limit_itself_is_allowed() {
        let header = GOOD.replace(": 2}", &format!(": {MAX_CONTENT_LENGTH}}}"));
        assert_eq!(check(&raw(&header, b"")), Ok(None));
    }

    #[rstest]
    #[case::search(search("🐶"), Ok(("search", "🐶")))]
    #[case::not_utf8(Message::new(TEXT_JSON, "utf-8", b"\xff".to_vec()), Err(()))]
    #[case::not_json(Message::new(TEXT_JSON, "utf-8", b"{".to_vec()), Err(()))]
    #[case::not_an_object(Message::json(&json!(["search", "ring"])), Err(()))]
    #[case::no_action(Message::json(&json!({"value": "ring"})), Err(()))]
    #[case::action_not_a_string(Message::json(&json!({"action": 1, "value": "ring"})), Err(()))]
    #[case::no_value(Message::json(&json!({"action": "search"})), Err(()))]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn requests_are_checked(#[case] message: Message, #[case] expected: Result<(&str, &str), ()>) {
        let request = Request::from_message(message);
        match (request, expected) {
            (Ok(Request::Json { action, value, .. }), Ok((want_action, want_value))) => {
                assert_eq!((action.as_str(), value.as_str()), (want_action, want_value));
            }
            (Err(FrameError::BadContent(_)), Err(())) => {}
            (other, expected) => panic!("got {other:?}, expected {expected:?}"),
        }
    }

    #[test]
    #[ignore = "lab exercise: run with cargo test -p app -- --include-ignored (the grader asks the same cases with its own values)"]
    fn other_content_types_are_binary_requests() {
        let request = Request::from_message(binary(b"\xff\x00")).unwrap();
        assert_eq!(
            request,
            Request::Binary {
                content_type: "binary/custom-client-binary-type".to_owned(),
                content: b"\xff\x00".to_vec()
            }
        );
    }
}
