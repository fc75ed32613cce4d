//! Tests of the whole quantizer (the alternation has its own in `alternating.rs`).

use super::*;
use proptest::prelude::*;

/// A deterministic pseudo-random matrix with a given density and mixed signs.
fn matrix(rows: usize, cols: usize, density: f64, scale: f64, seed: u64) -> Matrix {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let data = (0..rows * cols)
        .map(|_| {
            let keep = next() < density;
            let v = scale * (next() * 2.0 - 1.0);
            if keep { v } else { 0.0 }
        })
        .collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

fn no_snap(method: Method) -> Options {
    Options { method, snap: None }
}

#[test]
fn decoded_weights_quantize_back_to_themselves() {
    let w_in = matrix(20, 12, 0.6, 3.0, 1);
    let w_rec = matrix(12, 12, 0.4, 1.0, 2);
    let core_map: Vec<usize> = (0..12).map(|j| j % 3).collect();
    let q = quantize(
        Some(&w_in),
        Some(&w_rec),
        &core_map,
        1e-8,
        &Options::default(),
    )
    .unwrap();
    let (d_in, d_rec) = q.weights.decode();
    let again = quantize(
        d_in.as_ref(),
        Some(&d_rec),
        &core_map,
        1e-8,
        &Options::default(),
    )
    .unwrap();
    // Same base currents give the same decoded values, bit for bit.
    for core in &q.cores {
        let levels = mask_levels(&core.iw, 1e-8);
        for (j, &c) in core_map.iter().enumerate() {
            if c != core.core {
                continue;
            }
            for m in [d_in.as_ref().unwrap(), &d_rec] {
                for r in 0..m.rows() {
                    let v = m.get(r, j).abs();
                    let n = alternating::nearest_mask(v, &levels);
                    assert_eq!(levels[n as usize], v);
                }
            }
        }
    }
    assert!(again.relative_rms_error <= q.relative_rms_error + 1e-12);
}

#[test]
fn an_empty_core_gets_zero_masks_and_zero_currents() {
    let mut w_in = matrix(6, 4, 0.8, 1.0, 3);
    for r in 0..6 {
        w_in.as_mut_slice()[r * 4 + 2] = 0.0; // neuron 2 (core 1) has no input
    }
    let core_map = [0, 0, 1, 0];
    for method in [
        Method::Alternating,
        Method::from_name("autoencoder").unwrap(),
    ] {
        let method = match method {
            Method::Autoencoder { mut options, init } => {
                options.fixed_epoch = true;
                options.num_epoch = 50;
                Method::Autoencoder { options, init }
            }
            m => m,
        };
        let q = quantize(
            Some(&w_in),
            None,
            &core_map,
            1e-8,
            &Options {
                method,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(q.weights.base_currents()[1], [0.0; 4]);
        let c1 = q.cores.iter().find(|c| c.core == 1).unwrap();
        assert_eq!((c1.weights, c1.error_before_snap), (0, 0.0));
        assert!((0..6).all(|r| q.weights.w_in().unwrap().get(r, 2).0 == 0));
    }
    // No weights at all, and absent matrices.
    let q = quantize(None, None, &[0, 0], 1e-8, &Options::default()).unwrap();
    assert_eq!(q.weights.base_currents(), &[[0.0; 4]]);
    assert_eq!(q.relative_rms_error, 0.0);
    assert!(q.weights.w_in().is_none());
}

#[test]
fn bad_input_is_named() {
    let mut w = matrix(3, 2, 1.0, 1.0, 4);
    w.as_mut_slice()[3] = f64::NAN;
    let e = quantize(Some(&w), None, &[0, 0], 1e-8, &Options::default()).unwrap_err();
    assert_eq!(e.to_string(), "w_in[1][1] is NaN; weights must be finite");
    let e = quantize(Some(&w), None, &[0, 0, 0], 1e-8, &Options::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "core_map has 3 entries, but the weights have 2 neurons (columns)"
    );
    let e = quantize(None, None, &[], 1e-8, &Options::default()).unwrap_err();
    assert_eq!(e, Error::NoNeurons);
    let e = quantize(
        None,
        Some(&matrix(2, 3, 1.0, 1.0, 5)),
        &[0, 0, 0],
        1e-8,
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "w_rec is 2x3, expected 3x3");
}

#[test]
fn alternating_beats_the_autoencoder_and_binary_weights() {
    let w_in = matrix(16, 8, 0.7, 2.0, 6);
    let w_rec = matrix(8, 8, 0.5, 1.0, 7);
    let map = [0; 8];
    let alt = quantize(
        Some(&w_in),
        Some(&w_rec),
        &map,
        1e-8,
        &no_snap(Method::Alternating),
    )
    .unwrap();
    let mut options = AutoencoderOptions {
        fixed_epoch: true,
        num_epoch: 3000,
        step_size: 1e-3,
        ..AutoencoderOptions::default()
    };
    options.seed = 1;
    let ae = quantize(
        Some(&w_in),
        Some(&w_rec),
        &map,
        1e-8,
        &no_snap(Method::Autoencoder {
            options,
            init: BTreeMap::new(),
        }),
    )
    .unwrap();
    assert!(
        alt.relative_rms_error < ae.relative_rms_error,
        "{} vs {}",
        alt.relative_rms_error,
        ae.relative_rms_error
    );
    // The binary-weighted start alone, without alternating, is no better than the result.
    let w: Vec<f64> = w_in
        .as_slice()
        .iter()
        .chain(w_rec.as_slice())
        .filter(|v| **v != 0.0)
        .map(|v| v.abs())
        .collect();
    let max = w.iter().copied().fold(0.0, f64::max);
    let binary = [1.0, 2.0, 4.0, 8.0].map(|r| r * max / 15.0 * 1e-8);
    let levels = mask_levels(&binary, 1e-8);
    let masks: Vec<u8> = w
        .iter()
        .map(|&v| alternating::nearest_mask(v, &levels))
        .collect();
    assert!(alt.cores[0].error_before_snap < relative_error(&w, &masks, &binary, 1e-8));
}

#[test]
fn snapping_gives_currents_the_bias_generator_makes_and_reports_both_errors() {
    let w_in = matrix(30, 10, 0.5, 1.5, 8);
    let q = quantize(Some(&w_in), None, &[0; 10], 1e-8, &Options::default()).unwrap();
    let g = BiasGenerator::dynapse2();
    let c = &q.cores[0];
    for (name, &iw) in BASE_WEIGHT_BIASES.iter().zip(&c.iw) {
        let code = g.code_from_current(name, iw).unwrap();
        assert_eq!(g.current_from_code(name, code).unwrap(), iw);
    }
    assert!(c.error_after_snap >= c.error_before_snap * 0.999);
    assert!(c.error_after_snap < 0.2, "{c:?}");
    // The nearest snap alone is never better than what we return.
    let nearest: [f64; 4] = std::array::from_fn(|k| {
        let code = g
            .code_from_current(BASE_WEIGHT_BIASES[k], c.iw_fitted[k])
            .unwrap();
        g.current_from_code(BASE_WEIGHT_BIASES[k], code).unwrap()
    });
    let w: Vec<f64> = w_in
        .as_slice()
        .iter()
        .filter(|v| **v != 0.0)
        .map(|v| v.abs())
        .collect();
    let levels = mask_levels(&nearest, 1e-8);
    let masks: Vec<u8> = w
        .iter()
        .map(|&v| alternating::nearest_mask(v, &levels))
        .collect();
    assert!(c.error_after_snap <= relative_error(&w, &masks, &nearest, 1e-8));
    // The report's error is the decoded network's.
    assert!((q.relative_rms_error - c.error_after_snap).abs() < 1e-12);
}

#[test]
fn deterministic() {
    let w_in = matrix(12, 6, 0.7, 1.0, 9);
    let a = quantize(
        Some(&w_in),
        None,
        &[0, 0, 0, 1, 1, 1],
        1e-8,
        &Options::default(),
    )
    .unwrap();
    let b = quantize(
        Some(&w_in),
        None,
        &[0, 0, 0, 1, 1, 1],
        1e-8,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn masks_signs_and_reconstruction_are_consistent(
        rows in 1usize..8,
        cols in 1usize..6,
        seed in 0u64..1000,
        density in 0.0f64..1.0,
        cores in 1usize..3,
        snap_on in any::<bool>(),
    ) {
        let w_in = matrix(rows, cols, density, 4.0, seed);
        let core_map: Vec<usize> = (0..cols).map(|j| j % cores).collect();
        let opts = if snap_on { Options::default() } else { no_snap(Method::Alternating) };
        let q = quantize(Some(&w_in), None, &core_map, 1e-8, &opts).unwrap();
        let m = q.weights.w_in().unwrap();
        prop_assert!(m.masks().iter().all(|&x| x <= 15));
        let (d, _) = q.weights.decode();
        let d = d.unwrap();
        for i in 0..rows * cols {
            let (w, s) = (w_in.as_slice()[i], m.signs()[i]);
            prop_assert_eq!(f64::from(s), if w == 0.0 { 0.0 } else { w.signum() });
            let core = core_map[i % cols];
            let level = mask_levels(&q.weights.base_currents()[core], 1e-8)[m.masks()[i] as usize];
            prop_assert_eq!(d.as_slice()[i], f64::from(s) * level);
        }
    }

    #[test]
    fn decoding_then_encoding_reproduces_the_quantized_values_exactly(
        rows in 1usize..10,
        cols in 1usize..8,
        seed in 0u64..1000,
        density in 0.05f64..1.0,
        cores in 1usize..4,
        snap_on in any::<bool>(),
    ) {
        let w_in = matrix(rows, cols, density, 3.0, seed);
        let w_rec = matrix(cols, cols, density, 1.0, seed + 1);
        let core_map: Vec<usize> = (0..cols).map(|j| (j * 7 + seed as usize) % cores).collect();
        let opts = if snap_on { Options::default() } else { no_snap(Method::Alternating) };
        let q = quantize(Some(&w_in), Some(&w_rec), &core_map, 1e-8, &opts).unwrap();
        let (d_in, d_rec) = q.weights.decode();
        for m in [d_in.as_ref().unwrap(), &d_rec] {
            for (i, &v) in m.as_slice().iter().enumerate() {
                let levels = mask_levels(&q.weights.base_currents()[core_map[i % cols]], 1e-8);
                let again = levels[alternating::nearest_mask(v.abs(), &levels) as usize];
                prop_assert_eq!(again, v.abs());
            }
        }
    }
}

#[test]
fn the_autoencoder_without_rockpools_quirks_is_a_different_run() {
    let w_in = matrix(16, 8, 0.7, 2.0, 11);
    let run = |quirks: bool| {
        let options = AutoencoderOptions {
            fixed_epoch: true,
            num_epoch: 1500,
            step_size: 1e-3,
            rockpool_quirks: quirks,
            ..AutoencoderOptions::default()
        };
        quantize(
            Some(&w_in),
            None,
            &[0; 8],
            1e-8,
            &no_snap(Method::Autoencoder {
                options,
                init: BTreeMap::new(),
            }),
        )
        .unwrap()
    };
    let (with, without) = (run(true), run(false));
    let scale = |q: &Quantized| q.cores[0].autoencoder.as_ref().unwrap().scale;
    // The scale is 1/(max - min + 1) with the quirk, 1/max without.
    let max = w_in.as_slice().iter().fold(0.0f64, |a, b| a.max(b.abs()));
    assert!((scale(&without) - f64::from(1.0f32 / max as f32)).abs() < 1e-6);
    assert!(scale(&with) < scale(&without));
    assert_ne!(with.weights, without.weights);
    assert!(without.relative_rms_error.is_finite());
}
