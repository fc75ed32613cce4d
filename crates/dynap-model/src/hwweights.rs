//! The chip's weight format (model.md section 6.1): per core, four base weight currents
//! `Iw_0..Iw_3` (biases `SYAM_W0_P..SYAM_W3_P`) shared by every synapse of the core's neurons; per
//! connection, a 4-bit mask choosing which base currents add up, and a sign choosing an excitatory
//! (AMPA) or an inhibitory (GABA) synapse.
//!
//! A connection from `pre` to `post` carries the current `sum over set bits k of Iw[core(post)][k]`,
//! which the simulator sees as the weight `sign * current / Iscale` ([`QuantizedWeights::decode`]).
//! A mask of 0 means no connection (no CAM entry on the chip), whatever the sign.

use crate::error::{Error, WeightMatrix};
use crate::network::{Matrix, Network};

/// Number of base weight currents per core.
pub const BASE_WEIGHTS: usize = 4;

/// Number of distinct masks (`0..=15`).
pub const MASK_LEVELS: usize = 1 << BASE_WEIGHTS;

/// The dendrite (synapse type) a connection drives on the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dendrite {
    /// Fast excitatory.
    Ampa,
    /// Slow excitatory, gated by the membrane voltage.
    Nmda,
    /// Subtractive inhibitory.
    Gaba,
    /// Shunting inhibitory.
    Shunt,
}

impl Dendrite {
    /// All four, in the chip's order.
    pub const ALL: [Dendrite; 4] = [
        Dendrite::Ampa,
        Dendrite::Nmda,
        Dendrite::Gaba,
        Dendrite::Shunt,
    ];

    /// The name used in files (`ampa`, `nmda`, `gaba`, `shunt`).
    pub fn name(self) -> &'static str {
        match self {
            Dendrite::Ampa => "ampa",
            Dendrite::Nmda => "nmda",
            Dendrite::Gaba => "gaba",
            Dendrite::Shunt => "shunt",
        }
    }

    /// Parses a name written by [`Dendrite::name`].
    pub fn from_name(name: &str) -> Option<Dendrite> {
        Dendrite::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The dendrite Rockpool's deployment uses for a weight of this sign: AMPA for positive, GABA for
    /// negative, none for zero.
    pub fn for_sign(sign: i8) -> Option<Dendrite> {
        match sign.signum() {
            1 => Some(Dendrite::Ampa),
            -1 => Some(Dendrite::Gaba),
            _ => None,
        }
    }
}

/// The 16 weight magnitudes a core can make, in weight units: `levels[q]` is the sum of the base
/// currents selected by the bits of `q` (bit k selects `iw[k]`, summed in increasing k), divided by
/// `i_scale`. Decoding and every quantizer use this one function, so a decoded weight quantizes back
/// to itself exactly.
pub fn mask_levels(iw: &[f64; BASE_WEIGHTS], i_scale: f64) -> [f64; MASK_LEVELS] {
    let mut levels = [0.0; MASK_LEVELS];
    for (q, level) in levels.iter_mut().enumerate() {
        let mut current = 0.0;
        for (k, &w) in iw.iter().enumerate() {
            if q >> k & 1 == 1 {
                current += w;
            }
        }
        *level = current / i_scale;
    }
    levels
}

/// One weight matrix `[pre, post]` in the chip's format: a 4-bit mask and a sign per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantMatrix {
    rows: usize,
    cols: usize,
    mask: Vec<u8>,
    sign: Vec<i8>,
}

impl QuantMatrix {
    /// A matrix with no connection.
    pub fn zeros(rows: usize, cols: usize) -> QuantMatrix {
        QuantMatrix {
            rows,
            cols,
            mask: vec![0; rows * cols],
            sign: vec![0; rows * cols],
        }
    }

    /// A matrix from row-major masks (`0..=15`) and signs (`-1, 0, 1`); the error names the first
    /// entry out of range.
    pub fn new(
        matrix: WeightMatrix,
        rows: usize,
        cols: usize,
        mask: Vec<u8>,
        sign: Vec<i8>,
    ) -> Result<QuantMatrix, Error> {
        for len in [mask.len(), sign.len()] {
            if len != rows * cols {
                return Err(Error::WeightData {
                    matrix,
                    expected: rows * cols,
                    found: len,
                });
            }
        }
        if let Some(i) = mask.iter().position(|&m| m as usize >= MASK_LEVELS) {
            return Err(Error::QuantEntry {
                matrix,
                pre: i / cols,
                post: i % cols,
                problem: format!("mask {} is not in 0..=15", mask[i]),
            });
        }
        if let Some(i) = sign.iter().position(|s| !(-1..=1).contains(s)) {
            return Err(Error::QuantEntry {
                matrix,
                pre: i / cols,
                post: i % cols,
                problem: format!("sign {} is not -1, 0 or 1", sign[i]),
            });
        }
        Ok(QuantMatrix {
            rows,
            cols,
            mask,
            sign,
        })
    }

    /// Number of rows (pre-synaptic).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (post-synaptic neurons).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major masks.
    pub fn masks(&self) -> &[u8] {
        &self.mask
    }

    /// Row-major signs.
    pub fn signs(&self) -> &[i8] {
        &self.sign
    }

    /// Mask and sign of the connection `pre -> post`.
    pub fn get(&self, pre: usize, post: usize) -> (u8, i8) {
        let i = pre * self.cols + post;
        (self.mask[i], self.sign[i])
    }

    /// Whether `pre -> post` is a connection on the chip (mask > 0 and sign != 0).
    pub fn is_connection(&self, pre: usize, post: usize) -> bool {
        let (m, s) = self.get(pre, post);
        m > 0 && s != 0
    }
}

/// A network's weights in the chip's format: per-core base currents, masks and signs.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedWeights {
    core_map: Vec<usize>,
    base: Vec<[f64; BASE_WEIGHTS]>,
    w_in: Option<QuantMatrix>,
    w_rec: QuantMatrix,
    i_scale: f64,
}

impl QuantizedWeights {
    /// Checks and assembles: `core_map[j]` is the core of neuron `j` and indexes `base`; base currents
    /// are finite and non-negative (A); `w_rec` is `N x N`, `w_in` is `Nin x N`; `i_scale > 0`.
    pub fn new(
        core_map: Vec<usize>,
        base: Vec<[f64; BASE_WEIGHTS]>,
        w_in: Option<QuantMatrix>,
        w_rec: QuantMatrix,
        i_scale: f64,
    ) -> Result<QuantizedWeights, Error> {
        let n = core_map.len();
        if !(i_scale.is_finite() && i_scale > 0.0) {
            return Err(Error::Iscale { value: i_scale });
        }
        if (w_rec.rows, w_rec.cols) != (n, n) {
            return Err(Error::WeightShape {
                matrix: WeightMatrix::Recurrent,
                expected: (n, n),
                found: (w_rec.rows, w_rec.cols),
            });
        }
        if let Some(w) = &w_in
            && w.cols != n
        {
            return Err(Error::WeightShape {
                matrix: WeightMatrix::Input,
                expected: (w.rows, n),
                found: (w.rows, w.cols),
            });
        }
        if let Some((neuron, &core)) = core_map.iter().enumerate().find(|&(_, &c)| c >= base.len())
        {
            return Err(Error::CoreMap {
                neuron,
                core,
                cores: base.len(),
            });
        }
        for (core, iw) in base.iter().enumerate() {
            if let Some(k) = iw.iter().position(|&i| !(i.is_finite() && i >= 0.0)) {
                return Err(Error::BaseCurrent {
                    core,
                    index: k,
                    value: iw[k],
                });
            }
        }
        Ok(QuantizedWeights {
            core_map,
            base,
            w_in,
            w_rec,
            i_scale,
        })
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.core_map.len()
    }

    /// The core of every neuron.
    pub fn core_map(&self) -> &[usize] {
        &self.core_map
    }

    /// The base currents `Iw_0..Iw_3` (A) of every core, indexed by core.
    pub fn base_currents(&self) -> &[[f64; BASE_WEIGHTS]] {
        &self.base
    }

    /// Input masks and signs, if the network has input weights.
    pub fn w_in(&self) -> Option<&QuantMatrix> {
        self.w_in.as_ref()
    }

    /// Recurrent masks and signs.
    pub fn w_rec(&self) -> &QuantMatrix {
        &self.w_rec
    }

    /// The weight scale current `Iscale` (A).
    pub fn i_scale(&self) -> f64 {
        self.i_scale
    }

    fn decode_matrix(&self, q: &QuantMatrix) -> Matrix {
        let levels: Vec<[f64; MASK_LEVELS]> = self
            .base
            .iter()
            .map(|iw| mask_levels(iw, self.i_scale))
            .collect();
        let data = q
            .mask
            .iter()
            .zip(&q.sign)
            .enumerate()
            .map(|(i, (&m, &s))| {
                let level = levels[self.core_map[i % q.cols]][m as usize];
                match s {
                    1 => level,
                    -1 => -level,
                    _ => 0.0,
                }
            })
            .collect();
        Matrix::from_vec(q.rows, q.cols, data).expect("rows * cols values")
    }

    /// The float weights the chip realises: `sign * (sum over set bits k of Iw[core of post][k]) /
    /// Iscale`, as `(w_in, w_rec)`.
    pub fn decode(&self) -> (Option<Matrix>, Matrix) {
        (
            self.w_in.as_ref().map(|q| self.decode_matrix(q)),
            self.decode_matrix(&self.w_rec),
        )
    }

    /// Puts the decoded weights and this `Iscale` into `net`, so the simulator runs exactly what the
    /// chip will. The network must have the same neurons and input channels.
    pub fn apply_to(&self, net: &mut Network) -> Result<(), Error> {
        let n = net.neurons();
        if n != self.neurons() {
            return Err(Error::WeightShape {
                matrix: WeightMatrix::Recurrent,
                expected: (n, n),
                found: (self.neurons(), self.neurons()),
            });
        }
        let (w_in, w_rec) = self.decode();
        match (&net.w_in, &w_in) {
            (Some(a), Some(b)) if a.rows() != b.rows() => {
                return Err(Error::WeightShape {
                    matrix: WeightMatrix::Input,
                    expected: (a.rows(), n),
                    found: (b.rows(), n),
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::QuantInputPresence {
                    network_has_w_in: net.w_in.is_some(),
                });
            }
            _ => {}
        }
        net.w_in = w_in;
        net.w_rec = w_rec;
        net.i_scale = self.i_scale;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_subset_sums() {
        let l = mask_levels(&[1e-9, 2e-9, 4e-9, 8e-9], 1e-9);
        for (q, &v) in l.iter().enumerate() {
            assert!((v - q as f64).abs() < 1e-12, "level {q} = {v}");
        }
        assert_eq!(l[0], 0.0);
    }

    #[test]
    fn decode_uses_the_post_neurons_core() {
        let w_rec = QuantMatrix::new(
            WeightMatrix::Recurrent,
            2,
            2,
            vec![1, 3, 0, 15],
            vec![1, -1, 1, 1],
        )
        .unwrap();
        let q = QuantizedWeights::new(
            vec![0, 1],
            vec![[1e-8, 2e-8, 0.0, 0.0], [1e-9, 1e-9, 1e-9, 1e-9]],
            None,
            w_rec,
            1e-8,
        )
        .unwrap();
        let (w_in, w_rec) = q.decode();
        assert!(w_in.is_none());
        assert_eq!(w_rec.as_slice(), &[1.0, -0.2, 0.0, 0.4]);
    }

    #[test]
    fn bad_entries_are_named() {
        let e =
            QuantMatrix::new(WeightMatrix::Input, 2, 2, vec![0, 0, 16, 0], vec![0; 4]).unwrap_err();
        assert_eq!(e.to_string(), "w_in[1][0]: mask 16 is not in 0..=15");
        let e = QuantMatrix::new(WeightMatrix::Input, 1, 2, vec![0, 0], vec![0, 2]).unwrap_err();
        assert_eq!(e.to_string(), "w_in[0][1]: sign 2 is not -1, 0 or 1");
        let e = QuantizedWeights::new(
            vec![0, 2],
            vec![[0.0; 4]; 2],
            None,
            QuantMatrix::zeros(2, 2),
            1e-8,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "neuron 1 is on core 2, but base weight currents are given for 2 cores only"
        );
        let e = QuantizedWeights::new(
            vec![0],
            vec![[0.0, -1e-9, 0.0, 0.0]],
            None,
            QuantMatrix::zeros(1, 1),
            1e-8,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "base weight current Iw_1 of core 0 is -1e-9 A; it must be finite and >= 0"
        );
    }

    #[test]
    fn dendrite_names_round_trip() {
        for d in Dendrite::ALL {
            assert_eq!(Dendrite::from_name(d.name()), Some(d));
        }
        assert_eq!(Dendrite::for_sign(-1), Some(Dendrite::Gaba));
        assert_eq!(Dendrite::for_sign(0), None);
    }
}
