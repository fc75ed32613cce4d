//! The DYNAP-SE2 bias generator: the measured (coarse, fine) -> current table, per-bias scale factors,
//! the exhaustive nearest-code inverse with Rockpool's tie-breaking, and the simulator <-> chip bias
//! name table (model.md sections 4.2 and 4.3).
//!
//! `I(c, f; name) = table[type(name)][c][f] * scale(name)`, where `type` is the last letter of the chip
//! bias name (`N` or `P`). The table is measured, not a formula, and is not monotonic in the fine code
//! (dips at f = 32, 64, ..., 224), so the inverse searches every code.

use crate::error::Error;

const MEASURED_TABLE_CSV: &str = include_str!("../data/dynapse2_paramgen_se2.csv");
const SCALE_FACTORS_CSV: &str = include_str!("../data/dynapse2_scale_factor_se2.csv");

/// Number of coarse codes (0..=5).
pub const COARSE_LEVELS: usize = 6;
/// Number of fine codes (0..=255).
pub const FINE_LEVELS: usize = 256;

/// The transistor type of a bias branch, which selects the half of the table it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransistorType {
    /// n-type.
    N,
    /// p-type.
    P,
}

impl TransistorType {
    /// The type of a chip bias: the last letter of its name (`SOIF_LEAK_N` is `N`).
    pub fn of_bias(name: &str) -> Option<TransistorType> {
        match name.as_bytes().last() {
            Some(b'N') => Some(TransistorType::N),
            Some(b'P') => Some(TransistorType::P),
            _ => None,
        }
    }

    /// `'N'` or `'P'`.
    pub fn letter(self) -> char {
        match self {
            TransistorType::N => 'N',
            TransistorType::P => 'P',
        }
    }
}

/// A bias DAC setting: coarse code 0..=5 and fine code 0..=255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BiasCode {
    coarse: u8,
    fine: u8,
}

impl BiasCode {
    /// The code `(coarse, fine)`; `None` when `coarse > 5`.
    pub fn new(coarse: u8, fine: u8) -> Option<BiasCode> {
        (usize::from(coarse) < COARSE_LEVELS).then_some(BiasCode { coarse, fine })
    }

    /// Coarse code, 0..=5.
    pub fn coarse(self) -> u8 {
        self.coarse
    }

    /// Fine code, 0..=255.
    pub fn fine(self) -> u8 {
        self.fine
    }

    /// Every code, in lexicographic (coarse, fine) order.
    pub fn all() -> impl Iterator<Item = BiasCode> {
        (0..COARSE_LEVELS as u8)
            .flat_map(|c| (0..=255u8).map(move |f| BiasCode { coarse: c, fine: f }))
    }
}

/// A measured transfer table: for each transistor type, coarse and fine code, the current (A) before
/// the per-bias scale factor.
#[derive(Clone, Debug, PartialEq)]
pub struct BiasTable {
    n: Box<[[f64; FINE_LEVELS]; COARSE_LEVELS]>,
    p: Box<[[f64; FINE_LEVELS]; COARSE_LEVELS]>,
}

impl BiasTable {
    /// The DYNAP-SE2 table Rockpool 3.1.0 ships (SynSense's measurement), built into this crate.
    pub fn measured() -> BiasTable {
        // The built-in file is checked by this crate's tests, so a failure here is a build defect.
        BiasTable::from_csv(MEASURED_TABLE_CSV).expect("the built-in bias table is valid")
    }

    /// Parses a table in the format of the built-in one: a header line
    /// `transistor_type,coarse,fine,current_A`, then one line per (type, coarse, fine), 3072 in all,
    /// in any order. Every entry must appear exactly once and be a finite non-negative current.
    pub fn from_csv(text: &str) -> Result<BiasTable, Error> {
        let mut n = Box::new([[f64::NAN; FINE_LEVELS]; COARSE_LEVELS]);
        let mut p = Box::new([[f64::NAN; FINE_LEVELS]; COARSE_LEVELS]);
        let bad = |line: usize, problem: String| Error::BiasTable { line, problem };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        match lines.next() {
            Some((_, h)) if h.replace(' ', "") == "transistor_type,coarse,fine,current_A" => {}
            Some((_, h)) => {
                return Err(bad(
                    1,
                    format!("header is {h:?}, expected \"transistor_type,coarse,fine,current_A\""),
                ));
            }
            None => return Err(bad(1, "the file is empty".into())),
        }
        for (line, l) in lines {
            if l.is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if fields.len() != 4 {
                return Err(bad(line, format!("{} fields, expected 4", fields.len())));
            }
            let table = match fields[0] {
                "N" => &mut n,
                "P" => &mut p,
                t => return Err(bad(line, format!("transistor type {t:?}, expected N or P"))),
            };
            let coarse: usize = fields[1]
                .parse()
                .ok()
                .filter(|&c| c < COARSE_LEVELS)
                .ok_or_else(|| bad(line, format!("coarse code {:?}, expected 0..=5", fields[1])))?;
            let fine: usize = fields[2]
                .parse()
                .ok()
                .filter(|&f| f < FINE_LEVELS)
                .ok_or_else(|| bad(line, format!("fine code {:?}, expected 0..=255", fields[2])))?;
            let current: f64 = fields[3]
                .parse()
                .ok()
                .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| {
                    bad(
                        line,
                        format!(
                            "current {:?} is not a finite non-negative number",
                            fields[3]
                        ),
                    )
                })?;
            let slot = &mut table[coarse][fine];
            if !slot.is_nan() {
                return Err(bad(
                    line,
                    format!(
                        "duplicate entry for type {}, coarse {coarse}, fine {fine}",
                        fields[0]
                    ),
                ));
            }
            *slot = current;
        }
        for (t, table) in [('N', &n), ('P', &p)] {
            for (c, row) in table.iter().enumerate() {
                if let Some(f) = row.iter().position(|x| x.is_nan()) {
                    return Err(bad(
                        text.lines().count(),
                        format!(
                            "missing entry for type {t}, coarse {c}, fine {f} (the table needs all 3072)"
                        ),
                    ));
                }
            }
        }
        Ok(BiasTable { n, p })
    }

    /// The raw table current (A) of a code, before the scale factor.
    pub fn raw_current(&self, ttype: TransistorType, code: BiasCode) -> f64 {
        self.rows(ttype)[usize::from(code.coarse)][usize::from(code.fine)]
    }

    fn rows(&self, ttype: TransistorType) -> &[[f64; FINE_LEVELS]; COARSE_LEVELS] {
        match ttype {
            TransistorType::N => &self.n,
            TransistorType::P => &self.p,
        }
    }

    /// `table[type][c][f] * scale` (Rockpool's `digital_to_analog`).
    pub fn current_from_code(&self, ttype: TransistorType, scale: f64, code: BiasCode) -> f64 {
        self.raw_current(ttype, code) * scale
    }

    /// The code whose current `table * scale` is nearest to `current` in absolute error, searching every
    /// code (Rockpool's `analog_to_digital`): per coarse the first fine code of least error, then the
    /// first coarse of least error. Targets outside the range saturate at (0, 0) or (5, 255).
    pub fn code_from_current(&self, ttype: TransistorType, scale: f64, current: f64) -> BiasCode {
        let rows = self.rows(ttype);
        let mut best = (f64::INFINITY, BiasCode { coarse: 0, fine: 0 });
        for (c, row) in rows.iter().enumerate() {
            let mut best_f = 0;
            let mut best_err = f64::INFINITY;
            for (f, &raw) in row.iter().enumerate() {
                let err = (raw * scale - current).abs();
                if err < best_err {
                    best_err = err;
                    best_f = f;
                }
            }
            if best_err < best.0 {
                best = (
                    best_err,
                    BiasCode {
                        coarse: c as u8,
                        fine: best_f as u8,
                    },
                );
            }
        }
        best.1
    }
}

/// One chip bias that a simulator parameter maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BiasName {
    /// The simulator's name (`Itau_mem`; the per-dendrite names `Itau_ampa`, ... and `Iw_0..3` of the
    /// chip core included).
    pub sim: &'static str,
    /// The chip's bias name (`SOIF_LEAK_N`).
    pub chip: &'static str,
}

/// The simulator parameter <-> chip bias table (Rockpool `lookup/parameter_name.py`), in Rockpool's
/// export order.
pub const BIAS_NAMES: [BiasName; 23] = [
    BiasName {
        sim: "Idc",
        chip: "SOIF_DC_P",
    },
    BiasName {
        sim: "If_nmda",
        chip: "DENM_NMREV_N",
    },
    BiasName {
        sim: "Igain_ahp",
        chip: "SOAD_GAIN_P",
    },
    BiasName {
        sim: "Igain_ampa",
        chip: "DEAM_EGAIN_P",
    },
    BiasName {
        sim: "Igain_gaba",
        chip: "DEGA_IGAIN_P",
    },
    BiasName {
        sim: "Igain_nmda",
        chip: "DENM_EGAIN_P",
    },
    BiasName {
        sim: "Igain_shunt",
        chip: "DESC_IGAIN_P",
    },
    BiasName {
        sim: "Igain_mem",
        chip: "SOIF_GAIN_N",
    },
    BiasName {
        sim: "Ipulse_ahp",
        chip: "SOAD_PWTAU_N",
    },
    BiasName {
        sim: "Ipulse",
        chip: "SYPD_EXT_N",
    },
    BiasName {
        sim: "Iref",
        chip: "SOIF_REFR_N",
    },
    BiasName {
        sim: "Ispkthr",
        chip: "SOIF_SPKTHR_P",
    },
    BiasName {
        sim: "Itau_ahp",
        chip: "SOAD_TAU_P",
    },
    BiasName {
        sim: "Itau_ampa",
        chip: "DEAM_ETAU_P",
    },
    BiasName {
        sim: "Itau_gaba",
        chip: "DEGA_ITAU_P",
    },
    BiasName {
        sim: "Itau_nmda",
        chip: "DENM_ETAU_P",
    },
    BiasName {
        sim: "Itau_shunt",
        chip: "DESC_ITAU_P",
    },
    BiasName {
        sim: "Itau_mem",
        chip: "SOIF_LEAK_N",
    },
    BiasName {
        sim: "Iw_0",
        chip: "SYAM_W0_P",
    },
    BiasName {
        sim: "Iw_1",
        chip: "SYAM_W1_P",
    },
    BiasName {
        sim: "Iw_2",
        chip: "SYAM_W2_P",
    },
    BiasName {
        sim: "Iw_3",
        chip: "SYAM_W3_P",
    },
    BiasName {
        sim: "Iw_ahp",
        chip: "SOAD_W_N",
    },
];

/// The chip bias name of a simulator parameter name.
pub fn chip_bias_from_sim(sim: &str) -> Option<&'static str> {
    BIAS_NAMES.iter().find(|b| b.sim == sim).map(|b| b.chip)
}

/// The simulator parameter name of a chip bias name.
pub fn sim_from_chip_bias(chip: &str) -> Option<&'static str> {
    BIAS_NAMES.iter().find(|b| b.chip == chip).map(|b| b.sim)
}

/// A bias generator: a measured table plus the per-bias scale factors. Converts named biases between
/// currents and codes.
#[derive(Clone, Debug, PartialEq)]
pub struct BiasGenerator {
    table: BiasTable,
    scales: Vec<(String, f64)>,
}

impl BiasGenerator {
    /// The built-in DYNAP-SE2 table and Rockpool's 56 scale factors.
    pub fn dynapse2() -> BiasGenerator {
        BiasGenerator::with_table(BiasTable::measured())
    }

    /// A user-supplied table (for example a per-chip calibration) with the built-in scale factors.
    pub fn with_table(table: BiasTable) -> BiasGenerator {
        let scales =
            parse_scale_factors(SCALE_FACTORS_CSV).expect("the built-in scale factors are valid");
        BiasGenerator { table, scales }
    }

    /// The table.
    pub fn table(&self) -> &BiasTable {
        &self.table
    }

    /// Every chip bias with a scale factor, and its factor.
    pub fn scale_factors(&self) -> &[(String, f64)] {
        &self.scales
    }

    /// The scale factor of a chip bias.
    pub fn scale(&self, chip_bias: &str) -> Result<f64, Error> {
        self.scales
            .iter()
            .find(|(n, _)| n == chip_bias)
            .map(|&(_, s)| s)
            .ok_or_else(|| Error::UnknownBias {
                name: chip_bias.to_owned(),
            })
    }

    fn type_and_scale(&self, chip_bias: &str) -> Result<(TransistorType, f64), Error> {
        let scale = self.scale(chip_bias)?;
        let ttype = TransistorType::of_bias(chip_bias).ok_or_else(|| Error::UnknownBias {
            name: chip_bias.to_owned(),
        })?;
        Ok((ttype, scale))
    }

    /// The current (A) a chip bias makes at `code` (Rockpool's `param_to_analog`).
    pub fn current_from_code(&self, chip_bias: &str, code: BiasCode) -> Result<f64, Error> {
        let (t, s) = self.type_and_scale(chip_bias)?;
        Ok(self.table.current_from_code(t, s, code))
    }

    /// The code of a chip bias nearest to `current` (Rockpool's `analog_to_param`).
    pub fn code_from_current(&self, chip_bias: &str, current: f64) -> Result<BiasCode, Error> {
        let (t, s) = self.type_and_scale(chip_bias)?;
        Ok(self.table.code_from_current(t, s, current))
    }
}

fn parse_scale_factors(text: &str) -> Result<Vec<(String, f64)>, Error> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate().skip(1) {
        let line = i + 1;
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        if f.len() < 2 {
            return Err(Error::BiasTable {
                line,
                problem: "expected bias_name,scale_factor".into(),
            });
        }
        let s: f64 = f[1].parse().map_err(|_| Error::BiasTable {
            line,
            problem: format!("scale factor {:?} is not a number", f[1]),
        })?;
        out.push((f[0].to_owned(), s));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn built_in_table_is_complete_and_has_the_documented_shape() {
        let t = BiasTable::measured();
        // Per-coarse maxima at f = 255, N: 7.177e-11 ... 2.276e-6 (model.md 4.2).
        let max_n5 = t.raw_current(TransistorType::N, BiasCode::new(5, 255).unwrap());
        assert!((max_n5 / 2.276e-6 - 1.0).abs() < 1e-3, "{max_n5}");
        // The documented dip: N, coarse 0, fine 31 -> 32 decreases.
        let a = t.raw_current(TransistorType::N, BiasCode::new(0, 31).unwrap());
        let b = t.raw_current(TransistorType::N, BiasCode::new(0, 32).unwrap());
        assert!(b < a);
        assert_eq!(BiasGenerator::dynapse2().scale_factors().len(), 56);
    }

    #[test]
    fn bias_name_table_agrees_with_the_data_file() {
        let g = BiasGenerator::dynapse2();
        let csv = include_str!("../data/dynapse2_sim2device_se2.csv");
        let mut rows = 0;
        for l in csv.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(chip_bias_from_sim(f[0]), Some(f[1]), "{l}");
            assert_eq!(sim_from_chip_bias(f[1]), Some(f[0]));
            assert_eq!(g.scale(f[1]).unwrap(), f[3].parse::<f64>().unwrap());
            let code = g.code_from_current(f[1], f[4].parse().unwrap()).unwrap();
            assert_eq!(
                (code.coarse(), code.fine()),
                (f[5].parse().unwrap(), f[6].parse().unwrap()),
                "{l}"
            );
            assert_eq!(
                g.current_from_code(f[1], code).unwrap(),
                f[7].parse::<f64>().unwrap()
            );
            rows += 1;
        }
        assert_eq!(rows, BIAS_NAMES.len());
    }

    #[test]
    fn code_to_current_to_code_is_the_identity_on_every_code() {
        // Rockpool's test: type N, scale 1, every (coarse, fine); and the same for P.
        let t = BiasTable::measured();
        for ttype in [TransistorType::N, TransistorType::P] {
            for code in BiasCode::all() {
                let i = t.current_from_code(ttype, 1.0, code);
                assert_eq!(t.code_from_current(ttype, 1.0, i), code, "{ttype:?}");
            }
        }
    }

    #[test]
    fn current_to_code_to_current_error_bounds() {
        // Rockpool's test: 1000 log-spaced targets in [1e-13, 1e-5], saturated codes excluded:
        // mean relative error < 1 % and max < 15 % (measured 0.88 % and 14.2 %).
        let t = BiasTable::measured();
        let mut errs = Vec::new();
        for k in 0..1000 {
            let target = 10f64.powf(-13.0 + 8.0 * f64::from(k) / 999.0);
            let code = t.code_from_current(TransistorType::N, 1.0, target);
            if (code.coarse(), code.fine()) == (0, 0) || (code.coarse(), code.fine()) == (5, 255) {
                continue;
            }
            errs.push((t.current_from_code(TransistorType::N, 1.0, code) - target).abs() / target);
        }
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        let max = errs.iter().copied().fold(0.0, f64::max);
        assert!(mean < 0.01, "mean {mean}");
        assert!(max < 0.15, "max {max}");
    }

    #[test]
    fn test_vectors_are_matched_exactly() {
        let t = BiasTable::measured();
        let csv = include_str!("../data/biasgen_test_vectors.csv");
        for l in csv.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            let ttype = TransistorType::of_bias(f[0]).unwrap();
            let scale: f64 = f[1].parse().unwrap();
            let code = t.code_from_current(ttype, scale, f[2].parse().unwrap());
            assert_eq!(
                (code.coarse(), code.fine()),
                (f[3].parse().unwrap(), f[4].parse().unwrap()),
                "{l}"
            );
            assert_eq!(
                t.current_from_code(ttype, scale, code),
                f[5].parse::<f64>().unwrap(),
                "{l}"
            );
        }
    }

    #[test]
    fn malformed_tables_name_the_line() {
        let good = include_str!("../data/dynapse2_paramgen_se2.csv");
        let mut lines: Vec<&str> = good.lines().collect();
        lines[10] = "N,0,9,-1e-12";
        let e = BiasTable::from_csv(&lines.join("\n")).unwrap_err();
        assert!(matches!(e, Error::BiasTable { line: 11, .. }), "{e}");
        lines[10] = "N,7,9,1e-12";
        assert!(
            BiasTable::from_csv(&lines.join("\n"))
                .unwrap_err()
                .to_string()
                .contains("line 11")
        );
        lines[10] = lines[11];
        let e = BiasTable::from_csv(&lines.join("\n")).unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
        let e = BiasTable::from_csv(&good.lines().take(100).collect::<Vec<_>>().join("\n"))
            .unwrap_err();
        assert!(e.to_string().contains("missing entry"), "{e}");
        assert!(BiasTable::from_csv("").is_err());
        assert!(
            BiasTable::from_csv("a,b\n")
                .unwrap_err()
                .to_string()
                .contains("header")
        );
    }

    #[test]
    fn unknown_bias_names_are_errors() {
        let g = BiasGenerator::dynapse2();
        assert_eq!(
            g.code_from_current("SOIF_NOPE_N", 1e-9),
            Err(Error::UnknownBias {
                name: "SOIF_NOPE_N".into()
            })
        );
    }

    proptest! {
        #[test]
        fn any_code_round_trips_at_any_scale(coarse in 0u8..6, fine in 0u8..=255, scale in 0.1f64..2.0) {
            let t = BiasTable::measured();
            let code = BiasCode::new(coarse, fine).unwrap();
            for ttype in [TransistorType::N, TransistorType::P] {
                let i = t.current_from_code(ttype, scale, code);
                prop_assert_eq!(t.code_from_current(ttype, scale, i), code);
            }
        }

        #[test]
        fn nearest_code_is_never_beaten(target in -14.0f64..-5.0) {
            let t = BiasTable::measured();
            let target = 10f64.powf(target);
            let code = t.code_from_current(TransistorType::P, 0.68, target);
            let err = (t.current_from_code(TransistorType::P, 0.68, code) - target).abs();
            for other in BiasCode::all() {
                let e = (t.current_from_code(TransistorType::P, 0.68, other) - target).abs();
                prop_assert!(e > err || (e == err && other >= code));
            }
        }
    }

    proptest::proptest! {
        /// Fuzzing the table parser: arbitrary text, and the shipped table with lines cut or characters
        /// replaced, give a table or an error naming a line, never a panic.
        #[test]
        fn arbitrary_and_corrupted_tables_never_panic(
            text in "\\PC{0,300}",
            edits in proptest::collection::vec((0usize..100_000, proptest::char::any()), 0..5),
            cut in 0usize..100_000,
        ) {
            let _ = BiasTable::from_csv(&text);
            let mut t: Vec<char> = MEASURED_TABLE_CSV.chars().collect();
            for (i, c) in edits {
                let n = t.len();
                t[i % n] = c;
            }
            let n = t.len();
            t.truncate(cut % n);
            let corrupted: String = t.into_iter().collect();
            if let Err(e) = BiasTable::from_csv(&corrupted) {
                proptest::prop_assert!(e.to_string().contains("line") || e.to_string().contains("table"), "{e}");
            }
        }
    }
}
