//! One error type for the whole core; the bindings map each variant to a typed Python exception.

use thiserror::Error;

/// Everything the core can refuse or fail at.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The signal cannot be analysed (empty, non-finite, wrong rate...).
    #[error("{0}")]
    Audio(String),
    /// A model file failed validation; `code` is a stable machine-readable reason.
    #[error("{detail}")]
    ModelValidation { code: &'static str, detail: String },
    /// A caller passed a value outside what the function accepts.
    #[error("{0}")]
    InvalidArgument(String),
    /// Serialised state (bandit, ...) could not be read back.
    #[error("{0}")]
    State(String),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CoreError {
    /// Shorthand for a model validation failure.
    pub fn model(code: &'static str, detail: impl Into<String>) -> Self {
        CoreError::ModelValidation {
            code,
            detail: detail.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
