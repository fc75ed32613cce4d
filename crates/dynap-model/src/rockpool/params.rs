//! The `rockpool` variant's per-run constants: the per-neuron values its kernels read, derived once
//! from the parameters with Rockpool's expressions, and the vector width they are padded to.

use crate::aligned::Aligned;
use crate::error::Error;
use crate::param::NeuronParams;
use crate::real::Real;
use crate::run::clip_lo;

/// Per-neuron constants, computed once per run in the working precision with Rockpool's expressions
/// (model.md section 1.4), stored as one vector per constant.
#[derive(Clone, Debug)]
pub(super) struct Consts<T> {
    pub(super) io: Aligned<T>,
    pub(super) idc: Aligned<T>,
    pub(super) f_dis_syn: Aligned<T>,
    pub(super) f_chg_syn: Aligned<T>,
    pub(super) gain_syn: Aligned<T>,
    pub(super) f_dis_ahp: Aligned<T>,
    pub(super) f_chg_ahp: Aligned<T>,
    pub(super) gain_ahp: Aligned<T>,
    pub(super) iw_ahp: Aligned<T>,
    pub(super) kappa_prime: Aligned<T>,
    pub(super) ut: Aligned<T>,
    pub(super) ut_over_kappa: Aligned<T>,
    /// `(Ut/kappa) * C_mem`: the numerator of `tau(Ileak, C_mem)`.
    pub(super) utk_cmem: Aligned<T>,
    pub(super) itau_mem: Aligned<T>,
    pub(super) igain_mem: Aligned<T>,
    pub(super) gain_mem: Aligned<T>,
    pub(super) ispkthr: Aligned<T>,
    pub(super) t_ref: Aligned<T>,
    /// `1 / itau_mem` and `kappa' / Ut`: constants the reverse pass would otherwise divide out at
    /// every step (the same operations, so the same bits).
    pub(super) inv_itau_mem: Aligned<T>,
    pub(super) kappa_prime_over_ut: Aligned<T>,
}

impl<T: Real> Consts<T> {
    /// The constants of neurons with parameters `p` at time step `dt` (s), padded to a multiple of
    /// [`LANES`]. Errors name a neuron whose pulse width or refractory period is 0/0.
    pub(super) fn new(p: &NeuronParams, dt: f64) -> Result<Consts<T>, Error> {
        let n = p.len();
        let cv = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (io, kn, kp, ut, vth) = (
            cv(&p.i_o),
            cv(&p.kappa_n),
            cv(&p.kappa_p),
            cv(&p.u_t),
            cv(&p.v_th),
        );
        let dt = T::from_f64(dt);
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
        Ok(c)
    }

    /// The constants the forward step and the reverse pass's coefficient kernels read, in their
    /// order (the forward step also reads `t_ref`, and not the last two): `io, idc,
    /// f_dis_syn, f_chg_syn, gain_syn, f_dis_ahp, f_chg_ahp, gain_ahp, iw_ahp, kappa_prime, ut,
    /// ut_over_kappa, utk_cmem, itau_mem, igain_mem, gain_mem, ispkthr, 1/itau_mem, kappa'/Ut`.
    #[inline(always)]
    pub(super) fn coefficient_inputs(&self) -> [&[T]; 19] {
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

/// The neuron loop runs in whole vectors of this many neurons: every per-neuron array inside the
/// kernel is padded to a multiple of it with copies of neuron 0 (valid parameters, zero drive), whose
/// results are never read. 16 is the `f32` width of AVX-512 (two AVX2 vectors, four SSE ones).
pub(super) const LANES: usize = 16;
// The spike scan keeps one bit per lane in a `u32`.
const _: () = assert!(LANES <= 32);
