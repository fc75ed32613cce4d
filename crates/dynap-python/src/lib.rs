//! dynap from Python: the extension module `dynap._native`, which the Python package `dynap`
//! re-exports (`crates/dynap-python/python/dynap`). Rockpool's names throughout: a network's
//! currents and layout values are `Itau_mem`, `Igain_syn`, `C_mem`, ...; weights are `[pre, post]`.
//!
//! - `network.rs`: `Network` (construction from NumPy weights and currents, `simulate`,
//!   `value_and_grad`) and the `Simulation` it returns.
//! - `deploy.rs`: `quantize`, `map`, `Configuration`, `Mapping`, `unmap`, `Emulator`, `train`.
//! - `arrays.rs`: NumPy arrays in (one copy each, any number dtype and layout) and out (no copy).
//!
//! Every kernel runs with the GIL released. Errors are Python exceptions carrying the Rust error's
//! message: `ValueError` for bad values and shapes, `TypeError` for wrong types, `OSError` for files.
//!
//! Built by maturin (`pip install crates/dynap-python`); `cargo build` builds a plain Rust library
//! and needs no Python headers.

mod arrays;
mod deploy;
mod network;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<network::PyNetwork>()?;
    m.add_class::<network::Simulation>()?;
    m.add_class::<deploy::PyQuantized>()?;
    m.add_class::<deploy::PyConfiguration>()?;
    m.add_class::<deploy::PyMapping>()?;
    m.add_class::<deploy::PyEmulator>()?;
    m.add_function(wrap_pyfunction!(deploy::quantize, m)?)?;
    m.add_function(wrap_pyfunction!(deploy::map, m)?)?;
    m.add_function(wrap_pyfunction!(deploy::unmap, m)?)?;
    m.add_function(wrap_pyfunction!(deploy::train, m)?)?;
    m.add_function(wrap_pyfunction!(network::parameter_names, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
