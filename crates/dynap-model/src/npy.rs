//! A reader for NumPy's NPY format (versions 1.0 to 3.0), for float arrays such as the weights Rockpool's
//! users save with `np.save`. Parses bytes only; no I/O.

use crate::error::Error;

/// A float array read from an NPY file: its shape and its values in row-major (C) order, widened to
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
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| bad(format!("header field {pat} is not terminated")))?;
    Ok(rest[..end].trim())
}

/// Parses an NPY file holding a little- or big-endian `float32` or `float64` array in C order.
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
    let descr = header_field(header, "descr")?.trim_matches(['\'', '"']);
    let (little, width) = match descr {
        "<f4" | "=f4" | "|f4" => (true, 4),
        "<f8" | "=f8" | "|f8" => (true, 8),
        ">f4" => (false, 4),
        ">f8" => (false, 8),
        d => {
            return Err(bad(format!(
                "dtype {d:?}; only float32 and float64 arrays are read"
            )));
        }
    };
    if header_field(header, "fortran_order")? != "False" {
        return Err(bad(
            "Fortran-ordered arrays are not supported; save with C order",
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
    if Some(body.len()) != count.checked_mul(width) {
        return Err(bad(format!(
            "shape {shape:?} needs {count} values of {width} bytes, the file holds {} bytes of data",
            body.len()
        )));
    }
    let data = body
        .chunks_exact(width)
        .map(|c| match (width, little) {
            (4, true) => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            (4, false) => f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]])),
            (_, true) => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            (_, false) => f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        v.extend(body);
        v
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
        let e = read_npy(&npy("<i8", "(1,)", &[0; 8])).unwrap_err();
        assert!(e.to_string().contains("dtype"), "{e}");
        let e = read_npy(&npy("<f4", "(3,)", &[0; 8])).unwrap_err();
        assert!(e.to_string().contains("needs 3 values"), "{e}");
        let mut f = npy("<f4", "(1,)", &[0; 4]);
        f[8] = 0xff;
        assert!(read_npy(&f).is_err());
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
