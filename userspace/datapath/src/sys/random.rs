//! Seed randomness from the kernel (`getrandom(2)`).

use std::io;

/// Fills `buf` from `getrandom(2)` (blocking only until the kernel's pool is initialised, at
/// boot).
///
/// # Errors
/// If the kernel gives no randomness.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        // SAFETY: `rest` is a live, exclusively borrowed buffer of the length passed.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// 8 random bytes from the kernel as a `u64`, e.g. a generator's seed.
///
/// # Errors
/// If the kernel gives no randomness.
pub fn seed() -> io::Result<u64> {
    let mut seed = [0u8; 8];
    fill(&mut seed)?;
    Ok(u64::from_ne_bytes(seed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_seeds_differ() {
        assert_ne!(super::seed().unwrap(), super::seed().unwrap());
    }
}
