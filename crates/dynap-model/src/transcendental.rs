//! Branch-free `f32` natural logarithm, exponential and ceiling for the simulation kernels.
//!
//! The per-neuron update calls `ln` twice and `exp` once per step. As calls into the C library they stop
//! the compiler from vectorising the neuron loop, and they dominated the run time (about 40 % in `logf`
//! alone). These versions are written with selects instead of branches so the whole neuron loop
//! vectorises. Rockpool's own numbers come from XLA's polynomial approximations, not from a correctly
//! rounded library either, so neither choice reproduces its bits; both stay within 2 ulp of the exact
//! value (tested below against the standard library over the whole range the kernel uses).
//!
//! The polynomials are the classic minimax ones of Cephes (S. L. Moshier, `logf.c` and `expf.c`, public
//! domain numbers), with the same range reductions.

// The coefficients are written as Cephes publishes them; each rounds to the nearest f32.
#![allow(clippy::excessive_precision)]

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// ln 2 split in two for an exact reduction: `LN2_HI + LN2_LO = ln 2`.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `ln(x)` for positive, normal, finite `x`, within 2 ulp; no special cases.
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1).
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    // Centre the mantissa on 1: m in [sqrt(1/2), sqrt(2)).
    let low = m < SQRT_HALF;
    let e = (if low { e - 1 } else { e }) as f32;
    let f = if low { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    // The degree-8 polynomial by Estrin's scheme: a shallow tree instead of a chain of 9 dependent
    // multiply-adds, so that consecutive neurons overlap in the pipeline.
    let z4 = z * z;
    let p01 = 3.333_333_1e-1 + -2.499_999_4e-1 * f;
    let p23 = 2.000_071_4e-1 + -1.666_805_8e-1 * f;
    let p45 = 1.424_932_3e-1 + -1.242_014_1e-1 * f;
    let p67 = 1.167_699_9e-1 + -1.151_461_0e-1 * f;
    let q0 = p01 + p23 * z;
    let q1 = p45 + p67 * z;
    let mut y = (q0 + q1 * z4) + 7.037_683_6e-2 * (z4 * z4);
    y = y * f * z;
    y += LN2_LO * e;
    y -= 0.5 * z;
    (f + y) + LN2_HI * e
}

/// `ln(x)` for `x >= 1`, `+inf` and NaN (the only arguments the kernel has: `imem/Io` and
/// `imem/Ispkthr` above threshold), within 2 ulp.
#[inline(always)]
pub(crate) fn ln_f32_at_least_one(x: f32) -> f32 {
    let r = ln_normal(x);
    // +inf and NaN are returned as they are (the comparison is false for both).
    if x < f32::INFINITY { r } else { x }
}

/// `ln(x)` for every `f32`, within 2 ulp: negative and NaN give NaN, 0 gives -inf, +inf gives +inf.
#[cfg(test)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    // Subnormals are scaled into the normal range first (by 2^23), and the exponent corrected.
    let subnormal = x < f32::MIN_POSITIVE;
    let r = if subnormal {
        ln_normal(x * 8_388_608.0) - 23.0 * std::f32::consts::LN_2
    } else {
        ln_normal(x)
    };
    let r = if x == f32::INFINITY { f32::INFINITY } else { r };
    let r = if x == 0.0 { f32::NEG_INFINITY } else { r };
    // NaN and negative inputs (the comparison is false for NaN).
    if x >= 0.0 { r } else { f32::NAN }
}

/// `exp(x)` for `x >= -87` (the kernel's argument, `kappa' vmem / Ut`, is never negative), within
/// 2 ulp: overflow gives +inf and NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const MAX: f32 = 88.722_84;
    let xc = if x > MAX { MAX } else { x };
    // n = round(x / ln 2), by floor(x log2(e) + 1/2). Adding 1.5 * 2^23 rounds |v| < 2^22 to an integer
    // in the float's low mantissa bits; reading it from there avoids a float -> int conversion, which
    // compilers do not vectorise well.
    const ROUND: f32 = 12_582_912.0;
    let v = xc * std::f32::consts::LOG2_E + 0.5;
    let nearest = (v + ROUND) - ROUND;
    let nf = if nearest > v { nearest - 1.0 } else { nearest };
    let n = (nf + ROUND).to_bits() as i32 - ROUND.to_bits() as i32;
    let r = (xc - nf * LN2_HI) - nf * LN2_LO;
    let z = r * r;
    // The degree-5 polynomial by Estrin's scheme (see `ln_f32`).
    let p01 = 5.000_000_1e-1 + 1.666_666_5e-1 * r;
    let p23 = 4.166_579_6e-2 + 8.333_452e-3 * r;
    let p45 = 1.398_199_9e-3 + 1.987_569_1e-4 * r;
    let y = (p01 + z * (p23 + z * p45)) * z + r + 1.0;
    // 2^n in two factors, so that n = 128 and subnormal results stay representable.
    let n1 = n / 2;
    let n2 = n - n1;
    let p1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let p2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let out = y * p1 * p2;
    // NaN propagates through the arithmetic above by itself.
    if x > MAX { f32::INFINITY } else { out }
}

/// `x.ceil()` for `|x| < 2^31` (and NaN to 0), branch-free.
#[inline(always)]
pub(crate) fn ceil_f32(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t < x { t + 1.0 } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64)
            .unsigned_abs()
            .min(u32::MAX as u64) as u32
    }

    #[test]
    fn the_kernel_ln_is_within_two_ulp_from_one_up() {
        let mut worst = 0;
        let mut bits = 1.0f32.to_bits();
        while bits < f32::INFINITY.to_bits() {
            let x = f32::from_bits(bits);
            worst = worst.max(ulps(ln_f32_at_least_one(x), (f64::from(x)).ln() as f32));
            bits += 31;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(ln_f32_at_least_one(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32_at_least_one(f32::NAN).is_nan());
    }

    #[test]
    fn ln_is_within_two_ulp_everywhere() {
        let mut worst = 0;
        // Every 97th float from the smallest subnormal to the largest finite value.
        let mut bits = 1u32;
        while bits < f32::INFINITY.to_bits() {
            let x = f32::from_bits(bits);
            let exact = (f64::from(x)).ln() as f32;
            worst = worst.max(ulps(ln_f32(x), exact));
            bits += 97;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_normal_range() {
        let mut worst = 0;
        let mut x = -86.0f32;
        while x < 88.7 {
            let exact = (f64::from(x)).exp() as f32;
            worst = worst.max(ulps(exp_f32(x), exact));
            x += 0.000_37;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn ceil_matches_the_standard_library() {
        for x in [
            -3.5f32,
            -3.0,
            -0.2,
            -0.0,
            0.0,
            0.2,
            1.0,
            1.000_000_1,
            2.5,
            87.9,
            1e6,
        ] {
            assert_eq!(ceil_f32(x), x.ceil(), "{x}");
        }
    }
}
