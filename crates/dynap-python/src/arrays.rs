//! NumPy arrays in and out: every array argument is read into one owned buffer (the one copy a
//! crossing makes, whatever its dtype or memory layout), and results leave as arrays that own the
//! Rust buffers (no copy).

use numpy::{
    PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;

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

/// Output buffers of dropped result arrays, kept for the next runs: fresh memory costs a page fault
/// and the kernel's zeroing per 4 KiB page, which for a recorded run (five `[batch, steps, N]`
/// arrays) took longer than the simulation itself. At most [`POOL_BUFFERS`] buffers and
/// [`POOL_BYTES`] bytes of each precision are kept; the rest are freed.
pub(crate) trait Pooled: numpy::Element + Copy + Send + 'static {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
    fn wrap(v: Vec<Self>) -> Buffer;
}

const POOL_BUFFERS: usize = 32;
const POOL_BYTES: usize = 512 << 20;

static POOL_F32: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
static POOL_F64: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());

impl Pooled for f32 {
    fn pool() -> &'static Mutex<Vec<Vec<f32>>> {
        &POOL_F32
    }
    fn wrap(v: Vec<f32>) -> Buffer {
        Buffer::F32(v)
    }
}

impl Pooled for f64 {
    fn pool() -> &'static Mutex<Vec<Vec<f64>>> {
        &POOL_F64
    }
    fn wrap(v: Vec<f64>) -> Buffer {
        Buffer::F64(v)
    }
}

/// A kept buffer that holds at least `len` values and not more than twice that, or a new empty one.
/// It keeps the values of its last use (at most `len` of them): the runs write every value, and
/// clearing would cost what reusing saves.
pub(crate) fn pooled<T: Pooled>(len: usize) -> Vec<T> {
    let Ok(mut pool) = T::pool().lock() else {
        return Vec::new();
    };
    match pool
        .iter()
        .position(|v| v.capacity() >= len && v.capacity() <= 2 * len.max(1))
    {
        Some(i) => {
            let mut v = pool.swap_remove(i);
            v.truncate(len);
            v
        }
        None => Vec::new(),
    }
}

fn give_back<T: Pooled>(v: Vec<T>) {
    if let Ok(mut pool) = T::pool().lock() {
        let bytes: usize = pool.iter().map(|b| b.capacity()).sum::<usize>() * size_of::<T>();
        if pool.len() < POOL_BUFFERS && bytes + v.capacity() * size_of::<T>() <= POOL_BYTES {
            pool.push(v);
        }
    }
}

/// The memory behind a result array: when NumPy frees the array, the buffer goes back to the pool.
pub(crate) enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// The owner of a pooled result array's memory (the array's `base`).
#[pyclass(module = "dynap", frozen)]
pub(crate) struct PooledBuffer {
    buffer: Mutex<Option<Buffer>>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        match self.buffer.get_mut().ok().and_then(Option::take) {
            Some(Buffer::F32(v)) => give_back(v),
            Some(Buffer::F64(v)) => give_back(v),
            None => {}
        }
    }
}

/// A Rust buffer as an array of `shape` (which it fills exactly), without copying it, whose memory
/// returns to the pool when NumPy frees the array.
#[allow(unsafe_code)]
pub(crate) fn to_pooled_array<'py, T: Pooled>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "the shape fills the buffer"
    );
    let ptr = data.as_ptr();
    // Moving the Vec into its owner moves its handle, not its heap memory: `ptr` stays valid for as
    // long as the owner lives.
    let owner = Bound::new(
        py,
        PooledBuffer {
            buffer: Mutex::new(Some(T::wrap(data))),
        },
    )?;
    // SAFETY: `ptr` points to `shape.product()` initialised values of `T`, in C order, owned by
    // `owner`'s buffer, which nothing else reads or writes and which is freed (returned to the pool)
    // only when `owner` is dropped; NumPy holds `owner` as the array's base for as long as the array
    // (or any view of it) lives.
    unsafe {
        let view = numpy::ndarray::ArrayView::from_shape_ptr(numpy::ndarray::IxDyn(shape), ptr);
        Ok(numpy::PyArray::borrow_from_array(&view, owner.into_any()).into_any())
    }
}
