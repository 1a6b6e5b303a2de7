//! Measures the lease store at scale: `store_capacity [N] [DIR]` (default N = 10_000_000, DIR =
//! a new directory under the system temp dir, deleted at the end).
//!
//! 1. Creates a store of capacity N and fills it with N bindings (the time is printed).
//! 2. Prints the file size ÷ N (bytes per binding).
//! 3. Re-executes itself (`--open DIR ADDR`) so the open happens in a fresh process, and prints
//!    the time from `Store::open` to the first successful `get` (the page cache is warm: the
//!    file was just written; dropping caches needs root).
//! 4. Re-executes itself (`--stale DIR`) to open the store, `Store::sync_records` and exit
//!    without closing (as a server killed after syncing a partner's updates before its next
//!    full flush), then opens it again as in 3: that open rebuilds both indexes.
//! 5. Deletes the directory (unless DIR was given).

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use tandem_lease::{Binding, BindingStatus, DuidBuf, FailoverTime, LeaseKind, LeaseStore};
use tandem_store::{Store, StoreOptions};

fn binding(i: u64) -> Binding {
    let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
    let mut b = Binding::free(LeaseKind::Address, addr, 128, 0);
    b.status = BindingStatus::ACTIVE;
    let mut duid = [0u8; 14];
    duid[..4].copy_from_slice(&[0, 1, 0, 1]);
    duid[6..].copy_from_slice(&i.to_be_bytes());
    b.duid = DuidBuf::new(&duid).expect("14-byte DUID");
    b.iaid = 1;
    b.valid = 7200;
    b.state_expiration_time = FailoverTime(7200);
    b
}

fn options(n: u64) -> StoreOptions {
    StoreOptions {
        capacity: n,
        flush_interval: Duration::from_secs(3600),
    }
}

/// The `--stale` phase: records synced, indexes not, no clean close.
fn stale_phase(dir: &Path) -> Result<(), String> {
    let mut s = Store::open(dir, options(1)).map_err(|e| e.to_string())?;
    s.sync_records().map_err(|e| e.to_string())?;
    // Killed: no `close`, no destructor.
    std::process::exit(0)
}

/// The `--open` phase, in a fresh process.
fn open_phase(dir: &Path, i: u64) -> Result<(), String> {
    let t0 = Instant::now();
    let s = Store::open(dir, options(1)).map_err(|e| e.to_string())?;
    let b = binding(i);
    let got = s.get(b.kind, b.addr);
    let dt = t0.elapsed();
    if got != Some(b) {
        return Err(format!("binding {i} not found after reopen"));
    }
    println!(
        "open + first get: {:.3} ms (fresh process, {} bindings, recovery {:?})",
        dt.as_secs_f64() * 1e3,
        s.len(),
        s.recovery()
    );
    Ok(())
}

fn run(n: u64, dir: &Path) -> Result<(), String> {
    let t0 = Instant::now();
    {
        let mut s = Store::open(dir, options(n)).map_err(|e| e.to_string())?;
        for i in 0..n {
            s.put(&binding(i)).map_err(|e| e.to_string())?;
        }
        let fill = t0.elapsed();
        println!(
            "filled {n} bindings in {:.1} s ({:.0} puts/s)",
            fill.as_secs_f64(),
            n as f64 / fill.as_secs_f64()
        );
        let t1 = Instant::now();
        s.close().map_err(|e| e.to_string())?;
        println!(
            "close (msync of everything): {:.1} s",
            t1.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(dir.join(tandem_store::FILE_NAME))
        .map_err(|e| e.to_string())?
        .len();
    println!(
        "file size {size} bytes = {:.2} GB; {:.3} bytes per binding",
        size as f64 / 1e9,
        size as f64 / n as f64
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new(&exe)
        .arg("--open")
        .arg(dir)
        .arg((n / 2).to_string())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("open phase failed".into());
    }
    println!("after a stop with the indexes older than the records (sync_records, no close):");
    for phase in ["--stale", "--open"] {
        let status = Command::new(&exe)
            .arg(phase)
            .arg(dir)
            .arg((n / 3).to_string())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("{phase} phase failed"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--stale") {
        stale_phase(&args.get(1).map(PathBuf::from).unwrap_or_default())
    } else if args.first().map(String::as_str) == Some("--open") {
        let dir = args.get(1).map(PathBuf::from).unwrap_or_default();
        let i = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
        open_phase(&dir, i)
    } else {
        let n = args
            .first()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000_000);
        let (dir, temporary) = match args.get(1) {
            Some(d) => (PathBuf::from(d), false),
            None => (
                std::env::temp_dir().join(format!("tandem-store-capacity-{}", std::process::id())),
                true,
            ),
        };
        let r = run(n, &dir);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        r
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_capacity: {e}");
            ExitCode::FAILURE
        }
    }
}
