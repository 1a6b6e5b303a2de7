//! The daemon's randomness for lease selection: xorshift64* seeded from the kernel.

use std::io;

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"): not
/// cryptographic; the engine only needs its random pool probes spread out and unpredictable
/// across restarts, hence the seed from `getrandom(2)`.
#[derive(Clone, Debug)]
pub struct XorShift64Star {
    state: u64,
}

impl XorShift64Star {
    /// A generator from `seed`; a zero seed (the one fixed point of xorshift) is replaced.
    pub const fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }

    /// A generator seeded with 8 bytes from `getrandom(2)`.
    ///
    /// # Errors
    /// If the kernel gives no randomness.
    pub fn from_os() -> io::Result<Self> {
        tandem_datapath::sys::random::seed().map(Self::new)
    }
}

impl tandem_proto::Entropy for XorShift64Star {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tandem_proto::Entropy as _;

    use super::*;

    #[test]
    fn xorshift_known_sequence_from_seed_one() {
        // x = 1 → 1 ^ (1 << 25) = 0x2000001, then ^ (x >> 27) (0) → 0x2000001.
        let mut g = XorShift64Star::new(1);
        assert_eq!(
            g.next_u64(),
            0x0200_0001_u64.wrapping_mul(0x2545_f491_4f6c_dd1d)
        );
    }

    #[test]
    fn xorshift_zero_seed_does_not_stick() {
        let mut g = XorShift64Star::new(0);
        let values: HashSet<u64> = (0..1000).map(|_| g.next_u64()).collect();
        assert_eq!(values.len(), 1000);
    }

    #[test]
    fn from_os_seeds_differ() {
        let mut a = XorShift64Star::from_os().unwrap();
        let mut b = XorShift64Star::from_os().unwrap();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
