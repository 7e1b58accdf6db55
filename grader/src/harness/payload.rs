//! Random payloads drawn from a check's seed, a buffer at a time.
//!
//! The grader is built without optimisation (a student's first grade
//! compiles it), where drawing a megabyte a byte at a time through an
//! iterator costs tens of milliseconds; filling a buffer costs one.

use fastrand::Rng;

/// `len` random bytes.
pub fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut payload = vec![0; len];
    rng.fill(&mut payload);
    payload
}

/// `len` random ASCII letters and digits.
pub fn alphanumeric(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut text = bytes(rng, len);
    for byte in &mut text {
        *byte = ALPHABET[usize::from(*byte) % ALPHABET.len()];
    }
    String::from_utf8(text).expect("letters and digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_payload_again() {
        let draw = |seed| {
            let mut rng = Rng::with_seed(seed);
            (bytes(&mut rng, 1000), alphanumeric(&mut rng, 1000))
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn alphanumeric_text_uses_every_letter_and_digit_and_nothing_else() {
        let text = alphanumeric(&mut Rng::with_seed(1), 10_000);
        assert_eq!(text.len(), 10_000);
        assert!(text.bytes().all(|byte| byte.is_ascii_alphanumeric()));
        let distinct: std::collections::BTreeSet<u8> = text.bytes().collect();
        assert_eq!(distinct.len(), 62);
    }

    #[test]
    fn bytes_cover_every_value_and_any_length() {
        let payload = bytes(&mut Rng::with_seed(1), 100_003);
        assert_eq!(payload.len(), 100_003);
        let distinct: std::collections::BTreeSet<u8> = payload.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert!(bytes(&mut Rng::with_seed(1), 0).is_empty());
    }
}
