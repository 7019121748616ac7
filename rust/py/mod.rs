//! The only part of the crate that knows Python: thin wrappers that convert types, release
//! the GIL around real work and map [`CoreError`] to the exceptions of `whisper_cascade.errors`.

use pyo3::prelude::*;

use crate::error::CoreError;

mod bandit;
mod confidence;
mod features;
mod ggml;

/// Turn a core error into the matching exception class defined in Python.
pub(crate) fn to_pyerr(err: CoreError) -> PyErr {
    Python::attach(|py| {
        let class_name = match &err {
            CoreError::Audio(_) => "AudioError",
            CoreError::ModelValidation { .. } => "ModelValidationError",
            CoreError::InvalidArgument(_) => "InvalidArgumentError",
            CoreError::State(_) => "StateError",
            CoreError::Io(_) => "FileAccessError",
        };
        let message = err.to_string();
        let built = (|| -> PyResult<PyErr> {
            let module = py.import("whisper_cascade.errors")?;
            let class = module.getattr(class_name)?;
            let instance = match &err {
                CoreError::ModelValidation { code, .. } => class.call1((message.clone(), *code))?,
                _ => class.call1((message.clone(),))?,
            };
            Ok(PyErr::from_value(instance))
        })();
        built.unwrap_or_else(|e| e)
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    features::register(m)?;
    confidence::register(m)?;
    bandit::register(m)?;
    ggml::register(m)?;
    Ok(())
}
