//! A fast hasher for keys that are one `u64`: H3 cell indexes and subjects' pseudonyms.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes one `u64` with the SplitMix64 finaliser: far cheaper than the standard library's
/// DoS-resistant default, and every bit of the key, the finest digits of a cell index included,
/// reaches the bits a hash table uses. The keys are a partnership's own cells and pseudonyms, so
/// there is no adversary choosing them.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// A hash map keyed by cells or pseudonyms.
pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// A hash set of cells or pseudonyms.
pub(crate) type KeySet<K> = HashSet<K, BuildHasherDefault<KeyHasher>>;
