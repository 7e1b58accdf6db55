//! `--anonymise`: each student's stable pseudonym, a SipHash of the
//! folder's name keyed by the class's salt.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// A student's stable pseudonym under `salt`: `anon-` and 16 hex digits of
/// the keyed SipHash-2-4 of the folder name's bytes. The same name and salt
/// give the same pseudonym run after run; without the salt, names cannot
/// be recovered by hashing a list of guesses.
pub fn pseudonym(salt: &[u8; 16], name: &[u8]) -> String {
    format!("anon-{:016x}", siphash24(salt, name))
}

/// The salt of `--anonymise` for the class in `dir`: read from
/// `dir/.grade-class-salt`, or made (16 random bytes) and kept there, so
/// that a regrade gives every student the same pseudonym.
pub fn salt_of(dir: &Path) -> Result<[u8; 16]> {
    use std::io::Read as _;
    let path = dir.join(".grade-class-salt");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(salt) = <[u8; 16]>::try_from(bytes.as_slice()) {
            return Ok(salt);
        }
        bail!(
            "{} is not 16 bytes: remove it to make a new salt (every pseudonym changes)",
            path.display()
        );
    }
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut salt))
        .context("reading /dev/urandom")?;
    crate::files::write_atomically(&path, &salt)?;
    Ok(salt)
}

/// SipHash-2-4 of `data` under the 128-bit `key` (Aumasson and Bernstein's
/// reference algorithm).
pub(super) fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}
