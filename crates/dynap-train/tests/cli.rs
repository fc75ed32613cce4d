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
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
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
        assert!(out.join(run).join("seed1.checkpoint.json").exists());
    }
    assert!(
        std::fs::read(out.join("loss.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
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
    assert!(String::from_utf8_lossy(&o.stdout).contains("usage: dynap"));
    assert!(!dir.join("help").exists());
    let o = dynap()
        .args(["train", "--config", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.toml"));
    let _ = std::fs::remove_dir_all(&dir);
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
