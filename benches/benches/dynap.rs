//! criterion benchmarks of the hot paths, one module per area.

use criterion::{Criterion, criterion_group, criterion_main};

mod simulation {
    use criterion::{BenchmarkId, Criterion};
    use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
    use dynap_model::{Input, RunOptions, Simulator};
    use dynap_train::bench::{BENCH_INPUTS, BENCH_ROWS, BENCH_STEPS, bench_input, bench_network};
    use std::time::Duration;

    fn configure<'a>(
        c: &'a mut Criterion,
        name: &str,
    ) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        group
    }

    /// The forward pass of `cargo xtask bench`: LinearJax(60 -> N) + recurrent DynapSim(N), T = 1000,
    /// f32, spikes only; N in {16, 64, 256} x batch {1, 8}, plus one full chip (N = 1024, batch 1).
    pub(crate) fn forward(c: &mut Criterion) {
        let mut group = configure(c, "forward_t1000");
        for (n, batch) in BENCH_ROWS {
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

    /// Value and gradient of a spike-count MSE with respect to both weight matrices, through the training
    /// path (the layer's fused pass and adjoint, the input held once): what Rockpool's script times as
    /// `vg`, and what `cargo xtask bench` times.
    pub(crate) fn forward_backward(c: &mut Criterion) {
        let mut group = configure(c, "forward_backward_t1000");
        for (n, batch) in BENCH_ROWS {
            let net = bench_network(n, 0);
            let trainer = Trainer::<f32>::new(net, CurrentTraining::none(), 1e-2)
                .expect("valid benchmark network");
            let x = SpikeInput::new(
                bench_input(batch, BENCH_STEPS, n as u64),
                batch,
                BENCH_STEPS,
                BENCH_INPUTS,
            )
            .expect("input fits");
            let loss = Loss::CountMse {
                target: vec![5.0; n],
            };
            group.bench_with_input(
                BenchmarkId::new(format!("n{n}"), format!("batch{batch}")),
                &batch,
                |b, _| {
                    b.iter(|| {
                        trainer
                            .value_and_gradient(&x, &loss)
                            .expect("input and target fit")
                    })
                },
            );
        }
        group.finish();
    }
}

mod quantization {
    use criterion::Criterion;
    use dynap_train::bench::quant_workload;
    use std::time::Duration;

    /// DESIGN.md's quantization target: a dense 60 x 256 input and 256 x 256 recurrent matrix on one
    /// core, the default quantizer (alternating, snapped to the bias generator); target < 1 s.
    pub(crate) fn per_core(c: &mut Criterion) {
        let (w_in, w_rec) = quant_workload(0);
        let map = vec![0; 256];
        let options = dynap_quant::Options::default();
        let mut group = c.benchmark_group("quantize");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        group.bench_function("alternating_snapped_60x256_256x256", |b| {
            b.iter(|| {
                dynap_quant::quantize(Some(&w_in), Some(&w_rec), &map, 1e-8, &options)
                    .expect("valid workload")
            })
        });
        group.finish();
    }
}

mod configuration {
    use criterion::Criterion;
    use dynap_train::bench::board_workload;
    use std::time::Duration;

    /// DESIGN's configuration target: mapping and encoding a full 4-chip board, under 1 s.
    pub(crate) fn full_board(c: &mut Criterion) {
        let (q, p) = board_workload(0);
        let opts = dynap_config::MapOptions::default();
        let mut group = c.benchmark_group("configuration");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5))
            .warm_up_time(Duration::from_millis(500));
        group.bench_function("map_and_encode_4_chips", |b| {
            b.iter(|| {
                let m = dynap_config::map(&q, &p, 1e-3, dynap_model::Variant::Rockpool, &opts)
                    .expect("fits");
                (
                    dynap_config::to_json(&m.config).len(),
                    dynap_config::to_binary(&m.config).len(),
                )
            })
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    simulation::forward(c);
    simulation::forward_backward(c);
    quantization::per_core(c);
    configuration::full_board(c);
}

criterion_group!(dynap, benches);
criterion_main!(dynap);
