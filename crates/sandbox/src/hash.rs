//! Deterministic pseudo-randomness: every "random" choice in the sandbox is a pure function of
//! the seed and a position, so two sandboxes with the same seed behave identically.

/// The splitmix64 finaliser: cheap, stateless and well distributed, which lets us derive any
/// value from (seed, position) without keeping generator state around.
pub(crate) const fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a seed and two coordinates; chaining through `mix` keeps (a, b) and (b, a) apart.
pub(crate) const fn hash3(seed: u64, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed) ^ a) ^ b)
}

/// Maps a hash onto [0, 1) using its top 53 bits (all an f64 mantissa can hold).
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Domain separators so independent decisions drawn from the same counter don't correlate.
pub(crate) mod salt {
    pub(crate) const ERROR_RATE: u64 = 0x0e44_0e44;
    pub(crate) const RATE_LIMIT: u64 = 0x0429_0429;
    pub(crate) const TOKEN_A: u64 = 0x7043_e101;
    pub(crate) const TOKEN_B: u64 = 0x7043_e102;
    pub(crate) const CURSOR: u64 = 0xc025_0e00;
    pub(crate) const TOUCH: u64 = 0x7041_c400;
    pub(crate) const BAD_RECORD: u64 = 0xbad0_bad0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut below_half = 0;
        for i in 0..10_000u64 {
            let u = unit(hash3(1, 2, i));
            assert!((0.0..1.0).contains(&u));
            if u < 0.5 {
                below_half += 1;
            }
        }
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }

    #[test]
    fn hash_depends_on_every_input() {
        let base = hash3(1, 2, 3);
        assert_ne!(base, hash3(0, 2, 3));
        assert_ne!(base, hash3(1, 0, 3));
        assert_ne!(base, hash3(1, 2, 0));
        assert_ne!(hash3(1, 2, 3), hash3(1, 3, 2));
    }
}
