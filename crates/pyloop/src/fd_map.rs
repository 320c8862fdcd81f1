//! Maps keyed by descriptor number, hashed with one multiplication.
//!
//! The loop looks a descriptor up in its transports and its socket waits on
//! every readiness event, and a socket wait adds and removes its entry each
//! time. `HashMap`'s default hasher (SipHash-1-3) resists keys chosen by an
//! attacker, which descriptor numbers are not: the kernel hands out the
//! lowest free number. Replacing it cut about 70 instructions a lookup under
//! callgrind (`protocol_echo` in benchmarks/instr: 134 a round trip, two
//! lookups); a multiplication by an odd constant spreads consecutive numbers
//! over the table's buckets and control bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from descriptor number to `V`.
pub(crate) type FdMap<V> = HashMap<i32, V, BuildHasherDefault<FdHasher>>;

/// Hashes one descriptor number: the number times 2^64 / φ (odd), so the
/// high bits (hashbrown's control bytes) and the low bits (its bucket index)
/// both change with every number.
#[derive(Default, Clone, Copy)]
pub(crate) struct FdHasher(u64);

impl Hasher for FdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for `i32` keys (`write_i32` below); correct for any key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, n: i32) {
        self.0 = u64::from(n as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_their_values() {
        let mut map: FdMap<i32> = FdMap::default();
        for fd in (0..5000).chain([-1, i32::MAX, i32::MIN]) {
            map.insert(fd, fd.wrapping_mul(3));
        }
        for fd in (0..5000).chain([-1, i32::MAX, i32::MIN]) {
            assert_eq!(map.get(&fd), Some(&fd.wrapping_mul(3)));
        }
        assert_eq!(map.get(&5000), None);
        assert_eq!(map.len(), 5003);
    }

    #[test]
    fn consecutive_numbers_differ_in_high_and_low_bits() {
        let hash = |fd: i32| {
            let mut h = FdHasher::default();
            h.write_i32(fd);
            h.finish()
        };
        let top7: std::collections::HashSet<u64> = (0..128).map(|fd| hash(fd) >> 57).collect();
        let low7: std::collections::HashSet<u64> = (0..128).map(|fd| hash(fd) & 127).collect();
        assert!(top7.len() > 64, "control bytes collide: {}", top7.len());
        assert_eq!(low7.len(), 128, "bucket indices collide");
    }
}
