//! The paper's own network: the weights the Rockpool authors shipped (NPY), simulated on the seed-2022
//! raster, must give Rockpool's spikes exactly.

use dynap_model::{Input, RunOptions, Simulator};
use dynap_train::task;

#[test]
fn shipped_weights_reproduce_rockpools_spikes_exactly() {
    let fixture = task::seed2022();
    let net = task::shipped_network();
    assert_eq!(
        net.w_in.as_ref().map(|w| (w.rows(), w.cols())),
        Some((60, 2))
    );
    assert_eq!((net.w_rec.rows(), net.w_rec.cols()), (2, 2));
    let r = &fixture.raster;
    assert_eq!((r.samples, r.steps, r.channels), (2, 500, 60));
    let data: Vec<f32> = r.data.iter().map(|&x| x as f32).collect();
    let sim = Simulator::<f32>::new(&net).unwrap();
    let trace = sim
        .run(
            Input::Spikes {
                data: &data,
                batch: 2,
                steps: 500,
            },
            None,
            &RunOptions::default(),
        )
        .unwrap();
    let spikes: Vec<f64> = trace.spikes.iter().map(|&x| f64::from(x)).collect();
    let m = task::metrics(&spikes, 2, 500, 2);
    assert_eq!(m.counts, vec![vec![49.0, 1.0], vec![8.0, 49.0]]);
    assert_eq!(fixture.expected_counts, m.counts);
    assert_eq!(
        spikes, fixture.expected_spikes,
        "spike trains differ from Rockpool's"
    );
    assert!(m.correct);
    // paper.md section 9: MSE 0.4555, FRR 49.0 and 6.1.
    assert!((m.mse - 0.4555).abs() < 5e-5, "{}", m.mse);
    assert!(
        (m.frr[0] - 49.0).abs() < 1e-12 && (m.frr[1] - 6.125).abs() < 1e-12,
        "{:?}",
        m.frr
    );
}
