//! Python bindings for [`crate::features`].

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::to_pyerr;
use crate::error::CoreError;
use crate::features::{self, AudioFeatures, N_BINS};

fn invalid(message: String) -> PyErr {
    to_pyerr(CoreError::InvalidArgument(message))
}

/// Borrow a 1-D C-contiguous float32 array without copying; anything else is refused.
fn borrow_signal<'py>(signal: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray1<'py, f32>> {
    let describe = || match signal.cast::<numpy::PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of {}", a.ndim(), a.dtype()),
        Err(_) => format!("{}", signal.get_type()),
    };
    let array: PyReadonlyArray1<'py, f32> = signal.extract().map_err(|_| {
        invalid(format!(
            "signal must be a 1-D float32 numpy array, got {}",
            describe()
        ))
    })?;
    if !array.is_c_contiguous() {
        return Err(invalid(
            "signal must be C-contiguous (use numpy.ascontiguousarray)".into(),
        ));
    }
    Ok(array)
}

fn sample_rate(value: i64) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| invalid(format!("sample_rate must be 16000, got {value}")))
}

fn n_mels(value: i64) -> PyResult<usize> {
    match value {
        80 | 128 => Ok(value as usize),
        other => Err(invalid(format!(
            "n_mels must be 80 or 128 (Whisper's front ends), got {other}"
        ))),
    }
}

fn to_dict<'py>(py: Python<'py>, f: &AudioFeatures) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("duration_s", f.duration_s)?;
    d.set_item("rms_mean", f.rms_mean)?;
    d.set_item("rms_std", f.rms_std)?;
    d.set_item("zcr_mean", f.zcr_mean)?;
    d.set_item("zcr_std", f.zcr_std)?;
    d.set_item("spectral_centroid_mean", f.spectral_centroid_mean)?;
    d.set_item("spectral_centroid_std", f.spectral_centroid_std)?;
    d.set_item("spectral_spread_mean", f.spectral_spread_mean)?;
    d.set_item("spectral_spread_std", f.spectral_spread_std)?;
    d.set_item("spectral_flatness_mean", f.spectral_flatness_mean)?;
    d.set_item("spectral_flatness_std", f.spectral_flatness_std)?;
    d.set_item("peak", f.peak)?;
    d.set_item("speech_segments", PyList::new(py, &f.speech_segments)?)?;
    d.set_item("speech_ratio", f.speech_ratio)?;
    d.set_item("snr_db", f.snr_db)?;
    d.set_item("speech_rate", f.speech_rate)?;
    d.set_item("complexity", f.complexity)?;
    Ok(d)
}

fn mel_array<'py>(
    py: Python<'py>,
    data: Vec<f32>,
    n_mels: usize,
    n_frames: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    PyArray1::from_vec(py, data).reshape([n_mels, n_frames])
}

/// Features of a 16 kHz mono float32 signal, as a dict.
#[pyfunction]
#[pyo3(signature = (signal, sample_rate = 16_000))]
fn analyze_audio<'py>(
    py: Python<'py>,
    signal: &Bound<'py, PyAny>,
    sample_rate: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let array = borrow_signal(signal)?;
    let samples = array.as_slice()?;
    let rate = self::sample_rate(sample_rate)?;
    let features = py
        .detach(|| features::analyze(samples, rate))
        .map_err(to_pyerr)?;
    to_dict(py, &features)
}

/// Features and the Whisper log-mel `(n_mels, n_frames)` from one shared STFT.
#[pyfunction]
#[pyo3(signature = (signal, n_mels = 80, sample_rate = 16_000))]
fn analyze_audio_with_mel<'py>(
    py: Python<'py>,
    signal: &Bound<'py, PyAny>,
    n_mels: i64,
    sample_rate: i64,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyArray2<f32>>)> {
    let array = borrow_signal(signal)?;
    let samples = array.as_slice()?;
    let rate = self::sample_rate(sample_rate)?;
    let n_mels = self::n_mels(n_mels)?;
    let (features, mel, n_frames) = py
        .detach(|| features::analyze_with_mel(samples, rate, n_mels))
        .map_err(to_pyerr)?;
    Ok((
        to_dict(py, &features)?,
        mel_array(py, mel, n_mels, n_frames)?,
    ))
}

/// Features of many signals, computed in parallel; the first bad signal raises.
#[pyfunction]
#[pyo3(signature = (signals, sample_rate = 16_000))]
fn analyze_audio_batch<'py>(
    py: Python<'py>,
    signals: Vec<Bound<'py, PyAny>>,
    sample_rate: i64,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let arrays = signals
        .iter()
        .enumerate()
        .map(|(i, s)| {
            borrow_signal(s).map_err(|e| invalid(format!("signals[{i}]: {}", e.value(py))))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let slices = arrays
        .iter()
        .map(|a| a.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let rate = self::sample_rate(sample_rate)?;
    let results = py.detach(|| features::analyze_batch(&slices, rate));
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let f = r.map_err(|e| {
                to_pyerr(match e {
                    CoreError::Audio(m) => CoreError::Audio(format!("signals[{i}]: {m}")),
                    other => other,
                })
            })?;
            to_dict(py, &f)
        })
        .collect()
}

/// Whisper log-mel spectrogram `(n_mels, n_frames)` of a 16 kHz float32 signal, equal to
/// whisper.cpp's front end over the frames covering the audio.
#[pyfunction]
#[pyo3(signature = (signal, n_mels = 80))]
fn log_mel_spectrogram<'py>(
    py: Python<'py>,
    signal: &Bound<'py, PyAny>,
    n_mels: i64,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let n_mels = self::n_mels(n_mels)?;
    let array = borrow_signal(signal)?;
    let samples = array.as_slice()?;
    let (mel, n_frames) = py
        .detach(|| features::log_mel_spectrogram(samples, n_mels))
        .map_err(to_pyerr)?;
    mel_array(py, mel, n_mels, n_frames)
}

/// Slaney mel filterbank `(n_mels, 201)` for 16 kHz and n_fft 400 (Whisper's `mel_filters.npz`).
#[pyfunction]
#[pyo3(signature = (n_mels = 80))]
fn mel_filters(py: Python<'_>, n_mels: i64) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let n_mels = self::n_mels(n_mels)?;
    mel_array(py, features::mel_filters(n_mels), n_mels, N_BINS)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze_audio, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_audio_with_mel, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_audio_batch, m)?)?;
    m.add_function(wrap_pyfunction!(log_mel_spectrogram, m)?)?;
    m.add_function(wrap_pyfunction!(mel_filters, m)?)?;
    Ok(())
}
