//! What aggregation costs next to moving the same bytes: the example-weighted mean of 10
//! clients × 1M f32 against a plain copy of those 40 MB, plus the coordinate-wise rules.
//! Run: `cargo bench -p fedsa-aggregators --bench aggregate`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fedsa_aggregators::{Median, TrimmedMean};
use fedsa_core::{Aggregator, ClientUpdate, ParamSet, weighted_mean};

const CLIENTS: usize = 10;
const VALUES: usize = 1 << 20;

fn updates() -> (ParamSet, Vec<ClientUpdate>) {
    let mut global = ParamSet::new();
    global
        .insert("w", vec![VALUES], vec![0.0; VALUES])
        .expect("shape");
    let updates = (0..CLIENTS)
        .map(|c| {
            let mut p = ParamSet::new();
            let data = (0..VALUES)
                .map(|j| ((j * 31 + c * 7) % 97) as f32 / 97.0)
                .collect();
            p.insert("w", vec![VALUES], data).expect("shape");
            ClientUpdate {
                client: c,
                num_examples: 100 + c,
                params: p,
            }
        })
        .collect();
    (global, updates)
}

fn bench(c: &mut Criterion) {
    let (global, updates) = updates();
    let mut group = c.benchmark_group("aggregate_10x1M");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((CLIENTS * VALUES * 4) as u64));

    group.bench_function("memcpy", |b| {
        let mut dst = vec![0f32; VALUES];
        b.iter(|| {
            for u in &updates {
                dst.copy_from_slice(u.params.get("w").expect("w").data());
                black_box(&mut dst);
            }
        });
    });
    group.bench_function("weighted_mean", |b| {
        b.iter(|| black_box(weighted_mean(&global, &updates).expect("mean")));
    });
    group.bench_function("trimmed_mean", |b| {
        let mut agg = TrimmedMean::new(0.2).expect("trim");
        b.iter(|| black_box(agg.aggregate(1, &global, &updates, &[]).expect("trimmed")));
    });
    group.bench_function("median", |b| {
        b.iter(|| black_box(Median.aggregate(1, &global, &updates, &[]).expect("median")));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
