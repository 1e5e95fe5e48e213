//! Keyed pseudonyms.
//!
//! Agencies pseudonymise with the partnership's linkage key, so the same child gets the same
//! pseudonym in every agency's extract. The server keys each pseudonym again with its own secret
//! before storing it: someone holding a stolen database and the linkage key still cannot test a
//! name against it without the server's key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A 256-bit HMAC-SHA256 key.
#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey([REDACTED])")
    }
}

/// The text is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pseudonym key is 64 hexadecimal characters (256 bits)")]
pub struct InvalidKey;

impl PseudonymKey {
    /// Parses a key written as 64 hexadecimal characters (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`InvalidKey`] otherwise.
    pub fn from_hex(text: &str) -> Result<Self, InvalidKey> {
        let mut key = [0_u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| InvalidKey)?;
        Ok(Self(key))
    }

    /// HMAC-SHA256 of `message` under this key.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// A fingerprint of this key (32 hexadecimal characters: an HMAC of a fixed text, which
    /// does not reveal the key), so that a database can tell whether two processes hold the
    /// same key.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.sign(b"safeguard-atlas: the fingerprint of a server pseudonym key")[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_pythons_hmac() {
        // python3 -c "import hmac,hashlib; print(hmac.new(bytes([0x0b]*32), b'Hi There',
        //             hashlib.sha256).hexdigest())"
        let key = PseudonymKey::from_hex(&"0b".repeat(32)).unwrap();
        assert_eq!(
            hex::encode(key.sign(b"Hi There")),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
        // Deterministic, and key-dependent.
        let other = PseudonymKey::from_hex(&"0c".repeat(32)).unwrap();
        assert_eq!(key.sign(b"child"), key.sign(b"child"));
        assert_ne!(key.sign(b"child"), other.sign(b"child"));
        assert_ne!(key.sign(b"child"), key.sign(b"chile"));
    }

    #[test]
    fn fingerprints_tell_keys_apart_without_showing_them() {
        let key = PseudonymKey::from_hex(&"0b".repeat(32)).unwrap();
        let other = PseudonymKey::from_hex(&"0c".repeat(32)).unwrap();
        assert_eq!(key.fingerprint().len(), 32);
        assert_eq!(key.fingerprint(), key.fingerprint());
        assert_ne!(key.fingerprint(), other.fingerprint());
        assert!(!key.fingerprint().contains(&"0b".repeat(4)));
    }

    #[test]
    fn keys_must_be_256_bits_of_hex_and_never_print() {
        assert!(PseudonymKey::from_hex("abc").is_err());
        assert!(PseudonymKey::from_hex(&"zz".repeat(32)).is_err());
        let key = PseudonymKey::from_hex(&format!(" {} \n", "ab".repeat(32))).unwrap();
        assert_eq!(format!("{key:?}"), "PseudonymKey([REDACTED])");
    }
}
