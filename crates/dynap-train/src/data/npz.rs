//! A reader for NumPy's NPZ archives: the ZIP files `np.savez` (members stored) and
//! `np.savez_compressed` (members deflated) write, one `NAME.npy` member per array. Parses bytes only;
//! no I/O.
//!
//! Written by hand over the ZIP central directory (PKWARE's APPNOTE: the end record, its ZIP64 form,
//! the central directory entries with their ZIP64 extra field, each member's local header), inflating
//! with `miniz_oxide` and checking every member's CRC-32. NumPy writes each member's local header in
//! ZIP64 form (`force_zip64`) with the sizes in the central directory, which is read as the truth.
//!
//! Allocations are bounded by the bytes: a member is inflated only when asked for, into a buffer that
//! grows with its output and stops at its declared size, and a declared size is refused when deflate
//! could not produce it from the compressed bytes (at most 1032 output bytes per input byte), so a
//! hostile header allocates nothing beyond what its file can hold. Member arrays are parsed by
//! [`dynap_model::read_npy`].

use super::error::Problem;
use dynap_model::{NpyArray, read_npy};
use std::borrow::Cow;

/// Deflate's largest expansion: a 258-byte match coded in 2 bits. A declared size beyond this many
/// bytes per compressed byte (plus a small header allowance) cannot be genuine.
const MAX_DEFLATE_RATIO: u64 = 1032;

const END_SIGNATURE: u32 = 0x0605_4b50;
const END64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const END64_SIGNATURE: u32 = 0x0606_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;

/// A member of the archive, as its central directory entry describes it.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// An NPZ archive read from bytes: its members are listed at once and each array is decoded only
/// when asked for.
#[derive(Debug)]
pub struct Npz<'a> {
    bytes: &'a [u8],
    members: Vec<Member>,
}

/// `N` little-endian bytes at `at`, if the file holds them.
fn field<const N: usize>(bytes: &[u8], at: u64) -> Option<[u8; N]> {
    let start = usize::try_from(at).ok()?;
    let slice = bytes.get(start..start.checked_add(N)?)?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Some(out)
}

/// Little-endian readers of a structure that starts at `base`, reporting `what` when cut short.
struct Reader<'b> {
    bytes: &'b [u8],
    base: u64,
    what: &'static str,
}

impl<'b> Reader<'b> {
    fn cut(&self) -> Problem {
        Problem::ZipStructure {
            what: self.what,
            offset: self.base,
        }
    }
    fn at<const N: usize>(&self, offset: u64) -> Result<[u8; N], Problem> {
        self.base
            .checked_add(offset)
            .and_then(|at| field::<N>(self.bytes, at))
            .ok_or_else(|| self.cut())
    }
    fn u16(&self, offset: u64) -> Result<u16, Problem> {
        self.at::<2>(offset).map(u16::from_le_bytes)
    }
    fn u32(&self, offset: u64) -> Result<u32, Problem> {
        self.at::<4>(offset).map(u32::from_le_bytes)
    }
    fn u64(&self, offset: u64) -> Result<u64, Problem> {
        self.at::<8>(offset).map(u64::from_le_bytes)
    }
    fn signature(&self, expected: u32) -> Result<(), Problem> {
        if self.u32(0)? == expected {
            Ok(())
        } else {
            Err(self.cut())
        }
    }
    /// `len` bytes from `offset`.
    fn slice(&self, offset: u64, len: u64) -> Result<&'b [u8], Problem> {
        let start = self.base.checked_add(offset).ok_or_else(|| self.cut())?;
        let end = start.checked_add(len).ok_or_else(|| self.cut())?;
        let (start, end) = (usize::try_from(start), usize::try_from(end));
        match (start, end) {
            (Ok(s), Ok(e)) => self.bytes.get(s..e).ok_or_else(|| self.cut()),
            _ => Err(self.cut()),
        }
    }
}

/// The offset of the end-of-central-directory record: the last signature whose comment fits the file.
fn find_end(bytes: &[u8]) -> Result<u64, Problem> {
    let last = bytes.len().checked_sub(22).ok_or(Problem::NotZip)?;
    let lowest = last.saturating_sub(usize::from(u16::MAX));
    (lowest..=last)
        .rev()
        .find(|&pos| {
            let sig =
                u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
            let comment = usize::from(u16::from_le_bytes([bytes[pos + 20], bytes[pos + 21]]));
            sig == END_SIGNATURE && pos + 22 + comment <= bytes.len()
        })
        .map(|pos| pos as u64)
        .ok_or(Problem::NotZip)
}

impl<'a> Npz<'a> {
    /// Reads the archive's central directory (not yet its members).
    pub fn parse(bytes: &'a [u8]) -> Result<Npz<'a>, Problem> {
        let end_at = find_end(bytes)?;
        let end = Reader {
            bytes,
            base: end_at,
            what: "end of central directory",
        };
        let (disk, cd_disk) = (end.u16(4)?, end.u16(6)?);
        let mut entries = u64::from(end.u16(10)?);
        let mut cd_size = u64::from(end.u32(12)?);
        let mut cd_offset = u64::from(end.u32(16)?);
        if disk != 0 || cd_disk != 0 || end.u16(8)? != end.u16(10)? {
            return Err(Problem::MultiDisk);
        }
        // ZIP64: the locator sits just before the end record and points at the ZIP64 end record.
        let locator = end_at.checked_sub(20).map(|at| Reader {
            bytes,
            base: at,
            what: "ZIP64 end of central directory locator",
        });
        if let Some(locator) = locator.filter(|l| l.u32(0).ok() == Some(END64_LOCATOR_SIGNATURE)) {
            let end64 = Reader {
                bytes,
                base: locator.u64(8)?,
                what: "ZIP64 end of central directory",
            };
            end64.signature(END64_SIGNATURE)?;
            if end64.u32(16)? != 0 || end64.u32(20)? != 0 || end64.u64(24)? != end64.u64(32)? {
                return Err(Problem::MultiDisk);
            }
            entries = end64.u64(32)?;
            cd_size = end64.u64(40)?;
            cd_offset = end64.u64(48)?;
        }
        let directory = Reader {
            bytes,
            base: cd_offset,
            what: "central directory",
        };
        let directory = directory.slice(0, cd_size)?;
        // Each entry takes at least 46 bytes: the count cannot make us allocate beyond the directory.
        let capacity = usize::try_from(entries.min(cd_size / 46)).unwrap_or(0);
        let mut members: Vec<Member> = Vec::with_capacity(capacity);
        let mut at = 0u64;
        for _ in 0..entries {
            let entry = Reader {
                bytes: directory,
                base: at,
                what: "central directory entry",
            };
            let problem_at = |_: Problem| Problem::ZipStructure {
                what: "central directory entry",
                offset: cd_offset.saturating_add(at),
            };
            entry.signature(CENTRAL_SIGNATURE).map_err(problem_at)?;
            let flags = entry.u16(8).map_err(problem_at)?;
            let method = entry.u16(10).map_err(problem_at)?;
            let crc32 = entry.u32(16).map_err(problem_at)?;
            let mut compressed = u64::from(entry.u32(20).map_err(problem_at)?);
            let mut uncompressed = u64::from(entry.u32(24).map_err(problem_at)?);
            let name_len = u64::from(entry.u16(28).map_err(problem_at)?);
            let extra_len = u64::from(entry.u16(30).map_err(problem_at)?);
            let comment_len = u64::from(entry.u16(32).map_err(problem_at)?);
            let start_disk = entry.u16(34).map_err(problem_at)?;
            let mut local_offset = u64::from(entry.u32(42).map_err(problem_at)?);
            let name = entry.slice(46, name_len).map_err(problem_at)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = entry.slice(46 + name_len, extra_len).map_err(problem_at)?;
            // The ZIP64 extra field (id 1) holds, in this order, the fields whose 32-bit slot is
            // saturated.
            let mut e = 0usize;
            while e + 4 <= extra.len() {
                let id = u16::from_le_bytes([extra[e], extra[e + 1]]);
                let len = usize::from(u16::from_le_bytes([extra[e + 2], extra[e + 3]]));
                let body = extra.get(e + 4..e + 4 + len).ok_or(Problem::ZipStructure {
                    what: "ZIP64 extra field",
                    offset: cd_offset.saturating_add(at),
                })?;
                if id == 1 {
                    let mut values = body.chunks_exact(8).map(|c| {
                        u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                    });
                    let mut take = |slot: &mut u64| {
                        if *slot == u64::from(u32::MAX) {
                            values
                                .next()
                                .map(|v| *slot = v)
                                .ok_or(Problem::ZipStructure {
                                    what: "ZIP64 extra field",
                                    offset: cd_offset.saturating_add(at),
                                })
                        } else {
                            Ok(())
                        }
                    };
                    take(&mut uncompressed)?;
                    take(&mut compressed)?;
                    take(&mut local_offset)?;
                }
                e += 4 + len;
            }
            if start_disk != 0 && start_disk != u16::MAX {
                return Err(Problem::MultiDisk);
            }
            if members.iter().any(|m| m.name == name) {
                return Err(Problem::DuplicateMember { name });
            }
            members.push(Member {
                name,
                flags,
                method,
                crc32,
                compressed,
                uncompressed,
                local_offset,
            });
            at = 46u64
                .checked_add(name_len + extra_len + comment_len)
                .and_then(|n| at.checked_add(n))
                .ok_or(Problem::ZipStructure {
                    what: "central directory",
                    offset: cd_offset,
                })?;
        }
        Ok(Npz { bytes, members })
    }

    /// The names of the arrays (`NAME.npy` members, without `.npy`), in archive order.
    pub fn names(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter_map(|m| m.name.strip_suffix(".npy"))
            .collect()
    }

    /// The array `name` (the member `name.npy`), inflated, checked against its CRC-32 and parsed.
    pub fn array(&self, name: &str) -> Result<NpyArray, Problem> {
        let file = format!("{name}.npy");
        let member = self
            .members
            .iter()
            .find(|m| m.name == file)
            .ok_or_else(|| Problem::MissingArray {
                present: self.names().iter().map(|s| (*s).to_owned()).collect(),
            })?;
        let bytes = self.member_bytes(member)?;
        read_npy(&bytes).map_err(|e| Problem::Npy {
            reason: match e {
                dynap_model::Error::Npy { problem } => problem,
                other => other.to_string(),
            },
        })
    }

    /// A member's uncompressed bytes: borrowed when stored, inflated when deflated; CRC-32 checked.
    fn member_bytes(&self, m: &Member) -> Result<Cow<'a, [u8]>, Problem> {
        if m.flags & 1 != 0 {
            return Err(Problem::Encrypted);
        }
        let local = Reader {
            bytes: self.bytes,
            base: m.local_offset,
            what: "local file header",
        };
        local.signature(LOCAL_SIGNATURE)?;
        let skip = 30 + u64::from(local.u16(26)?) + u64::from(local.u16(28)?);
        let data = local.slice(skip, m.compressed)?;
        let bytes: Cow<'a, [u8]> = match m.method {
            0 => {
                if m.uncompressed != m.compressed {
                    return Err(Problem::ImplausibleSize {
                        declared: m.uncompressed,
                        compressed: m.compressed,
                    });
                }
                Cow::Borrowed(data)
            }
            8 => {
                let limit = m
                    .compressed
                    .saturating_mul(MAX_DEFLATE_RATIO)
                    .saturating_add(64);
                let declared = usize::try_from(m.uncompressed)
                    .ok()
                    .filter(|_| m.uncompressed <= limit)
                    .ok_or(Problem::ImplausibleSize {
                        declared: m.uncompressed,
                        compressed: m.compressed,
                    })?;
                let out = miniz_oxide::inflate::decompress_to_vec_with_limit(data, declared)
                    .map_err(|_| Problem::Inflate)?;
                if out.len() != declared {
                    return Err(Problem::SizeMismatch {
                        declared: m.uncompressed,
                        actual: out.len() as u64,
                    });
                }
                Cow::Owned(out)
            }
            method => return Err(Problem::Compression { method }),
        };
        let actual = crc32fast::hash(&bytes);
        if actual != m.crc32 {
            return Err(Problem::Crc {
                expected: m.crc32,
                actual,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal NPZ writer for tests: `(name, npy bytes)` members, stored or deflated, optionally
    /// with NumPy's ZIP64 local headers.
    pub(crate) fn write_npz(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let file = format!("{name}.npy");
            let crc = crc32fast::hash(data);
            let (method, body) = if deflate {
                (8u16, miniz_oxide::deflate::compress_to_vec(data, 6))
            } else {
                (0u16, data.clone())
            };
            let offset = out.len() as u32;
            out.extend(LOCAL_SIGNATURE.to_le_bytes());
            out.extend([20, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0, 0, 0, 0]);
            out.extend(crc.to_le_bytes());
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((file.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(file.as_bytes());
            out.extend(&body);
            central.extend(CENTRAL_SIGNATURE.to_le_bytes());
            central.extend([20, 0, 20, 0, 0, 0]);
            central.extend(method.to_le_bytes());
            central.extend([0, 0, 0, 0]);
            central.extend(crc.to_le_bytes());
            central.extend((body.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((file.len() as u16).to_le_bytes());
            central.extend([0u8; 12]);
            central.extend(offset.to_le_bytes());
            central.extend(file.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(END_SIGNATURE.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend([0, 0]);
        out
    }

    /// NPY bytes of a float64 array (C order).
    pub(crate) fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
        npy(
            "<f8",
            shape,
            &values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        )
    }

    /// NPY bytes with the given descr, shape and raw body.
    pub(crate) fn npy(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
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

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    /// `np.savez` (stored, ZIP64 local headers) and `np.savez_compressed` (deflated) files read to
    /// the arrays `make_fixtures.py` wrote.
    #[test]
    fn reads_numpy_savez_and_savez_compressed() {
        for file in ["savez.npz", "savez_compressed.npz"] {
            let bytes = fixture(file);
            let npz = Npz::parse(&bytes).unwrap();
            assert_eq!(npz.names(), vec!["x", "y"], "{file}");
            let x = npz.array("x").unwrap();
            assert_eq!(x.shape, vec![6, 5, 3]);
            for s in 0..6 {
                for t in 0..5 {
                    for c in 0..3 {
                        let want = ((s + 2 * t + 3 * c) % 4) as f64;
                        assert_eq!(x.data[(s * 5 + t) * 3 + c], want, "{file}");
                    }
                }
            }
            let y = npz.array("y").unwrap();
            assert_eq!(y.data, vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
        }
        let bytes = fixture("big_deflate.npz");
        let x = Npz::parse(&bytes).unwrap().array("x").unwrap();
        assert_eq!(x.shape, vec![40, 200, 16]);
        assert!(x.data.iter().enumerate().all(|(i, &v)| {
            let (s, t, c) = (i / 3200, i / 16 % 200, i % 16);
            v == ((s * 7 + t * 3 + c) % 5) as f64
        }));
        let bytes = fixture("features_be.npz");
        let npz = Npz::parse(&bytes).unwrap();
        assert_eq!(npz.names(), vec!["x", "y", "names"]);
        assert_eq!(
            npz.array("x").unwrap().data,
            vec![
                0.0, -1.0, 0.25, -0.75, 0.5, -0.5, 0.75, -0.25, 1.0, 0.0, 1.25, 0.25, 1.5, 0.5
            ]
        );
        // A string array is refused when asked for, with the NPY reader's reason.
        let e = npz.array("names").unwrap_err().to_string();
        assert!(e.contains("strings"), "{e}");
    }

    #[test]
    fn round_trips_the_test_writer_stored_and_deflated() {
        let x = npy_f64(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        for deflate in [false, true] {
            let bytes = write_npz(&[("x", x.clone())], deflate);
            let a = Npz::parse(&bytes).unwrap().array("x").unwrap();
            assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0]);
        }
    }

    #[test]
    fn refuses_corrupt_archives_with_the_problem() {
        let x = npy_f64(&[2], &[1.0, 2.0]);
        assert!(matches!(Npz::parse(b"not a zip"), Err(Problem::NotZip)));
        assert!(matches!(Npz::parse(&x), Err(Problem::NotZip)));
        // A flipped data byte: the CRC catches it.
        let mut bytes = write_npz(&[("x", x.clone())], false);
        bytes[100] ^= 1;
        let npz = Npz::parse(&bytes).unwrap();
        assert!(matches!(npz.array("x"), Err(Problem::Crc { .. })));
        // Missing array, with the names present.
        match npz.array("y") {
            Err(Problem::MissingArray { present }) => assert_eq!(present, vec!["x"]),
            other => panic!("{other:?}"),
        }
        // A truncated archive: the central directory points past the end.
        let bytes = write_npz(&[("x", x.clone())], true);
        let cut = [&bytes[..20], &bytes[bytes.len() - 22..]].concat();
        assert!(matches!(
            Npz::parse(&cut),
            Err(Problem::ZipStructure { .. })
        ));
        // Unsupported method, encryption, duplicate names.
        let mut bytes = write_npz(&[("x", x.clone())], false);
        let cd = bytes.len() - 22 - 46 - 5;
        bytes[cd + 10] = 12;
        assert!(matches!(
            Npz::parse(&bytes).unwrap().array("x"),
            Err(Problem::Compression { method: 12 })
        ));
        bytes[cd + 10] = 0;
        bytes[cd + 8] = 1;
        assert!(matches!(
            Npz::parse(&bytes).unwrap().array("x"),
            Err(Problem::Encrypted)
        ));
        let bytes = write_npz(&[("x", x.clone()), ("x", x.clone())], false);
        assert!(matches!(
            Npz::parse(&bytes),
            Err(Problem::DuplicateMember { .. })
        ));
    }

    /// A deflated member that declares 4 GiB from a few compressed bytes is refused before any
    /// allocation; one that declares less than it inflates to stops at its declared size.
    #[test]
    fn a_hostile_declared_size_allocates_nothing() {
        let x = npy_f64(&[64], &[0.0; 64]);
        let mut bytes = write_npz(&[("x", x.clone())], true);
        let cd = bytes.len() - 22 - 46 - 5;
        bytes[cd + 24..cd + 28].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        assert!(matches!(
            Npz::parse(&bytes).unwrap().array("x"),
            Err(Problem::ImplausibleSize { .. })
        ));
        bytes[cd + 24..cd + 28].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            Npz::parse(&bytes).unwrap().array("x"),
            Err(Problem::Inflate)
        ));
        bytes[cd + 24..cd + 28].copy_from_slice(&((x.len() + 1) as u32).to_le_bytes());
        assert!(matches!(
            Npz::parse(&bytes).unwrap().array("x"),
            Err(Problem::SizeMismatch { .. })
        ));
    }

    proptest::proptest! {
        /// Arbitrary bytes, and valid archives (stored and deflated) with bytes overwritten or cut,
        /// give arrays or problems, never a panic.
        #[test]
        fn corrupted_archives_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..6),
            cut in 0usize..400,
            deflate in proptest::bool::ANY,
        ) {
            if let Ok(npz) = Npz::parse(&bytes) {
                let _ = npz.array("x");
            }
            let x = npy_f64(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            let mut f = write_npz(&[("x", x), ("y", npy_f64(&[3], &[0.0, 1.0, 0.0]))], deflate);
            for (i, b) in edits {
                let n = f.len();
                f[i % n] = b;
            }
            for g in [&f[..], &f[..cut.min(f.len())]] {
                if let Ok(npz) = Npz::parse(g) {
                    let _ = npz.names();
                    let _ = npz.array("x");
                    let _ = npz.array("y");
                }
            }
        }
    }
}
