//! Lease store hot paths: `cargo bench -p tandem-bench --bench store` (add `-- --quick`).
//!
//! A store of 1 M bindings (1 M address records, 250 k clients with 4 IAs' worth of
//! addresses each) in a temporary directory; `get` of a random existing address, `put` updating
//! a random existing binding (journal + record + possibly client index), `put` of new bindings
//! (append + both indexes) and `for_client`.

use std::hint::black_box;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_lease::{Binding, BindingStatus, DuidBuf, FailoverTime, LeaseKind, LeaseStore};
use tandem_store::{Store, StoreOptions};

const N: u64 = 1_000_000;

fn binding(i: u64, valid: u32) -> Binding {
    let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
    let mut b = Binding::free(LeaseKind::Address, addr, 128, 0);
    b.status = BindingStatus::ACTIVE;
    let client = (i / 4).to_be_bytes();
    let mut duid = [0u8; 14];
    duid[..4].copy_from_slice(&[0, 1, 0, 1]);
    duid[6..].copy_from_slice(&client);
    b.duid = DuidBuf::new(&duid).expect("14-byte DUID");
    b.iaid = 1;
    b.valid = valid;
    b.state_expiration_time = FailoverTime(valid);
    b
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("tandem-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    Dir(d)
}

/// xorshift64: a cheap random index.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn store(c: &mut Criterion) {
    let d = dir("store");
    let opts = StoreOptions {
        capacity: N,
        flush_interval: Duration::from_secs(3600),
    };
    let mut s = Store::open(&d.0, opts).expect("open");
    for i in 0..N {
        s.put(&binding(i, 1)).expect("fill");
    }
    let mut group = c.benchmark_group("store_1m");
    group.throughput(Throughput::Elements(1));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    group.bench_function("get", |b| {
        b.iter(|| {
            let i = next(&mut x) % N;
            let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
            black_box(s.get(LeaseKind::Address, black_box(addr))).expect("present")
        });
    });
    let key = binding(12_345, 1).client();
    group.bench_function("for_client", |b| {
        b.iter(|| {
            let mut n = 0;
            s.for_client(black_box(&key), &mut |_| n += 1);
            assert_eq!(n, 4);
        });
    });
    let mut valid = 2u32;
    group.bench_function("put_update", |b| {
        b.iter(|| {
            valid = valid.wrapping_add(1);
            s.put(&binding(next(&mut x) % N, valid)).expect("update");
        });
    });
    group.bench_function("put_new", |b| {
        b.iter_custom(|iters| {
            let d = dir("store-new");
            let opts = StoreOptions {
                capacity: iters.max(1),
                flush_interval: Duration::from_secs(3600),
            };
            let mut s = Store::open(&d.0, opts).expect("open");
            let t0 = Instant::now();
            for i in 0..iters {
                s.put(&binding(i, 1)).expect("insert");
            }
            t0.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
