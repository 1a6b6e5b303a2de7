//! CRC-32C with the x86-64 SSE 4.2 `crc32` instruction (Intel SDM "CRC32 — Accumulate CRC32
//! Value": the Castagnoli polynomial, reflected, exactly [`crate::record::crc32c_sliced`]).
//!
//! The instruction's latency is three cycles and its throughput one per cycle, so a single
//! chain over 220 octets waits on itself; the record-sized input is short enough that three
//! interleaved chains combined by a shift table would add code for little, so this is one
//! chain of 8-octet steps. Measured through the store (`cargo bench -p tandem-bench --bench
//! store -- --quick`, 1 M bindings, on a loaded 2-vCPU VM): `put` of an update 1 047 → 636 ns,
//! of a new binding 563 → 412 ns, against the table-driven CRC.

use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};

/// CRC-32C of `data` with the `crc32` instruction, or `None` if the CPU has no SSE 4.2
/// (detected once; `is_x86_feature_detected!` caches it).
pub(crate) fn crc32c(data: &[u8]) -> Option<u32> {
    if !std::arch::is_x86_feature_detected!("sse4.2") {
        return None;
    }
    // SAFETY: SSE 4.2 is present (checked just above), which is all `crc32c_sse42` needs.
    Some(unsafe { crc32c_sse42(data) })
}

/// # Safety
/// The CPU must support SSE 4.2.
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(data: &[u8]) -> u32 {
    let mut crc = u64::from(!0u32);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(b));
    }
    // The instruction leaves the upper half zero.
    let mut crc = crc as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}
