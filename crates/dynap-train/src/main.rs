//! The `dynap` command-line program: the entry point `cargo xtask` drives.
//!
//! Exit codes: 0 success, 1 failure (with a message), 2 bad arguments (with usage).

use dynap_model::{Input, RunOptions, Simulator};
use dynap_train::{golden, task};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: dynap <command> [options]

commands:
  train [--quiet]     run the main flow on the built-in default task (see below)
  golden <DIR>        check every *.json golden case in DIR against Rockpool 3.1.0's numbers;
                      one line per case, then 'N passed, M failed'; exit 1 if any failed
  help                this text

Status: simulation, the bias generator, parameter translation and the golden harness are built.
Training, mismatch, quantization, mapping and devices are not built yet; `dynap train` runs the most
complete flow there is: the paper's frozen-noise network with the authors' trained weights.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["golden", dir] => run_golden(dir),
        ["train", rest @ ..] if rest.iter().all(|a| *a == "--quiet") => run_train(!rest.is_empty()),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("dynap: bad arguments: {}\n\n{USAGE}", args.join(" "));
            ExitCode::from(2)
        }
    }
}

fn run_golden(dir: &str) -> ExitCode {
    let outcomes = match golden::check_dir(std::path::Path::new(dir)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dynap golden: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for o in &outcomes {
        match &o.result {
            Ok(()) => println!("PASS {}", o.name),
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", o.name);
            }
        }
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_train(quiet: bool) -> ExitCode {
    let fixture = task::seed2022();
    let net = task::shipped_network();
    let r = &fixture.raster;
    let sim = match Simulator::<f32>::new(&net) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dynap train: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data: Vec<f32> = r.data.iter().map(|&x| x as f32).collect();
    let start = Instant::now();
    let trace = match sim.run(
        Input::Spikes {
            data: &data,
            batch: r.samples,
            steps: r.steps,
        },
        None,
        &RunOptions::default(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dynap train: {e}");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();
    let spikes: Vec<f64> = trace.spikes.iter().map(|&x| f64::from(x)).collect();
    let m = task::metrics(&spikes, r.samples, r.steps, net.neurons());
    let identical = spikes == fixture.expected_spikes;
    if !quiet {
        println!(
            "dynap train: training is not built yet (it comes with the mismatch-aware training issue)."
        );
        println!("Running the most complete flow there is: the paper's frozen-noise network");
        println!(
            "  LinearJax(60 -> 2) + recurrent DynapSim(2), Iscale 1e-8 A, the weights the Rockpool authors"
        );
        println!(
            "  shipped, on the seed-2022 raster (2 patterns x 500 steps of 1 ms x 60 Poisson channels)."
        );
        println!();
        println!("sample  target  counts (neuron 0, neuron 1)  Rockpool 3.1.0  firing-rate ratio");
        for (s, c) in m.counts.iter().enumerate() {
            println!(
                "{s:>6}  {s:>6}  {:>28}  {:>14}  {:>17.1}",
                format!("{c:?}"),
                format!("{:?}", fixture.expected_counts[s]),
                m.frr[s]
            );
        }
        println!();
        println!(
            "classified correctly: {}",
            if m.correct { "yes" } else { "no" }
        );
        println!("MSE against the one-hot target: {:.4}", m.mse);
        println!(
            "spike trains identical to Rockpool's, step for step: {}",
            if identical { "yes" } else { "NO" }
        );
        let simulated = r.steps as f64 * net.dt;
        println!(
            "simulated {} x {simulated} s in {:.2} ms (f32): {:.0}x faster than real time",
            r.samples,
            elapsed.as_secs_f64() * 1e3,
            simulated * r.samples as f64 / elapsed.as_secs_f64()
        );
        println!();
        println!("Not built yet: training (gradients, mismatch), quantization, mapping, devices.");
    }
    if identical && m.correct {
        ExitCode::SUCCESS
    } else {
        eprintln!("dynap train: the simulation does not reproduce Rockpool's spikes");
        ExitCode::FAILURE
    }
}
