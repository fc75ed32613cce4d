//! The one tolerance type every numeric comparison uses: relative plus absolute.
//!
//! Currents span 1e-15 A to 1e-5 A, so a bare absolute epsilon is meaningless (1e-5 is not small for
//! 1e-12 A); every comparison states both parts.

/// `|a - b| <= rtol * |b| + atol`, with `b` the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part, in the unit of the compared values.
    pub atol: f64,
}

impl Tolerance {
    /// Exact equality.
    pub const EXACT: Tolerance = Tolerance {
        rtol: 0.0,
        atol: 0.0,
    };

    /// A purely relative tolerance.
    pub const fn relative(rtol: f64) -> Tolerance {
        Tolerance { rtol, atol: 0.0 }
    }

    /// A purely absolute tolerance.
    pub const fn absolute(atol: f64) -> Tolerance {
        Tolerance { rtol: 0.0, atol }
    }

    /// Whether `actual` is within tolerance of `reference`. NaN is close only to NaN; infinities only
    /// to themselves.
    pub fn close(self, actual: f64, reference: f64) -> bool {
        if actual.is_nan() || reference.is_nan() {
            return actual.is_nan() && reference.is_nan();
        }
        if actual == reference {
            return true;
        }
        (actual - reference).abs() <= self.rtol * reference.abs() + self.atol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_with_the_reference() {
        let t = Tolerance {
            rtol: 2e-3,
            atol: 1e-13,
        };
        assert!(t.close(1.001e-9, 1e-9));
        assert!(!t.close(1.01e-9, 1e-9));
        assert!(t.close(5e-14, 0.0));
        assert!(!t.close(f64::NAN, 1.0));
        assert!(t.close(f64::INFINITY, f64::INFINITY));
        assert!(Tolerance::EXACT.close(1.0, 1.0));
        assert!(!Tolerance::EXACT.close(1.0, 1.0 + f64::EPSILON));
    }
}
