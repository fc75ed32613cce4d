use dynap_model::{Input, Network, RunOptions, Simulator};
fn main() {
    let steps = 100;
    for scale in [4.0f64, 10.0] {
        println!("Igain_mem scale {scale}");
        for idc in [1e-11, 3e-11, 1e-10, 3e-10, 1e-9, 3e-9, 1e-8] {
            let mut net = Network::with_defaults(1);
            net.params.i_dc = vec![idc];
            net.params.i_gain_mem = vec![net.params.i_gain_mem[0] * scale];
            net.params.i_tau_mem = vec![net.params.i_tau_mem[0] * scale];
            let x = vec![0.0f64; steps];
            let t = Simulator::<f64>::new(&net)
                .unwrap()
                .run(
                    Input::Weighted {
                        data: &x,
                        batch: 1,
                        steps,
                    },
                    None,
                    &RunOptions::default(),
                )
                .unwrap();
            println!(
                "  Idc {idc:e}: {} spikes in {steps} ms",
                t.spikes.iter().sum::<f64>()
            );
        }
    }
    // Input weight w at a 200 Hz train (every 5 steps)
    for w in [0.1, 0.3, 1.0, 3.0, 10.0] {
        let mut net = Network::with_defaults(1);
        net.params.i_gain_mem = vec![net.params.i_gain_mem[0] * 4.0];
        net.params.i_tau_mem = vec![net.params.i_tau_mem[0] * 4.0];
        let x: Vec<f64> = (0..steps)
            .map(|t| if t % 5 == 0 { w } else { 0.0 })
            .collect();
        let t = Simulator::<f64>::new(&net)
            .unwrap()
            .run(
                Input::Weighted {
                    data: &x,
                    batch: 1,
                    steps,
                },
                None,
                &RunOptions::default(),
            )
            .unwrap();
        net.params.i_dc = vec![5e-13];
        println!("w {w} at 200 Hz: {} spikes", t.spikes.iter().sum::<f64>());
    }
}
