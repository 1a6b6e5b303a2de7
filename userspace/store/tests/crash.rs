//! Crash test: a child process (this binary re-executed with `TANDEM_STORE_CRASH_CHILD` set)
//! puts bindings in a loop and prints each sequence number after its `put` returned; the parent
//! kills it with SIGKILL at a random moment, reopens the store and checks that every reported
//! put is present and intact, that no record fails its CRC and that the indexes find every
//! record. Repeated `ITERATIONS` times on the same file.
//!
//! `harness = false`: `main` is the test; it exits non-zero on failure.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_lease::{Binding, BindingStatus, DuidBuf, FailoverTime, LeaseKind, LeaseStore};
use tandem_store::{Recovery, Store, StoreOptions};

const ENV: &str = "TANDEM_STORE_CRASH_CHILD";
const ITERATIONS: usize = 25;
const ADDRS: u64 = 40_000;
const CAPACITY: u64 = 100_000;

fn options() -> StoreOptions {
    StoreOptions {
        capacity: CAPACITY,
        flush_interval: Duration::from_secs(3600),
    }
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Which address operation `i` writes.
fn slot_of(i: u64) -> u64 {
    mix(i) % ADDRS
}

fn addr_of(slot: u64) -> (LeaseKind, Ipv6Addr) {
    let kind = if slot.is_multiple_of(5) {
        LeaseKind::Prefix
    } else {
        LeaseKind::Address
    };
    (
        kind,
        Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(slot) << 8),
    )
}

/// The binding operation `i` writes: everything derived from `i`, `valid` = `i`.
fn op(i: u64) -> Binding {
    let (kind, addr) = addr_of(slot_of(i));
    let len = if kind == LeaseKind::Prefix { 56 } else { 128 };
    let mut b = Binding::free(kind, addr, len, (i % 3) as u32);
    let h = mix(i ^ 0x5555);
    b.status = if h.is_multiple_of(3) {
        BindingStatus::RELEASED
    } else {
        BindingStatus::ACTIVE
    };
    let mut duid = vec![0, 3, 0, 1, (h >> 8) as u8 % 40];
    duid.resize(5 + (h >> 16) as usize % 100, 0xee);
    b.duid = DuidBuf::new(&duid).expect("short DUID");
    b.iaid = (h >> 24) as u32 % 4;
    b.valid = u32::try_from(i).expect("fewer than 2^32 ops");
    b.cltt = FailoverTime((h >> 32) as u32);
    b.t1 = (h >> 40) as u32;
    b
}

fn child(dir: &Path, start: u64) -> ! {
    let mut store = Store::open(dir, options()).expect("child open");
    let mut out = std::io::stdout().lock();
    for i in start.. {
        store.put(&op(i)).expect("child put");
        writeln!(out, "{i}")
            .and_then(|()| out.flush())
            .expect("child stdout");
    }
    unreachable!("killed long before 2^64 puts")
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(dir: &Path, confirmed: u64, last_op: &[Option<u64>]) -> Result<Recovery, String> {
    let store = Store::open(dir, options()).map_err(|e| format!("reopen: {e}"))?;
    let rec = store.recovery();
    let report = store.verify();
    if !report.is_ok() {
        return Err(format!("verify after {confirmed} puts: {report:?}"));
    }
    for (slot, last) in last_op.iter().enumerate() {
        let Some(last) = *last else { continue };
        let (kind, addr) = addr_of(slot as u64);
        let got = store
            .get(kind, addr)
            .ok_or_else(|| format!("binding of op {last} ({addr}) lost"))?;
        let i = u64::from(got.valid);
        if i < last || op(i) != got {
            return Err(format!(
                "{addr}: stored {got:?}, expected op {last} or a later one"
            ));
        }
        let mut found = false;
        store.for_client(&got.client(), &mut |b| {
            found |= b.addr == addr && b.kind == kind
        });
        if !found {
            return Err(format!("{addr}: client index misses it"));
        }
    }
    Ok(rec)
}

fn parent() -> Result<(), String> {
    let dir =
        TempDir(std::env::temp_dir().join(format!("tandem-store-crash-{}", std::process::id())));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rng = mix(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64))
        | 1;
    let mut confirmed = 0u64;
    let mut last_op: Vec<Option<u64>> = vec![None; ADDRS as usize];
    let mut kinds = [0usize; 3];
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .env(ENV, &dir.0)
            .arg(confirmed.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let seen = Arc::new(AtomicU64::new(u64::MAX));
        let reader = {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(i) = line.trim().parse::<u64>() {
                        seen.store(i, Ordering::SeqCst);
                    }
                }
            })
        };
        // Wait until the child is putting, then kill it after a random delay.
        let t0 = Instant::now();
        while seen.load(Ordering::SeqCst) == u64::MAX {
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                return Err("child made no progress".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 80_000));
        child.kill().map_err(|e| format!("kill: {e}"))?;
        let status = child.wait().map_err(|e| e.to_string())?;
        reader.join().map_err(|_| "reader panicked")?;
        if status.success() {
            return Err("child exited by itself".into());
        }
        let new_confirmed = seen.load(Ordering::SeqCst) + 1;
        for i in confirmed..new_confirmed {
            last_op[slot_of(i) as usize] = Some(i);
        }
        confirmed = new_confirmed;
        let rec = check(&dir.0, confirmed, &last_op)?;
        kinds[0] += usize::from(rec.journal_restored);
        kinds[1] += usize::from(rec.journal_kept);
        kinds[2] += usize::from(rec.orphan_discarded);
        println!("iteration {iteration}: {confirmed} puts confirmed; {rec:?}");
    }
    println!(
        "crash test: {ITERATIONS} kills, {confirmed} puts, all present and intact; recoveries: \
         {} torn updates restored, {} in-flight updates kept, {} uncommitted records discarded",
        kinds[0], kinds[1], kinds[2]
    );
    Ok(())
}

fn main() {
    if let Some(dir) = std::env::var_os(ENV) {
        let start = std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), start);
    }
    if let Err(e) = parent() {
        eprintln!("crash test FAILED: {e}");
        std::process::exit(1);
    }
}
