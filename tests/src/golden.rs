//! The golden harness on the repository's copies of Rockpool's reference cases, and proof that the
//! harness can fail: perturbed cases must be reported with the place of the first difference.

use dynap_train::golden::{check_case, check_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir)
}

fn assert_all_pass(dir: &str) {
    let outcomes = check_dir(&fixtures(dir)).unwrap();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    assert!(
        failed.is_empty(),
        "golden cases failed:\n{}",
        failed.join("\n")
    );
}

#[test]
fn rockpool_cases_pass() {
    assert_all_pass("golden");
}

/// More cases made with Rockpool 3.1.0 by `fixtures/generate/gen_sim_cases.py`: batches, long
/// refractory periods, strong adaptation, Poisson counts with inhibitory weights, another dt and Iscale,
/// and a real-valued weighted input.
#[test]
fn generated_rockpool_cases_pass() {
    assert_all_pass("golden_generated");
}

fn case(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures("golden").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_perturbed_parameter_fails_with_the_first_difference() {
    let mut c = case("sim_dc_single.json");
    // 1 % more DC current: the neuron fires earlier, so the raster differs.
    let idc = c["params"]["Idc"][0].as_f64().unwrap();
    c["params"]["Idc"][0] = Value::from(idc * 1.01);
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("spikes[0, "), "{err}");
}

#[test]
fn a_perturbed_trace_fails_on_tolerance() {
    let mut c = case("sim_ff8.json");
    // 1 % off on one imem value is beyond rtol 2e-3 (f32) and 1e-8 (f64).
    for key in ["outputs_f32", "outputs_f64"] {
        let v = c[key]["imem"][0][100][3].as_f64().unwrap();
        c[key]["imem"][0][100][3] = Value::from(v * 1.01);
    }
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("imem[0, 100, 3]"), "{err}");
    // And a difference far below the f32 tolerance passes the f32 check, but not the f64 one.
    let mut c = case("sim_ff8.json");
    let v = c["outputs_f64"]["imem"][0][100][3].as_f64().unwrap();
    c["outputs_f64"]["imem"][0][100][3] = Value::from(v * (1.0 + 1e-6));
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("outputs_f64: imem[0, 100, 3]"), "{err}");
}

#[test]
fn a_perturbed_gradient_fails() {
    // 0.2 % of the largest entry on one w_rec gradient is beyond 1e-3 x max.
    let mut c = case("grad_count.json");
    for key in ["outputs_f32", "outputs_f64"] {
        let g = &mut c[key]["grad_w_rec"];
        let max = g
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(|v| v.as_f64().unwrap().abs())
            .fold(0.0, f64::max);
        let v = g[1][2].as_f64().unwrap();
        g[1][2] = Value::from(v + 2e-3 * max);
    }
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("grad_w_rec"), "{err}");
    // A structurally zero gradient that is not zero.
    let mut c = case("grad_count.json");
    for key in ["outputs_f32", "outputs_f64"] {
        c[key]["grad_currents"]["Ispkthr"][0] = Value::from(1e-3);
    }
    assert!(check_case(&c.to_string()).is_err());
}

#[test]
fn a_wrong_mismatch_case_fails() {
    let mut c = case("mismatch_p10.json");
    c["affected_parameters"].as_array_mut().unwrap().pop();
    assert!(
        check_case(&c.to_string())
            .unwrap_err()
            .contains("affected parameters")
    );
    // A different level: our draws' spread no longer matches sigma_eff.
    let mut c = case("mismatch_p10.json");
    c["sigma_eff"] = Value::from(0.05);
    assert!(check_case(&c.to_string()).is_err());
}

#[test]
fn a_wrong_bias_code_fails() {
    let mut c = case("biasgen_reverse.json");
    let r = &mut c["per_parameter"]["SOIF_LEAK_N"]["results"][5];
    let fine = r["fine"].as_f64().unwrap();
    r["fine"] = Value::from(if fine > 0.0 { fine - 1.0 } else { 1.0 });
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("SOIF_LEAK_N.results[5]"), "{err}");
}

#[test]
fn a_wrong_translation_fails() {
    let mut c = case("translation_updates.json");
    let v = c["updates_on_fast_core"]["time:tau_mem"]["core"]["Itau_ampa"]
        .as_f64()
        .unwrap();
    c["updates_on_fast_core"]["time:tau_mem"]["core"]["Itau_ampa"] = Value::from(v * (1.0 + 1e-9));
    let err = check_case(&c.to_string()).unwrap_err();
    assert!(err.contains("Itau_ampa"), "{err}");
}

#[test]
fn unknown_kinds_and_malformed_files_fail() {
    assert!(
        check_case(r#"{"kind": "teleport"}"#)
            .unwrap_err()
            .contains("unknown kind")
    );
    assert!(check_case("{").unwrap_err().contains("not valid JSON"));
    assert!(
        check_case(r#"{"kind": "sim"}"#)
            .unwrap_err()
            .contains("missing field `model`")
    );
    let dir = std::env::temp_dir().join(format!("dynap-golden-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        check_dir(&dir).is_err(),
        "a folder without cases must be an error"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_perturbed_quantization_fails() {
    let perturb = |f: &dyn Fn(&mut Value)| {
        let mut c = case("quant_small.json");
        f(&mut c);
        check_case(&c.to_string()).unwrap_err()
    };
    // The loss trajectory: 0.1 % at epoch 5 is beyond rtol 1e-4.
    let err = perturb(&|c| {
        let l = &mut c["outputs_f32"]["trace"][0]["loss_per_epoch"][5];
        *l = Value::from(l.as_f64().unwrap() * 1.001);
    });
    assert!(err.contains("loss_per_epoch (epochs 0..16)[5]"), "{err}");
    // One bit of Rockpool's final bit mask.
    let err = perturb(&|c| {
        let b = &mut c["outputs_f32"]["trace"][0]["bit_mask_final"][2][7];
        *b = Value::from(1 - b.as_i64().unwrap());
    });
    assert!(err.contains("bit_mask_final"), "{err}");
    // A sign.
    let err = perturb(&|c| {
        let s = &mut c["outputs_f64"]["clusters"][0]["sign_in"][0][0];
        *s = Value::from(-s.as_i64().unwrap());
    });
    assert!(err.contains("sign_in[0, 0]"), "{err}");
    // The final quality.
    let err = perturb(&|c| {
        c["outputs_f32"]["reconstruction_rel_rmse"] = Value::from(0.1);
        c["outputs_f64"]["reconstruction_rel_rmse"] = Value::from(0.1);
    });
    assert!(err.contains("within 25 %"), "{err}");
}

#[test]
fn quantization_edge_cases_where_rockpool_crashes_pass() {
    // Rockpool raises ZeroDivisionError on an all-zero cluster; we must return zero masks and Iw.
    let zeros = |r: usize, c: usize| Value::from(vec![vec![0.0; c]; r]);
    let failed = serde_json::json!({"ok": false, "error": "ZeroDivisionError: division by zero"});
    let mut w_in = vec![vec![0.0; 4]; 3];
    w_in[0][0] = 0.5;
    w_in[2][1] = -1.5;
    w_in[1][0] = 2.0;
    let c = serde_json::json!({
        "kind": "quant",
        "Iscale": 1e-8,
        "hyperparameters": {"fixed_epoch": true, "num_epoch": 200, "step_size": 1e-3, "f_penalty": 1e3},
        "subcases": [
            {"label": "all zero", "n_cluster": 1, "core_map": [0, 0, 0, 0],
             "weights_in": zeros(3, 4), "weights_rec": zeros(4, 4),
             "result_f32": failed.clone(), "result_f64": failed.clone()},
            {"label": "empty cluster", "n_cluster": 2, "core_map": [0, 0, 1, 1],
             "weights_in": w_in, "weights_rec": zeros(4, 4),
             "result_f32": failed.clone()},
            {"label": "absent matrices", "n_cluster": 1, "core_map": [0, 0],
             "weights_in": null, "weights_rec": null, "result_f32": failed},
        ]
    });
    check_case(&c.to_string()).unwrap();
}

/// The README's third result form: `{ok: true, raw: {...}}`, Rockpool's output when there is nothing to
/// quantize (both matrices absent, or only zeros): one entry per output, all null or zero. The port must
/// succeed with zero masks and `Iw = 0`; a `raw` form that claims a non-zero current is a failure.
#[test]
fn quantization_raw_results_pass_and_are_checked() {
    let raw = |iw: f64| {
        serde_json::json!({"ok": true, "raw": {
            "weights_in": [null], "sign_in": [null], "weights_rec": [null], "sign_rec": [null],
            "Iw_0": [0.0], "Iw_1": [iw], "Iw_2": [0.0], "Iw_3": [0.0], "quantization_loss": [null],
        }})
    };
    let case = |result: Value, w_in: Value| {
        serde_json::json!({
            "kind": "quant",
            "Iscale": 1e-8,
            "hyperparameters": {"fixed_epoch": true, "num_epoch": 200, "step_size": 1e-3, "f_penalty": 1e3},
            "subcases": [
                {"label": "nothing to quantize", "n_cluster": 1, "core_map": [0, 0, 0],
                 "weights_in": w_in, "weights_rec": null,
                 "result_f32": result.clone(), "result_f64": result},
            ]
        })
        .to_string()
    };
    check_case(&case(raw(0.0), Value::Null)).unwrap();
    check_case(&case(raw(0.0), Value::from(vec![vec![0.0; 3]; 2]))).unwrap();
    let err = check_case(&case(raw(1e-9), Value::Null)).unwrap_err();
    assert!(err.contains("Iw_1"), "{err}");
}

/// Issue 5's comparison: on the matrices of every golden quantization case, the default quantizer
/// (alternating, unsnapped) reconstructs the weights at least as well as Rockpool's autoencoder did.
#[test]
fn the_default_quantizer_beats_rockpools_autoencoder_on_the_golden_matrices() {
    use dynap_model::Matrix;
    let matrix = |v: &Value| -> Option<Matrix> {
        let rows: Vec<Vec<f64>> = v
            .as_array()?
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect();
        Matrix::from_rows(&rows).filter(|m| m.rows() > 0)
    };
    let mut compared = 0;
    for dir in ["golden", "golden_generated"] {
        for entry in std::fs::read_dir(fixtures(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if path.extension().is_none_or(|e| e != "json") || !text.contains("\"quant\"") {
                continue;
            }
            let c: Value = serde_json::from_str(&text).unwrap();
            if c["kind"] != "quant" {
                continue;
            }
            let problems: Vec<&Value> = match c["subcases"].as_array() {
                Some(s) => s.iter().collect(),
                None => vec![&c],
            };
            for p in problems {
                let core_map: Vec<usize> = p["core_map"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as usize)
                    .collect();
                let rockpool: Vec<f64> = ["outputs_f32", "outputs_f64", "result_f32", "result_f64"]
                    .iter()
                    .filter_map(|k| p[*k]["reconstruction_rel_rmse"].as_f64())
                    .collect();
                if rockpool.is_empty() {
                    continue; // Rockpool failed on this one
                }
                let ours = dynap_quant::quantize(
                    matrix(&p["weights_in"]).as_ref(),
                    matrix(&p["weights_rec"]).as_ref(),
                    &core_map,
                    1e-8,
                    &dynap_quant::Options {
                        method: dynap_quant::Method::Alternating,
                        snap: None,
                    },
                )
                .unwrap()
                .relative_rms_error;
                let best = rockpool.iter().copied().fold(f64::INFINITY, f64::min);
                println!(
                    "{} {}: alternating {:.2}%, Rockpool's autoencoder {:.2}% (best of its runs)",
                    path.file_stem().unwrap().to_string_lossy(),
                    p["label"].as_str().unwrap_or(""),
                    ours * 100.0,
                    best * 100.0
                );
                assert!(
                    ours <= best,
                    "{}: ours {ours}, Rockpool {best}",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(
        compared >= 4,
        "only {compared} quantization problems compared"
    );
}

#[test]
fn a_perturbed_mapping_fails() {
    let perturb = |f: &dyn Fn(&mut Value)| {
        let mut c = case("mapping_small.json");
        f(&mut c);
        check_case(&c.to_string()).unwrap_err()
    };
    // A CAM tag of Rockpool's allocator.
    let err = perturb(&|c| {
        let t = &mut c["allocator_no_samna"][0]["CAM"]["3"][1]["tag"];
        *t = Value::from(t.as_i64().unwrap() + 1);
    });
    assert!(err.starts_with("CAM of neuron 3"), "{err}");
    // An SRAM route.
    let err = perturb(&|c| c["allocator_no_samna"][0]["SRAM"]["5"][1]["x_hop"] = Value::from(1));
    assert!(err.starts_with("SRAM of neuron 5"), "{err}");
    // A bias code.
    let err = perturb(&|c| {
        c["allocator_no_samna"][0]["exported_coarse_fine"]["SOIF_LEAK_N"][1] = Value::from(32)
    });
    assert!(err.contains("SOIF_LEAK_N ours (0, 31)"), "{err}");
    // A cluster mean.
    let err = perturb(&|c| {
        let v = &mut c["mapper_spec"]["Itau_mem"][0];
        *v = Value::from(v.as_f64().unwrap() * 1.001);
    });
    assert!(err.contains("mapper_spec.Itau_mem[0]"), "{err}");
    // The expected round trip.
    let err = perturb(&|c| {
        let v = &mut c["dynapsim_net_from_config"]["expected_roundtrip"]["w_rec"][0][3];
        *v = Value::from(v.as_f64().unwrap() * 1.01);
    });
    assert!(err.contains("expected_roundtrip.w_rec[0, 3]"), "{err}");
}
