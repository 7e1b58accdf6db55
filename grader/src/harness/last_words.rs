//! A program's own words: the errors its output names, in the words Rust,
//! Python and C print them. Evidence for a diagnosis when the program
//! exited or complained (see the harness's `Evidence`).

/// Whether `text` names any of `words` (lower case), whatever its case.
fn mentions_any(text: &str, words: &[&str]) -> bool {
    let text = text.to_ascii_lowercase();
    words.iter().any(|word| text.contains(word))
}

/// Whether a program's last words are about decoding UTF-8: Rust's
/// `FromUtf8Error`/`Utf8Error`, Python's `UnicodeDecodeError`, Java's
/// `MalformedInputException`, and the like.
pub fn mentions_utf8(stderr: &str) -> bool {
    mentions_any(
        stderr,
        &["utf-8", "utf8", "unicodedecodeerror", "malformedinput"],
    )
}

/// Whether a program's stderr names an interrupted system call (EINTR), as
/// Rust (`Interrupted system call (os error 4)`), Python
/// (`InterruptedError`) or C (`strerror(EINTR)`) print it: the error a
/// signal, or a stop and continue, makes a blocking call return.
pub fn mentions_interrupted(stderr: &str) -> bool {
    mentions_any(
        stderr,
        &[
            "interrupted system call",
            "os error 4)",
            "errno 4]",
            "interruptederror",
        ],
    )
}

/// Whether a program's stderr names a connection's error: a reset or a
/// broken pipe, as Rust (`ConnectionReset`, `os error 104`), Python
/// (`ConnectionResetError`, `[Errno 32]`) or C (`ECONNRESET`) print them.
pub fn mentions_connection_error(stderr: &str) -> bool {
    mentions_any(
        stderr,
        &[
            "connectionreset",
            "connection reset",
            "brokenpipe",
            "broken pipe",
            "os error 104",
            "os error 32)",
            "errno 104",
            "errno 32]",
            "econnreset",
            "epipe",
        ],
    )
}

/// Whether a program's output shows EAGAIN reported as an error: Rust's
/// `Resource temporarily unavailable (os error 11)`, Python's
/// `BlockingIOError`, or the error kind's name.
pub fn mentions_would_block(output: &str) -> bool {
    mentions_any(
        output,
        &[
            "resource temporarily unavailable",
            "(os error 11)",
            "blockingioerror",
            "wouldblock",
            "would block",
        ],
    )
}

/// Whether a program's stderr shows it read past the end of a buffer: a
/// Rust slice or index out of range, Python's `IndexError` or a
/// `struct.error` unpacking from too few bytes. A decoder that did not
/// first check that the bytes it needs have all arrived.
pub fn mentions_out_of_range(stderr: &str) -> bool {
    mentions_any(
        stderr,
        &[
            "out of range for slice",
            "index out of bounds",
            "indexerror",
            "requires a buffer of",
        ],
    )
}

/// Whether a program's stderr shows a lookup of a key its map does not
/// hold: Rust's `Index` on a `serde_json::Map` or a `HashMap` (`no entry
/// found for key`), Python's `KeyError`.
pub fn mentions_missing_key(stderr: &str) -> bool {
    mentions_any(stderr, &["no entry found for key", "keyerror"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_past_a_buffer_is_named_in_every_language() {
        assert!(mentions_out_of_range(
            "thread 'main' (2) panicked at app/src/lib.rs:226:31:\nrange end index 98 out of range for slice of length 4"
        ));
        assert!(mentions_out_of_range(
            "index out of bounds: the len is 1 but the index is 1"
        ));
        assert!(mentions_out_of_range(
            "struct.error: unpack requires a buffer of 2 bytes"
        ));
        assert!(!mentions_out_of_range("error: connection refused"));
    }

    #[test]
    fn a_missing_key_is_named_in_every_language() {
        assert!(mentions_missing_key(
            "thread 'main' (2) panicked at app/src/lib.rs:177:51:\nno entry found for key"
        ));
        assert!(mentions_missing_key("KeyError: 'byteorder'"));
        assert!(!mentions_missing_key("error: missing key \"byteorder\""));
    }

    #[test]
    fn connection_errors_are_named_in_every_language() {
        assert!(mentions_connection_error(
            "called `Result::unwrap()` on an `Err` value: Os { code: 104, kind: ConnectionReset, message: \"Connection reset by peer\" }"
        ));
        assert!(mentions_connection_error(
            "ConnectionResetError: [Errno 104] Connection reset by peer"
        ));
        assert!(mentions_connection_error(
            "Error: Broken pipe (os error 32)"
        ));
        assert!(mentions_connection_error("recv: ECONNRESET"));
        assert!(!mentions_connection_error(
            "thread 'main' panicked at src/main.rs:3:5: not yet implemented"
        ));
        assert!(!mentions_connection_error("error: os error 320"));
    }

    #[test]
    fn utf8_and_would_block_are_named() {
        assert!(mentions_utf8(
            "FromUtf8Error { bytes: [255], error: Utf8Error"
        ));
        assert!(mentions_would_block(
            "error: Resource temporarily unavailable (os error 11)"
        ));
        assert!(!mentions_would_block("Listening on 127.0.0.1:4000"));
    }

    #[test]
    fn an_interrupted_call_is_named_in_every_language() {
        assert!(mentions_interrupted(
            "error: waiting for events: Interrupted system call (os error 4)"
        ));
        assert!(mentions_interrupted(
            "called `Result::unwrap()` on an `Err` value: Os { code: 4, kind: Interrupted, message: \"Interrupted system call\" }"
        ));
        assert!(mentions_interrupted(
            "InterruptedError: [Errno 4] Interrupted system call"
        ));
        assert!(!mentions_interrupted("error: os error 40"));
        assert!(!mentions_interrupted(
            "the reintroduced client was reset (os error 104)"
        ));
    }
}
