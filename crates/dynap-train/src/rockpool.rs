//! Rockpool 3.1.0 as the benchmark's baseline, run in the same session as our rows: the reference
//! scripts in `benches/reference/` (`bench_rockpool.py`, `train_rockpool.py`, `quant_rockpool.py`) run
//! by a Python that has Rockpool, their output read back.

use crate::error::Error;
use crate::{bench, files};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the Yin-Yang example is in a checkout of this repository.
pub fn default_yinyang_example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/yinyang.toml")
}

/// Where the reference scripts are in a checkout of this repository.
pub fn default_script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/reference")
}

/// A Python with Rockpool, and the folder of the reference scripts.
#[derive(Clone, Debug)]
pub struct Baseline {
    /// The Python interpreter.
    pub python: PathBuf,
    /// The folder with `bench_rockpool.py`, `train_rockpool.py`, `quant_rockpool.py`.
    pub scripts: PathBuf,
}

/// Rockpool's medians for one (N, batch), from `bench_rockpool.py`'s table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Neurons.
    pub n: usize,
    /// Batch size.
    pub batch: usize,
    /// Forward pass (ms).
    pub fwd_ms: f64,
    /// Value and gradient (ms).
    pub vg_ms: f64,
}

/// Rockpool's rows of one run of its script, and the peak resident memory (MiB) of the process when it
/// was measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// The rows.
    pub rows: Vec<Row>,
    /// Peak resident memory of the process (measured with `/usr/bin/time -v` where it exists).
    pub peak_rss_mb: Option<f64>,
}

fn failure(what: &str, stderr: &[u8]) -> Error {
    Error::Mismatch(format!(
        "{what} failed: {}",
        String::from_utf8_lossy(stderr).lines().last().unwrap_or("")
    ))
}

impl Baseline {
    fn script(&self, name: &str) -> Result<PathBuf, Error> {
        let path = self.scripts.join(name);
        if path.exists() {
            Ok(path)
        } else {
            Err(Error::Mismatch(format!(
                "{} does not exist: give the folder of Rockpool's reference scripts (benches/reference of a checkout)",
                path.display()
            )))
        }
    }

    fn run(&self, command: &mut Command) -> Result<std::process::Output, Error> {
        command.output().map_err(|source| Error::Io {
            path: self.python.clone(),
            action: "run",
            source,
        })
    }

    /// `bench_rockpool.py --sizes SIZES --batches BATCHES --reps REPS`; with `measure_memory`, under
    /// `/usr/bin/time -v` for the process's peak memory.
    pub fn rows(
        &self,
        sizes: &str,
        batches: &str,
        reps: usize,
        measure_memory: bool,
    ) -> Result<Rows, Error> {
        self.rows_with_fanin(sizes, batches, reps, measure_memory, 0)
    }

    /// [`Baseline::rows`] of the networks with `fanin` connections into each neuron (0: the dense
    /// rows' densities).
    pub fn rows_with_fanin(
        &self,
        sizes: &str,
        batches: &str,
        reps: usize,
        measure_memory: bool,
        fanin: usize,
    ) -> Result<Rows, Error> {
        let script = self.script("bench_rockpool.py")?;
        let time_v = Path::new("/usr/bin/time");
        let measure = measure_memory && time_v.exists();
        let mut cmd = if measure {
            let mut c = Command::new(time_v);
            c.arg("-v").arg(&self.python);
            c
        } else {
            Command::new(&self.python)
        };
        cmd.arg(&script).args([
            "--sizes",
            sizes,
            "--batches",
            batches,
            "--reps",
            &reps.to_string(),
            "--fanin",
            &fanin.to_string(),
        ]);
        let out = self.run(&mut cmd)?;
        if !out.status.success() {
            return Err(failure("bench_rockpool.py", &out.stderr));
        }
        let peak_rss_mb = measure
            .then(|| {
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|kb| kb / 1024.0)
            })
            .flatten();
        let mut rows = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with('#') || f.len() < 11 || f[0] == "N" {
                continue;
            }
            let num = |i: usize| {
                f[i].parse::<f64>().map_err(|_| {
                    Error::Mismatch(format!("unexpected line from bench_rockpool.py: {line}"))
                })
            };
            rows.push(Row {
                n: num(0)? as usize,
                batch: num(1)? as usize,
                fwd_ms: num(4)? * 1e3,
                vg_ms: num(8)? * 1e3,
            });
        }
        Ok(Rows { rows, peak_rss_mb })
    }

    /// Rockpool's training iterations per second on the frozen-noise network (`train_rockpool.py`).
    pub fn training_rate(&self) -> Result<f64, Error> {
        let script = self.script("train_rockpool.py")?;
        let out = self.run(Command::new(&self.python).arg(&script))?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("iterations_per_second ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .ok_or_else(|| failure("train_rockpool.py", &out.stderr))
    }

    /// Rockpool's training samples per second on the Yin-Yang example (`yinyang_rockpool.py`): the
    /// train split `data`, `outputs` output neurons.
    pub fn yinyang_rate(&self, data: &Path, outputs: usize) -> Result<f64, Error> {
        let script = self.script("yinyang_rockpool.py")?;
        let out = self.run(
            Command::new(&self.python)
                .arg(&script)
                .arg("--data")
                .arg(data)
                .arg("--outputs")
                .arg(outputs.to_string()),
        )?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("samples_per_second ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .ok_or_else(|| failure("yinyang_rockpool.py", &out.stderr))
    }

    /// Rockpool's autoencoder on the benchmark's quantization workload: (seconds, relative RMS error).
    pub fn quantization(&self) -> Result<(f64, f64), Error> {
        let script = self.script("quant_rockpool.py")?;
        let weights =
            std::env::temp_dir().join(format!("dynap-quant-weights-{}.json", std::process::id()));
        let (w_in, w_rec) = bench::quant_workload(0);
        let rows = |m: &dynap_model::Matrix| -> Vec<Vec<f64>> {
            (0..m.rows()).map(|r| m.row(r).to_vec()).collect()
        };
        let net = json!({"w_in": rows(&w_in), "w_rec": rows(&w_rec)});
        files::write_atomic(&weights, net.to_string().as_bytes())?;
        let out = self.run(Command::new(&self.python).arg(&script).arg(&weights));
        let _ = std::fs::remove_file(&weights);
        let out = out?;
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> Option<f64> {
            let mut it = text.split_whitespace();
            it.find(|w| *w == name)?;
            it.next()?.parse().ok()
        };
        match (field("autoencoder_seconds"), field("relative_rms_error")) {
            (Some(t), Some(e)) => Ok((t, e)),
            _ => Err(failure("quant_rockpool.py", &out.stderr)),
        }
    }
}
