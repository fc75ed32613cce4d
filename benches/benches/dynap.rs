//! criterion benchmarks of the hot paths, one module per area.

use criterion::{Criterion, criterion_group, criterion_main};

mod simulation {
    use criterion::{BenchmarkId, Criterion};
    use dynap_model::{Input, RunOptions, Simulator};
    use dynap_train::bench::{BENCH_STEPS, bench_input, bench_network};
    use std::time::Duration;

    /// The forward pass of `cargo xtask bench`: LinearJax(60 -> N) + recurrent DynapSim(N), T = 1000,
    /// f32, spikes only; N in {16, 64, 256} x batch {1, 8}, plus one full chip (N = 1024, batch 1).
    pub(crate) fn forward(c: &mut Criterion) {
        let mut group = c.benchmark_group("forward_t1000");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for (n, batch) in [
            (16, 1),
            (16, 8),
            (64, 1),
            (64, 8),
            (256, 1),
            (256, 8),
            (1024, 1),
        ] {
            let net = bench_network(n, 0);
            let input = bench_input(batch, BENCH_STEPS, n as u64);
            let sim = Simulator::<f32>::new(&net).expect("valid benchmark network");
            group.bench_with_input(
                BenchmarkId::new(format!("n{n}"), format!("batch{batch}")),
                &batch,
                |b, &batch| {
                    b.iter(|| {
                        sim.run(
                            Input::Spikes {
                                data: &input,
                                batch,
                                steps: BENCH_STEPS,
                            },
                            None,
                            &RunOptions::default(),
                        )
                        .expect("input fits")
                    })
                },
            );
        }
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    simulation::forward(c);
}

criterion_group!(dynap, benches);
criterion_main!(dynap);
