//! The grader's driver of lab 4's framing library (check `app.framing_tests`).
//!
//! It links the graded library and does nothing but call it: the grader
//! writes the calls on stdin, one JSON object a line, and closes it; the
//! driver reads them all, makes each call, and writes what came back, one
//! JSON object a line, on file descriptor 3, a pipe of the grader's own.
//! The grader knows the protocol and judges every answer itself: nothing
//! here decides whether an answer is right, and nothing the library prints
//! (on stdout or stderr, which the grader only shows) counts.
//!
//! A call that panics (a `todo!()` not yet replaced) answers `panic` with
//! its message, and the next call goes on. A call that ends the process
//! answers nothing: the grader notices, and starts the driver again with
//! the calls after it.
//!
//! Calls, with bytes as arrays of numbers:
//! - `{"call": "encode", "header": HEADER, "content": BYTES}`:
//!   `Message::encode` of that message;
//! - `{"call": "header_length", "bytes": [HIGH, LOW]}`;
//! - `{"call": "check", "bytes": BYTES}`;
//! - `{"call": "decode", "bytes": BYTES}`: `check`, then `parse` of the
//!   frame it found;
//! - `{"call": "request", "header": HEADER, "content": BYTES}`:
//!   `Request::from_message` of that message.
//!
//! where HEADER is `{"byteorder", "content-type", "content-encoding",
//! "content-length"}`. Answers: `{"ok": VALUE}`, `{"err": ERROR}` (the
//! `FrameError`'s variant as `kind`, its fields, and its message), or
//! `{"panic": MESSAGE}`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use app::{FrameError, JsonHeader, Message, Request};
use serde_json::{Value, json};

/// The descriptor the grader reads answers from.
const ANSWERS_FD: i32 = 3;

/// The last panic's message and place, kept by the panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() {
    // SAFETY: the grader starts the driver with its answer pipe at this
    // descriptor, and nothing else in the driver uses it.
    let mut answers = File::from(unsafe { OwnedFd::from_raw_fd(ANSWERS_FD) });
    let mut input = String::new();
    if let Err(err) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("framing driver: cannot read the calls: {err}");
        std::process::exit(2);
    }
    panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|at| format!(" (at {}:{})", at.file(), at.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a payload that is not text".to_owned());
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(message + &place);
    }));
    for line in input.lines() {
        let answer = match serde_json::from_str::<Value>(line) {
            Ok(call) => answer(&call),
            Err(err) => json!({"driver_error": format!("not a call: {err}")}),
        };
        let mut bytes = answer.to_string().into_bytes();
        bytes.push(b'\n');
        // One write per answer, as soon as it is known: if a later call
        // ends the process, the grader still has every answer before it.
        if answers.write_all(&bytes).is_err() {
            std::process::exit(3);
        }
    }
}

/// Makes one call, catching a panic.
fn answer(call: &Value) -> Value {
    *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = None;
    match panic::catch_unwind(AssertUnwindSafe(|| make(call))) {
        Ok(Ok(answer)) => answer,
        Ok(Err(driver_error)) => json!({"driver_error": driver_error}),
        Err(_) => {
            let message = LAST_PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| "a panic".to_owned());
            json!({"panic": message})
        }
    }
}

fn make(call: &Value) -> Result<Value, String> {
    let name = call["call"].as_str().ok_or("no \"call\"")?;
    Ok(match name {
        "encode" => result(message(call)?.encode().map(|bytes| json!(bytes))),
        "header_length" => {
            let bytes = bytes(&call["bytes"])?;
            let pair: [u8; 2] = bytes.try_into().map_err(|_| "not two bytes")?;
            result(app::header_length(pair).map(|length| json!(length)))
        }
        "check" => {
            let bytes = bytes(&call["bytes"])?;
            result(app::check(&bytes).map(|frame| {
                frame.map_or(Value::Null, |frame| {
                    json!({
                        "header": header_value(&frame.header),
                        "content": [frame.content.start, frame.content.end],
                    })
                })
            }))
        }
        "decode" => {
            let bytes = bytes(&call["bytes"])?;
            result(app::check(&bytes).map(|frame| {
                frame.map_or(Value::Null, |frame| {
                    let consumed = frame.content.end;
                    let message = app::parse(&bytes, frame);
                    json!({"message": message_value(&message), "consumed": consumed})
                })
            }))
        }
        "request" => result(
            Request::from_message(message(call)?).map(|request| match request {
                Request::Json { action, value, .. } => {
                    json!({"json": {"action": action, "value": value}})
                }
                Request::Binary {
                    content_type,
                    content,
                } => json!({"binary": {"content-type": content_type, "content": content}}),
            }),
        ),
        other => return Err(format!("no call named {other:?}")),
    })
}

fn result(result: Result<Value, FrameError>) -> Value {
    match result {
        Ok(value) => json!({"ok": value}),
        Err(error) => {
            let message = error.to_string();
            let mut fields = match error {
                FrameError::EmptyHeader => json!({"kind": "EmptyHeader"}),
                FrameError::BadHeader(why) => json!({"kind": "BadHeader", "why": why}),
                FrameError::MissingKey(key) => json!({"kind": "MissingKey", "key": key}),
                FrameError::BadKey { key, expected } => {
                    json!({"kind": "BadKey", "key": key, "expected": expected})
                }
                FrameError::TooLarge(length) => json!({"kind": "TooLarge", "length": length}),
                FrameError::BadContent(why) => json!({"kind": "BadContent", "why": why}),
            };
            fields["message"] = json!(message);
            json!({"err": fields})
        }
    }
}

fn bytes(value: &Value) -> Result<Vec<u8>, String> {
    value
        .as_array()
        .ok_or("bytes are an array")?
        .iter()
        .map(|byte| {
            byte.as_u64()
                .and_then(|byte| u8::try_from(byte).ok())
                .ok_or_else(|| format!("not a byte: {byte}"))
        })
        .collect()
}

/// The message a call describes, built field by field: the grader's values,
/// not what `Message::new` would make of them.
fn message(call: &Value) -> Result<Message, String> {
    let header = &call["header"];
    let text = |key: &str| {
        header[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no header {key:?}"))
    };
    let content_length = header["content-length"]
        .as_u64()
        .and_then(|length| usize::try_from(length).ok())
        .ok_or("no header \"content-length\"")?;
    Ok(Message {
        header: JsonHeader {
            byteorder: text("byteorder")?,
            content_type: text("content-type")?,
            content_encoding: text("content-encoding")?,
            content_length,
        },
        content: bytes(&call["content"])?,
    })
}

fn header_value(header: &JsonHeader) -> Value {
    json!({
        "byteorder": header.byteorder,
        "content-type": header.content_type,
        "content-encoding": header.content_encoding,
        "content-length": header.content_length,
    })
}

fn message_value(message: &Message) -> Value {
    json!({"header": header_value(&message.header), "content": message.content})
}
