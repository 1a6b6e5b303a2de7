//! What `tandem` writes on stdout: the machine-readable result lines of its contract
//! (`READY …`, `COUNTERS …`, `WORKER …`), each flushed at once; and the hex form of DUIDs in
//! those lines and in logs.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use anyhow::Context as _;

/// Prints one line on stdout and flushes it (the READY/COUNTERS/WORKER lines are read by
/// scripts and tests while the process runs).
///
/// # Errors
/// stdout is closed or full.
pub fn emit_line(line: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Lower-case hex of `bytes`, no separators (how DUIDs are printed).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
