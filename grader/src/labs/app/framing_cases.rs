//! The cases of the framing check: calls to the student's library, drawn
//! from the check's seed, and what the contract (the handout's "The wire
//! format", "Limits on what a peer may make you allocate", "When the input
//! is bad" and steps 1 to 3) says each returns. The grader builds every
//! input with its own encoder (`protocol`) and knows every answer before
//! the library is asked: nothing here comes from the graded code.
//!
//! They are the cases of the exercise tests at the bottom of the stub's
//! `src/lib.rs`, with seeded values, split points and bad input.

use serde_json::{Value, json};

use super::protocol::{self};
use super::{CLIENT_BINARY_TYPE, MAX_CONTENT_LENGTH, REQUIRED_KEYS};
use crate::harness::payload;
use crate::harness::show;

/// One case: a few calls, judged together.
#[derive(Debug)]
pub(super) struct Case {
    /// What it tests, for the report.
    pub(super) name: String,
    /// The handout section (an anchor of labs/app/README.md) that teaches it.
    pub(super) section: &'static str,
    pub(super) calls: Vec<Call>,
}

/// One call to the library, as the driver receives it, and its answer.
#[derive(Debug)]
pub(super) struct Call {
    /// The line the driver is sent (see `grader/framing/tests/driver.rs`).
    pub(super) request: Value,
    /// The call as a student would write it, for the report.
    pub(super) shown: String,
    pub(super) expect: Expect,
}

/// What the contract says a call returns.
#[derive(Debug)]
pub(super) enum Expect {
    /// `Ok(VALUE)`, exactly (as the driver writes it).
    Ok(Value),
    /// An error of this `FrameError` variant; with `field`, that field's
    /// value too (the wording of the other details is free).
    Err {
        kind: &'static str,
        field: Option<(&'static str, Value)>,
    },
    /// The bytes of this message on the wire, as the grader's decoder reads
    /// them: the JSON header's key order and spacing are the library's.
    Encoded { header: Value, content: Vec<u8> },
    /// An error, of whichever `FrameError` variant the library chose (the
    /// contract names none), `why` saying why one is due.
    AnyErr { why: &'static str },
}

const ENCODE: &str = "#step-1-encode-a-message";
const HEADERS: &str = "#step-2-read-the-headers";
const BYTE_ORDER: &str = "#network-byte-order";
const CHECK_PARSE: &str = "#step-3-check-then-parse";
const BAD_INPUT: &str = "#when-the-input-is-bad";
const LIMITS: &str = "#limits-on-what-a-peer-may-make-you-allocate";

/// The search values the contract's table knows, and characters for more.
const KNOWN: [&str; 3] = ["morpheus", "ring", "🐶"];
const WIDE: [char; 6] = ['é', 'ß', '漢', '🐶', '🐰', '💍'];

/// Every case, drawn from `rng`.
pub(super) fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let search = |rng: &mut fastrand::Rng| {
        let value = KNOWN[rng.usize(..KNOWN.len())].to_owned();
        Sample::json(rng, &json!({"action": "search", "value": value}))
    };
    let messages = [
        ("a search", search(rng)),
        ("a search with non-ASCII text", {
            let value = text(rng, 12);
            Sample::json(rng, &json!({"action": "search", "value": value}))
        }),
        ("a binary message with bytes 0x00 and 0xff", {
            let mut content = random_bytes(rng, 6..24);
            content.extend([0x00, 0xff]);
            rng.shuffle(&mut content);
            Sample::binary(rng, content)
        }),
        ("a message with no content", Sample::binary(rng, Vec::new())),
    ];
    for (what, sample) in &messages {
        cases.push(Case {
            name: format!("encode {what}"),
            section: ENCODE,
            calls: vec![sample.encode_call()],
        });
    }
    for (what, sample) in &messages {
        cases.push(Case {
            name: format!("decode {what}"),
            section: CHECK_PARSE,
            calls: vec![sample.decode_whole()],
        });
    }
    cases.push(header_too_long(rng));
    cases.push(byte_order(rng));
    cases.push(long_header(rng));
    for (what, sample) in [("a search", search(rng)), {
        let content = random_bytes(rng, 3..12);
        ("a binary message", Sample::binary(rng, content))
    }] {
        cases.push(split_points(rng, what, &sample));
    }
    let first = search(rng);
    let second = search(rng);
    cases.push(coalesced(rng, "two searches", &first, &second));
    let first = search(rng);
    let content = random_bytes(rng, 2..10);
    let second = Sample::binary(rng, content);
    cases.push(coalesced(
        rng,
        "a search, then a binary message",
        &first,
        &second,
    ));
    cases.extend(bad_input(rng));
    cases.extend(requests(rng));
    cases
}

/// A message the grader built: its header, content and bytes on the wire.
#[derive(Debug, Clone)]
struct Sample {
    header: Value,
    content: Vec<u8>,
    wire: Vec<u8>,
}

impl Sample {
    fn new(rng: &mut fastrand::Rng, content_type: &str, encoding: &str, content: Vec<u8>) -> Self {
        let mut header = protocol::header_for(content_type, encoding, &content);
        header["byteorder"] = json!(if rng.bool() { "little" } else { "big" });
        Self::with_header(header, content)
    }

    fn with_header(header: Value, content: Vec<u8>) -> Self {
        let wire = protocol::frame(&header, &content);
        Self {
            header,
            content,
            wire,
        }
    }

    fn json(rng: &mut fastrand::Rng, value: &Value) -> Self {
        Self::new(rng, "text/json", "utf-8", value.to_string().into_bytes())
    }

    fn binary(rng: &mut fastrand::Rng, content: Vec<u8>) -> Self {
        Self::new(rng, CLIENT_BINARY_TYPE, "binary", content)
    }

    /// Where the JSON header ends (and the content starts) in `wire`.
    fn header_end(&self) -> usize {
        self.wire.len() - self.content.len()
    }

    /// The message as the driver writes a decoded one.
    fn decoded(&self) -> Value {
        json!({"header": self.header, "content": self.content})
    }

    /// A `Message` with these fields, as a student would write it.
    fn shown(&self) -> String {
        format!(
            "Message {{ header: {}, content: {} }}",
            self.header,
            show::bytes(&self.content, 60)
        )
    }

    fn encode_call(&self) -> Call {
        Call {
            request: json!({"call": "encode", "header": self.header, "content": self.content}),
            shown: format!("{}.encode()", self.shown()),
            expect: Expect::Encoded {
                header: self.header.clone(),
                content: self.content.clone(),
            },
        }
    }

    fn decode_whole(&self) -> Call {
        decode(
            &self.wire,
            Expect::Ok(json!({"message": self.decoded(), "consumed": self.wire.len()})),
        )
    }

    fn request_call(&self, expect: Expect) -> Call {
        Call {
            request: json!({"call": "request", "header": self.header, "content": self.content}),
            shown: format!("Request::from_message({})", self.shown()),
            expect,
        }
    }
}

fn check(bytes: &[u8], expect: Expect) -> Call {
    Call {
        request: json!({"call": "check", "bytes": bytes}),
        shown: format!("check({})", show::bytes(bytes, 120)),
        expect,
    }
}

fn decode(bytes: &[u8], expect: Expect) -> Call {
    Call {
        request: json!({"call": "decode", "bytes": bytes}),
        shown: format!("decode({})", show::bytes(bytes, 120)),
        expect,
    }
}

fn error(kind: &'static str) -> Expect {
    Expect::Err { kind, field: None }
}

fn error_with(kind: &'static str, field: &'static str, value: Value) -> Expect {
    Expect::Err {
        kind,
        field: Some((field, value)),
    }
}

fn random_bytes(rng: &mut fastrand::Rng, length: std::ops::Range<usize>) -> Vec<u8> {
    let length = rng.usize(length);
    payload::bytes(rng, length)
}

/// Text of about `length` characters, some of them more than one byte.
fn text(rng: &mut fastrand::Rng, length: usize) -> String {
    let mut text = payload::alphanumeric(rng, length);
    for _ in 0..2 {
        let at = text
            .char_indices()
            .map(|(at, _)| at)
            .nth(rng.usize(..length))
            .unwrap_or(0);
        text.insert(at, WIDE[rng.usize(..WIDE.len())]);
    }
    text
}

/// `header_length` on 513 (`02 01`), on two other bytes, and on 0.
fn byte_order(rng: &mut fastrand::Rng) -> Case {
    let high = rng.u8(1..=255);
    let low = loop {
        let low = rng.u8(1..=255);
        if low != high {
            break low;
        }
    };
    let call = |bytes: [u8; 2], expect: Expect| Call {
        request: json!({"call": "header_length", "bytes": bytes}),
        shown: format!("header_length([{:#04x}, {:#04x}])", bytes[0], bytes[1]),
        expect,
    };
    Case {
        name: "the 2-byte length is big-endian, and 0 is an error".into(),
        section: BYTE_ORDER,
        calls: vec![
            call([0x02, 0x01], Expect::Ok(json!(513))),
            call(
                [high, low],
                Expect::Ok(json!(u16::from_be_bytes([high, low]))),
            ),
            call([0, 0], error("EmptyHeader")),
        ],
    }
}

/// A JSON header longer than 255 bytes, whose two length bytes differ: a
/// length read in the wrong order finds no message where it should.
fn long_header(rng: &mut fastrand::Rng) -> Case {
    let content = random_bytes(rng, 1..16);
    let mut length = rng.u16(300..1200);
    while length.to_be_bytes()[0] == length.to_be_bytes()[1] {
        length += 1;
    }
    let base = protocol::header_for("binary/x-", "binary", &content).to_string();
    let padding: String = std::iter::repeat_with(|| rng.lowercase())
        .take(usize::from(length) - base.len())
        .collect();
    let header = protocol::header_for(&format!("binary/x-{padding}"), "binary", &content);
    let sample = Sample::with_header(header, content);
    Case {
        name: format!(
            "decode a message whose JSON header is {} bytes long",
            sample.header_end() - 2
        ),
        section: BYTE_ORDER,
        calls: vec![sample.decode_whole()],
    }
}

/// `encode` of a message whose JSON header is longer than a 2-byte length
/// can say: an error, never bytes whose length was cut to 16 bits (`as u16`).
fn header_too_long(rng: &mut fastrand::Rng) -> Case {
    let content = random_bytes(rng, 1..8);
    let padding: String = std::iter::repeat_with(|| rng.lowercase())
        .take(usize::from(u16::MAX))
        .collect();
    let header = protocol::header_for(&format!("binary/x-{padding}"), "binary", &content);
    let length = header.to_string().len();
    Case {
        name: format!("encode a message whose JSON header is {length} bytes long"),
        section: ENCODE,
        calls: vec![Call {
            request: json!({"call": "encode", "header": header, "content": content}),
            shown: format!(
                "Message {{ content_type: \"binary/x-{}…\" (a JSON header of {length} bytes), .. }}.encode()",
                &padding[..8]
            ),
            expect: Expect::AnyErr {
                why: "the JSON header is longer than the 65535 bytes a 2-byte length can announce",
            },
        }],
    }
}

/// `check` on the message cut at seeded points (and at the edges of its
/// parts) says "incomplete" until the whole message is there.
fn split_points(rng: &mut fastrand::Rng, what: &str, sample: &Sample) -> Case {
    let len = sample.wire.len();
    let header_end = sample.header_end();
    let mut splits = vec![0, 1, 2, 3, header_end - 1, header_end, len - 1];
    splits.extend(std::iter::repeat_with(|| rng.usize(..len)).take(6));
    splits.retain(|&split| split < len);
    splits.sort_unstable();
    splits.dedup();
    let mut calls: Vec<Call> = splits
        .into_iter()
        .map(|split| {
            let mut call = check(&sample.wire[..split], Expect::Ok(Value::Null));
            call.shown = format!("check(the first {split} of its {len} bytes)");
            call
        })
        .collect();
    calls.push(check(
        &sample.wire,
        Expect::Ok(json!({"header": sample.header, "content": [header_end, len]})),
    ));
    calls.push(sample.decode_whole());
    Case {
        name: format!("every split point of {what} is incomplete until the last byte"),
        section: CHECK_PARSE,
        calls,
    }
}

/// Two messages in one buffer, and a message followed by part of the next,
/// come out one at a time, each with the number of bytes it took.
fn coalesced(rng: &mut fastrand::Rng, what: &str, first: &Sample, second: &Sample) -> Case {
    let mut both = first.wire.clone();
    both.extend_from_slice(&second.wire);
    let first_answer =
        Expect::Ok(json!({"message": first.decoded(), "consumed": first.wire.len()}));
    let cut = rng.usize(1..second.wire.len());
    let partial = &both[..first.wire.len() + cut];
    Case {
        name: format!("coalesced messages come out one by one: {what}"),
        section: CHECK_PARSE,
        calls: vec![
            decode(&both, first_answer),
            decode(
                partial,
                Expect::Ok(json!({"message": first.decoded(), "consumed": first.wire.len()})),
            ),
            second.decode_whole(),
            decode(&second.wire[..cut], Expect::Ok(Value::Null)),
        ],
    }
}

/// A raw message: `header` sent as is after its 2-byte length.
fn raw(header: &str, content: &[u8]) -> Vec<u8> {
    protocol::frame_raw(header, content)
}

/// The bad input of the handout, one case each: `check` refuses it.
fn bad_input(rng: &mut fastrand::Rng) -> Vec<Case> {
    let case = |name: String, section: &'static str, bytes: Vec<u8>, expect: Expect| Case {
        name,
        section,
        calls: vec![check(&bytes, expect)],
    };
    let mut cases = Vec::new();
    let mut zero = vec![0, 0];
    zero.extend(random_bytes(rng, 1..4));
    cases.push(case(
        "a JSON header length of 0".into(),
        HEADERS,
        zero,
        error("EmptyHeader"),
    ));
    let length = rng.usize(3..9);
    let word: String = std::iter::repeat_with(|| rng.lowercase())
        .take(length)
        .collect();
    cases.push(case(
        "a JSON header that is not JSON".into(),
        BAD_INPUT,
        raw(&format!("{{not json {word}}}"), b""),
        error("BadHeader"),
    ));
    let not_objects = [
        "[1, 2]",
        "\"text\"",
        "42",
        "null",
        "[{\"content-length\": 2}]",
    ];
    cases.push(case(
        "a JSON header that is not a JSON object".into(),
        BAD_INPUT,
        raw(not_objects[rng.usize(..not_objects.len())], b""),
        error("BadHeader"),
    ));
    let mut not_utf8 = vec![0xff];
    not_utf8.extend(random_bytes(rng, 0..3));
    rng.shuffle(&mut not_utf8);
    let mut bytes = vec![0, not_utf8.len() as u8];
    bytes.extend(&not_utf8);
    cases.push(case(
        "a JSON header that is not UTF-8".into(),
        BAD_INPUT,
        bytes,
        error("BadHeader"),
    ));
    let content = json!({"action": "search", "value": text(rng, 6)})
        .to_string()
        .into_bytes();
    let good = protocol::header_for("text/json", "utf-8", &content);
    for key in REQUIRED_KEYS {
        let mut header = good.clone();
        header.as_object_mut().map(|object| object.remove(key));
        cases.push(case(
            format!("a JSON header without \"{key}\""),
            BAD_INPUT,
            protocol::frame(&header, &content),
            error_with("MissingKey", "key", json!(key)),
        ));
    }
    let with_length = |length: Value, content: &[u8]| {
        let mut header = good.clone();
        header["content-length"] = length;
        protocol::frame(&header, content)
    };
    let negative = -rng.i64(1..100_000);
    cases.push(case(
        format!("a negative content-length ({negative})"),
        BAD_INPUT,
        with_length(json!(negative), b""),
        error("BadKey"),
    ));
    let length = content.len().to_string();
    cases.push(case(
        format!("a content-length that is text (\"{length}\")"),
        BAD_INPUT,
        with_length(json!(length), &content),
        error("BadKey"),
    ));
    for length in [
        MAX_CONTENT_LENGTH + 1,
        rng.u64(MAX_CONTENT_LENGTH + 2..1 << 50),
    ] {
        cases.push(case(
            format!("content-length {length}, above the limit, refused before any content"),
            LIMITS,
            with_length(json!(length), b""),
            error_with("TooLarge", "length", json!(length)),
        ));
    }
    let some = random_bytes(rng, 1..64);
    cases.push(Case {
        name: format!("content-length {MAX_CONTENT_LENGTH}, the limit itself, is allowed"),
        section: LIMITS,
        calls: vec![
            check(
                &with_length(json!(MAX_CONTENT_LENGTH), b""),
                Expect::Ok(Value::Null),
            ),
            check(
                &with_length(json!(MAX_CONTENT_LENGTH), &some),
                Expect::Ok(Value::Null),
            ),
        ],
    });
    cases
}

/// `Request::from_message` on good and bad request content.
fn requests(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let value = text(rng, 8);
    let sample = Sample::json(rng, &json!({"action": "search", "value": value}));
    let json_request =
        |action: &str, value: &str| Expect::Ok(json!({"json": {"action": action, "value": value}}));
    cases.push(Case {
        name: "a search request".into(),
        section: CHECK_PARSE,
        calls: vec![sample.request_call(json_request("search", &value))],
    });
    let action = format!("find-{}", rng.u32(100..1000));
    let sample = Sample::json(rng, &json!({"value": value, "action": action}));
    cases.push(Case {
        name: "a request with another action (the server refuses it, not the library)".into(),
        section: CHECK_PARSE,
        calls: vec![sample.request_call(json_request(&action, &value))],
    });
    let mut not_utf8 = json!({"action": "search", "value": "x"})
        .to_string()
        .into_bytes();
    let at = not_utf8.len() - 3;
    not_utf8[at] = 0xff;
    let bad = [
        ("text/json content that is not UTF-8", not_utf8),
        (
            "text/json content that is not JSON",
            format!("{{\"action\": \"search\", \"value\": {value}").into_bytes(),
        ),
        (
            "text/json content that is not a JSON object",
            json!(["search", value]).to_string().into_bytes(),
        ),
        (
            "a request without \"action\"",
            json!({"value": value}).to_string().into_bytes(),
        ),
        (
            "a request whose \"action\" is not a string",
            json!({"action": rng.u32(1..100), "value": value})
                .to_string()
                .into_bytes(),
        ),
        (
            "a request without \"value\"",
            json!({"action": "search"}).to_string().into_bytes(),
        ),
    ];
    for (name, content) in bad {
        let sample = Sample::new(rng, "text/json", "utf-8", content);
        cases.push(Case {
            name: name.into(),
            section: BAD_INPUT,
            calls: vec![sample.request_call(error("BadContent"))],
        });
    }
    let content_type = format!("binary/x-{}", rng.u32(100..1000));
    let mut content = random_bytes(rng, 4..16);
    content.extend([0xff, 0x00]);
    let sample = Sample::new(rng, &content_type, "binary", content.clone());
    cases.push(Case {
        name: "another content-type is a binary request".into(),
        section: CHECK_PARSE,
        calls: vec![sample.request_call(Expect::Ok(
            json!({"binary": {"content-type": content_type, "content": content}}),
        ))],
    });
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cases_are_drawn_from_the_seed() {
        let shown = |seed| {
            cases(&mut fastrand::Rng::with_seed(seed))
                .iter()
                .flat_map(|case| case.calls.iter().map(|call| call.request.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(7), shown(7));
        assert_ne!(shown(7), shown(8));
    }

    #[test]
    fn every_case_has_a_section_of_the_handout() {
        let handout = include_str!("../../../../labs/app/README.md");
        let anchors: Vec<String> = handout
            .lines()
            .filter_map(|line| line.strip_prefix('#'))
            .map(|title| {
                let title = title.trim_start_matches('#').trim().to_lowercase();
                let anchor: String = title
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                format!("#{anchor}")
            })
            .collect();
        for case in cases(&mut fastrand::Rng::with_seed(1)) {
            assert!(
                anchors.iter().any(|a| a == case.section),
                "{}",
                case.section
            );
        }
    }

    #[test]
    fn a_long_header_has_two_different_length_bytes() {
        for seed in 0..50 {
            let case = long_header(&mut fastrand::Rng::with_seed(seed));
            let Expect::Ok(answer) = &case.calls[0].expect else {
                panic!("{case:?}")
            };
            let consumed = answer["consumed"].as_u64().unwrap();
            let request = &case.calls[0].request["bytes"];
            assert_eq!(request.as_array().unwrap().len() as u64, consumed);
            assert_ne!(request[0], request[1], "{case:?}");
        }
    }
}
