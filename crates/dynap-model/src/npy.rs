//! A reader for NumPy's NPY format (versions 1.0 to 3.0): every numeric array NumPy writes with
//! `np.save` (bool, signed and unsigned integers of 1 to 8 bytes, float16/32/64, little- or
//! big-endian), in C order, such as the weights Rockpool's users save or a dataset's samples and
//! labels. Parses bytes only; no I/O.
//!
//! Every value is widened to `f64` exactly: bool as 0 or 1, integers of up to 32 bits and every
//! float16/32 value always fit; a 64-bit integer beyond 2^53 in magnitude does not, and its file is
//! refused (with the index of the value) rather than read rounded. Refused with a reason: Fortran
//! order, object arrays (pickled Python objects, never unpickled here), structured arrays, complex
//! numbers, strings, dates, and `long double` (`float96`/`float128`, whose layout depends on the
//! machine that wrote it).

use crate::error::Error;

/// A numeric array read from an NPY file: its shape and its values in row-major (C) order, widened to
/// `f64` exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape (an empty shape is a scalar).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f64>,
}

fn bad(problem: impl Into<String>) -> Error {
    Error::Npy {
        problem: problem.into(),
    }
}

/// The value of `'key': value` in a Python dict literal header, as raw text.
fn header_field<'a>(header: &'a str, key: &str) -> Result<&'a str, Error> {
    let pat = format!("'{key}'");
    let start = header
        .find(&pat)
        .ok_or_else(|| bad(format!("header has no {pat} field")))?
        + pat.len();
    let rest = header[start..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| bad(format!("header field {pat} has no ':'")))?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else if rest.starts_with('[') {
        // A structured dtype: a list of fields. Only its presence matters (it is refused).
        rest.find(']').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| bad(format!("header field {pat} is not terminated")))?;
    Ok(rest[..end].trim())
}

/// The element types read, with their width in bytes and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    Bool,
    Int { width: usize, little: bool },
    Uint { width: usize, little: bool },
    Float { width: usize, little: bool },
}

impl Dtype {
    fn width(self) -> usize {
        match self {
            Dtype::Bool => 1,
            Dtype::Int { width, .. } | Dtype::Uint { width, .. } | Dtype::Float { width, .. } => {
                width
            }
        }
    }
}

/// Parses NumPy's `descr` (`'<f8'`, `'|u1'`, `'>i2'`, `'|b1'`...), refusing what is not a plain number.
fn parse_descr(descr: &str) -> Result<Dtype, Error> {
    if descr.starts_with('[') {
        return Err(bad(format!(
            "dtype {descr}: structured arrays (named fields) are not read; save each field as its own numeric array"
        )));
    }
    let d = descr.trim_matches(['\'', '"']);
    let (order, rest) = match d.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &d[1..]),
        _ => ('=', d),
    };
    // NumPy writes `<`, `>` or `|` (no byte order, one-byte types); `=` is read as little-endian, the
    // order of every machine NumPy runs on today.
    let little = order != '>';
    let mut chars = rest.chars();
    let kind = chars.next();
    let size = chars.as_str();
    let width: Option<usize> = size.parse().ok();
    let refuse = |what: &str| Err(bad(format!("dtype {d:?}: {what}")));
    match (kind, width) {
        (Some('b'), Some(1)) => Ok(Dtype::Bool),
        (Some('i'), Some(w @ (1 | 2 | 4 | 8))) => Ok(Dtype::Int { width: w, little }),
        (Some('u'), Some(w @ (1 | 2 | 4 | 8))) => Ok(Dtype::Uint { width: w, little }),
        (Some('f'), Some(w @ (2 | 4 | 8))) => Ok(Dtype::Float { width: w, little }),
        (Some('f'), Some(12 | 16)) => refuse(
            "long double (float96/float128) has a layout that depends on the machine that wrote it; save as float64",
        ),
        (Some('O'), _) => refuse(
            "object arrays hold pickled Python objects and are never unpickled; save a numeric array (for example with .astype(float))",
        ),
        (Some('c'), _) => refuse("complex numbers are not read; save the real part"),
        (Some('U' | 'S' | 'a'), _) => refuse("strings are not read; save numbers"),
        (Some('M' | 'm'), _) => refuse("dates and durations are not read; save numbers"),
        (Some('V'), _) => refuse("raw bytes (void) are not read; save numbers"),
        _ => refuse(
            "not a numeric type NumPy writes (bool, int8-64, uint8-64, float16/32/64 are read)",
        ),
    }
}

/// Half-precision bits to `f64`, exactly (every float16 value is an `f64` value).
fn f64_from_f16(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The largest magnitude up to which every integer is an `f64` value (2^53).
const EXACT_INTEGER_LIMIT: u128 = 1 << 53;

/// Widens `W`-byte elements with `f` (one loop per element type, no per-element dispatch).
fn widen<const W: usize>(body: &[u8], f: impl Fn([u8; W]) -> f64) -> Vec<f64> {
    body.chunks_exact(W)
        .map(|c| {
            let mut b = [0u8; W];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

/// Widens 64-bit integers, refusing the first one beyond 2^53 in magnitude (it has no exact `f64`).
fn widen_i64(body: &[u8], value: impl Fn([u8; 8]) -> i128) -> Result<Vec<f64>, Error> {
    let mut out = Vec::with_capacity(body.len() / 8);
    for (i, c) in body.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let v = value(b);
        if v.unsigned_abs() > EXACT_INTEGER_LIMIT {
            return Err(bad(format!(
                "the 64-bit integer {v} at flat index {i} is beyond 2^53 and has no exact float64 value"
            )));
        }
        // Exact: |v| <= 2^53.
        out.push(v as f64);
    }
    Ok(out)
}

fn decode(dtype: Dtype, body: &[u8]) -> Result<Vec<f64>, Error> {
    use Dtype::{Bool, Float, Int, Uint};
    Ok(match dtype {
        Bool => widen::<1>(body, |b| f64::from(u8::from(b[0] != 0))),
        Int { width: 1, .. } => widen::<1>(body, |b| f64::from(i8::from_le_bytes(b))),
        Uint { width: 1, .. } => widen::<1>(body, |b| f64::from(b[0])),
        Int { width: 2, little } => widen::<2>(body, |b| {
            f64::from(if little {
                i16::from_le_bytes(b)
            } else {
                i16::from_be_bytes(b)
            })
        }),
        Uint { width: 2, little } => widen::<2>(body, |b| {
            f64::from(if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            })
        }),
        Int { width: 4, little } => widen::<4>(body, |b| {
            f64::from(if little {
                i32::from_le_bytes(b)
            } else {
                i32::from_be_bytes(b)
            })
        }),
        Uint { width: 4, little } => widen::<4>(body, |b| {
            f64::from(if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        }),
        Int { little, .. } => widen_i64(body, |b| {
            i128::from(if little {
                i64::from_le_bytes(b)
            } else {
                i64::from_be_bytes(b)
            })
        })?,
        Uint { little, .. } => widen_i64(body, |b| {
            i128::from(if little {
                u64::from_le_bytes(b)
            } else {
                u64::from_be_bytes(b)
            })
        })?,
        Float { width: 2, little } => widen::<2>(body, |b| {
            f64_from_f16(if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            })
        }),
        Float { width: 4, little } => widen::<4>(body, |b| {
            f64::from(if little {
                f32::from_le_bytes(b)
            } else {
                f32::from_be_bytes(b)
            })
        }),
        Float { little, .. } => widen::<8>(body, |b| {
            if little {
                f64::from_le_bytes(b)
            } else {
                f64::from_be_bytes(b)
            }
        }),
    })
}

/// Parses an NPY file holding a numeric array in C order (see the module documentation for the types
/// read and refused).
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, Error> {
    let magic = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != magic {
        return Err(bad(
            "not an NPY file (the magic string \\x93NUMPY is missing)",
        ));
    }
    let major = bytes[6];
    let (header_len, offset): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header length"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    let header_end = offset.checked_add(header_len).filter(|&e| e <= bytes.len());
    let header_end = header_end.ok_or_else(|| bad("the header is longer than the file"))?;
    let header = std::str::from_utf8(&bytes[offset..header_end])
        .map_err(|_| bad("the header is not text"))?;
    let dtype = parse_descr(header_field(header, "descr")?)?;
    if header_field(header, "fortran_order")? != "False" {
        return Err(bad(
            "Fortran-ordered arrays are not read; save with C order (np.ascontiguousarray)",
        ));
    }
    let shape_text = header_field(header, "shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(format!("shape {shape_text:?} is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("shape entry {s:?} is not a size")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("the shape overflows"))?;
    let body = &bytes[header_end..];
    let width = dtype.width();
    if Some(body.len()) != count.checked_mul(width) {
        return Err(bad(format!(
            "shape {shape:?} needs {count} values of {width} bytes, the file holds {} bytes of data",
            body.len()
        )));
    }
    let data = decode(dtype, body)?;
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        raw_npy(
            &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"),
            body,
        )
    }

    #[test]
    fn reads_float32_and_float64() {
        let body: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let a = read_npy(&npy("<f4", "(2, 2)", &body)).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!(a.data, vec![1.5, -2.0, 3.25, 4.0]);
        let body: Vec<u8> = [0.1f64, 0.2].iter().flat_map(|x| x.to_be_bytes()).collect();
        let a = read_npy(&npy(">f8", "(2,)", &body)).unwrap();
        assert_eq!(a.data, vec![0.1, 0.2]);
    }

    #[test]
    fn refuses_bad_files_with_a_reason() {
        assert!(
            read_npy(b"hello")
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let e = read_npy(&npy("<f4", "(3,)", &[0; 8])).unwrap_err();
        assert!(e.to_string().contains("needs 3 values"), "{e}");
        let mut f = npy("<f4", "(1,)", &[0; 4]);
        f[8] = 0xff;
        assert!(read_npy(&f).is_err());
    }

    /// Every integer, float and bool type NumPy writes, in both byte orders, read to the same values.
    #[test]
    fn reads_every_numeric_dtype_in_both_byte_orders() {
        let values = [0i64, 1, 7, 100, 127];
        for (kind, width) in [
            ("i", 1),
            ("u", 1),
            ("i", 2),
            ("u", 2),
            ("i", 4),
            ("u", 4),
            ("i", 8),
            ("u", 8),
            ("f", 2),
            ("f", 4),
            ("f", 8),
        ] {
            for little in [true, false] {
                let body: Vec<u8> = values
                    .iter()
                    .flat_map(|&v| {
                        let le: Vec<u8> = match (kind, width) {
                            ("f", 2) => f16_bits(v as f64).to_le_bytes().to_vec(),
                            ("f", 4) => (v as f32).to_le_bytes().to_vec(),
                            ("f", 8) => (v as f64).to_le_bytes().to_vec(),
                            _ => v.to_le_bytes()[..width].to_vec(),
                        };
                        if little {
                            le
                        } else {
                            le.into_iter().rev().collect()
                        }
                    })
                    .collect();
                let order = if width == 1 {
                    '|'
                } else if little {
                    '<'
                } else {
                    '>'
                };
                let descr = format!("{order}{kind}{width}");
                let a = read_npy(&npy(&descr, "(5,)", &body))
                    .unwrap_or_else(|e| panic!("{descr}: {e}"));
                assert_eq!(a.data, vec![0.0, 1.0, 7.0, 100.0, 127.0], "{descr}");
            }
        }
        let a = read_npy(&npy("|b1", "(3,)", &[1, 0, 1])).unwrap();
        assert_eq!(a.data, vec![1.0, 0.0, 1.0]);
        // Negative integers and the extremes of each width.
        let body: Vec<u8> = [i16::MIN, -1, i16::MAX]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(
            read_npy(&npy(">i2", "(3,)", &body)).unwrap().data,
            vec![-32768.0, -1.0, 32767.0]
        );
        let body: Vec<u8> = [u32::MAX].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            read_npy(&npy("<u4", "(1,)", &body)).unwrap().data,
            vec![4294967295.0]
        );
        let body: Vec<u8> = [-(1i64 << 53), 1 << 53]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            read_npy(&npy("<i8", "(2,)", &body)).unwrap().data,
            vec![-9007199254740992.0, 9007199254740992.0]
        );
        assert_eq!(
            read_npy(&npy("|i1", "(1,)", &[0x80])).unwrap().data,
            vec![-128.0]
        );
    }

    /// Half precision: normal, subnormal, signed zero, infinity and NaN bit patterns (checked against
    /// NumPy's `np.frombuffer(bits, '<f2')`).
    #[test]
    fn reads_float16_exactly() {
        let cases: [(u16, f64); 8] = [
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333251953125),
            (0x7bff, 65504.0),
            (0x0001, 5.960464477539063e-8),
            (0x0400, 6.103515625e-5),
            (0x8000, -0.0),
            (0xfc00, f64::NEG_INFINITY),
        ];
        let body: Vec<u8> = cases.iter().flat_map(|(b, _)| b.to_le_bytes()).collect();
        let a = read_npy(&npy("<f2", "(8,)", &body)).unwrap();
        for ((bits, want), got) in cases.iter().zip(&a.data) {
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
        }
        assert!(
            read_npy(&npy("<f2", "(1,)", &0x7e00u16.to_le_bytes()))
                .unwrap()
                .data[0]
                .is_nan()
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_number_with_the_reason() {
        let refused = [
            ("|O", 8, "pickled"),
            ("<c16", 16, "complex"),
            ("<U3", 12, "strings"),
            ("|S3", 3, "strings"),
            ("<M8[ns]", 8, "dates"),
            ("|V4", 4, "void"),
            ("<f16", 16, "long double"),
            ("<i3", 3, "not a numeric type"),
        ];
        for (descr, width, reason) in refused {
            let e = read_npy(&npy(descr, "(1,)", &vec![0; width]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(reason), "{descr}: {e}");
        }
        let structured =
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }";
        let e = read_npy(&raw_npy(structured, &[0; 8]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("structured"), "{e}");
        let fortran = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }";
        let e = read_npy(&raw_npy(fortran, &[0; 32]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Fortran"), "{e}");
        let body: Vec<u8> = [(1i64 << 53) + 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let e = read_npy(&npy("<i8", "(1,)", &body))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2^53") && e.contains("index 0"), "{e}");
        let body: Vec<u8> = [0u64, u64::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let e = read_npy(&npy("<u8", "(2,)", &body))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("18446744073709551615") && e.contains("index 1"),
            "{e}"
        );
    }

    /// float16 bits of a small integer (exact), for the dtype table above.
    fn f16_bits(v: f64) -> u16 {
        if v == 0.0 {
            return 0;
        }
        let e = v.log2().floor() as i32;
        let fraction = ((v / 2f64.powi(e) - 1.0) * 1024.0).round() as u16;
        (((e + 15) as u16) << 10) | fraction
    }

    fn raw_npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_owned();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        v.extend(body);
        v
    }

    proptest::proptest! {
        /// Fuzzing: arbitrary bytes, and valid files with bytes overwritten or cut, give a value or an
        /// error, never a panic (and never an allocation sized by a corrupt header beyond the data).
        #[test]
        fn arbitrary_and_corrupted_files_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            edits in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 0..6),
            cut in 0usize..200,
        ) {
            let _ = read_npy(&bytes);
            let body: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
            let mut f = npy("<f4", "(2, 2)", &body);
            for (i, b) in edits {
                let n = f.len();
                f[i % n] = b;
            }
            let _ = read_npy(&f);
            f.truncate(cut.min(f.len()));
            let _ = read_npy(&f);
        }
    }
}
