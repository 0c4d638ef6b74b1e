//! Payload masking (RFC 6455 §5.3) and the masking-key generator.
//!
//! Masking XORs the payload with a 4-byte key repeated. [`mask_copy`] does it 8 bytes at a time while
//! copying the payload into the send buffer (the copy is needed anyway, so masking is nearly free);
//! [`mask_reference`] is the byte-wise definition from §5.3 the fast path is tested against at every
//! length and alignment.
//!
//! Keys come from [`KeyGen`]: a wyrand generator seeded from the OS (`getrandom(2)`). It is fast and
//! unpredictable to anyone without the seed, which is what §10.3 asks of masking keys; it is not a
//! cryptographic generator.

/// Copies `src` into `dst` (same length) XOR-ed with `key`, starting at key phase 0.
///
/// # Panics
/// If the lengths differ (a caller bug, never peer data).
#[inline]
pub(crate) fn mask_copy(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    assert_eq!(dst.len(), src.len(), "mask_copy: length mismatch");
    let k = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        d.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
    }
    // Whole 8-byte chunks keep the key phase at 0 for the tail.
    for (i, (d, s)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *d = s ^ key[i & 3];
    }
}

/// Masks (or unmasks: the operation is its own inverse) `buf` in place, starting at key phase 0.
#[inline]
pub(crate) fn mask_in_place(buf: &mut [u8], key: [u8; 4]) {
    let k = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// The byte-wise definition of §5.3: `out[i] = in[i] ^ key[i % 4]`.
#[cfg(test)]
pub(crate) fn mask_reference(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// How the client picks masking keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskMode {
    /// A fresh key per frame from a generator seeded by the OS (what RFC 6455 §5.3 requires).
    #[default]
    Random,
    /// Mask bit set with the key `00 00 00 00`, so no XOR is needed.
    ///
    /// **Predictable**: this defeats the cache-poisoning protection of §10.3. Only for venues where
    /// the client talks straight to the exchange (no intermediary to poison) and the last
    /// nanoseconds matter. Servers cannot tell the difference and must accept it.
    Zero,
}

/// A wyrand generator seeded from the OS, for masking keys and handshake nonces.
#[derive(Debug, Clone)]
pub(crate) struct KeyGen {
    state: u64,
}

impl KeyGen {
    /// Seeds from `getrandom(2)`; falls back to the standard library's randomly seeded hasher when
    /// the syscall is unavailable.
    pub(crate) fn from_os() -> KeyGen {
        let mut seed = [0u8; 8];
        // SAFETY: `seed` is a live, writable 8-byte buffer and we pass its exact length.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let seed = if n == 8 {
            u64::from_ne_bytes(seed)
        } else {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        KeyGen::from_seed(seed)
    }

    /// A generator with a fixed seed (tests and fuzzing: reproducible keys).
    pub(crate) fn from_seed(seed: u64) -> KeyGen {
        KeyGen { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A fresh masking key.
    #[inline]
    pub(crate) fn key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// Fills `out` with random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_ne_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_match_the_reference_at_every_length_and_alignment() {
        let mut gen = KeyGen::from_seed(7);
        let mut src_store = vec![0u8; 600];
        gen.fill(&mut src_store);
        for len in 0..=520 {
            for align in 0..16 {
                let key = gen.key();
                let src = &src_store[align..align + len];
                let mut expected = src.to_vec();
                mask_reference(&mut expected, key);

                let mut dst_store = vec![0u8; len + 16];
                let dst = &mut dst_store[15 - align..15 - align + len];
                mask_copy(dst, src, key);
                assert_eq!(dst, &expected[..], "mask_copy len {len} align {align}");

                let mut inplace_store = src_store.clone();
                let inplace = &mut inplace_store[align..align + len];
                mask_in_place(inplace, key);
                assert_eq!(
                    inplace,
                    &expected[..],
                    "mask_in_place len {len} align {align}"
                );
                mask_in_place(inplace, key);
                assert_eq!(inplace, src, "unmask len {len} align {align}");
            }
        }
    }

    #[test]
    fn known_vector_from_rfc_6455() {
        // §5.7: "Hello" masked with 37 fa 21 3d.
        let mut out = [0u8; 5];
        mask_copy(&mut out, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(out, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn keys_vary_and_seeds_differ() {
        let mut g = KeyGen::from_os();
        let keys: Vec<_> = (0..64).map(|_| g.key()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert!(distinct.len() > 60, "keys repeat: {keys:?}");
        assert_ne!(KeyGen::from_os().next_u64(), KeyGen::from_os().next_u64());
    }
}
