//! Network descriptions shared by every crate: dense weight matrices and a DynapSim population with
//! its input and recurrent weights, in SI units.

use crate::chip::ChipSynapses;
use crate::error::{Error, WeightMatrix};
use crate::param::{DEFAULT_DT, DEFAULT_ISCALE, NeuronParams};

/// A dense row-major matrix of `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// A matrix from row-major data; `None` if `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f64>) -> Option<Matrix> {
        (data.len() == rows * cols).then_some(Matrix { rows, cols, data })
    }

    /// A matrix from rows; `None` if the rows are ragged.
    pub fn from_rows(rows: &[Vec<f64>]) -> Option<Matrix> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != cols) {
            return None;
        }
        Some(Matrix {
            rows: rows.len(),
            cols,
            data: rows.concat(),
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major data.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// Row-major data, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Element `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    pub(crate) fn check(
        &self,
        matrix: WeightMatrix,
        expected: (usize, usize),
    ) -> Result<(), Error> {
        if self.data.len() != self.rows * self.cols {
            return Err(Error::WeightData {
                matrix,
                expected: self.rows * self.cols,
                found: self.data.len(),
            });
        }
        if (self.rows, self.cols) != expected {
            return Err(Error::WeightShape {
                matrix,
                expected,
                found: (self.rows, self.cols),
            });
        }
        if let Some(i) = self.data.iter().position(|w| !w.is_finite()) {
            return Err(Error::NonFiniteWeight {
                matrix,
                pre: i / self.cols,
                post: i % self.cols,
                value: self.data[i],
            });
        }
        Ok(())
    }
}

/// Which model the simulator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Variant {
    /// Rockpool 3.1.0's DynapSim, exactly, quirks included (model.md section 1.5).
    #[default]
    Rockpool,
    /// The physically faithful model of the silicon: four dendrites per neuron, inhibition that
    /// inhibits, the leak counted once (see the `chip` module documentation of [`crate::ChipSimulator`]).
    Chip,
}

impl Variant {
    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Rockpool => "rockpool",
            Variant::Chip => "chip",
        }
    }

    /// Parses a name as written by [`Variant::name`].
    pub fn from_name(name: &str) -> Option<Variant> {
        match name {
            "rockpool" => Some(Variant::Rockpool),
            "chip" => Some(Variant::Chip),
            _ => None,
        }
    }
}

/// A population of `N` DynapSim neurons with optional input weights and recurrent weights.
///
/// Weights are dimensionless multiples of `i_scale`: a weight `w` injects `w * i_scale` amperes.
/// Matrices are `[pre, post]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Per-neuron parameters (SI).
    pub params: NeuronParams,
    /// Input weights `[Nin, N]`, or `None` when the input is already weighted per neuron.
    pub w_in: Option<Matrix>,
    /// Recurrent weights `[N, N]` (`w_rec[pre][post]`); all zeros for a feed-forward layer.
    pub w_rec: Matrix,
    /// Weight scale current `Iscale` (A).
    pub i_scale: f64,
    /// Time step (s).
    pub dt: f64,
    /// The model variant.
    pub variant: Variant,
    /// What only the `chip` variant reads: the parameters of the NMDA, GABA and SHUNT dendrites and
    /// the synapse type of every connection; `None` means their defaults ([`ChipSynapses::defaults`]).
    pub chip: Option<ChipSynapses>,
}

impl Network {
    /// `n` neurons at Rockpool's defaults, no input weights, zero recurrent weights,
    /// `Iscale = 1e-8 A`, `dt = 1 ms`.
    pub fn with_defaults(n: usize) -> Network {
        Network {
            params: NeuronParams::defaults(n),
            w_in: None,
            w_rec: Matrix::zeros(n, n),
            i_scale: DEFAULT_ISCALE,
            dt: DEFAULT_DT,
            variant: Variant::Rockpool,
            chip: None,
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.params.len()
    }

    /// Number of input channels: the rows of `w_in`, or `N` when there is none.
    pub fn input_channels(&self) -> usize {
        self.w_in.as_ref().map_or(self.neurons(), Matrix::rows)
    }

    /// Checks everything: parameters (see [`NeuronParams::validate`]), `dt`, `Iscale`, the weight
    /// shapes and that every weight is finite.
    pub fn validate(&self) -> Result<(), Error> {
        let n = self.neurons();
        self.params.validate(n)?;
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::TimeStep { value: self.dt });
        }
        if !(self.i_scale.is_finite() && self.i_scale > 0.0) {
            return Err(Error::Iscale {
                value: self.i_scale,
            });
        }
        if let Some(w) = &self.w_in {
            w.check(WeightMatrix::Input, (w.rows(), n))?;
        }
        self.w_rec.check(WeightMatrix::Recurrent, (n, n))?;
        if let Some(c) = &self.chip {
            c.validate(n, self.w_in.as_ref().map(Matrix::rows))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_shapes_and_values() {
        let mut net = Network::with_defaults(3);
        net.validate().unwrap();
        net.w_rec = Matrix::zeros(3, 2);
        assert_eq!(
            net.validate(),
            Err(Error::WeightShape {
                matrix: WeightMatrix::Recurrent,
                expected: (3, 3),
                found: (3, 2)
            })
        );
        net.w_rec = Matrix::zeros(3, 3);
        net.w_in =
            Some(Matrix::from_vec(2, 3, vec![0.0, 1.0, 2.0, 3.0, f64::INFINITY, 5.0]).unwrap());
        let e = net.validate().unwrap_err();
        assert!(matches!(
            e,
            Error::NonFiniteWeight {
                matrix: WeightMatrix::Input,
                pre: 1,
                post: 1,
                ..
            }
        ));
        assert_eq!(e.to_string(), "w_in[1][1] is inf; weights must be finite");
        net.w_in = None;
        net.dt = 0.0;
        assert_eq!(net.validate(), Err(Error::TimeStep { value: 0.0 }));
        net.dt = 1e-3;
        net.i_scale = f64::NAN;
        assert!(matches!(net.validate(), Err(Error::Iscale { .. })));
    }

    #[test]
    fn ragged_rows_are_refused() {
        assert!(Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]).is_none());
        let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        assert_eq!(m.get(1, 0), 3.0);
        assert_eq!(m.row(1), &[3.0, 4.0]);
    }
}
