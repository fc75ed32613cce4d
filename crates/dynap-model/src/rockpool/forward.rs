//! The DynapSim forward simulator (`rockpool` variant): Rockpool 3.1.0's per-step update, fused per
//! neuron, batched over threads, in `f32` (Rockpool's precision and operation order) or `f64`.
//!
//! The update of one neuron at step `t` (model.md section 1.5; `max(x, lo)` is `jnp.clip(x, lo)`):
//!
//! ```text
//! Iws      = (sum_i s_i w_rec[i][j] + x_t[j]) * Iscale
//! isyn_inf = max((Igain_syn'/Itau_syn') * Iws, Io)
//! isyn     = exp(-dt/tau_syn) * isyn + (1 - exp(-t_pulse/tau_syn)) * isyn_inf
//! iahp_inf = (Igain_ahp'/Itau_ahp') * (Iw_ahp * s)
//! iahp     = max(exp(-dt/tau_ahp) * iahp + (1 - exp(-t_pulse_ahp/tau_ahp)) * iahp_inf, Io)
//! f_fb     = exp(kappa' * (vmem / Ut))
//! Ileak    = Itau_mem' + iahp
//! Iin      = max((isyn - Ileak + Idc) * [timer_ref == 0], Io)
//! imem_inf = (Igain_mem'/Itau_mem') * (Iin - Ileak)
//! f_imem   = (Io * f_fb / Ileak) * (imem + Igain_mem')
//! dimem    = imem / (tau(Ileak, C_mem) * (imem + Igain_mem')) * (imem_inf + f_imem - imem * (1 + iahp/Itau_mem'))
//! imem     = max(imem + dimem * dt, Io)
//! vmem     = (Ut/kappa) * ln(imem/Io)
//! s        = max(ceil(ln(imem/Ispkthr)), 0)
//! b        = min(s, 1);  imem = (1-b) imem + b Io;  timer_ref = (1-b) max(timer_ref - dt, 0) + b t_ref
//! ```
//!
//! with `kappa = (kappa_n + kappa_p)/2`, `kappa' = kappa^2/(kappa + 1)`, `tau(I, C) = (Ut/kappa) C / I`,
//! pulse widths `t(I, C) = Vth C / I`, and primes marking the floor at `Io`.

use crate::aligned::Aligned;
use crate::error::Error;
use crate::error::WeightMatrix;
use crate::events::{ElementEvents, SpikeEvents};
use crate::isa::Isa;
use crate::network::{Matrix, Network, Variant};
use crate::param::NeuronParams;
use crate::real::Real;
use crate::run::{Input, Recording, RunOptions, add_rows_unit};

/// `jnp.clip(x, lo)`: `lo` when `x < lo`, otherwise `x`. A NaN passes through, as XLA's `max` does.
#[inline(always)]
fn clip_lo<T: Real>(x: T, lo: T) -> T {
    if x < lo { lo } else { x }
}

/// Per-neuron constants, computed once per run in the working precision with Rockpool's expressions
/// (model.md section 1.4), stored as one vector per constant.
#[derive(Clone, Debug)]
pub(crate) struct Consts<T> {
    pub(crate) io: Aligned<T>,
    pub(crate) idc: Aligned<T>,
    pub(crate) f_dis_syn: Aligned<T>,
    pub(crate) f_chg_syn: Aligned<T>,
    pub(crate) gain_syn: Aligned<T>,
    pub(crate) f_dis_ahp: Aligned<T>,
    pub(crate) f_chg_ahp: Aligned<T>,
    pub(crate) gain_ahp: Aligned<T>,
    pub(crate) iw_ahp: Aligned<T>,
    pub(crate) kappa_prime: Aligned<T>,
    pub(crate) ut: Aligned<T>,
    pub(crate) ut_over_kappa: Aligned<T>,
    /// `(Ut/kappa) * C_mem`: the numerator of `tau(Ileak, C_mem)`.
    pub(crate) utk_cmem: Aligned<T>,
    pub(crate) itau_mem: Aligned<T>,
    pub(crate) igain_mem: Aligned<T>,
    pub(crate) gain_mem: Aligned<T>,
    pub(crate) ispkthr: Aligned<T>,
    pub(crate) t_ref: Aligned<T>,
    /// `1 / itau_mem` and `kappa' / Ut`: constants the reverse pass would otherwise divide out at
    /// every step (the same operations, so the same bits).
    pub(crate) inv_itau_mem: Aligned<T>,
    pub(crate) kappa_prime_over_ut: Aligned<T>,
}

impl<T: Real> Consts<T> {
    /// The constants the forward step and the reverse pass's coefficient kernels read, in their
    /// order (the forward step also reads `t_ref`, and not the last two): `io, idc,
    /// f_dis_syn, f_chg_syn, gain_syn, f_dis_ahp, f_chg_ahp, gain_ahp, iw_ahp, kappa_prime, ut,
    /// ut_over_kappa, utk_cmem, itau_mem, igain_mem, gain_mem, ispkthr, 1/itau_mem, kappa'/Ut`.
    #[inline(always)]
    pub(crate) fn coefficient_inputs(&self) -> [&[T]; 19] {
        [
            &self.io,
            &self.idc,
            &self.f_dis_syn,
            &self.f_chg_syn,
            &self.gain_syn,
            &self.f_dis_ahp,
            &self.f_chg_ahp,
            &self.gain_ahp,
            &self.iw_ahp,
            &self.kappa_prime,
            &self.ut,
            &self.ut_over_kappa,
            &self.utk_cmem,
            &self.itau_mem,
            &self.igain_mem,
            &self.gain_mem,
            &self.ispkthr,
            &self.inv_itau_mem,
            &self.kappa_prime_over_ut,
        ]
    }

    /// Extends every constant to `len` entries with copies of neuron 0 (see [`LANES`]).
    fn pad(&mut self, len: usize) {
        let Consts {
            io,
            idc,
            f_dis_syn,
            f_chg_syn,
            gain_syn,
            f_dis_ahp,
            f_chg_ahp,
            gain_ahp,
            iw_ahp,
            kappa_prime,
            ut,
            ut_over_kappa,
            utk_cmem,
            itau_mem,
            igain_mem,
            gain_mem,
            ispkthr,
            t_ref,
            inv_itau_mem,
            kappa_prime_over_ut,
        } = self;
        for v in [
            io,
            idc,
            f_dis_syn,
            f_chg_syn,
            gain_syn,
            f_dis_ahp,
            f_chg_ahp,
            gain_ahp,
            iw_ahp,
            kappa_prime,
            ut,
            ut_over_kappa,
            utk_cmem,
            itau_mem,
            igain_mem,
            gain_mem,
            ispkthr,
            t_ref,
            inv_itau_mem,
            kappa_prime_over_ut,
        ] {
            if let Some(&first) = v.first() {
                v.resize(len, first);
            }
        }
    }
}

/// A checked input: the weighted input per neuron `[batch][steps][N]`, input spikes as the caller's
/// events, or input spikes as a dense raster `[batch][steps][channels]`, which each worker turns into
/// events one batch element at a time (in parallel, into its own reused buffer).
pub(crate) enum Source<'i, T> {
    Weighted(&'i [T]),
    Events(&'i SpikeEvents<T>),
    Dense { data: &'i [T], channels: usize },
}

impl<T: Real> Source<'_, T> {
    /// The input of batch element `b` (`steps` steps of `n` neurons); a dense raster's element is
    /// converted into `events` (a worker's buffer).
    pub(crate) fn element<'s>(
        &'s self,
        b: usize,
        steps: usize,
        n: usize,
        events: &'s mut SpikeEvents<T>,
    ) -> Drive<'s, T> {
        match self {
            Source::Weighted(data) => Drive::Weighted(&data[b * steps * n..(b + 1) * steps * n]),
            Source::Events(ev) => Drive::Events(ev.element(b)),
            Source::Dense { data, channels } => {
                let per = steps * channels;
                // (Checked: by `Simulator::source`, or by `element_checked`'s caller.)
                let _ = events.fill_from_dense(&data[b * per..(b + 1) * per], 1, steps, *channels);
                Drive::Events(events.element(0))
            }
        }
    }

    /// [`Source::element`] for a source made by [`Simulator::source_deferred`]: a dense raster's
    /// values are checked as the element is converted, and the first that is not finite is an error
    /// naming it.
    pub(crate) fn element_checked<'s>(
        &'s self,
        b: usize,
        steps: usize,
        n: usize,
        events: &'s mut SpikeEvents<T>,
    ) -> Result<Drive<'s, T>, Error> {
        match self {
            Source::Dense { data, channels } => {
                let per = steps * channels;
                let bad =
                    events.fill_from_dense(&data[b * per..(b + 1) * per], 1, steps, *channels);
                match bad {
                    Some(i) => Err(Error::NonFiniteInput {
                        batch: b,
                        step: i / channels,
                        channel: i % channels,
                    }),
                    None => Ok(Drive::Events(events.element(0))),
                }
            }
            _ => Ok(self.element(b, steps, n, events)),
        }
    }

    /// Input channels: N for weighted input, Nin for spikes.
    pub(crate) fn channels(&self, n: usize) -> usize {
        match self {
            Source::Weighted(_) => n,
            Source::Events(ev) => ev.channels(),
            Source::Dense { channels, .. } => *channels,
        }
    }

    /// Whether the input is spikes (through `w_in`).
    pub(crate) fn is_spikes(&self) -> bool {
        !matches!(self, Source::Weighted(_))
    }
}

/// The input of one batch element, as the kernels read it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Drive<'a, T> {
    /// Weighted input per neuron, `[steps][N]`.
    Weighted(&'a [T]),
    /// Input spikes, through the padded `w_in`.
    Events(ElementEvents<'a, T>),
}

impl<'a, T: Real> Drive<'a, T> {
    /// The input of steps `from..from + steps`.
    pub(crate) fn steps(self, from: usize, steps: usize, n: usize) -> Drive<'a, T> {
        match self {
            Drive::Weighted(xs) => Drive::Weighted(&xs[from * n..(from + steps) * n]),
            Drive::Events(ev) => Drive::Events(ev.steps(from, steps)),
        }
    }
}

/// The simulator of one network in precision `T`: the network's parameters and weights converted once,
/// ready to run any number of inputs.
#[derive(Clone, Debug)]
pub struct Simulator<T: Real> {
    pub(crate) n: usize,
    pub(crate) n_in: Option<usize>,
    pub(crate) c: Consts<T>,
    /// `w_in` (`[Nin][N]`) with each row padded to a multiple of [`LANES`] with zeros: one whole-vector update per
    /// input event.
    pub(crate) w_in_pad: Option<Aligned<T>>,
    pub(crate) w_rec: Aligned<T>,
    /// `w_rec` transposed (`[post][pre]`), for the reverse pass.
    pub(crate) w_rec_t: Aligned<T>,
    pub(crate) rec_nonzero: bool,
    pub(crate) i_scale: T,
    pub(crate) dt: T,
    pub(crate) isa: Isa,
    pub(crate) spike: SpikeFunction,
    /// The network's parameters in `f64`, for the reverse pass's chain rule to the bias currents.
    pub(crate) params: NeuronParams,
}

/// How a neuron turns its membrane current into spikes.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum SpikeFunction {
    /// Rockpool's: the count `max(ceil(ln(imem / Ispkthr)), 0)`, reset bit `min(count, 1)`, and in the
    /// reverse pass Rockpool's `step_pwl` surrogate (d count / d imem = 1 wherever imem > Io, nothing to
    /// Ispkthr) with JAX's tie rules.
    #[default]
    Rockpool,
    /// A smooth spike for checking gradients by finite differences (tests and diagnostics only): the
    /// "count" `s = 1 / (1 + (Ispkthr / imem)^beta)` in (0, 1), used as the reset fraction too, with its
    /// exact derivative in the reverse pass. The refractory gate still tests `timer_ref == 0`, so
    /// finite-difference checks set `C_ref = 0` (no refractory period) to keep the model smooth.
    Smooth {
        /// Sharpness (dimensionless); larger is closer to a step at `imem = Ispkthr`.
        beta: f64,
    },
}

/// The state of every neuron of every batch element, `[batch, N]` row-major per variable.
///
/// The final state of a run can be passed as the initial state of the next run. Unlike Rockpool, whose
/// returned `isyn` is not read back, the synaptic current is carried too.
#[derive(Clone, Debug, PartialEq)]
pub struct State<T> {
    /// Batch size.
    pub batch: usize,
    /// Neurons.
    pub neurons: usize,
    /// Membrane current (A).
    pub imem: Vec<T>,
    /// Synaptic current (A).
    pub isyn: Vec<T>,
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// Spike counts of the last step.
    pub spikes: Vec<T>,
    /// Remaining refractory time (s).
    pub timer_ref: Vec<T>,
    /// Membrane voltage of the last step, before reset (V).
    pub vmem: Vec<T>,
}

/// The traces of a run, each `[batch, steps, N]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct StateTraces<T> {
    /// Membrane current after the step (after reset) (A).
    pub imem: Vec<T>,
    /// Synaptic current (A).
    pub isyn: Vec<T>,
    /// Adaptation current (A).
    pub iahp: Vec<T>,
    /// Membrane voltage, before reset (V).
    pub vmem: Vec<T>,
}

/// What a run returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace<T> {
    /// Batch size.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Neurons.
    pub neurons: usize,
    /// Spike counts `[batch, steps, N]` (a count can exceed 1).
    pub spikes: Vec<T>,
    /// The state traces, with [`Recording::Full`].
    pub states: Option<StateTraces<T>>,
    /// The state after the last step.
    pub final_state: State<T>,
    /// Total spikes per batch element and neuron, `[batch, N]`, when the run summed them (a taped
    /// run, whose loss usually needs them: the forward kernel adds each step's count to the neurons it
    /// lists as spiking); empty otherwise. See [`Trace::spike_counts`].
    pub(crate) counts: Vec<f64>,
}

impl<T: Real> Trace<T> {
    /// Total spikes per batch element and neuron, `[batch, N]`: `0.0 + s_0 + s_1 + ...` in `f64`, in
    /// step order. Kept from the run when it summed them, otherwise summed from the raster now.
    pub fn spike_counts(&self) -> Vec<f64> {
        if !self.counts.is_empty() || self.batch * self.neurons == 0 {
            return self.counts.clone();
        }
        let mut out = vec![0.0; self.batch * self.neurons];
        let per = self.steps * self.neurons;
        for (o, spikes) in out
            .chunks_exact_mut(self.neurons)
            .zip(self.spikes.chunks_exact(per.max(1)))
        {
            count_spikes(spikes, o);
        }
        out
    }
}

/// `0.0 + s_0 + s_1 + ...` over the steps of one element's spikes `[steps, n]`, into `out` (`n`).
fn count_spikes<T: Real>(spikes: &[T], out: &mut [f64]) {
    out.fill(0.0);
    for row in spikes.chunks_exact(out.len().max(1)) {
        for (o, s) in out.iter_mut().zip(row) {
            *o += s.to_f64();
        }
    }
}

/// What a taped run records besides its outputs (see `adjoint.rs`): the state every `every` steps
/// (`states`, with `every`), every step's reverse coefficients (`coef`) and every step's
/// positive-feedback factors (`feedback`, `[batch][step][n_pad]`).
pub(crate) struct Taped<'a, T> {
    pub(crate) states: Option<(&'a mut [T], usize)>,
    pub(crate) coef: Option<&'a mut [T]>,
    pub(crate) feedback: Option<&'a mut [T]>,
}

impl<T> Default for Taped<'_, T> {
    fn default() -> Self {
        Taped {
            states: None,
            coef: None,
            feedback: None,
        }
    }
}

/// One batch element's share of the outputs, handed to a worker thread.
struct Job<'a, T> {
    batch: usize,
    /// Where to record the padded state every `tape_every` steps (see `adjoint.rs`), if anywhere.
    tape: Option<&'a mut [T]>,
    /// Where to record the reverse coefficients of every step, if anywhere (see `Simulator::run_impl`).
    coef: Option<&'a mut [T]>,
    /// Where to record every step's positive-feedback factors `[steps][n_pad]`, if anywhere.
    ffb: Option<&'a mut [T]>,
    /// The element's input error, found by its thread (the run's result is then this error).
    bad: Option<Error>,
    spikes: &'a mut [T],
    /// The element's spike totals, `[N]`, if the run sums them.
    counts: Option<&'a mut [f64]>,
    traces: Option<[&'a mut [T]; 4]>,
    imem: &'a mut [T],
    isyn: &'a mut [T],
    iahp: &'a mut [T],
    s: &'a mut [T],
    timer: &'a mut [T],
    vmem: &'a mut [T],
}

impl<T: Real> Simulator<T> {
    /// Validates the network ([`Network::validate`]) and converts it to precision `T`.
    pub fn new(net: &Network) -> Result<Simulator<T>, Error> {
        if net.variant != Variant::Rockpool {
            return Err(Error::WrongVariant {
                simulator: Variant::Rockpool.name(),
                network: net.variant.name(),
            });
        }
        net.validate()?;
        let n = net.neurons();
        let p = &net.params;
        let cv = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (io, kn, kp, ut, vth) = (
            cv(&p.i_o),
            cv(&p.kappa_n),
            cv(&p.kappa_p),
            cv(&p.u_t),
            cv(&p.v_th),
        );
        let dt = T::from_f64(net.dt);
        let two = T::from_f64(2.0);
        let kappa: Vec<T> = kn.iter().zip(&kp).map(|(&a, &b)| (a + b) / two).collect();
        let ut_over_kappa: Vec<T> = ut.iter().zip(&kappa).map(|(&u, &k)| u / k).collect();
        // tau(I, C) = ((Ut/kappa) * C) / I and pw(I, C) = (Vth * C) / I, as Rockpool writes them.
        let tau = |i: &[f64], c: &[f64]| -> Vec<T> {
            (0..n)
                .map(|j| (ut_over_kappa[j] * T::from_f64(c[j])) / T::from_f64(i[j]))
                .collect()
        };
        let pw = |i: &[f64], c: &[f64]| -> Vec<T> {
            (0..n)
                .map(|j| (vth[j] * T::from_f64(c[j])) / T::from_f64(i[j]))
                .collect()
        };
        let floor = |v: &[f64]| -> Vec<T> {
            v.iter()
                .zip(&io)
                .map(|(&x, &o)| clip_lo(T::from_f64(x), o))
                .collect()
        };
        let itau_syn = floor(&p.i_tau_syn);
        let igain_syn = floor(&p.i_gain_syn);
        let itau_ahp = floor(&p.i_tau_ahp);
        let igain_ahp = floor(&p.i_gain_ahp);
        let itau_mem = floor(&p.i_tau_mem);
        let igain_mem = floor(&p.i_gain_mem);
        let itau_syn_f64: Vec<f64> = itau_syn.iter().map(|x| x.to_f64()).collect();
        let itau_ahp_f64: Vec<f64> = itau_ahp.iter().map(|x| x.to_f64()).collect();
        let tau_syn = tau(&itau_syn_f64, &p.c_syn);
        let tau_ahp = tau(&itau_ahp_f64, &p.c_ahp);
        let t_ref = pw(&p.i_ref, &p.c_ref);
        let t_pulse = pw(&p.i_pulse, &p.c_pulse);
        let t_pulse_ahp = pw(&p.i_pulse_ahp, &p.c_pulse_ahp);
        for j in 0..n {
            // A zero current with a zero capacitance gives 0/0; anything else is defined (a zero
            // current gives an infinite width, which Rockpool handles: exp(-inf) = 0).
            let checks = [
                (
                    t_ref[j],
                    "the refractory period Vth*C_ref/Iref (Iref = 0 and C_ref = 0)",
                ),
                (
                    t_pulse[j],
                    "the pulse width Vth*C_pulse/Ipulse (Ipulse = 0 and C_pulse = 0)",
                ),
                (
                    t_pulse_ahp[j],
                    "the AHP pulse width Vth*C_pulse_ahp/Ipulse_ahp (Ipulse_ahp = 0 and C_pulse_ahp = 0)",
                ),
            ];
            for (v, what) in checks {
                if v.to_f64().is_nan() {
                    return Err(Error::Degenerate {
                        neuron: j,
                        quantity: what,
                    });
                }
            }
        }
        let decay = |t: &[T], tau: &[T]| -> Vec<T> {
            t.iter().zip(tau).map(|(&t, &k)| (-(t / k)).exp()).collect()
        };
        let dts = vec![dt; n];
        let f_dis_syn = decay(&dts, &tau_syn);
        let f_chg_syn: Vec<T> = decay(&t_pulse, &tau_syn)
            .into_iter()
            .map(|e| T::ONE - e)
            .collect();
        let f_dis_ahp = decay(&dts, &tau_ahp);
        let f_chg_ahp: Vec<T> = decay(&t_pulse_ahp, &tau_ahp)
            .into_iter()
            .map(|e| T::ONE - e)
            .collect();
        let ratio =
            |g: &[T], t: &[T]| -> Vec<T> { g.iter().zip(t).map(|(&g, &t)| g / t).collect() };
        let mut c = Consts {
            idc: Aligned::from_slice(&cv(&p.i_dc)),
            f_dis_syn: Aligned::from_slice(&f_dis_syn),
            f_chg_syn: Aligned::from_slice(&f_chg_syn),
            gain_syn: Aligned::from_slice(&ratio(&igain_syn, &itau_syn)),
            f_dis_ahp: Aligned::from_slice(&f_dis_ahp),
            f_chg_ahp: Aligned::from_slice(&f_chg_ahp),
            gain_ahp: Aligned::from_slice(&ratio(&igain_ahp, &itau_ahp)),
            iw_ahp: Aligned::from_slice(&cv(&p.i_w_ahp)),
            kappa_prime: Aligned::from_slice(
                &kappa
                    .iter()
                    .map(|&k| (k * k) / (k + T::ONE))
                    .collect::<Vec<T>>(),
            ),
            utk_cmem: Aligned::from_slice(
                &(0..n)
                    .map(|j| ut_over_kappa[j] * T::from_f64(p.c_mem[j]))
                    .collect::<Vec<T>>(),
            ),
            ut_over_kappa: Aligned::from_slice(&ut_over_kappa),
            ut: Aligned::from_slice(&ut),
            gain_mem: Aligned::from_slice(&ratio(&igain_mem, &itau_mem)),
            itau_mem: Aligned::from_slice(&itau_mem),
            igain_mem: Aligned::from_slice(&igain_mem),
            ispkthr: Aligned::from_slice(&cv(&p.i_spkthr)),
            t_ref: Aligned::from_slice(&t_ref),
            inv_itau_mem: Aligned::from_slice(
                &itau_mem.iter().map(|&i| T::ONE / i).collect::<Vec<T>>(),
            ),
            kappa_prime_over_ut: Aligned::from_slice(
                &kappa
                    .iter()
                    .zip(&ut)
                    .map(|(&k, &u)| ((k * k) / (k + T::ONE)) / u)
                    .collect::<Vec<T>>(),
            ),
            io: Aligned::from_slice(&io),
        };
        c.pad(n.div_ceil(LANES) * LANES);
        let n_pad = n.div_ceil(LANES) * LANES;
        let w_in_pad = net.w_in.as_ref().map(|w| {
            let mut pad = Aligned::filled(w.rows() * n_pad, T::ZERO);
            for (dst, src) in pad
                .chunks_exact_mut(n_pad)
                .zip(w.as_slice().chunks_exact(n.max(1)))
            {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = T::from_f64(v);
                }
            }
            pad
        });
        let w_rec = Aligned::from_slice(&cv(net.w_rec.as_slice()));
        let rec_nonzero = w_rec.iter().any(|&w| w != T::ZERO);
        let w_rec_t = Aligned::from_slice(
            &(0..n * n)
                .map(|k| w_rec[(k % n) * n + k / n])
                .collect::<Vec<T>>(),
        );
        Ok(Simulator {
            n,
            n_in: net.w_in.as_ref().map(|w| w.rows()),
            c,
            w_in_pad,
            w_rec,
            w_rec_t,
            rec_nonzero,
            i_scale: T::from_f64(net.i_scale),
            dt,
            isa: Isa::detect(),
            spike: SpikeFunction::Rockpool,
            params: net.params.clone(),
        })
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.n
    }

    /// Replaces the weights, keeping every converted parameter: for a training loop, whose weights change
    /// at every step and its currents not. The matrices must have the network's shapes (`w_in` exactly
    /// when the network has input weights) and finite values; the result is the simulator that
    /// [`Simulator::new`] makes of the network with these weights.
    pub fn set_weights(&mut self, w_in: Option<&Matrix>, w_rec: &Matrix) -> Result<(), Error> {
        let n = self.n;
        match (w_in, self.n_in) {
            (Some(w), Some(n_in)) => w.check(WeightMatrix::Input, (n_in, n))?,
            (None, None) => {}
            _ => return Err(Error::NoInputWeights),
        }
        w_rec.check(WeightMatrix::Recurrent, (n, n))?;
        if let (Some(w), Some(pad)) = (w_in, self.w_in_pad.as_mut()) {
            let n_pad = n.div_ceil(LANES) * LANES;
            for (row, src) in pad
                .chunks_exact_mut(n_pad)
                .zip(w.as_slice().chunks_exact(n.max(1)))
            {
                for (d, &v) in row.iter_mut().zip(src) {
                    *d = T::from_f64(v);
                }
            }
        }
        for (d, &x) in self.w_rec.iter_mut().zip(w_rec.as_slice()) {
            *d = T::from_f64(x);
        }
        self.rec_nonzero = self.w_rec.iter().any(|&w| w != T::ZERO);
        for (k, t) in self.w_rec_t.iter_mut().enumerate() {
            *t = self.w_rec[(k % n) * n + k / n];
        }
        Ok(())
    }

    /// The sharpness of the smooth spike function, `None` for Rockpool's.
    pub(crate) fn smooth_beta(&self) -> Option<T> {
        match self.spike {
            SpikeFunction::Rockpool => None,
            SpikeFunction::Smooth { beta } => Some(T::from_f64(beta)),
        }
    }

    /// Turns the ratios imem/Ispkthr that the step left in `s` into Rockpool's spike counts, and lists
    /// the spiking neurons in `active`. (Padding lanes are never listed, so they drive nothing.)
    #[inline(always)]
    pub(crate) fn spike_counts(&self, s: &mut [T], n: usize, active: &mut Vec<usize>) {
        // Spikes are sparse: one vector comparison per LANES neurons gives a bit mask of the spiking
        // ones, the chunk is cleared with one store, and only the set bits are visited.
        for (c, chunk) in s.chunks_exact_mut(LANES).enumerate() {
            let chunk: &mut [T; LANES] = chunk.try_into().expect("LANES values");
            let base = c * LANES;
            let mut mask = chunk
                .iter()
                .enumerate()
                .fold(0u32, |m, (k, &r)| m | (u32::from(r > T::ONE) << k));
            if base + LANES > n {
                // Padding lanes never spike.
                mask &= (1u32 << (n - base)) - 1;
            }
            let ratios = *chunk;
            *chunk = [T::ZERO; LANES];
            // A count above 1 needs ln(ratio) > 1, i.e. a ratio above e; below 2.5 (ln 2.5 = 0.92, far
            // from 1 whatever the logarithm's last bits) the count is 1, as `ceil(ln(ratio))` gives it,
            // without the logarithm's long chain for almost every spike.
            let one_below = T::from_f64(2.5);
            while mask != 0 {
                let k = mask.trailing_zeros() as usize;
                let r = ratios[k];
                chunk[k] = if r <= one_below {
                    T::ONE
                } else {
                    count_above(r)
                };
                active.push(base + k);
                mask &= mask - 1;
            }
        }
    }

    /// The same simulator with another spike function (see [`SpikeFunction`]).
    pub fn with_spike_function(mut self, spike: SpikeFunction) -> Simulator<T> {
        self.spike = spike;
        self
    }

    /// Rockpool's initial state for `batch` elements: `imem = isyn = iahp = Io`, everything else 0.
    pub fn initial_state(&self, batch: usize) -> State<T> {
        let io = &self.c.io[..self.n];
        let rep = |v: &[T]| -> Vec<T> { (0..batch).flat_map(|_| v.iter().copied()).collect() };
        let zeros = vec![T::ZERO; batch * self.n];
        State {
            batch,
            neurons: self.n,
            imem: rep(io),
            isyn: rep(io),
            iahp: rep(io),
            spikes: zeros.clone(),
            timer_ref: zeros.clone(),
            vmem: zeros,
        }
    }

    /// Runs the network on `input`, from `initial` (or Rockpool's initial state).
    ///
    /// Errors when the input's size or channel count does not fit the network, when it holds a
    /// non-finite value, or when the initial state has the wrong shape.
    pub fn run(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
    ) -> Result<Trace<T>, Error> {
        self.run_impl(input, initial, options, Taped::default(), None)
    }

    /// [`Simulator::run`], writing the spikes into the memory of an earlier trace's (a simulation loop
    /// then neither allocates nor clears megabytes per call: every value is written by the run).
    pub fn run_reusing(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        reuse: Option<Trace<T>>,
    ) -> Result<Trace<T>, Error> {
        self.run_impl(
            input,
            initial,
            options,
            Taped::default(),
            reuse.map(|t| t.spikes),
        )
    }

    /// The input, checked: its shape and channel count against the network, its values finite. Input
    /// spikes given as a dense raster are converted to events later, per batch element, by the
    /// threads that run them.
    pub(crate) fn source<'i>(&self, input: &Input<'i, T>) -> Result<Source<'i, T>, Error> {
        self.source_with(input, true)
    }

    /// [`Simulator::source`], except that a dense spike raster's values are not checked here but by
    /// each element's conversion on its worker thread ([`Source::element_checked`]): one pass over
    /// the raster fewer, and not on one thread.
    pub(crate) fn source_deferred<'i>(&self, input: &Input<'i, T>) -> Result<Source<'i, T>, Error> {
        self.source_with(input, false)
    }

    fn source_with<'i>(&self, input: &Input<'i, T>, values: bool) -> Result<Source<'i, T>, Error> {
        let (batch, steps) = input.dims();
        match *input {
            Input::Weighted { data, .. } => {
                // Weighted input is checked as a raster of N channels.
                SpikeEvents::check_dense(data, batch, steps, self.n)?;
                Ok(Source::Weighted(data))
            }
            Input::Spikes { data, .. } => {
                let channels = self.n_in.ok_or(Error::NoInputWeights)?;
                if values {
                    SpikeEvents::check_dense(data, batch, steps, channels)?;
                } else {
                    SpikeEvents::check_dense_shape(data, batch, steps, channels)?;
                }
                Ok(Source::Dense { data, channels })
            }
            Input::Events(ev) => {
                let channels = self.n_in.ok_or(Error::NoInputWeights)?;
                if ev.channels() != channels {
                    return Err(Error::InputShape {
                        batch,
                        steps,
                        channels,
                        found_len: batch * steps * ev.channels(),
                    });
                }
                Ok(Source::Events(ev))
            }
        }
    }

    /// [`Simulator::run`], optionally recording the padded state every `tape.1` steps into a tape
    /// (`tape.0`, `[batch][entries][TAPE_FIELDS][padded N]`) for the reverse pass.
    ///
    /// With `coef` (`[batch][steps][COEF][padded N]`, a full tape, Rockpool's spikes and no state
    /// traces), each element runs the fused forward of the reverse pass instead
    /// ([`Simulator::fused_forward`]): the same states and spikes, and every step's reverse
    /// coefficients besides.
    pub(crate) fn run_impl(
        &self,
        input: Input<'_, T>,
        initial: Option<&State<T>>,
        options: &RunOptions,
        taped: Taped<'_, T>,
        reuse: Option<Vec<T>>,
    ) -> Result<Trace<T>, Error> {
        let Taped {
            states: tape,
            coef,
            feedback,
        } = taped;
        let (batch, steps) = input.dims();
        // A dense raster's values are checked by the threads, element by element (see below).
        let source = self.source_deferred(&input)?;
        let (coef_used, n_pad) = (coef.is_some(), self.n.div_ceil(LANES) * LANES);
        let mut state = match initial {
            Some(s) => {
                let ok = s.batch == batch
                    && s.neurons == self.n
                    && [&s.imem, &s.isyn, &s.iahp, &s.spikes, &s.timer_ref, &s.vmem]
                        .iter()
                        .all(|v| v.len() == batch * self.n);
                if !ok {
                    return Err(Error::StateShape {
                        batch,
                        neurons: self.n,
                        found_batch: s.batch,
                        found_neurons: s.neurons,
                    });
                }
                s.clone()
            }
            None => self.initial_state(batch),
        };
        let n = self.n;
        let len = batch * steps * n;
        // Every value is written by the run, so reused memory needs no clearing.
        let mut spikes = reuse.unwrap_or_default();
        spikes.resize(len, T::ZERO);
        // A taped run sums each element's spikes as it goes (its loss needs them; see `Trace`).
        let mut counts = vec![0.0; if tape.is_some() { batch * n } else { 0 }];
        let mut traces = (options.recording == Recording::Full).then(|| StateTraces {
            imem: vec![T::ZERO; len],
            isyn: vec![T::ZERO; len],
            iahp: vec![T::ZERO; len],
            vmem: vec![T::ZERO; len],
        });
        {
            let per = steps * n;
            let mut trace_chunks: Vec<Option<[&mut [T]; 4]>> = match traces.as_mut() {
                Some(tr) => tr
                    .imem
                    .chunks_mut(per.max(1))
                    .zip(tr.isyn.chunks_mut(per.max(1)))
                    .zip(tr.iahp.chunks_mut(per.max(1)))
                    .zip(tr.vmem.chunks_mut(per.max(1)))
                    .map(|(((a, b), c), d)| Some([a, b, c, d]))
                    .collect(),
                None => (0..batch).map(|_| None).collect(),
            };
            trace_chunks.resize_with(batch, || None);
            let State {
                imem,
                isyn,
                iahp,
                spikes: s,
                timer_ref,
                vmem,
                ..
            } = &mut state;
            let mut spike_chunks = spikes.chunks_mut(per.max(1));
            // (None for every element when the run does not sum them: `counts` is empty.)
            let mut count_chunks = counts.chunks_mut(n.max(1));
            let tape_every = tape.as_ref().map_or(0, |t| t.1);
            let mut tape_chunks = tape.map(|(t, _)| {
                let per_element = t.len() / batch.max(1);
                t.chunks_mut(per_element.max(1))
            });
            let mut coef_chunks = coef.map(|c| {
                let per_element = c.len() / batch.max(1);
                c.chunks_mut(per_element.max(1))
            });
            let mut ffb_chunks = feedback.map(|f| f.chunks_mut((steps * n_pad).max(1)));
            let mut jobs: Vec<Job<'_, T>> = Vec::with_capacity(batch);
            let mut st = (
                imem.chunks_mut(n.max(1)),
                isyn.chunks_mut(n.max(1)),
                iahp.chunks_mut(n.max(1)),
                s.chunks_mut(n.max(1)),
                timer_ref.chunks_mut(n.max(1)),
                vmem.chunks_mut(n.max(1)),
            );
            for (b, traces) in trace_chunks.into_iter().enumerate() {
                if n == 0 {
                    break;
                }
                jobs.push(Job {
                    batch: b,
                    tape: tape_chunks.as_mut().and_then(Iterator::next),
                    coef: coef_chunks.as_mut().and_then(Iterator::next),
                    ffb: ffb_chunks.as_mut().and_then(Iterator::next),
                    bad: None,
                    spikes: spike_chunks.next().unwrap_or_default(),
                    counts: count_chunks.next(),
                    traces,
                    imem: st.0.next().unwrap_or_default(),
                    isyn: st.1.next().unwrap_or_default(),
                    iahp: st.2.next().unwrap_or_default(),
                    s: st.3.next().unwrap_or_default(),
                    timer: st.4.next().unwrap_or_default(),
                    vmem: st.5.next().unwrap_or_default(),
                });
            }
            let threads = match options.threads {
                0 => crate::threads::cores(),
                t => t,
            }
            .min(jobs.len().max(1));
            let run_job =
                |(scratch, events, big): &mut (Scratch<T>, SpikeEvents<T>, Aligned<T>),
                 _: usize,
                 job: &mut Job<'_, T>| {
                    let drive = match source.element_checked(job.batch, steps, n, events) {
                        Ok(drive) => drive,
                        Err(e) => {
                            job.bad = Some(e);
                            return;
                        }
                    };
                    scratch.load(job, &self.c.io);
                    let mut tape = job.tape.as_deref_mut().map(|t| (t, tape_every));
                    if let Some((t, _)) = tape.as_mut() {
                        scratch.record(t, 0);
                    }
                    if let (Some((t, _)), Some(cf)) = (tape.as_mut(), job.coef.as_deref_mut()) {
                        self.fused_forward(scratch, drive, steps, job.spikes, t, cf, big);
                        if let Some(c) = job.counts.as_deref_mut() {
                            count_spikes(job.spikes, c);
                        }
                    } else {
                        let traces = job
                            .traces
                            .as_mut()
                            .map(|[a, b, c, d]| [&mut **a, &mut **b, &mut **c, &mut **d]);
                        self.run_steps(
                            scratch,
                            drive,
                            steps,
                            Some(&mut *job.spikes),
                            traces,
                            tape,
                            job.ffb.as_deref_mut(),
                            job.counts.as_deref_mut(),
                        );
                    }
                    scratch.store(job);
                };
            let init = || {
                let big = Aligned::filled(if coef_used { 2 * n_pad } else { 0 }, T::ZERO);
                (Scratch::new(n), SpikeEvents::empty(), big)
            };
            crate::threads::for_each_item(&mut jobs, threads, init, run_job);
            // The first element's error, which names its first value that is not finite: the first
            // in the raster, as a check before the run would name it.
            if let Some(e) = jobs.iter_mut().find_map(|job| job.bad.take()) {
                return Err(e);
            }
        }
        Ok(Trace {
            batch,
            steps,
            neurons: n,
            spikes,
            states: traces,
            final_state: state,
            counts,
        })
    }

    /// Runs `steps` steps of one batch element from the state in `scratch`, with the instruction set
    /// chosen at construction. See [`Simulator::run_steps_body`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_steps(
        &self,
        scratch: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        spikes: Option<&mut [T]>,
        traces: Option<[&mut [T]; 4]>,
        tape: Option<(&mut [T], usize)>,
        feedback: Option<&mut [T]>,
        counts: Option<&mut [f64]>,
    ) {
        run_steps_kernel(
            self, self.isa, scratch, drive, steps, spikes, traces, tape, feedback, counts,
        );
    }

    /// Runs `steps` steps of one batch element from the padded state in `scratch`, writing the spikes
    /// (and the state traces) of each step, and the padded state after every `tape.1`-th step into
    /// `tape.0` (entry 0, the state before the first step, is the caller's). No allocation. Inlined into
    /// the per-instruction-set entry points, so that every loop in it is compiled for that set.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run_steps_body(
        &self,
        scratch: &mut Scratch<T>,
        drive: Drive<'_, T>,
        steps: usize,
        mut spikes: Option<&mut [T]>,
        mut traces: Option<[&mut [T]; 4]>,
        mut tape: Option<(&mut [T], usize)>,
        mut feedback: Option<&mut [T]>,
        mut counts: Option<&mut [f64]>,
    ) {
        let n = self.n;
        let Scratch {
            rec,
            x,
            active,
            state,
            ffb,
        } = scratch;
        // Every aligned buffer is dereferenced once, here, not at every step.
        let [isyn, iahp, imem, vmem, timer, s] = state.each_mut().map(|v| &mut v[..]);
        let (rec, x, ffb) = (&mut rec[..], &mut x[..], &mut ffb[..]);
        let np = ffb.len();
        rec.fill(T::ZERO);
        x.fill(T::ZERO);
        // Neurons that spiked in the previous step (the initial state may carry spikes).
        active.clear();
        active.extend((0..n).filter(|&i| s[i] != T::ZERO));
        let (consts, t_ref) = (self.c.coefficient_inputs(), &self.c.t_ref[..]);
        for t in 0..steps {
            self.form_drive(rec, x, active, s, drive, t);
            let ffb = match feedback.as_deref_mut() {
                Some(f) => &mut f[t * np..(t + 1) * np],
                None => &mut *ffb,
            };
            step_body(
                rec,
                x,
                consts,
                t_ref,
                self.dt,
                self.i_scale,
                self.smooth_beta(),
                isyn,
                iahp,
                imem,
                vmem,
                timer,
                s,
                ffb,
            );
            // `step_body` left imem/Ispkthr in `s`: turn it into the spike count, and list the spiking
            // neurons. (Padding lanes are never listed, so they drive nothing.)
            // Spikes are sparse: a vector test per LANES neurons skips the quiet ones.
            active.clear();
            if self.smooth_beta().is_some() {
                // A smooth spike is a fraction, already final; every neuron drives the others.
                active.extend((0..n).filter(|&i| s[i] != T::ZERO));
            } else {
                self.spike_counts(s, n, active);
            }
            // The run's spike totals, over the listed neurons only: the others add 0, which changes
            // no total (they start at +0 and never fall below it).
            if let Some(c) = counts.as_deref_mut() {
                for &j in active.iter() {
                    c[j] += s[j].to_f64();
                }
            }
            let out = t * n..(t + 1) * n;
            if let Some(sp) = spikes.as_deref_mut() {
                sp[out.clone()].copy_from_slice(&s[..n]);
            }
            if let Some([ti, ts, ta, tv]) = traces.as_mut() {
                ti[out.clone()].copy_from_slice(&imem[..n]);
                ts[out.clone()].copy_from_slice(&isyn[..n]);
                ta[out.clone()].copy_from_slice(&iahp[..n]);
                tv[out].copy_from_slice(&vmem[..n]);
            }
            if let Some((tp, every)) = tape.as_mut()
                && (t + 1) % *every == 0
            {
                let entry = (t + 1) / *every;
                let len = TAPE_FIELDS * isyn.len();
                let dst = &mut tp[entry * len..(entry + 1) * len];
                record_state(dst, [isyn, iahp, imem, vmem, timer, s]);
                // The reverse pass reads the step's drive instead of recomputing it.
                self.record_drive(dst, rec, x);
            }
        }
    }
}

/// Rockpool's spike count `ceil(ln(ratio))` for a ratio imem/Ispkthr above 2.5: rare, so kept out of
/// line (inlined, the compiler computes it for every spike and selects).
#[cold]
#[inline(never)]
fn count_above<T: Real>(ratio: T) -> T {
    ratio.kernel_ln().kernel_ceil()
}

impl<T: Real> Simulator<T> {
    /// Sets `rec` and `x` (padded) to step `t`'s recurrent drive (`sum_i s_i w_rec[i][..]` over the
    /// neurons in `active`, those that spiked) and external drive (given, or input spikes times
    /// `w_in`, event by event): what the forward kernel and the reverse pass's recomputation both
    /// form, in the same order.
    #[inline(always)]
    pub(crate) fn form_drive(
        &self,
        rec: &mut [T],
        x: &mut [T],
        active: &[usize],
        s: &[T],
        drive: Drive<'_, T>,
        t: usize,
    ) {
        let n = self.n;
        rec[..n].fill(T::ZERO);
        if self.rec_nonzero {
            recurrent_drive(&mut rec[..n], active, s, &self.w_rec);
        }
        external_drive(x, drive, t, n, self.w_in_pad.as_deref());
    }

    /// Writes the step's drive `(rec + x) Iscale`, formed as `step_body` forms it (so the same bits),
    /// as field 6 of the tape entry `entry`.
    #[inline(always)]
    pub(crate) fn record_drive(&self, entry: &mut [T], rec: &[T], x: &[T]) {
        let np = rec.len();
        for ((d, &r), &xv) in entry[6 * np..7 * np].iter_mut().zip(rec).zip(x) {
            *d = (r + xv) * self.i_scale;
        }
    }
}

/// Writes the padded state (isyn, iahp, imem, vmem, timer_ref, spikes) as the first six fields of the
/// tape entry `entry`.
#[inline(always)]
pub(crate) fn record_state<T: Real>(entry: &mut [T], state: [&[T]; 6]) {
    let np = state[0].len();
    for (k, v) in state.into_iter().enumerate() {
        copy_lanes(&mut entry[k * np..(k + 1) * np], v);
    }
}

/// Adds `s_i w_rec[i][..]` to `rec` (one row of `rec.len()` values per neuron) for every neuron `i` in
/// `active`, in that order: the recurrent drive, shared by the forward kernel and the reverse pass's
/// recomputation so both sum in the same order.
#[inline(always)]
pub(crate) fn recurrent_drive<T: Real>(rec: &mut [T], active: &[usize], s: &[T], w_rec: &[T]) {
    // A count of 1 (nearly every spike) multiplies exactly, so its row is added without the product:
    // the same bits, one operation per value instead of two.
    add_rows_unit(
        rec,
        active,
        |i| s[i],
        w_rec,
        |acc, w, si| acc + si * w,
        |si| si == T::ONE,
        |acc, w| acc + w,
    );
}

/// Sets `x` (padded) to the external drive of step `t`: the given currents, or the input spikes of
/// the step times the padded `w_in` (rows of `x.len()` values), summed over the events in channel
/// order (the padding lanes stay 0).
#[inline(always)]
pub(crate) fn external_drive<T: Real>(
    x: &mut [T],
    drive: Drive<'_, T>,
    t: usize,
    n: usize,
    w_in_pad: Option<&[T]>,
) {
    let np = x.len() / LANES * LANES;
    let x = &mut x[..np];
    match drive {
        Drive::Weighted(xs) => x[..n].copy_from_slice(&xs[t * n..(t + 1) * n]),
        Drive::Events(ev) => {
            x.fill(T::ZERO);
            let w_in = w_in_pad.expect("input events come with input weights");
            ev.for_each(t, |k, v| {
                let row = x.iter_mut().zip(&w_in[k * np..(k + 1) * np]);
                // A single input spike multiplies exactly: its row is added without the product.
                if v == T::ONE {
                    row.for_each(|(xj, &w)| *xj = *xj + w);
                } else {
                    row.for_each(|(xj, &w)| *xj = *xj + v * w);
                }
            });
        }
    }
}

/// One time step of every neuron of one batch element.
///
/// `rec` and `x` are the recurrent and the external drive, `consts` the per-neuron constants of
/// [`Consts::coefficient_inputs`] and `t_ref` the refractory periods. The state slices are updated in
/// place.
///
/// This is a free function whose state slices are separate parameters on purpose: the compiler then
/// knows they do not alias each other, and with selects instead of branches (and the branch-free
/// [`Real::kernel_ln`]/[`Real::kernel_exp`]) the whole neuron loop vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_body<T: Real>(
    rec: &[T],
    x: &[T],
    consts: [&[T]; 19],
    t_ref: &[T],
    dt: T,
    i_scale: T,
    smooth: Option<T>,
    s_isyn: &mut [T],
    s_iahp: &mut [T],
    s_imem: &mut [T],
    s_vmem: &mut [T],
    s_timer: &mut [T],
    s_s: &mut [T],
    ffb: &mut [T],
) {
    // Every array is padded to a multiple of LANES; saying so lets the compiler run whole vectors.
    let n = s_s.len() / LANES * LANES;
    let (rec, x) = (&rec[..n], &x[..n]);
    let_cut!(n; [
        io,
        idc,
        f_dis_syn,
        f_chg_syn,
        gain_syn,
        f_dis_ahp,
        f_chg_ahp,
        gain_ahp,
        iw_ahp,
        kappa_prime,
        ut,
        ut_over_kappa,
        utk_cmem,
        itau_mem,
        igain_mem,
        gain_mem,
        ispkthr,
        _inv_itau_mem,
        _kappa_prime_over_ut,
    ] = consts);
    let t_ref = &t_ref[..n];
    let_cut!(mut n; s_isyn, s_iahp, s_imem, s_vmem, s_timer, ffb);
    // The update runs in three passes over the neurons rather than one. Each pass is a short chain of
    // operations per neuron, so the processor overlaps many neurons; in one long loop the chain
    // exp -> divisions -> ln of a single neuron left it waiting on latencies.
    //
    // Pass 1: the positive-feedback factor from the previous step's vmem, into `ffb` (the caller's
    // scratch, or the tape, whose reverse pass then need not recompute it). Quirk: after a spike that
    // vmem is the pre-reset voltage.
    for j in 0..n {
        ffb[j] = (kappa_prime[j] * (s_vmem[j] / ut[j])).kernel_exp();
    }
    // Pass 2: synapse, adaptation and the membrane's Euler step (before threshold and reset).
    for j in 0..n {
        let io = io[j];
        let iws = (rec[j] + x[j]) * i_scale;
        // Quirk (Rockpool): the target is floored at Io after the sign of the drive is formed,
        // so a net negative drive acts like no drive: inhibition has no effect.
        let isyn_inf = clip_lo(gain_syn[j] * iws, io);
        // Quirk: no floor on isyn; it decays below Io towards ~5e-15 A without input.
        let isyn = f_dis_syn[j] * s_isyn[j] + f_chg_syn[j] * isyn_inf;
        // The AHP target uses the spike count of the previous step (a count, not a bit).
        let iahp_inf = gain_ahp[j] * (iw_ahp[j] * s_s[j]);
        let iahp = clip_lo(f_dis_ahp[j] * s_iahp[j] + f_chg_ahp[j] * iahp_inf, io);
        let f_fb = ffb[j];
        let ileak = itau_mem[j] + iahp;
        // Quirk: the refractory gate is the float test `timer_ref == 0`, and the floor at Io
        // comes after the leak is subtracted (so a refractory neuron gets Io, not 0).
        let gate = if s_timer[j] == T::ZERO {
            T::ONE
        } else {
            T::ZERO
        };
        let iin = clip_lo((isyn - ileak + idc[j]) * gate, io);
        // Quirk: the leak is subtracted a second time here.
        let imem_inf = gain_mem[j] * (iin - ileak);
        let imem = s_imem[j];
        let f_imem = ((io * f_fb) / ileak) * (imem + igain_mem[j]);
        // Quirk: tau_mem uses Ileak (which includes the AHP), not Itau_mem.
        let tau_mem = utk_cmem[j] / ileak;
        let dimem = (imem / (tau_mem * (imem + igain_mem[j])))
            * (imem_inf + f_imem - imem * (T::ONE + iahp / itau_mem[j]));
        s_imem[j] = clip_lo(imem + dimem * dt, io);
        s_isyn[j] = isyn;
        s_iahp[j] = iahp;
    }
    // Pass 3: voltage readout, threshold, reset and refractory timer.
    if let Some(beta) = smooth {
        // The smooth spike of `SpikeFunction::Smooth` (tests only): s = 1 / (1 + (Ispkthr/imem)^beta),
        // also the reset fraction.
        for j in 0..n {
            let io = io[j];
            let imem = s_imem[j];
            s_vmem[j] = ut_over_kappa[j] * (imem / io).kernel_ln();
            let s = T::ONE / (T::ONE + (beta * (ispkthr[j] / imem).ln()).exp());
            let nb = T::ONE - s;
            s_imem[j] = nb * imem + s * io;
            s_timer[j] = nb * clip_lo(s_timer[j] - dt, T::ZERO) + s * t_ref[j];
            s_s[j] = s;
        }
        return;
    }
    for j in 0..n {
        let io = io[j];
        let imem = s_imem[j];
        // Quirk: vmem is read out before the reset.
        s_vmem[j] = ut_over_kappa[j] * (imem / io).kernel_ln();
        // Spike count max(ceil(ln(imem/Ispkthr)), 0) is 0 whenever the ratio is <= 1 and at least 1
        // otherwise, so the reset bit b = min(s, 1) needs only the comparison. The count itself (a
        // Rockpool quirk: it can exceed 1) is computed by the caller for the few neurons above
        // threshold, from the ratio kept in `s_s`.
        let ratio = imem / ispkthr[j];
        let b = if ratio > T::ONE { T::ONE } else { T::ZERO };
        let nb = T::ONE - b;
        // Written as Rockpool writes them, so that non-finite corner cases propagate alike.
        s_imem[j] = nb * imem + b * io;
        s_timer[j] = nb * clip_lo(s_timer[j] - dt, T::ZERO) + b * t_ref[j];
        s_s[j] = ratio;
    }
}

isa_kernel!(run_steps_kernel => run_steps_body(
    scratch: &mut Scratch<T>,
    drive: Drive<'_, T>,
    steps: usize,
    spikes: Option<&mut [T]>,
    traces: Option<[&mut [T]; 4]>,
    tape: Option<(&mut [T], usize)>,
    feedback: Option<&mut [T]>,
    counts: Option<&mut [f64]>,
));

/// Per-thread buffers of one run, allocated once.
pub(crate) struct Scratch<T> {
    pub(crate) rec: Aligned<T>,
    pub(crate) x: Aligned<T>,
    pub(crate) active: Vec<usize>,
    /// isyn, iahp, imem, vmem, timer_ref, spikes, padded to a multiple of [`LANES`]; the state during a
    /// run, and the layout of one tape entry.
    pub(crate) state: [Aligned<T>; 6],
    /// The step's positive-feedback factors, when no tape records them.
    pub(crate) ffb: Aligned<T>,
}

impl<T: Real> Scratch<T> {
    /// Copies a batch element's state into the padded state; the padding lanes start at rest.
    fn load(&mut self, job: &Job<'_, T>, io: &[T]) {
        let n = job.isyn.len();
        let [isyn, iahp, imem, vmem, timer, s] = &mut self.state;
        for (pad, src) in [
            (&mut *isyn, &*job.isyn),
            (&mut *iahp, &*job.iahp),
            (&mut *imem, &*job.imem),
        ] {
            pad[..n].copy_from_slice(src);
            pad[n..].copy_from_slice(&io[n..]);
        }
        for (pad, src) in [
            (&mut *vmem, &*job.vmem),
            (&mut *timer, &*job.timer),
            (&mut *s, &*job.s),
        ] {
            pad[..n].copy_from_slice(src);
            pad[n..].fill(T::ZERO);
        }
    }

    /// Copies the padded state back into a batch element's state.
    fn store(&self, job: &mut Job<'_, T>) {
        let n = job.isyn.len();
        for (dst, src) in [
            (&mut *job.isyn, &self.state[0]),
            (&mut *job.iahp, &self.state[1]),
            (&mut *job.imem, &self.state[2]),
            (&mut *job.vmem, &self.state[3]),
            (&mut *job.timer, &self.state[4]),
            (&mut *job.s, &self.state[5]),
        ] {
            dst.copy_from_slice(&src[..n]);
        }
    }

    /// Writes the padded state as tape entry `entry` (its drive field is left as it was: the drive of
    /// the step that led to a checkpoint is never read).
    pub(crate) fn record(&self, tape: &mut [T], entry: usize) {
        let len = TAPE_FIELDS * self.state[0].len();
        record_state(
            &mut tape[entry * len..(entry + 1) * len],
            self.state.each_ref().map(|v| &v[..]),
        );
    }

    /// Sets the padded state from tape entry `entry`.
    pub(crate) fn restore(&mut self, tape: &[T], entry: usize) {
        let len = TAPE_FIELDS * self.state[0].len();
        let src = &tape[entry * len..(entry + 1) * len];
        for (k, v) in self.state.iter_mut().enumerate() {
            let m = v.len();
            v.copy_from_slice(&src[k * m..(k + 1) * m]);
        }
    }

    pub(crate) fn new(n: usize) -> Self {
        let padded = n.div_ceil(LANES) * LANES;
        Scratch {
            rec: Aligned::filled(padded, T::ZERO),
            x: Aligned::filled(padded, T::ZERO),
            active: Vec::with_capacity(n),
            state: std::array::from_fn(|_| Aligned::filled(padded, T::ZERO)),
            ffb: Aligned::filled(padded, T::ZERO),
        }
    }
}

/// `dst = src` (equal lengths, a multiple of [`LANES`]) in whole vectors written inline: the kernels
/// copy a few vectors per step, for which a call to `memcpy` costs more than the copy.
#[inline(always)]
pub(crate) fn copy_lanes<T: Real>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.chunks_exact_mut(LANES).zip(src.chunks_exact(LANES)) {
        let d: &mut [T; LANES] = d.try_into().expect("LANES values");
        let s: &[T; LANES] = s.try_into().expect("LANES values");
        *d = *s;
    }
}

/// Values per neuron in one tape entry: the padded state `isyn, iahp, imem, vmem, timer_ref, s` after a
/// step, and the drive `(rec + x) Iscale` of that step.
pub(crate) const TAPE_FIELDS: usize = 7;

/// The neuron loop runs in whole vectors of this many neurons: every per-neuron array inside the
/// kernel is padded to a multiple of it with copies of neuron 0 (valid parameters, zero drive), whose
/// results are never read. 16 is the `f32` width of AVX-512 (two AVX2 vectors, four SSE ones).
pub(crate) const LANES: usize = 16;
// The spike scan keeps one bit per lane in a `u32`.
const _: () = assert!(LANES <= 32);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Matrix;
    use crate::run::add_rows;
    use proptest::prelude::*;

    /// A small recurrent network with a deterministic, irregular input.
    fn small_net(n: usize, n_in: usize) -> (Network, Vec<f64>) {
        let mut net = Network::with_defaults(n);
        let w = |i: usize, j: usize, k: usize| {
            ((i * 31 + j * 17 + k * 7) % 23) as f64 / 23.0 * 4.0 - 1.0
        };
        net.w_in = Some(
            Matrix::from_vec(n_in, n, (0..n_in * n).map(|x| w(x, 1, 3) * 3.0).collect()).unwrap(),
        );
        net.w_rec = Matrix::from_vec(n, n, (0..n * n).map(|x| w(x, 5, 2)).collect()).unwrap();
        for j in 0..n {
            net.params.i_dc[j] = 1e-11 * (1 + j % 3) as f64;
        }
        let input = (0..3 * 400 * n_in)
            .map(|x| f64::from(u8::from((x * 2654435761) % 97 < 9)))
            .collect();
        (net, input)
    }

    fn run<T: Real>(
        net: &Network,
        input: &[f64],
        batch: usize,
        steps: usize,
        threads: usize,
    ) -> Trace<T> {
        let data: Vec<T> = input.iter().map(|&x| T::from_f64(x)).collect();
        Simulator::<T>::new(net)
            .unwrap()
            .run(
                Input::Spikes {
                    data: &data,
                    batch,
                    steps,
                },
                None,
                &RunOptions {
                    recording: Recording::Full,
                    threads,
                },
            )
            .unwrap()
    }

    /// A simulator whose weights were replaced is the simulator of the network with those weights, bit
    /// for bit; bad weights are refused with the matrix named.
    #[test]
    fn replaced_weights_give_the_new_networks_simulator() {
        let (net, input) = small_net(6, 5);
        let (mut other, _) = small_net(6, 5);
        let w_in = other.w_in.as_mut().unwrap();
        for (k, w) in w_in.as_mut_slice().iter_mut().enumerate() {
            *w = -0.7 * *w + (k % 5) as f64 * 0.3;
        }
        other.w_rec =
            Matrix::from_vec(6, 6, (0..36).map(|k| (k % 7) as f64 * 0.4 - 1.0).collect()).unwrap();
        let mut sim = Simulator::<f32>::new(&net).unwrap();
        sim.set_weights(other.w_in.as_ref(), &other.w_rec).unwrap();
        let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
        let run = |s: &Simulator<f32>| {
            s.run(
                Input::Spikes {
                    data: &data,
                    batch: 3,
                    steps: 400,
                },
                None,
                &RunOptions {
                    recording: Recording::Full,
                    threads: 1,
                },
            )
            .unwrap()
        };
        let fresh = run(&Simulator::<f32>::new(&other).unwrap());
        let replaced = run(&sim);
        assert_eq!(fresh, replaced);
        assert_ne!(
            fresh.spikes,
            run(&Simulator::<f32>::new(&net).unwrap()).spikes
        );
        let mut bad = other.w_rec.clone();
        bad.as_mut_slice()[7] = f64::NAN;
        assert!(matches!(
            sim.set_weights(other.w_in.as_ref(), &bad),
            Err(Error::NonFiniteWeight {
                matrix: WeightMatrix::Recurrent,
                ..
            })
        ));
        assert!(matches!(
            sim.set_weights(other.w_in.as_ref(), &Matrix::zeros(6, 5)),
            Err(Error::WeightShape {
                matrix: WeightMatrix::Recurrent,
                ..
            })
        ));
        assert_eq!(
            sim.set_weights(None, &other.w_rec),
            Err(Error::NoInputWeights)
        );
    }

    /// A run into an earlier trace's memory (of another input, larger or smaller) gives the bits of a
    /// fresh run: every reused value is overwritten.
    #[test]
    fn a_run_into_reused_memory_gives_the_same_bits() {
        let (net, input) = small_net(5, 4);
        let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
        let sim = Simulator::<f32>::new(&net).unwrap();
        let opts = RunOptions::default();
        let x = |batch: usize, steps: usize| Input::Spikes {
            data: &data[..batch * steps * 4],
            batch,
            steps,
        };
        let fresh = sim.run(x(2, 300), None, &opts).unwrap();
        assert!(fresh.spikes.iter().any(|&s| s != 0.0));
        for (b, t) in [(3, 400), (1, 50), (2, 300)] {
            let mut other = sim.run(x(b, t), None, &opts).unwrap();
            other.spikes.iter_mut().for_each(|s| *s = 7.0);
            let reused = sim
                .run_reusing(x(2, 300), None, &opts, Some(other))
                .unwrap();
            assert_eq!(reused.spikes, fresh.spikes, "reusing {b} x {t}");
            assert_eq!(reused.final_state, fresh.final_state);
        }
    }

    #[test]
    fn the_final_state_continues_a_run_exactly() {
        let (net, input) = small_net(6, 5);
        let whole = run::<f32>(&net, &input, 3, 400, 1);
        let sim = Simulator::<f32>::new(&net).unwrap();
        let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
        // Split the [3, 400, 5] input into two halves of 200 steps, per batch element.
        let half = |h: usize| -> Vec<f32> {
            (0..3)
                .flat_map(|b| data[(b * 400 + h * 200) * 5..][..200 * 5].to_vec())
                .collect()
        };
        let (a, b) = (half(0), half(1));
        let opts = RunOptions {
            recording: Recording::Spikes,
            threads: 1,
        };
        let first = sim
            .run(
                Input::Spikes {
                    data: &a,
                    batch: 3,
                    steps: 200,
                },
                None,
                &opts,
            )
            .unwrap();
        let second = sim
            .run(
                Input::Spikes {
                    data: &b,
                    batch: 3,
                    steps: 200,
                },
                Some(&first.final_state),
                &opts,
            )
            .unwrap();
        assert_eq!(second.final_state, whole.final_state);
        for bi in 0..3 {
            let w = &whole.spikes[bi * 400 * 6..][..400 * 6];
            assert_eq!(&first.spikes[bi * 200 * 6..][..200 * 6], &w[..200 * 6]);
            assert_eq!(&second.spikes[bi * 200 * 6..][..200 * 6], &w[200 * 6..]);
        }
        assert!(
            whole.spikes.iter().sum::<f32>() > 10.0,
            "the test network should spike"
        );
    }

    /// A dense input's values are checked by the threads as they convert their elements: the error
    /// still names the first value in the raster that is not finite (NaN or an infinity, in any
    /// element, the first or a later one), whatever the threads, and a plain run, a taped run and a
    /// gradient agree.
    #[test]
    fn the_first_non_finite_input_is_named_whatever_the_threads() {
        let (net, input) = small_net(7, 5);
        let sim = Simulator::<f64>::new(&net).unwrap();
        let (batch, steps, channels) = (3, 400, 5);
        let at = |b: usize, t: usize, c: usize| (b * steps + t) * channels + c;
        for (bad, first) in [
            (vec![at(2, 399, 4)], (2, 399, 4)),
            (vec![at(1, 7, 2), at(2, 3, 0)], (1, 7, 2)),
            (vec![at(2, 0, 0), at(0, 250, 3), at(0, 251, 1)], (0, 250, 3)),
        ] {
            for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut data = input.clone();
                for &i in &bad {
                    data[i] = value;
                }
                let want = Error::NonFiniteInput {
                    batch: first.0,
                    step: first.1,
                    channel: first.2,
                };
                let x = Input::Spikes {
                    data: &data,
                    batch,
                    steps,
                };
                for threads in [1, 2, 3] {
                    let opts = RunOptions {
                        recording: Recording::Spikes,
                        threads,
                    };
                    assert_eq!(
                        sim.run(x, None, &opts).unwrap_err(),
                        want,
                        "threads {threads}"
                    );
                    assert_eq!(
                        sim.run_taped(x, None, &opts, 16).unwrap_err(),
                        want,
                        "taped, threads {threads}"
                    );
                }
                // The gradient checks the raster before it starts, as it did.
                let good = Input::Spikes {
                    data: &input,
                    batch,
                    steps,
                };
                let opts = RunOptions::default();
                let (_, tape) = sim.run_taped(good, None, &opts, 16).unwrap();
                let g = vec![1.0; batch * steps * net.neurons()];
                let outs = crate::OutputGradients {
                    spikes: Some(&g),
                    ..Default::default()
                };
                assert_eq!(
                    sim.gradient(&tape, x, &outs, &crate::GradientOptions::default())
                        .unwrap_err(),
                    want
                );
            }
        }
    }

    #[test]
    fn results_are_bit_identical_whatever_the_thread_count() {
        let (net, input) = small_net(7, 5);
        let one = run::<f32>(&net, &input, 3, 400, 1);
        for threads in [2, 3, 8] {
            assert_eq!(run::<f32>(&net, &input, 3, 400, threads), one);
        }
        let one = run::<f64>(&net, &input, 3, 400, 1);
        assert_eq!(run::<f64>(&net, &input, 3, 400, 2), one);
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (net, input) = small_net(13, 5);
        let data: Vec<f32> = input.iter().map(|&x| x as f32).collect();
        let mut sim = Simulator::<f32>::new(&net).unwrap();
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        let run = |sim: &Simulator<f32>| {
            sim.run(
                Input::Spikes {
                    data: &data,
                    batch: 3,
                    steps: 400,
                },
                None,
                &opts,
            )
            .unwrap()
        };
        sim.isa = Isa::Baseline;
        let baseline = run(&sim);
        assert!(baseline.spikes.iter().sum::<f32>() > 10.0);
        for isa in Isa::available() {
            sim.isa = isa;
            assert_eq!(run(&sim), baseline, "{isa:?}");
        }
    }

    #[test]
    fn negative_drive_has_no_effect_in_the_rockpool_variant() {
        // model.md 1.6: a neuron with Idc = 1e-9 fires 7 spikes in 200 steps with or without an input
        // of -50 every other step.
        let mut net = Network::with_defaults(1);
        net.params.i_dc[0] = 1e-9;
        let sim = Simulator::<f32>::new(&net).unwrap();
        let zero = vec![0f32; 200];
        let neg: Vec<f32> = (0..200)
            .map(|t| if t % 2 == 0 { -50.0 } else { 0.0 })
            .collect();
        let opts = RunOptions {
            recording: Recording::Full,
            threads: 1,
        };
        let a = sim
            .run(
                Input::Weighted {
                    data: &zero,
                    batch: 1,
                    steps: 200,
                },
                None,
                &opts,
            )
            .unwrap();
        let b = sim
            .run(
                Input::Weighted {
                    data: &neg,
                    batch: 1,
                    steps: 200,
                },
                None,
                &opts,
            )
            .unwrap();
        assert_eq!(a.spikes.iter().sum::<f32>(), 7.0);
        assert_eq!(a, b);
    }

    #[test]
    fn refractory_steps_are_the_ceiling_of_t_ref_over_dt() {
        // t_ref = Vth C_ref / Iref = 3.5 ms at dt = 1 ms: 4 blocked steps after each spike.
        let mut net = Network::with_defaults(1);
        net.params.i_dc[0] = 5e-9;
        net.params.i_ref[0] = 0.7 * 1.5e-12 / 3.5e-3;
        let sim = Simulator::<f32>::new(&net).unwrap();
        let opts = RunOptions::default();
        let mut state = sim.initial_state(1);
        let mut blocked_after_spike = Vec::new();
        let mut counting = None;
        for _ in 0..300 {
            let step = sim
                .run(
                    Input::Weighted {
                        data: &[0.0],
                        batch: 1,
                        steps: 1,
                    },
                    Some(&state),
                    &opts,
                )
                .unwrap();
            state = step.final_state;
            if state.spikes[0] > 0.0 {
                if let Some(c) = counting.take() {
                    blocked_after_spike.push(c);
                }
                counting = Some(0);
            } else if let Some(c) = counting.as_mut() {
                if state.timer_ref[0] == 0.0 {
                    // The gate opens at the next step: the blocked steps were those before.
                    blocked_after_spike.push(*c + 1);
                    counting = None;
                } else {
                    *c += 1;
                }
            }
        }
        assert!(blocked_after_spike.len() > 3, "{blocked_after_spike:?}");
        assert!(
            blocked_after_spike.iter().all(|&c| c == 4),
            "{blocked_after_spike:?}"
        );
    }

    #[test]
    fn strong_drive_gives_spike_counts_above_one() {
        // model.md 1.8: Idc = 1e-5 A gives counts of 4.
        let mut net = Network::with_defaults(1);
        net.params.i_dc[0] = 1e-5;
        let sim = Simulator::<f32>::new(&net).unwrap();
        let empty = sim.run(
            Input::Weighted {
                data: &[],
                batch: 0,
                steps: 0,
            },
            None,
            &RunOptions::default(),
        );
        assert!(empty.unwrap().spikes.is_empty());
        let z = vec![0f32; 50];
        let tr = sim
            .run(
                Input::Weighted {
                    data: &z,
                    batch: 1,
                    steps: 50,
                },
                None,
                &RunOptions::default(),
            )
            .unwrap();
        assert_eq!(tr.spikes.iter().copied().fold(0.0, f32::max), 4.0);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let (net, input) = small_net(4, 3);
        let sim = Simulator::<f64>::new(&net).unwrap();
        let opts = RunOptions::default();
        let e = sim
            .run(
                Input::Spikes {
                    data: &input[..10],
                    batch: 1,
                    steps: 4,
                },
                None,
                &opts,
            )
            .unwrap_err();
        assert_eq!(
            e,
            Error::InputShape {
                batch: 1,
                steps: 4,
                channels: 3,
                found_len: 10
            }
        );
        let mut bad = input[..12].to_vec();
        bad[7] = f64::NAN;
        let e = sim
            .run(
                Input::Spikes {
                    data: &bad,
                    batch: 1,
                    steps: 4,
                },
                None,
                &opts,
            )
            .unwrap_err();
        assert_eq!(
            e,
            Error::NonFiniteInput {
                batch: 0,
                step: 2,
                channel: 1
            }
        );
        let state = sim.initial_state(2);
        let e = sim
            .run(
                Input::Spikes {
                    data: &input[..12],
                    batch: 1,
                    steps: 4,
                },
                Some(&state),
                &opts,
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::StateShape {
                    batch: 1,
                    found_batch: 2,
                    ..
                }
            ),
            "{e}"
        );
        let ff = Simulator::<f64>::new(&Network::with_defaults(3)).unwrap();
        let e = ff
            .run(
                Input::Spikes {
                    data: &[0.0; 3],
                    batch: 1,
                    steps: 1,
                },
                None,
                &opts,
            )
            .unwrap_err();
        assert_eq!(e, Error::NoInputWeights);
        let mut degenerate = Network::with_defaults(2);
        degenerate.params.i_pulse[1] = 0.0;
        degenerate.params.c_pulse[1] = 0.0;
        assert!(matches!(
            Simulator::<f32>::new(&degenerate),
            Err(Error::Degenerate { neuron: 1, .. })
        ));
    }

    /// The spike counts `spike_counts` writes, for one chunk of ratios imem/Ispkthr.
    fn counts<T: Real>(ratios: &[f64]) -> (Vec<T>, Vec<usize>) {
        let sim = Simulator::<T>::new(&Network::with_defaults(ratios.len())).unwrap();
        let mut s: Vec<T> = ratios.iter().map(|&r| T::from_f64(r)).collect();
        s.resize(ratios.len().div_ceil(LANES) * LANES, T::ZERO);
        let mut active = Vec::new();
        sim.spike_counts(&mut s, ratios.len(), &mut active);
        s.truncate(ratios.len());
        (s, active)
    }

    proptest! {
        #[test]
        fn spike_counts_are_the_ceiling_of_the_log_ratio(
            ratios in prop::collection::vec(
                prop_oneof![
                    0.0f64..1.0,
                    1.0f64..1.000_01,
                    1.0f64..3.0,
                    2.4f64..2.8,
                    (std::f64::consts::E - 1e-4)..(std::f64::consts::E + 1e-4),
                    1.0f64..1e4,
                    Just(1.0),
                    Just(std::f64::consts::E),
                    Just(2.5),
                ],
                1..40,
            ),
        ) {
            // The reference: Rockpool's max(ceil(ln(imem/Ispkthr)), 0), with the kernel's logarithm.
            fn expected<T: Real>(r: f64) -> T {
                let r = T::from_f64(r);
                if r > T::ONE { r.kernel_ln().kernel_ceil() } else { T::ZERO }
            }
            let (got, active) = counts::<f32>(&ratios);
            for (k, &r) in ratios.iter().enumerate() {
                prop_assert_eq!(got[k].to_bits(), expected::<f32>(r).to_bits(), "f32 ratio {}", r);
            }
            let spiking: Vec<usize> = (0..ratios.len()).filter(|&k| got[k] != 0.0).collect();
            prop_assert_eq!(active, spiking);
            let (got, _) = counts::<f64>(&ratios);
            for (k, &r) in ratios.iter().enumerate() {
                prop_assert_eq!(got[k].to_bits(), expected::<f64>(r).to_bits(), "f64 ratio {}", r);
            }
        }
    }

    proptest! {
        /// The recurrent drive adds a count-1 row without the product: the bits of `acc + s w`, for
        /// every width (the register blocks and the rest) and counts of 1 and more.
        #[test]
        fn unit_rows_give_the_bits_of_the_product(
            n in 1usize..200,
            picks in prop::collection::vec((0usize..200, 0usize..4), 0..12),
            seed in 0u64..1000,
        ) {
            let weight = |k: usize| {
                let h = (k as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                (h as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            };
            let w: Vec<f32> = (0..n * n).map(weight).collect();
            let mut s = vec![0.0f32; n];
            let mut active = Vec::new();
            for &(i, c) in &picks {
                let i = i % n;
                if s[i] == 0.0 {
                    // Counts of 1 (most), 2, 3 and 1 again.
                    s[i] = [1.0, 2.0, 3.0, 1.0][c];
                    active.push(i);
                }
            }
            let start: Vec<f32> = (0..n).map(|k| weight(k + n * n)).collect();
            let mut fast = start.clone();
            recurrent_drive(&mut fast, &active, &s, &w);
            let mut plain = start;
            add_rows(&mut plain, &active, |i| s[i], &w, |acc, w, si| acc + si * w);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&fast), bits(&plain));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn states_stay_in_their_physical_ranges(
            scale in prop::collection::vec(0.3f64..3.0, 6),
            w_scale in 0.0f64..40.0,
            idc in 0.0f64..2e-9,
        ) {
            let (mut net, input) = small_net(4, 5);
            net.params.i_tau_mem.iter_mut().for_each(|x| *x *= scale[0]);
            net.params.i_gain_syn.iter_mut().for_each(|x| *x *= scale[1]);
            net.params.i_w_ahp.iter_mut().for_each(|x| *x *= scale[2] * 1e4);
            net.params.i_gain_ahp.iter_mut().for_each(|x| *x *= scale[3] * 10.0);
            net.params.i_spkthr.iter_mut().for_each(|x| *x *= scale[4]);
            net.params.i_ref.iter_mut().for_each(|x| *x *= scale[5]);
            net.params.i_dc.iter_mut().for_each(|x| *x = idc);
            net.w_rec.as_mut_slice().iter_mut().for_each(|w| *w *= w_scale / 4.0);
            if let Some(w) = net.w_in.as_mut() { w.as_mut_slice().iter_mut().for_each(|w| *w *= w_scale); }
            let t = run::<f32>(&net, &input[..2 * 400 * 5], 2, 400, 1);
            let st = t.states.unwrap();
            let io = 5e-13f32;
            prop_assert!(st.imem.iter().all(|&x| x >= io));
            prop_assert!(st.iahp.iter().all(|&x| x >= io));
            prop_assert!(st.isyn.iter().all(|&x| x > 0.0));
            prop_assert!(st.vmem.iter().all(|&x| x >= 0.0 && x.is_finite()));
            prop_assert!(t.spikes.iter().all(|&s| s >= 0.0 && s.fract() == 0.0));
        }
    }
}
