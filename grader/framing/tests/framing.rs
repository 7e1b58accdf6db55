//! The grader's tests of lab 4's framing library (check `app.framing_tests`).
//!
//! They are the exercise tests at the bottom of `labs/app/src/lib.rs`, run
//! against the library's public API. The grader owns this copy, so the
//! check's points cannot be earned by editing tests in the graded crate.

use app::*;
use rstest::rstest;
use serde_json::json;

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
fn a_whole_message_decodes_to_itself(#[case] message: Message) {
    let bytes = message.encode().unwrap();
    assert_eq!(decode(&bytes), Ok(Some((message, bytes.len()))));
}

#[test]
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
