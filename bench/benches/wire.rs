//! Wire hot paths: `cargo bench -p tandem-bench` (add `-- --quick` for a short run).
//!
//! Each benchmark is one request handled end to end by the workloads in `tandem_bench`: parse
//! what arrives, emit what goes back, into a reused buffer.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_bench::{Fixtures, advertise, frame_reply, relayed_reply};

fn wire(c: &mut Criterion) {
    let f = Fixtures::new().expect("fixtures build");
    let server_id = f.server_id();
    let mut out = [0u8; 1500];
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));

    group.bench_function("solicit_advertise", |b| {
        b.iter(|| advertise(black_box(&f.solicit), server_id, &mut out).expect("ADVERTISE"));
    });
    group.bench_function("relayed_request_reply", |b| {
        b.iter(|| {
            relayed_reply(black_box(&f.relay_forw_request), server_id, &mut out).expect("REPLY")
        });
    });
    let n = advertise(&f.solicit, server_id, &mut out).expect("ADVERTISE");
    let advertise_bytes = out[..n].to_vec();
    group.bench_function("frame_parse_reply_headers", |b| {
        b.iter(|| {
            frame_reply(black_box(&f.solicit_frame), &advertise_bytes, &mut out).expect("frame")
        });
    });
    group.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
