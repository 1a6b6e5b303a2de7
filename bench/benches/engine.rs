//! The DHCPv6 engine end to end: `cargo bench -p tandem-bench --bench engine` (add
//! `-- --quick`).
//!
//! `tandem_proto::Engine::handle` with the real memory-mapped lease store (`tandem_store`, a
//! file of [`CAPACITY`] bindings in a temporary directory), one subnet whose address pool is a
//! whole /64, and a **new client** (a fresh DUID) in every iteration, never a known client
//! renewing (the workload is `tandem_bench::engine`):
//!
//! * `solicit_advertise`: SOLICIT (IA_NA) → ADVERTISE: lease selection, no commit.
//! * `request_reply`: REQUEST (IA_NA with a free address of the pool as its hint) → REPLY: the
//!   lease committed to the store.
//! * `solicit_request_exchange`: both, the REQUEST for the address the ADVERTISE offered (the
//!   client side, patching a template and reading the ADVERTISE, is included): ns per whole
//!   exchange.
//!
//! The committing benchmarks fill the store by one binding per iteration; a full store is
//! replaced by an empty one outside the timed sections, so the pool and the store never run
//! out however many iterations Criterion asks for.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_bench::engine::EngineBench;

/// Bindings per store file (256 MiB of file, mapped).
const CAPACITY: u64 = 1 << 20;

fn engine(c: &mut Criterion) {
    let mut bench = EngineBench::new(CAPACITY).expect("open the lease store");
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("solicit_advertise", |b| {
        b.iter(|| black_box(bench.solicit_advertise()));
    });
    group.bench_function("request_reply", |b| {
        b.iter_custom(|iters| committing(&mut bench, iters, EngineBench::request_only));
    });
    group.bench_function("solicit_request_exchange", |b| {
        b.iter_custom(|iters| committing(&mut bench, iters, EngineBench::exchange));
    });
    group.finish();
}

/// Runs `f` (which commits one binding) `iters` times and returns the time spent in it; a full
/// store is replaced between timed runs.
fn committing(bench: &mut EngineBench, iters: u64, f: fn(&mut EngineBench) -> usize) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        if bench.room() == 0 {
            bench.renew_store().expect("a new lease store");
        }
        let n = left.min(bench.room());
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(f(bench));
        }
        total += t0.elapsed();
        left -= n;
    }
    total
}

criterion_group!(benches, engine);
criterion_main!(benches);
