//! A fast hasher for keys that are one `u64`: H3 cell indexes and subjects' pseudonyms.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes one `u64` with the SplitMix64 finaliser: far cheaper than the standard library's
/// DoS-resistant default, and every bit of the key, the finest digits of a cell index included,
/// reaches the bits a hash table uses. The keys are a partnership's own cells and pseudonyms, so
/// there is no adversary choosing them.
#[derive(Default)]
pub struct KeyHasher(u64);

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
        // A pair of keys (a cell and a subject) mixes the first before the second arrives.
        self.0 = self.0.rotate_left(29) ^ value;
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }
}

/// A hash map keyed by cells or pseudonyms.
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// A hash set of cells or pseudonyms.
pub type KeySet<K> = HashSet<K, BuildHasherDefault<KeyHasher>>;

/// A map held inline while it has at most `N` entries, and as a [`KeyMap`] beyond: a grid
/// counts each cell's children in one, and at resolution 9 most cells hold a child or two (a
/// hash map per cell cost more than the counting), while a busy town-centre cell holds
/// thousands (one map for all cells missed the processor's caches on every record).
#[derive(Debug, Clone)]
pub(crate) enum SmallMap<K, V, const N: usize> {
    /// The first `len` entries are the map's.
    Inline { len: usize, entries: [(K, V); N] },
    /// More than `N` entries.
    Spilled(KeyMap<K, V>),
}

impl<K, V, const N: usize> SmallMap<K, V, N>
where
    K: Copy + Default + Eq + std::hash::Hash,
    V: Copy + Default,
{
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::Inline {
            len: 0,
            entries: [(K::default(), V::default()); N],
        }
    }

    /// The value of `key`, inserted as `V::default()` when absent.
    pub(crate) fn entry(&mut self, key: K) -> &mut V {
        let full = match self {
            Self::Inline { len, entries } => {
                *len == N && !entries.iter().any(|(known, _)| *known == key)
            }
            Self::Spilled(_) => false,
        };
        if let (true, Self::Inline { entries, .. }) = (full, &*self) {
            let mut map = KeyMap::with_capacity_and_hasher(2 * N, BuildHasherDefault::default());
            map.extend(entries.iter().copied());
            *self = Self::Spilled(map);
        }
        match self {
            Self::Inline { len, entries } => {
                let position = match entries[..*len].iter().position(|(known, _)| *known == key) {
                    Some(position) => position,
                    None => {
                        entries[*len] = (key, V::default());
                        *len += 1;
                        *len - 1
                    }
                };
                &mut entries[position].1
            }
            Self::Spilled(map) => map.entry(key).or_default(),
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Inline { len, .. } => *len,
            Self::Spilled(map) => map.len(),
        }
    }

    /// The values, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        let (inline, spilled) = match self {
            Self::Inline { len, entries } => (&entries[..*len], None),
            Self::Spilled(map) => (&[][..], Some(map.values())),
        };
        inline
            .iter()
            .map(|(_, value)| value)
            .chain(spilled.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the keys, a small map holds what a hash map holds.
        #[test]
        fn a_small_map_is_a_map(keys in prop::collection::vec(0_u64..12, 0..40)) {
            let mut small: SmallMap<u64, u32, 4> = SmallMap::new();
            let mut reference: KeyMap<u64, u32> = KeyMap::default();
            for key in keys {
                *small.entry(key) += 1;
                *reference.entry(key).or_default() += 1;
            }
            prop_assert_eq!(small.len(), reference.len());
            let mut values: Vec<u32> = small.values().copied().collect();
            let mut expected: Vec<u32> = reference.values().copied().collect();
            values.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(values, expected);
        }
    }
}
