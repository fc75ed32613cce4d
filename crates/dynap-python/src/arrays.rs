//! NumPy arrays in and out: every array argument is read into one owned buffer (the one copy a
//! crossing makes, whatever its dtype or memory layout), and results leave as arrays that own the
//! Rust buffers (no copy).

use numpy::{
    PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// An array argument's values in the precision it asks for, with its shape.
pub(crate) enum Floats {
    F32(Vec<f32>, Vec<usize>),
    F64(Vec<f64>, Vec<usize>),
}

impl Floats {
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Floats::F32(_, s) | Floats::F64(_, s) => s,
        }
    }
}

/// `obj` as a NumPy array (no copy when it is one), refused unless its dtype is a number.
fn as_array<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,)).map_err(|e| {
        PyTypeError::new_err(format!("{what}: cannot be read as a NumPy array ({e})"))
    })?;
    let arr = arr
        .cast_into::<PyUntypedArray>()
        .map_err(|_| PyTypeError::new_err(format!("{what}: not a NumPy array")))?;
    let kind = arr.dtype().kind();
    if !matches!(kind, b'f' | b'i' | b'u' | b'b') {
        return Err(PyTypeError::new_err(format!(
            "{what}: dtype {} is not a number (use float32, float64, an integer or bool)",
            arr.dtype()
        )));
    }
    Ok(arr)
}

/// Reads `arr` (of element type `$e`) into a `Vec<$t>`, in logical (C) order whatever its strides.
macro_rules! read_as {
    ($arr:expr, $t:ty; $($e:ty),*) => {{
        let arr = $arr;
        let py = arr.py();
        let dtype = arr.dtype();
        let mut out: Option<Vec<$t>> = None;
        $(
            if out.is_none() && dtype.is_equiv_to(&numpy::dtype::<$e>(py)) {
                let a = arr.cast::<PyArrayDyn<$e>>().map_err(|e| PyTypeError::new_err(e.to_string()))?;
                let ro = a.try_readonly().map_err(|e| PyValueError::new_err(e.to_string()))?;
                #[allow(clippy::unnecessary_cast, trivial_numeric_casts)]
                // A C-contiguous array is read as memory; any other (Fortran order, strided views)
                // in logical order.
                let v: Vec<$t> = match ro.as_slice() {
                    Ok(s) if a.is_c_contiguous() => s.iter().map(|&x| x as $t).collect(),
                    _ => ro.as_array().iter().map(|&x| x as $t).collect(),
                };
                out = Some(v);
            }
        )*
        out
    }};
}

fn read_typed_f64(arr: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Vec<f64>> {
    if arr.dtype().kind() == b'b' {
        let a = arr
            .cast::<PyArrayDyn<bool>>()
            .map_err(|e| PyTypeError::new_err(e.to_string()))?;
        let ro = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        return Ok(ro
            .as_array()
            .iter()
            .map(|&b| f64::from(u8::from(b)))
            .collect());
    }
    read_as!(arr, f64; f64, f32, i64, i32, i16, i8, u64, u32, u16, u8).ok_or_else(|| {
        PyTypeError::new_err(format!("{what}: dtype {} is not supported", arr.dtype()))
    })
}

/// An array argument as `f64` values and its shape.
pub(crate) fn read_f64(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let arr = as_array(obj, what)?;
    let shape = arr.shape().to_vec();
    Ok((read_typed_f64(&arr, what)?, shape))
}

/// An array argument in the precision its dtype asks for (`float32`: `f32`; anything else: `f64`).
pub(crate) fn read_floats(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Floats> {
    let arr = as_array(obj, what)?;
    let shape = arr.shape().to_vec();
    if arr.dtype().is_equiv_to(&numpy::dtype::<f32>(arr.py())) {
        let v = read_as!(&arr, f32; f32).expect("the dtype was checked");
        return Ok(Floats::F32(v, shape));
    }
    Ok(Floats::F64(read_typed_f64(&arr, what)?, shape))
}

/// Refuses `shape` unless it has `rank` dimensions, naming the argument and the expected layout.
pub(crate) fn check_rank(shape: &[usize], rank: usize, what: &str, layout: &str) -> PyResult<()> {
    if shape.len() == rank {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{what}: shape {shape:?} has {} dimensions; expected {rank}: {layout}",
            shape.len()
        )))
    }
}

/// A Rust buffer as an array of `shape` (which it fills exactly), without copying it.
pub(crate) fn to_array<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, data);
    Ok(flat.reshape(shape.to_vec())?.into_any())
}
