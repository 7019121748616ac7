//! Python bindings for [`crate::ggml`].

use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::to_pyerr;
use crate::error::CoreError;
use crate::ggml::{self, GgmlType};

fn parse_type(name: &str) -> PyResult<GgmlType> {
    GgmlType::from_name(name).ok_or_else(|| {
        to_pyerr(CoreError::InvalidArgument(format!(
            "unknown type {name:?} (use f32, f16, q8_0, q4_0, q4_1, q5_0 or q5_1)"
        )))
    })
}

/// Serialize with serde and hand back a Python object via `json.loads`.
fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v)
        .map_err(|e| to_pyerr(CoreError::InvalidArgument(e.to_string())))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Validate a whisper.cpp model file; returns its description as a dict.
#[pyfunction]
#[pyo3(signature = (path, compute_sha256 = true))]
fn validate_model<'py>(
    py: Python<'py>,
    path: PathBuf,
    compute_sha256: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let info = py
        .detach(|| ggml::validate_file(&path, compute_sha256))
        .map_err(to_pyerr)?;
    to_py(py, &info)
}

/// Quantize an f16 model file to `qtype`; returns the report as a dict.
#[pyfunction]
fn quantize_model<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    qtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let t = parse_type(qtype)?;
    let rep = py
        .detach(|| ggml::quantize_file(&src, &dst, t))
        .map_err(to_pyerr)?;
    to_py(py, &rep)
}

/// Encode float32 values as `qtype` bytes exactly as ggml does.
#[pyfunction]
fn quantize_array<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    qtype: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let t = parse_type(qtype)?;
    let not_f32 = || {
        to_pyerr(CoreError::InvalidArgument(
            "values must be a 1-D C-contiguous float32 numpy array".into(),
        ))
    };
    let arr: PyReadonlyArray1<'py, f32> = values
        .cast::<PyArray1<f32>>()
        .map_err(|_| not_f32())?
        .readonly();
    let x = arr.as_slice().map_err(|_| not_f32())?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(to_pyerr(CoreError::InvalidArgument(format!(
            "values[{i}] is not finite"
        ))));
    }
    let out = py.detach(|| ggml::quantize_row(x, t)).map_err(to_pyerr)?;
    Ok(PyBytes::new(py, &out))
}

/// Decode `n` values of `qtype` from `data`.
#[pyfunction]
fn dequantize_array<'py>(
    py: Python<'py>,
    data: &[u8],
    qtype: &str,
    n: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let t = parse_type(qtype)?;
    let out = py
        .detach(|| ggml::dequantize_row(data, t, n))
        .map_err(to_pyerr)?;
    Ok(PyArray1::from_vec(py, out))
}

/// SHA-256 of a file as lowercase hex.
#[pyfunction]
fn sha256_file(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| ggml::sha256_file(&path)).map_err(to_pyerr)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(validate_model, m)?)?;
    m.add_function(wrap_pyfunction!(quantize_model, m)?)?;
    m.add_function(wrap_pyfunction!(quantize_array, m)?)?;
    m.add_function(wrap_pyfunction!(dequantize_array, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_file, m)?)?;
    Ok(())
}
