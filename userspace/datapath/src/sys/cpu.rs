//! The CPUs this process may run on, and undoing a thread's pinning.

/// The CPUs this process may run on (the affinity of its main thread, which Tandem never
/// pins), ascending; empty if the kernel does not say.
pub fn allowed_cores() -> Vec<usize> {
    let Some(set) = process_cpu_set() else {
        return Vec::new();
    };
    let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
    // SAFETY: CPU_ISSET only reads bit `c < CPU_SETSIZE` of `set`, in bounds.
    (0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Lets the calling thread run on every CPU the process's main thread may use (the process's
/// CPU set: the main thread is never pinned). `false` if the kernel refused.
pub fn unpin_current_thread() -> bool {
    let Some(set) = process_cpu_set() else {
        return false;
    };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 names the calling thread.
    unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) == 0 }
}

/// The affinity of the process's main thread (`sched_getaffinity(getpid())`).
fn process_cpu_set() -> Option<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: getpid has no preconditions; its id names the main thread. `set` is a valid,
    // exclusively borrowed cpu_set_t of the size passed, which the call fills.
    let rc = unsafe {
        libc::sched_getaffinity(libc::getpid(), size_of::<libc::cpu_set_t>(), &raw mut set)
    };
    (rc == 0).then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_cores_ascending_and_match_core_affinity() {
        let cores = allowed_cores();
        assert!(!cores.is_empty());
        assert!(cores.windows(2).all(|w| w[0] < w[1]), "{cores:?}");
        let ids: Vec<usize> = core_affinity::get_core_ids()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(cores, ids);
    }
}
