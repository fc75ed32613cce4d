//! The floating-point precisions the simulator runs in (`f32`, as Rockpool does, and `f64`).

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A floating-point type the kernels are generic over.
///
/// Only the operations DynapSim needs are listed, so that the `f32` path performs exactly the
/// operations Rockpool's float32 JAX code performs, in the same order, and nothing is silently
/// widened.
pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// A short name for messages and benchmark tables (`"f32"`, `"f64"`).
    const NAME: &'static str;
    /// Rounds an `f64` to this precision (round to nearest).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// `e^x`, correctly rounded to this precision in all but astronomically rare cases (for `f32`,
    /// computed in `f64` and rounded). Used for the constants computed once per run: Rockpool's
    /// `1 - exp(-t_pulse/tau)` magnifies a 1-ulp error of `exp` by `tau/t_pulse` (500 for the AHP),
    /// enough to move a spike in strong-adaptation runs.
    fn exp(self) -> Self;
    /// Natural logarithm, correctly rounded like [`Real::exp`].
    fn ln(self) -> Self;
    /// Smallest integer not below `self`.
    fn ceil(self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Square root, correctly rounded (IEEE).
    fn sqrt(self) -> Self;
    /// The logarithm used inside the time loop, for arguments `>= 1` (or +inf, NaN): branch-free and
    /// vectorisable for `f32` (within 2 ulp), the standard library's for `f64`.
    fn kernel_ln(self) -> Self;
    /// The exponential used inside the time loop, for arguments `>= -87` (see [`Real::kernel_ln`]).
    fn kernel_exp(self) -> Self;
    /// The ceiling used inside the time loop, exact for `|x| < 2^31`.
    fn kernel_ceil(self) -> Self;
    /// `self * a + b` with one rounding (IEEE fused multiply-add): the same bits on every CPU (an FMA
    /// instruction where the kernel is compiled with FMA, the C library's `fma` elsewhere). Used only by
    /// the reverse pass, whose sums need not follow Rockpool's operation order.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// `max(self, lo)` with `lo` returned on ties, as `jnp.clip(x, lo)` does in value.
    #[inline(always)]
    fn max_with(self, lo: Self) -> Self {
        if self > lo { self } else { lo }
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(f64::from(self)) as f32
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(f64::from(self)) as f32
    }
    #[inline(always)]
    fn ceil(self) -> Self {
        f32::ceil(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn kernel_ln(self) -> Self {
        crate::transcendental::ln_f32_at_least_one(self)
    }
    #[inline(always)]
    fn kernel_exp(self) -> Self {
        crate::transcendental::exp_f32(self)
    }
    #[inline(always)]
    fn kernel_ceil(self) -> Self {
        crate::transcendental::ceil_f32(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn ceil(self) -> Self {
        f64::ceil(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn kernel_ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn kernel_exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn kernel_ceil(self) -> Self {
        f64::ceil(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}
