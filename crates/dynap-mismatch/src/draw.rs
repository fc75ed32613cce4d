//! Mismatch draws: which values, which distribution, which random stream.

use dynap_model::{ChipSynapses, Matrix, Network, Param, Variant};

/// The first random stream of the `chip` variant's dendrite parameters (see [`Mismatch::frozen`]).
const CHIP_STREAMS: u64 = 32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The parameters frozen mismatch perturbs: all 24 per-neuron simulation parameters, exactly Rockpool's
/// `frozen_mismatch_prototype` for a DynapSim layer.
pub const FROZEN: [Param; 24] = Param::ALL;

/// The values dynamic mismatch perturbs, by Rockpool's names for them: `LinearJax.weight` (our `w_in`)
/// and `DynapSim.w_rec`, exactly Rockpool's `dynamic_mismatch_prototype`.
pub const DYNAMIC_NAMES: [&str; 2] = ["weight", "w_rec"];

/// A mismatch level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mismatch {
    /// Rockpool's `percent_deviation`, a fraction: 0.3 means 30 %.
    pub percent: f64,
    /// How many standard deviations `percent` spans (Rockpool: 3).
    pub sigma_rule: f64,
    /// Redraw any factor `1 + sigma z <= 0`, so no value changes sign (Rockpool does not).
    pub truncated: bool,
}

impl Mismatch {
    /// Rockpool's model at `percent` (a fraction), 3-sigma rule, not truncated.
    pub fn new(percent: f64) -> Mismatch {
        Mismatch {
            percent,
            sigma_rule: 3.0,
            truncated: false,
        }
    }

    /// The relative standard deviation, `percent / sigma_rule`.
    pub fn sigma(&self) -> f64 {
        self.percent / self.sigma_rule
    }

    /// The network as fabricated on chip `seed`: every one of the [`FROZEN`] parameters of every neuron
    /// multiplied by its own `1 + sigma z`. Parameter `k` draws from stream `k` of the seed, neuron by
    /// neuron, so a chip does not depend on which other parameters are drawn.
    ///
    /// A `chip` network's NMDA, GABA and SHUNT dendrites (their `Itau`, `Igain` and `C`, the chip's
    /// DENM, DEGA and DESC biases and capacitors) are perturbed alike, from streams 32 to 40, so the
    /// draws of the 24 shared parameters are the same for both variants.
    pub fn frozen(&self, net: &Network, seed: u64) -> Network {
        let slots: Vec<usize> = (0..net.neurons()).collect();
        self.frozen_at(net, seed, &slots)
    }

    /// The network as fabricated on chip `seed` when neuron `i` sits at `slots[i]` of the chip: the
    /// factors of a neuron depend only on (seed, slot, parameter), never on which other neurons are in
    /// use. Slot `s` takes the `s`-th draw of each parameter's stream, so [`Mismatch::frozen`] is
    /// `frozen_at` with slots `0..n`. A device numbers its slots `(chip * 4 + core) * 256 + neuron`.
    ///
    /// # Panics
    /// If `slots` does not have one entry per neuron of `net`.
    pub fn frozen_at(&self, net: &Network, seed: u64, slots: &[usize]) -> Network {
        assert_eq!(slots.len(), net.neurons(), "one slot per neuron");
        let mut out = net.clone();
        let count = slots.iter().max().map_or(0, |&s| s + 1);
        let apply = |values: &mut Vec<f64>, stream: u64| {
            let f = normal_factors(seed, stream, count, self.sigma(), self.truncated);
            for (v, &s) in values.iter_mut().zip(slots) {
                *v *= f[s];
            }
        };
        for (k, &p) in FROZEN.iter().enumerate() {
            apply(out.params.get_mut(p), k as u64);
        }
        if out.variant == Variant::Chip {
            let n = out.neurons();
            let chip = out.chip.get_or_insert_with(|| ChipSynapses::defaults(n));
            let dendrites = [&mut chip.nmda, &mut chip.gaba, &mut chip.shunt];
            for (d, params) in dendrites.into_iter().enumerate() {
                for (q, values) in [&mut params.i_tau, &mut params.i_gain, &mut params.c]
                    .into_iter()
                    .enumerate()
                {
                    apply(values, CHIP_STREAMS + (3 * d + q) as u64);
                }
            }
        }
        out
    }

    /// The frozen factors at every slot of `slots` on chip `seed`: what [`Mismatch::frozen_at`]
    /// multiplies a neuron's 24 parameters and (in a `chip` network) its dendrites by.
    pub fn factors_at(&self, seed: u64, slots: &[usize]) -> Vec<crate::Factors> {
        let count = slots.iter().max().map_or(0, |&s| s + 1);
        let mut out = vec![crate::Factors::ONE; slots.len()];
        for k in 0..FROZEN.len() {
            let f = normal_factors(seed, k as u64, count, self.sigma(), self.truncated);
            for (row, &s) in out.iter_mut().zip(slots) {
                row.params[k] = f[s];
            }
        }
        for k in 0..crate::DENDRITE_NAMES.len() {
            let f = normal_factors(
                seed,
                CHIP_STREAMS + k as u64,
                count,
                self.sigma(),
                self.truncated,
            );
            for (row, &s) in out.iter_mut().zip(slots) {
                row.dendrites[k] = f[s];
            }
        }
        out
    }

    /// The network with its weights perturbed (`w_in` from stream 64, `w_rec` from stream 65 of `seed`),
    /// and the factors used, `(w_in, w_rec)`, for carrying gradients back to the clean weights
    /// (`d loss / d w = factor d loss / d w'`).
    pub fn dynamic(&self, net: &Network, seed: u64) -> (Network, Option<Vec<f64>>, Vec<f64>) {
        let mut out = net.clone();
        let perturb = |m: &mut Matrix, stream: u64| {
            let f = normal_factors(
                seed,
                stream,
                m.as_slice().len(),
                self.sigma(),
                self.truncated,
            );
            for (w, f) in m.as_mut_slice().iter_mut().zip(&f) {
                *w *= f;
            }
            f
        };
        let f_in = out.w_in.as_mut().map(|m| perturb(m, 64));
        let f_rec = perturb(&mut out.w_rec, 65);
        (out, f_in, f_rec)
    }
}

/// `count` factors `1 + sigma z`, `z ~ N(0, 1)`, from stream `stream` of `seed` (Box-Muller on ChaCha8,
/// both values of each pair used in order). With `truncated`, a non-positive factor is redrawn.
pub fn normal_factors(
    seed: u64,
    stream: u64,
    count: usize,
    sigma: f64,
    truncated: bool,
) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut spare: Option<f64> = None;
    let mut normal = |rng: &mut ChaCha8Rng| -> f64 {
        if let Some(z) = spare.take() {
            return z;
        }
        // u1 in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.r#gen::<f64>();
        let u2: f64 = rng.r#gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        spare = Some(r * s);
        r * c
    };
    (0..count)
        .map(|_| {
            loop {
                let f = 1.0 + sigma * normal(&mut rng);
                if !truncated || f > 0.0 {
                    break f;
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_the_factors() {
        let f = normal_factors(7, 3, 200_000, 0.1, false);
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        let sd = (f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / f.len() as f64).sqrt();
        assert!(
            (mean - 1.0).abs() < 4.0 * 0.1 / (f.len() as f64).sqrt(),
            "{mean}"
        );
        assert!((sd / 0.1 - 1.0).abs() < 0.01, "{sd}");
        // Truncation removes the sign changes that sigma = 0.5 produces (P(z < -2) = 2.3 %).
        assert!(
            normal_factors(1, 0, 10_000, 0.5, false)
                .iter()
                .any(|&x| x <= 0.0)
        );
        assert!(
            normal_factors(1, 0, 10_000, 0.5, true)
                .iter()
                .all(|&x| x > 0.0)
        );
    }

    #[test]
    fn a_chip_is_a_seed() {
        let net = Network::with_defaults(5);
        let m = Mismatch::new(0.3);
        assert_eq!(m.frozen(&net, 11), m.frozen(&net, 11));
        assert_ne!(m.frozen(&net, 11), m.frozen(&net, 12));
        let chip = m.frozen(&net, 11);
        // Weights, Iscale and dt are untouched; every parameter of every neuron moved.
        assert_eq!(
            (chip.w_rec.clone(), chip.i_scale, chip.dt),
            (net.w_rec.clone(), net.i_scale, net.dt)
        );
        for p in FROZEN {
            assert!(
                chip.params
                    .get(p)
                    .iter()
                    .zip(net.params.get(p))
                    .all(|(a, b)| a != b),
                "{p:?}"
            );
        }
        // Parameters draw from their own streams: two parameters do not move together.
        let r = |p: Param| chip.params.get(p)[0] / net.params.get(p)[0];
        assert_ne!(r(Param::ItauMem), r(Param::ItauSyn));
    }

    #[test]
    fn a_chip_network_also_draws_its_dendrites() {
        let n = 4000;
        let plain = Network::with_defaults(n);
        let mut chip_net = plain.clone();
        chip_net.variant = Variant::Chip;
        let m = Mismatch::new(0.3);
        let (a, b) = (m.frozen(&plain, 9), m.frozen(&chip_net, 9));
        // The 24 shared parameters draw the same numbers in both variants.
        assert_eq!(a.params, b.params);
        assert!(a.chip.is_none());
        let d = b.chip.expect("drawn from the defaults");
        let nominal = ChipSynapses::defaults(n);
        let mut seen = Vec::new();
        for (got, nom) in [
            (&d.nmda, &nominal.nmda),
            (&d.gaba, &nominal.gaba),
            (&d.shunt, &nominal.shunt),
        ] {
            for (g, v) in [
                (&got.i_tau, &nom.i_tau),
                (&got.i_gain, &nom.i_gain),
                (&got.c, &nom.c),
            ] {
                let f: Vec<f64> = g.iter().zip(v).map(|(x, y)| x / y).collect();
                let mean = f.iter().sum::<f64>() / n as f64;
                let sd = (f.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
                assert!(
                    (mean - 1.0).abs() < 0.01 && (sd / 0.1 - 1.0).abs() < 0.05,
                    "{mean} {sd}"
                );
                seen.push(f[0]);
            }
        }
        // Nine independent streams.
        seen.sort_by(f64::total_cmp);
        seen.dedup();
        assert_eq!(seen.len(), 9);
    }

    #[test]
    fn a_neuron_s_factors_depend_on_its_slot_only() {
        let m = Mismatch::new(0.2);
        let all = m.frozen(&Network::with_defaults(600), 5);
        // Three neurons placed at slots 512, 3 and 299 of the same chip.
        let some = m.frozen_at(&Network::with_defaults(3), 5, &[512, 3, 299]);
        for p in FROZEN {
            for (i, s) in [512, 3, 299].into_iter().enumerate() {
                assert_eq!(some.params.get(p)[i], all.params.get(p)[s], "{p:?}");
            }
        }
        // The factors are what the parameters were multiplied by.
        let f = m.factors_at(5, &[512, 3, 299]);
        let nominal = Network::with_defaults(1);
        for (k, p) in FROZEN.into_iter().enumerate() {
            assert_eq!(
                some.params.get(p)[1],
                nominal.params.get(p)[0] * f[1].params[k]
            );
        }
        // A chip network's dendrites too: frozen_at is applying the factors.
        let mut chip_net = Network::with_defaults(3);
        chip_net.variant = Variant::Chip;
        let drawn = m.frozen_at(&chip_net, 5, &[512, 3, 299]);
        let mut applied = chip_net.clone();
        for (j, f) in f.iter().enumerate() {
            f.apply(&mut applied, j);
        }
        assert_eq!(drawn, applied);
    }

    #[test]
    fn dynamic_mismatch_perturbs_the_weights_only() {
        let mut net = Network::with_defaults(3);
        net.w_in = Matrix::from_vec(2, 3, vec![1.0; 6]);
        net.w_rec = Matrix::from_vec(3, 3, vec![2.0; 9]).unwrap();
        let (noisy, f_in, f_rec) = Mismatch::new(0.3).dynamic(&net, 4);
        assert_eq!(noisy.params, net.params);
        assert_eq!(
            noisy.w_in.as_ref().unwrap().as_slice(),
            f_in.unwrap().as_slice()
        );
        assert_eq!(
            noisy
                .w_rec
                .as_slice()
                .iter()
                .map(|w| w / 2.0)
                .collect::<Vec<_>>(),
            f_rec
        );
    }
}
