//! Native core of whisper-cascade.
//!
//! Pure Rust, testable with `cargo test` and no Python: audio features, confidence
//! aggregation, bandits and whisper.cpp (ggml) model tools. The Python bindings live in
//! [`py`] behind the `python` feature and only translate types.

pub mod bandit;
pub mod confidence;
pub mod error;
pub mod features;
pub mod ggml;

#[cfg(feature = "python")]
mod py;

pub use error::{CoreError, CoreResult};
