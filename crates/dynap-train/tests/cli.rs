//! The `dynap` program as a user runs it. `dynap train`: a small configuration end to end, the output folder's contract
//! (DESIGN.md), and clear errors for bad configurations.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn dynap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dynap"))
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dynap-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A one-seed, 20-iteration training (with `extra` arguments) into `dir/train`, which it returns.
fn train_small(dir: &std::path::Path, extra: &[&str]) -> PathBuf {
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[training]\niterations = 20\nseeds = [0]\n[evaluation]\nchips = 2\n[quantization]\ncompare_autoencoder = false\n",
    )
    .unwrap();
    let train = dir.join("train");
    let st = dynap()
        .args(["train", "--quiet"])
        .args(extra)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&train)
        .status()
        .unwrap();
    assert!(st.success());
    train
}

#[test]
fn a_small_experiment_writes_the_documented_outputs() {
    let dir = temp("small");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[training]\niterations = 30\nseeds = [0, 1]\ncheckpoint_every = 10\n[evaluation]\nchips = 4\n[noise]\nredraw_every = 10\n# the autoencoder runs ~30 000 epochs per network: slow in a debug build\n[quantization]\ncompare_autoencoder = false\n",
    )
    .unwrap();
    let out = dir.join("out");
    let st = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg(format!("--out={}", out.display()))
        .status()
        .unwrap();
    assert!(st.success());
    // The run's log: what ran, at debug level, whatever the verbosity.
    let log = std::fs::read_to_string(out.join("run.log")).unwrap();
    assert!(log.contains("=== dynap"), "{log}");
    assert!(log.contains("training"), "{log}");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for run in ["plain", "noise"] {
        let r = &m["runs"][run];
        assert!(r["final_loss"].is_f64(), "{run}: {r}");
        assert_eq!(r["counts"].as_array().unwrap().len(), 2);
        assert!(r["correct"].is_boolean());
        for level in ["5", "10", "20", "30"] {
            let f = r["robustness"][level].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&f));
        }
        assert!(r["iterations_per_second"].as_f64().unwrap() > 0.0);
        assert_eq!(r["seeds"].as_array().unwrap().len(), 2);
        // After quantization: the same fields, and the weight errors of both quantizers.
        let q = &r["quantized"];
        assert!(q["final_loss"].is_f64(), "{run}: {q}");
        assert_eq!(q["counts"].as_array().unwrap().len(), 2);
        assert!(q["correct"].is_boolean());
        for level in ["5", "10", "20", "30"] {
            assert!((0.0..=1.0).contains(&q["robustness"][level].as_f64().unwrap()));
        }
        assert_eq!(q["seeds"].as_array().unwrap().len(), 2);
        assert!(q["relative_rms_error"].as_f64().unwrap() >= 0.0);
        assert!(q["autoencoder"].is_null(), "not asked for");
        let qf: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(run).join("seed1").join("quantized.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(qf["w_in_mask"].as_array().unwrap().len(), 60);
        assert_eq!(qf["cores"][0]["iw"].as_array().unwrap().len(), 4);
        let net: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(run).join("network.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(net["w_in"].as_array().unwrap().len(), 60);
        assert_eq!(net["w_rec"].as_array().unwrap().len(), 2);
        assert_eq!(net["variant"], "rockpool");
        assert_eq!(net["Itau_mem"].as_array().unwrap().len(), 2);
        let png = std::fs::read(out.join(run).join("raster.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Beside each plot, the figure as SVG and its data as CSV.
        let csv = std::fs::read_to_string(out.join(run).join("raster.csv")).unwrap();
        assert!(
            csv.starts_with("sample,step,time_ms,neuron,count\n"),
            "{csv}"
        );
        assert!(out.join(run).join("raster.svg").exists());
        assert!(out.join(run).join("seed1.checkpoint").exists());
    }
    assert!(
        std::fs::read(out.join("loss.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    // One row per iteration of each seed of each run.
    let csv = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("series,iteration,loss,moving_average"));
    assert_eq!(lines.count(), 2 * 2 * 30, "{csv}");
    assert!(out.join("loss.svg").exists());
    let used = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(used.contains("iterations = 30"), "{used}");
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn bad_configurations_and_arguments_get_clear_errors() {
    let dir = temp("bad");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[training]\nlearning_rate = -1.0\n").unwrap();
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("o"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("training.learning_rate"), "{err}");
    std::fs::write(&cfg, "[trainig]\niterations = 5\n").unwrap();
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trainig"));
    let o = dynap().args(["train", "--bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // `--help` after a command prints the usage and runs nothing.
    let o = dynap()
        .args(["train", "--out"])
        .arg(dir.join("help"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: dynap train"));
    assert!(!dir.join("help").exists());
    let o = dynap()
        .args(["train", "--config", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The command line as a new user meets it: help per subcommand with allowed values and defaults,
/// suggestions for mistyped names, the version, completions, and exit codes (2 usage, 0 help).
#[test]
fn the_command_line_helps_its_user() {
    let help = |args: &[&str]| {
        let o = dynap().args(args).arg("--help").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (top, train, quantize, deploy) = (
        help(&[]),
        help(&["train"]),
        help(&["quantize"]),
        help(&["deploy"]),
    );
    for (text, wanted) in [
        (&top, "Commands:"),
        (&top, "completions"),
        (&train, "--resume"),
        (&train, "[default: runs/train]"),
        (&train, "- chip:"),
        (&quantize, "alternating"),
        (&quantize, "autoencoder"),
        (&deploy, "[default: noise]"),
        (&deploy, "[default: emulator]"),
        (&deploy, "samna"),
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
    }
    assert_ne!(train, quantize, "each subcommand has its own help");
    // A mistyped option or command gets a suggestion, and exit 2.
    let o = dynap().args(["train", "--resum"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let o = dynap().arg("trian").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("train"));
    // Version, completions.
    let o = dynap().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("dynap "));
    let o = dynap().args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("quantize"));
    let o = dynap().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn quantize_writes_the_contract_and_refuses_bad_files() {
    let dir = temp("quantize");
    let input = dir.join("net.json");
    std::fs::write(
        &input,
        r#"{"w_in": [[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]], "w_rec": [[0, 0.3, 0], [-0.2, 0, 1.1], [0, 0, 0]],
            "core_map": [0, 0, 1], "iscale": 1e-8}"#,
    )
    .unwrap();
    let out = dir.join("q.json");
    let o = dynap()
        .arg("quantize")
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let q: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(q["cores"].as_array().unwrap().len(), 2);
    assert_eq!(q["w_in_sign"][0], serde_json::json!([1, -1, 0]));
    assert!(q["relative_rms_error"].as_f64().unwrap() < 0.2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("err snapped"));
    // Ragged input: exit 1, the row named, nothing written.
    std::fs::write(&input, r#"{"w_in": [[1, 2], [3]]}"#).unwrap();
    let bad_out = dir.join("bad.json");
    let o = dynap()
        .arg("quantize")
        .arg(&input)
        .arg(&bad_out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("w_in[1]"));
    assert!(!bad_out.exists());
    // Bad arguments: exit 2 with usage.
    let o = dynap().args(["quantize", "only-one"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = dynap()
        .arg("quantize")
        .arg(&input)
        .arg(&bad_out)
        .args(["--method", "kmeans"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kmeans"));
}

#[test]
fn map_validate_convert_inspect_unmap() {
    let dir = temp("map");
    let net = dir.join("net.json");
    std::fs::write(
        &net,
        r#"{"w_in": [[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]], "w_rec": [[0, 0.3, 0], [-0.2, 0, 1.1], [0, 0, 0]],
            "iscale": 1e-8, "dt": 0.001, "Itau_mem": [5e-12, 6e-12, 7e-12]}"#,
    )
    .unwrap();
    let out = dir.join("m");
    let o = dynap()
        .arg("map")
        .arg(&net)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["config.json", "config.bin", "mapping.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let mapping: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mapping.json")).unwrap()).unwrap();
    assert_eq!(mapping["neurons"].as_array().unwrap().len(), 3);
    assert_eq!(mapping["inputs"].as_array().unwrap().len(), 2);
    for f in ["config.json", "config.bin"] {
        let o = dynap()
            .args(["config", "validate"])
            .arg(out.join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = dynap()
        .args(["config", "inspect"])
        .arg(out.join("config.bin"))
        .arg("--json")
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["cores"][0]["neurons_used"], 3);
    // Binary -> JSON gives the same bytes as the JSON written.
    let again = dir.join("again.json");
    let o = dynap()
        .args(["config", "convert"])
        .arg(out.join("config.bin"))
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(out.join("config.json")).unwrap()
    );
    // Back to a network.
    let back = dir.join("back.json");
    let o = dynap()
        .arg("unmap")
        .arg(&out)
        .arg("--out")
        .arg(&back)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&back).unwrap()).unwrap();
    assert_eq!(b["w_in_sign"][0], serde_json::json!([1, -1, 0]));
    assert_eq!(b["w_rec"].as_array().unwrap().len(), 3);
    // A corrupted configuration: every problem, with its place, exit 1.
    let text = std::fs::read_to_string(out.join("config.json")).unwrap();
    let bad =
        text.replacen("\"tag\":0}", "\"tag\":5000}", 2)
            .replacen("\"xHop\":-7", "\"xHop\":-9", 1);
    let bad_path = dir.join("bad.json");
    std::fs::write(&bad_path, bad).unwrap();
    let o = dynap()
        .args(["config", "validate"])
        .arg(&bad_path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tag = 5000 is outside 0..=2047"), "{err}");
    assert!(err.contains("xHop: hop = -9 is outside -7..=7"), "{err}");
    assert!(err.contains("chips[0].cores[0].neurons[0]"), "{err}");
    assert!(err.contains("invalid (3 problem(s))"), "{err}");
    // A damaged binary, a missing file, bad arguments.
    let mut bin = std::fs::read(out.join("config.bin")).unwrap();
    let last = bin.len() - 1;
    bin[last] ^= 0xff;
    std::fs::write(dir.join("bad.bin"), bin).unwrap();
    let o = dynap()
        .args(["config", "validate"])
        .arg(dir.join("bad.bin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"));
    let o = dynap()
        .args(["config", "validate", "/nonexistent/c.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = dynap().args(["map", "only-in"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = dynap().args(["config", "frobnicate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn deploy_runs_every_stage_and_the_exact_twin_equals_the_reverse_mapping() {
    let dir = temp("deploy");
    let train = train_small(&dir, &[]);
    let out = dir.join("deploy");
    let o = dynap()
        .args(["deploy", "--quiet", "--mismatch", "0", "--from"])
        .arg(&train)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for stage in ["float", "quantized", "reverse_mapped", "device"] {
        assert_eq!(
            m["stages"][stage]["counts"].as_array().unwrap().len(),
            2,
            "{stage}"
        );
        assert!(m["stages"][stage]["correct"].is_boolean());
        for ext in ["png", "csv", "svg"] {
            assert!(
                out.join(format!("raster_{stage}.{ext}")).exists(),
                "{stage}.{ext}"
            );
        }
    }
    assert_eq!(m["device_equals_reverse_mapped"], true);
    assert_eq!(
        m["stages"]["device"]["counts"],
        m["stages"]["reverse_mapped"]["counts"]
    );
    for f in ["config.json", "config.bin", "mapping.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The USB device: found or not, a clear message and exit 1; bad arguments exit 2.
    let o = dynap()
        .args(["deploy", "--device", "usb", "--from"])
        .arg(&train)
        .arg("--out")
        .arg(dir.join("usb"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--device usb"));
    // The samna bridge against the fake samna module: the pipeline runs through it.
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynap-hw/bridge/fake_samna");
    let o = dynap()
        .env("PYTHONPATH", fake)
        .args(["deploy", "--quiet", "--device", "samna", "--from"])
        .arg(&train)
        .arg("--out")
        .arg(dir.join("samna"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("samna").join("metrics.json")).unwrap(),
    )
    .unwrap();
    assert!(m["device"].as_str().unwrap().contains("samna bridge"));
    let o = dynap()
        .args(["deploy", "--device", "fpga"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A missing run folder: exit 1, what to do, and nothing created.
    let nowhere = dir.join("nowhere");
    let o = dynap()
        .args(["deploy", "--from", "/nonexistent", "--out"])
        .arg(&nowhere)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cargo xtask train"));
    assert!(!nowhere.exists());
    let o = dynap().arg("devices").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn the_chip_variant_trains_deploys_and_keeps_its_synapse_types() {
    let dir = temp("chip");
    let train = train_small(&dir, &["--variant", "chip"]);
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(train.join("metrics.json")).unwrap())
            .unwrap();
    assert!(m["runs"]["plain"]["without_inhibition"]["seeds"][0]["counts"].is_array());
    let net_file = train.join("plain").join("network.json");
    let mut net: Value =
        serde_json::from_str(&std::fs::read_to_string(&net_file).unwrap()).unwrap();
    assert_eq!(net["variant"], "chip");
    assert_eq!(net["Itau_nmda"].as_array().unwrap().len(), 2);
    // Deployed on the exact twin: the chip's own model, spike for spike.
    let out = dir.join("deploy");
    let o = dynap()
        .args([
            "deploy",
            "--quiet",
            "--mismatch",
            "0",
            "--run",
            "plain",
            "--from",
        ])
        .arg(&train)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(d["device_equals_reverse_mapped"], true);
    let mapping = std::fs::read_to_string(out.join("mapping.json")).unwrap();
    assert!(mapping.contains("\"chip\""));
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    for bias in ["DENM_ETAU_P", "DEGA_ITAU_P", "DESC_IGAIN_P"] {
        assert!(config.contains(bias), "{bias}");
    }
    // Synapse types in the file reach the quantizer's output: w_rec[0][1] (positive after forcing)
    // on NMDA, w_rec[1][0] (negative) on SHUNT.
    net["w_rec"] = serde_json::json!([[0.5, 2.0], [-2.0, 0.5]]);
    net["w_rec_nmda"] = serde_json::json!([[0, 1], [0, 0]]);
    net["w_rec_shunt"] = serde_json::json!([[0, 0], [1, 0]]);
    let typed = dir.join("typed.json");
    std::fs::write(&typed, net.to_string()).unwrap();
    let q = dir.join("q.json");
    let st = dynap()
        .arg("quantize")
        .arg(&typed)
        .arg(&q)
        .status()
        .unwrap();
    assert!(st.success());
    let qv: Value = serde_json::from_str(&std::fs::read_to_string(&q).unwrap()).unwrap();
    assert_eq!(qv["w_rec_dendrite"][0][1], "nmda");
    assert_eq!(qv["w_rec_dendrite"][1][0], "shunt");
    assert_eq!(qv["w_rec_dendrite"][0][0], "ampa");
    // A bad type table is refused by name.
    net["w_rec_nmda"] = serde_json::json!([[0, 2], [0, 0]]);
    std::fs::write(&typed, net.to_string()).unwrap();
    let o = dynap()
        .arg("map")
        .arg(&typed)
        .arg("--out")
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("w_rec_nmda[0][1]"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A little-endian `.npy` file (format 1.0) of `f64` or `i64` values.
fn write_npy(path: &std::path::Path, descr: &str, shape: &[usize], bytes: Vec<u8>) {
    let shape = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(bytes);
    std::fs::write(path, out).unwrap();
}

/// A folder of `x.npy` (`[n, 4]` features in [0, 1]) and `y.npy` (3 classes by the first feature).
fn write_split(folder: &std::path::Path, n: usize, seed: u64, label: impl Fn(usize) -> i64) {
    std::fs::create_dir_all(folder).unwrap();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let (a, b) = (next(), next());
        for v in [a, b, 1.0 - a, 1.0 - b] {
            x.extend_from_slice(&v.to_le_bytes());
        }
        let class = ((a * 3.0) as i64).min(2);
        y.extend_from_slice(&(class + label(i)).to_le_bytes());
    }
    write_npy(&folder.join("x.npy"), "<f8", &[n, 4], x);
    write_npy(&folder.join("y.npy"), "<i8", &[n], y);
}

const THREE_POPULATIONS: &str = r#"
[data]
train = "train"
validation = "validation"
test = "test"
[data.encoder]
kind = "latency"
steps = 40
t_min_step = 2
t_max_step = 30
bias = true
bias_step = 10
[network]
variant = "chip"
readout = "out"
[[network.population]]
name = "a"
size = 8
recurrent = true
params = { Ispkthr = 1e-9 }
[[network.population]]
name = "b"
size = 6
params = { Ispkthr = 1e-9 }
[[network.population]]
name = "out"
size = 6
params = { Ispkthr = 1e-9 }
[[network.connection]]
from = "input"
to = "a"
init_gain = 3.0
[[network.connection]]
from = "a"
to = "b"
[[network.connection]]
from = "b"
to = "out"
[training]
epochs = 2
batch_size = 20
quantized_epochs = 1
seeds = [0]
"#;

/// Your network on your data: three populations (one recurrent) trained on files, judged by `eval`
/// at every stage on data it never saw, deployed from the run folder; bad data and bad networks get
/// errors that name the array or the key.
#[test]
fn a_network_of_three_populations_trains_on_files_evaluates_and_deploys() {
    let dir = temp("dataset");
    write_split(&dir.join("train"), 60, 1, |_| 0);
    write_split(&dir.join("validation"), 30, 2, |_| 0);
    write_split(&dir.join("test"), 24, 3, |_| 0);
    let cfg = dir.join("three.toml");
    std::fs::write(&cfg, THREE_POPULATIONS).unwrap();
    let run = dir.join("run");
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stages = ["float", "quantized", "reverse_mapped", "device"];
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["kind"], "dataset");
    assert_eq!(m["classes"], 3);
    assert_eq!(m["samples"]["test"], 24);
    for split in ["validation", "test"] {
        for stage in stages {
            let a = m["splits"][split][stage]["accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{split} {stage}: {a}");
            assert_eq!(
                m["splits"][split][stage]["confusion"]
                    .as_array()
                    .unwrap()
                    .len(),
                3
            );
        }
    }
    assert!(m["samples_per_second"].as_f64().unwrap() > 0.0);
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(
        history.lines().last().unwrap().ends_with("true"),
        "{history}"
    );
    for f in [
        "encoding.json",
        "network.json",
        "seed0/network.json",
        "loss.png",
        "accuracy.png",
        "confusion.png",
        "raster.png",
        "run.log",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }

    // eval: by default on the run's test split, with robustness over simulated chips.
    let o = dynap()
        .args(["eval", "--quiet", "--robustness", "0,10", "--chips", "2"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(e["samples"], 24);
    for stage in stages {
        // The same network, data and twin as training's judgement: the same accuracy.
        assert_eq!(
            e["stages"][stage]["accuracy"], m["splits"]["test"][stage]["accuracy"],
            "{stage}"
        );
    }
    for stage in ["float", "quantized", "reverse_mapped"] {
        let r = &e["stages"][stage]["robustness"];
        assert!(r["10"].is_number(), "{stage}: {e}");
        // Chips without mismatch are the stage's own network.
        assert_eq!(r["0"], e["stages"][stage]["accuracy"], "{stage}");
    }
    assert!(e["stages"]["device"].get("robustness").is_none());
    // ... and on any data, features encoded as training encoded them.
    let json = dir.join("validation.json");
    let o = dynap()
        .args(["eval", "--quiet", "--data"])
        .arg(dir.join("validation"))
        .arg("--json")
        .arg(&json)
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["samples"], 30);
    assert_eq!(
        v["stages"]["device"]["accuracy"],
        m["splits"]["validation"]["device"]["accuracy"]
    );

    // deploy --from the run: the best network configured, run on the twin, judged.
    let out = dir.join("deploy");
    let o = dynap()
        .args(["deploy", "--quiet", "--from"])
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "config.json",
        "config.bin",
        "mapping.json",
        "metrics.json",
        "confusion.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }

    // Bad data: the file, the array and the problem.
    let bad = dir.join("bad");
    write_split(&bad, 10, 4, |i| if i == 7 { 5 } else { 0 });
    let eval_bad = |what: &str| {
        let o = dynap()
            .args(["eval", "--quiet", "--data"])
            .arg(&bad)
            .arg(&run)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{what}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = eval_bad("label out of range");
    assert!(
        err.contains("array y: label") && err.contains("of sample 7 is not one of the 3 classes"),
        "{err}"
    );
    std::fs::remove_file(bad.join("y.npy")).unwrap();
    let err = eval_bad("missing array");
    assert!(err.contains("y.npy"), "{err}");
    write_npy(&bad.join("y.npy"), "<i8", &[3], vec![0; 24]);
    let err = eval_bad("shapes disagree");
    assert!(err.contains("y.npy") && err.contains("10"), "{err}");

    // A damaged run folder: its encoding names the file and the problem.
    let encoding = std::fs::read_to_string(run.join("encoding.json")).unwrap();
    std::fs::write(
        run.join("encoding.json"),
        encoding.replace("\"classes\": 3", "\"classes\": 0"),
    )
    .unwrap();
    let o = dynap()
        .args(["eval", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("encoding.json") && err.contains("`classes`"),
        "{err}"
    );

    // Bad networks: refused before training, naming the key.
    let train_bad = |config: String, key: &str| {
        std::fs::write(&cfg, config).unwrap();
        let o = dynap()
            .args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.join("bad_run"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{key}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains(key), "{key}: {err}");
        assert!(!dir.join("bad_run").join("metrics.json").exists());
    };
    train_bad(
        THREE_POPULATIONS.replace("readout = \"out\"", "readout = \"outt\""),
        "network.readout",
    );
    train_bad(
        THREE_POPULATIONS.replace("to = \"b\"", "to = \"c\""),
        "network.connection",
    );
    // 5 readout neurons do not split into 3 classes.
    train_bad(
        THREE_POPULATIONS.replace(
            "size = 6\nparams = { Ispkthr = 1e-9 }\n[[network.connection]]",
            "size = 5\nparams = { Ispkthr = 1e-9 }\n[[network.connection]]",
        ),
        "network.readout",
    );
    // 70 synapses into each neuron of b: more than the chip's 64.
    train_bad(THREE_POPULATIONS.replace("size = 8", "size = 70"), "64");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder of `x.npy` (`[n, 4]` features, as [`write_split`]'s) and `y.npy` (`[n, 2]` real targets:
/// the first two features, scaled).
fn write_regression_split(folder: &std::path::Path, n: usize, seed: u64) {
    write_split(folder, n, seed, |_| 0);
    let x = std::fs::read(folder.join("x.npy")).unwrap();
    let features: Vec<f64> = x[x.len() - n * 32..]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut y = Vec::new();
    for row in features.chunks_exact(4) {
        for v in [row[0] * 2.0 - 1.0, row[1] * 10.0] {
            y.extend_from_slice(&v.to_le_bytes());
        }
    }
    write_npy(&folder.join("y.npy"), "<f8", &[n, 2], y);
}

/// Regression targets: trained with the count regression, judged by RMSE and R² at every stage by
/// `train`, `eval` and `deploy`, predictions plotted against the targets; class labels given to a
/// regression, or a classification loss on regression targets, are errors naming the array or key.
#[test]
fn a_regression_trains_evaluates_and_deploys() {
    let dir = temp("regression");
    write_regression_split(&dir.join("train"), 60, 1);
    write_regression_split(&dir.join("validation"), 30, 2);
    write_regression_split(&dir.join("test"), 24, 3);
    let cfg = dir.join("regression.toml");
    let config = THREE_POPULATIONS
        .replace(
            "test = \"test\"\n",
            "test = \"test\"\ntargets = \"regression\"\n",
        )
        .replace("quantized_epochs = 1\n", "");
    std::fs::write(&cfg, &config).unwrap();
    let run = dir.join("run");
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stages = ["float", "quantized", "reverse_mapped", "device"];
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["targets"], "regression");
    assert_eq!(m["dims"], 2);
    for split in ["validation", "test"] {
        for stage in stages {
            let s = &m["splits"][split][stage];
            let rmse = s["rmse"].as_f64().unwrap();
            assert!(rmse.is_finite() && rmse >= 0.0, "{split} {stage}: {s}");
            assert!(s["r2"].as_f64().unwrap() <= 1.0, "{split} {stage}: {s}");
            assert_eq!(
                s["per_seed"][0]["rmse_per_dim"].as_array().unwrap().len(),
                2
            );
            assert!(s.get("accuracy").is_none(), "{s}");
        }
    }
    assert!(m["seeds"][0]["validation_rmse"].is_number());
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(
        history.starts_with("seed,epoch,loss,validation_rmse,"),
        "{history}"
    );
    let encoding = std::fs::read_to_string(run.join("encoding.json")).unwrap();
    assert!(encoding.contains("\"regression\""), "{encoding}");
    for f in ["rmse.png", "prediction.png", "prediction.csv", "raster.png"] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert!(!run.join("confusion.png").exists());

    // eval on the test split: the judgement training made.
    let o = dynap()
        .args(["eval", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    for stage in stages {
        assert_eq!(
            e["stages"][stage]["rmse"], m["splits"]["test"][stage]["rmse"],
            "{stage}"
        );
    }
    // deploy: the device's predictions plotted.
    let out = dir.join("deploy");
    let o = dynap()
        .args(["deploy", "--quiet", "--from"])
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(d["stages"]["device"]["rmse"].is_number(), "{d}");
    assert!(out.join("prediction.png").exists());

    // Class labels for a regression: the array named.
    let classes = dir.join("classes");
    write_split(&classes, 10, 4, |_| 0);
    let o = dynap()
        .args(["eval", "--quiet", "--data"])
        .arg(&classes)
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("classes: array y: 1 target dimensions, the network was trained on 2"),
        "{err}"
    );
    // A classification loss on regression targets: the key named, before anything trains.
    std::fs::write(
        &cfg,
        config.replace(
            "seeds = [0]\n",
            "seeds = [0]\nloss = \"count_cross_entropy\"\n",
        ),
    )
    .unwrap();
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("bad_run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("training.loss") && err.contains("count_regression"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Train for this chip: a twin calibrated through the device interface, its truth described for
/// checks, a network trained for its profile and its device stage predicted; a profile that does not
/// cover the network's cores, or a frozen-noise experiment with one, is refused by key.
#[test]
fn a_chip_is_calibrated_and_trained_for() {
    let dir = temp("chip-profile");
    let twin = ["--variant", "chip", "--mismatch", "0.2", "--seed", "2"];
    let calibrate = |cores: &str, out: &std::path::Path| -> Value {
        let o = dynap()
            .args([
                "calibrate",
                "--quiet",
                "--no-check",
                "--step-us",
                "200",
                "--cores",
                cores,
            ])
            .args(twin)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
    };
    let one = dir.join("core0.json");
    let p = calibrate("0:0", &one);
    assert_eq!(p["version"], 1);
    assert_eq!(
        p["identifiable"],
        serde_json::json!(["t_ref", "dc_gain", "syn_gain", "gaba_gain", "tau_mem"])
    );
    assert_eq!(p["neurons"].as_array().unwrap().len(), 256);
    assert!(p["chip_time_s"].as_f64().unwrap() > 1.0);
    let n0 = &p["neurons"][0];
    assert_eq!(
        (n0["chip"].as_u64(), n0["core"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(n0["factors"]["t_ref"].as_f64().unwrap() > 0.0);
    assert!(n0["uncertainty"]["t_ref"].as_f64().unwrap() >= 0.0);
    // describe: JSON on stdout only, every neuron of the chip with the 24 parameters, the chip's
    // dendrites and the derived quantities.
    let o = dynap()
        .args(["emulator", "describe", "--json"])
        .args(twin)
        .output()
        .unwrap();
    assert!(o.status.success());
    let truth: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(truth["neurons"].as_array().unwrap().len(), 1024);
    for key in [
        "Itau_mem",
        "kappa_n",
        "Igain_gaba",
        "t_ref",
        "gaba_gain",
        "tau_mem",
    ] {
        assert!(truth["neurons"][300]["factors"][key].is_number(), "{key}");
    }
    // check: the profile against the truth.
    let o = dynap()
        .args(["emulator", "check", "--json"])
        .arg(&one)
        .args(twin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    for q in c["quantities"].as_array().unwrap() {
        let (e, s) = (
            q["relative_rms_error"].as_f64().unwrap(),
            q["truth_spread"].as_f64().unwrap(),
        );
        assert!(e < 0.05 && e < s / 3.0, "{q}");
    }
    // Training for the chip: the three populations run on cores 0 to 2, which core0.json does not
    // all cover.
    write_split(&dir.join("train"), 60, 1, |_| 0);
    write_split(&dir.join("validation"), 30, 2, |_| 0);
    write_split(&dir.join("test"), 24, 3, |_| 0);
    let config = |profile: &str| {
        format!(
            "{THREE_POPULATIONS}chip_profile = \"{profile}\"\n[evaluation]\ndevice_mismatch = 0.2\ndevice_seed = 2\n"
        )
    };
    let cfg = dir.join("chip.toml");
    std::fs::write(&cfg, config("core0.json")).unwrap();
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("refused"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("training.chip_profile") && err.contains("does not cover"),
        "{err}"
    );
    // A profile of cores 0 to 2 (the truth's measured quantities: calibrating three cores is what
    // the test above does for one, three times over).
    let neurons: Vec<Value> = truth["neurons"].as_array().unwrap()[..768]
        .iter()
        .map(|n| {
            let mut n = n.clone();
            let f = &n["factors"];
            n["factors"] = serde_json::json!({
                "t_ref": f["t_ref"], "dc_gain": f["dc_gain"], "syn_gain": f["syn_gain"],
                "gaba_gain": f["gaba_gain"], "tau_mem": f["tau_mem"],
            });
            n
        })
        .collect();
    let profile = serde_json::json!({
        "version": 1, "identifiable": ["t_ref", "dc_gain", "syn_gain", "gaba_gain", "tau_mem"],
        "chip_time_s": 0.0, "neurons": neurons,
    });
    std::fs::write(dir.join("chip.json"), profile.to_string()).unwrap();
    std::fs::write(&cfg, config("chip.json")).unwrap();
    let run = dir.join("run");
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    for stage in [
        "float",
        "quantized",
        "reverse_mapped",
        "predicted",
        "device",
    ] {
        let a = m["splits"]["validation"][stage]["accuracy"].as_f64();
        assert!(a.is_some_and(|a| (0.0..=1.0).contains(&a)), "{stage}: {m}");
    }
    // eval predicts the device stage from the run's own profile.
    let o = dynap()
        .args(["eval", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!(e["stages"]["predicted"]["accuracy"].is_number(), "{e}");
    // A frozen-noise experiment has no chip profile.
    let frozen = dir.join("frozen.toml");
    std::fs::write(&frozen, "[training]\nchip_profile = \"chip.json\"\n").unwrap();
    let o = dynap()
        .args(["train", "--quiet", "--config"])
        .arg(&frozen)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("training.chip_profile"));
}
